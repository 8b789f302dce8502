"""Metric records: a value together with the protocol that produced it.

A number without its protocol (extractor and its weights hash, resize, sample counts, real
split, dtype and precision, seed, package versions) cannot be compared with another; every
metric wrapper returns a `MetricRecord` whose `protocol` is built by `base_protocol`.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MetricRecord", "package_versions", "base_protocol", "protocol_differences",
           "PROTOCOL_FIELDS", "COMPARED_FIELDS", "VERSIONED_PACKAGES"]

# Fields every protocol dict carries (missing ones are None). `params` holds the metric's own
# settings (e.g. {"k": 3}, {"splits": 10}, {"subsets": 100, "subset_size": 1000}). `precision`:
# the extractor's float32 math, "fp32-strict" or "tf32" (metrics/features.py; None: no network).
PROTOCOL_FIELDS = ("metric", "extractor", "extractor_sha256", "resize", "n_real", "n_fake",
                   "real_split", "dtype", "precision", "seed", "params", "versions")
# Fields that make two values of one metric comparable or not: every field but the metric's name
# (compared by the caller) and the package versions (reported, but a patch release of numpy
# does not make an FID incomparable).
COMPARED_FIELDS = tuple(f for f in PROTOCOL_FIELDS if f not in ("metric", "versions"))
# distribution names for importlib.metadata; gan_bench is distributed as "gan-bench"
VERSIONED_PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy",
                      "scipy": "scipy", "torchmetrics": "torchmetrics", "gan_bench": "gan-bench"}


def package_versions() -> dict[str, str]:
    """{package: version} for the packages that change metric values; "absent" when missing."""
    versions = {}
    for key, dist in VERSIONED_PACKAGES.items():
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = "absent"
    return versions


def base_protocol(**fields: Any) -> dict[str, Any]:
    """A protocol dict with every PROTOCOL_FIELDS key: given fields, None for the rest, and
    versions = package_versions() unless given. Unknown field names raise ValueError (a typo
    would otherwise silently drop part of the protocol)."""
    unknown = sorted(set(fields) - set(PROTOCOL_FIELDS))
    if unknown:
        raise ValueError(f"unknown protocol field(s) {', '.join(unknown)}; known: "
                         f"{', '.join(PROTOCOL_FIELDS)}")
    protocol = {name: fields.get(name) for name in PROTOCOL_FIELDS}
    if protocol["versions"] is None:
        protocol["versions"] = package_versions()
    return protocol


def protocol_differences(ref: Mapping[str, Any], ours: Mapping[str, Any]) -> list[str]:
    """What differs between two protocols of one metric, e.g. ["dtype float64 vs float32",
    "params.k 3 vs 5"]; [] when the values are comparable. `params` is compared key by key."""
    out = []
    for name in COMPARED_FIELDS:
        a, b = ref.get(name), ours.get(name)
        if name == "params" and isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"params.{k} {a.get(k)} vs {b.get(k)}" for k in sorted({*a, *b}, key=str)
                    if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{name} {a} vs {b}")
    return out


def _jsonable(x: Any) -> Any:
    """Plain JSON types: numpy/torch scalars -> Python, tuples -> lists, paths and dict keys -> str."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy / torch arrays, scalars
        return _jsonable(x.tolist())
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    raise TypeError(f"not JSON-ready: {type(x).__name__} ({x!r})")


def _finite_float(x: Any, name: str) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {x!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class MetricRecord:
    """One metric value, its extras (e.g. {"std": 0.1}) and the protocol that produced it.

    value and extras are finite floats (a failed metric raises instead of recording NaN).
    protocol and extra are copied on construction.
    """

    metric: str
    value: float
    protocol: dict[str, Any]
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"metric must be a non-empty string, got {self.metric!r}")
        object.__setattr__(self, "value", _finite_float(self.value, f"{self.metric} value"))
        extra = {str(k): _finite_float(v, f"{self.metric} extra {k!r}") for k, v in self.extra.items()}
        object.__setattr__(self, "extra", extra)
        object.__setattr__(self, "protocol", _jsonable(dict(self.protocol)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready {"metric", "value", "extra", "protocol"}."""
        return {"metric": self.metric, "value": self.value, "extra": dict(self.extra),
                "protocol": _jsonable(self.protocol)}

    def flat(self, prefix: str = "") -> dict[str, float]:
        """{prefix+metric: value, prefix+metric+"_"+key: extra} for loggers (e.g. mlflow)."""
        out = {f"{prefix}{self.metric}": self.value}
        out.update({f"{prefix}{self.metric}_{key}": v for key, v in self.extra.items()})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricRecord:
        """Inverse of to_dict."""
        return cls(metric=data["metric"], value=data["value"], protocol=data["protocol"],
                   extra=data.get("extra", {}))
