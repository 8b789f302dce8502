"""Dataset containers and the small base class every dataset source implements.

Images are uint8 (N, C, H, W) in [0, 255]; 2-D mixtures are float32 points (N, 2). Labels are
int64 (N,). The whole set fits in memory (and on a GPU) for every dataset here, so training
samples batches by random index on the device; no DataLoader is needed.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.cache import sha256_array

__all__ = ["ArrayDataset", "DatasetSource", "SPLITS"]

SPLITS = ("train", "test")
SEED_LIMIT = 2**31  # as the suite's sampler.seed: a seed that every generator here accepts


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _positive(v: object) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0)


# What a dataset option's value must be, by name (the names mean the same for every dataset).
OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data_dir": (lambda v: isinstance(v, str) and bool(v), "must be a folder path"),
    "n": (_count, "must be an integer >= 1 (samples per split)"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < SEED_LIMIT,
             "must be an integer in [0, 2**31)"),
    "sigma": (_positive, "must be a finite number > 0"),
    "radius": (_positive, "must be a finite number > 0"),
    "spacing": (_positive, "must be a finite number > 0"),
    "n_modes": (_count, "must be an integer >= 1"),
    "side": (_count, "must be an integer >= 1"),
}


@dataclass(frozen=True)
class ArrayDataset:
    """A whole split in memory: `data` uint8 (N, C, H, W) images or float32 (N, 2) points."""

    name: str
    split: str
    data: torch.Tensor
    labels: torch.Tensor  # int64 (N,)
    source: str  # where the arrays came from, for `data info` and run protocols
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.name}/{self.split}: {self.data.shape[0]} samples but "
                             f"{self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def is_image(self) -> bool:
        return self.data.dim() == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.data.device

    def to(self, device: str | torch.device) -> ArrayDataset:
        """The same split resident on `device` (one copy; batches are then sampled there)."""
        return replace(self, data=self.data.to(device), labels=self.labels.to(device))

    def subset(self, n: int) -> ArrayDataset:
        """The first `n` samples (deterministic; for tiny test modes)."""
        return replace(self, data=self.data[:n], labels=self.labels[:n])

    def sample_indices(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform random indices with replacement, drawn on the data's device."""
        return torch.randint(len(self), (batch_size,), device=self.device, generator=generator)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float batch for training: images scaled to [-1, 1] float32, points as they are."""
        x = self.data[idx]
        if self.is_image:
            x = x.float().div_(127.5).sub_(1.0)
        return x, self.labels[idx]

    def info(self) -> dict[str, Any]:
        """Shapes, dtype, label counts, sha256 of the data array and source."""
        arr = self.data.cpu().numpy()
        labels = self.labels.cpu().numpy()
        values, counts = np.unique(labels, return_counts=True)
        out = {
            "dataset": self.name, "split": self.split, "n": len(self),
            "shape": list(arr.shape), "dtype": str(arr.dtype),
            "min": float(arr.min()) if arr.size else None,
            "max": float(arr.max()) if arr.size else None,
            "n_classes": int(values.size),
            "sha256": sha256_array(arr), "labels_sha256": sha256_array(labels),
            "source": self.source,
        }
        if values.size <= 20:
            out["label_counts"] = {int(v): int(c) for v, c in zip(values, counts)}
        out.update(self.meta)
        return out


class DatasetSource(ABC):
    """How one dataset is obtained. Subclasses implement `load`; `prepare` fills the cache."""

    name: str = ""
    kind: str = "images"  # "images" (uint8 N,C,H,W) or "points" (float32 N,2)
    shape: tuple[int, ...] = ()  # one sample's shape
    n_classes: int = 0

    @abstractmethod
    def load(self, split: str, *, data_dir: str | Path | None = None, **options: Any) -> ArrayDataset:
        """Return the whole `split` ("train" or "test") in memory on the CPU."""

    def prepare(self, *, data_dir: str | Path | None = None, **options: Any) -> list[ArrayDataset]:
        """Fetch / convert into the cache; return both splits (for `gan-bench data info`)."""
        return [self.load(s, data_dir=data_dir, **options) for s in SPLITS]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape), "n_classes": self.n_classes}

    def option_names(self) -> tuple[str, ...]:
        """The options `load` takes (a suite's `dataset.options`): its keyword-only parameters."""
        params = inspect.signature(self.load).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)

    def option_problems(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(option, what is wrong) for each option `load` does not take or would misread."""
        known = self.option_names()
        problems = []
        for key, value in options.items():
            rule = OPTION_RULES.get(key)
            if key not in known:
                problems.append((key, f"unknown option of {self.name} (known: "
                                      f"{', '.join(known)})"))
            elif rule is not None and not rule[0](value):
                problems.append((key, f"{rule[1]} (got {value!r:.60})"))
        return problems

    def split_size(self, split: str, options: dict[str, Any]) -> int | None:
        """Samples in `split` with these options, where known without loading (else None)."""
        return None


def check_split(name: str, split: str) -> str:
    from gan_bench.errors import UserInputError

    if split not in SPLITS:
        raise UserInputError(f"{name}: unknown split {split!r} (known: {', '.join(SPLITS)})")
    return split
