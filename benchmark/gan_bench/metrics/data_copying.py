"""The three-sample data-copying test C_T, and grids of nearest training neighbours.

Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric Test to Detect Data-Copying in Generative
Models" (AISTATS 2020, arXiv:2004.05675). Followed step by step with the authors' code
(github.com/casey-meehan/data-copying, data_copying_tests.py: `Zu`, `Zu_cells`, `C_T`):

  T    training samples (what the generator was fitted on), features (l, D)
  P_n  held-out real samples (the test split: never trained on), features (n, D)
  Q_m  generated samples, features (m, D)

1. Cells: k-means fitted on T (the authors: sklearn KMeans, k = 50 on MNIST). Here a seeded
   Lloyd's k-means with k-means++ seeding and sklearn's stopping rule (`kmeans`), float64 on the
   CPU; every sample belongs to the cell of its nearest centre. Any partition fixed before P_n
   and Q_m are seen keeps the test valid; k-means makes cells where the training data is.
2. In each cell pi: L(P_pi) = Euclidean distance from each test sample in pi to its nearest
   training sample in pi, L(Q_pi) the same for the generated samples. "In pi": the authors'
   `Zu_cells` hands `Zu` the cell's training samples only, not all of T.
3. Z_U(pi) = the Mann-Whitney U of (L(Q_pi), L(P_pi)), U = the number of pairs whose generated
   distance is greater than the test distance, ties counted 1/2 (average ranks; what
   scipy.stats.mannwhitneyu returns for its first sample), standardised under H0 as the authors
   do it, with their continuity correction and no tie correction:
       Z_U = (U - mn/2 + 1/2) / sqrt(mn (m + n + 1) / 12)      (m fakes, n test samples in pi)
4. C_T = sum_pi P_n(pi) Z_U(pi) / sum_pi P_n(pi) over the kept cells Pi_tau, P_n(pi) the share
   of test samples in pi: the test-sample weights renormalised over the kept cells, as the
   authors' `C_T` does. A cell is kept when it holds at least `min_per_cell` = 20 generated
   samples (the paper's tau = 20 / m; the authors' code keeps Q_m(pi) > tau strictly, so it
   drops a cell with exactly 20, the one difference) and at least one test sample and one
   training sample (their code raises on a cell without; here it is dropped and counted in the
   extras as cells_unscorable).

T is the whole train split by default (n_train=None; the paper uses all of it): a copy is only
seen as one when its original is in T. With only the first 10,000 training digits as T, 5,000
random training digits scored -2.07 instead of -13.77 (benchmark/scripts/
data_copying_calibration.py). n_train=N takes the split's first N, the digits a suite with
dataset.subset N trains on.

Reading C_T (dimensionless; each Z_U is ~N(0, 1) under H0). MNIST, mnist_classifier features,
k=50, 5,000 test digits as P_n and 5,000 "generated" digits (the calibration script):
  strongly negative: data copying, generated samples closer to training samples than held-out
    ones (random training digits -13.77; half training, half held-out digits -6.77);
  near 0: no sign of copying (the other 5,000 test digits 0.35; 12 random splits of the test
    split: mean 0.03, std 0.25, so |C_T| < ~1 at these sizes);
  positive: underfitting, generated samples farther from the training data than held-out data
    (noise sigma 0.1: 11.5, sigma 0.3: 11.0 in 11 of 50 cells, blur 3x3: 7.8), which FID and
    precision see too.
The scale grows with the samples per cell (a cell whose fakes are all closer scores
-sqrt(3mn/(m+n+1))), so compare C_T only at equal n_real, n_fake, k, min_per_cell (all in the
protocol), and read cells_used / fake_share_used with it: kept cells are where the fakes are.
Near 0 is the target, so C_T does not rank GANs: the metric's direction (higher_is_better=True,
"less copying is better") only orders the copying side and must not be optimised.

Also here: `nearest_neighbours` (k nearest training samples of each generated one) and
`neighbour_grid_png` (a figure of generated digits next to their nearest training digits in
classifier-feature space and in pixel space), for a report's visual check of copying.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gan_bench.errors import UserInputError
from gan_bench.metrics.metric import Computed, Inputs, Metric, Plan

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["data_copying_ct", "mann_whitney_z", "kmeans", "assign_cells", "nearest_distances",
           "nearest_neighbours", "neighbour_grid_png", "neighbour_grid", "Cells", "DataCopying",
           "DEFAULT_K", "DEFAULT_MIN_PER_CELL"]

DEFAULT_K = 50  # the authors' cells on MNIST (MNIST_kde_test.py: KMeans(50))
DEFAULT_MIN_PER_CELL = 20  # the paper's tau = 20 / m: a Z_U from fewer fakes is noise
KMEANS_MAX_ITER = 300  # sklearn's default; Lloyd's stops earlier (KMEANS_TOL, or no change)
# sklearn's tol: stop when the centres' summed squared shift is below 1e-4 x the mean per-feature
# variance (ring8's 100,000 points took 132 steps to the last label change, most of them moving
# a few points between neighbouring cells)
KMEANS_TOL = 1e-4
MAX_BLOCK_BYTES = 64 * 2**20  # one float64 distance block (queries x references)


# ----------------------------------------------------------------------------- helpers

def _features(x: npt.ArrayLike | Tensor, name: str) -> Tensor:
    """x as float64 (N, D) on the CPU; ValueError when not 2-D or not finite."""
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    t = t.to("cpu", torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def _distance_blocks(queries: Tensor, reference: Tensor) -> Iterator[tuple[int, Tensor]]:
    """(first row, Euclidean distances (rows, R) float64) over row blocks of `queries`, so a
    block never exceeds MAX_BLOCK_BYTES."""
    step = max(1, MAX_BLOCK_BYTES // (8 * max(len(reference), 1)))
    for start in range(0, len(queries), step):
        yield start, torch.cdist(queries[start:start + step], reference)


def nearest_distances(queries: npt.ArrayLike | Tensor, reference: npt.ArrayLike | Tensor) -> Tensor:
    """Distance from each row of queries (N, D) to its nearest row of reference (R, D), R >= 1:
    float64 (N,), >= 0, in row blocks (torch.cdist)."""
    q, r = _features(queries, "queries"), _features(reference, "reference")
    if len(r) == 0:
        raise ValueError("reference is empty: no nearest neighbour")
    return _nearest(q, r)


def _nearest(q: Tensor, r: Tensor) -> Tensor:
    out = torch.empty(len(q), dtype=torch.float64)
    for start, d in _distance_blocks(q, r):
        out[start:start + len(d)] = d.min(dim=1).values
    return out


def nearest_neighbours(fake_feats: npt.ArrayLike | Tensor, train_feats: npt.ArrayLike | Tensor,
                       k: int = 5) -> np.ndarray:
    """Indices into train_feats (M, D) of the k nearest training rows of each fake (N, D):
    int64 (N, k), nearest first, Euclidean, ties to the lower index (stable sort). Works on
    any vectors: classifier features, or flattened pixels for a pixel-space neighbour (float64
    on the CPU: 60,000 MNIST digits as pixels take ~380 MB while it runs)."""
    fake, train = _features(fake_feats, "fake features"), _features(train_feats, "train features")
    if not 1 <= k <= len(train):
        raise ValueError(f"k must be in [1, {len(train)}] (training rows), got {k}")
    out = np.empty((len(fake), k), dtype=np.int64)
    for start, d in _distance_blocks(fake, train):
        out[start:start + len(d)] = torch.sort(d, dim=1, stable=True).indices[:, :k].numpy()
    return out


# ----------------------------------------------------------------------------- k-means

@dataclass(frozen=True)
class Cells:
    """A k-means partition of the training features: centres float64 (k, D), the training
    rows' cells int64 (l,) in [0, k) (each row's nearest centre), and Lloyd's steps taken."""

    centres: Tensor
    train_labels: Tensor
    iterations: int

    @property
    def k(self) -> int:
        return int(self.centres.shape[0])


