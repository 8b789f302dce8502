"""The suite schema: one YAML file names a dataset, the GANs to compare, the search space over
lr_g, lr_ratio (= lr_d / lr_g) and k, the budget, the metrics and the finalist stage.

YAML holds only overrides: every model forbids unknown keys and carries its defaults with
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

Modules, each importing only those above it:

- errors: `SuiteError` and the phrasing every problem line shares;
- space: numbers and the search space (Range, Choices, SearchSpace, INT_PARAMS);
- resolve: one GAN resolved for the runner (ResolvedGan) and the precedence of a trial's
  TrainConfig (its docstring);
- schema: the other sections and `Suite`;
- checks: what needs the whole suite (names, registries, shapes, metrics, memory, store URLs);
- messages: pydantic's errors as one line each;
- safe_yaml: `yaml.safe_load` without duplicate keys or alias bombs;
- overrides: `--set key.path=value`;
- loading: `parse_suite` and `load_suite`.
"""

from gan_bench.config.errors import SuiteError
from gan_bench.config.loading import load_suite, parse_suite
from gan_bench.config.overrides import apply_overrides
from gan_bench.config.resolve import ResolvedGan
from gan_bench.config.safe_yaml import MAX_YAML_NODES
from gan_bench.config.schema import (
                                     NOT_IN_TRAIN,
                                     SEED_LIMIT,
                                     TRAIN_KEYS,
                                     Budget,
                                     DatasetSpec,
                                     FinalistsSpec,
                                     GanEntry,
                                     MetricsSpec,
                                     PrunerSpec,
                                     SamplerSpec,
                                     Suite,
)
from gan_bench.config.space import INT_PARAMS, Choices, Range, SearchSpace

__all__ = [
    "SuiteError", "load_suite", "parse_suite", "apply_overrides", "Suite", "DatasetSpec",
    "GanEntry", "SearchSpace", "Range", "Choices", "SamplerSpec", "PrunerSpec", "Budget",
    "MetricsSpec", "FinalistsSpec", "ResolvedGan", "TRAIN_KEYS", "INT_PARAMS",
    "NOT_IN_TRAIN", "SEED_LIMIT", "MAX_YAML_NODES",
]
