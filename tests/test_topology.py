"""The deployed topology, natively: PostgreSQL (a fresh database per store), `mlflow server`
with the PostgreSQL backend, artifact serving and basic auth, and three `gan-bench run` workers
on the smoke suite, one of them SIGKILLed in the middle of a trial.

What must hold (issue 26): complete + pruned trials equal the budget exactly, no finalist is
trained twice, no MLflow run is left RUNNING, every run's artifacts are readable through the
server, `gan-bench report` works from the server alone (a fresh folder, nothing local), an
unauthenticated client is refused and the workers' credentials work. docker/compose.yaml
describes this same topology (tests/test_compose.py checks it against TOPOLOGY below).

Skips, saying why, where no PostgreSQL answers at 127.0.0.1:5432 (a laptop).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_bad_inputs import PG, _postgres  # the one PostgreSQL probe of the tests
from topology_checks import check, wait_running, wait_running_run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER, PASSWORD = "gan-bench", "topology-test-password"  # a test secret, never a default

# What each service runs and reads here, which docker/compose.yaml must match
# (tests/test_compose.py): entry point, flags, environment.
TOPOLOGY = {
    "migrate": {"entrypoint": ["python", "-m", "gan_bench.deploy", "migrate"],
                "env": ["GAN_BENCH_STORAGE", "MLFLOW_BACKEND_STORE_URI"]},
    "mlflow": {"entrypoint": ["python", "-m", "gan_bench.deploy", "mlflow-server"],
               "flags": ["--backend-store-uri", "--app-name", "basic-auth", "--serve-artifacts",
                         "--artifacts-destination", "--host", "--port"],
               "env": ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "MLFLOW_AUTH_CONFIG_PATH",
                       "MLFLOW_AUTH_DATABASE_URI", "MLFLOW_AUTH_ADMIN_USERNAME",
                       "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"]},
    "worker": {"command": ["run", "--worker", "auto", "--plain"],
               "env": ["GAN_BENCH_STORAGE", "GAN_BENCH_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                       "MLFLOW_TRACKING_PASSWORD"]},
}


pytestmark = pytest.mark.skipif(_postgres() is not None, reason=str(_postgres()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def databases():
    """Three fresh databases (Optuna, MLflow, MLflow's auth store), dropped afterwards."""
    import sqlalchemy

    tag = uuid.uuid4().hex[:10]
    names = {kind: f"gb_topo_{tag}_{kind}" for kind in ("optuna", "mlflow", "auth")}
    admin = sqlalchemy.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield {kind: f"{PG}/{name}" for kind, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _deploy(*args: str) -> list[str]:
    return [sys.executable, "-m", "gan_bench.deploy", *args]


@pytest.fixture
def mlflow_server(databases, tmp_path):
    """The migrate step, then `mlflow server` on a free port through gan_bench.deploy (as in
    docker/compose.yaml): PostgreSQL backend, artifact serving, basic auth whose admin is the
    workers' account (MLFLOW_AUTH_ADMIN_* bootstrap it on the first start)."""
    import requests

    migrate = subprocess.run(_deploy("migrate"), capture_output=True, text=True, timeout=300,
                             env={**os.environ, "GAN_BENCH_STORAGE": databases["optuna"],
                                  "MLFLOW_BACKEND_STORE_URI": databases["mlflow"]})
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    port = _free_port()
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth" / "basic_auth.ini"),
           "MLFLOW_AUTH_DATABASE_URI": databases["auth"], "MLFLOW_AUTH_ADMIN_USERNAME": USER,
           "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex}
    log = tmp_path / "mlflow.log"
    args = ["--backend-store-uri", databases["mlflow"], "--app-name", "basic-auth",
            "--serve-artifacts", "--artifacts-destination", str(tmp_path / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(_deploy("mlflow-server", *args), env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _worker_env(databases, url: str) -> dict[str, str]:
    return {**os.environ, "GAN_BENCH_STORAGE": databases["optuna"], "GAN_BENCH_TRACKING_URI": url,
            "MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": PASSWORD,
            "OMP_NUM_THREADS": "1", "GAN_BENCH_HEARTBEAT_S": "2", "GAN_BENCH_GRACE_S": "6"}


@pytest.mark.slow
def test_three_workers_one_killed_against_postgres_and_an_authenticated_server(
        databases, mlflow_server, tmp_path, monkeypatch):
    env = _worker_env(databases, mlflow_server)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)  # this process reads the server too
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    workers = []
    for i in range(3):
        log = open(tmp_path / f"worker{i}.log", "wb")  # noqa: SIM115 - closed below
        cmd = [str(BIN / "gan-bench"), "run", str(ROOT / "suites" / "smoke.yaml"), "--worker",
               "auto", "--plain", "--no-estimate", "--set", f"output_dir={tmp_path / f'w{i}'}"]
        workers.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=tmp_path), log))
    victim = workers[1][0]
    wait_running(databases["optuna"], f":{victim.pid}", timeout=240)
    wait_running_run(mlflow_server, f":{victim.pid}")  # its MLflow run is open too
    victim.kill()  # SIGKILL in the middle of a trial: nothing of it may survive as RUNNING
    for proc, log in workers:
        proc.wait(600)
        log.close()
    for i in (0, 2):
        assert workers[i][0].returncode == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(3))
    assert sorted(int(x) for x in re.findall(r"worker index (\d+) \(--worker auto\)", logs)) \
        == [0, 1, 2]  # three distinct indexes, none set by hand
    check(databases["optuna"], mlflow_server, ROOT / "suites" / "smoke.yaml", tmp_path / "check")
