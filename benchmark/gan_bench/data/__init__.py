"""Datasets: uint8 images (N, C, H, W) or float32 2-D points, with int64 labels, train/test."""

from __future__ import annotations

from gan_bench.data.base import SPLITS, ArrayDataset, DatasetSource

__all__ = ["ArrayDataset", "DatasetSource", "SPLITS", "load_dataset"]


def load_dataset(name: str, split: str, **options: object) -> ArrayDataset:
    """Load `split` of the registered dataset `name` (options: data_dir, n, seed, ...)."""
    from gan_bench.registry import DATASETS

    return DATASETS.get(name).load(split, **options)
