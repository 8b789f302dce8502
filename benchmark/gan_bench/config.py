"""The suite schema: one YAML file names a dataset, the GANs to compare, the search space over
lr_g, lr_ratio (= lr_d / lr_g) and k, the budget, the metrics and the finalist stage.

YAML holds only overrides: every model below forbids unknown keys and carries its defaults with
the reason for each. `load_suite` reads a file with `yaml.safe_load` (refusing duplicate keys
and aliases that expand past MAX_YAML_NODES), applies `--set key=value` overrides to the raw
mapping, validates, and raises `SuiteError` with one line per problem, each naming its YAML path
(`gans[2].loss: unknown loss 'hinje' (known: ...)`), never a traceback.

Validation is everything that can be known without running: types (a YAML `true` is not the
integer 1), finite numbers, ranges, names against the registries, dataset options against the
dataset's `load` signature, each metric against the dataset and its minimum sample count, sample
counts and batch sizes against the machine's memory, and the shape of the storage and tracking
URLs. Whether the stores answer and the output folder is writable is `run`'s check before it
writes anything (gan_bench.preflight).

Precedence of a trial's TrainConfig, lowest first (`ResolvedGan.trial_train` does the merge):

1. TrainConfig defaults (gan_bench.train.config);
2. search-space fixed values the suite file does NOT state (the SearchSpace defaults beta1 0.5,
   beta2 0.999, batch_size 64), so that a preset's paper settings (WGAN-GP's Adam (0, 0.9),
   DCGAN's batch 128) are not silently replaced by a default;
3. the preset's `train` (the paper's settings);
4. the suite's `train`;
5. search-space fixed values the suite states (`search:` or `gans[i].search:`);
6. `gans[i].train` (a key there is fixed for that GAN and leaves its search);
7. the values the study samples.

The runner then adds iterations / epochs and eval_every from `budget`, `device` and the seed.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from dataclasses import dataclass, fields
from inspect import isclass
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union, get_args, get_type_hints

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field,
                      PlainValidator, Tag, TypeAdapter, ValidationError, field_validator,
                      model_validator)

from gan_bench import plugins, stores
from gan_bench.errors import UserInputError
from gan_bench.names import name_problem
from gan_bench.registry import (ARCHITECTURES, DATASETS, LOSSES, METRICS, PENALTIES, PRESETS,
                                Registry)
from gan_bench.train.config import GanSpec, TrainConfig

__all__ = [
    "SuiteError", "load_suite", "parse_suite", "apply_overrides", "Suite", "DatasetSpec",
    "GanEntry", "SearchSpace", "Range", "Choices", "SamplerSpec", "PrunerSpec", "Budget",
    "MetricsSpec", "FinalistsSpec", "ResolvedGan", "TRAIN_KEYS", "INT_PARAMS",
]

# Set by the suite elsewhere (budget, device, finalist seeds), so not allowed in `train`.
NOT_IN_TRAIN = ("iterations", "epochs", "seed", "device", "eval_every")
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_IN_TRAIN)
INT_PARAMS = ("k", "batch_size")  # searched as ints (suggest_int); every other parameter is a float
# Optuna's samplers seed numpy's RandomState, which takes [0, 2**32); 2**31 leaves room for the
# 10007 that each further worker adds (study.py).
SEED_LIMIT = 2**31
MAX_YAML_NODES = 100_000  # shipped suites have < 500 nodes; aliases expanding past this are a bomb


class SuiteError(UserInputError):
    """A suite that cannot be used; `problems` holds one line per problem, each with its path."""

    def __init__(self, problems: Sequence[str], source: str = "<suite>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(self.problems))


class _KeyProblem(ValueError):
    """Raised inside a validator of a mapping field: the problem is at `field.key`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _known(registry: Registry[Any], name: str | None, references: bool = False) -> str | None:
    """`name` if registered (or None); ValueError with the registry's list of known names.
    `references`: a `package.module:callable` is resolved and registered (gan_bench.plugins)."""
    if name is not None:
        try:
            if references and plugins.is_reference(name):
                plugins.resolve_reference(registry, name)
            else:
                registry.entry(name)
        except (LookupError, UserInputError) as exc:
            raise ValueError(str(exc)) from None
    return name


