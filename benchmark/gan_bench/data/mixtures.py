"""2-D Gaussian mixtures for mode-collapse studies (PacGAN, Lin et al. 2018; VEEGAN).

ring8: 8 modes evenly on a circle of radius 1, sigma 0.01. grid25: 25 modes on
{-4,-2,0,2,4}^2, sigma 0.05. Points are float32 (N, 2); labels are the mode index; seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gan_bench.data.base import ArrayDataset, DatasetSource, check_split
from gan_bench.registry import DATASETS

__all__ = ["ring_centres", "grid_centres", "MixtureSource", "RING8", "GRID25"]


def ring_centres(n_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """(n_modes, 2) float64 centres at angles 2*pi*i/n_modes on a circle of `radius`."""
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1)


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """(side^2, 2) float64 centres on a square grid centred at 0, e.g. {-4,-2,0,2,4}^2."""
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


class MixtureSource(DatasetSource):
    """An equal-weight isotropic Gaussian mixture in 2-D."""

    kind = "points"
    shape = (2,)
    default_sizes = {"train": 100_000, "test": 2_500}  # 2,500 scored samples as in PacGAN's code

    def __init__(self, name: str, summary: str, centres_fn: Callable[..., torch.Tensor], sigma: float,
                 **centre_args: float):
        self.name = name
        self.summary = summary
        self.centres_fn = centres_fn
        self.default_sigma = sigma
        self.centre_args = centre_args
        self.n_classes = len(centres_fn(**centre_args))

    def centres(self, **overrides: float) -> torch.Tensor:
        return self.centres_fn(**{**self.centre_args, **overrides}).float()

    def load(self, split: str, *, data_dir: str | Path | None = None, n: int | None = None,
             seed: int = 0, sigma: float | None = None, **centre_overrides: float) -> ArrayDataset:
        check_split(self.name, split)
        n = self.default_sizes[split] if n is None else int(n)
        sigma = self.default_sigma if sigma is None else float(sigma)
        centres = self.centres(**centre_overrides)
        g = torch.Generator().manual_seed(seed * 2 + (split == "test"))
        labels = torch.randint(len(centres), (n,), generator=g)
        points = centres[labels] + sigma * torch.randn(n, 2, generator=g)
        meta = {"seed": seed, "n": n, "sigma": sigma, "centres": centres.tolist()}
        return ArrayDataset(self.name, split, points.float(), labels, "synthetic", meta)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sigma": self.default_sigma, **self.centre_args}

    def option_names(self) -> tuple[str, ...]:
        return (*super().option_names(), *self.centre_args)  # centre args go through **kwargs

    def split_size(self, split: str, options: dict[str, Any]) -> int | None:
        return options.get("n") or self.default_sizes[split]


RING8 = MixtureSource("ring8", "8 Gaussians on a ring of radius 1, sigma 0.01 (PacGAN)",
                      ring_centres, sigma=0.01, n_modes=8, radius=1.0)
GRID25 = MixtureSource("grid25", "25 Gaussians on {-4,-2,0,2,4}^2, sigma 0.05 (PacGAN)",
                       grid_centres, sigma=0.05, side=5, spacing=2.0)
for _m in (RING8, GRID25):
    DATASETS.register(_m.name, _m, summary=_m.summary, **_m.describe())
