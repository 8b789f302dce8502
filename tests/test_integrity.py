"""Issue 13 section 1: results must never change silently. Finalists are claimed atomically
(two workers never both train one), a report never counts a finalist key twice, never writes to
a store, refuses stores that disagree or are empty, and refuses damaged artifacts."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMOKE_SUITE, run_artifact_dir, tiny_smoke

from gan_bench.config import Range
from gan_bench.run import Runner

SMOKE = SMOKE_SUITE


def _suite(out: Path, *extra: str):
    return tiny_smoke(out, *extra)


def _cli(capsys, *args: str) -> tuple[int, str]:
    """gan-bench in this process: (exit code, stderr)."""
    from gan_bench import cli

    old = sys.argv
    sys.argv = ["gan-bench", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finals(out: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    return [r for r in client.search_runs([exp.experiment_id], max_results=1000)
            if r.data.tags.get("stage") == "final"]


# --------------------------------------------------------------------------- finalist claims

def _as_other_worker(monkeypatch, hide_finals: bool = True) -> None:
    """This process acts as a second worker (another host) that looked for the finalists'
    MLflow runs before the first worker had started them: the window of the race."""
    import gan_bench.study as study_mod
    from gan_bench.tracking import Tracker

    monkeypatch.setattr(study_mod, "owner_token", lambda: "other-host:4242")
    if hide_finals:
        real = Tracker.find_runs

        def stale_view(self, filter_string="", max_results=10000):
            if "gan_bench.key" in filter_string:
                return []
            return real(self, filter_string, max_results)

        monkeypatch.setattr(Tracker, "find_runs", stale_view)


def test_a_second_worker_never_trains_a_claimed_finalist(run_copy, monkeypatch):
    """Fails without the claim: the second worker trained both seeds again (issue 13: 2 of 12
    PostgreSQL pairs ended with two FINISHED runs of one finalist key)."""
    before = [r for r in _finals(run_copy) if r.info.status == "FINISHED"]
    assert len(before) == 2
    _as_other_worker(monkeypatch)
    outcome = Runner(_suite(run_copy)).run()
    assert outcome.new_finalists == 0 and outcome.new_trials == 0
    after = [r for r in _finals(run_copy) if r.info.status == "FINISHED"]
    assert sorted(r.info.run_id for r in after) == sorted(r.info.run_id for r in before)


def test_report_counts_a_duplicated_finalist_key_once_and_says_so(run_copy, monkeypatch):
    """A store made before the claim (or by hand) that holds two runs of one key."""
    from gan_bench.report import collect
    from gan_bench.study import GanStudy

    _as_other_worker(monkeypatch)
    monkeypatch.setattr(GanStudy, "claim", lambda self, key: True)  # the old, racy behaviour
    Runner(_suite(run_copy)).run()
    monkeypatch.undo()
    finished = [r for r in _finals(run_copy) if r.info.status == "FINISHED"]
    assert len(finished) == 4  # two runs of each of the two keys
    data = collect(run_copy, ladder_rows=False)
    (gan,) = data.gans
    assert sorted(f.seed for f in gan.finalists) == [1000, 1001]
    oldest = {}
    for r in sorted(finished, key=lambda r: r.info.start_time):
        oldest.setdefault(r.data.tags["gan_bench.key"], r.data.metrics["final/fid_points"])
    assert sorted(f.objective for f in gan.finalists) == pytest.approx(sorted(oldest.values()))
    assert len(data.warnings) == 1 and "2 duplicate FINISHED finalist run(s)" in data.warnings[0]
    from gan_bench.report.render import render

    assert "> **Warning:** toy_ns: the store holds 2 duplicate" in render(data)[0]


def test_claims_are_atomic_and_dead_claims_are_taken_over(tmp_path, monkeypatch):
    import gan_bench.study as study_mod
    from gan_bench.study import GanStudy

    url = f"sqlite:///{tmp_path / 'optuna.db'}"

    def study(owner: str) -> GanStudy:
        monkeypatch.setattr(study_mod, "owner_token", lambda: owner)
        return GanStudy(name="s/g", storage_url=url, search={"k": Range(low=1, high=2)},
                        direction="minimize")

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    import socket

    here = socket.gethostname()
    from gan_bench.procs import pid_space

    a, b = study(f"{here}:{pid_space()}:{dead}"), study("elsewhere:1")
    assert a.claim("s/g/final/trial-0/seed-1000#0") is True
    assert a.claim("s/g/final/trial-0/seed-1000#0") is True  # its own claim
    assert b.claim("s/g/final/trial-1/seed-1000#0") is True
    c = study("third-host:7")
    assert c.claim("s/g/final/trial-1/seed-1000#0") is False  # alive elsewhere, fresh
    assert c.claim("s/g/final/trial-0/seed-1000#0") is True  # owner a's pid is gone here
    assert b.claim("s/g/final/trial-0/seed-1000#0") is False  # now c's
    monkeypatch.setattr(study_mod, "CLAIM_STALE_S", 0.0)
    assert c.claim("s/g/final/trial-1/seed-1000#0") is True  # b's claim is stale


def _postgres_url_or_skip() -> str:
    pytest.importorskip("psycopg2")
    import sqlalchemy as sa

    url = "postgresql+psycopg2://root@127.0.0.1:5432/test"
    try:
        with sa.create_engine(url, connect_args={"connect_timeout": 3}).connect():
            pass
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({type(exc).__name__})")
    return url


def test_racing_claims_on_postgresql_have_one_winner(monkeypatch):
    """Eight threads, each a different owner, claim one key at the same moment."""
    import threading
    import uuid

    import gan_bench.study as study_mod
    from gan_bench.study import GanStudy

    url = _postgres_url_or_skip()
    name = f"claims-{uuid.uuid4().hex[:8]}/g"
    studies = []
    for i in range(8):
        monkeypatch.setattr(study_mod, "owner_token", lambda i=i: f"host-{i}:1")
        studies.append(GanStudy(name=name, storage_url=url, search={"k": Range(low=1, high=2)},
                                direction="minimize"))
    key = f"{name}/final/trial-0/seed-1000#0"
    start, won = threading.Barrier(8), []

    def race(s: GanStudy) -> None:
        start.wait()
        if s.claim(key):
            won.append(s.owner)

    threads = [threading.Thread(target=race, args=(s,)) for s in studies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1


# --------------------------------------------------------------------------- stores

def test_report_never_writes_to_a_store(run_copy, capsys, tmp_path):
    dbs = [run_copy / "optuna.db", run_copy / "mlflow.db"]
    before, files = [_sha(p) for p in dbs], sorted(run_copy.rglob("*"))
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert [_sha(p) for p in dbs] == before
    assert sorted(run_copy.rglob("*")) == files  # no lock, no journal, no new artifact


@pytest.mark.parametrize("store", ["mlflow.db", "optuna.db"])
def test_report_refuses_a_zero_byte_store_and_leaves_it_alone(run_copy, capsys, tmp_path, store):
    (run_copy / store).write_bytes(b"")
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2
    line = _one_error_line(err)
    assert store in line and "empty (0-byte)" in line
    assert (run_copy / store).stat().st_size == 0
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("store", ["mlflow.db", "optuna.db"])
def test_run_refuses_a_zero_byte_store_next_to_a_full_one(run_copy, store):
    from gan_bench.errors import UserInputError

    (run_copy / store).write_bytes(b"")
    other = run_copy / ({"mlflow.db": "optuna.db", "optuna.db": "mlflow.db"}[store])
    before = _sha(other)
    with pytest.raises(UserInputError, match=r"empty \(0-byte\) file while the"):
        Runner(_suite(run_copy)).run()
    assert (run_copy / store).stat().st_size == 0 and _sha(other) == before


def test_run_refuses_an_optuna_store_emptied_of_its_study(run_copy):
    """A replaced optuna.db (valid, but without this suite's trials) next to MLflow's runs."""
    from gan_bench.errors import UserInputError
    from gan_bench.study import GanStudy

    (run_copy / "optuna.db").unlink()
    GanStudy(name="other/gan", storage_url=f"sqlite:///{run_copy / 'optuna.db'}",
             search={"k": Range(low=1, high=2)}, direction="minimize")
    with pytest.raises(UserInputError, match="holds no trials of toy_ns, but MLflow holds 2"):
        Runner(_suite(run_copy)).run()


@pytest.mark.parametrize("column, table, where", [
    ("param_value", "trial_params", "param_name = 'lr_ratio'"),
    ("value", "trial_values", "1 = 1"),
])
def test_report_refuses_stores_that_disagree(run_copy, capsys, tmp_path, column, table, where):
    """A flipped value in optuna.db used to change the reported best search (issue 13)."""
    with sqlite3.connect(run_copy / "optuna.db") as conn:
        conn.execute(f"UPDATE {table} SET {column} = {column} * 0.25 WHERE {where}")
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2
    line = _one_error_line(err)
    name = "objective" if table == "trial_values" else "lr_ratio"
    assert f": {name} is " in line and "in the Optuna storage but" in line and "damaged" in line
    assert not (tmp_path / "rep").exists()


def test_report_refuses_a_store_that_is_not_a_database(run_copy, capsys, tmp_path):
    (run_copy / "optuna.db").write_bytes(b"\x00garbage" * 512)
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2
    assert "cannot be read" in _one_error_line(err)


# --------------------------------------------------------------------------- artifacts

def _finalist_artifacts(out: Path) -> list[Path]:
    """metrics.json and G checkpoints of the FINISHED finalists in `out`'s own store."""
    found = []
    for run in _finals(out):
        if run.info.status == "FINISHED":
            root = run_artifact_dir(out, run)
            found += [root / "metrics.json", root / "checkpoint" / f"{run.info.run_id}_G.pt"]
    return found


def test_finalist_artifacts_carry_their_sha256_in_mlflow(done_run):
    from gan_bench.plan import SHA_TAGS

    runs = [r for r in _finals(done_run) if r.info.status == "FINISHED"]
    for run in runs:
        root = run_artifact_dir(done_run, run)
        assert run.data.tags[SHA_TAGS["metrics.json"]] == _sha(root / "metrics.json")
        assert run.data.tags[SHA_TAGS["checkpoint"]] == \
            _sha(root / "checkpoint" / f"{run.info.run_id}_G.pt")


@pytest.mark.parametrize("target, damage", [
    ("metrics.json", "truncate"), ("metrics.json", "empty"), ("metrics.json", "flip"),
    ("_G.pt", "truncate"), ("_G.pt", "empty"), ("_G.pt", "flip"),
])
def test_report_refuses_a_damaged_finalist_artifact(run_copy, capsys, tmp_path, target, damage):
    """Issue 13: a truncated file gave a traceback; 64 random bytes in G drew modes.png from
    corrupted weights and exited 0."""
    path = next(p for p in _finalist_artifacts(run_copy) if p.name.endswith(target))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(range(64)) + data[mid + 64:])
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2, err
    line = _one_error_line(err)
    assert str(path) in line and "damaged: sha256" in line
    assert not (tmp_path / "rep").exists()


