"""The suite schema: shipped suites validate, precedence of train values, --set overrides,
defaults, one path-naming line per problem for malformed suites, and `gan-bench validate`.

No training here: every test only parses and validates.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gan_bench.cli import app
from gan_bench.config import Choices, MetricsSpec, Range, SearchSpace, Suite, SuiteError, load_suite, parse_suite
from gan_bench.plan import FINALIST_SEED0

SUITES = sorted((Path(__file__).resolve().parents[1] / "suites").glob("*.yaml"))
DELETE = object()


def minimal() -> dict:
    """A small valid suite: two toy GANs on ring8, scored as ring8 can be (the default
    objective fid_mnist needs MNIST digits, and ring8's test split has 2,500 points)."""
    return {
        "name": "tiny", "dataset": {"name": "ring8"},
        "gans": [{"name": "toy_ns", "arch": "toy_mlp", "loss": "non_saturating"},
                 {"name": "toy_hinge", "arch": "toy_mlp", "loss": "hinge"}],
        "budget": {"trials": 2, "iterations": 10},
        "metrics": {"objective": "fid_points", "n_real": 2500},
    }


def put(data: dict, dotted: str, value: object) -> dict:
    """Set (or delete, for DELETE) data[a][b]... for the path "a.b..."; digits index lists."""
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = data
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def problems_of(data: object, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SuiteError) as info:
        parse_suite(data, "test.yaml", overrides)
    assert str(info.value) == "\n".join(info.value.problems)
    assert all("\n" not in line for line in info.value.problems)
    return info.value.problems


# --- shipped suites -----------------------------------------------------------------------------

def test_suites_folder_is_found():
    assert {"smoke", "smoke_mnist", "quickstart", "mnist"} <= {p.stem for p in SUITES}


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_validates(path):
    suite = load_suite(path)
    assert suite.name == path.stem  # the output dir runs/<name> matches the file name
    gans = suite.resolved_gans()
    assert gans and len({g.name for g in gans}) == len(gans)
    json.dumps([g.to_dict() for g in gans])
    again = parse_suite(json.loads(json.dumps(suite.to_dict())))
    assert again.resolved_gans() == gans and again.to_dict() == suite.to_dict()


def test_smoke_suite_is_the_tiny_cpu_protocol():
    suite = load_suite(next(p for p in SUITES if p.stem == "smoke"))
    assert (suite.dataset.name, suite.device, suite.budget.trials) == ("ring8", "cpu", 3)
    assert (suite.budget.iterations, suite.budget.eval_every) == (200, 100)
    assert suite.search.k == Range(low=1, high=2)
    assert (suite.metrics.objective, suite.metrics.final) == ("fid_points", ["modes"])


# --- defaults and resolution --------------------------------------------------------------------

def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = parse_suite(minimal())
    assert set(suite.search.searched()) == {"lr_g", "lr_ratio", "k"}
    assert suite.search.lr_g == Range(low=1e-5, high=1e-3, log=True)
    assert suite.search.fixed() == {"beta1": 0.5, "beta2": 0.999, "batch_size": 64}
    assert (suite.sampler.name, suite.sampler.seed, suite.pruner.name) == ("tpe", 0, "median")
    metrics = MetricsSpec()  # minimal() states ring8's metrics; these are the MNIST defaults
    assert (metrics.objective, metrics.n_fake_search, metrics.n_real) == ("fid_mnist", 2000, 10000)
    seed_list = [FINALIST_SEED0 + i for i in range(suite.finalists.seeds)]
    assert (suite.finalists.top, seed_list) == (1, [1000, 1001, 1002])
    assert suite.device == "auto" and suite.budget.eval_every == 0
    assert suite.resolved_output_dir() == tmp_path / "runs" / "tiny"
    assert suite.resolved_storage() == f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'optuna.db'}"


def test_default_gan_names():
    data = minimal()
    data["gans"] = [{"arch": "toy_mlp", "loss": "hinge"},
                    {"arch": "toy_mlp", "loss": "wasserstein", "penalty": "gradient_penalty"},
                    {"preset": "wgan_gp", "arch": "toy_mlp"}]
    names = [g.name for g in parse_suite(data).resolved_gans()]
    assert names == ["toy_mlp_hinge", "toy_mlp_wasserstein_gradient_penalty", "wgan_gp"]


