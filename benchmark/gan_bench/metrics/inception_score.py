"""Inception Score from class probabilities or logits.

Salimans et al. 2016, "Improved Techniques for Training GANs" (arXiv:1606.03498):

    IS = exp(E_x KL(p(y|x) || p(y)))

computed per split, with p(y) the split's own marginal (mean of its rows); the result is the
mean and std over splits. Splits are contiguous blocks rows[i*N//splits : (i+1)*N//splits] in
the order given (Salimans' and torch-fidelity's indexing; shuffle beforehand if the order is
not random). The std is the population std (ddof=0) as in Salimans' code and torch-fidelity;
torchmetrics shuffles and reports ddof=1, so its std is larger by sqrt(splits/(splits-1)).

Range: 1 <= IS <= C (number of classes). With an MNIST classifier in place of Inception this is
the usual "MNIST IS" (max 10); scores from different classifiers are not comparable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import log_softmax, xlogy

if TYPE_CHECKING:
    import numpy.typing as npt
    from torch import Tensor

__all__ = ["inception_score_from_probs", "inception_score_from_logits"]

ROW_SUM_ATOL = 1e-4  # float32 softmax rows sum to 1 within ~1e-6; 1e-4 catches logits passed as probs


def _as_2d(x: npt.ArrayLike | Tensor, name: str, splits: int) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D (N, C) with C >= 1, got shape {tuple(arr.shape)}")
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    if arr.shape[0] < splits:
        raise ValueError(f"{name}: need at least splits={splits} samples, got N={arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def _score_splits(probs: np.ndarray, log_probs: np.ndarray, splits: int) -> tuple[float, float]:
    n = probs.shape[0]
    scores = []
    for i in range(splits):
        p, log_p = probs[i * n // splits:(i + 1) * n // splits], log_probs[i * n // splits:(i + 1) * n // splits]
        marginal = p.mean(axis=0, keepdims=True)
        # xlogy: 0 log q = 0, also where the marginal q is 0 (then p is 0 too)
        kl = (p * log_p - xlogy(p, marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    scores_arr = np.asarray(scores)
    return float(scores_arr.mean()), float(scores_arr.std())


def inception_score_from_probs(probs: npt.ArrayLike | Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of IS over splits; probs (N, C) rows in [0, 1] summing to 1, N >= splits."""
    p = _as_2d(probs, "probs", splits)
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"probs must lie in [0, 1], got range [{p.min():.3g}, {p.max():.3g}]")
    worst = np.abs(p.sum(axis=1) - 1.0).max()
    if worst > ROW_SUM_ATOL:
        raise ValueError(f"probs rows must sum to 1 (off by up to {worst:.3g}); pass logits to "
                         "inception_score_from_logits instead")
    log_p = np.log(np.where(p > 0, p, 1.0))  # 0 where p = 0, so that 0 log 0 = 0
    return _score_splits(p, log_p, splits)


def inception_score_from_logits(logits: npt.ArrayLike | Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of IS over splits; logits (N, C) real-valued, softmax taken in float64."""
    z = _as_2d(logits, "logits", splits)
    log_p = log_softmax(z, axis=1)
    return _score_splits(np.exp(log_p), log_p, splits)
