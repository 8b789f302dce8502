"""Building blocks for the architecture options every family supports.

Each helper follows one paper:

- `maybe_sn`, `spectral_norm_all_`: Miyato et al. 2018, "Spectral Normalization for Generative
  Adversarial Networks" (arXiv:1802.05957), one power iteration per training forward pass.
- `MinibatchStd`: Karras et al. 2018, "Progressive Growing of GANs" (arXiv:1710.10196), section 3.
- `MinibatchDiscrimination`, `logit_head`: Salimans et al. 2016, "Improved Techniques for Training
  GANs" (arXiv:1606.03498), section 3.2, with the defaults of the authors' code
  (openai/improved-gan, nn.py `MinibatchLayer`: B = 100 kernels of C = 5 dimensions).
- `pack_input`: Lin et al. 2018, "PacGAN: The power of two samples in GANs" (arXiv:1712.04086).
- `concat_labels`: the class-conditional generator input of AC-GAN, Odena et al. 2017
  (arXiv:1610.09585), written as z concatenated with one-hot(y).
- `init_normal_`: the N(0, 0.02) initialisation of DCGAN, Radford et al. 2015 (arXiv:1511.06434).
"""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm as _TorchSpectralNorm

__all__ = [
    "WEIGHT_LAYERS", "maybe_sn", "spectral_norm_all_", "MinibatchStd", "MinibatchDiscrimination",
    "logit_head", "pack_input",
    "concat_labels", "init_normal_",
]

# Layers that carry a weight matrix Miyato's normalisation applies to (BatchNorm scales do not).
WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_M = TypeVar("_M", bound=nn.Module)


class _SpectralNorm(_TorchSpectralNorm):
    """torch's spectral-norm parametrisation (same buffers `_u`, `_v`, same initial 15 power
    iterations, same numbers) whose power iteration writes its vectors with `copy_` instead of
    `out=`: torch.func.vmap has no batching rule for `normalize(..., out=)`, and packed trials
    carry one u and v per trial as stacked buffers (updated in place, per trial, under vmap)."""

    @torch.no_grad()
    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        for _ in range(n_power_iterations):
            self._u.copy_(F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps))
            self._v.copy_(F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps))


def spectral_norm(layer: nn.Module, name: str = "weight") -> nn.Module:
    """Miyato et al. 2018 on `layer.<name>`, as torch.nn.utils.parametrizations.spectral_norm
    with its defaults (one power iteration per forward in training, eps 1e-12, dim 1 for
    transposed convolutions) and the vmap-friendly power iteration above."""
    weight = getattr(layer, name)
    dim = 1 if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    parametrize.register_parametrization(layer, name, _SpectralNorm(weight, 1, dim, 1e-12))
    return layer


def maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    """`layer` with its weight spectrally normalised (parametrisation, in place) when `on`.

    Initialise the weight before calling this: the parametrisation runs its first power
    iterations on the weight it finds.
    """
    return spectral_norm(layer) if on else layer


def spectral_norm_all_(module: nn.Module) -> nn.Module:
    """Spectrally normalise every Linear/Conv weight inside `module` (a discriminator), in place."""
    for layer in list(module.modules()):
        if isinstance(layer, WEIGHT_LAYERS):
            maybe_sn(layer, True)
    return module


