"""Fully connected GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661).

The 2014 paper's MNIST nets (pylearn2 code) were a G of rectifier and sigmoid units and a maxout
D trained with dropout. Like most reproductions we use a plain MLP instead, so the benchmark
varies the objective rather than exotic units:

- G: z (nz=100, N(0, 1)) -> 256 -> 512 -> 1024 -> prod(shape), ReLU between layers, tanh on
  images (data scaled to [-1, 1]) and no output activation on points. Widths double per layer,
  as in the widely used PyTorch-GAN `gan.py`.
- BatchNorm after each hidden Linear of G (batch_norm_g, default **on**): the reference
  implementation people compare against (PyTorch-GAN `gan.py`) has it, and without it this MLP
  collapses on MNIST at the textbook setting (lr 2e-4, beta1 0.5, batch 64, k 1): fid_mnist about
  1,000 after 3,000 steps, where the BatchNorm G draws digits (reports/baselines/). BatchNorm
  postdates the 2014 paper: `batch_norm_g: false` is the paper-faithful plain MLP. torch's
  BatchNorm1d defaults (eps 1e-5, momentum 0.1); Linears followed by BatchNorm have no bias (the
  BatchNorm shift replaces it); G samples for evaluation in eval mode.
- D: prod(shape) -> 512 -> 256 -> 1, LeakyReLU(0.2) (the DCGAN slope; no maxout, no dropout).
- PyTorch's default (Kaiming-uniform) initialisation: the paper gives none, and N(0, 0.02) makes
  a BatchNorm-free MLP start with near-zero outputs.
- small: G 128 -> 256 -> 512, D 256 -> 128; tiny: G 16 -> 32 -> 64, D 32 -> 16 (CPU tests only).
- toy_mlp (2-D mixtures) shares these classes with batch_norm_g off by default.

Options: spectral_norm on every D Linear (aux head included); minibatch_std appended to the
input of D's last hidden layer; minibatch_disc (Salimans 2016) feeds [last hidden features,
minibatch features] to the logit; pack concatenates `pack` flattened samples; conditional adds
one-hot(y) to z and a Linear class head on D's last hidden features. batch_norm_d must be
left unset or false (there is no BatchNorm in this D).

Shapes: images (C, 28, 28) or (C, 32, 32), flattened; points (2,).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from gan_bench.models.base import (
    ArchOptions,
    Discriminator,
    Generator,
    ModelConfigError,
    data_kind,
    register_architecture,
)
from gan_bench.models.options import MinibatchStd, logit_head, spectral_norm_all_

__all__ = ["MLPGenerator", "MLPDiscriminator", "build_mlp_pair", "build_mlp", "MLP", "SIZES"]

# size -> (G hidden widths, D hidden widths)
SIZES = {"full": ((256, 512, 1024), (512, 256)), "small": ((128, 256, 512), (256, 128)),
         "tiny": ((16, 32, 64), (32, 16))}


class MLPGenerator(Generator):
    """z (N, nz) [+ one-hot y] -> hidden Linear [BatchNorm] ReLU layers -> Linear ->
    (N, *out_shape); tanh when `squash`."""

    def __init__(self, out_shape: Sequence[int], *, nz: int, hidden: Sequence[int],
                 latent: str = "normal", n_classes: int | None = None,
                 squash: bool = True, batch_norm: bool = False, bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1) -> None:
        super().__init__(nz, out_shape, latent=latent, n_classes=n_classes)
        dims = [self.in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            # eps 1e-5, momentum 0.1: torch's defaults (PacGAN's nets pass Blocks' 1e-4 and 0.05)
            norm: list[nn.Module] = ([nn.BatchNorm1d(b, eps=bn_eps, momentum=bn_momentum)]
                                     if batch_norm else [])
            # no bias before BatchNorm (its shift replaces it, as in DCGAN): a redundant bias gets
            # a zero gradient that Adam turns into noise-driven steps
            layers += [nn.Linear(a, b, bias=not batch_norm), *norm, nn.ReLU()]
        layers.append(nn.Linear(dims[-1], math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)
        self.squash = squash  # images: tanh to [-1, 1]; points: unbounded

    def decode(self, h: Tensor) -> Tensor:
        x = self.net(h)
        return (x.tanh() if self.squash else x).view(-1, *self.out_shape)


class MLPDiscriminator(Discriminator):
    """(N, *in_shape) -> flattened packs -> hidden LeakyReLU layers -> (N // pack,) logits."""

    def __init__(self, in_shape: Sequence[int], *, hidden: Sequence[int], pack: int = 1,
                 n_classes: int | None = None, minibatch_std: bool = False,
                 minibatch_disc: bool = False, slope: float = 0.2) -> None:
        super().__init__(in_shape, pack=pack, n_classes=n_classes)
        self.slope = slope
        dims = [pack * math.prod(self.in_shape), *hidden]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if minibatch_std and i == len(hidden) - 1:  # before the last hidden layer
                layers.append(MinibatchStd())
                a += 1
            layers += self._hidden_layer(a, b)
        self.body = nn.Sequential(*layers)
        self.head = logit_head(dims[-1], minibatch_disc)
        if n_classes is not None:
            self.aux_head = nn.Linear(dims[-1], n_classes)

    def _hidden_layer(self, a: int, b: int) -> list[nn.Module]:
        """One hidden layer a -> b (subclasses change the unit, e.g. maxout)."""
        return [nn.Linear(a, b), nn.LeakyReLU(self.slope)]

    def features(self, x: Tensor) -> Tensor:
        return self.body(x.flatten(1))

    def logits(self, h: Tensor) -> Tensor:
        return self.head(h).squeeze(1)


def build_mlp_pair(shape: tuple[int, ...], opts: ArchOptions, *, arch: str,
                   g_hidden: Sequence[int], d_hidden: Sequence[int], default_nz: int,
                   default_bn_g: bool) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The (G, D) pair shared by `mlp` and `toy_mlp`; `arch` names the family in messages."""
    if opts.batch_norm_d:
        raise ModelConfigError(f"{arch} has no BatchNorm in D: batch_norm_d must be unset or false")
    n_classes = opts.n_classes if opts.conditional else None
    g = MLPGenerator(shape, nz=opts.nz or default_nz, hidden=g_hidden, n_classes=n_classes,
                     squash=data_kind(shape) != "points",
                     batch_norm=default_bn_g if opts.batch_norm_g is None else opts.batch_norm_g)
    d = MLPDiscriminator(shape, hidden=d_hidden, pack=opts.pack, n_classes=n_classes,
                         minibatch_std=opts.minibatch_std, minibatch_disc=opts.minibatch_disc)
    if opts.spectral_norm:
        spectral_norm_all_(d)
    return g, d


def build_mlp(shape: tuple[int, ...], opts: ArchOptions) -> tuple[MLPGenerator, MLPDiscriminator]:
    """Goodfellow-2014-style MLP pair for images (flattened) or points."""
    g_hidden, d_hidden = SIZES[opts.size]
    return build_mlp_pair(shape, opts, arch="mlp", g_hidden=g_hidden, d_hidden=d_hidden,
                          default_nz=100, default_bn_g=True)


MLP = register_architecture(
    "mlp", build_mlp,
    summary="Goodfellow 2014 fully connected G (256-512-1024, BatchNorm + ReLU as in PyTorch-GAN; "
            "batch_norm_g: false for the paper's plain G) and D (512-256, LeakyReLU)",
    supports=("images28", "images32", "points"),
    paper="Goodfellow et al. 2014, arXiv:1406.2661", nz=100, latent="normal",
)