def _got(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _NotFinite(ValueError):
    """A number that is not usable as one: inf, nan, or an int past 64 bits."""


def _finite(value: int | float) -> int | float:
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        raise _NotFinite(f"must fit in 64 bits (got {_got(value)})")
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotFinite(f"must be a finite number (got {_got(value)})")
    return value


def _number(value: Any) -> int | float:
    """A finite int or float; numeric strings (YAML reads `1e-5` as a string) are converted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(value)
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return _finite(convert(value))
            except _NotFinite:
                raise
            except ValueError:
                pass
    raise ValueError(f"must be a number (got {_got(value)})")


def _fixed(value: Any) -> int | float:
    try:
        return _number(value)
    except _NotFinite:
        raise
    except ValueError:
        raise ValueError("must be a number, a range {low: .., high: .., log: false} or "
                         f"{{choices: [...]}} (got {_got(value)})") from None


def _strict_int(value: Any) -> Any:
    """YAML's `true` is not the count 1, nor is the string "2" the count 2 (pydantic's lax ints
    would take both): a count is written as a number."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, not {str(value).lower()}")
    if isinstance(value, str):
        quoted = value.strip().lstrip("+-").isdigit()
        raise ValueError(f"must be an integer, not the string {_got(value)} (drop the quotes)"
                         if quoted else f"must be an integer (got {_got(value)})")
    return value


Int = Annotated[int, BeforeValidator(_strict_int)]  # ints as pydantic reads them, no bool or str


def _name(value: Any) -> Any:
    """Suite and GAN names: one rule (gan_bench.names), safe as a folder and a store's name."""
    if isinstance(value, str):
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


Name = Annotated[str, BeforeValidator(_name)]


Number = Annotated[Union[int, float], PlainValidator(_number)]


def _pack_count(value: Any) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"must be an integer >= 1 or 'auto' (got {_got(value)})")


PackCount = Annotated[Union[int, str], PlainValidator(_pack_count)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- search space -------------------------------------------------------------------------------

class Range(_Model):
    """A searched interval [low, high]: ints for k and batch_size, floats otherwise."""

    low: Number
    high: Number
    log: bool = False  # linear unless asked: a log scale needs low > 0 (learning rates use it)

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got low {self.low})")
        return self

    def values(self) -> list[int | float]:
        return [self.low, self.high]


class Choices(_Model):
    """A searched categorical parameter: one of `choices`."""

    choices: list[Number] = Field(min_length=1)  # no default: an empty list searches nothing

    def values(self) -> list[int | float]:
        return list(self.choices)


Fixed = Annotated[Union[int, float], PlainValidator(_fixed)]
_TAGS = {"Range": Range, "Choices": Choices, "Fixed": None}  # tags appear in pydantic locs


def _param_tag(value: Any) -> str:
    if isinstance(value, (Range, Choices)):
        return type(value).__name__
    if isinstance(value, dict):
        return "Choices" if "choices" in value else "Range"
    return "Fixed"


Param = Annotated[Union[Annotated[Range, Tag("Range")], Annotated[Choices, Tag("Choices")],
                        Annotated[Fixed, Tag("Fixed")]], Discriminator(_param_tag)]
Searched = Union[Range, Choices]


def _check_param(name: str, param: Any) -> None:
    """Per-parameter bounds: ints >= 1 for k and batch_size, (0, inf) for rates, Adam's betas."""
    values = param.values() if isinstance(param, (Range, Choices)) else [param]
    if name in INT_PARAMS and not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"must be integers >= 1 (got {values})")
    if name.startswith("lr") and not all(v > 0 for v in values):
        raise ValueError(f"learning rates and their ratio must be > 0 (got {values})")
    # A range may end at 1 (Lucic 2018: beta1 ~ U[0, 1]); samplers do not return high itself.
    ok = (lambda v: 0 <= v <= 1) if isinstance(param, Range) else (lambda v: 0 <= v < 1)
    if name.startswith("beta") and not all(ok(v) for v in values):
        raise ValueError(f"Adam's betas must lie in [0, 1) (got {values})")