def test_preset_spec_merges_overrides():
    entry = {"preset": "wgan", "arch": "toy_mlp", "penalty": "gradient_penalty",
             "arch_options": {"pack": 2}}
    data = put(minimal(), "gans", [entry])
    spec = parse_suite(data).resolved_gans()[0].spec
    assert (spec.arch, spec.loss, spec.penalty) == ("toy_mlp", "wasserstein", "gradient_penalty")
    assert spec.penalty_params == {}  # the preset's clip belongs to weight_clip, not to GP
    assert spec.arch_options == {"pack": 2}


def test_precedence_preset_suite_train_fixed_search_gan_train():
    data = minimal()
    data["dataset"] = {"name": "mnist"}
    del data["metrics"]  # the MNIST defaults
    data["gans"] = [{"preset": "dcgan", "train": {"batch_size": 16}}]  # lr_g 2e-4, beta1 .5, 128
    data["train"] = {"beta1": 0.3, "beta2": 0.95, "log_every": 7, "optimizer": "rmsprop"}
    data["search"] = {"beta2": 0.99, "batch_size": 32}  # stated fixed values
    gan = parse_suite(data).resolved_gans()[0]
    assert gan.train["optimizer"] == "rmsprop" and gan.train["log_every"] == 7  # suite.train
    assert gan.trial_train()["beta1"] == 0.3  # suite.train beats the preset
    assert gan.trial_train()["beta2"] == 0.99  # a stated fixed value beats suite.train
    assert gan.trial_train()["batch_size"] == 16  # gans[0].train beats the search space
    assert gan.trial_train({"lr_g": 1e-3})["lr_g"] == 1e-3  # sampled values beat the preset


def test_unstated_search_defaults_do_not_override_a_preset():
    data = put(minimal(), "gans", [{"preset": "wgan_gp", "arch": "toy_mlp"}])
    suite = parse_suite(data)
    assert suite.resolved_gans()[0].trial_train()["beta2"] == 0.9  # Gulrajani 2017
    assert parse_suite(suite.to_dict()).resolved_gans()[0].trial_train()["beta2"] == 0.9
    put(data, "search.beta2", 0.999)
    assert parse_suite(data).resolved_gans()[0].trial_train()["beta2"] == 0.999


def test_gan_train_key_leaves_the_search():
    data = put(minimal(), "gans.0.train", {"k": 3, "lr_ratio": 2.0})
    first, second = parse_suite(data).resolved_gans()
    assert set(first.search) == {"lr_g"} and first.trial_train()["k"] == 3
    assert "k" not in first.fixed_search and first.trial_train()["lr_ratio"] == 2.0
    assert set(second.search) == {"lr_g", "lr_ratio", "k"}


def test_gan_search_overrides_the_suite_space():
    data = put(minimal(), "gans.1.search", {"k": 2, "beta1": {"choices": [0.0, 0.5]}})
    first, second = parse_suite(data).resolved_gans()
    assert set(first.search) == {"lr_g", "lr_ratio", "k"}
    assert second.search == {"lr_g": Range(low=1e-5, high=1e-3, log=True),
                             "lr_ratio": Range(low=0.1, high=10.0, log=True),
                             "beta1": Choices(choices=[0.0, 0.5])}
    assert second.fixed_search["k"] == 2


def test_search_params_are_typed():
    space = SearchSpace(lr_ratio=1, k={"choices": [1, 5]}, lr_g={"low": "1e-5", "high": "1e-3"})
    assert space.lr_ratio == 1.0 and isinstance(space.lr_ratio, float)
    assert space.k == Choices(choices=[1, 5]) and all(type(v) is int for v in space.k.choices)
    assert space.lr_g == Range(low=1e-5, high=1e-3)  # YAML reads 1e-5 as a string
    assert set(space.searched()) == {"lr_g", "k"} and space.stated() == {"lr_ratio", "k", "lr_g"}


# --- overrides ----------------------------------------------------------------------------------

def test_overrides_dotted_indexed_lists_and_new_mappings():
    suite = parse_suite(minimal(), overrides=[
        "budget.trials=5", "gans[0].train.k=3", "metrics.final=[modes, kid]", "device=cpu",
        "train.log_every=7", "search.k={low: 1, high: 2}"])
    assert suite.budget.trials == 5 and suite.gans[0].train == {"k": 3}
    assert suite.metrics.final == ["modes", "kid"] and suite.device == "cpu"
    assert suite.train == {"log_every": 7} and suite.search.k == Range(low=1, high=2)


