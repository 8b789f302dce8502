"""File formats: IDX (the MNIST family), a numpy-only restricted unpickler, the npz cache."""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from gan_bench.cache import atomic_path, atomic_write_json, sha256_file
from gan_bench.errors import GanBenchError

log = logging.getLogger("gan_bench.data")

__all__ = ["read_idx", "write_idx", "find_file", "restricted_load", "RestrictedUnpickler",
           "save_cache", "load_cache"]

_IDX_DTYPES: dict[int, str | type[np.generic]] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic 0x0000 + dtype byte + ndim, big-endian dims."""
    path = Path(path)
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise GanBenchError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise GanBenchError(f"{path}: IDX header says {dims} ({expected} bytes) but body has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], arr: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz). Used by tests and tools."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    data = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def find_file(dirs: list[Path], name: str) -> Path | None:
    """The first of `dir/name` or `dir/name.gz` that exists."""
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy arrays need; anything else is refused.

    A pickle can call any importable function on load (os.system, eval, ...). The MNIST pickle
    needs exactly numpy's `_reconstruct`, `ndarray` and `dtype`; nothing else is allowed.
    """

    def find_class(self, module: str, name: str) -> Any:
        from numpy._core import multiarray

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            # Python 3 protocol-2 pickles spell bytes as _codecs.encode(str, "latin1"): a pure
            # string-to-bytes function, also allowed by torch's weights_only unpickler.
            ("_codecs", "encode"): codecs.encode,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed"
            ) from None


def restricted_load(data: bytes | BinaryIO) -> Any:
    """Unpickle (Python 2 pickles too, latin1) allowing only numpy arrays, dtypes and tuples."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return RestrictedUnpickler(f, encoding="latin1").load()


def save_cache(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write `data.npz` then `manifest.json` (with the npz sha256), each atomically.

    A reader trusts the npz only when the manifest exists and its hash matches, so a crash
    between or during the two writes leaves nothing that is later used.
    """
    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / "data.npz"
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as f:
            # numpy's stubs match `**arrays` against savez's allow_pickle: bool too
            np.savez(f, **arrays)  # type: ignore[arg-type]
    atomic_write_json(folder / "manifest.json", {**meta, "npz_sha256": sha256_file(npz)})


def load_cache(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Arrays and manifest of a verified cache entry, or None (missing, partial or corrupt)."""
    import json

    npz, manifest = folder / "data.npz", folder / "manifest.json"
    if not (npz.is_file() and manifest.is_file()):
        return None
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("npz_sha256") != sha256_file(npz):
        log.warning("cache %s does not match its manifest: ignored", folder)
        return None
    with np.load(npz, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}, meta


def first_source(name: str,
                 sources: list[tuple[str, Callable[[], tuple[dict[str, np.ndarray], str]]]],
                 failures: list[str], cache_dir: Path, hint: str,
                 check: Callable[[dict[str, np.ndarray]], None] | None = None
                 ) -> tuple[dict[str, np.ndarray], str]:
    """Try `sources` ((label, fetch() -> (arrays, source)) pairs) in order; cache the first that
    works (unless it is the cache itself); else raise one error naming every failure and `hint`."""
    from gan_bench.errors import DataUnavailableError

    for label, fetch in sources:
        try:
            arrays, source = fetch()
            if check is not None:
                check(arrays)
        except Exception as exc:  # every source's failure is reported, then the next is tried
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            log.info("%s: source %s failed: %s", name, label, exc)
            continue
        if not label.startswith("cache"):
            save_cache(cache_dir, arrays, {"dataset": name, "source": source})
        return arrays, source
    raise DataUnavailableError(f"{name}: no source could supply the data; tried: "
                               + "; ".join(failures) + f". {hint}")
