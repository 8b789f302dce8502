"""The on-disk cache: its root, atomic writes, and content hashes.

Every write goes to a temporary file in the destination's folder and is renamed into place
only when complete, so a crash or a kill mid-write leaves no half file that is later trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_root", "offline", "atomic_path", "atomic_write_bytes", "atomic_write_json",
           "sha256_file", "sha256_bytes", "sha256_array"]

_CHUNK = 1 << 20


def offline() -> bool:
    """True when `$GAN_BENCH_OFFLINE` is set (and not 0 / false / no): no network at all, not
    for torchvision, not for pip. Only local files, the cache and `$GAN_BENCH_WHEELS` are used."""
    return os.environ.get("GAN_BENCH_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def cache_root() -> Path:
    """`$GAN_BENCH_CACHE`, else `~/.cache/gan-bench` (created on demand)."""
    from gan_bench.errors import UserInputError

    given = os.environ.get("GAN_BENCH_CACHE")
    root = given or os.path.join(Path.home(), ".cache", "gan-bench")
    path = Path(root).expanduser().resolve()
    where = f"GAN_BENCH_CACHE={given}" if given else str(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{where}: is a file, not a folder; point GAN_BENCH_CACHE at a "
                             "folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"{where}: cannot create the cache folder ({exc.strerror or exc}); "
                             "point GAN_BENCH_CACHE at a writable folder") from None
    return path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `dest`; on success rename it onto `dest`, else delete it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # data on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(dest: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(dest, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_array(arr: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (dtype and shape are reported next to it)."""
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
