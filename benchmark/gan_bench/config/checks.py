"""Checks that need the whole suite, after each section validated on its own: names, options
against the registries and the dataset's `load` signature, architectures against the data's shape,
settings that do not fit together, metrics against the dataset and their sample counts, memory,
and the shape of the storage and tracking URLs. Each returns one line per problem with its path.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from gan_bench import plugins
from gan_bench.config.resolve import ResolvedGan
from gan_bench.config.schema import DatasetSpec, Suite
from gan_bench.config.space import Choices, Range
from gan_bench.errors import UserInputError
from gan_bench.registry import ARCHITECTURES, DATASETS, LOSSES, PENALTIES
from gan_bench.train.config import GanSpec, TrainConfig


def _cross_problems(suite: Suite) -> list[str]:
    """Checks that need the whole suite: names, options against registries, shapes, budget."""
    suite_train = _train_problems("train", suite.train)
    problems = _duplicate_names(suite) + suite_train
    shape = tuple(DATASETS.get(suite.dataset.name).shape)
    for i, gan in enumerate(suite.resolved_gans()):
        problems += _gan_problems(f"gans[{i}]", gan, shape, check_train=not suite_train)
    options = _option_problems(suite.dataset)
    problems += options + _fixed_space_problems(suite)
    if not options:  # the metrics and sizes read the options
        problems += _metric_problems(suite) + _memory_problems(suite)
    return problems + _store_problems(suite)


def _duplicate_names(suite: Suite) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, gan in enumerate(suite.gans):
        name = gan.resolved_name()
        if name in seen:
            problems.append(f"gans[{i}].name: {name!r} is also the name of gans[{seen[name]}] "
                            "(give each entry its own name)")
        seen.setdefault(name, i)
    return problems


def _train_problems(path: str, train: dict[str, Any]) -> list[str]:
    try:
        TrainConfig(**{"iterations": 1, **train})
    except (ValueError, TypeError) as exc:
        return [f"{path}: {exc}"]
    return []


def _gan_problems(path: str, gan: ResolvedGan, shape: tuple[int, ...],
                  check_train: bool) -> list[str]:
    problems = _spec_problems(path, gan.spec, shape)
    if check_train:
        problems += _train_problems(f"{path}.train", gan.trial_train())
    return problems + _combination_problems(path, gan)


def _spec_problems(path: str, spec: GanSpec, shape: tuple[int, ...]) -> list[str]:
    """The architecture takes the data; options and params are known to their components."""
    from gan_bench.models.base import ArchOptions, data_kind

    problems = []
    arch = ARCHITECTURES.get(spec.arch)
    if data_kind(shape) not in arch.supports:
        problems.append(f"{path}.arch: architecture {spec.arch!r} does not take the dataset's "
                        f"samples of shape {shape} (it supports {', '.join(arch.supports)})")
    checks = (("arch_options", lambda: ArchOptions.from_kwargs(**spec.arch_options)),
              ("loss_params", lambda: LOSSES.get(spec.loss).resolve(spec.loss_params)),
              ("penalty_params", lambda: PENALTIES.get(spec.penalty).resolve(spec.penalty_params)))
    for field, check in checks:
        try:
            check()
        except (UserInputError, ValueError, TypeError) as exc:
            problems.append(f"{path}.{field}: {exc}")
            continue
        problems += [f"{path}.{field}.{key}: must be a finite number (got {value})"  # nan trains,
                     for key, value in getattr(spec, field).items()  # then never reports
                     if isinstance(value, float) and not math.isfinite(value)]
    if not problems:  # a plugin's or a reference's component, built and called once
        problems += [f"{path}.{field}: {problem}" for field, problem in
                     plugins.probe_problems(spec, shape)]
    return problems


def _combination_problems(path: str, gan: ResolvedGan) -> list[str]:
    """Settings that are each valid but do not fit together."""
    problems, train = [], gan.trial_train()
    pack = gan.spec.arch_options.get("pack", 1)
    batch = train.get("batch_size", TrainConfig.batch_size)
    if "batch_size" not in gan.search and isinstance(pack, int) and pack > 1 and batch % pack:
        problems.append(f"{path}.arch_options.pack: batch_size {batch} is not a multiple of "
                        f"pack {pack} (PacGAN's D needs whole packs)")
    if "lr_ratio" in gan.search and train.get("lr_d") is not None:
        problems.append(f"{path}.train.lr_d: fixes D's learning rate, so searching lr_ratio "
                        "changes nothing (drop lr_d, or fix lr_ratio)")
    return problems


def _option_problems(dataset: DatasetSpec) -> list[str]:
    """dataset.options against the dataset's `load` signature (a typo would be a TypeError
    after the run folder was written) and each value against its rule."""
    source = DATASETS.get(dataset.name)
    return [f"dataset.options.{key}: {message}"
            for key, message in source.option_problems(dataset.options)]


# metrics whose target is a value in the middle, not an end of the scale: never an objective
DIAGNOSTICS = {"data_copying": "near 0 is the target; negative is copying, positive underfitting"}


def _metric_problems(suite: Suite) -> list[str]:
    """Each metric is computable on the dataset and gets the samples it needs: the runner would
    find out only at the first evaluation, after a trial's training (or after the search, for
    metrics.final). Evaluated as the runner does: the objective on n_fake_search samples during
    the search, every metric on n_fake for the finalists."""
    from gan_bench.metrics.evaluator import Evaluator

    m, ds = suite.metrics, suite.dataset
    requests: list[tuple[str, str, tuple[str, ...]]] = [
        ("metrics.objective", m.objective, ("n_fake_search", "n_fake"))]
    requests += [(f"metrics.final[{i}]", name, ("n_fake",)) for i, name in enumerate(m.final)]
    requests += [(f"metrics.curves[{i}]", name, ("n_fake_search", "n_fake"))
                 for i, name in enumerate(m.curves)]
    problems = []
    if m.objective.partition("@")[0] in DIAGNOSTICS:
        problems.append(f"metrics.objective: {m.objective} is a diagnostic ({DIAGNOSTICS[m.objective.partition('@')[0]]}), "
                        "not a score to search on: put it under metrics.final")
    for path, request, counts in requests:
        try:
            ev = Evaluator(ds.name, real_split=ds.eval_split, metrics=[request], n_real=m.n_real,
                           dataset_options=dict(ds.options))
        except UserInputError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if path == "metrics.objective" and m.objective_record is not None:
            try:
                ev.objective_key(request, m.objective_record)
            except UserInputError as exc:
                problems.append(f"metrics.objective_record: {exc}")
        for field in counts:
            if suite.finalists.top == 0 and field == "n_fake":
                continue  # no finalist is ever scored
            try:
                ev.check_sample_count(getattr(m, field))
            except UserInputError as exc:
                problems.append(f"metrics.{field}: {exc}")
    size = DATASETS.get(ds.name).split_size(ds.eval_split, ds.options)
    if m.n_real is not None and size is not None and m.n_real > size:
        problems.append(f"metrics.n_real: {m.n_real} real samples asked, but "
                        f"{ds.name}/{ds.eval_split} has {size}")
    return problems


def _memory_problems(suite: Suite) -> list[str]:
    """Sample counts and batch sizes that cannot fit in preflight.MEMORY_SHARE of the machine's
    memory: float32 samples alone (they could never be generated, let alone scored), and for a
    batch what one training step holds, the batch plus the activations of G and D at that
    batch (models.base.activation_bytes_per_sample): a batch of 10**9 points is 8 GB of input
    but terabytes of activations, and would fail at the first trial after the stores exist."""
    from gan_bench.preflight import memory_problem

    shape = tuple(DATASETS.get(suite.dataset.name).shape)
    per_sample = 4 * math.prod(shape)  # float32: how G's samples and training batches are held
    m = suite.metrics
    sizes = [("metrics.n_fake_search", m.n_fake_search, per_sample, "as float32 take"),
             ("metrics.n_fake", m.n_fake, per_sample, "as float32 take"),
             ("metrics.n_real", m.n_real, per_sample, "as float32 take"),
             ("dataset.options.n", suite.dataset.options.get("n"), per_sample, "as float32 take")]
    for i, gan in enumerate(suite.resolved_gans()):
        batch = gan.search.get("batch_size") or gan.trial_train().get("batch_size")
        values = batch.values() if isinstance(batch, (Range, Choices)) else [batch]
        step = per_sample + _step_bytes(gan.spec, shape)
        sizes.append((f"gans[{i}] ({gan.name}) batch_size", max(v or 0 for v in values), step,
                      "in one training step (batch and the activations of G and D) take"))
    problems = []
    for path, n, each, what in sizes:
        problem = memory_problem(n * each) if isinstance(n, int) else None
        if problem is not None:
            problems.append(f"{path}: {n} samples of shape {shape} {what} {problem}")
    return problems


@functools.lru_cache(maxsize=64)
def _step_bytes_cached(arch: str, shape: tuple[int, ...], options: str) -> int:
    from gan_bench.models.base import activation_bytes_per_sample

    return activation_bytes_per_sample(arch, shape, **json.loads(options))


def _step_bytes(spec: GanSpec, shape: tuple[int, ...]) -> int:
    """Activation bytes per sample of one step (0 when the nets cannot be built: that problem
    is reported by the architecture check, or a plugin's by its probe)."""
    try:
        return _step_bytes_cached(spec.arch, shape,
                                  json.dumps(dict(spec.arch_options), sort_keys=True))
    except Exception:  # noqa: BLE001 - said once, by the check that owns it
        return 0


def _store_problems(suite: Suite) -> list[str]:
    """The shape of the storage and tracking URLs (whether they answer is `run`'s check)."""
    from gan_bench.preflight import storage_url_problem, tracking_uri_problem

    problems = []
    for field, value, check in (("storage", suite.storage, storage_url_problem),
                                ("tracking_uri", suite.tracking_uri, tracking_uri_problem)):
        problem = None if value is None else check(value)
        if problem is not None:
            problems.append(f"{field}: {problem}")
    return problems


def _fixed_space_problems(suite: Suite) -> list[str]:
    """A suite that searches nothing at all with trials > 1 is a mistake. One GAN that searches
    nothing next to searched ones is not: it runs one trial (runner.gan_trials), e.g. a paper's
    fixed setting beside arms that search lr_ratio and k (suites/pacgan_ring8.yaml)."""
    if suite.budget.trials <= 1:
        return []
    advice = "so trials > 1 would repeat one configuration (set budget.trials: 1)"
    if not any(gan.search for gan in suite.resolved_gans()):
        return [f"search: every parameter is fixed for every GAN, {advice}"]
    return []
