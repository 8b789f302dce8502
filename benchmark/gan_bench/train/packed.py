"""Which trials can train together in one pack, and how many fit on the device.

Every GAN packs (issue 24): the step is written once (train/step.py) and runs under vmap, with
gradient penalties through torch.func, spectral norm's vectors and BatchNorm's statistics per
trial, AC-GAN's labels and RMSprop beside Adam. What trials of a pack must share is what one
vmapped step shares: everything but the per-trial hyperparameters (learning rates, k, Adam's
betas, the seed and the length). `pack_problems` says what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gan_bench.train.config import TrainConfig

if TYPE_CHECKING:
    from gan_bench.train.config import GanSpec

__all__ = ["pack_problems", "pack_size_for", "MAX_AUTO_PACK", "PER_TRIAL"]

MAX_AUTO_PACK = 32  # issue 7: 32 vmapped infogan trials on an H100 were still gaining throughput
PER_TRIAL = ("lr_g", "lr_d", "lr_ratio", "k", "beta1", "beta2", "seed", "iterations", "epochs")


def pack_problems(spec: GanSpec, cfgs: Sequence[TrainConfig]) -> list[str]:
    """Why these trials cannot share a pack ([] when they can). `spec` is accepted for the
    callers' symmetry: no GAN combination is refused."""
    if not cfgs:
        return ["no trials"]
    problems = []
    for f in TrainConfig.__dataclass_fields__:
        if f not in PER_TRIAL and len({repr(getattr(c, f)) for c in cfgs}) > 1:
            problems.append(f"trials differ in {f} (only {', '.join(PER_TRIAL)} may differ)")
    return problems


def pack_size_for(free_bytes: int, base_bytes: int, per_trial_bytes: int,
                  cap: int = MAX_AUTO_PACK, headroom: float = 0.5) -> int:
    """The largest P in [1, cap] with base + P * per_trial <= headroom * free (half of the free
    memory by default: evaluation, Inception features and the allocator's slack need the rest)."""
    if per_trial_bytes <= 0:
        return cap
    return max(1, min(cap, int((headroom * free_bytes - base_bytes) // per_trial_bytes)))
