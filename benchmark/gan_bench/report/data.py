"""What a report is made of: plain, frozen records read from the tracked runs.

`collect.collect` fills these from Optuna and MLflow; tests build them by hand. Nothing here
does I/O, so `render.render(ReportData)` stays a pure function of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialRecord", "FinalistRecord", "GanRecord", "ReportData", "FigureSpec", "TRIAL_STATES"]

TRIAL_STATES = ("complete", "pruned", "failed")


@dataclass(frozen=True)
class TrialRecord:
    """One search trial (Optuna), surplus trials excluded."""

    number: int
    state: str  # one of TRIAL_STATES
    value: float | None  # objective at the trial's last evaluation (complete trials only)
    params: dict[str, Any]  # sampled values, e.g. {"lr_g": 2e-4, "lr_ratio": 2.0, "k": 1}
    seconds: float | None = None  # wall seconds of the trial (None: not recorded)
    failure_kind: str | None = None  # diverged | oom | error | interrupted (failed trials)
    device: str | None = None  # "cpu", "cuda", "cuda:0"


@dataclass(frozen=True)
class FinalistRecord:
    """One finalist run: the best setting of the search retrained with a fresh seed."""

    seed: int
    source_trial: int
    objective: float  # the objective's headline record on n_fake samples
    metrics: dict[str, float]  # record key -> value, e.g. {"fid_mnist": 3.1, "kl_to_uniform": 0.02}
    protocols: dict[str, dict[str, Any]]  # record key -> its protocol without "versions"
    train_seconds: float | None = None
    history: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)  # record key ->
    # (iteration, value) of the evaluations during training (keys logged as curves only)


@dataclass(frozen=True)
class GanRecord:
    """One GAN of the suite: its search, its finalists and what the figures need."""

    name: str
    combination: str  # "arch / loss / penalty", e.g. "dcgan / non_saturating / none"
    trials: tuple[TrialRecord, ...]
    finalists: tuple[FinalistRecord, ...] = ()
    best_trial: int | None = None  # number of the best complete trial
    best_params: dict[str, Any] = field(default_factory=dict)  # its resolved training params
    curve: tuple[tuple[int, float], ...] = ()  # (iteration, objective) of the best trial
    samples_png: bytes | None = None  # best finalist's last sample grid (same z for all GANs)
    importances: dict[str, float] | None = None  # None: fewer than 2 complete trials
    points: tuple[tuple[float, float], ...] | None = None  # best finalist's samples (mixtures)
    class_counts: tuple[int, ...] | None = None  # best finalist's class histogram (MNIST)
    samples_note: str = ""  # how points / class_counts were made, e.g. "2500 samples, seed 2024"
    checks: Any = None  # report/checks.ChecksRecord of the best finalist (None: not made)


@dataclass(frozen=True)
class ReportData:
    """Everything `render` needs, in plain values (no paths are opened by render)."""

    suite: str
    description: str
    dataset: str  # dataset name, e.g. "mnist"
    dataset_text: str  # e.g. "mnist (train, first 2000 samples; metrics on test)"
    objective: str  # record key of the objective, e.g. "fid_mnist"
    directions: dict[str, bool]  # record key -> higher is better
    budget_text: str  # e.g. "3 trials per GAN, 200 iterations, ..."
    date: str  # newest run end, e.g. "2025-03-01 14:02 UTC" (never the time of rendering)
    git_shas: tuple[str, ...]  # every git sha the runs were made at
    hardware: str  # e.g. "cpu; torch 2.5.1"
    versions: dict[str, str]  # package -> version, from the finalists' protocols
    gans: tuple[GanRecord, ...]
    references: tuple[dict[str, Any], ...] | None = None  # None: not measured yet
    commands: tuple[str, ...] = ()  # the `gan-bench run ...` command lines that made the runs
    wall_seconds: float | None = None  # first run start to last run end (all invocations)
    ladder: tuple[dict[str, Any], ...] | None = None  # calibration rungs on the finals' protocol (MNIST)
    centres: tuple[tuple[float, float], ...] | None = None  # true modes of a mixture dataset
    sigma: float | None = None  # their standard deviation
    test: str = "mannwhitney"  # or "welch"
    warnings: tuple[str, ...] = ()  # what the reader must know about the stores, e.g. duplicates

    @property
    def higher_is_better(self) -> bool:
        return self.directions.get(self.objective, False)


@dataclass(frozen=True)
class FigureSpec:
    """What to draw: `kind` names a drawer of report/figures.py; `panels` maps a title to its data."""

    kind: str
    title: str
    panels: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
