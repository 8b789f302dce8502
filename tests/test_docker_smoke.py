"""docker/smoke.sh as a test: the real docker run of the deployment (image build, compose up
of PostgreSQL + MLflow + 2 workers on host networking, one worker container SIGKILLed, the
checks of tests/topology_checks.py, teardown).

It runs only with GAN_BENCH_DOCKER_SMOKE=1 and a docker daemon: the image holds PyPI's CUDA
build of torch (6.8 GB), and its first build from wheels takes ~4 min on a 2-core machine
before the ~4 min run, which CI's budget (aim < 20 min for everything) does not hold next
to the test suite. Run it by hand (`sudo docker/smoke.sh`) after changing docker/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[1] / "docker" / "smoke.sh"


def _why_not() -> str | None:
    if os.environ.get("GAN_BENCH_DOCKER_SMOKE") != "1":
        return ("set GAN_BENCH_DOCKER_SMOKE=1 to run: a 6.8 GB image build (~4 min) plus ~4 min "
                "of containers does not fit CI's time budget next to the suite")
    if shutil.which("docker") is None or subprocess.run(
            ["docker", "info"], capture_output=True).returncode != 0:
        return "no docker daemon answers (apt-get install docker.io; start dockerd as root)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))
def test_the_scripted_docker_run_passes():
    done = subprocess.run([str(SMOKE)], capture_output=True, text=True, timeout=3600)
    if done.returncode == 77:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "passed: budget exact" in done.stdout
