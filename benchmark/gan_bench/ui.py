"""`gan-bench ui`: the MLflow UI on a suite's stores, opened on gan-bench's runs view
(views.py decides what the runs are called and what the view shows)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gan_bench.stores import default_tracking_uri
from gan_bench.views import VIEW_KEY, describe

if TYPE_CHECKING:
    from gan_bench.config import Suite

__all__ = ["experiment_url", "serve", "server_command", "tour"]

# ----------------------------------------------------------------------------- gan-bench ui

def experiment_url(base: str, experiment_id: str, views: bool = True) -> str:
    """The experiment's runs table in Model training mode (MLflow 3 opens experiments in its
    GenAI mode otherwise), with gan-bench's view when `views`."""
    query = "workflowType=machine_learning" + (f"&viewStateShareKey={VIEW_KEY}" if views else "")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listen_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (unknown host, port in use), or None:
    asked before `mlflow server` starts, whose own failure is eight lines of log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"--host {host}: not a host name or address of this machine ({exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"--port {port}: {host}:{port} is in use (stop what listens there, or "
                        "pass --port 0 for a free port)")
            return f"--host {host}: cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    from gan_bench.errors import GanBenchError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GanBenchError(f"mlflow server exited with code {proc.returncode} before it "
                                f"answered: {_last_line(log)} (its log: {log})")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise GanBenchError(f"mlflow server did not answer {base}/health within {timeout:.0f} s "
                        f"(its log: {log})")


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def tour(url: str, uri: str, suite: Suite, out_dir: Path) -> list[Path]:
    """Screenshots of the suite in the UI (ui_tour.screenshot_tour) into `out_dir`: the first
    GAN expanded, its first finished search trial's metrics, its parent's overview."""
    from gan_bench.tracking import Tracker
    from gan_bench.ui_tour import screenshot_tour

    reader = Tracker(uri, suite.name, read_only=True)
    parents = reader.find_runs("tags.stage = 'study'")
    gan = suite.resolved_gans()[0].name
    parent = next(r for r in parents if r["tags"].get("gan") == gan)
    trials = reader.find_runs(f"tags.stage = 'search' and tags.gan = '{gan}' and "
                              "attributes.status = 'FINISHED'")
    return screenshot_tour(url, Path(out_dir), gan, {"parent": parent["run_id"],
                                                      "trial": trials[-1]["run_id"]})


def _describe_if_missing(uri: str, suite: Suite) -> None:
    """A store made before gan-bench described its experiment (or by another tool) opens in
    Model training mode with the summary view too: its experiment tags are set once."""
    from gan_bench.tracking import KIND_TAG, Tracker

    reader = Tracker(uri, suite.name, read_only=True)
    tags = reader.experiment_tags()
    if KIND_TAG in tags:
        return
    runs = reader.find_runs("tags.stage = 'study'", max_results=1)
    command = (runs[0]["tags"].get("mlflow.source.name") or runs[0]["tags"].get("command")
               if runs else None) or "gan-bench run"
    describe(Tracker(uri, suite.name), suite, command)


def server_command(out: Path, host: str, port: int) -> list[str]:
    """`mlflow server` on a run folder's store, serving `mlflow-artifacts:` URIs from its
    `mlartifacts/` folder (wherever the folder is now)."""
    from gan_bench.tracking import ARTIFACTS_FOLDER

    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [mlflow_bin, "server", "--backend-store-uri", default_tracking_uri(out),
            "--artifacts-destination", str((out / ARTIFACTS_FOLDER).resolve()),
            "--host", host, "--port", str(port), "--workers", "1"]


def serve(source: str | Path, *, host: str = "127.0.0.1", port: int = 5000,
          timeout: float = 120.0, announce: Callable[[str], object] = print,
          then: Callable[[str, str], object] | None = None) -> int:
    """Start the MLflow UI on a suite's store, print the experiment's URL, wait for Ctrl-C
    (SIGTERM and SIGHUP too: gan-bench's main turns them into KeyboardInterrupt, and the
    server's process group is stopped on the way out, never left serving the port).

    Job execution off (MLflow 3's job workers take ~2.4 GB and a benchmark store has no jobs);
    a remote tracking URI is not served here: its URL is printed. `then(url, uri)`: called
    once the server answers, after which the server stops (screenshots).
    """
    from gan_bench.errors import UserInputError
    from gan_bench.report.collect import resolve_source
    from gan_bench.tracking import Tracker

    suite, out = resolve_source(source)
    if suite.tracking_uri and not suite.tracking_uri.startswith("sqlite:"):
        if suite.tracking_uri.startswith(("http://", "https://")):
            exp = Tracker(suite.tracking_uri, suite.name, read_only=True).experiment_id
            announce(f"MLflow UI: {experiment_url(suite.tracking_uri, exp)} (already served)")
            return 0
        raise UserInputError(f"{suite.tracking_uri}: gan-bench ui serves a local sqlite store "
                             "only; start `mlflow server` on this store yourself")
    uri = default_tracking_uri(out)
    exp = Tracker(uri, suite.name, read_only=True).experiment_id
    _describe_if_missing(uri, suite)
    problem = _listen_problem(host, port)
    if problem is not None:
        raise UserInputError(problem)
    port = port or _free_port(host)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = Path(tempfile.mkstemp(prefix="gan-bench-mlflow-server-", suffix=".log")[1])
    with open(log, "wb") as sink:  # the server's own log: read for one line when it fails
        proc = subprocess.Popen(server_command(out, host, port), env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{host}:{port}"
    failed = True
    try:
        _wait_healthy(base, proc, timeout, log)
        announce(f"MLflow UI: {experiment_url(base, exp)}")
        failed = False
        if then is not None:
            then(experiment_url(base, exp), uri)
            return 0
        announce("(Ctrl-C stops the server)")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_server(proc)
        if not failed:
            log.unlink(missing_ok=True)


def _stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (its workers too), SIGKILL after 10 s; the
    signals gan-bench handles are held meanwhile, so a second Ctrl-C cannot cut this short."""
    held = set(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:  # the group is gone already
                break
            try:
                proc.wait(timeout=10)
                _wait_group_gone(proc.pid, 10)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Until no process of group `pgid` is left (a worker may outlive the server briefly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired("mlflow server", timeout)
