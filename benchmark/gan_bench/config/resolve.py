"""One GAN of a suite resolved for the runner: its spec, its fixed training values and what its
study searches (`Suite.resolved_gans` calls `_resolve` for each entry).

Precedence of a trial's TrainConfig, lowest first (`ResolvedGan.trial_train` does the merge):

1. TrainConfig defaults (gan_bench.train.config);
2. search-space fixed values the suite file does NOT state (the SearchSpace defaults of beta1,
   beta2 and batch_size, which are TrainConfig's), so that a preset's paper settings
   (WGAN-GP's Adam (0, 0.9), DCGAN's batch 128) are not silently replaced by a default;
3. the preset's `train` (the paper's settings);
4. the suite's `train`;
5. search-space fixed values the suite states (`search:` or `gans[i].search:`);
6. `gans[i].train` (a key there is fixed for that GAN and leaves its search);
7. the values the study samples.

The runner then adds iterations / epochs and eval_every from `budget`, `device` and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_bench.config.space import Searched, SearchSpace
from gan_bench.train.config import GanSpec

__all__ = ["ResolvedGan"]


@dataclass(frozen=True)
class ResolvedGan:
    """One GAN of a suite, ready for the runner (see the module docstring for precedence)."""

    name: str
    spec: GanSpec
    train: dict[str, Any]  # preset.train <- suite.train <- gan.train (given keys only)
    search: dict[str, Searched]  # what the study samples for this GAN
    fixed_search: dict[str, int | float]  # search-space values held fixed for this GAN

    def trial_train(self, sampled: dict[str, Any] | None = None) -> dict[str, Any]:
        """TrainConfig overrides of one trial (without budget, device and seed)."""
        return {**self.train, **self.fixed_search, **(sampled or {})}

    def to_dict(self) -> dict[str, Any]:
        search = {n: p.model_dump(mode="json") for n, p in self.search.items()}
        return {"name": self.name, "spec": self.spec.to_dict(), "train": self.train,
                "search": search, "fixed_search": self.fixed_search}


def _resolve(name: str, spec: GanSpec, space: SearchSpace, preset_train: dict[str, Any],
             suite_train: dict[str, Any], gan_train: dict[str, Any]) -> ResolvedGan:
    """A GAN entry named `name` with `spec`, its search `space` (the suite's with the entry's
    stated fields replaced) and the `train` mappings of its preset, the suite and the entry."""
    base = {**preset_train, **suite_train}
    pinned = set(gan_train)
    searched = {n: p for n, p in space.searched().items() if n not in pinned}
    fixed = {n: v for n, v in space.fixed().items()
             if n not in pinned and (n in space.stated() or n not in base)}
    return ResolvedGan(name, spec, {**base, **gan_train}, searched, fixed)