def test_overrides_do_not_touch_the_input():
    data = minimal()
    before = copy.deepcopy(data)
    parse_suite(data, overrides=["budget.trials=9"])
    assert data == before


@pytest.mark.parametrize("override, message", [
    ("gans[5].loss=hinge", "--set gans[5].loss=hinge: gans has 2 entries, no index 5"),
    ("budget.trials.x=1", "--set budget.trials.x=1: budget.trials is not a mapping"),
    ("budget.trials", "--set budget.trials: expected key.path=value"),
    ("budget..trials=1", "--set budget..trials=1: expected key.path=value"),
    ("dataset[0]=1", "--set dataset[0]=1: dataset is not a list"),
    ("budget.trials=[1", "--set budget.trials=[1: value is not valid YAML"),
])
def test_bad_override_paths(override, message):
    (line,) = problems_of(minimal(), (override,))
    assert line.startswith(message)


def test_override_to_an_unknown_key_is_a_schema_problem():
    assert problems_of(minimal(), ("budget.trails=3",))[0].startswith("budget.trails: unknown key")


# --- malformed suites ---------------------------------------------------------------------------

ALL_FIXED = {"lr_g": 1e-4, "lr_ratio": 1, "k": 1}

MALFORMED = [
    ("unknown top-level key", "nme", "x", "nme: unknown key (known: name, description, dataset"),
    ("unknown nested key", "dataset.foo", 1, "dataset.foo: unknown key (known: name, train_split"),
    ("unknown range key", "search.k", {"low": 1, "hi": 2}, "search.k.hi: unknown key (known: low"),
    ("wrong type", "budget.trials", "many", "budget.trials: must be an integer (got 'many')"),
    ("wrong section type", "budget", [1, 2], "budget: must be a mapping (got a list)"),
    ("missing section", "budget", DELETE, "budget: required"),
    ("no gans", "gans", [], "gans: must have at least 1 item"),
    ("unknown arch", "gans.0.arch", "toy_mlpp",
     "gans[0].arch: unknown architecture 'toy_mlpp' (known: dcgan, infogan, mlp, toy_mlp"),
    ("unknown loss", "gans.0.loss", "hinje", "gans[0].loss: unknown loss 'hinje' (known: hinge"),
    ("unknown penalty", "gans.1.penalty", "gp", "gans[1].penalty: unknown penalty 'gp' (known:"),
    ("unknown preset", "gans.0.preset", "dcgann",
     "gans[0].preset: unknown preset 'dcgann' (known:"),
    ("unknown dataset", "dataset.name", "ringg8", "dataset.name: unknown dataset 'ringg8' (known:"),
    ("unknown split", "dataset.eval_split", "val", "dataset.eval_split: unknown split 'val'"),
    ("neither preset nor arch", "gans.0.arch", DELETE, "gans[0]: give a preset, or both arch and"),
    ("every parameter fixed", "search", ALL_FIXED,
     "search: every parameter is fixed for every GAN, so trials > 1"),
    ("negative budget", "budget.trials", -3, "budget.trials: must be >= 1 (got -3)"),
    ("low > high", "search.k", {"low": 5, "high": 1}, "search.k: low (5) must be <= high (1)"),
    ("log range low <= 0", "search.lr_g", {"low": 0, "high": 1e-3, "log": True},
     "search.lr_g: a log range needs low > 0"),
    ("empty choices", "search.beta1", {"choices": []},
     "search.beta1.choices: must have at least 1"),
    ("non-integer k", "search.k", {"low": 1.5, "high": 3}, "search.k: must be integers >= 1"),
    ("beta out of range", "search.beta2", 1.0, "search.beta2: Adam's betas must lie in [0, 1)"),
    ("param not a number", "search.batch_size", "big",
     "search.batch_size: must be a number, a range"),
    ("both lengths", "budget.epochs", 2,
     "budget: give exactly one of iterations and epochs (got both)"),
    ("neither length", "budget.iterations", DELETE,
     "budget: give exactly one of iterations and epochs"),
    ("unknown train key", "gans.0.train.lr_dd", 1, "gans[0].train.lr_dd: unknown key (known: lr_g"),
    ("reserved train key", "gans.0.train.seed", 1,
     "gans[0].train.seed: unknown key (set by budget"),
    ("train value type", "train.k", "two", "train.k: must be int (got 'two')"),
    ("train value range", "gans.1.train.k", 0, "gans[1].train: k must be >= 1 (got 0)"),
    ("unknown arch option", "gans.0.arch_options.pak", 2,
     "gans[0].arch_options: unknown architecture option(s) 'pak'"),
    ("unknown loss param", "gans.1.loss_params.a", 1.0,
     "gans[1].loss_params: unknown parameter(s) 'a'"),
    ("arch cannot take the data", "gans.0.arch", "infogan", "gans[0].arch: architecture 'infogan'"),
    ("batch not a multiple of pack", "gans.0.arch_options", {"pack": 3},
     "gans[0].arch_options.pack: batch_size 64 is not a multiple of pack 3"),
    ("duplicate names", "gans.1.name", "toy_ns",
     "gans[1].name: 'toy_ns' is also the name of gans[0]"),
    ("bad name", "name", "my suite", "name: 'my suite' is not a name"),
    ("unknown sampler", "sampler.name", "cmaes", "sampler.name: must be one of 'tpe', 'random'"),
    ("bad device", "device", "gpu", "device: must match"),
    ("lr_d with searched ratio", "train.lr_d", 1e-4, "gans[0].train.lr_d: fixes D's learning rate"),
    # issue 13: values that passed validation, then crashed or silently misled the run
    ("infinite lr", "search.lr_g", float("inf"), "search.lr_g: must be a finite number (got inf)"),
    ("infinite range end", "search.lr_g", {"low": 1e-4, "high": float("inf"), "log": True},
     "search.lr_g.high: must be a finite number (got inf)"),
    ("lr_ratio 'inf' string", "search.lr_ratio", "inf", "search.lr_ratio: must be a finite number"),
    ("nan choice", "search.beta1", {"choices": [0.5, float("nan")]},
     "search.beta1.choices[1]: must be a finite number (got nan)"),
    ("int past 64 bits", "search.k", 2**70, "search.k: must fit in 64 bits"),
    ("train lr_d 'inf'", "gans.0.train.lr_d", "inf", "gans[0].train.lr_d: must be a finite number"),
    ("train beta2 nan", "train.beta2", float("nan"), "train.beta2: must be a finite number (got nan)"),
    ("train beta2 > 1", "train.beta2", 1.5, "train.beta2: Adam's betas must lie in [0, 1)"),
    ("train bool for an int", "train.k", True, "train.k: must be int (got True)"),
    ("loss param nan", "gans.0", {"name": "ls", "arch": "toy_mlp", "loss": "least_squares",
                                  "loss_params": {"a": float("nan")}},
     "gans[0].loss_params.a: must be a finite number (got nan)"),
    ("penalty param inf", "gans.1", {"name": "gp", "arch": "toy_mlp", "loss": "wasserstein",
                                     "penalty": "gradient_penalty",
                                     "penalty_params": {"weight": float("inf")}},
     "gans[1].penalty_params.weight: must be a finite number (got inf)"),
    ("finalists.top true", "finalists.top", True, "finalists.top: must be an integer, not true"),
    ("budget.trials true", "budget.trials", True, "budget.trials: must be an integer, not true"),
    ("metrics.n_fake false", "metrics.n_fake", False, "metrics.n_fake: must be an integer, not false"),
    ("sampler seed 2**70", "sampler.seed", 2**70, "sampler.seed: must be < 2147483648 (got 11805"),
    ("negative sampler seed", "sampler.seed", -1, "sampler.seed: must be >= 0"),
    ("epochs inf", "budget", {"trials": 2, "epochs": float("inf")},
     "budget.epochs: must be a finite number (got inf)"),
    ("unknown dataset option", "dataset.options", {"sigmaa": 0.1},
     "dataset.options.sigmaa: unknown option of ring8 (known: data_dir, n, seed, sigma, n_modes, "
     "radius)"),
    ("option of another dataset", "dataset", {"name": "mnist", "options": {"sigma": 0.1}},
     "dataset.options.sigma: unknown option of mnist (known: data_dir)"),
    ("dataset option seed 2**70", "dataset.options", {"seed": 2**70},
     "dataset.options.seed: must be an integer in [0, 2**31)"),
    ("dataset option sigma nan", "dataset.options", {"sigma": float("nan")},
     "dataset.options.sigma: must be a finite number > 0"),
    ("batch_size past memory", "search.batch_size", 10**12,
     "gans[0] (toy_ns) batch_size: 1000000000000 samples of shape (2,) in one training step "
     "(batch and the activations of G and D) take"),
    ("n_fake_search past memory", "metrics.n_fake_search", 10**12,
     "metrics.n_fake_search: 1000000000000 samples of shape (2,) as float32 take 8 TB"),
    ("dataset n past memory", "dataset.options", {"n": 10**12}, "dataset.options.n: 1000000000000"),
    ("modes with too few n_fake", "metrics", {"objective": "fid_points", "final": ["modes"],
                                              "n_fake": 100, "n_real": 2500},
     "metrics.n_fake: modes needs at least 2500 generated samples (the protocol scores "
     "n_samples=2500"),
    ("objective with too few n_fake_search", "metrics.n_fake_search", 5,
     "metrics.n_fake_search: fid_points needs at least 10 generated samples"),
    ("metric that does not fit the dataset", "metrics.final", ["is_mnist"],
     "metrics.final[0]: is_mnist: the MNIST classifier knows handwritten digits only"),
    ("objective that does not fit the dataset", "metrics.objective", "fid_mnist",
     "metrics.objective: fid_mnist: ring8 holds 2-D points"),
    ("objective_record the objective does not record", "metrics.objective_record", "coverage",
     "metrics.objective_record: fid_points records fid_points on ring8; not 'coverage'"),
    ("curve metric that does not fit the dataset", "metrics.curves", ["fid_mnist"],
     "metrics.curves[0]: fid_mnist: ring8 holds 2-D points"),
    ("unknown curve metric", "metrics.curves", ["fid_pointz"], "metrics.curves"),
    ("n_real past the split", "metrics.n_real", 5000,
     "metrics.n_real: 5000 real samples asked, but ring8/test has 2500"),
    ("garbage tracking_uri", "tracking_uri", "::::garbage::::",
     "tracking_uri: not a tracking URI MLflow can use"),
    ("bad-scheme tracking_uri", "tracking_uri", "bogus://host/x",
     "tracking_uri: not a tracking URI MLflow can use"),
    ("http tracking_uri without host", "tracking_uri", "http://", "tracking_uri: no host in"),
    ("garbage storage", "storage", "::::garbage::::", "storage: not a database URL"),
    ("bad-scheme storage", "storage", "bogus://host/x",
     "storage: unknown database scheme 'bogus'"),
    ("in-memory storage", "storage", "sqlite://", "storage: an in-memory sqlite database"),
]


