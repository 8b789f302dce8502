"""Progress of `gan-bench run`: suite -> GAN -> trial -> iterations.

`RichProgress` draws live bars (ETA, best objective so far per GAN) on a terminal;
`PlainProgress` prints one line per event when stdout is not a TTY (CI logs, `| tee`).
Both implement the same small set of events the runner emits.

The suite's ETA comes from the runner (`eta`, from estimate.SuiteClock after each finished
run); between two updates it counts down with the wall clock.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["Progress_", "PlainProgress", "RichProgress", "make_progress", "format_params",
           "format_eta"]


def format_params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(params.items()):
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_eta(seconds: float) -> str:
    """Seconds as "45s", "12m30s", "5h07m" or "3d04h" (negative counts as 0)."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class _EtaAt:
    """When the suite should end (monotonic seconds), from the runner's last ETA."""

    def __init__(self) -> None:
        self.at: float | None = None

    def set(self, seconds: float | None) -> None:
        self.at = None if seconds is None else time.monotonic() + seconds

    def text(self) -> str:
        """"ETA 12m30s", or "" while unknown."""
        return "" if self.at is None else f"ETA {format_eta(self.at - time.monotonic())}"


class _EtaColumn(ProgressColumn):
    """The suite's ETA on the suite's bar (other bars leave it empty)."""

    def __init__(self, eta: _EtaAt) -> None:
        super().__init__()
        self.eta = eta

    def render(self, task: Task) -> Text:
        return Text(self.eta.text() if task.fields.get("suite") else "", style="bold cyan")


class Progress_:
    """Events the runner emits; every one is optional to override."""

    def __enter__(self) -> Progress_:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def message(self, text: str) -> None: ...
    def eta(self, seconds: float | None) -> None: ...  # the whole suite's; None: unknown yet
    def suite_start(self, name: str, n_gans: int) -> None: ...
    def gan_start(self, gan: str, done: int, budget: int, best: float | None) -> None: ...
    def trial_start(self, gan: str, number: int, params: dict[str, Any], iterations: int) -> None: ...
    def iteration(self, step: int) -> None: ...
    def evaluation(self, step: int, name: str, value: float) -> None: ...
    def trial_end(self, gan: str, number: int, status: str, value: float | None, seconds: float,
                  best: float | None, reason: str = "") -> None: ...
    def gan_end(self, gan: str) -> None: ...


class PlainProgress(Progress_):
    """One line per event, for logs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True, highlight=False)
        self._t0 = time.perf_counter()
        self._eta = _EtaAt()

    def _line(self, text: str, eta: bool = False) -> None:
        suffix = f"; suite {self._eta.text()}" if eta and self._eta.at is not None else ""
        self.console.print(f"[{time.perf_counter() - self._t0:7.1f}s] {text}{suffix}", markup=False)

    def message(self, text: str) -> None:
        self._line(text)

    def eta(self, seconds: float | None) -> None:
        self._eta.set(seconds)

    def suite_start(self, name: str, n_gans: int) -> None:
        self._line(f"suite {name}: {n_gans} GAN(s)")

    def gan_start(self, gan: str, done: int, budget: int, best: float | None) -> None:
        self._line(f"{gan}: {done}/{budget} trials done, best {_fmt(best)}", eta=True)

    def trial_start(self, gan: str, number: int, params: dict[str, Any], iterations: int) -> None:
        self._line(f"{gan} trial {number}: {iterations} iterations, {format_params(params)}",
                   eta=True)

    def evaluation(self, step: int, name: str, value: float) -> None:
        self._line(f"  iteration {step}: {name} = {value:.4g}")

    def trial_end(self, gan: str, number: int, status: str, value: float | None, seconds: float,
                  best: float | None, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        self._line(f"{gan} trial {number} {status}{why}: objective {_fmt(value)} in {seconds:.1f}s; "
                   f"best so far {_fmt(best)}", eta=True)


class RichProgress(Progress_):
    """Live bars: the suite's GANs, the current GAN's trials (with best so far), iterations."""

    _suite: TaskID | None
    _gan: TaskID | None
    _trial: TaskID | None

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._eta = _EtaAt()
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), _EtaColumn(self._eta),
                             console=self.console, transient=False)
        self._suite = self._gan = self._trial = None

    def __enter__(self) -> RichProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bars.__exit__(*exc)

    def message(self, text: str) -> None:
        self.bars.console.print(text, markup=False, highlight=False)

    def eta(self, seconds: float | None) -> None:
        self._eta.set(seconds)

    def suite_start(self, name: str, n_gans: int) -> None:
        self._suite = self.bars.add_task(f"suite {name}", total=n_gans, suite=True)

    def gan_start(self, gan: str, done: int, budget: int, best: float | None) -> None:
        if self._gan is not None:
            self.bars.remove_task(self._gan)
        self._gan_name = gan
        self._gan = self.bars.add_task(f"  {gan} trials (best {_fmt(best)})", total=budget,
                                       completed=min(done, budget))

    def trial_start(self, gan: str, number: int, params: dict[str, Any], iterations: int) -> None:
        if self._trial is not None:
            self.bars.remove_task(self._trial)
        self._trial = self.bars.add_task(f"    trial {number} iterations", total=iterations)
        self.message(f"{gan} trial {number}: {format_params(params)}")

    def iteration(self, step: int) -> None:
        if self._trial is not None:
            self.bars.update(self._trial, completed=step)

    def trial_end(self, gan: str, number: int, status: str, value: float | None, seconds: float,
                  best: float | None, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        self.message(f"{gan} trial {number} {status}{why}: objective {_fmt(value)} in {seconds:.1f}s")
        if self._gan is not None:
            counted = status in ("complete", "pruned")
            self.bars.update(self._gan, advance=1 if counted else 0,
                             description=f"  {gan} trials (best {_fmt(best)})")

    def gan_end(self, gan: str) -> None:
        if self._suite is not None:
            self.bars.advance(self._suite)


def make_progress(plain: bool | None = None) -> Progress_:
    """Rich bars on a terminal, plain lines otherwise (or when asked)."""
    if plain is None:
        plain = not sys.stdout.isatty()
    return PlainProgress() if plain else RichProgress()
