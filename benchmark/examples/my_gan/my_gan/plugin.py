"""Registers this package's entries when gan-bench loads its plugins (entry point group
`gan_bench.plugins`, see pyproject.toml): the architecture `res_mlp` and the loss `soft_hinge`."""

from gan_bench.losses import GanLoss
from gan_bench.models.base import register_architecture
from gan_bench.registry import LOSSES
from my_gan.losses import soft_hinge
from my_gan.nets import build

register_architecture("res_mlp", build, summary="Residual MLP G and D (example plugin)",
                      supports=build.supports)
_LOSS = GanLoss("soft_hinge", soft_hinge, needs_real_for_g=False, probabilistic=False)
LOSSES.register("soft_hinge", _LOSS, summary="Smooth hinge loss (example plugin)", **_LOSS.describe())