def _as_float(param: Any) -> Any:
    """The same parameter with float values (`lr_ratio: 1` is the float 1.0)."""
    if isinstance(param, Range):
        return param.model_copy(update={"low": float(param.low), "high": float(param.high)})
    if isinstance(param, Choices):
        return param.model_copy(update={"choices": [float(v) for v in param.choices]})
    return float(param)


class SearchSpace(_Model):
    """What the study searches: each parameter a fixed number, a range or a list of choices."""

    lr_g: Param = Range(low=1e-5, high=1e-3, log=True)  # searched: the best lr differs per GAN
    lr_ratio: Param = Range(low=0.1, high=10.0, log=True)  # TTUR: D faster or slower than G
    k: Param = Range(low=1, high=5)  # D steps per G step (Goodfellow's k; WGAN used 5)
    beta1: Param = 0.5  # DCGAN: 0.9 made training oscillate
    beta2: Param = 0.999  # Adam's default; Lucic 2018 did not search it
    batch_size: Param = 64  # Lucic 2018 (one batch size for every GAN)

    @field_validator("*")
    @classmethod
    def _bounds(cls, value: Any, info: Any) -> Any:
        _check_param(info.field_name, value)
        return value if info.field_name in INT_PARAMS else _as_float(value)

    def searched(self) -> dict[str, Searched]:
        """Parameters the sampler draws, by name."""
        return {n: v for n, v in self._params().items() if isinstance(v, (Range, Choices))}

    def fixed(self) -> dict[str, int | float]:
        """Parameters held at one value, by name."""
        return {n: v for n, v in self._params().items() if not isinstance(v, (Range, Choices))}

    def stated(self) -> set[str]:
        """Parameters the suite file gives explicitly (not left at their defaults)."""
        return set(self.model_fields_set)

    def _params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}


# --- the other sections -------------------------------------------------------------------------

def _check_train(train: dict[str, Any]) -> dict[str, Any]:
    """Keys must be TrainConfig fields the suite may set; values are coerced to their types."""
    unknown = [k for k in train if k not in TRAIN_KEYS]
    if unknown:
        reserved = [k for k in unknown if k in NOT_IN_TRAIN]
        why = (" (set by budget, device and finalists, not train)" if reserved
               else f" (known: {', '.join(TRAIN_KEYS)})")
        raise _KeyProblem(unknown[0], f"unknown key{why}")
    hints = get_type_hints(TrainConfig)
    out = {}
    for key, value in train.items():
        hint = hints[key]
        kind = getattr(hint, "__name__", str(hint))
        if isinstance(value, bool) and bool not in (hint, *get_args(hint)):
            raise _KeyProblem(key, f"must be {kind} (got {_got(value)})")
        if (isinstance(value, str) and int in (hint, *get_args(hint))
                and str not in get_args(hint) and value.strip().lstrip("+-").isdigit()):
            raise _KeyProblem(key, f"must be an integer, not the string {_got(value)} "
                                   "(drop the quotes)")
        try:
            out[key] = TypeAdapter(hint).validate_python(value)
        except ValidationError:
            raise _KeyProblem(key, f"must be {kind} (got {_got(value)})") from None
        try:
            if isinstance(out[key], (int, float)):
                _finite(out[key])
            if key.startswith("beta"):  # TrainConfig leaves Adam's betas to torch, at train time
                _check_param(key, out[key])
        except ValueError as exc:
            raise _KeyProblem(key, str(exc)) from None
    return out