def assign_cells(x: npt.ArrayLike | Tensor, centres: Tensor) -> Tensor:
    """The nearest centre (k, D) of each row of x (N, D): int64 (N,), ties to the lower index."""
    return _assign(_features(x, "features"), centres.to(torch.float64))


def _assign(x: Tensor, centres: Tensor) -> Tensor:
    # squared distances less the row's own |x|^2, which does not move the argmin: one fused
    # matrix product |c|^2 - 2 x.c
    scores = torch.addmm((centres * centres).sum(dim=1), x, centres.T, alpha=-2.0)
    return scores.argmin(dim=1)


def _sq_dist_to(x: Tensor, sq_norms: Tensor, row: int) -> Tensor:
    """Squared distances (N,) of the rows of x to row `row`, clipped at 0 (rounding)."""
    return (sq_norms - 2.0 * (x @ x[row]) + sq_norms[row]).clamp_(min=0.0)


def _kmeans_pp(x: Tensor, k: int, rng: np.random.RandomState) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre a row drawn with
    probability proportional to its squared distance to the nearest centre so far."""
    sq_norms = (x * x).sum(dim=1)
    idx = [int(rng.randint(len(x)))]
    d2 = _sq_dist_to(x, sq_norms, idx[0])
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0.0:  # every row sits on a centre (duplicates): any row will do
            idx.append(int(rng.randint(len(x))))
        else:
            cum = torch.cumsum(d2, dim=0)
            # side="right": the first row whose cumulative weight exceeds the draw, never a
            # row of weight 0 (a centre already)
            draw = torch.tensor([rng.random_sample() * total], dtype=torch.float64)
            pick = int(torch.searchsorted(cum, draw, right=True))
            idx.append(min(pick, len(x) - 1))
        d2 = torch.minimum(d2, _sq_dist_to(x, sq_norms, idx[-1]))
    return x[idx].clone()


def kmeans(train_feats: npt.ArrayLike | Tensor, k: int, seed: int = 0,
           max_iter: int = KMEANS_MAX_ITER) -> Cells:
    """Lloyd's k-means with k-means++ seeding on train_feats (l, D), l >= k; float64 on the
    CPU, deterministic for a seed. A cell that loses all its rows keeps its centre (C_T never
    scores a cell without training rows)."""
    x = _features(train_feats, "train features")
    if not 1 <= k <= len(x):
        raise ValueError(f"k={k} cells: k must be in [1, {len(x)}] (the training rows)")
    centres = _kmeans_pp(x, k, np.random.RandomState(seed))
    labels = _assign(x, centres)
    tol = KMEANS_TOL * float(x.var(dim=0).mean())
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        counts = torch.bincount(labels, minlength=k).to(torch.float64)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        filled = counts > 0
        before = centres.clone()
        centres[filled] = sums[filled] / counts[filled, None]
        new = _assign(x, centres)
        if torch.equal(new, labels):
            break
        labels = new
        if float(((centres - before) ** 2).sum()) <= tol:
            break
    return Cells(centres, labels, iterations)


# ----------------------------------------------------------------------------- the test

def mann_whitney_z(fake_dist: npt.ArrayLike, test_dist: npt.ArrayLike) -> tuple[float, float]:
    """(Z_U, U) of generated distances (m,) against test distances (n,), m, n >= 1.

    U in [0, mn] counts the pairs with fake > test, ties 1/2 (average ranks): scipy's
    mannwhitneyu(fake, test).statistic. Z_U = (U - mn/2 + 1/2) / sqrt(mn(m+n+1)/12), the
    authors' standardisation (continuity correction, no tie correction); Z_U < 0: the fakes
    are the closer ones.
    """
    from scipy.stats import rankdata  # deferred: scipy.stats imports in ~0.3 s

    q, p = np.asarray(fake_dist, dtype=np.float64), np.asarray(test_dist, dtype=np.float64)
    m, n = len(q), len(p)
    if m < 1 or n < 1:
        raise ValueError(f"Mann-Whitney U needs both samples non-empty, got m={m}, n={n}")
    ranks = rankdata(np.concatenate([q, p]))  # average ranks: a tie counts 1/2
    u = float(ranks[:m].sum() - m * (m + 1) / 2)
    z = (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)
    return z, u


def _cell_z(train: Tensor, test: Tensor, fake: Tensor, cells: Cells, test_cells: Tensor,
            fake_cells: Tensor, kept: np.ndarray) -> np.ndarray:
    """Z_U of each kept cell (len(kept),), from distances to the cell's own training rows."""
    order = torch.argsort(cells.train_labels, stable=True)  # the training rows, cell by cell
    ends = torch.cumsum(torch.bincount(cells.train_labels, minlength=cells.k), 0).tolist()
    z = np.empty(len(kept))
    for i, c in enumerate(kept):
        ref = train[order[(ends[c - 1] if c else 0):ends[c]]]
        z[i] = mann_whitney_z(_nearest(fake[fake_cells == c], ref).numpy(),
                              _nearest(test[test_cells == c], ref).numpy())[0]
    return z


