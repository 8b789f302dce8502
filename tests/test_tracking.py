"""MLflow tracking on throwaway sqlite stores: experiments, nesting, logging, orphans, races."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_bench import tracking
from gan_bench.errors import GanBenchError
from gan_bench.procs import pid_space
from gan_bench.tracking import (
    HEARTBEAT_TAG,
    OWNER_TAG,
    PARENT_TAG,
    RUN_NAME_TAG,
    RunHandle,
    Tracker,
    TrackingError,
    default_tracking_uri,
    git_sha,
    ui_command,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ME = f"{socket.gethostname()}:{pid_space()}:{os.getpid()}"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """One sqlite store for the module: creating a fresh one costs 1-2 s of CPU."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def uri(store_dir):
    return default_tracking_uri(store_dir)


@pytest.fixture(scope="module")
def tracker(uri):
    return Tracker(uri, "suite")


def one_run(tracker: Tracker, run_id: str) -> dict:
    (run,) = [r for r in tracker.find_runs() if r["run_id"] == run_id]
    return run


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    return proc.pid


def test_uri_helpers_and_git_sha(tmp_path):
    uri = default_tracking_uri(tmp_path / "out dir")
    assert uri == "sqlite:///" + str(tmp_path / "out%20dir" / "mlflow.db")
    assert uri.startswith("sqlite:////")
    assert ui_command("sqlite:////a b/mlflow.db") == \
        "mlflow ui --backend-store-uri 'sqlite:////a b/mlflow.db'"
    assert ui_command(uri) == f"mlflow ui --backend-store-uri {uri}"
    assert ui_command(uri, tmp_path / "out dir") == f"gan-bench ui '{tmp_path / 'out dir'}'"
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", git_sha())