class DatasetSpec(_Model):
    """The training data and the real split the metrics compare against."""

    name: str  # no default: the dataset is what the suite is about (gan-bench list datasets)
    train_split: str = "train"  # GANs train on the training split
    eval_split: str = "test"  # Lucic 2018: FID against the TEST split, never the training images
    subset: Int | None = Field(None, ge=1)  # None: all; N: the first N (tiny CPU modes)
    options: dict[str, Any] = {}  # passed to the dataset source (e.g. sigma for a mixture)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _known(DATASETS, value)

    @field_validator("train_split", "eval_split")
    @classmethod
    def _split(cls, value: str) -> str:
        from gan_bench.data.base import SPLITS

        if value not in SPLITS:
            raise ValueError(f"unknown split {value!r} (known: {', '.join(SPLITS)})")
        return value


class GanEntry(_Model):
    """One GAN of the suite: a preset, or arch + loss (+ penalty), with overrides."""

    name: Name | None = None  # None: the preset's name, else arch_loss[_penalty]
    preset: str | None = None  # a paper's setting (gan-bench list presets); None: give arch + loss
    arch: str | None = None  # None: the preset's architecture
    loss: str | None = None  # None: the preset's loss
    penalty: str | None = None  # None: the preset's penalty, else "none"
    arch_options: dict[str, Any] = {}  # ArchOptions fields, merged over the preset's
    loss_params: dict[str, Any] = {}  # merged over the preset's when the loss is the preset's
    penalty_params: dict[str, Any] = {}  # merged over the preset's when the penalty is the preset's
    train: dict[str, Any] = {}  # fixed TrainConfig values for this GAN; they leave its search
    search: SearchSpace | None = None  # None: the suite's; fields given here replace the suite's

    @field_validator("preset", "arch", "loss", "penalty")
    @classmethod
    def _registered(cls, value: str | None, info: Any) -> str | None:
        registry = {"preset": PRESETS, "arch": ARCHITECTURES, "loss": LOSSES,
                    "penalty": PENALTIES}[info.field_name]
        return _known(registry, value, references=info.field_name != "preset")

    @field_validator("train")
    @classmethod
    def _train_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_train(value)

    @model_validator(mode="after")
    def _preset_or_parts(self) -> "GanEntry":
        if self.preset is None and (self.arch is None or self.loss is None):
            raise ValueError("give a preset, or both arch and loss")
        return self

    def spec(self) -> GanSpec:
        """The GAN as arch x loss x penalty: the preset's, with this entry's overrides."""
        base = PRESETS.get(self.preset).spec if self.preset else GanSpec("", "")
        loss, penalty = self.loss or base.loss, self.penalty or base.penalty
        return GanSpec(
            self.arch or base.arch, loss, penalty,
            {**base.arch_options, **self.arch_options},
            {**(base.loss_params if loss == base.loss else {}), **self.loss_params},
            {**(base.penalty_params if penalty == base.penalty else {}), **self.penalty_params})

    def resolved_name(self) -> str:
        if self.name or self.preset:
            return self.name or self.preset  # type: ignore[return-value]
        penalty = plugins.short_name(self.penalty or "none")  # a reference: its callable's name
        name = f"{plugins.short_name(str(self.arch))}_{plugins.short_name(str(self.loss))}"
        return name + (f"_{penalty}" if penalty != "none" else "")

    def preset_train(self) -> dict[str, Any]:
        return dict(PRESETS.get(self.preset).train) if self.preset else {}

    def search_space(self, suite_space: SearchSpace) -> SearchSpace:
        """The suite's space with the fields this entry's `search` states replaced."""
        if self.search is None:
            return suite_space
        own = self.search
        return suite_space.model_copy(update={n: getattr(own, n) for n in own.model_fields_set})


class SamplerSpec(_Model):
    """Optuna's sampler for each GAN's study."""

    name: Literal["tpe", "random", "gp"] = "tpe"  # TPE: Optuna's default, good with few trials
    seed: Int = Field(0, ge=0, lt=SEED_LIMIT)  # fixed: a fresh run proposes the same trials
    n_startup_trials: Int | None = Field(None, ge=0)  # None: the sampler's own default (TPE: 10)


