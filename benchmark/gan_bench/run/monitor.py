"""What a trial reports while it trains: the TrialMonitor callback and its collaborators.

A TrialMonitor is built from explicit parts (the run it logs to, a Scorer, a picture maker,
the progress display, an optional pruner) and knows nothing of the runner. The runner reads a
trial's value back from its TrainResult (the monitor returns the objective to the trainer's
history), never from the monitor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gan_bench import interrupts, views
from gan_bench.errors import TrialTaken
from gan_bench.images import image_grid, points_image
from gan_bench.plan import EVAL_SEED, GRID_SEED
from gan_bench.progress import Progress_
from gan_bench.timing import LEDGER
from gan_bench.train import Callback, Trial

if TYPE_CHECKING:
    from gan_bench.metrics.evaluator import Evaluator
    from gan_bench.metrics.records import MetricRecord
    from gan_bench.tracking import RunHandle

__all__ = ["Scorer", "TrialMonitor", "sample_picture", "Pruner", "TAKEN", "GRID_N", "HEARTBEAT_S"]

GRID_N = 64
# MLflow run heartbeat while training (tracking.close_orphans allows GAN_BENCH_RUN_STALE_S)
HEARTBEAT_S = float(os.environ.get("GAN_BENCH_RUN_HEARTBEAT_S", "30"))

# pruner(value) -> True when the trial should stop; raises TrialTaken when another worker
# ended it (study.GanStudy.report bound to the trial's ticket)
Pruner = Callable[[float], bool]
TAKEN = "taken by another worker"  # TrainResult.stop_reason of a trial another worker ended


class Scorer:
    """Scores a trainer's generator on fixed-z samples: the objective and the curves.

    `protocols`: the records of the latest scoring; their protocols (extractor, sample counts,
    split, versions) are the same for every trial this scorer scores.
    """

    def __init__(self, evaluator: Evaluator, metrics: list[str], objective_key: str,
                 n_fake: int) -> None:
        self.evaluator, self.metrics, self.n_fake = evaluator, metrics, n_fake
        self.objective_key = objective_key
        self.protocols: dict[str, MetricRecord] = {}

    def score(self, trainer: Trial, metrics: list[str] | None = None,
              n_fake: int | None = None) -> dict[str, MetricRecord]:
        fake = trainer.generate(n_fake or self.n_fake, seed=EVAL_SEED)
        records = self.evaluator.evaluate(fake, metrics or self.metrics)
        if metrics is None:
            self.protocols = records
        return records


def sample_picture(trainer: Trial) -> np.ndarray:
    """The sample grid (images) or scatter (points) of fixed z, uint8 (H, W[, C])."""
    fake = trainer.generate(GRID_N if trainer.data.is_image else 2000, seed=GRID_SEED)
    if trainer.data.is_image:
        return image_grid(fake.numpy(), nrow=8)
    centres = trainer.data.meta.get("centres") if isinstance(trainer.data.meta, dict) else None
    return points_image(fake.numpy(), centres)


class TrialMonitor(Callback):
    """At each log: curves, progress, heartbeat. At each evaluation: the objective on fixed-z
    samples, the sample grid, pruning. Returns {objective_key: value} to the trainer, which
    keeps it in the trial's history and TrainResult.final_metrics; a trial another worker
    ended stops with TrainResult.stop_reason starting with TAKEN."""

    def __init__(self, run: RunHandle, scorer: Scorer, picture: Callable[[Trial], np.ndarray],
                 progress: Progress_, pruner: Pruner | None = None) -> None:
        self.run, self.scorer, self.picture = run, scorer, picture
        self.progress, self.pruner = progress, pruner
        self._beat = time.monotonic()

    def on_log(self, trainer: Trial, step: int, diagnostics: dict[str, float]) -> None:
        interrupts.check()  # a Ctrl-C that something swallowed stops the trial here
        self.run.log_metrics(views.train_metrics(diagnostics), step)
        self.progress.iteration(step)
        if time.monotonic() - self._beat > HEARTBEAT_S:  # other hosts' close_orphans reads it
            self.run.heartbeat()
            self._beat = time.monotonic()

    def on_eval(self, trainer: Trial, step: int) -> dict[str, float]:
        interrupts.check()
        key = self.scorer.objective_key
        with LEDGER.phase("evaluation"):
            records = self.scorer.score(trainer)
            value = records[key].value
            self.run.log_metrics(views.eval_metrics(records), step)
            # MLflow's stepped image: the UI's image grid chart, with a step slider across runs
            self.run.log_stepped_image(self.picture(trainer), "samples", step)
        self.progress.evaluation(step, key, value)
        # the last evaluation ends the trial anyway: it completes (a "pruned" trial that ran
        # every iteration would hide a finished value from the sampler and the report)
        try:
            pruned = self.pruner is not None and self.pruner(value)
        except TrialTaken as exc:  # another worker judged us dead: stop, the runner ends it
            trainer.request_stop(f"{TAKEN}: {exc}")
            return {key: value}
        if pruned and step < trainer.total_iterations:
            trainer.request_stop(f"pruned at iteration {step}")
        return {key: value}
