"""Samples of a saved generator for the mode figures: no training, only G's forward pass.

A finalist's checkpoint holds {"G": state_dict, "config": Trainer.resolved_config()}; G is
rebuilt from the config's architecture and fed z from the evaluation seed, so the points (or
digits) drawn are the ones the finalist's metrics scored (the same z, batch by batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.errors import UserInputError
from gan_bench.train import sampling

__all__ = ["load_generator", "generate", "mixture_points", "class_counts", "N_POINTS"]

N_POINTS = 2500  # PacGAN scores 2,500 samples on the 2-D mixtures


def load_generator(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(G in eval mode on the CPU, resolved config) from a finalist checkpoint `*_G.pt`
    (analysis/theory.load_checkpoint rebuilds the nets; a damaged file is one line)."""
    from gan_bench.analysis.theory import load_checkpoint

    try:
        G, _, config = load_checkpoint(path)
    except UserInputError as exc:
        raise UserInputError(f"{exc}; restore it or delete its run") from None
    return G.eval(), config


def generate(G: torch.nn.Module, config: dict[str, Any], n: int, seed: int) -> torch.Tensor:
    """n samples from seeded z as at evaluation (train/sampling.py, the trainer's own):
    float32 (n, 2) points or images in [-1, 1] (n, C, H, W)."""
    return sampling.generate(G, n, seed, images=False, device=torch.device("cpu"))


def mixture_points(path: str | Path, seed: int, n: int = N_POINTS) -> np.ndarray:
    """float64 (n, 2) points of a 2-D mixture generator."""
    G, config = load_generator(path)
    return generate(G, config, n, seed).numpy().astype(np.float64)


def class_counts(path: str | Path, seed: int, n: int) -> list[int]:
    """Histogram (10,) of the shipped MNIST classifier's argmax over n generated digits."""
    from gan_bench.metrics.features import extract, get_extractor
    G, config = load_generator(path)
    images = sampling.to_uint8(generate(G, config, n, seed))
    logits = extract(get_extractor("mnist_classifier", "cpu"), images, kind="logits")
    return np.bincount(logits.argmax(dim=1).numpy(), minlength=10).tolist()