class PrunerSpec(_Model):
    """Optuna's pruner: stops trials whose intermediate objective is clearly worse."""

    name: Literal["median", "hyperband", "none"] = "median"  # median: simple, robust to few trials
    n_startup_trials: Int = Field(3, ge=0)  # prune only once 3 trials have completed
    n_warmup_evals: Int = Field(1, ge=0)  # never prune on a trial's first evaluation (noisy)


class Budget(_Model):
    """How long each trial trains and how many trials each GAN gets."""

    trials: Int = Field(ge=1)  # no default: the main cost knob; completed + pruned per GAN
    iterations: Int | None = Field(None, ge=1)  # G steps; exactly one of iterations / epochs
    epochs: float | None = Field(None, gt=0)  # passes of D over the training set (Lucic: 20)
    eval_every: Int = Field(0, ge=0)  # 0: evaluate at the end only (pruning then never fires)
    timeout_minutes: float | None = Field(None, gt=0)  # None: no wall-clock cap on one `run`
    max_failures: Int | None = Field(None, ge=0)  # None: `trials` failed trials stop a GAN's study
    # 1: one trial at a time; P: P trials of a GAN trained together on one device (train/packed.py;
    # GANs it cannot pack run one at a time); "auto": as many as the GPU's memory holds (1 on a CPU).
    # Not `pack`: that is PacGAN's arch option.
    packed_trials: PackCount = 1

    @model_validator(mode="after")
    def _one_length(self) -> "Budget":
        if (self.iterations is None) == (self.epochs is None):
            got = "both" if self.iterations is not None else "neither"
            raise ValueError(f"give exactly one of iterations and epochs (got {got})")
        return self

    def train_fields(self) -> dict[str, Any]:
        """The TrainConfig fields the budget sets."""
        length = {"iterations": self.iterations} if self.iterations else {"epochs": self.epochs}
        return {**length, "eval_every": self.eval_every}


def _metric(name: str) -> str:
    if len(METRICS):  # names are checked once any metric is registered
        _known(METRICS, name)
    return name


class MetricsSpec(_Model):
    """What the study minimises and what the finalists are scored with."""

    objective: str = "fid_mnist"  # MNIST-classifier FID: cheap, and TTUR advises it on MNIST
    # a record of the objective metric that the search optimises instead of its headline, e.g.
    # kl_to_uniform of `modes` on ring8 (the headline, modes captured, ties at 8 of 8)
    objective_record: str | None = None
    final: list[str] = []  # extra metrics for the finalists only (expensive ones go here)
    # metrics also scored at every evaluation of every run, on the search's samples, and logged
    # as curves beside the objective (e.g. `modes` while the objective is fid_points): how they
    # move with training length; they cost an evaluation each, so keep them cheap
    curves: list[str] = []
    n_fake_search: Int = Field(2000, ge=1)  # per evaluation during search: cheap, biased upwards
    n_fake: Int = Field(10000, ge=1)  # finalists: 10k, as Lucic 2018 and TTUR's minimum
    n_real: Int | None = Field(10000, ge=1)  # real samples from eval_split; None = the whole split

    @field_validator("objective")
    @classmethod
    def _objective_name(cls, value: str) -> str:
        return _metric(value)

    @field_validator("final", "curves")
    @classmethod
    def _final_names(cls, value: list[str]) -> list[str]:
        return [_metric(name) for name in value]


class FinalistsSpec(_Model):
    """The best settings of each GAN's search, retrained with fresh seeds."""

    top: Int = Field(1, ge=0)  # the best setting per GAN; 0 skips the finalist stage
    seeds: Int = Field(3, ge=1)  # seeds 1000..1000+seeds-1, distinct from the search seeds

    def seed_list(self) -> list[int]:
        return list(range(1000, 1000 + self.seeds))


