"""Precision / recall (k-NN manifolds) and density / coverage on feature sets.

- Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative
  Models" (arXiv:1904.06991), k = 3. A set's manifold is the union of balls around its samples,
  each of radius the distance to the sample's k-th nearest other sample of the same set.
  precision = share of fakes inside the real manifold; recall = share of reals inside the fake
  manifold. "Inside" is d <= radius, as in the authors' code.
- Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"
  (arXiv:2002.09797), k = 5, balls around REAL samples only:
  density = 1/(kM) sum_j sum_i 1[d(Y_j, X_i) < r_i] (can exceed 1),
  coverage = 1/N sum_i 1[min_j d(X_i, Y_j) < r_i]; strict "<" as in the authors' code (prdc).

Ties only matter with duplicated samples. Distances are Euclidean, float64, by torch.cdist
(matrix-product form) on the real features' device, in row blocks of at most `max_block_bytes`
(256 MB by default; peak memory is about twice that with cdist's and the masks' temporaries):
10k x 10k never holds the full distance matrix. `prdc` needs three distance passes (real-real,
fake-fake, real-fake) for all four numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["precision_recall", "density_coverage", "prdc", "knn_radii"]

MAX_BLOCK_BYTES = 256 * 2**20  # one float64 distance block (rows x N); bounds peak memory


def _as_tensor(x: npt.ArrayLike | Tensor, name: str) -> Tensor:
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(x)
    t = t.to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def _check_pair(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor) -> tuple[Tensor, Tensor]:
    real, fake = _as_tensor(real, "real features"), _as_tensor(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real D={real.shape[1]}, "
                         f"fake D={fake.shape[1]}")
    return real, fake.to(real.device)


def _check_k(n: int, k: int, name: str) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k + 1:
        raise ValueError(f"{name}: k={k} nearest neighbours need at least {k + 1} samples, "
                         f"got N={n}")


def _block_rows(n_cols: int, max_block_bytes: int) -> int:
    return max(1, int(max_block_bytes // (8 * max(n_cols, 1))))


def knn_radii(x: npt.ArrayLike | Tensor, ks: int | tuple[int, ...], max_block_bytes: int = MAX_BLOCK_BYTES) -> Tensor:
    """Distance from each row of x (N, D) to its k-th nearest OTHER row, float64.

    ks an int -> (N,); a tuple of ints -> (N, len(ks)), all from one pass over the distances.
    """
    x = _as_tensor(x, "features")
    k_tuple = (ks,) if isinstance(ks, int) else tuple(ks)
    for k in k_tuple:
        _check_k(x.shape[0], k, "features")
    step = _block_rows(x.shape[0], max_block_bytes)
    cols = torch.tensor(k_tuple, device=x.device)  # index k of the sorted row: self comes first
    radii = []
    for start in range(0, x.shape[0], step):
        d = torch.cdist(x[start:start + step], x)
        rows = torch.arange(d.shape[0], device=x.device)
        d[rows, rows + start] = 0.0  # self-distance exactly 0 (mm-based cdist rounds)
        nearest = d.topk(max(k_tuple) + 1, dim=1, largest=False, sorted=True).values
        radii.append(nearest[:, cols])
    out = torch.cat(radii)
    return out[:, 0] if isinstance(ks, int) else out


def _scan(real: Tensor, fake: Tensor, max_block_bytes: int,
          pr_radii: tuple[Tensor, Tensor] | None = None,
          dc_radii: Tensor | None = None, k_dc: int = 0) -> dict[str, float]:
    """One pass over blocks of real rows vs all fakes, accumulating what the metrics need.

    pr_radii: (real radii, fake radii) for precision/recall; dc_radii: real radii for
    density/coverage with their k_dc. Either may be None.
    """
    dev, n_real, n_fake = real.device, real.shape[0], fake.shape[0]
    fake_in_real = torch.zeros(n_fake, dtype=torch.bool, device=dev)
    real_in_fake = torch.zeros(n_real, dtype=torch.bool, device=dev)
    real_covered = torch.zeros(n_real, dtype=torch.bool, device=dev)
    in_balls = torch.zeros((), dtype=torch.float64, device=dev)
    step = _block_rows(n_fake, max_block_bytes)
    for start in range(0, n_real, step):
        stop = min(start + step, n_real)
        d = torch.cdist(real[start:stop], fake)  # (rows, M)
        if pr_radii is not None:
            fake_in_real |= (d <= pr_radii[0][start:stop, None]).any(dim=0)
            real_in_fake[start:stop] = (d <= pr_radii[1][None, :]).any(dim=1)
        if dc_radii is not None:
            r = dc_radii[start:stop, None]
            in_balls += (d < r).sum()
            real_covered[start:stop] = d.min(dim=1).values < r[:, 0]
    out = {}
    if pr_radii is not None:
        out["precision"] = float(fake_in_real.double().mean())
        out["recall"] = float(real_in_fake.double().mean())
    if dc_radii is not None:
        out["density"] = float(in_balls) / (k_dc * n_fake)
        out["coverage"] = float(real_covered.double().mean())
    return out


def precision_recall(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor, k: int = 3,
                     max_block_bytes: int = MAX_BLOCK_BYTES) -> tuple[float, float]:
    """(precision, recall), each in [0, 1]; real (N, D), fake (M, D), N, M >= k + 1."""
    real, fake = _check_pair(real, fake)
    _check_k(real.shape[0], k, "real features")
    _check_k(fake.shape[0], k, "fake features")
    radii = (knn_radii(real, k, max_block_bytes), knn_radii(fake, k, max_block_bytes))
    out = _scan(real, fake, max_block_bytes, pr_radii=radii)
    return out["precision"], out["recall"]


def density_coverage(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor, k: int = 5,
                     max_block_bytes: int = MAX_BLOCK_BYTES) -> tuple[float, float]:
    """(density >= 0, can exceed 1; coverage in [0, 1]); real (N, D) N >= k + 1, fake (M, D) M >= 1."""
    real, fake = _check_pair(real, fake)
    _check_k(real.shape[0], k, "real features")
    if fake.shape[0] < 1:
        raise ValueError("fake features: need at least 1 sample, got N=0")
    out = _scan(real, fake, max_block_bytes, dc_radii=knn_radii(real, k, max_block_bytes), k_dc=k)
    return out["density"], out["coverage"]


def prdc(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor, k_pr: int = 3, k_dc: int = 5,
         max_block_bytes: int = MAX_BLOCK_BYTES) -> dict[str, float]:
    """{"precision", "recall", "density", "coverage"}, PROTOCOLS.md's k (3 and 5) by default.

    Same values as precision_recall + density_coverage, with three distance passes (real-real,
    fake-fake, real-fake) instead of five.
    """
    real, fake = _check_pair(real, fake)
    for k in (k_pr, k_dc):
        _check_k(real.shape[0], k, "real features")
    _check_k(fake.shape[0], k_pr, "fake features")
    real_radii = knn_radii(real, (k_pr, k_dc), max_block_bytes)
    fake_radii = knn_radii(fake, k_pr, max_block_bytes)
    out = _scan(real, fake, max_block_bytes, pr_radii=(real_radii[:, 0], fake_radii),
                dc_radii=real_radii[:, 1], k_dc=k_dc)
    return {name: out[name] for name in ("precision", "recall", "density", "coverage")}
