"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, over subsets.

Binkowski et al. 2018, "Demystifying MMD GANs" (arXiv:1801.01401). Same estimator as the
authors' code, torch-fidelity and torchmetrics:

    k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/D by default, coef0 = 1, degree = 3
    MMD^2_u = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
              - 2 sum_{i,j} k(x_i,y_j)/m^2

computed on `subsets` random subsets of `subset_size` rows drawn without replacement from each
set; the result is the mean and the (population, ddof=0, as torch-fidelity and torchmetrics) std
over subsets. Unlike FID, KID is unbiased in N, and can be slightly negative when the two sets
come from one distribution.

Subsets come from numpy.random.RandomState(seed).choice(n, subset_size, replace=False), real
then fake per subset: torch-fidelity's sampling, so seed=1234 (its default) reproduces its
numbers. subset_size is clipped to min(N_real, N_fake) (torch-fidelity and torchmetrics raise
instead); the clipped value is what must go in the protocol record (`kid_subset_size`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gan_bench.metrics.fid import as_features

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

__all__ = ["kid", "kid_subset_size", "polynomial_mmd2"]


def kid_subset_size(n_real: int, n_fake: int, subset_size: int = 1000) -> int:
    """The subset size `kid` actually uses: min(subset_size, n_real, n_fake)."""
    return int(min(subset_size, n_real, n_fake))


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    k = x @ y.T
    k *= gamma
    k += coef0
    if degree == 3:  # the default: two in-place products, ~10x faster than numpy's float ** 3
        out = k * k
        out *= k
        return out
    return k ** degree


def _kernel_sums(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float,
                 block: int = 128) -> tuple[float, float]:
    """(sum of all entries, trace) of the kernel matrix k(x, y), built 128 rows at a time (blocks
    stay in cache: 2.5x faster than the whole 1000 x 1000 matrix on a 2-core CPU)."""
    total = trace = 0.0
    for start in range(0, len(x), block):
        k = _poly_kernel(x[start:start + block], y, degree, gamma, coef0)
        total += float(k.sum())
        trace += float(np.trace(k[:, start:start + block]))
    return total, trace


def _mmd2(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    """Unbiased MMD^2 of validated, equal-shape float64 arrays."""
    m = x.shape[0]
    xx, xx_diag = _kernel_sums(x, x, degree, gamma, coef0)
    yy, yy_diag = _kernel_sums(y, y, degree, gamma, coef0)
    xy, _ = _kernel_sums(x, y, degree, gamma, coef0)
    return (xx - xx_diag + yy - yy_diag) / (m * (m - 1)) - 2.0 * xy / (m * m)


def polynomial_mmd2(x: npt.ArrayLike | Tensor, y: npt.ArrayLike | Tensor, *, degree: int = 3,
                    gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between x (m, D) and y (m, D) (equal sizes, m >= 2) with the polynomial kernel."""
    x = as_features(x, "x", min_rows=2)
    y = as_features(y, "y", min_rows=2)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape (m, D), got {x.shape} and {y.shape}")
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return _mmd2(x, y, degree, gamma, coef0)


def kid(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor, *, subsets: int = 100, subset_size: int = 1000,
        degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of MMD^2_u over `subsets` seeded subsets; real (N1, D), fake (N2, D), N >= 2.

    Defaults follow torch-fidelity / torchmetrics (100 subsets of 1000). subset_size is clipped
    to min(N1, N2); see `kid_subset_size`.
    """
    real = as_features(real, "real features", min_rows=2)
    fake = as_features(fake, "fake features", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real D={real.shape[1]}, "
                         f"fake D={fake.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    m = kid_subset_size(len(real), len(fake), subset_size)
    rng = np.random.RandomState(seed)
    g = 1.0 / real.shape[1] if gamma is None else float(gamma)
    scores = np.empty(subsets)
    for i in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        scores[i] = _mmd2(x, y, degree, g, coef0)
    return float(scores.mean()), float(scores.std())
