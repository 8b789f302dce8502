"""Mode coverage: class histograms (MNIST), Stacked MNIST's 1000 modes, 2-D mixtures.

- class_coverage: histogram of a classifier's labels on generated samples, classes covered,
  KL(p_samples || uniform).
- confident_share: share of samples whose classifier max-probability is >= 0.9, the MNIST
  analogue of the mixtures' high-quality share. Read class coverage next to it: a blurred or
  noisy digit is still given some argmax class, so coverage alone can call noise "10 classes".
- stacked_mnist_modes: VEEGAN (Srivastava et al. 2017, arXiv:1705.07761) and PacGAN (Lin et al.
  2018, arXiv:1712.04086): three digits per sample, one per channel, give one of 1000 modes;
  26,000 samples; a mode is covered when at least one sample lands in it; KL(p || uniform).
- mixture_modes: PacGAN's 2-D mixtures (ring8, sigma 0.01; grid25, sigma 0.05; 2,500 samples): a
  sample is high quality when its distance to the nearest centre is < 3 sigma; a mode is
  captured when it is the nearest centre of at least one high-quality sample. The centres are
  in gan_bench.data.mixtures (ring_centres, grid_centres).

All KLs are in nats with 0 log 0 = 0. Inputs are numpy arrays or torch tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

__all__ = ["class_coverage", "confident_share", "stacked_mnist_modes", "mixture_modes",
           "kl_to_uniform", "STACKED_MNIST_N", "STACKED_MNIST_MODES", "MIXTURE_N", "HQ_SIGMAS",
           "CONFIDENT_AT"]

STACKED_MNIST_N = 26_000  # generated samples scored (VEEGAN, PacGAN)
STACKED_MNIST_MODES = 1000  # 10^3 digit triples
MIXTURE_N = 2_500  # generated samples scored on ring8/grid25 (PacGAN's code)
HQ_SIGMAS = 3.0  # high quality: distance to the nearest centre < 3 sigma (PacGAN)
CONFIDENT_AT = 0.9  # a "confident" digit: the classifier gives its class probability >= 0.9


def _to_numpy(x: npt.ArrayLike | Tensor) -> np.ndarray:
    return np.asarray(x.detach().to("cpu").numpy() if hasattr(x, "detach") else x)


def _as_labels(x: npt.ArrayLike | Tensor, name: str, n_classes: int, ndim: int) -> np.ndarray:
    arr = _to_numpy(x)
    if arr.ndim != ndim or arr.shape[0] < 1:
        raise ValueError(f"{name} must be {ndim}-D with at least one sample, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr, 1) == 0)):
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}], got "
                         f"[{arr.min()}, {arr.max()}]")
    return arr


def kl_to_uniform(counts: npt.ArrayLike) -> float:
    """KL(p || uniform) in nats for p = counts / counts.sum(); 0 log 0 = 0; in [0, log K]."""
    c = np.asarray(counts, dtype=np.float64)
    p = c / c.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] * len(p))))


def confident_share(logits: npt.ArrayLike | Tensor, threshold: float = CONFIDENT_AT) -> float:
    """Share of samples whose softmax max-probability is >= threshold; logits float (N, C)."""
    x = np.asarray(_to_numpy(logits), dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"logits must be finite float (N, C) with N >= 1, got shape {x.shape}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}")
    z = x - x.max(axis=1, keepdims=True)
    top = 1.0 / np.exp(z).sum(axis=1)  # softmax at the argmax: exp(0) / sum
    return float((top >= threshold).mean())


def class_coverage(pred_labels: npt.ArrayLike | Tensor, n_classes: int = 10, min_share: float | None = None) -> dict:
    """Class histogram of predicted labels (N,) ints in [0, n_classes).

    A class is covered when its share of the samples is >= min_share. Default 0.1 / n_classes
    (1% for 10 classes): a tenth of the uniform share. A classifier's errors scatter a few
    tenths of a percent of samples into every class (a 99%-accurate MNIST classifier puts about
    0.1% into each wrong class), so a dropped class is not counted as covered, while a class the
    generator makes rarely but really (one tenth of its fair share) still is.

    Returns counts (list, n_classes), shares (list), classes_covered, n_classes,
    kl_to_uniform (nats; 0 when balanced, log(n_classes / m) for m balanced classes), n_samples.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    min_share = 0.1 / n_classes if min_share is None else float(min_share)
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must lie in [0, 1], got {min_share}")
    labels = _as_labels(pred_labels, "pred_labels", n_classes, ndim=1)
    counts = np.bincount(labels, minlength=n_classes)
    shares = counts / counts.sum()
    return {"counts": counts.tolist(), "shares": shares.tolist(),
            "classes_covered": int((shares >= min_share).sum()), "n_classes": n_classes,
            "min_share": min_share, "kl_to_uniform": kl_to_uniform(counts),
            "n_samples": int(counts.sum())}