def test_git_sha_is_dirty_for_code_changes_only(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmark").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "benchmark" / "code.py").write_text("x = 1\n")
    (tmp_path / "reports" / "r.md").write_text("old\n")
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    clean = git_sha(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,40}", clean)
    (tmp_path / "reports" / "r.md").write_text("regenerated\n")  # a report: still clean
    assert git_sha(tmp_path) == clean
    (tmp_path / "benchmark" / "code.py").write_text("x = 2\n")  # code: dirty
    assert git_sha(tmp_path) == clean + "-dirty"


def test_import_gan_bench_does_not_import_mlflow():
    code = "import sys, gan_bench; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_experiment_get_or_create_keeps_artifacts_out_of_cwd(tracker, store_dir, tmp_path,
                                                            monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # A copy of a migrated db is a new store (built in this cwd) without the migration cost.
    (tmp_path / "out").mkdir()
    db = tmp_path / "out" / "mlflow.db"
    with closing(sqlite3.connect(store_dir / "mlflow.db")) as src, \
            closing(sqlite3.connect(db)) as dst:
        src.backup(dst)
    uri = default_tracking_uri(tmp_path / "out")
    first = Tracker(uri, "cwd-suite", tags={"suite": "toy"})
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    second = Tracker(uri, "cwd-suite", tags={"note": "rerun"})
    assert first.experiment_id == second.experiment_id
    exp = first.client.get_experiment(first.experiment_id)
    # portable: the URI names no folder; this process keeps the files under <db folder>/mlartifacts
    assert exp.artifact_location == "mlflow-artifacts:/cwd-suite"
    assert exp.tags["suite"] == "toy" and exp.tags["note"] == "rerun"

    with first.start_run("r", parent_id=None) as run:
        run.log_json({"a": 1}, "config.json")
    stored = tmp_path / "out" / "mlartifacts" / "cwd-suite" / run.run_id / "artifacts" / "config.json"
    assert json.loads(stored.read_text()) == {"a": 1}
    assert not (cwd / "mlruns").exists() and not (cwd / "mlartifacts").exists()
    assert list(cwd.iterdir()) == []

    other = Tracker(uri, "suite-b", artifact_root=tmp_path / "arts")
    assert other.experiment_id != first.experiment_id
    assert (other.client.get_experiment(other.experiment_id).artifact_location
            == (tmp_path / "arts").as_uri())


def test_parent_run_is_reused_and_children_nest(tracker):
    space = {"space": {"lr": [1e-5, 1e-3]}, "n_trials": 8}
    parent = tracker.parent_run("study-a", "dcgan", tags={"gan": "dcgan"}, params=space)
    assert tracker.parent_run("study-a", "dcgan", tags={"gan": "dcgan"}, params=space) == parent
    assert tracker.parent_run("study-b", "wgan") != parent
    with pytest.raises(TrackingError):  # params are immutable: a changed one is an error
        tracker.parent_run("study-a", "dcgan", params={"n_trials": 9})
    assert len(tracker.find_runs(f"tags.`{tracking.KEY_TAG}` = 'study-a'")) == 1

    child = tracker.start_run("trial-0", parent_id=parent, tags={"trial": 0},
                              params={"opt": {"lr": 1e-4, "betas": (0.5, 0.999)}, "k": 1})
    record = one_run(tracker, child.run_id)
    assert record["params"] == {"opt.lr": "0.0001", "opt.betas": "(0.5, 0.999)", "k": "1"}
    assert record["tags"][PARENT_TAG] == parent == child.parent_id
    assert record["tags"][RUN_NAME_TAG] == "trial-0" == record["name"]
    assert record["tags"][OWNER_TAG] == ME
    assert record["tags"]["trial"] == "0"
    assert record["status"] == "RUNNING" and record["end_time"] is None
    parent_record = one_run(tracker, parent)
    assert parent_record["params"] == {"space.lr": "[1e-05, 0.001]", "n_trials": "8"}
    assert parent_record["tags"]["gan"] == "dcgan"
    child.end()


def test_many_and_long_params(tracker):
    run = tracker.start_run("params", params={f"p{i}": i for i in range(250)})
    run.log_params({"long": "x" * 7000})
    params = one_run(tracker, run.run_id)["params"]
    assert len(params) == 251 and params["p249"] == "249"
    assert len(params["long"]) == 6000 and params["long"].endswith("[truncated]")
    full = tracker.client.download_artifacts(run.run_id, "params/long.txt")
    assert Path(full).read_text() == "x" * 7000
    run.end()


def test_failed_params_end_the_new_run(tracker):
    with pytest.raises(TrackingError, match="bad key!"):
        tracker.start_run("bad-params", params={"bad key!": 1})
    (record,) = tracker.find_runs("attributes.run_name = 'bad-params'")
    assert record["status"] == "FAILED" and "bad key!" in record["tags"]["error"]


def test_metrics_history_and_non_finite_skipped(tracker):
    run = tracker.start_run("metrics")
    for step in range(5):
        run.log_metrics({"loss_d": 1.0 / (step + 1), "loss_g": float("nan"),
                         "fid": np.float32(step)}, step=step * 10)
    run.log_metrics({"loss_g": float("inf")}, step=50)
    steps, values = zip(*tracker.metric_history(run.run_id, "loss_d"))
    assert steps == (0, 10, 20, 30, 40)
    assert values == pytest.approx([1.0 / (s + 1) for s in range(5)])
    assert tracker.metric_history(run.run_id, "loss_g") == []
    assert one_run(tracker, run.run_id)["metrics"] == pytest.approx({"loss_d": 0.2, "fid": 4.0})
    run.end()


def test_log_image_and_json(tracker, tmp_path):
    run = tracker.start_run("artifacts")
    gray = np.arange(80, dtype=np.uint8).reshape(8, 10)
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
    run.log_image(gray, "samples/gray.png")
    run.log_image(rgb, "samples/rgb")
    run.log_image(gray[..., None], "one_channel.png")
    config = {"arch": "dcgan", "nz": 100, "out": tmp_path, "betas": [0.5, 0.999]}
    run.log_json(config, "config")
    with pytest.raises(ValueError, match="uint8"):
        run.log_image(gray.astype(np.float32), "bad.png")

    listed = sorted(f.path for f in tracker.client.list_artifacts(run.run_id, "samples"))
    assert listed == ["samples/gray.png", "samples/rgb.png"]
    for name, expected in [("samples/gray.png", gray), ("samples/rgb.png", rgb),
                           ("one_channel.png", gray)]:
        path = Path(tracker.client.download_artifacts(run.run_id, name, str(tmp_path)))
        assert path.read_bytes()[:8] == PNG_MAGIC
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)
    path = tracker.client.download_artifacts(run.run_id, "config.json", str(tmp_path))
    assert json.loads(Path(path).read_text()) == {**config, "out": str(tmp_path)}
    run.end()


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_end_status_is_idempotent(tracker, status):
    run = tracker.start_run(f"end-{status}")
    run.end(status, {"reason": "test"})
    run.end("FINISHED", {"reason": "ignored"})
    record = one_run(tracker, run.run_id)
    assert record["status"] == status and run.ended
    assert record["tags"]["reason"] == "test"
    assert record["end_time"] >= record["start_time"]