def test_an_artifact_without_a_recorded_sha256_is_still_checked_for_readability(run_copy, capsys,
                                                                                tmp_path):
    """Stores made before the sha256 tags: a truncated file is one line, not a traceback."""
    from mlflow.tracking import MlflowClient

    from gan_bench.plan import SHA_TAGS

    client = MlflowClient(f"sqlite:///{run_copy / 'mlflow.db'}")
    for run in _finals(run_copy):
        for tag in SHA_TAGS.values():
            client.delete_tag(run.info.run_id, tag)
    path = next(p for p in _finalist_artifacts(run_copy) if p.name == "metrics.json")
    path.write_bytes(path.read_bytes()[:40])
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2
    assert str(path) in _one_error_line(err) and "unreadable" in err


def test_report_refuses_an_optuna_store_emptied_of_its_study(run_copy, capsys, tmp_path):
    from gan_bench.study import GanStudy

    (run_copy / "optuna.db").unlink()
    GanStudy(name="other/gan", storage_url=f"sqlite:///{run_copy / 'optuna.db'}",
             search={"k": Range(low=1, high=2)}, direction="minimize")
    code, err = _cli(capsys, "report", str(run_copy), "--out", str(tmp_path / "rep"))
    assert code == 2
    assert "holds no trials of study 'smoke/toy_ns', but MLflow holds 2" in _one_error_line(err)


