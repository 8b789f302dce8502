"""The "InfoGAN-style" MNIST nets of Lucic et al. 2018, "Are GANs Created Equal? A Large-Scale
Study" (arXiv:1711.10337), as in the authors' code (compare_gan v1, `abstract_gan.py`, `ops.py`).

    D: conv 64 (4x4, s2) -> lrelu -> conv 128 (4x4, s2) -> [BN] -> lrelu
       -> fc 1024 -> [BN] -> lrelu -> fc 1
    G: fc 1024 -> BN -> lrelu -> fc 128*7*7 -> BN -> lrelu -> reshape (128, 7, 7)
       -> deconv 64 (4x4, s2) -> BN -> lrelu -> deconv C (4x4, s2) -> output

Details kept from that code, because they change results or parameter counts:

- lrelu slope 0.2 everywhere, G included.
- z ~ U(-1, 1), nz = 64.
- Every conv / deconv / fc layer has a bias, even before BatchNorm.
- G's second BatchNorm acts on the flat 6272 fc features (BatchNorm1d(6272)), before the reshape.
- BatchNorm: TensorFlow decay 0.999 and epsilon 1e-3, i.e. torch momentum 0.001, eps 1e-3;
  scale 1 and shift 0 at init. compare_gan sampled images for FID with G in inference mode
  (moving averages), so call `G.eval()` for evaluation samples as it did.
- Init: fc and deconv weights N(0, 0.02), conv weights truncated normal (std 0.02, cut at 2 std,
  TensorFlow's truncated_normal_initializer), biases 0.
- batch_norm_d (BN in D) defaults to True; Lucic searched it on/off (PROTOCOLS.md).
- Output: Lucic's sigmoid gives [0, 1]; the benchmark's images live in [-1, 1], so G returns
  2 * sigmoid(a) - 1 == tanh(a / 2): the same net, rescaled (FID after mapping back is identical).

small divides every width by 4; tiny divides every width by 8: G fc 128 -> 16*7*7 -> 8 -> C; D 8 -> 16 -> fc 128.
Options: spectral_norm on every D layer with a weight; minibatch_std adds one channel to the
7x7x128 map before fc 1024; minibatch_disc (Salimans 2016) feeds [fc features, minibatch
features] to the logit; pack multiplies D's input channels; conditional adds one-hot(y) to z
and a Linear class head on D's 1024 features (AC-GAN). Shapes: (C, 28, 28) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor, nn

from gan_bench.models.base import (
    ArchOptions,
    Discriminator,
    Generator,
    register_architecture,
    require_batch_norm_g,
)
from gan_bench.models.options import MinibatchStd, init_normal_, logit_head, spectral_norm_all_

__all__ = ["InfoGANGenerator", "InfoGANDiscriminator", "build_infogan", "INFOGAN", "WIDTHS"]

if TYPE_CHECKING:
    from typing import TypedDict

    class _BatchNormArgs(TypedDict):  # BN's keys, so `**BN` type-checks against BatchNorm's
        eps: float
        momentum: float

# size -> (fc width, wide conv channels, narrow conv channels): G fc-(wide*7*7)-narrow-C,
# D narrow-wide-fc
WIDTHS = {"full": (1024, 128, 64), "small": (256, 32, 16), "tiny": (128, 16, 8)}
SLOPE = 0.2
BN: _BatchNormArgs = {"eps": 1e-3, "momentum": 1e-3}  # TensorFlow epsilon 0.001, decay 0.999


class InfoGANGenerator(Generator):
    """z (N, 64) ~ U(-1, 1) [+ one-hot y] -> (N, C, 28, 28) in [-1, 1] (tanh(a / 2))."""

    def __init__(self, out_shape: Sequence[int], *, nz: int = 64, fc: int = 1024,
                 wide: int = 128, narrow: int = 64, n_classes: int | None = None) -> None:
        super().__init__(nz, out_shape, latent="uniform", n_classes=n_classes)
        c = self.out_shape[0]
        self.wide = wide
        self.fc = nn.Sequential(
            nn.Linear(self.in_features, fc), nn.BatchNorm1d(fc, **BN), nn.LeakyReLU(SLOPE),
            nn.Linear(fc, wide * 49), nn.BatchNorm1d(wide * 49, **BN), nn.LeakyReLU(SLOPE),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(wide, narrow, 4, 2, 1), nn.BatchNorm2d(narrow, **BN),
            nn.LeakyReLU(SLOPE),                                   # 7 -> 14
            nn.ConvTranspose2d(narrow, c, 4, 2, 1),                # 14 -> 28
        )

    def decode(self, h: Tensor) -> Tensor:
        a = self.deconv(self.fc(h).view(-1, self.wide, 7, 7))
        return (0.5 * a).tanh()  # == 2 * sigmoid(a) - 1, Lucic's sigmoid rescaled to [-1, 1]


class InfoGANDiscriminator(Discriminator):
    """(N, C, 28, 28) -> (N // pack,) logits; features are the fc layer's (M, 1024)."""

    def __init__(self, in_shape: Sequence[int], *, fc: int = 1024, wide: int = 128,
                 narrow: int = 64, batch_norm: bool = True, pack: int = 1,
                 n_classes: int | None = None, minibatch_std: bool = False,
                 minibatch_disc: bool = False) -> None:
        super().__init__(in_shape, pack=pack, n_classes=n_classes)
        c = self.in_shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(c * pack, narrow, 4, 2, 1), nn.LeakyReLU(SLOPE),              # 28 -> 14
            nn.Conv2d(narrow, wide, 4, 2, 1),                                       # 14 -> 7
            *([nn.BatchNorm2d(wide, **BN)] if batch_norm else []), nn.LeakyReLU(SLOPE),
            *([MinibatchStd()] if minibatch_std else []),
        )
        self.fc = nn.Sequential(
            nn.Linear((wide + int(minibatch_std)) * 49, fc),
            *([nn.BatchNorm1d(fc, **BN)] if batch_norm else []), nn.LeakyReLU(SLOPE),
        )
        self.head = logit_head(fc, minibatch_disc)
        if n_classes is not None:
            self.aux_head = nn.Linear(fc, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).flatten(1))

    def logits(self, h: Tensor) -> Tensor:
        return self.head(h).squeeze(1)