class MinibatchStd(nn.Module):
    """Karras 2018 minibatch standard deviation: one extra feature map (or feature).

    Input (N, C, H, W) or (N, F) float. The batch is split into groups of `group_size` samples
    (sample i belongs to group i % (N // group_size), as in Karras' code); within each group the
    per-feature standard deviation over the group is averaged over all features to one scalar,
    which is appended as a constant channel (N, C + 1, H, W) or feature (N, F + 1). When N is not
    divisible by the group size, the whole batch is one group (so odd evaluation batches work).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size  # 4: Karras' value; fixed groups make it independent of N
        self.eps = eps  # inside the sqrt so a constant group gives a finite gradient

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        g = min(self.group_size, n)
        if n % g:
            g = n
        grouped = x.reshape(g, n // g, *x.shape[1:])
        std = (grouped - grouped.mean(0)).pow(2).mean(0).add(self.eps).sqrt()  # (N/g, ...)
        stat = std.reshape(n // g, -1).mean(1).repeat(g)  # (N,), sample i gets group i % (N/g)
        if x.dim() == 2:
            return torch.cat([x, stat[:, None].to(x.dtype)], dim=1)
        extra = stat.view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, extra.to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class MinibatchDiscrimination(nn.Module):
    """Salimans 2016 minibatch discrimination: (M, A) features -> (M, A + B).

    With T a learned (A, B * C) tensor, M_i = f(x_i) T reshaped to (B, C) rows; for kernel b,
    c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_1) and o(x_i)_b = the mean over j != i of
    c_b(x_i, x_j) (the authors' code leaves out j = i, whose term is always exp(0) = 1); o(x_i)
    (B,) is concatenated to f(x_i). D thus sees how close each sample is to the others of its
    batch, which a collapsed G cannot hide. The statistic is computed within whatever batch D
    gets: the trainer calls D on real and fake batches separately, as the paper asks. A batch of
    one sample gets o = 0. T starts N(0, 0.05^2) (improved-gan's `theta` init); spectral_norm
    does not touch T (it is not a weight layer).

    The mean, where the paper writes the sum: at a fixed batch size the same function (the next
    layer's weights on o scale by M - 1), but its scale does not grow with the batch. The
    authors centre the sum with a data-dependent initialisation (improved-gan's `init` pass
    sets a bias to minus its mean); without one, the sum over 99 neighbours put ~60 into each
    of the 100 features at PacGAN's init, D's first logits had a spread of ~13 and the ring8
    GAN collapsed onto one mode (measured: reverse KL log 8 at 750 and 1,500 iterations).
    """

    def __init__(self, in_features: int, kernels: int = 100, kernel_dim: int = 5,
                 init_std: float = 0.05) -> None:
        super().__init__()
        self.in_features = in_features
        self.kernels = kernels  # B = 100: improved-gan's num_kernels for MNIST / CIFAR-10 / SVHN
        self.kernel_dim = kernel_dim  # C = 5: improved-gan's dim_per_kernel default
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * init_std)

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.T).view(f.shape[0], self.kernels, self.kernel_dim)  # (M, B, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (M, M, B), zero on the diagonal
        n_others = max(f.shape[0] - 1, 1)
        o = (torch.exp(-l1).sum(1) - 1.0) / n_others  # (M, B): drop the j = i term, exp(0) = 1
        return torch.cat([f, o], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, kernels={self.kernels}, kernel_dim={self.kernel_dim}"


def logit_head(in_features: int, minibatch_disc: bool) -> nn.Module:
    """D's last layer on flattened features (M, in_features) -> (M, 1): a Linear, or with
    minibatch discrimination the Linear on [f, o(f)] (Salimans 2016: o is fed to the next layer,
    here the logit)."""
    if not minibatch_disc:
        return nn.Linear(in_features, 1)
    mbd = MinibatchDiscrimination(in_features)
    return nn.Sequential(nn.Flatten(), mbd, nn.Linear(in_features + mbd.kernels, 1))


def pack_input(x: Tensor, pack: int) -> Tensor:
    """PacGAN packing: `pack` consecutive samples become one D input.

    Images (N, C, H, W) -> (N / pack, C * pack, H, W); points or features (N, F) ->
    (N / pack, F * pack). Samples j*pack .. j*pack + pack - 1 form pack j. ValueError when N is
    not divisible by `pack`.
    """
    if pack == 1:
        return x
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"batch of {n} samples is not divisible by pack={pack}: PacGAN's D needs "
                         f"whole packs (use a batch size that is a multiple of {pack})")
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])


def concat_labels(z: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """Conditional G input: latent (N, nz) float and labels int64 (N,) in [0, n_classes) ->
    (N, nz + n_classes), z followed by one-hot(y) in z's dtype."""
    if y.dim() != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have shape ({z.shape[0]},) to match the latent batch, "
                         f"got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor of class indices, got {y.dtype}")
    # one-hot by comparison: F.one_hot checks its input's range on the host, which vmap (packed
    # trials) cannot do; the values are the same
    one_hot = y.long().unsqueeze(1) == torch.arange(n_classes, device=y.device)
    return torch.cat([z, one_hot.to(z.dtype)], dim=1)


@torch.no_grad()
def init_normal_(module: _M, std: float = 0.02, bn_std: float = 0.02) -> _M:
    """DCGAN initialisation, in place: Linear/Conv/ConvTranspose weights N(0, std), biases 0;
    BatchNorm weights N(1, bn_std) (bn_std=0 gives exactly 1, as TensorFlow's default), biases 0.

    Call before `spectral_norm_all_` (it initialises plain `.weight` tensors).
    """
    for layer in module.modules():
        if isinstance(layer, WEIGHT_LAYERS):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, _BATCH_NORMS) and layer.affine:
            if bn_std > 0:
                nn.init.normal_(layer.weight, 1.0, bn_std)
            else:
                nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module
