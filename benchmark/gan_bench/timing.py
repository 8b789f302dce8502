"""Where a command's wall time goes: seconds per phase, each second counted once.

`LEDGER.phase(name)` charges the time spent inside it to `name`; a phase opened inside another
takes its time from the outer one (an MLflow write inside the final metrics counts as tracking,
not twice), so the phases and "other" add up to the wall time since `LEDGER.reset()`. Only the
thread that called `reset()` is timed: MLflow's system-metrics thread and the like run beside
the main thread, not inside its time.

`gan-bench run` prints `LEDGER.line()` at its end, e.g. "time: training 96 s (65%), ...".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Ledger", "LEDGER"]


class Ledger:
    """Exclusive wall seconds per phase on one thread, since `reset()`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()
        self._thread = threading.get_ident()
        self._open: list[str] = []  # the phases entered, innermost last: only it is counting
        self._since = self._start  # when the innermost phase's current stretch began

    def _switch(self) -> None:
        """Charge the innermost phase up to now; the next stretch starts now."""
        now = time.perf_counter()
        if self._open:
            name = self._open[-1]
            self.seconds[name] = self.seconds.get(name, 0.0) + (now - self._since)
        self._since = now

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if threading.get_ident() != self._thread:
            yield
            return
        self._switch()  # the outer phase stops counting while this one runs
        self._open.append(name)
        try:
            yield
        finally:
            self._switch()
            self._open.pop()

    def total(self) -> float:
        return time.perf_counter() - self._start

    def breakdown(self) -> list[tuple[str, float]]:
        """(phase, seconds), largest first, then "other" (time outside every phase)."""
        rows = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        other = self.total() - sum(self.seconds.values())
        return [*rows, ("other", max(other, 0.0))]

    def line(self) -> str:
        total = self.total()
        parts = [f"{name} {_seconds(s)} ({100 * s / max(total, 1e-9):.0f}%)"
                 for name, s in self.breakdown() if s >= 0.05]
        return f"time: {', '.join(parts)}; total {_seconds(total)}"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


LEDGER = Ledger()