def data_copying_ct(train_feats: npt.ArrayLike | Tensor, test_feats: npt.ArrayLike | Tensor,
                    fake_feats: npt.ArrayLike | Tensor, k: int = DEFAULT_K,
                    min_per_cell: int = DEFAULT_MIN_PER_CELL, seed: int = 0,
                    cells: Cells | None = None) -> tuple[float, dict[str, float]]:
    """(C_T, extras) of the three samples: train (l, D), test (n, D), fake (m, D) features.

    k cells from `kmeans(train, k, seed)` unless `cells` (a partition of these training
    features, e.g. memoised) is given. C_T is unbounded, dimensionless: << 0 copying, ~0 fine,
    > 0 underfitting (module docstring). Extras, all floats: cells_used, cells_total (k),
    cells_unscorable (cells with enough fakes but no test or no training sample), fake_share_used and
    test_share_used (shares in the kept cells), z_min, z_max, z_median (over kept cells),
    kmeans_iterations, n_train, n_test, n_fake, k, min_per_cell. ValueError when no cell holds
    min_per_cell fakes and a test sample (too few fakes, or all in cells the test set misses).
    """
    train, test = _features(train_feats, "train features"), _features(test_feats, "test features")
    fake = _features(fake_feats, "fake features")
    if not train.shape[1] == test.shape[1] == fake.shape[1]:
        raise ValueError(f"feature dimensions differ: train {train.shape[1]}, test "
                         f"{test.shape[1]}, fake {fake.shape[1]}")
    if min_per_cell < 1:
        raise ValueError(f"min_per_cell must be >= 1, got {min_per_cell}")
    cells = kmeans(train, k, seed) if cells is None else cells
    if len(cells.train_labels) != len(train):
        raise ValueError(f"cells were fitted on {len(cells.train_labels)} training rows, not "
                         f"these {len(train)}")
    test_cells, fake_cells = _assign(test, cells.centres), _assign(fake, cells.centres)
    n_test = torch.bincount(test_cells, minlength=cells.k).numpy()
    n_fake = torch.bincount(fake_cells, minlength=cells.k).numpy()
    n_ref = torch.bincount(cells.train_labels, minlength=cells.k).numpy()
    enough = n_fake >= min_per_cell
    scorable = (n_test > 0) & (n_ref > 0)  # a centre k-means left empty has no training row
    kept = np.flatnonzero(enough & scorable)
    if len(kept) == 0:
        raise ValueError(f"no cell holds {min_per_cell} generated samples and a test sample "
                         f"({len(fake)} fakes in {cells.k} cells, at most {int(n_fake.max())} "
                         "in one): give more samples, or lower k or min_per_cell")
    z = _cell_z(train, test, fake, cells, test_cells, fake_cells, kept)
    weights = n_test[kept] / n_test[kept].sum()  # P_n(pi) renormalised over the kept cells
    extras = {"cells_used": len(kept), "cells_total": cells.k,
              "cells_unscorable": int((enough & ~scorable).sum()),
              "fake_share_used": n_fake[kept].sum() / len(fake),
              "test_share_used": n_test[kept].sum() / len(test),
              "z_min": z.min(), "z_max": z.max(), "z_median": np.median(z),
              "kmeans_iterations": cells.iterations, "n_train": len(train), "n_test": len(test),
              "n_fake": len(fake), "k": cells.k, "min_per_cell": min_per_cell}
    return float(weights @ z), {key: float(v) for key, v in extras.items()}


