"""Datasets that need files or the network: Fashion-MNIST and CIFAR-10.

Offline without files they fail with the clear "sources tried" error, never a hang.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.cache import cache_root, offline
from gan_bench.data.base import ArrayDataset, DatasetSource, check_split
from gan_bench.data.formats import first_source, load_cache, restricted_load
from gan_bench.data.idx_sets import DOWNLOAD_TIMEOUT_S, IdxImageSource, data_dir_from_env
from gan_bench.registry import DATASETS

log = logging.getLogger("gan_bench.data")

FASHION_MNIST = IdxImageSource("fashion_mnist", folder_name="FashionMNIST", tv_class="FashionMNIST")
DATASETS.register("fashion_mnist", FASHION_MNIST,
                  summary="Fashion-MNIST (Xiao et al. 2017), 60k/10k, uint8 1x28x28 (IDX files, cache, torchvision)",
                  **FASHION_MNIST.describe())

CIFAR_FOLDER = "cifar-10-batches-py"


def read_cifar_dir(root: Path) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches from `root` or `root/cifar-10-batches-py`; images (N,3,32,32)."""
    folder = root / CIFAR_FOLDER if (root / CIFAR_FOLDER).is_dir() else root
    out: dict[str, np.ndarray] = {}
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        xs, ys = [], []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"no {name} in {folder}")
            batch = restricted_load(path.read_bytes())
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        out[f"{split}_x"], out[f"{split}_y"] = np.concatenate(xs), np.concatenate(ys)
    return out


class Cifar10Source(DatasetSource):
    """CIFAR-10 (Krizhevsky 2009), 50k/10k, uint8 3x32x32 (python batches, cache, torchvision)."""

    name = "cifar10"
    kind = "images"
    shape = (3, 32, 32)
    n_classes = 10

    def __init__(self) -> None:
        self._memo: dict[str, tuple[dict[str, np.ndarray], str]] = {}

    def split_size(self, split: str, options: dict[str, Any]) -> int | None:
        return {"train": 50_000, "test": 10_000}.get(split)

    def load(self, split: str, *, data_dir: str | Path | None = None, **options: object) -> ArrayDataset:
        check_split(self.name, split)
        root = data_dir_from_env(data_dir)
        key = f"{root}|{cache_root()}"
        if key not in self._memo:
            self._memo[key] = self._resolve(root)
        arrays, source = self._memo[key]
        return ArrayDataset(self.name, split, torch.from_numpy(arrays[f"{split}_x"]),
                            torch.from_numpy(arrays[f"{split}_y"]), source)

    def _resolve(self, root: Path | None) -> tuple[dict[str, np.ndarray], str]:
        cache_dir = cache_root() / "datasets" / self.name
        failures: list[str] = []
        sources: list[tuple[str, Callable[[], tuple[dict[str, np.ndarray], str]]]] = []
        if root is not None:
            sources.append((f"data dir {root}", lambda: (read_cifar_dir(root), f"python batches in {root}")))
        else:
            failures.append("data dir: none given (--data-dir or $GAN_BENCH_DATA)")

        def from_cache() -> tuple[dict[str, np.ndarray], str]:
            hit = load_cache(cache_dir)
            if hit is None:
                raise FileNotFoundError("no verified cache entry")
            return hit[0], f"cache {cache_dir} (from {hit[1].get('source')})"

        sources += [(f"cache {cache_dir}", from_cache),
                    ("torchvision download of CIFAR10", lambda: (self._download(), "torchvision CIFAR10 download"))]
        return first_source(
            self.name, sources, failures, cache_dir,
            hint=f"Put the python batches ({CIFAR_FOLDER}/data_batch_1..5, test_batch) in a folder "
                 "and pass --data-dir FOLDER or set GAN_BENCH_DATA=FOLDER.")

    def _download(self) -> dict[str, np.ndarray]:
        if offline():
            raise RuntimeError("skipped: GAN_BENCH_OFFLINE is set")
        import torchvision.datasets as tvd

        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with tempfile.TemporaryDirectory(prefix="gan-bench-cifar10-") as tmp:
                tvd.CIFAR10(root=tmp, train=True, download=True)
                return read_cifar_dir(Path(tmp))
        finally:
            socket.setdefaulttimeout(old)


CIFAR10 = Cifar10Source()
DATASETS.register("cifar10", CIFAR10, **CIFAR10.describe())
