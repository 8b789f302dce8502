"""One small generic Registry, and one instance per axis of the benchmark.

Modelled on torch-fidelity's registry and torchvision's `register_model` / `get_model`:
registration rejects duplicate names, an unknown name fails with the list of known ones, and
`gan-bench list` prints the catalogue.

Built-in entries register themselves when their module is imported; BUILTIN_MODULES lists every
such module, in one place. A registry loads them, and the installed plugins, on its first use
(`load_builtins`, once per process): no caller has to. Plugins are installed packages with an
entry point in the group `gan_bench.plugins` (gan_bench/plugins.py); each entry records where
it came from (`source`: "built-in", or the plugin's distribution and module).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gan_bench.errors import UnknownNameError

T = TypeVar("T")

__all__ = [
    "Entry", "Registry", "DATASETS", "ARCHITECTURES", "LOSSES", "PENALTIES", "PRESETS",
    "METRICS", "FEATURE_EXTRACTORS", "REGISTRIES", "BUILTIN_MODULES", "load_builtins",
    "registering_from",
]

BUILTIN_MODULES = (  # the built-in catalogue: each module registers its entries on import
    # datasets
    "gan_bench.data.mnist",
    "gan_bench.data.stacked_mnist",
    "gan_bench.data.mixtures",
    "gan_bench.data.torchvision_sets",
    # architectures (one family per file)
    "gan_bench.models.mlp",
    "gan_bench.models.toy_mlp",
    "gan_bench.models.dcgan",
    "gan_bench.models.infogan",
    # losses, penalties, presets
    "gan_bench.losses",
    "gan_bench.penalties",
    "gan_bench.presets",
    # evaluation
    "gan_bench.metrics.features",
    "gan_bench.metrics.builtin",
)
_LOAD = {"done": False, "running": False, "source": "built-in"}


def load_builtins() -> None:
    """Import every built-in module, then load the installed plugins; once per process (a
    registry calls this on its first use, so nobody else needs to)."""
    if _LOAD["done"] or _LOAD["running"]:
        return
    _LOAD["running"] = True
    try:
        for name in BUILTIN_MODULES:
            importlib.import_module(name)
        importlib.import_module("gan_bench.plugins").load_plugins()
        _LOAD["done"] = True
    finally:
        _LOAD["running"] = False


@contextlib.contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Entries registered within the block record `source` (a plugin's name and module)."""
    before = _LOAD["source"]
    _LOAD["source"] = source
    try:
        yield
    finally:
        _LOAD["source"] = before


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its one-line summary and free-form catalogue fields."""

    name: str
    obj: T
    summary: str
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description used by `gan-bench list --json`."""
        return {"name": self.name, "summary": self.summary, **self.meta}


def _first_doc_line(obj: object) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


class Registry(Generic[T]):
    """Name -> object map for one axis (losses, architectures, ...)."""

    def __init__(self, axis: str, singular: str | None = None) -> None:
        self.axis = axis  # plural, e.g. "losses"
        self.singular = singular or axis.rstrip("s")  # used in messages: "unknown loss 'x'"
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T | None = None, *, summary: str | None = None,
                 reference: bool = False, **meta: Any) -> Any:
        """Register `obj` under `name`; without `obj`, return a decorator. `reference`: `name`
        is a `package.module:callable` reference a suite named (gan_bench/plugins.py)."""
        if obj is None:
            def decorator(o: T) -> T:
                self.register(name, o, summary=summary, reference=reference, **meta)
                return o
            return decorator
        plain = name.replace("_", "").replace("-", "")
        if not name or not (plain.isalnum() or reference):
            raise ValueError(f"invalid {self.singular} name {name!r}: use letters, digits, _ and -")
        if name in self._entries:
            raise ValueError(f"duplicate {self.singular} name {name!r} in registry {self.axis!r}")
        meta.setdefault("source", _LOAD["source"])
        self._entries[name] = Entry(name, obj, summary if summary is not None
                                    else _first_doc_line(obj), dict(meta))
        return obj

    def entry(self, name: str) -> Entry[T]:
        load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.singular} {name!r} (known: {', '.join(self.names()) or 'none'})"
            ) from None

    def get(self, name: str) -> T:
        """The object registered under `name`; UnknownNameError listing known names otherwise."""
        return self.entry(name).obj

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._entries)

    def catalogue(self) -> list[dict[str, Any]]:
        return [self._entries[n].describe() for n in self.names()]

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        load_builtins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.axis!r}, {self.names()})"


DATASETS: Registry[Any] = Registry("datasets", "dataset")
ARCHITECTURES: Registry[Any] = Registry("architectures", "architecture")
# LOSSES holds gan_bench.losses.GanLoss, PENALTIES gan_bench.penalties.Penalty instances; those
# modules import this one, so it cannot name their classes (their users annotate what they get).
LOSSES: Registry[Any] = Registry("losses", "loss")
PENALTIES: Registry[Any] = Registry("penalties", "penalty")
PRESETS: Registry[Any] = Registry("presets", "preset")
METRICS: Registry[Any] = Registry("metrics", "metric")
FEATURE_EXTRACTORS: Registry[Any] = Registry("feature_extractors", "feature extractor")

REGISTRIES: dict[str, Registry[Any]] = {
    r.axis: r for r in (DATASETS, ARCHITECTURES, LOSSES, PENALTIES, PRESETS, METRICS,
                        FEATURE_EXTRACTORS)
}
