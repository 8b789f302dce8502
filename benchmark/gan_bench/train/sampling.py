"""Samples of a generator from fixed z: the one function that training, evaluation and reports
use (issue 24: it was written three times and drifted).

z is drawn from a torch.Generator seeded `seed`, batch by batch (500 by default), so the same
seed gives the same samples whatever the caller; G runs in eval mode (BatchNorm's running
statistics, as at evaluation time in compare_gan) under strict float32 (the extractors' protocol
states `fp32-strict`, and torch leaves cuDNN's TF32 on for convolutions), and its mode is
restored afterwards. A conditional G gets `labels`, or the classes in turn (0, 1, ..., 9, 0, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gan_bench.models.base import Generator

__all__ = ["generate", "to_uint8", "BATCH"]

BATCH = 500  # z drawn in batches of 500: part of what "the same samples" means


def to_uint8(x: Tensor) -> Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255] (round to nearest)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


@torch.no_grad()
def generate(G: torch.nn.Module, n: int, seed: int = 0, *, images: bool, device: torch.device,
             batch_size: int = BATCH, labels: Tensor | None = None) -> Tensor:
    """n samples of `G` (on `device`): uint8 images (n, C, H, W) when `images`, else float32
    (n, ...) values as G gives them (2-D points). See the module doc for z, mode and labels."""
    from gan_bench.metrics.features import float32_math  # the extractors' precision rule

    was_training = G.training
    G.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    n_classes = getattr(G, "n_classes", None)
    out = []
    try:
        with float32_math():
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                z = cast("Generator", G).sample_z(m, generator=gen, device=device)  # G's contract
                y = None
                if n_classes is not None:
                    y = (labels[start:start + m].to(device) if labels is not None
                         else torch.arange(start, start + m, device=device) % n_classes)
                x = G(z, y)
                out.append((to_uint8(x) if images else x.float()).cpu())
    finally:
        G.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
