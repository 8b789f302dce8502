"""DCGAN: Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks" (arXiv:1511.06434), section 3 guidelines.

- D: strided convolutions, no pooling; G: fractionally strided (transposed) convolutions.
- BatchNorm in both nets except D's input layer and G's output layer.
- G: ReLU, tanh output (images in [-1, 1]); D: LeakyReLU(0.2).
- No fully connected hidden layers: z enters G as a 1x1 map projected by a 4x4 transposed conv
  (the project-and-reshape), and D ends in a 4x4 conv to one logit.
- Weights N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0 (section 4). Convolutions followed
  by BatchNorm have no bias (BN's shift replaces it).
- z: nz=100. The paper drew z uniformly; we use N(0, 1) as the PyTorch DCGAN example does.

Layers, width w (64 full, 24 small, 8 tiny), C channels, four layers per net for both resolutions.
small is the 2-core-CPU quickstart net: ~45 ms per G step at batch 64 (full: ~80 ms) and digits of
every class after ~1,000 steps at lr 5e-4; the 8-channel tiny net is too narrow to learn MNIST.

    G 32x32: z -> 4x4x4w -> 8x8x2w -> 16x16xw -> 32x32xC  (4x4 kernels; stride 2 after the first)
    G 28x28: z -> 4x4x4w -> 7x7x2w -> 14x14xw -> 28x28xC  (4->7 uses a 3x3 kernel, padding 1)
    D mirrors G: C -> w (no BN) -> 2w -> 4w -> 4x4 conv -> 1 logit (7->4 uses a 3x3 kernel).

Options: spectral_norm on every D conv (and the AC-GAN head); minibatch_std adds one channel to
D's last 4x4 map before the final conv; minibatch_disc (Salimans 2016) replaces the final conv
by a Linear on [flattened 4x4 map, minibatch features] (the same map, B = 100 more inputs); pack multiplies D's input channels; conditional adds
one-hot(y) to z and a Linear class head on D's last map (the only Linear in D);
batch_norm_d=False removes D's BatchNorm (e.g. for WGAN-GP, whose critic should not batch-norm).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gan_bench.models.base import (
    ArchOptions,
    Discriminator,
    Generator,
    register_architecture,
    require_batch_norm_g,
)
from gan_bench.models.options import MinibatchStd, init_normal_, logit_head, spectral_norm_all_

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "build_dcgan", "DCGAN", "WIDTHS"]

WIDTHS = {"full": 64, "small": 24, "tiny": 8}  # base width w: D w-2w-4w, G 4w-2w-w


def _mid_kernel(side: int) -> int:
    """Kernel of the 4x4 <-> 8x8 (32x32 images) or 4x4 <-> 7x7 (28x28 images) layer."""
    return 4 if side == 32 else 3


class DCGANGenerator(Generator):
    """z (N, nz) [+ one-hot y] -> (N, C, S, S) in [-1, 1], S in {28, 32}."""

    def __init__(self, out_shape: Sequence[int], *, nz: int = 100, width: int = 64,
                 n_classes: int | None = None) -> None:
        super().__init__(nz, out_shape, latent="normal", n_classes=n_classes)
        c, side, _ = self.out_shape
        w = width

        def up(a: int, b: int, k: int, s: int, p: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(a, b, k, s, p, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        self.net = nn.Sequential(
            *up(self.in_features, 4 * w, 4, 1, 0),        # 1 -> 4
            *up(4 * w, 2 * w, _mid_kernel(side), 2, 1),   # 4 -> 8 or 7
            *up(2 * w, w, 4, 2, 1),                       # -> 16 or 14
            nn.ConvTranspose2d(w, c, 4, 2, 1),            # -> 32 or 28, no BN on the output
        )

    def decode(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None]).tanh()


class DCGANDiscriminator(Discriminator):
    """(N, C, S, S) -> (N // pack,) logits; features are the last 4x4 map (M, 4w[+1], 4, 4)."""

    def __init__(self, in_shape: Sequence[int], *, width: int = 64, pack: int = 1,
                 n_classes: int | None = None, batch_norm: bool = True,
                 minibatch_std: bool = False, minibatch_disc: bool = False) -> None:
        super().__init__(in_shape, pack=pack, n_classes=n_classes)
        c, side, _ = self.in_shape
        w = width

        def down(a: int, b: int, k: int, bn: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(a, b, k, 2, 1, bias=not bn)]
            return layers + ([nn.BatchNorm2d(b)] if bn else []) + [nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(
            *down(c * pack, w, 4, bn=False),                    # -> 16 or 14, no BN on the input
            *down(w, 2 * w, 4, bn=batch_norm),                  # -> 8 or 7
            *down(2 * w, 4 * w, _mid_kernel(side), bn=batch_norm),  # -> 4
            *([MinibatchStd()] if minibatch_std else []),
        )
        feat = 4 * w + int(minibatch_std)
        # 4x4 map -> one logit; with minibatch discrimination a Linear on the flattened map
        self.head = logit_head(feat * 16, True) if minibatch_disc else nn.Conv2d(feat, 1, 4, 1, 0)
        if n_classes is not None:
            self.aux_head = nn.Linear(feat * 16, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def logits(self, h: Tensor) -> Tensor:
        return self.head(h).flatten()


def build_dcgan(shape: tuple[int, ...],
                opts: ArchOptions) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """DCGAN pair for (C, 28, 28) or (C, 32, 32) images."""
    require_batch_norm_g(opts, "dcgan")
    width = WIDTHS[opts.size]
    n_classes = opts.n_classes if opts.conditional else None
    g = init_normal_(DCGANGenerator(shape, nz=opts.nz or 100, width=width, n_classes=n_classes))
    d = init_normal_(DCGANDiscriminator(
        shape, width=width, pack=opts.pack, n_classes=n_classes,
        batch_norm=True if opts.batch_norm_d is None else opts.batch_norm_d,
        minibatch_std=opts.minibatch_std, minibatch_disc=opts.minibatch_disc))
    if opts.spectral_norm:
        spectral_norm_all_(d)
    return g, d


DCGAN = register_architecture(
    "dcgan", build_dcgan,
    summary="Radford 2015 all-convolutional G/D with BatchNorm, width 64 (28x28 and 32x32)",
    supports=("images28", "images32"),
    paper="Radford et al. 2015, arXiv:1511.06434", nz=100, latent="normal",
)
