"""The `Metric` base class of the metric catalogue (registry METRICS) and the types it plans with.

A metric is an entry of METRICS: its name, summary, direction, availability and default
parameters, and four public methods. `plan` checks a request against a dataset (is the extractor
compatible, are the parameters known) and returns a `Plan` saying which features it needs,
which records it makes and how many samples it needs; `compute` turns features (`Inputs`) into
values; `records` names the records and their directions; `describe` gives the catalogue
fields. The built-in metrics are in metrics/builtin.py; the `Evaluator` (metrics/evaluator.py)
extracts features once per extractor, fetches cached real features and builds each record's
protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gan_bench.errors import UnknownNameError, UserInputError
from gan_bench.metrics.real_features import RealFeatures
from gan_bench.registry import DATASETS, FEATURE_EXTRACTORS

__all__ = ["Metric", "Plan", "Inputs", "DataInfo", "Variant", "Computed", "IDENTITY",
           "IDENTITY_PROTOCOL", "DOMAIN_EXTRACTORS", "MODE_KINDS", "parse_request",
           "check_extractor"]

IDENTITY = "identity"  # pseudo-extractor: the raw 2-D coordinates of a points dataset
IDENTITY_PROTOCOL = {"extractor": IDENTITY, "extractor_sha256": None, "num_features": 2,
                     "resize": "none (raw 2-D coordinates)", "dtype": "float32"}
# The domain extractor of an image dataset (TTUR: score MNIST with an MNIST classifier); every
# other image dataset gets inception_tf (the classifier has never seen Fashion-MNIST or
# CIFAR-10), points datasets get the identity.
DOMAIN_EXTRACTORS = {"mnist": "mnist_classifier"}
MODE_KINDS = {"mnist": "classes", "stacked_mnist": "stacked_digits"}  # points: "mixture"


# what Metric.compute returns: ({record name: (value, extras)}, parameters as actually used)
Computed = tuple[dict[str, tuple[float, dict[str, float]]], dict[str, Any]]


@dataclass(frozen=True)
class DataInfo:
    """What a metric needs to know about a dataset to plan itself (no data is loaded)."""

    name: str
    kind: str  # "images" (uint8 N,C,H,W) or "points" (float N,2)
    shape: tuple[int, ...]  # one sample, e.g. (1, 28, 28) or (2,)

    @classmethod
    def of(cls, name: str) -> DataInfo:
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
    metric: Metric
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
    """What `Metric.compute` gets: extractor outputs of the fakes and, if needed, the reals
    (the Evaluator's real split) and the train split's features (`Metric.needs_train`)."""

    fake: np.ndarray  # plan.kind output on the fakes: (N, D), (N, K) or (N, 3, 10)
    real: RealFeatures | None  # cached real features (None when the metric uses no reals)
    dataset_meta: Callable[[], dict[str, Any]] = field(default=dict)  # e.g. mixture centres
    device: str | torch.device = "cpu"  # where k-NN distances run
    train: RealFeatures | None = None  # cached train-split features (metrics with needs_train)


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
class Variant:
    """The dataset-dependent part of a plan."""

    extractor: str | None  # None: chosen by the request, default the domain extractor
    kind: str
    defaults: dict[str, Any]
    directions: dict[str, bool]
    primary: str


class Metric:
    """Base class of the catalogue's entries.

    Public API (what the Evaluator and `gan-bench list` call):
      records()                 record name -> higher_is_better, the headline first
      plan(request, data, ...)  the request resolved on a dataset (a Plan), or UserInputError
      compute(plan, inputs)     ({record name: (value, extras)}, parameters as actually used)
      describe()                the catalogue fields of `gan-bench list metrics --json`

    Subclasses set the class attributes and implement `compute`; they may override the hooks
    `_variant` (what the dataset changes), `_minimums` (fewest samples) and `_check_params`.
    """

    name = ""
    summary = ""
    higher_is_better = False  # direction of the headline record
    available = True
    reason = ""  # why it is unavailable
    needs_real = True
    needs_train = False  # also takes features of the train split (data_copying's reference set)
    extractor: str | None = None  # fixed extractor; None: `name@extractor`, default the domain's
    kind = "features"
    defaults: dict[str, Any] = {}
    positive_ints: tuple[str, ...] = ()  # parameters that must be ints >= 1 (or None)

    def records(self) -> dict[str, bool]:
        """Record name -> higher_is_better (the headline first)."""
        return {self.name: self.higher_is_better}

    def _variant(self, data: DataInfo) -> Variant:
        records = self.records()
        return Variant(self.extractor, self.kind, dict(self.defaults), records,
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
