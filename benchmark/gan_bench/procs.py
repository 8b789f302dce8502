"""Which process owns a trial, a claim or a run, and is it still alive (shared by study.py and
tracking.py, which must not import each other's libraries); what CPU this machine has.

An owner is "host:space:pid". `space` names the process-ID space the pid lives in: this boot
of this machine (the kernel's boot id) and the PID namespace (the inode of /proc/self/ns/pid).
Two workers in containers with host networking share the host name but not the PID namespace:
the other's pid is not visible here, and "not visible" is not "dead". So a pid is only checked
when the owner's space is this process's space; any other owner (another host, container or
boot) is alive while its heartbeat is fresh (Optuna's RDB heartbeat, the MLflow run's
`gan_bench.heartbeat` tag, a claim's age). Tokens without a space ("host:pid", stores made
before this) are judged by their heartbeat alone.
"""

from __future__ import annotations

import functools
import os
import platform
import socket

__all__ = ["owner_token", "pid_alive", "owner_state", "owner_dead_here", "pid_space",
           "cpu_model"]


@functools.lru_cache(maxsize=1)
def pid_space() -> str:
    """"<boot id, 8 hex>.<pid namespace inode>" of this process; "" where /proc does not say
    (not Linux): owners are then never judged by pid, only by heartbeat."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip().replace("-", "")[:8]
        return f"{boot}.{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def owner_token() -> str:
    """"host:space:pid" of this process (see the module doc); "host:pid" without a space."""
    space = pid_space()
    return f"{socket.gethostname()}:{space}:{os.getpid()}" if space else \
        f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """The process exists and has not exited: a killed worker whose parent has not reaped it
    yet (a zombie, state Z) is dead, although its pid still answers signals."""
    if pid <= 0:  # os.kill(0, ...) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]  # after "(comm)", which may hold spaces
    except (OSError, IndexError):  # not Linux, or gone in between
        return True
    return state not in ("Z", "X")


def owner_state(owner: str | None) -> str:
    """"alive" or "dead" for an owner whose pid this process can see (same host and PID
    space), "elsewhere" for any other (its heartbeat decides) or a malformed token."""
    if not owner or ":" not in owner:
        return "elsewhere"
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return "elsewhere"  # "host:pid" (no space recorded) or not ours at all
    host, space, pid = parts
    if host != socket.gethostname() or not space or space != pid_space():
        return "elsewhere"
    return "alive" if pid_alive(int(pid)) else "dead"


def owner_dead_here(owner: str | None) -> bool:
    """True when `owner` is a process in this host's and this process's PID space that no
    longer runs; never for owners elsewhere (another host, container or boot)."""
    return owner_state(owner) == "dead"


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