class Suite(_Model):
    """A benchmark suite: one dataset, several GANs, one search protocol, one scoring protocol."""

    name: Name  # no default: names the output dir, the experiment and the studies
    description: str = ""  # free text for reports
    dataset: DatasetSpec  # no default: what the suite is about
    gans: list[GanEntry] = Field(min_length=1)  # no default: the GANs under comparison
    train: dict[str, Any] = {}  # fixed TrainConfig values for every GAN (e.g. log_every)
    search: SearchSpace = SearchSpace()  # lr_g, lr_ratio and k searched: the suite's question
    sampler: SamplerSpec = SamplerSpec()  # TPE, seeded
    pruner: PrunerSpec = PrunerSpec()  # median pruning
    budget: Budget  # no default: the cost is the user's decision
    metrics: MetricsSpec = MetricsSpec()  # MNIST FID objective
    finalists: FinalistsSpec = FinalistsSpec()  # best setting, 3 seeds
    tracking_uri: str | None = None  # None: sqlite:///<output_dir>/mlflow.db
    storage: str | None = None  # Optuna storage URL; None: sqlite:///<output_dir>/optuna.db
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")  # auto: cuda when present
    output_dir: str | None = None  # None: runs/<name>; relative paths are relative to the cwd

    @field_validator("train")
    @classmethod
    def _train_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_train(value)

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir or Path("runs") / self.name).expanduser().absolute()

    def resolved_storage(self) -> str:
        return stores.storage_url(self)

    def resolved_tracking_uri(self) -> str:
        return stores.tracking_uri(self)

    def resolved_gans(self) -> list["ResolvedGan"]:
        return [_resolve(self, gan) for gan in self.gans]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, defaults filled in, written next to a run; `parse_suite` of it resolves
        the same GANs. Search spaces keep only their stated fields, because an unstated default
        ranks below a preset's value (see the module docstring)."""
        out = self.model_dump(mode="json")
        out["search"] = self.search.model_dump(mode="json", exclude_unset=True)
        for gan, dumped in zip(self.gans, out["gans"]):
            if gan.search is not None:
                dumped["search"] = gan.search.model_dump(mode="json", exclude_unset=True)
        return out


# --- resolution ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedGan:
    """One GAN of a suite, ready for the runner (see the module docstring for precedence)."""

    name: str
    spec: GanSpec
    train: dict[str, Any]  # preset.train <- suite.train <- gan.train (given keys only)
    search: dict[str, Searched]  # what the study samples for this GAN
    fixed_search: dict[str, int | float]  # search-space values held fixed for this GAN

    def trial_train(self, sampled: dict[str, Any] | None = None) -> dict[str, Any]:
        """TrainConfig overrides of one trial (without budget, device and seed)."""
        return {**self.train, **self.fixed_search, **(sampled or {})}

    def to_dict(self) -> dict[str, Any]:
        search = {n: p.model_dump(mode="json") for n, p in self.search.items()}
        return {"name": self.name, "spec": self.spec.to_dict(), "train": self.train,
                "search": search, "fixed_search": self.fixed_search}


def _resolve(suite: Suite, gan: GanEntry) -> ResolvedGan:
    space = gan.search_space(suite.search)
    base = {**gan.preset_train(), **suite.train}
    pinned = set(gan.train)
    searched = {n: p for n, p in space.searched().items() if n not in pinned}
    fixed = {n: v for n, v in space.fixed().items()
             if n not in pinned and (n in space.stated() or n not in base)}
    return ResolvedGan(gan.resolved_name(), gan.spec(), {**base, **gan.train}, searched, fixed)


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


def _metric_problems(suite: Suite) -> list[str]:
    """Each metric is computable on the dataset and gets the samples it needs: the runner would
    find out only at the first evaluation, after a trial's training (or after the search, for
    metrics.final). Evaluated as the runner does: the objective on n_fake_search samples during
    the search, every metric on n_fake for the finalists."""
    from gan_bench.metrics.evaluate import Evaluator

    m, ds = suite.metrics, suite.dataset
    requests = [("metrics.objective", m.objective, ("n_fake_search", "n_fake"))]
    requests += [(f"metrics.final[{i}]", name, ("n_fake",)) for i, name in enumerate(m.final)]
    requests += [(f"metrics.curves[{i}]", name, ("n_fake_search", "n_fake"))
                 for i, name in enumerate(m.curves)]
    problems = []
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


