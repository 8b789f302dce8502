"""Which process owns a trial or a run, and is it still alive (shared by study.py and
tracking.py, which must not import each other's libraries); what CPU this machine has."""

from __future__ import annotations

import os
import platform
import socket

__all__ = ["owner_token", "pid_alive", "owner_dead_here", "cpu_model"]


def owner_token() -> str:
    """"host:pid" of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    if pid <= 0:  # os.kill(0, ...) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def owner_dead_here(owner: str | None) -> bool:
    """True when `owner` ("host:pid") is a process on this host that no longer runs."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model
