"""A residual MLP G and D for 2-D points and 28x28 images: the architecture contract of
gan_bench.models.base (a builder (data_shape, ArchOptions) -> (Generator, Discriminator))."""

from __future__ import annotations

import math

from torch import Tensor, nn

from gan_bench.models.base import ArchOptions, Discriminator, Generator


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, width))

    def forward(self, h: Tensor) -> Tensor:
        return h + self.body(h)


class ResMLPGenerator(Generator):
    def __init__(self, shape: tuple[int, ...], nz: int, width: int, blocks: int,
                 n_classes: int | None) -> None:
        super().__init__(nz, shape, n_classes=n_classes)
        self.images = len(shape) == 3
        out = math.prod(shape)
        self.net = nn.Sequential(nn.Linear(self.in_features, width), nn.LeakyReLU(0.2),
                                 *[_Residual(width) for _ in range(blocks)], nn.Linear(width, out))

    def decode(self, h: Tensor) -> Tensor:
        x = self.net(h).reshape(h.shape[0], *self.out_shape)
        return x.tanh() if self.images else x  # images in [-1, 1], points unbounded


class ResMLPDiscriminator(Discriminator):
    def __init__(self, shape: tuple[int, ...], width: int, blocks: int, pack: int) -> None:
        super().__init__(shape, pack=pack)
        self.body = nn.Sequential(nn.Linear(pack * math.prod(shape), width), nn.LeakyReLU(0.2),
                                  *[_Residual(width) for _ in range(blocks)])
        self.head = nn.Linear(width, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x.flatten(1))

    def logits(self, h: Tensor) -> Tensor:
        return self.head(h).reshape(-1)


def build(shape: tuple[int, ...], opts: ArchOptions) -> tuple[Generator, Discriminator]:
    """Residual MLP G and D (width 64 on points, 256 on images; two residual blocks)."""
    width = 64 if len(shape) == 1 else 256
    nz = opts.nz or (2 if len(shape) == 1 else 64)
    n_classes = opts.n_classes if opts.conditional else None
    return (ResMLPGenerator(shape, nz, width, 2, n_classes),
            ResMLPDiscriminator(shape, width, 2, opts.pack))


build.supports = ("points", "images28")  # what gan-bench's suite check compares the data with