# --- pydantic errors -> one line each ---------------------------------------------------------

def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _TAGS:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model at `loc` (a path into a Suite), for 'unknown key' messages."""
    cls: type[BaseModel] | None = Suite
    for part in loc:
        if cls is None:
            return []
        if isinstance(part, int):
            continue
        if part in _TAGS:
            cls = _TAGS[part]
            continue
        field = cls.model_fields.get(part)
        cls = _submodel(field.annotation) if field is not None else None
    return list(cls.model_fields) if cls is not None else []


_TYPE_PHRASES = {  # pydantic type errors -> what the value must be; "(got ...)" is appended
    "must be an integer": ("int_parsing", "int_type", "int_from_float"),
    "must be a number": ("float_parsing", "float_type"),
    "must be true or false": ("bool_parsing", "bool_type"),
    "must be a string": ("string_type",),
    "must be a list": ("list_type",),
    "must be a mapping": ("dict_type", "model_type", "model_attributes_type"),
}

_MESSAGES = {
    "missing": lambda e: "required",
    "greater_than_equal": lambda e: f"must be >= {e['ctx']['ge']} (got {_got(e['input'])})",
    "greater_than": lambda e: f"must be > {e['ctx']['gt']} (got {_got(e['input'])})",
    "literal_error": lambda e: f"must be one of {e['ctx']['expected']} (got {_got(e['input'])})",
    "string_pattern_mismatch":
        lambda e: f"must match {e['ctx']['pattern']} (got {_got(e['input'])})",
    "too_short": lambda e: f"must have at least {e['ctx']['min_length']} item(s)",
    "less_than": lambda e: f"must be < {e['ctx']['lt']} (got {_got(e['input'])})",
    "less_than_equal": lambda e: f"must be <= {e['ctx']['le']} (got {_got(e['input'])})",
    "finite_number": lambda e: f"must be a finite number (got {_got(e['input'])})",
    **{kind: (lambda e, phrase=phrase: f"{phrase} (got {_got(e['input'])})")
       for phrase, kinds in _TYPE_PHRASES.items() for kind in kinds},
}


def _problem(error: dict[str, Any]) -> str:
    """One pydantic error as `a.b[2].c: message`."""
    loc, cause = list(error["loc"]), error.get("ctx", {}).get("error")
    if isinstance(cause, _KeyProblem):
        loc.append(cause.key)
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return f"{_path(loc)}: unknown key" + (f" (known: {', '.join(known)})" if known else "")
    if cause is not None:
        return f"{_path(loc)}: {cause}"
    message = _MESSAGES.get(error["type"])
    text = message(error) if message else error["msg"][:1].lower() + error["msg"][1:]
    return f"{_path(loc)}: {text}"


def _unique(lines: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# --- overrides, loading -------------------------------------------------------------------------

_KEY_PATH = re.compile(r"[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*")
_KEY_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def _parse_override(text: str) -> tuple[list[str | int], Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATH.fullmatch(key):
        raise ValueError("expected key.path=value, e.g. budget.trials=2 or gans[0].train.k=3")
    parts = [m[1] if m[1] else int(m[2]) for m in _KEY_PART.finditer(key)]
    try:
        return parts, _safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"value is not valid YAML ({_yaml_reason(exc)})") from None


def _set(data: dict[str, Any], parts: list[str | int], value: Any) -> None:
    """data[parts[0]][parts[1]]... = value; missing mappings on the way are created."""
    node: Any = data
    for i, part in enumerate(parts):
        where = _path(parts[:i]) or "the suite"
        if isinstance(part, int) and not isinstance(node, list):
            raise ValueError(f"{where} is not a list")
        if isinstance(part, int) and part >= len(node):
            raise ValueError(f"{where} has {len(node)} entries, no index {part}")
        if isinstance(part, str) and not isinstance(node, dict):
            raise ValueError(f"{where} is not a mapping (got {_got(node)})")
        if i == len(parts) - 1:
            node[part] = value
        elif isinstance(part, str) and node.get(part) is None and isinstance(parts[i + 1], str):
            node[part] = {}
        node = node[part] if isinstance(part, int) else node.get(part)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `key.path=value` applied (value read as YAML)."""
    data, problems = copy.deepcopy(data), []
    for text in overrides:
        try:
            _set(data, *_parse_override(text))
        except ValueError as exc:
            problems.append(f"--set {text}: {exc}")
    if problems:
        raise SuiteError(problems)
    return data