@pytest.mark.parametrize("path, value, expected", [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_suite_names_the_field(path, value, expected):
    problems = problems_of(put(minimal(), path, value))
    assert any(line.startswith(expected) for line in problems), problems


def test_every_problem_is_reported_at_once():
    data = put(put(put(minimal(), "gans.0.loss", "hinje"), "budget.trials", -1), "nme", 1)
    assert [p.split(":")[0] for p in problems_of(data)] == ["gans[0].loss", "budget.trials", "nme"]


def test_empty_search_for_one_gan_only_runs_one_trial():
    """A paper's fixed setting next to searched GANs: one trial, its finalists the seeds."""
    from gan_bench.plan import gan_trials

    data = put(minimal(), "gans.1.train", {"lr_g": 1e-4, "lr_ratio": 1.0, "k": 1})
    suite = parse_suite(data)
    assert [gan_trials(suite, g) for g in suite.resolved_gans()] == [suite.budget.trials, 1]
    data = put(data, "gans.0.train", {"lr_g": 1e-4, "lr_ratio": 1.0, "k": 1})
    assert problems_of(data) == [
        "search: every parameter is fixed for every GAN, so trials > 1 would repeat one "
        "configuration (set budget.trials: 1)"]
    parse_suite(put(data, "budget.trials", 1))  # one trial of a fixed configuration is fine


def test_unknown_metric_names():
    from gan_bench.registry import METRICS, load_builtins

    load_builtins()
    if not len(METRICS):
        pytest.skip("no metric registered yet: metric names are not checked")
    (line,) = problems_of(put(minimal(), "metrics.final", ["modes", "fid_mnistt"]))
    assert line.startswith("metrics.final: unknown metric 'fid_mnistt' (known:")
    (line,) = problems_of(put(minimal(), "metrics.objective", "fdi"))
    assert line.startswith("metrics.objective: unknown metric 'fdi'")


@pytest.mark.parametrize("text, expected", [
    ("name: x\n  bad: indent\n", "bad.yaml: not valid YAML (line 2: "),
    ("- name: x\n- name: y\n", "bad.yaml: the top level must be a mapping of keys (got a list)"),
    ("", "bad.yaml: the top level must be a mapping of keys (got an empty file)"),
])
def test_malformed_files(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    (line,) = info.value.problems
    assert line.startswith(str(tmp_path / expected)), line


YAML_BAD = [  # (what, file text, the one line after "bad.yaml: not valid YAML (")
    ("duplicate key", "name: tiny\nbudget: {trials: 2}\nname: other\n",
     "line 3: duplicate key 'name' (first given at line 1))"),
    ("duplicate nested key", "search:\n  lr_g: 1.0e-4\n  k: 1\n  lr_g: 1.0e-3\n",
     "line 4: duplicate key 'lr_g' (first given at line 2))"),
    ("alias bomb", "name: tiny\ndataset:\n  name: ring8\n  options:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"    {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
               for i in range(8)),
     "aliases expand it to more than 100000 values (an alias bomb?); write the values out)"),
    ("recursive alias", "name: tiny\ngans: &g [*g]\n",
     "line 2: an alias refers to its own anchor (a recursive structure))"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in YAML_BAD], ids=[c[0] for c in YAML_BAD])
def test_yaml_that_safe_load_accepts_is_refused(tmp_path, text, expected):
    """Issue 13: PyYAML keeps the last of two equal keys silently, and expands aliases."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    (line,) = info.value.problems
    assert line.startswith(f"{path}: not valid YAML (") and line.endswith(expected), line


def test_small_aliases_and_merge_keys_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: tiny\ndataset: {name: ring8}\nbudget: {trials: 1, iterations: 5}\n"
                    "metrics: {objective: fid_points, n_real: 2500}\n"
                    "search: {lr_g: &lr {low: 1.0e-4, high: 1.0e-3}, lr_ratio: *lr}\n"
                    "gans:\n  - &ns {name: a, arch: toy_mlp, loss: non_saturating}\n"
                    "  - {<<: *ns, name: b}\n")  # a merge overrides a key: not a duplicate
    suite = load_suite(path)
    assert [g.name for g in suite.gans] == ["a", "b"]
    assert suite.search.lr_g == suite.search.lr_ratio == Range(low=1e-4, high=1e-3)


def test_missing_file(tmp_path):
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "x.yaml")
    assert info.value.problems == [f"{tmp_path / 'x.yaml'}: file not found"]


def test_yaml_tags_are_not_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(path)


def test_suite_is_frozen():
    suite = parse_suite(minimal())
    with pytest.raises(Exception):
        suite.name = "other"  # type: ignore[misc]
    assert isinstance(suite, Suite)


# --- gan-bench validate -------------------------------------------------------------------------

def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_validate_good_suite(tmp_path):
    path = write(tmp_path, "good.yaml", minimal())
    res = CliRunner().invoke(app, ["validate", str(path), "--set", "budget.trials=4"])
    assert res.exit_code == 0, res.output
    assert "suite tiny" in res.stdout and "toy_ns: toy_mlp / non_saturating / none" in res.stdout
    assert "4 trials per GAN" in res.stdout


def test_validate_json(tmp_path):
    path = write(tmp_path, "good.yaml", minimal())
    res = CliRunner().invoke(app, ["validate", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == parse_suite(minimal()).to_dict()


BAD_FILES = {
    "three.yaml": (put(put(put(minimal(), "gans.0.loss", "hinje"), "budget.trials", -3), "nme", 1),
                   ["gans[0].loss", "budget.trials", "nme"]),
    "fixed.yaml": (put(minimal(), "search", ALL_FIXED), ["search"]),
    "broken.yaml": ("name: [unclosed\n", ["broken.yaml"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_validate_bad_suite_exits_2_one_line_per_problem(tmp_path, name):
    data, paths = BAD_FILES[name]
    res = CliRunner().invoke(app, ["validate", str(write(tmp_path, name, data))])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == len(paths) and "Traceback" not in res.output
    for line, path in zip(lines, paths):
        assert line.startswith("error: ") and path in line, lines


def test_validate_console_script_exit_code(tmp_path):
    path = write(tmp_path, "bad.yaml", put(minimal(), "gans.0.arch", "toy_mlpp"))
    res = subprocess.run([sys.executable, "-m", "gan_bench.cli", "validate", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == ["error: gans[0].arch: unknown architecture "
                                               "'toy_mlpp' (known: dcgan, infogan, mlp, toy_mlp)"]
