"""The suite schema: the pydantic model of each section of a suite file (dataset, gans, train,
search, sampler, pruner, budget, metrics, finalists, stores, device, output) and its field
validators. Every model forbids unknown keys and carries its defaults with the reason for each.
The search space and its numbers are gan_bench.config.space; checks that need the whole suite
are gan_bench.config.checks.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    BeforeValidator,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gan_bench import plugins, stores
from gan_bench.config.errors import _got, _KeyProblem
from gan_bench.config.resolve import ResolvedGan, _resolve
from gan_bench.config.space import SearchSpace, _check_param, _finite, _Model
from gan_bench.errors import UserInputError
from gan_bench.names import name_problem
from gan_bench.registry import ARCHITECTURES, DATASETS, LOSSES, METRICS, PENALTIES, PRESETS, Registry
from gan_bench.train.config import GanSpec, TrainConfig

__all__ = ["Suite", "DatasetSpec", "GanEntry", "SamplerSpec", "PrunerSpec", "Budget",
           "MetricsSpec", "FinalistsSpec", "TRAIN_KEYS"]

# Set by the suite elsewhere (budget, device, finalist seeds), so not allowed in `train`.
NOT_IN_TRAIN = ("iterations", "epochs", "seed", "device", "eval_every")
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_IN_TRAIN)
# Optuna's samplers seed numpy's RandomState, which takes [0, 2**32); 2**31 leaves room for the
# 10007 that each further worker adds (study.py).
SEED_LIMIT = 2**31


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

def _pack_count(value: Any) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"must be an integer >= 1 or 'auto' (got {_got(value)})")


PackCount = Annotated[int | str, PlainValidator(_pack_count)]

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
    def _name(cls, value: str) -> str | None:
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
    def _registered(cls, value: str | None, info: ValidationInfo) -> str | None:
        registry = {"preset": PRESETS, "arch": ARCHITECTURES, "loss": LOSSES,
                    "penalty": PENALTIES}[str(info.field_name)]
        return _known(registry, value, references=info.field_name != "preset")

    @field_validator("train")
    @classmethod
    def _train_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_train(value)

    @model_validator(mode="after")
    def _preset_or_parts(self) -> GanEntry:
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
    # TrainConfig's default: evaluate at the end only (pruning then never fires)
    eval_every: Int = Field(TrainConfig.eval_every, ge=0)
    timeout_minutes: float | None = Field(None, gt=0)  # None: no wall-clock cap on one `run`
    max_failures: Int | None = Field(None, ge=0)  # None: `trials` failed trials stop a GAN's study
    # 1: one trial at a time; P: P trials of a GAN trained together on one device (train/packed.py;
    # GANs it cannot pack run one at a time); "auto": as many as the GPU's memory holds (1 on a CPU).
    # Not `pack`: that is PacGAN's arch option.
    packed_trials: PackCount = 1

    @model_validator(mode="after")
    def _one_length(self) -> Budget:
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
    seeds: Int = Field(3, ge=1)  # seeds plan.FINALIST_SEED0, +1, ...: not the search seeds


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
    # TrainConfig's default, "auto": cuda when present
    device: str = Field(TrainConfig.device, pattern=r"^(auto|cpu|cuda(:\d+)?)$")
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

    def resolved_gans(self) -> list[ResolvedGan]:
        return [_resolve(gan.resolved_name(), gan.spec(), gan.search_space(self.search),
                         gan.preset_train(), self.train, gan.train) for gan in self.gans]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, defaults filled in, written next to a run; `parse_suite` of it resolves
        the same GANs. Search spaces keep only their stated fields, because an unstated default
        ranks below a preset's value (see gan_bench.config.resolve)."""
        out = self.model_dump(mode="json")
        out["search"] = self.search.model_dump(mode="json", exclude_unset=True)
        for gan, dumped in zip(self.gans, out["gans"]):
            if gan.search is not None:
                dumped["search"] = gan.search.model_dump(mode="json", exclude_unset=True)
        return out
