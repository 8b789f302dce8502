"""Real-data features, computed once per protocol and cached on disk and in memory.

FID only needs the real mean and covariance, but KID and PRDC need the real features
themselves, so the features are what is cached. One entry per key: dataset, the dataset
options that change the data, split, n_real, the seed of the real subset, the sha256 of the
subset's data, extractor name + weights sha256, kind, resize, dtype, precision and the device
type the extractor ran on (the extractor's whole `protocol()` is part of the key; `feature_key`
builds it). An entry lives at

    <cache_root>/real_features/<sha256 of the key>.npz   features float32 (n_real, D)
    <cache_root>/real_features/<sha256 of the key>.json  {"key", "npz_sha256", "shape"}

each written atomically, the npz first. A reader uses an entry only when the manifest exists,
its key equals the wanted key and the npz has the recorded sha256 and shape; anything else
(missing, partial, corrupt, mismatching) is recomputed and overwritten, never used.

Entries are memoised in-process by key digest, so the trials of one study read the disk once;
`RealFeatures.stats()` (mean, covariance in float64) is memoised on the entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gan_bench.cache import atomic_path, atomic_write_json, cache_root, sha256_file
from gan_bench.metrics.fid import gaussian_stats

__all__ = ["RealFeatures", "real_features", "feature_key", "key_digest", "entry_paths",
           "clear_memo", "KEY_VERSION"]

log = logging.getLogger("gan_bench.metrics")

# Bump when what is stored under a key changes meaning. 2: the key names the extractor's
# precision and device type (issue 15); version-1 entries may hold cuda features computed with
# cuDNN's default TF32 convolutions, so none is reused.
KEY_VERSION = 2
_MEMO: dict[str, RealFeatures] = {}


def feature_key(data: dict[str, Any], protocol: dict[str, Any], device_type: str) -> dict[str, Any]:
    """The key of real features: `data` (what was scored: dataset, options, split, n_real, subset
    seed, data sha256), the extractor's whole `protocol` (name, weights sha256, resize, dtype,
    precision) and the device type it ran on ("cpu" or "cuda": their kernels round differently,
    and TF32 exists only on cuda)."""
    named = {f: protocol.get(f) for f in ("extractor", "extractor_sha256", "resize", "dtype",
                                          "precision")}
    return {**data, "kind": "features", **named, "device_type": device_type,
            "extractor_protocol": protocol}


def _normalise(key: dict[str, Any]) -> dict[str, Any]:
    """The key as JSON gives it back (tuples -> lists, keys -> str): comparable with a manifest."""
    return json.loads(json.dumps({"key_version": KEY_VERSION, **key}, sort_keys=True, default=str))


def key_digest(key: dict[str, Any]) -> str:
    """sha256 of the key's canonical JSON: the entry's file name."""
    text = json.dumps(_normalise(key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def entry_paths(key: dict[str, Any]) -> tuple[Path, Path]:
    """(npz, manifest) paths of the entry for `key` under the current cache root."""
    folder = cache_root() / "real_features"
    digest = key_digest(key)
    return folder / f"{digest}.npz", folder / f"{digest}.json"


class RealFeatures:
    """Real features (N, D) float32 with their key; `stats()` memoises the Gaussian fit."""

    def __init__(self, features: np.ndarray, key: dict[str, Any], origin: str) -> None:
        self.features = features
        self.key = _normalise(key)
        self.digest = key_digest(key)
        self.origin = origin  # how this process got it: "computed" or "disk" (a verified entry)
        self._stats: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu (D,), sigma (D, D)) float64, computed once."""
        if self._stats is None:
            self._stats = gaussian_stats(self.features)
        return self._stats


def _load(key: dict[str, Any]) -> np.ndarray | None:
    """The verified features of `key`'s entry, or None (missing, corrupt or mismatching)."""
    npz, manifest = entry_paths(key)
    if not (npz.is_file() and manifest.is_file()):
        return None
    try:
        meta = json.loads(manifest.read_text())
        if not isinstance(meta, dict):  # e.g. `[]`: valid JSON, but no manifest
            raise ValueError(f"manifest holds {type(meta).__name__}, not an object")
        if meta.get("key") != _normalise(key):
            raise ValueError("manifest key differs from the wanted key")
        if meta.get("npz_sha256") != sha256_file(npz):
            raise ValueError("npz sha256 differs from the manifest")
        with np.load(npz, allow_pickle=False) as z:
            features = z["features"]
        if list(features.shape) != meta.get("shape") or features.dtype != np.float32:
            raise ValueError(f"stored array {features.shape} {features.dtype} differs from "
                             "the manifest")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("real-feature cache %s not used (%s): recomputing", npz.name, exc)
        return None
    return features


def _store(key: dict[str, Any], features: np.ndarray) -> None:
    npz, manifest = entry_paths(key)
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=features)
    atomic_write_json(manifest, {"key": _normalise(key), "npz_sha256": sha256_file(npz),
                                 "shape": list(features.shape)})


def real_features(key: dict[str, Any], compute: Callable[[], np.ndarray], *,
                  disk: bool = True) -> RealFeatures:
    """The features for `key`: from memory, else a verified disk entry, else `compute()`.

    compute() returns features (N, D); they are stored as float32. disk=False keeps the entry
    in memory only (raw 2-D points, where a file would save nothing).
    """
    digest = key_digest(key)
    hit = _MEMO.get(digest)
    if hit is not None:
        return hit
    features = _load(key) if disk else None
    origin = "disk"
    if features is None:
        features = np.ascontiguousarray(np.asarray(compute(), dtype=np.float32))
        origin = "computed"
        if disk:
            _store(key, features)
    entry = RealFeatures(features, key, origin)
    _MEMO[digest] = entry
    return entry


def clear_memo() -> None:
    """Forget the in-process entries (the next request reads the disk)."""
    _MEMO.clear()