def test_end_rejects_unknown_status(tracker):
    run = tracker.start_run("bad-status")
    with pytest.raises(ValueError, match="FINISHED, FAILED, KILLED"):
        run.end("DONE")
    run.end()


def test_context_manager_statuses(tracker):
    with tracker.start_run("ok") as ok:
        ok.heartbeat()
    with pytest.raises(RuntimeError):
        with tracker.start_run("boom") as boom:
            raise RuntimeError("boom\n  second line")
    with pytest.raises(KeyboardInterrupt):
        with tracker.start_run("ctrl-c") as ctrl_c:
            raise KeyboardInterrupt
    with pytest.raises(ValueError):
        with tracker.start_run("pruned") as pruned:
            pruned.end("KILLED", {"state": "pruned"})
            raise ValueError("after the end")

    assert one_run(tracker, ok.run_id)["status"] == "FINISHED"
    failed = one_run(tracker, boom.run_id)
    assert (failed["status"], failed["tags"]["error"]) == ("FAILED",
                                                           "RuntimeError: boom second line")
    killed = one_run(tracker, ctrl_c.run_id)
    assert (killed["status"], killed["tags"]["state"]) == ("KILLED", "interrupted")
    kept = one_run(tracker, pruned.run_id)
    assert (kept["status"], kept["tags"]["state"]) == ("KILLED", "pruned")
    assert "error" not in kept["tags"]


def test_close_orphans(uri):
    tracker = Tracker(uri, "orphans")
    stale = f"{time.time() - 1000:.0f}"
    dead = tracker.start_run("dead-pid")
    dead.set_tags({OWNER_TAG: f"{socket.gethostname()}:{pid_space()}:{dead_pid()}"})
    tracker.start_run("live")  # this process, alive: never closed
    far_stale = tracker.start_run("other-host-stale")
    far_stale.set_tags({OWNER_TAG: "elsewhere:1", HEARTBEAT_TAG: stale})
    far_fresh = tracker.start_run("other-host-fresh")
    far_fresh.set_tags({OWNER_TAG: "elsewhere:1"})
    tracker.client.create_run(tracker.experiment_id, run_name="not-gan-bench")
    # A parent whose owner died is alive while a live child works under it.
    parent = tracker.parent_run("study", "study")
    RunHandle(tracker, parent).set_tags({OWNER_TAG: f"{socket.gethostname()}:{pid_space()}:{dead_pid()}"})
    child = tracker.start_run("trial", parent_id=parent)

    assert tracker.close_orphans() == 2
    status = {r["name"]: (r["status"], r["tags"].get("state")) for r in tracker.find_runs()}
    assert status == {"dead-pid": ("FAILED", "orphaned"), "live": ("RUNNING", None),
                      "other-host-stale": ("FAILED", "orphaned"),
                      "other-host-fresh": ("RUNNING", None),
                      "not-gan-bench": ("RUNNING", None),
                      "study": ("RUNNING", None), "trial": ("RUNNING", None)}
    assert one_run(tracker, far_stale.run_id)["end_time"] == int(stale) * 1000
    assert tracker.close_orphans(heartbeat_timeout=1e9) == 0

    # Once the child is gone too, the parent is an orphan; a rerun takes it back.
    child.set_tags({OWNER_TAG: f"{socket.gethostname()}:{pid_space()}:{dead_pid()}"})
    assert tracker.close_orphans() == 2
    assert one_run(tracker, parent)["status"] == "FAILED"
    assert tracker.parent_run("study", "study") == parent
    resumed = one_run(tracker, parent)
    assert (resumed["status"], resumed["tags"]["state"]) == ("RUNNING", "resumed")
    assert resumed["tags"][OWNER_TAG] == ME
    tracker.finish_parent(parent)
    assert one_run(tracker, parent)["status"] == "FINISHED"
    # A new trial under a finished parent (a second worker still going) takes it back too.
    tracker.start_run("late-trial", parent_id=parent).end()
    assert one_run(tracker, parent)["status"] == "RUNNING"


