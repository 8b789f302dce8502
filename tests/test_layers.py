"""The package's imports run downward: no import circles, and no module imports one of a
higher layer (imports inside functions and under TYPE_CHECKING count too). A new module must
be given a layer here; moving one up or down is a design decision, made in this table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "benchmark" / "gan_bench"

# Lowest first. A module may import its own layer's modules (without circles) and lower ones.
LAYERS: list[tuple[str, ...]] = [
    # plumbing: errors, files, processes, names, devices, store URLs, the generic registry
    ("errors", "names", "procs", "interrupts", "cache", "devices", "preflight", "keys",
     "stores", "images", "registry", "progress", "stats", "assets", "timing"),
    # the components a GAN is made of, and the ways to add one
    ("data", "models", "losses", "penalties"),
    # metrics on samples; training (a trainer samples with the extractors' precision rule)
    ("metrics",),
    ("train",),
    # checks of trained models against the papers' claims (latent space, theory)
    ("analysis",),
    # a suite: its schema and what it asks of one trial
    ("config", "presets", "plugins"),
    ("plan", "ladder"),
    # the stores (optuna, mlflow) and what is named or timed for them
    ("study", "tracking", "estimate", "baselines", "perf", "views"),
    # running a suite; reading it back
    ("run", "report"),
    # the UI server and the command line
    ("ui_tour", "ui", "cli", "deploy", "__main__"),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_bench"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n in modules)
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gan_bench"))
    # a module's own parent packages are not imports of it (Python runs their __init__ first)
    return {m for m in found if m in modules and not module.startswith(m + ".")}


def _unit(module: str) -> str:
    """The layer table's name for a module: its subpackage or top-level module name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


MODULES = _modules()
GRAPH = {m: _imports(m, p, MODULES) - {m} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    missing = sorted({_unit(m) for m in MODULES if m != "gan_bench"} - set(RANK))
    assert missing == [], f"give these a layer in tests/test_layers.py: {missing}"


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if m != "gan_bench"
                    for t in targets if RANK[_unit(t)] > RANK[_unit(m)])
    assert upward == []


def test_there_are_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


@pytest.mark.parametrize("lower,higher", [("train", "run"), ("metrics", "report"),
                                          ("config", "study"), ("views", "run")])
def test_the_table_itself_orders_the_layers(lower, higher):
    assert RANK[lower] < RANK[higher]
