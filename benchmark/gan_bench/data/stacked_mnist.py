"""Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): 1000 modes.

Each sample stacks three MNIST digits, drawn independently and uniformly, into the three
channels (3x28x28); its label is 100*a + 10*b + c for the digits a, b, c (R, G, B).
Deterministic for a given seed and size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan_bench.data.base import ArrayDataset, DatasetSource, check_split
from gan_bench.data.mnist import MNIST
from gan_bench.registry import DATASETS

DEFAULT_SIZES = {"train": 60_000, "test": 10_000}  # stacks drawn from the MNIST split of the same name
SPLIT_SEED_OFFSET = {"train": 0, "test": 1}  # train and test stacks never share a random stream


def stack_digits(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n triples of indices with replacement; return uint8 (n,3,28,28) and labels 100a+10b+c."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(images), (n, 3), generator=g)
    stacked = images[idx].squeeze(2)  # (n, 3, 1, 28, 28) -> (n, 3, 28, 28)
    digits = labels[idx]
    return stacked.contiguous(), digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


class StackedMnistSource(DatasetSource):
    """Stacked MNIST: three MNIST digits as channels, 1000 modes, uint8 3x28x28, seeded."""

    name = "stacked_mnist"
    kind = "images"
    shape = (3, 28, 28)
    n_classes = 1000

    def split_size(self, split: str, options: dict[str, Any]) -> int | None:
        return options.get("n") or DEFAULT_SIZES[split]

    def load(self, split: str, *, data_dir: str | Path | None = None, n: int | None = None,
             seed: int = 0, **options: object) -> ArrayDataset:
        check_split(self.name, split)
        if options:
            raise TypeError(f"{self.name}: unexpected options {sorted(options)}")
        n = DEFAULT_SIZES[split] if n is None else int(n)
        base = MNIST.load(split, data_dir=data_dir)
        data, labels = stack_digits(base.data, base.labels, n, seed * 2 + SPLIT_SEED_OFFSET[split])
        return ArrayDataset(self.name, split, data, labels,
                            f"stacked from mnist/{split} ({base.source})", {"seed": seed, "n": n})


STACKED_MNIST = StackedMnistSource()
DATASETS.register("stacked_mnist", STACKED_MNIST, **STACKED_MNIST.describe())
