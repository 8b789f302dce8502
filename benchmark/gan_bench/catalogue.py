"""The built-in catalogue: importing this module registers every built-in entry.

One place to read which modules contribute datasets, architectures, losses, penalties, presets,
metrics and feature extractors.
"""

from __future__ import annotations

import importlib

_BUILTIN_MODULES = (
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
    "gan_bench.metrics.registry_entries",
)

_loaded = False


def load_builtins() -> None:
    """Import every built-in module once (idempotent)."""
    global _loaded
    if _loaded:
        return
    for name in _BUILTIN_MODULES:
        importlib.import_module(name)
    _loaded = True
