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
from conftest import TINY_SMOKE, cli_main, run_artifact_dir, tiny_smoke

from gan_bench.run import Runner

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
BIN = Path(sys.executable).parent
TINY = TINY_SMOKE


def gan_bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    code, out, err = cli_main(monkeypatch, capsys, *args)
    return int(code or 0), out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def tiny_args(out: Path, *extra: str) -> list[str]:
    return [a for s in [f"output_dir={out}", *TINY, *extra] for a in ("--set", s)]


def _suite(out: Path, *extra: str):
    return tiny_smoke(out, *extra)


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
    from gan_bench.models.base import activation_bytes_per_sample
    from gan_bench.registry import load_builtins

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


# =========================================================================== 3. liveness

def test_an_owner_in_another_pid_space_is_never_judged_by_its_pid():
    """Before: "same host name and pid not visible" was dead, so a worker in another container
    (host networking: same host name, own PID namespace) failed a live worker's trial."""
    from gan_bench.procs import owner_dead_here, owner_state, owner_token, pid_space

    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert owner_token() == f"{host}:{pid_space()}:{os.getpid()}"
    assert owner_state(owner_token()) == "alive"
    assert owner_dead_here(f"{host}:{pid_space()}:{gone}")  # this PID space: the pid decides
    assert not owner_dead_here(f"{host}:0badb00t.4026532999:{gone}")  # another namespace
    assert not owner_dead_here(f"{host}:{gone}")  # a token without its space: heartbeat only
    assert not owner_dead_here(f"elsewhere:{pid_space()}:{gone}")


def test_an_mlflow_run_of_a_live_worker_in_another_namespace_is_not_closed(tmp_path):
    from gan_bench.tracking import HEARTBEAT_TAG, OWNER_TAG, Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e")
    run = tracker.start_run("other container")
    run.set_tags({OWNER_TAG: f"{socket.gethostname()}:0badb00t.4026532999:999999",
                  HEARTBEAT_TAG: f"{time.time():.0f}"})
    assert tracker.close_orphans() == 0
    run.set_tags({HEARTBEAT_TAG: f"{time.time() - 3600:.0f}"})  # silent for an hour: dead
    assert tracker.close_orphans() == 1


def test_a_worker_whose_trial_was_taken_stops_it_cleanly(tmp_path, monkeypatch):
    """Before: worker 0 crashed with UpdateFinishedTrialError (exit 1) and left an MLflow run
    RUNNING once another worker had failed its trial. Now the trial stops, its MLflow run ends
    KILLED with state `taken`, the queued copy is trained, the budget is met exactly."""
    import optuna

    from gan_bench.study import GanStudy, study_records

    real, taken = GanStudy.report, []

    def report_after_another_worker_took_it(self, ticket, value):
        if not taken:  # another worker (which judged us dead) fails the trial and queues it
            taken.append(ticket.number)
            self.storage.set_trial_user_attr(ticket.trial._trial_id, "fail_reason",
                                             "worker died (heartbeat stale)")
            self.storage.set_trial_state_values(ticket.trial._trial_id,
                                                state=optuna.trial.TrialState.FAIL)
            self._requeue(self.study, self.storage.get_trial(ticket.trial._trial_id))
        return real(self, ticket, value)

    monkeypatch.setattr(GanStudy, "report", report_after_another_worker_took_it)
    out = tmp_path / "run"
    outcome = Runner(_suite(out)).run()
    assert outcome.gans[0].complete + outcome.gans[0].pruned == 2
    records = study_records(f"sqlite:///{out / 'optuna.db'}", "smoke/toy_ns")
    assert [r["state"] for r in records].count("failed") == 1
    retried = [r for r in records if r["user_attrs"].get("retry_of") == taken[0]]
    assert len(retried) == 1 and retried[0]["state"] in ("complete", "pruned")
    searches = _runs(out, "search")
    assert "RUNNING" not in {r.info.status for r in _runs(out)}
    (killed,) = [r for r in searches if r.data.tags.get("state") == "taken"]
    assert killed.info.status == "KILLED" and "ended by another worker" in killed.data.tags["fail_reason"]


