"""Ctrl-C, SIGTERM and SIGHUP stop any gan-bench command with exit code 130, at any point.

Python raises KeyboardInterrupt wherever the main thread happens to be when the signal arrives,
and some places swallow it: a library's `except BaseException`, an object's `__del__` or a
weakref callback ("Exception ignored in ... KeyboardInterrupt"). The audit saw both: Ctrl-C
while a finalist's generator was logged as an MLflow model trained the rest of the suite and
exited 0, and Ctrl-C while the report was written exited 0. So the handler also remembers the
signal, and `check()` raises again at the runner's safe points (every logged iteration, before
each trial and finalist, after a finalist's artifacts) and when a command returns: a swallowed
interrupt delays the stop by at most one step, it never cancels it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["installed", "check", "received", "SIGNALS"]

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                if s is not None)
_received: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt and are remembered;
    the previous handlers come back after it (main thread only; elsewhere a no-op)."""
    global _received
    _received = None
    try:
        previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def received() -> int | None:
    """The signal number received since `installed()` began, or None."""
    return _received


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived (even one whose exception was swallowed)."""
    if _received is not None:
        raise KeyboardInterrupt(signal.Signals(_received).name)
