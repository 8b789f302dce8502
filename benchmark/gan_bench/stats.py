"""Statistics of a leaderboard: CIs over finalist seeds, tests against the best GAN, and the
expected best objective after n trials.

- `bootstrap_ci`: percentile bootstrap of the mean (scipy.stats.bootstrap, seeded). With a
  handful of seeds the interval is narrow and optimistic; with one seed there is none.
- `compare_to_best`: two-sided Mann-Whitney U (default) or Welch t of every GAN against the
  best one, Holm-corrected over the comparisons (Holm 1979: controls the family-wise error
  without Bonferroni's loss of power).
- `expected_max`: the expected best of n trials drawn without replacement from the trials that
  were run (Dodge et al. 2019, "Show your work"; the curve behind Lucic et al. 2018's
  "how much search does a GAN need"), exact from order statistics, no sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import gammaln

__all__ = ["bootstrap_ci", "Comparison", "compare_to_best", "holm", "expected_max",
           "CONFIDENCE", "ALPHA", "TESTS"]

CONFIDENCE = 0.95  # of the bootstrap interval
ALPHA = 0.05  # family-wise error of the tests against the best GAN
N_RESAMPLES = 2000  # bootstrap resamples: percentile endpoints stable to ~1% of the spread
TESTS = ("mannwhitney", "welch")


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap CI (lo, hi) of the mean of `values` (n >= 2); None for n < 2.

    Identical values give (v, v). Seeded: the same values give the same interval.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=N_RESAMPLES,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class Comparison:
    """One GAN against the best: raw and Holm-adjusted two-sided p (None: too few seeds)."""

    p: float | None
    p_holm: float | None

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA


def _pvalue(a: np.ndarray, b: np.ndarray, test: str) -> float | None:
    if min(a.size, b.size) < 2:
        return None
    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0
    if test == "welch":
        if np.ptp(a) == 0 and np.ptp(b) == 0:  # two different constants: zero variance
            return 0.0
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
    elif test == "mannwhitney":
        p = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    else:
        raise ValueError(f"unknown test {test!r} (known: {', '.join(TESTS)})")
    return 1.0 if math.isnan(p) else float(p)


def holm(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm step-down adjusted p-values over the non-None entries (None stays None).

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    named = sorted(((p, k) for k, p in pvalues.items() if p is not None))
    out: dict[str, float | None]
    m, running, out = len(named), 0.0, {k: None for k in pvalues}
    for i, (p, key) in enumerate(named):
        running = max(running, min(1.0, (m - i) * p))
        out[key] = running
    return out


def compare_to_best(groups: Mapping[str, Sequence[float]], best: str,
                    test: str = "mannwhitney") -> dict[str, Comparison]:
    """Each group except `best` against `best` (two-sided), Holm-corrected together.

    groups: name -> finalist objective values (one per seed). Groups with fewer than two
    values get p = None (no test). The best group itself is not in the result.
    """
    ref = np.asarray(groups[best], dtype=np.float64)
    raw = {k: _pvalue(np.asarray(v, dtype=np.float64), ref, test)
           for k, v in groups.items() if k != best}
    adjusted = holm(raw)
    return {k: Comparison(raw[k], adjusted[k]) for k in raw}


def expected_max(values: Sequence[float], higher_is_better: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Expected best of n trials drawn without replacement from `values`, n = 1..N.

    Returns (mean, std), each float64 (N,): mean[0] is the mean of the values, mean[N-1] the
    best; mean is monotone (non-decreasing, or non-increasing when lower is better). For the
    sorted values v_(1) <= ... <= v_(N), P(max of n = v_(i)) = C(i-1, n-1) / C(N, n).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if not higher_is_better:
        v = -v[::-1]
    n_all = v.size
    means, stds = np.zeros(n_all), np.zeros(n_all)
    i = np.arange(1, n_all + 1)
    for n in range(1, n_all + 1):
        w = np.zeros(n_all)
        ok = i >= n
        w[ok] = np.exp(_log_comb(i[ok] - 1, n - 1) - _log_comb(n_all, n))
        w /= w.sum()  # exact up to rounding; keeps the weights a distribution
        means[n - 1] = w @ v
        stds[n - 1] = math.sqrt(max(w @ (v - means[n - 1]) ** 2, 0.0))
    return (means if higher_is_better else -means), stds


def _log_comb(n: np.ndarray | int, k: int) -> np.ndarray:
    return gammaln(np.asarray(n) + 1) - gammaln(k + 1) - gammaln(np.asarray(n) - k + 1)
