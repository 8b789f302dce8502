"""Frechet distance between Gaussian fits of two feature sets (FID core).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (arXiv:1706.08500):

    FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

Pure functions on features (numpy arrays or torch tensors, any device), computed in float64 on
the CPU. The feature extractor, resizing and sample counts are the wrappers' business; FIDs are
comparable only under the same protocol (same extractor weights, same N: FID is biased upwards
at small N).

Two exact ways to get Tr((S1 S2)^(1/2)):

- "eigh" (default): with S1 = F F^T (Cholesky, or the symmetric square root when S1 is
  singular), S1 S2 is similar to the symmetric PSD matrix A = F^T S2 F, so the trace is
  sum(sqrt(eigvalsh(A))). One symmetric eigenvalue problem: faster than sqrtm, always real, and
  singular (rank-deficient) covariances need no eps.
- "sqrtm": pytorch-fid's path (scipy.linalg.sqrtm of the non-symmetric product S1 S2). If the
  result is not finite, eps * I is added to both covariances and it is retried; a significant
  imaginary part (|imag| > 1e-3 on the diagonal, pytorch-fid's test) raises ValueError;
  otherwise the real part is used. Kept to check the eigh path and to match pytorch-fid exactly.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

__all__ = ["as_features", "gaussian_stats", "frechet_distance", "fid_from_features",
           "FID_METHODS"]

FID_METHODS = ("eigh", "sqrtm")
_IMAG_ATOL = 1e-3  # pytorch-fid: the diagonal of sqrtm(S1 S2) may carry |imag| up to 1e-3
_PSD_RTOL = 1e-6  # negative eigenvalues beyond rtol * scale mean "not a covariance", not rounding
_SYM_RTOL = 1e-6  # |S - S^T| above rtol * max|S| means "not a covariance"


def as_features(x: npt.ArrayLike | Tensor, name: str = "features", min_rows: int = 1) -> np.ndarray:
    """Features (N, D) as a float64 numpy array; ValueError on bad shape, N < min_rows, NaN/inf."""
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().to("cpu").double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(arr.shape)}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples (rows), got N={arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns (D=0)")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def gaussian_stats(features: npt.ArrayLike | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) (ddof=1, as np.cov / pytorch-fid), float64.

    features: (N, D) with N >= 2.
    """
    x = as_features(features, "features", min_rows=2)
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu, (sigma + sigma.T) / 2  # exactly symmetric


def _check_stats(mu: npt.ArrayLike | Tensor, sigma: npt.ArrayLike | Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(_to_numpy(mu), dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(_to_numpy(sigma), dtype=np.float64))
    d = mu.shape[0]
    if mu.ndim != 1 or sigma.shape != (d, d):
        raise ValueError(f"{name}: mu must be (D,) and sigma (D, D); got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name}: statistics contain non-finite values (NaN or inf)")
    scale = max(np.abs(sigma).max(), np.finfo(np.float64).tiny)
    if np.abs(sigma - sigma.T).max() > _SYM_RTOL * scale:
        raise ValueError(f"{name}: sigma is not symmetric, so it is not a covariance matrix")
    return mu, (sigma + sigma.T) / 2


def _to_numpy(x: npt.ArrayLike | Tensor) -> npt.ArrayLike:
    return x.detach().to("cpu").double().numpy() if hasattr(x, "detach") else x


def _psd_sqrt(sigma: np.ndarray, name: str) -> np.ndarray:
    """Symmetric PSD square root; tiny negative eigenvalues (rounding) are clipped to 0."""
    w, v = np.linalg.eigh(sigma)
    if w.min() < -_PSD_RTOL * max(np.abs(w).max(), 1e-300):
        raise ValueError(f"{name} is not positive semi-definite (min eigenvalue {w.min():.3g})")
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _psd_factor(sigma: np.ndarray, name: str) -> np.ndarray:
    """F with F F^T = sigma: Cholesky when sigma is positive definite (fast), else the
    eigendecomposition square root (singular covariances, e.g. N <= D)."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        return _psd_sqrt(sigma, name)


def _check_psd(sigma: np.ndarray, name: str) -> None:
    """Cheap PSD test: sigma + rtol * max(diag) * I must admit a Cholesky factor."""
    jitter = _PSD_RTOL * max(float(np.abs(np.diag(sigma)).max()), 1e-300)
    try:
        np.linalg.cholesky(sigma + jitter * np.eye(sigma.shape[0]))
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} is not positive semi-definite") from None


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for symmetric PSD S1, S2.

    With S1 = F F^T, S1 S2 = F F^T S2 is similar to A = F^T S2 F (symmetric PSD), so the trace
    is sum(sqrt(eigvalsh(A))); eigenvalues at rounding level below 0 are clipped.
    """
    factor = _psd_factor(sigma1, "sigma1")
    _check_psd(sigma2, "sigma2")
    a = factor.T @ sigma2 @ factor
    w = np.linalg.eigvalsh((a + a.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # scipy warns on singular input; the finiteness and imaginary-part checks below decide
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """pytorch-fid's path: scipy sqrtm of S1 S2, eps * I retry, imaginary-part check."""
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError(f"sqrtm(sigma1 sigma2) is not finite even with eps={eps} added to "
                             "the diagonals; the covariances are degenerate")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAG_ATOL):
            raise ValueError("sqrtm(sigma1 sigma2) has a significant imaginary component "
                             f"(max |imag| = {np.abs(covmean.imag).max():.3g}); the covariances "
                             "are ill-conditioned: use method='eigh' or more samples")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1: npt.ArrayLike | Tensor, sigma1: npt.ArrayLike | Tensor,
                     mu2: npt.ArrayLike | Tensor, sigma2: npt.ArrayLike | Tensor, eps: float = 1e-6,
                     method: Literal["eigh", "sqrtm"] = "eigh") -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); >= 0 up to rounding.

    mu: (D,), sigma: (D, D) symmetric PSD. `eps` is used by method="sqrtm" only (the diagonal
    offset of pytorch-fid's retry). Raises ValueError on mismatched shapes, non-finite or
    non-covariance inputs, or (sqrtm) a significant imaginary part.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "stats 1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "stats 2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: D={mu1.shape[0]} vs D={mu2.shape[0]}")
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    elif method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(FID_METHODS)}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_from_features(real: npt.ArrayLike | Tensor, fake: npt.ArrayLike | Tensor,
                      method: Literal["eigh", "sqrtm"] = "eigh") -> float:
    """FID between feature sets real (N1, D) and fake (N2, D), N1, N2 >= 2."""
    real = as_features(real, "real features", min_rows=2)
    fake = as_features(fake, "fake features", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real D={real.shape[1]}, "
                         f"fake D={fake.shape[1]}")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake), method=method)
