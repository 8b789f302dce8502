"""docker/compose.yaml describes the topology tests/test_topology.py runs natively, so the file
cannot rot unseen: services, entry points, flags, environment, healthchecks, volumes; and
`docker-compose config -q` accepts it (where docker-compose is installed). The templates
beyond one host (Kubernetes, SLURM) are checked as far as they can be here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_topology import TOPOLOGY

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
TEST = yaml.safe_load((DOCKER / "compose.test.yaml").read_text())
SERVICES = COMPOSE["services"]


def _env(service: dict) -> dict:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_the_services_of_the_topology_are_there():
    assert set(SERVICES) >= {"postgres", "migrate", "mlflow", "worker"}


@pytest.mark.parametrize("name", ["migrate", "mlflow", "worker"])
def test_each_service_runs_what_the_native_topology_runs(name):
    service, want = SERVICES[name], TOPOLOGY[name]
    if "entrypoint" in want:
        assert service["entrypoint"] == want["entrypoint"]
    words = [str(w) for w in service.get("command", [])]
    for flag in [*want.get("flags", []), *want.get("command", [])]:
        assert flag in words, f"{name}: {flag} missing from {words}"
    assert set(want["env"]) <= set(_env(service)), set(want["env"]) - set(_env(service))


def test_the_mlflow_server_serves_artifacts_behind_auth_without_job_workers():
    words = [str(w) for w in SERVICES["mlflow"]["command"]]
    assert words[words.index("--app-name") + 1] == "basic-auth"
    assert "--allowed-hosts" in words and "mlflow" in words[words.index("--allowed-hosts") + 1]
    assert _env(SERVICES["mlflow"])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert any(str(v).endswith(":/home/gan/mlartifacts") for v in SERVICES["mlflow"]["volumes"])


def test_order_health_and_storage():
    assert "healthcheck" in SERVICES["postgres"] and "healthcheck" in SERVICES["mlflow"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["mlflow"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    assert SERVICES["worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "ports" not in SERVICES["postgres"]  # reached by the services only
    assert {"pgdata", "mlartifacts"} <= set(COMPOSE["volumes"])


def test_workers_are_identical_and_carry_no_index_or_secret():
    worker = SERVICES["worker"]
    assert "container_name" not in worker  # --scale worker=N needs unnamed containers
    env = _env(worker)
    assert env["GAN_BENCH_TRACKING_URI"] == "http://mlflow:5000"
    for value in env.values():  # secrets are interpolated from the env file, never literal
        assert "change-me" not in str(value)


def test_the_test_override_uses_host_networking_and_free_ports():
    for name, service in TEST["services"].items():
        assert service.get("network_mode") == "host", name
    words = " ".join(str(w) for s in TEST["services"].values()
                     for w in [*s.get("command", []), *_env(s).values()])
    assert ":5432/" not in words and ":6379" not in words  # the machine's own servers
    assert "127.0.0.1" in words


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed (apt-get install docker-compose)")
@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.test.yaml"]])
def test_docker_compose_accepts_the_files(files):
    args = [a for f in files for a in ("-f", str(DOCKER / f))]
    done = subprocess.run(["docker-compose", *args, "--env-file", str(DOCKER / "env.example"),
                           "config", "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_kubernetes_job_is_an_indexed_job_of_the_worker_image():
    docs = [d for d in yaml.safe_load_all((DOCKER / "k8s" / "workers-job.yaml").read_text()) if d]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["apiVersion"] == "batch/v1" and job["spec"]["completionMode"] == "Indexed"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "JOB_COMPLETION_INDEX" in env["GAN_BENCH_WORKER"]["value"]
    assert container["args"][0] == "run" and container["args"][1].startswith("/opt/gan-bench/suites/")
    for name in ("GAN_BENCH_STORAGE", "MLFLOW_TRACKING_PASSWORD"):
        assert "secretKeyRef" in env[name]["valueFrom"]


def test_the_slurm_array_script_is_valid_shell_and_sets_the_worker_index():
    script = DOCKER / "slurm" / "workers.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "#SBATCH --array=" in text and "GAN_BENCH_WORKER=${SLURM_ARRAY_TASK_ID}" in text