# ----------------------------------------------------------------------------- the metric

class DataCopying(Metric):
    """C_T of Meehan et al. 2020 (the Evaluator's `data_copying`): reals = the test split,
    training reference = the first n_train samples of the train split (None: all of it)."""

    name = "data_copying"
    summary = ("Data-copying test C_T (Meehan et al. 2020): k-means cells on training features, "
               "per-cell Mann-Whitney Z of generated vs held-out distances to the training set; "
               "<< 0 copying, ~0 fine (the target), > 0 underfitting; not for ranking")
    higher_is_better = True  # only orders the copying side (module docstring); ~0 is the target
    needs_train = True
    defaults: dict[str, Any] = {"k": DEFAULT_K, "min_per_cell": DEFAULT_MIN_PER_CELL,
                                "n_train": None}
    positive_ints = ("k", "min_per_cell", "n_train")

    def __init__(self) -> None:
        # (train features digest, k, seed) -> Cells: a training run scores every evaluation
        # against the same training features, so k-means runs once per process
        self._cells: dict[tuple[str, int, int], Cells] = {}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uses_train": True,
                "params": {**self.defaults, "n_train": "None: the whole train split (the "
                           "paper's T); N: its first N samples"}}

    def _check_params(self, defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        merged = super()._check_params(defaults, given)
        if merged["n_train"] is not None and merged["n_train"] < merged["k"]:
            raise UserInputError(f"data_copying: n_train={merged['n_train']} training samples "
                                 f"cannot make k={merged['k']} cells (n_train >= k)")
        return merged

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        return (params["min_per_cell"], 1, f"a cell is scored when it holds min_per_cell="
                f"{params['min_per_cell']} generated samples")

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        assert inputs.real is not None and inputs.train is not None
        p, train = plan.params, inputs.train
        if len(train) < p["k"]:
            raise UserInputError(f"data_copying: k={p['k']} cells need at least {p['k']} "
                                 f"training samples; the train split gave {len(train)}")
        key = (train.digest, p["k"], plan.seed)
        if key not in self._cells:
            self._cells[key] = kmeans(train.features, p["k"], plan.seed)
        try:
            value, extras = data_copying_ct(train.features, inputs.real.features, inputs.fake,
                                            p["k"], p["min_per_cell"], plan.seed,
                                            cells=self._cells[key])
        except ValueError as exc:  # no cell can be scored: a property of the samples given
            raise UserInputError(f"{plan.request}: {exc}") from None
        used = {"n_train": len(train), "train_split": "train",
                "train_subset": "the split's first n_train samples",
                "train_data_sha256": train.key.get("data_sha256"),
                "cells": "k-means++ then Lloyd, float64, fitted on the training features"}
        return {self.name: (value, extras)}, used


# ----------------------------------------------------------------------------- the figure

def _as_uint8_images(x: npt.ArrayLike | Tensor, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be uint8 (N, 1 or 3, H, W), got {a.dtype} {a.shape}")
    return a


def _tile_grid(fake: np.ndarray, train: np.ndarray, groups: list[np.ndarray], pad: int,
               gap: int) -> tuple[np.ndarray, list[float]]:
    """One image (H, W) or (H, W, 3) uint8: a row per fake, the fake then each group's
    neighbours, white lines between tiles and wider gaps between groups; and the x centre of
    each column group (fake first) for the labels."""
    n, c, h, w = fake.shape
    widths = [1, *(g.shape[1] for g in groups)]
    tile_w, tile_h = w + pad, h + pad
    canvas = np.full((n * tile_h + pad, sum(widths) * tile_w + gap * len(groups) + pad, c),
                     255, dtype=np.uint8)
    centres, x0 = [], pad
    for g, width in enumerate(widths):
        centres.append(x0 + (width * tile_w - pad) / 2)
        for row in range(n):
            for col in range(width):
                img = fake[row] if g == 0 else train[groups[g - 1][row, col]]
                y, x = pad + row * tile_h, x0 + col * tile_w
                canvas[y:y + h, x:x + w] = img.transpose(1, 2, 0)
        x0 += width * tile_w + gap
    return (canvas[..., 0] if c == 1 else canvas), centres


def neighbour_grid_png(fake_uint8: npt.ArrayLike | Tensor, train_uint8: npt.ArrayLike | Tensor,
                       idx_feature: npt.ArrayLike, idx_pixel: npt.ArrayLike, *,
                       feature_label: str = "nearest training samples\n(classifier features)",
                       title: str | None = None) -> bytes:
    """PNG bytes: one row per generated sample, the sample, then its nearest training samples
    in feature space (idx_feature (N, K) into train_uint8), then in pixel space (idx_pixel
    (N, K)). fake_uint8 (N, C, H, W) and train_uint8 (M, C, H, W) uint8 in [0, 255], C 1 or 3
    (e.g. 16 generated digits, 5 neighbours each). Matplotlib Agg, DPI 80, no timestamps: the
    same inputs give the same bytes."""
    fake, train = _as_uint8_images(fake_uint8, "fake images"), _as_uint8_images(train_uint8, "train images")
    groups = [np.asarray(idx_feature, dtype=np.int64), np.asarray(idx_pixel, dtype=np.int64)]
    for g in groups:
        if g.ndim != 2 or len(g) != len(fake) or g.size and not 0 <= g.min() <= g.max() < len(train):
            raise ValueError(f"neighbour indices must be (N={len(fake)}, K) in [0, {len(train)}), "
                             f"got shape {g.shape}")
    if fake.shape[1:] != train.shape[1:]:
        raise ValueError(f"fake images {fake.shape[1:]} and train images {train.shape[1:]} differ")
    canvas, centres = _tile_grid(fake, train, groups, pad=2, gap=10)
    return _draw_grid(canvas, centres, ["generated", feature_label, "nearest training samples\n(pixels)"],
                      title or f"{len(fake)} generated samples and their nearest training samples")


def _draw_grid(canvas: np.ndarray, centres: list[float], labels: list[str], title: str) -> bytes:
    import matplotlib  # deferred: matplotlib only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = canvas.shape[:2]
    scale = 1.0 / 48  # inches per canvas pixel: a 28-pixel digit ~47 px at DPI 80
    fig, ax = plt.subplots(figsize=(w * scale + 0.4, h * scale + 1.0))
    try:
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks(centres, labels, fontsize=8)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(title, fontsize=9)  # placed above the top tick labels
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def neighbour_grid(fake_uint8: npt.ArrayLike | Tensor, train_uint8: npt.ArrayLike | Tensor,
                   fake_feats: npt.ArrayLike | Tensor, train_feats: npt.ArrayLike | Tensor,
                   k: int = 5, **kwargs: Any) -> bytes:
    """`neighbour_grid_png` with both neighbour sets computed here: feature space from
    fake_feats (N, D) and train_feats (M, D) (rows matching the images), pixel space from the
    images flattened to [0, 255] floats."""
    fake, train = _as_uint8_images(fake_uint8, "fake images"), _as_uint8_images(train_uint8, "train images")
    idx_feature = nearest_neighbours(fake_feats, train_feats, k)
    idx_pixel = nearest_neighbours(fake.reshape(len(fake), -1), train.reshape(len(train), -1), k)
    return neighbour_grid_png(fake, train, idx_feature, idx_pixel, **kwargs)