def parse_suite(data: Any, source: str = "<suite>", overrides: Sequence[str] = ()) -> Suite:
    """Validate a suite mapping (after `overrides`); SuiteError lists every problem found."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _got(data)
        raise SuiteError([f"{source}: the top level must be a mapping of keys (got {got})"], source)
    data = apply_overrides(data, overrides)
    text = _text_problems(data)
    if text:  # before anything else reads a value that cannot be written anywhere
        raise SuiteError(text, source)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(_unique([_problem(e) for e in exc.errors()]), source) from None
    problems = _unique(_cross_problems(suite))
    if problems:
        raise SuiteError(problems, source)
    return suite


def _text_problems(node: Any, loc: tuple[Any, ...] = ()) -> list[str]:
    """Strings that are not text: a YAML escape such as "\\uD800" yields a lone surrogate,
    which no file, JSON record or database column can store (run would fail after creating
    its stores). Keys and values, at any depth."""
    def bad(text: str) -> bool:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    problems = []
    if isinstance(node, str) and bad(node):
        problems.append(f"{_path(loc)}: contains a lone surrogate ({_got(node)}), which is not "
                        "text that can be stored; remove the \\uD8xx-\\uDFxx escape")
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and bad(key):
                problems.append(f"{_path(loc) if loc else '<top level>'}: a key contains a lone "
                                f"surrogate ({_got(key)}), which is not text that can be stored")
                continue
            problems += _text_problems(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += _text_problems(value, (*loc, i))
    return problems


class _SuiteLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # `<<: *base` merges are meant to be overridden
            key = self.construct_object(key_node)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first[key] + 1})",
                    key_node.start_mark)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_nodes(node: Any, sizes: dict[int, int]) -> int:
    """Nodes under `node` with every alias expanded; an alias is its anchor's node object, so
    `sizes` (by id) keeps this linear in the file's size."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise yaml.composer.ComposerError(None, None, "an alias refers to its own anchor "
                                              "(a recursive structure)", node.start_mark)
        return sizes[id(node)]
    sizes[id(node)] = -1  # being counted: meeting it again is a cycle
    children: list[Any] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    sizes[id(node)] = 1 + sum(_expanded_nodes(child, sizes) for child in children)
    return sizes[id(node)]


def _safe_load(text: str) -> Any:
    """yaml.safe_load without duplicate keys or alias bombs ("billion laughs": a few lines of
    aliases of aliases that expand into 10**9 strings once the suite is dumped or used)."""
    loader = _SuiteLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, {}) > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand it to more than {MAX_YAML_NODES} values (an alias "
                "bomb?); write the values out")
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {reason}" if mark is not None else reason


def load_suite(path: str | Path, overrides: Sequence[str] = ()) -> Suite:
    """Read a suite YAML file (safe_load only), apply `--set` overrides and validate it."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([f"{source}: file not found"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{source}: cannot read ({exc})"], source) from None
    try:
        data = _safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError([f"{source}: not valid YAML ({_yaml_reason(exc)})"], source) from None
    return parse_suite(data, source, overrides)
