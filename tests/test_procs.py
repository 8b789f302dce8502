"""procs.pid_alive: a killed worker that its parent has not reaped yet is dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gan_bench.procs import pid_alive


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_a_zombie_is_dead_and_a_live_child_is_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while pid_alive(child.pid):  # killed, not reaped: its pid still answers signals
            assert time.monotonic() < deadline, "a killed, unreaped child still counts as alive"
            time.sleep(0.05)
        os.kill(child.pid, 0)  # the zombie is still there: only its state says it is dead
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(0) and not pid_alive(-1)