def _truncated_conv_init_(module: nn.Module, std: float = 0.02) -> None:
    """compare_gan's conv2d: truncated normal weights (cut at 2 std), as TensorFlow draws them."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)


def build_infogan(shape: tuple[int, ...],
                  opts: ArchOptions) -> tuple[InfoGANGenerator, InfoGANDiscriminator]:
    """Lucic 2018 InfoGAN-style pair for (C, 28, 28) images."""
    require_batch_norm_g(opts, "infogan")
    fc, wide, narrow = WIDTHS[opts.size]
    n_classes = opts.n_classes if opts.conditional else None
    g = InfoGANGenerator(shape, nz=opts.nz or 64, fc=fc, wide=wide, narrow=narrow,
                         n_classes=n_classes)
    d = InfoGANDiscriminator(
        shape, fc=fc, wide=wide, narrow=narrow,
        batch_norm=True if opts.batch_norm_d is None else opts.batch_norm_d,
        pack=opts.pack, n_classes=n_classes, minibatch_std=opts.minibatch_std,
        minibatch_disc=opts.minibatch_disc)
    init_normal_(g, bn_std=0.0)
    init_normal_(d, bn_std=0.0)
    _truncated_conv_init_(d)
    if opts.spectral_norm:
        spectral_norm_all_(d)
    return g, d


INFOGAN = register_architecture(
    "infogan", build_infogan,
    summary="Lucic 2018 InfoGAN-style MNIST nets (z ~ U(-1,1), 64-d; BN in D searched on/off)",
    supports=("images28",),
    paper="Lucic et al. 2018, arXiv:1711.10337 (compare_gan v1)", nz=64, latent="uniform",
)
