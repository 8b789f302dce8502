"""One small generic Registry, and one instance per axis of the benchmark.

Modelled on torch-fidelity's registry and torchvision's `register_model` / `get_model`:
registration rejects duplicate names, an unknown name fails with the list of known ones, and
`gan-bench list` prints the catalogue. Built-in entries register themselves on import; the
whole built-in catalogue is imported in one place, `gan_bench.catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from gan_bench.errors import UnknownNameError

T = TypeVar("T")

__all__ = [
    "Entry", "Registry", "DATASETS", "ARCHITECTURES", "LOSSES", "PENALTIES", "PRESETS",
    "METRICS", "FEATURE_EXTRACTORS", "REGISTRIES",
]


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


def _first_doc_line(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


class Registry(Generic[T]):
    """Name -> object map for one axis (losses, architectures, ...)."""

    def __init__(self, axis: str, singular: str | None = None) -> None:
        self.axis = axis  # plural, e.g. "losses"
        self.singular = singular or axis.rstrip("s")  # used in messages: "unknown loss 'x'"
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T | None = None, *, summary: str | None = None,
                 **meta: Any) -> Any:
        """Register `obj` under `name`; without `obj`, return a decorator."""
        if obj is None:
            def decorator(o: T) -> T:
                self.register(name, o, summary=summary, **meta)
                return o
            return decorator
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid {self.singular} name {name!r}: use letters, digits, _ and -")
        if name in self._entries:
            raise ValueError(f"duplicate {self.singular} name {name!r} in registry {self.axis!r}")
        self._entries[name] = Entry(name, obj, summary if summary is not None
                                    else _first_doc_line(obj), dict(meta))
        return obj

    def entry(self, name: str) -> Entry[T]:
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
        return sorted(self._entries)

    def catalogue(self) -> list[dict[str, Any]]:
        return [self._entries[n].describe() for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.axis!r}, {self.names()})"


DATASETS: Registry[Any] = Registry("datasets", "dataset")
ARCHITECTURES: Registry[Any] = Registry("architectures", "architecture")
LOSSES: Registry[Callable[..., Any]] = Registry("losses", "loss")
PENALTIES: Registry[Callable[..., Any]] = Registry("penalties", "penalty")
PRESETS: Registry[Any] = Registry("presets", "preset")
METRICS: Registry[Any] = Registry("metrics", "metric")
FEATURE_EXTRACTORS: Registry[Any] = Registry("feature_extractors", "feature extractor")

REGISTRIES: dict[str, Registry[Any]] = {
    r.axis: r for r in (DATASETS, ARCHITECTURES, LOSSES, PENALTIES, PRESETS, METRICS,
                        FEATURE_EXTRACTORS)
}