def stacked_mnist_modes(pred_digits: npt.ArrayLike | Tensor) -> dict:
    """Modes of Stacked MNIST from per-channel digit predictions (N, 3) ints in [0, 9].

    Column 0 is the hundreds digit: mode = 100 a + 10 b + c in [0, 999]. Returns modes_covered
    (distinct modes with >= 1 sample, as VEEGAN/PacGAN count), n_modes (1000), kl_to_uniform
    (KL(p_generated || uniform over 1000), nats), n_samples, counts (length-1000 list).
    Score STACKED_MNIST_N = 26,000 samples to compare with the papers.
    """
    digits = _as_labels(pred_digits, "pred_digits", 10, ndim=2)
    if digits.shape[1] != 3:
        raise ValueError(f"pred_digits must be (N, 3), one digit per channel; got {digits.shape}")
    modes = digits @ np.array([100, 10, 1])
    counts = np.bincount(modes, minlength=STACKED_MNIST_MODES)
    return {"modes_covered": int((counts > 0).sum()), "n_modes": STACKED_MNIST_MODES,
            "kl_to_uniform": kl_to_uniform(counts), "n_samples": int(len(modes)),
            "counts": counts.tolist()}


def mixture_modes(points: npt.ArrayLike | Tensor, centres: npt.ArrayLike | Tensor, sigma: float) -> dict:
    """Modes captured and high-quality share for 2-D samples (N, D) and mode centres (K, D).

    Returns modes_captured (int), n_modes (K), high_quality_share (in [0, 1]), n_samples,
    counts (per mode: high-quality samples whose nearest centre it is; length K) and
    nearest_counts (per mode: all samples whose nearest centre it is).
    Score MIXTURE_N = 2,500 samples to compare with PacGAN.
    """
    pts = np.asarray(_to_numpy(points), dtype=np.float64)
    ctr = np.asarray(_to_numpy(centres), dtype=np.float64)
    if pts.ndim != 2 or ctr.ndim != 2 or pts.shape[1] != ctr.shape[1]:
        raise ValueError(f"points (N, D) and centres (K, D) must share D; got {pts.shape} and "
                         f"{ctr.shape}")
    if pts.shape[0] < 1 or ctr.shape[0] < 1:
        raise ValueError(f"need at least one point and one centre; got {pts.shape[0]} points "
                         f"and {ctr.shape[0]} centres")
    if not (np.isfinite(pts).all() and np.isfinite(ctr).all()):
        raise ValueError("points or centres contain non-finite values (NaN or inf)")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    dist = np.sqrt(((pts[:, None, :] - ctr[None, :, :]) ** 2).sum(axis=-1))  # (N, K), K small
    nearest = dist.argmin(axis=1)
    hq = dist[np.arange(len(pts)), nearest] < HQ_SIGMAS * sigma
    counts = np.bincount(nearest[hq], minlength=len(ctr))
    return {"modes_captured": int((counts > 0).sum()), "n_modes": int(len(ctr)),
            "high_quality_share": float(hq.mean()), "n_samples": int(len(pts)),
            "counts": counts.tolist(),
            "nearest_counts": np.bincount(nearest, minlength=len(ctr)).tolist()}