def test_finalist_seeds_train_packed_and_match_their_solo_runs(done_run, tmp_path):
    """budget.packed_trials > 1: the seeds of one setting share a PackedTrainer (issue 14: ten
    seeds of a tiny MLP per process), each with its own run, key and checkpoint."""
    out = tmp_path / "packed"
    Runner(_suite(out, "budget.packed_trials=2")).run()
    finals = sorted((r for r in _finals(out) if r.info.status == "FINISHED"),
                    key=lambda r: r.data.params["seed"])
    assert [r.data.params["seed"] for r in finals] == ["1000", "1001"]
    contexts = [json.loads((run_artifact_dir(out, r) / "run.json").read_text())["context"]
                for r in finals]
    assert [c["packed_with"] for c in contexts] == ["1000,1001", "1000,1001"]
    solo = {r.data.params["seed"]: r.data.metrics["final/fid_points"] for r in _finals(done_run)
            if r.info.status == "FINISHED"}
    for run in finals:  # same seeds, same setting: equal up to batched-kernel rounding
        assert run.data.metrics["final/fid_points"] == pytest.approx(solo[run.data.params["seed"]],
                                                                     rel=1e-3)


def test_a_trial_is_never_pruned_at_its_last_evaluation():
    """mnist_cpu: the median pruner said "prune" at iteration 1500 of 1500, so trials that ran
    every iteration were recorded as pruned (their values hidden from TPE and the report)."""
    from types import SimpleNamespace

    from gan_bench.run.monitor import Scorer, TrialMonitor

    rec = SimpleNamespace(value=5.0, flat=lambda: {"m": 5.0})
    evaluator = SimpleNamespace(evaluate=lambda fake, metrics: {"m": rec}, primary=lambda m: m)
    run = SimpleNamespace(log_metrics=lambda *a: None, log_stepped_image=lambda *a: None)
    stops = []
    trainer = SimpleNamespace(total_iterations=1500, generate=lambda n, seed: None,
                              request_stop=stops.append)
    cb = TrialMonitor(run, Scorer(evaluator, ["m"], "m", 10), lambda trainer: None,
                      SimpleNamespace(evaluation=lambda *a: None),
                      pruner=lambda value: True)  # the pruner always says stop
    cb.on_eval(trainer, 500)
    assert stops == ["pruned at iteration 500"]
    cb.on_eval(trainer, 1500)
    assert stops == ["pruned at iteration 500"]  # the last evaluation completes the trial
