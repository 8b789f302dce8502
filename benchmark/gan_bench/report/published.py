"""Published numbers a report prints next to ours (never mixed into our rows).

PacGAN Table 1 (Lin et al. 2018, arXiv:1712.04086; ../shared/PROTOCOLS.md): 2-D mixtures,
2,500 samples, a sample is high quality within 3 sigma of its nearest mean, a mode is captured
when it is the nearest mean of at least one high-quality sample, reverse KL = KL(generated mode
distribution || uniform), mean +- standard error over 10 runs of 400 epochs on PacGAN's nets.
"""

from __future__ import annotations

__all__ = ["PACGAN_TABLE1", "published_row"]

# dataset -> row -> (modes mean, modes SE, high-quality %, reverse KL)
PACGAN_TABLE1: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "ring8": {"gan": (6.3, 0.5, 98.2, 0.45), "pacgan2": (7.9, 0.1, 95.6, 0.07),
              "pacgan4": (7.8, 0.1, 95.9, 0.07)},
    "grid25": {"gan": (17.3, 0.8, 94.8, 0.70), "pacgan2": (23.8, 0.7, 91.3, 0.13),
               "pacgan4": (24.8, 0.2, 93.6, 0.04)},
}
SOURCE = "PacGAN Table 1 (Lin et al. 2018), 400 epochs, 10 runs, mean +- SE"


def published_row(dataset: str, gan: str) -> tuple[float, float, float, float] | None:
    """The published row of our GAN `gan` (`pacgan2`, `pacgan2_searched`, ...), if any."""
    base = gan[: -len("_searched")] if gan.endswith("_searched") else gan
    return PACGAN_TABLE1.get(dataset, {}).get(base)
