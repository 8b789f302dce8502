"""What a suite asks of one trial: its training data, its evaluator, its TrainConfig, how many
search trials a GAN gets, and the seeds and tags every run shares. The runner, the cost estimate
(estimate.py) and the report (report/collect.py) all read these; none of them imports another
for it.

Seeds: search trial n trains with seed `train.seed + n`; finalists with FINALIST_SEED0, +1, ...;
evaluation samples always use z from EVAL_SEED and sample grids z from GRID_SEED, so curves and
frames of different trials are comparable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gan_bench.train.config import TrainConfig, from_dict

if TYPE_CHECKING:
    from gan_bench.config import ResolvedGan, Suite
    from gan_bench.data.base import ArrayDataset
    from gan_bench.metrics.evaluator import Evaluator

__all__ = ["EVAL_SEED", "GRID_SEED", "FINALIST_SEED0", "SHA_TAGS", "train_data",
           "suite_evaluator", "gan_trials", "trial_config"]

EVAL_SEED = 2024  # z of evaluation samples, shared by every trial and finalist
GRID_SEED = 7  # z of the sample grid logged at each evaluation
FINALIST_SEED0 = 1000  # finalist seeds never coincide with search seeds (0 + trial number)
# Tags holding the sha256 of a finalist's artifacts (report/collect.py checks them).
SHA_TAGS = {"metrics.json": "sha256.metrics_json", "checkpoint": "sha256.checkpoint"}


def train_data(suite: Suite) -> ArrayDataset:
    """The suite's training data (its train split, options and subset) as an ArrayDataset."""
    from gan_bench.data import load_dataset

    ds = suite.dataset
    data = load_dataset(ds.name, ds.train_split, **ds.options)
    return data.subset(ds.subset) if ds.subset else data


def suite_evaluator(suite: Suite, device: torch.device) -> Evaluator:
    """The Evaluator of every trial and finalist: objective and final metrics, the eval split."""
    from gan_bench.metrics.evaluator import Evaluator

    s = suite
    metrics = list(dict.fromkeys([s.metrics.objective, *s.metrics.final, *s.metrics.curves]))
    return Evaluator(s.dataset.name, real_split=s.dataset.eval_split, metrics=metrics,
                     n_real=s.metrics.n_real, device=device, dataset_options=dict(s.dataset.options))


def gan_trials(suite: Suite, gan: ResolvedGan) -> int:
    """Search trials of one GAN: budget.trials, or 1 when the GAN searches nothing (a paper's
    fixed setting next to searched arms in one suite: more trials would repeat it; its
    finalists give the seeds)."""
    return suite.budget.trials if gan.search else 1


def trial_config(suite: Suite, gan: ResolvedGan, params: dict[str, Any], seed: int, device: str) -> TrainConfig:
    """A run's TrainConfig: config.ResolvedGan.trial_train (precedence documented there) +
    budget, seed, device."""
    b = suite.budget
    values = gan.trial_train(params)
    values.update(seed=seed, device=device, eval_every=b.eval_every, iterations=b.iterations,
                  epochs=b.epochs)
    return from_dict(TrainConfig, values)
