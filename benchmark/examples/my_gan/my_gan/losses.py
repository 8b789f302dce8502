"""A smooth hinge loss: the loss contract of gan_bench.losses (real and fake logits (N,) ->
LossOutput with scalar D and G losses, both minimised, and detached parts to log)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gan_bench.losses import LossOutput


def soft_hinge(r: Tensor, f: Tensor) -> LossOutput:
    """Smooth hinge: D minimises E softplus(1 - D(x)) + E softplus(1 + D(G(z))); G -E D(G(z))."""
    d_real, d_fake = F.softplus(1 - r).mean(), F.softplus(1 + f).mean()
    return LossOutput(d_real + d_fake, -f.mean(),
                      {"d_loss_real": d_real.detach(), "d_loss_fake": d_fake.detach()})