def test_threads_log_concurrently(uri):
    tracker = Tracker(uri, "threads")
    parent = tracker.parent_run("study", "study")
    run_ids: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with tracker.start_run(f"trial-{i}", parent_id=parent, params={"i": i}) as run:
                run_ids.append(run.run_id)
                for step in range(50):
                    run.log_metrics({"loss": i + step / 100, "fid": float(step)}, step)
                    if step % 10 == 0:
                        run.heartbeat()
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for run_id in run_ids:
        i = int(one_run(tracker, run_id)["params"]["i"])
        steps, values = zip(*tracker.metric_history(run_id, "loss"))
        assert steps == tuple(range(50))
        assert values == pytest.approx([i + s / 100 for s in range(50)])
        assert len(tracker.metric_history(run_id, "fid")) == 50
    children = tracker.find_runs(f"tags.`{PARENT_TAG}` = '{parent}'")
    assert sorted(r["name"] for r in children) == [f"trial-{i}" for i in range(4)]
    assert {r["status"] for r in children} == {"FINISHED"}


RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gan_bench.tracking import Tracker
    uri, me, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    me.touch()
    deadline = time.time() + 60
    while not other.exists() and time.time() < deadline:
        time.sleep(0.005)
    tracker = Tracker(uri, "suite")
    print(tracker.experiment_id, tracker.parent_run("study", "study", params={"k": 1}))
""")


def test_two_processes_share_experiment_and_parent(tmp_path):
    """This process and another start on one fresh store at once: one experiment, one parent.

    The store is new, so both also race to create MLflow's tables (unguarded in MLflow itself).
    """
    uri = default_tracking_uri(tmp_path / "out")
    ours, theirs = tmp_path / "ours.ready", tmp_path / "theirs.ready"
    proc = subprocess.Popen([sys.executable, "-c", RACE, uri, str(theirs), str(ours)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not theirs.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)  # until its imports are done
    ours.touch()
    tracker = Tracker(uri, "suite")
    parent = tracker.parent_run("study", "study", params={"k": 1})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.split() == [tracker.experiment_id, parent]
    assert [r["run_id"] for r in tracker.find_runs()] == [parent]
    # A fresh db logs its alembic migrations at INFO; they are silenced.
    assert "alembic" not in err and "Creating initial" not in err, err


def test_locked_store_is_retried_then_reported(monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

    calls = []

    def flaky(fail_times: int):
        calls.append(1)
        if len(calls) <= fail_times:
            raise MlflowException("(sqlite3.OperationalError) database is locked",
                                  error_code=TEMPORARILY_UNAVAILABLE)
        return "ok"

    assert tracking._call("log", flaky, 3) == "ok" and len(calls) == 4
    monkeypatch.setattr(tracking, "RETRY_SECONDS", 0.3)
    calls.clear()
    started = time.monotonic()
    with pytest.raises(TrackingError, match="could not log: .*database is locked") as info:
        tracking._call("log", flaky, 10**6)
    assert 0.3 <= time.monotonic() - started < 2.0 and len(calls) > 2
    assert isinstance(info.value, GanBenchError)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"

    def invalid():
        raise MlflowException("bad key", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(TrackingError, match="bad key") as info:
        tracking._call("log", invalid)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