def _unshare_or_skip() -> list[str]:
    cmd = ["unshare", "--pid", "--fork", "--mount-proc"]
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed (util-linux): no PID namespace to test in")
    probe = subprocess.run([*cmd, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here (not root?): {probe.stderr.strip()[:120]}")
    return cmd


def test_two_workers_in_different_pid_namespaces_leave_each_other_alone(tmp_path):
    """The audit's case: two workers on one study, same host name, different PID namespaces
    (containers with host networking; `unshare --pid --fork --mount-proc`). Worker A trains a
    long trial inside the namespace; worker B starts meanwhile in this namespace. Before:
    B failed A's live trial (its pid was not visible) and marked its MLflow run orphaned, and
    A crashed. Now both finish the budget, no trial fails, nothing is orphaned."""
    from gan_bench.study import study_records

    unshare = _unshare_or_skip()
    out = tmp_path / "run"
    args = [str(SMOKE), "--plain", "--no-estimate", "--no-report", *tiny_args(
        out, "budget.trials=3", "budget.iterations=1500", "budget.eval_every=500",
        "finalists.top=0", "pruner.name=none")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A's pid inside its namespace must be one that no process here has (in a container it
    # is some small number that may or may not exist on the host): set the namespace's last
    # pid so that A gets a pid that is free in this namespace.
    from gan_bench.procs import pid_alive

    last = int(Path("/proc/sys/kernel/pid_max").read_text()) - 50
    while pid_alive(last + 1):
        last -= 7
    script = (f"echo {last} > /proc/sys/kernel/ns_last_pid && "
              f'"$0" "$@"; exit $?')  # a child of sh: pid last + 1 in the namespace
    a = subprocess.Popen([*unshare, "sh", "-c", script, str(BIN / "gan-bench"), "run", *args,
                          "--worker", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in a.stdout:  # B starts once A's first trial is training
        lines.append(line)
        if "toy_ns trial 0:" in line:
            break
    b = subprocess.run([str(BIN / "gan-bench"), "run", *args, "--worker", "1"],
                       capture_output=True, text=True, env=env, timeout=600)
    rest, _ = a.communicate(timeout=600)
    log_a = "".join(lines) + rest
    assert a.returncode == 0, log_a[-3000:]
    owners = {r["user_attrs"].get("owner") for r in study_records(
        f"sqlite:///{out / 'optuna.db'}", "smoke/toy_ns")}
    assert any(o and o.endswith(f":{last + 1}") for o in owners), owners  # A ran as that pid
    assert b.returncode == 0, (b.stdout + b.stderr)[-3000:]
    records = study_records(f"sqlite:///{out / 'optuna.db'}", "smoke/toy_ns")
    assert [r["state"] for r in records].count("failed") == 0, records
    assert sum(r["state"] in ("complete", "pruned") for r in records) == 3
    tags = [r.data.tags.get("state") for r in _runs(out)]
    assert "orphaned" not in tags and "taken" not in tags
    assert "RUNNING" not in {r.info.status for r in _runs(out)}


def test_two_workers_publishing_the_summary_at_once_both_succeed(run_copy, tmp_path, monkeypatch):
    """Before: the worker that published second deleted the first one's summary run while it
    was being written ("run must be in the 'active' state. Current state is deleted"). Here the
    second publish runs in the middle of the first (deterministically, from inside its table
    logging); both succeed, one summary run remains, its table has one row per GAN."""
    import json

    from gan_bench.report import collect, write_files
    from gan_bench.report.publish import publish_summary
    from gan_bench.tracking import RunHandle

    data = collect(run_copy, ladder_rows=False)
    report = write_files(data, tmp_path / "rep")
    uri = f"sqlite:///{run_copy / 'mlflow.db'}"
    real, ids, nested = RunHandle.log_table, [], []

    def log_table_while_the_other_worker_publishes(self, table, name):
        if not nested:
            nested.append(True)
            ids.append(publish_summary(uri, data, report))  # the other worker, finishing now
        return real(self, table, name)

    monkeypatch.setattr(RunHandle, "log_table", log_table_while_the_other_worker_publishes)
    ids.append(publish_summary(uri, data, report))
    summaries = _runs(run_copy, "summary")
    assert len(summaries) == 1 and ids == [summaries[0].info.run_id] * 2
    assert summaries[0].info.status == "FINISHED"
    table = json.loads((run_artifact_dir(run_copy, summaries[0]) / "leaderboard.json").read_text())
    assert [row[0] for row in table["data"]] == ["toy_ns"]  # replaced, not appended
    logged = json.loads(summaries[0].data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "leaderboard.json", "type": "table"}]


# =========================================================================== 4. signals

SWALLOW_IN_MODEL_LOGGING = """
import os, signal, sys, time
from gan_bench import tracking
real = tracking.RunHandle._log_module
def logged_by_a_library_that_swallows_interrupts(self, *a, **k):
    try:  # what some library code in MLflow's model logging does with a KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    except BaseException:
        pass
    return real(self, *a, **k)
tracking.RunHandle._log_module = logged_by_a_library_that_swallows_interrupts
from gan_bench.cli import main
sys.argv = ["gan-bench", *sys.argv[1:]]
main()
"""

SWALLOW_IN_REPORT = """
import os, signal, sys, time
import gan_bench.report as report
real = report.write_report
class Finalizer:
    def __del__(self):  # the signal arrives while a finalizer runs: "Exception ignored"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
def write_report(*a, **k):
    Finalizer()
    return real(*a, **k)
report.write_report = write_report
from gan_bench.cli import main
sys.argv = ["gan-bench", *sys.argv[1:]]
main()
"""


def _driver(tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "driver.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_ctrl_c_swallowed_while_a_generator_is_logged_still_stops_the_run(tmp_path):
    """Before: the run trained the rest of the suite and exited 0 (2 of 2 tries in the audit).
    Now: exit 130, the finalist in flight KILLED (state interrupted), nothing after it trained,
    and the same command finishes the budget."""
    out = tmp_path / "run"
    args = ["run", str(SMOKE), "--plain", "--no-estimate", "--no-report", *tiny_args(out)]
    done = _driver(tmp_path, SWALLOW_IN_MODEL_LOGGING, *args)
    assert done.returncode == 130, done.stdout[-2000:] + done.stderr[-2000:]
    assert "interrupted:" in done.stderr and "Traceback" not in done.stderr
    finals = _runs(out, "final")
    assert [(r.info.status, r.data.tags.get("state")) for r in finals] == [("KILLED", "interrupted")]
    rerun = subprocess.run([str(BIN / "gan-bench"), *args], capture_output=True, text=True,
                           timeout=600, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sorted(r.data.params["seed"] for r in _runs(out, "final")
                  if r.info.status == "FINISHED") == ["1000", "1001"]


def test_ctrl_c_swallowed_while_the_report_is_written_exits_130(done_run, tmp_path):
    """Before: "Exception ignored ... KeyboardInterrupt", then exit 0."""
    done = _driver(tmp_path, SWALLOW_IN_REPORT, "report", str(done_run), "--out",
                   str(tmp_path / "rep"))
    assert done.returncode == 130, done.stdout[-2000:] + done.stderr[-2000:]
    assert "interrupted:" in done.stderr


def _ui(out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`gan-bench ui OUT --port 0` as a subprocess, once it prints its URL: (process, URL)."""
    proc = subprocess.Popen([str(BIN / "gan-bench"), "ui", str(out), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("MLflow UI: "):
            return proc, line.split()[2]
    proc.wait(30)
    pytest.fail(f"gan-bench ui printed no URL: {proc.stderr.read()[-2000:]}")


def _answers(url: str) -> bool:
    import urllib.request

    base = url.split("/#")[0]
    try:
        with urllib.request.urlopen(base + "/health", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_ui_takes_its_server_down_on_sigterm_and_sighup(done_run, sig):
    """Before: SIGTERM killed `gan-bench ui` and left its `mlflow server` serving the port."""
    proc, url = _ui(done_run)
    assert _answers(url)
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(30) == 130
    assert not _answers(url)
    # no process of the server's group is left (it ran in its own session)
    left = subprocess.run(["pgrep", "-f", f"--backend-store-uri sqlite:///{done_run}"],
                          capture_output=True, text=True).stdout.split()
    assert left == []


def test_ui_on_a_port_in_use_or_an_unknown_host_is_one_line(done_run, monkeypatch, capsys):
    """Before: exit 1 and eight lines of the server's log."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = gan_bench(monkeypatch, capsys, "ui", str(done_run), "--port", str(port))
        assert code == 2 and f"--port {port}: 127.0.0.1:{port} is in use" in one_error_line(err)
    code, out, err = gan_bench(monkeypatch, capsys, "ui", str(done_run), "--host",
                               "no-such-host.invalid", "--port", "0")
    assert code == 2 and "--host no-such-host.invalid: not a host" in one_error_line(err)


# =========================================================================== 5. one line each
# (the decompression-bomb PNG is a row of tests/test_score_cli.py's BAD table)

def test_a_cache_path_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    """Before: FileExistsError traceback."""
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "cache"))
    code, out, err = gan_bench(monkeypatch, capsys, "data", "info", "mnist")
    line = one_error_line(err)
    assert code == 2 and f"GAN_BENCH_CACHE={tmp_path / 'cache'}: is a file, not a folder" in line


def _mount_or_skip(*args: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a filesystem needs root and mount(8)")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()[:160]}")


def test_report_reads_a_finished_store_on_a_read_only_mount(done_run, tmp_path, monkeypatch, capsys):
    """Before: "unable to open database file" (sqlite wants to write its -shm beside a WAL
    store, even to read it). Reading needs no write: the report reads a snapshot."""
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    shutil.copytree(done_run, src / "run")
    mnt.mkdir()
    _mount_or_skip("--bind", str(src), str(mnt))
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        with pytest.raises(OSError):
            (mnt / "run" / "probe").write_text("")  # truly read-only
        code, out, err = gan_bench(monkeypatch, capsys, "report", str(mnt / "run"), "--out",
                                   str(tmp_path / "rep"))
        assert code == 0, err
        assert "toy_ns" in (tmp_path / "rep" / "leaderboard.md").read_text()
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=False)


def test_a_full_disk_is_one_line_and_the_rerun_completes(tmp_path):
    """Before: 4,222 stderr lines with 152 tracebacks (MLflow's logged retries) before the last
    line. Now one line naming the folder; after freeing space the same command completes."""
    out_fs = tmp_path / "fs"
    out_fs.mkdir()
    out = out_fs / "run"
    args = [str(BIN / "gan-bench"), "run", str(SMOKE), "--plain", "--no-estimate", "--no-report",
            *tiny_args(out)]
    for size in ("2m", "1m"):  # small enough that this suite's stores fill it on the way
        _mount_or_skip("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(out_fs))
        try:
            full = subprocess.run(args, capture_output=True, text=True, timeout=600)
            if full.returncode != 0:
                break
        finally:
            if full.returncode == 0:
                subprocess.run(["umount", "--lazy", str(out_fs)], check=False)
    try:
        assert full.returncode == 1, full.stderr[-3000:]
        assert full.stderr.count("\n") == 1, full.stderr[-3000:]
        assert full.stderr.startswith(f"error: {out}: the disk is full")
        assert "run the same command again to resume" in full.stderr
        subprocess.run(["mount", "-o", "remount,size=300m", str(out_fs)], check=True)
        rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        finals = [r for r in _runs(out, "final") if r.info.status == "FINISHED"]
        assert sorted(r.data.params["seed"] for r in finals) == ["1000", "1001"]
    finally:
        subprocess.run(["umount", "--lazy", str(out_fs)], check=False)


class _Proxy:
    """A TCP proxy 127.0.0.1:<port> -> PostgreSQL; `cut()` closes it and every connection,
    as a network failure or a restarted database would."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(64)
        self.port, self.conns, self.alive = self.server.getsockname()[1], [], True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.alive:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", 5432))
            except OSError:
                return
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.alive = False
        try:  # a plain close() leaves the kernel socket listening while accept() blocks on it
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_a_lost_database_connection_is_one_line_and_the_rerun_resumes(tmp_path):
    """Before: a 1,645-line traceback, exit 1. The Optuna storage is PostgreSQL behind a proxy
    that is cut while the first trial trains."""
    import uuid

    from gan_bench.study import study_records

    pytest.importorskip("psycopg2")
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError:
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")
    proxy = _Proxy()
    name = f"lost_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://root@127.0.0.1:{proxy.port}/test"
    out = tmp_path / "run"
    args = [str(BIN / "gan-bench"), "run", str(SMOKE), "--plain", "--no-estimate", "--no-report",
            *tiny_args(out, f"name={name}", f"storage={url}", "budget.trials=3",
                       "budget.iterations=1000", "budget.eval_every=250", "finalists.top=0")]
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in run.stdout:
        if "toy_ns trial 0:" in line:
            break
    time.sleep(1)
    proxy.cut()
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1 and err.count("\n") == 1, err[-3000:]
    assert err.startswith(f"error: postgresql+psycopg2://root@127.0.0.1:{proxy.port}/test: lost "
                          "the connection to the Optuna storage")
    assert "run the same command again to resume" in err
    proxy = _Proxy(proxy.port)  # the database answers again
    try:
        rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        records = study_records(url, f"{name}/toy_ns")
        assert sum(r["state"] in ("complete", "pruned") for r in records) == 3
        assert "RUNNING" not in {r.info.status for r in _runs_of(out, name)}
    finally:
        proxy.cut()


def _runs_of(out: Path, experiment: str) -> list:
    client = _client(out)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000)
