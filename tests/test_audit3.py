"""Issue 23, the third integrity audit: each hostile case that misbehaved has a test here that
fails on the code the audit tried (commit 42c2dbe). Sections follow the issue:

1. results that changed without a clear refusal (a finalist key that contradicts its run,
   missing artifacts);
2. data written outside its folder and work lost after training (names, a batch that cannot
   fit, a lone surrogate, out of memory in a trial);
3. workers that judge each other wrongly (PID namespaces, a trial taken from a live worker,
   the summary run when workers finish together);
4. Ctrl-C and SIGTERM (a swallowed KeyboardInterrupt, the UI's server child);
5. failures after work was done (a lost database connection, a full disk, a decompression
   bomb, a cache path that is a file, a read-only store, the UI's port, strings for counts).

`gan-bench` runs in-process through `cli.main()` where a case needs no real process, and as a
subprocess where signals, namespaces or a dying connection are the point.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_artifact_dir

from gan_bench import cli
from gan_bench.config import load_suite
from gan_bench.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
BIN = Path(sys.executable).parent
TINY = ["gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating, arch_options: {size: tiny}}]",
        "budget.trials=2", "budget.iterations=60", "budget.eval_every=30",
        "finalists.top=1", "finalists.seeds=2"]


def gan_bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `gan-bench ARGS` run through cli.main()."""
    monkeypatch.setattr(sys, "argv", ["gan-bench", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def tiny_args(out: Path, *extra: str) -> list[str]:
    return [a for s in [f"output_dir={out}", *TINY, *extra] for a in ("--set", s)]


def _suite(out: Path, *extra: str):
    return load_suite(SMOKE, [f"output_dir={out}", *TINY, *extra])


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """A finished tiny run; tests copy it before damaging anything."""
    out = tmp_path_factory.mktemp("audit3") / "run"
    Runner(_suite(out)).run()
    return out


@pytest.fixture
def run_copy(done_run, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(done_run, dst)
    return dst


def _client(out: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{out / 'mlflow.db'}")


def _runs(out: Path, stage: str | None = None) -> list:
    client = _client(out)
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if stage is None or r.data.tags.get("stage") == stage]


# =========================================================================== 2. names and sizes

@pytest.mark.parametrize("setting, expected", [
    ("name=..", "name: '..' is not a name"),
    ("name=.", "name: '.' is not a name"),
    ("name=" + "a" * 300, "name: 300 characters is too long for a name"),
    ("gans[0].name=..", "gans[0].name: '..' is not a name"),
    ("gans[0].name=a/b", "gans[0].name: 'a/b' is not a name"),
    ('description="bad \\uD800 text"', "description: contains a lone surrogate"),
    ("gans[0].train.batch_size=1000000000", "gans[0] (toy_ns) batch_size: 1000000000 samples"),
    ('budget.trials="2"', "budget.trials: must be an integer, not the string '2'"),
    ('sampler.n_startup_trials="2"', "sampler.n_startup_trials: must be an integer, not the string"),
    ('gans[0].train.k="2"', "gans[0].train.k: must be an integer, not the string '2'"),
])
def test_validate_and_run_refuse_unsafe_names_sizes_and_text(monkeypatch, capsys, tmp_path,
                                                             setting, expected):
    """Each passed `validate` before; `run` then wrote stores into the working folder (".."),
    crashed with OSError (300 characters), at the first trial (the batch) or before training
    leaving mlflow.db behind (the surrogate); strings were taken as counts."""
    monkeypatch.chdir(tmp_path)
    args = ["--set", "gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating}]", "--set", setting]
    code, out, err = gan_bench(monkeypatch, capsys, "validate", str(SMOKE), "--no-estimate", *args)
    assert code == 2 and expected in one_error_line(err), err
    code, out, err = gan_bench(monkeypatch, capsys, "run", str(SMOKE), "--plain", *args)
    assert code == 2 and expected in one_error_line(err), err
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_the_name_rule_is_one_function():
    from gan_bench.names import NAME_MAX, name_problem

    for good in ("mnist", "mnist_cpu", "pacgan_ring8", "wgan-gp", "v1.2", "a" * NAME_MAX):
        assert name_problem(good) is None, good
    for bad in ("", ".", "..", ".hidden", "-x", "a b", "a/b", "a\\b", "é", "a" * (NAME_MAX + 1)):
        assert name_problem(bad) is not None, bad


def test_the_step_memory_counts_activations_of_both_nets():
    """Per-sample activation bytes of one step: toy ring8 nets hold a few KB per sample, far
    more than the 8 bytes of the point itself (what the old rule counted)."""
    from gan_bench.catalogue import load_builtins
    from gan_bench.models.base import activation_bytes_per_sample

    load_builtins()
    toy = activation_bytes_per_sample("toy_mlp", (2,))
    assert 500 <= toy <= 200_000
    tiny = activation_bytes_per_sample("toy_mlp", (2,), size="tiny")
    assert 0 < tiny < toy
    dcgan = activation_bytes_per_sample("dcgan", (1, 28, 28))
    assert 50_000 <= dcgan <= 20_000_000


# =========================================================================== 1. silent changes

def _flip_key(out: Path, seed_from: int, seed_to: int) -> str:
    """Rewrite one finalist's key tag in mlflow.db (seed-<from> -> seed-<to>): the audit's bit
    flip. Returns the damaged run's id."""
    with sqlite3.connect(out / "mlflow.db") as conn:
        (run_id, value), = conn.execute(
            "SELECT run_uuid, value FROM tags WHERE key = 'gan_bench.key' AND value LIKE ?",
            (f"%/seed-{seed_from}",)).fetchall()
        conn.execute("UPDATE tags SET value = ? WHERE key = 'gan_bench.key' AND run_uuid = ?",
                     (value.replace(f"seed-{seed_from}", f"seed-{seed_to}"), run_id))
    return run_id


def test_a_key_that_contradicts_its_run_is_refused_not_dropped_as_a_duplicate(run_copy, monkeypatch,
                                                                            capsys, tmp_path):
    """Before: the report dropped the real seed-1001 finalist as a "duplicate", showed n=1,
    exit 0, and `run` trained seed 1001 again."""
    run_id = _flip_key(run_copy, 1001, 1000)
    before = len(_runs(run_copy))
    code, out, err = gan_bench(monkeypatch, capsys, "report", str(run_copy), "--out",
                               str(tmp_path / "rep"))
    line = one_error_line(err)
    assert code == 2 and run_id in line and "seed-1000" in line and "seed 1001" in line
    assert "damaged" in line and not (tmp_path / "rep").exists()
    code, out, err = gan_bench(monkeypatch, capsys, "run", str(SMOKE), "--plain", "--no-estimate",
                               *tiny_args(run_copy))
    line = one_error_line(err)
    assert code == 2 and run_id in line and "nothing was run" in line
    assert len(_runs(run_copy)) == before


def _finalist_dirs(out: Path) -> list[Path]:
    return [run_artifact_dir(out, r) for r in _runs(out, "final") if r.info.status == "FINISHED"]


@pytest.mark.parametrize("loss", ["metrics.json", "artifact folder", "mlartifacts"])
def test_missing_finalist_artifacts_are_one_line_for_report_and_run(run_copy, monkeypatch, capsys,
                                                                    tmp_path, loss):
    """Before: `report` crashed with TypeError (float(None)) in report/collect.py, exit 1;
    `run` exited 0 saying "report not written (TypeError ...)"."""
    folder = _finalist_dirs(run_copy)[0]
    if loss == "metrics.json":
        (folder / "metrics.json").unlink()
    elif loss == "artifact folder":
        shutil.rmtree(folder)
    else:
        shutil.rmtree(run_copy / "mlartifacts")
    code, out, err = gan_bench(monkeypatch, capsys, "report", str(run_copy), "--out",
                               str(tmp_path / "rep"))
    line = one_error_line(err)
    assert code == 2 and "is missing" in line and "finalist run" in line, line
    assert str(run_copy / "mlartifacts") in line  # names the file
    monkeypatch.chdir(tmp_path)
    code, out, err = gan_bench(monkeypatch, capsys, "run", str(SMOKE), "--plain", "--no-estimate",
                               *tiny_args(run_copy))
    assert code == 2 and one_error_line(err) == line


def test_out_of_memory_in_a_trial_is_a_recorded_failed_trial(tmp_path, monkeypatch):
    """Before: the CPU allocator's RuntimeError at the first trial was a traceback (exit 1)
    after the stores were made. Now each trial that does not fit is FAIL with kind oom, its
    MLflow run FAILED with the reason, and the suite ends normally (budget.max_failures)."""
    from gan_bench.study import study_records
    from gan_bench.train import Trainer

    def no_memory(self):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 8000000000000 bytes.")

    monkeypatch.setattr(Trainer, "fit", no_memory)
    out = tmp_path / "run"
    outcome = Runner(_suite(out)).run()
    assert outcome.gans[0].failed == 2 and outcome.gans[0].complete == 0
    records = study_records(f"sqlite:///{out / 'optuna.db'}", "smoke/toy_ns")
    assert [r["user_attrs"]["failure_kind"] for r in records] == ["oom", "oom"]
    searches = _runs(out, "search")
    assert {r.info.status for r in searches} == {"FAILED"}
    assert all("can't allocate memory" in r.data.tags["fail_reason"] for r in searches)
