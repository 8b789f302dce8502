"""Packed trials (train/trainer.py with a list of configs): each trial of a pack trains as it
would alone, and every GAN of suites/mnist.yaml (and AC-GAN) packs (issue 24).

Two tests, because float32 GAN training amplifies rounding:

- float64 (`test_every_mnist_gan_packs_and_equals_solo_in_float64`): the same pack and solo runs
  with float64 parameters and data agree to 1e-9 relative in every logged value at every step and
  every parameter and buffer after 20 iterations, for GAN, NS GAN, DCGAN, LSGAN, WGAN (weight
  clipping, RMSprop), WGAN-GP and DRAGAN (double backward under vmap), SNGAN (spectral norm's
  vectors per trial), AC-GAN (labels, class head) and PacGAN, three trials with k 1, 3, 2. This
  is the exactness check: a wrong lr, beta, k, mask or random draw moves them by 1e-3 and more.
- float32 (the default dtype): batched (vmap) kernels sum in another order than the Trainer's,
  so packed and solo agree to rounding, amplified by Adam, whose steps are lr * g / sqrt(v):
  parameters whose exact gradient is ~0 (biases in front of BatchNorm) take lr-sized steps of
  random sign, and with beta1 = 0 nothing averages them out. Logged losses and D outputs agree
  to rtol 1e-3 (observed 1.3e-4), gradient norms to 1e-2 (observed 1.8e-3, infogan, beta1 = 0,
  k = 3); parameters to 1e-3 of the distance training moved them (observed 1e-7..2e-4), except
  infogan's trial with beta1 = 0 and k = 3 (observed 0.12 after 3 iterations; exact in float64),
  for which the float32 check is on the logs only, and so is minibatch discrimination's (its
  batch means of exp(-L1) differ between samples by ~1e-3, so G's first layer gets gradients that
  rounding dominates and Adam turns into lr-sized steps: 7% of the displacement observed on
  toy_mlp after 4 iterations; exact in float64, below).
"""

import pytest
import torch
from test_trainer import Recorder, tiny_images, tiny_points

from gan_bench.registry import PRESETS, load_builtins
from gan_bench.train import GanSpec, PackedTrainer, TrainConfig, Trainer
from gan_bench.train.packed import pack_problems

load_builtins()

LOG_RTOL, LOG_ATOL = 1e-3, 1e-6
GRAD_NORM_RTOL = 1e-2
FLOAT64_RTOL, FLOAT64_ATOL = 1e-9, 1e-8  # atol: biases in front of BatchNorm (exact gradient 0) drift by 3.5e-10
DISPLACEMENT_TOL = 1e-3


class Rec(Recorder):
    @property
    def end(self):
        ends = [e[1] for e in self.events if isinstance(e, tuple) and e[0] == "end"]
        return ends[-1] if ends else None


def three_trials(**base):
    """Three trials that differ in every per-trial hyperparameter (k = 1, 3, 2)."""
    return [TrainConfig(**base, lr_g=1e-3, lr_ratio=2.0, k=1, beta1=0.5, seed=1),
            TrainConfig(**base, lr_g=3e-4, lr_ratio=0.5, k=3, beta1=0.0, seed=2),
            TrainConfig(**base, lr_g=2e-4, lr_d=2e-4, k=2, beta1=0.9, beta2=0.99, seed=3)]


def states(g_state, d_state):
    return {**{f"G.{k}": v for k, v in g_state.items()}, **{f"D.{k}": v for k, v in d_state.items()}}


def assert_logs_close(solo, packed):
    assert [s for s, _ in solo] == [s for s, _ in packed]
    for (_, a), (_, b) in zip(solo, packed):
        assert set(a) == set(b)
        for key in a:
            rtol = GRAD_NORM_RTOL if key.startswith("grad_norm") else LOG_RTOL
            torch.testing.assert_close(torch.tensor(b[key], dtype=torch.float64),
                                       torch.tensor(a[key], dtype=torch.float64),
                                       rtol=rtol, atol=LOG_ATOL, msg=lambda m: f"{key}: {m}")


def assert_states_close(init, solo, packed, skip=()):
    for name, value in solo.items():
        if not value.is_floating_point() or any(s in name for s in skip):
            assert torch.equal(value, packed[name]) or any(s in name for s in skip), name
            continue
        moved = (value - init[name]).norm()
        assert float((packed[name] - value).norm()) <= DISPLACEMENT_TOL * float(moved) + 1e-12, name


CASES = [  # arch, loss, penalty, options, data, iterations, names not compared
    ("toy_mlp", "non_saturating", "none", {}, tiny_points, 6, ()),
    ("toy_mlp", "relativistic_average", "weight_clip", {}, tiny_points, 4, ()),
    ("mlp", "hinge", "none", {"minibatch_std": True, "pack": 2}, lambda: tiny_images(64), 6, ()),
    ("toy_mlp", "non_saturating", "none", {"minibatch_disc": True}, tiny_points, 4, ()),
    ("dcgan", "least_squares", "none", {}, lambda: tiny_images(64), 3, ()),
    ("infogan", "non_saturating", "none", {}, lambda: tiny_images(64), 3, (".bias", "running_mean")),
]
FLOAT32_STATES_NOT_COMPARED = {("infogan", 1)}  # beta1 = 0, k = 3: see the module docstring


@pytest.mark.parametrize("arch,loss,penalty,options,data,iterations,skip", CASES)
def test_each_packed_trial_trains_as_it_would_alone(arch, loss, penalty, options, data, iterations, skip):
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    cfgs = three_trials(iterations=iterations, batch_size=8, log_every=1, eval_every=2, device="cpu")
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, data(), [[r] for r in recs])
    results = pack.fit()
    for i, cfg in enumerate(cfgs):
        solo_rec = Rec()
        solo = Trainer(spec, cfg, data(), [solo_rec])
        init = states({k: v.clone() for k, v in solo.G.state_dict().items()},
                      {k: v.clone() for k, v in solo.D.state_dict().items()})
        solo_result = solo.fit()
        assert (results[i].status, results[i].iterations, results[i].d_steps) == (
            solo_result.status, solo_result.iterations, solo_result.d_steps)
        assert recs[i].evals == solo_rec.evals and results[i].final_metrics == solo_result.final_metrics
        assert_logs_close(solo_rec.logs, recs[i].logs)
        if (arch, i) not in FLOAT32_STATES_NOT_COMPARED and not options.get("minibatch_disc"):
            assert_states_close(init, states(solo.G.state_dict(), solo.D.state_dict()),
                                states(pack.trials[i].state("G"), pack.trials[i].state("D")), skip)
        # evaluation samples come from the trial's own G in eval mode, like Trainer.generate
        torch.testing.assert_close(pack.trials[i].generate(6, seed=4).float(),
                                   solo.generate(6, seed=4).float(), rtol=0, atol=1.0)


@pytest.fixture
def float64(monkeypatch):
    """Parameters, z and image batches in float64 (the trainers convert images with .float())."""
    monkeypatch.setattr(torch.Tensor, "float", torch.Tensor.double)
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


def _as_float64(data):
    """Point datasets hold float32 arrays (images are uint8, converted by .float())."""
    if data.data.is_floating_point():
        return type(data)(data.name, data.split, data.data.double(), data.labels, data.source)
    return data


MNIST_GANS = ["gan", "ns_gan", "dcgan", "lsgan", "wgan", "wgan_gp", "dragan", "sngan", "acgan",
              "pacgan"]  # suites/mnist.yaml's eight, AC-GAN and PacGAN


def _tiny(preset: str) -> tuple[GanSpec, dict]:
    """The preset at tiny size, and its paper's optimizer (RMSprop for WGAN)."""
    p = PRESETS.get(preset)
    spec = GanSpec(p.spec.arch, p.spec.loss, p.spec.penalty, {**p.spec.arch_options, "size": "tiny"},
                   p.spec.loss_params, p.spec.penalty_params)
    return spec, {k: v for k, v in p.train.items() if k == "optimizer"}


@pytest.mark.parametrize("preset", MNIST_GANS)
def test_every_mnist_gan_packs_and_equals_solo_in_float64(float64, preset):
    spec, train = _tiny(preset)
    cfgs = three_trials(iterations=20, batch_size=8, log_every=1, eval_every=5, device="cpu", **train)
    assert pack_problems(spec, cfgs) == []
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, tiny_images(32), [[r] for r in recs])
    results = pack.fit()
    for i, cfg in enumerate(cfgs):
        solo_rec = Rec()
        solo = Trainer(spec, cfg, tiny_images(32), [solo_rec])
        result = solo.fit()
        assert (result.status, result.iterations, result.d_steps) == (
            results[i].status, results[i].iterations, results[i].d_steps) == ("completed", 20, 20 * cfg.k)
        assert next(solo.G.parameters()).dtype == torch.float64
        assert [s for s, _ in solo_rec.logs] == [s for s, _ in recs[i].logs] == list(range(1, 21))
        for (_, a), (_, b) in zip(solo_rec.logs, recs[i].logs):
            assert set(a) == set(b)
            torch.testing.assert_close(torch.tensor([b[k] for k in a]), torch.tensor([a[k] for k in a]),
                                       rtol=FLOAT64_RTOL, atol=FLOAT64_ATOL)
        solo_state = states(solo.G.state_dict(), solo.D.state_dict())
        packed_state = states(pack.trials[i].state("G"), pack.trials[i].state("D"))
        assert set(solo_state) == set(packed_state)
        for name, value in solo_state.items():
            torch.testing.assert_close(packed_state[name], value, rtol=FLOAT64_RTOL, atol=FLOAT64_ATOL,
                                       msg=lambda m: f"trial {i} {name}: {m}")


@pytest.mark.parametrize("arch,loss,penalty,options,data,iterations,skip", CASES)
def test_packed_equals_solo_in_float64(float64, arch, loss, penalty, options, data, iterations, skip):
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    cfgs = three_trials(iterations=iterations, batch_size=8, log_every=1, eval_every=2, device="cpu")
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, _as_float64(data()), [[r] for r in recs])
    results = pack.fit()
    for i, cfg in enumerate(cfgs):
        solo_rec = Rec()
        solo = Trainer(spec, cfg, _as_float64(data()), [solo_rec])
        assert solo.fit().d_steps == results[i].d_steps
        assert [s for s, _ in solo_rec.logs] == [s for s, _ in recs[i].logs]
        for (_, a), (_, b) in zip(solo_rec.logs, recs[i].logs):
            torch.testing.assert_close(torch.tensor([b[k] for k in a]), torch.tensor([a[k] for k in a]),
                                       rtol=FLOAT64_RTOL, atol=FLOAT64_ATOL)
        solo_state = states(solo.G.state_dict(), solo.D.state_dict())
        packed_state = states(pack.trials[i].state("G"), pack.trials[i].state("D"))
        for name, value in solo_state.items():
            torch.testing.assert_close(packed_state[name], value, rtol=FLOAT64_RTOL, atol=FLOAT64_ATOL,
                                       msg=lambda m: f"trial {i} {name}: {m}")


def test_a_diverging_trial_is_frozen_and_the_others_are_unaffected():
    spec = GanSpec("toy_mlp", "wasserstein", arch_options={"size": "tiny"})
    base = dict(iterations=12, batch_size=16, log_every=4, device="cpu", beta1=0.0, fast=True)
    cfgs = [TrainConfig(**base, lr_g=1e-3, seed=0), TrainConfig(**base, lr_g=1e12, k=2, seed=1),
            TrainConfig(**base, lr_g=5e-4, k=3, seed=2)]
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, tiny_points(), [[r] for r in recs])
    results = pack.fit()
    solo_error = Trainer(spec, cfgs[1], tiny_points()).fit().error  # one status, solo or packed
    bad = results[1].error
    assert results[1].status == "diverged" and recs[1].end == "diverged" and bad is pack.trials[1].error
    assert (bad.step, bad.what) == (solo_error.step, solo_error.what)
    assert bad.detected_at == 4  # fast: the first log step after it (plain: that very step)
    assert recs[1].logs == [] and results[1].final_metrics == {}
    assert all(torch.isfinite(v).all() for v in pack.trials[1].state("D").values())  # frozen before
    for i in (0, 2):
        solo_rec = Rec()
        solo = Trainer(spec, cfgs[i], tiny_points(), [solo_rec])
        assert solo.fit().status == results[i].status == "completed"
        assert_logs_close(solo_rec.logs, recs[i].logs)
        for a, b in zip(solo.D.state_dict().values(), pack.trials[i].state("D").values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_a_pruned_trial_stops_alone():
    class PruneAt4(Rec):
        def on_eval(self, trainer, step):
            if step == 4:
                trainer.request_stop("pruned at 4")
            return super().on_eval(trainer, step)

    cfgs = three_trials(iterations=8, batch_size=8, eval_every=2, device="cpu")
    recs = [Rec(), PruneAt4(), Rec()]
    results = PackedTrainer(GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"}), cfgs,
                            tiny_points(), [[r] for r in recs]).fit()
    assert [r.status for r in results] == ["completed", "stopped", "completed"]
    assert (results[1].iterations, results[1].stop_reason) == (4, "pruned at 4")
    assert recs[1].evals == [2, 4] and recs[0].evals == recs[2].evals == [2, 4, 6, 8]


def test_epoch_budgets_give_each_k_its_own_length():
    cfgs = three_trials(epochs=1.0, batch_size=64, device="cpu")
    results = PackedTrainer(GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"}), cfgs,
                            tiny_points()).fit()
    assert [r.iterations for r in results] == [8, 3, 4]  # ceil(512 / (64 k))
    assert [r.d_steps for r in results] == [8, 9, 8]


@pytest.mark.parametrize("preset", sorted(PRESETS.names()))
def test_every_preset_packs(preset):
    spec, train = _tiny(preset)
    assert pack_problems(spec, three_trials(iterations=1, device="cpu", **train)) == []


@pytest.mark.parametrize("change,match", [({"batch_size": 32}, "differ in batch_size"),
                                          ({"optimizer": "rmsprop"}, "differ in optimizer"),
                                          ({"log_every": 7}, "differ in log_every")])
def test_trials_that_differ_in_a_shared_setting_are_refused_with_the_reason(change, match):
    spec = GanSpec("dcgan", "hinge", arch_options={"size": "tiny"})
    cfgs = [TrainConfig(iterations=1, device="cpu"), TrainConfig(iterations=1, device="cpu", **change)]
    assert any(match in p for p in pack_problems(spec, cfgs))
    with pytest.raises(ValueError, match=match):
        PackedTrainer(spec, cfgs, tiny_images())


def test_a_pack_resumes_from_its_checkpoint_exactly(tmp_path):
    """Checkpoints hold every trial (its nets, optimizer state, generator, step, history): a pack
    stopped at iteration 3 and resumed equals one run for 6, trial by trial."""
    spec = GanSpec("dcgan", "wasserstein", "gradient_penalty", arch_options={"size": "tiny"})
    cfgs = three_trials(iterations=6, batch_size=8, log_every=3, eval_every=3, device="cpu")
    full = PackedTrainer(spec, cfgs, tiny_images(32))
    full.fit()
    first = PackedTrainer(spec, cfgs, tiny_images(32))
    first.total_iterations = 3
    first.fit()
    first.save_checkpoint(tmp_path / "pack.pt")
    resumed = PackedTrainer(spec, cfgs, tiny_images(32))
    resumed.load_checkpoint(tmp_path / "pack.pt")
    assert [t.step for t in resumed.trials] == [3, 3, 3]
    results = resumed.fit()
    assert [r.iterations for r in results] == [6, 6, 6]
    for i in range(3):
        for net in ("G", "D"):
            for name, value in full.trials[i].state(net).items():
                assert torch.equal(resumed.trials[i].state(net)[name], value), (i, net, name)


# --- the suite field and the runner ------------------------------------------------------------

def _suite(*overrides):
    from gan_bench.config import parse_suite

    data = {"name": "packs", "dataset": {"name": "ring8"}, "device": "cpu",
            "gans": [{"name": "toy_ns", "arch": "toy_mlp", "loss": "non_saturating",
                      "arch_options": {"size": "tiny"}}],
            "search": {"lr_g": {"low": 1e-4, "high": 1e-2, "log": True}, "k": {"low": 1, "high": 2}},
            "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"},
            "budget": {"trials": 3, "iterations": 10, "eval_every": 5},
            "metrics": {"objective": "fid_points", "n_fake_search": 200, "n_real": 500},
            "finalists": {"top": 0}}
    return parse_suite(data, overrides=overrides)


@pytest.mark.parametrize("value,expected", [("4", 4), ("auto", "auto")])
def test_budget_packed_trials_defaults_to_one(value, expected):
    assert _suite().budget.packed_trials == 1
    assert _suite(f"budget.packed_trials={value}").budget.packed_trials == expected


@pytest.mark.parametrize("value,shown", [("0", "0"), ("many", "'many'"), ("2.5", "2.5"), ("true", "True")])
def test_budget_packed_trials_rejects_what_is_not_a_count(value, shown):
    from gan_bench.config import SuiteError

    with pytest.raises(SuiteError) as info:
        _suite(f"budget.packed_trials={value}")
    assert info.value.problems == [f"budget.packed_trials: must be an integer >= 1 or 'auto' (got {shown})"]


def test_pack_size_fits_memory_and_auto_is_one_on_cpu():
    from gan_bench.train.packed import pack_size_for
    from gan_bench.train.trainer import auto_pack_size

    gib = 2 ** 30
    assert pack_size_for(80 * gib, 2 * gib, gib) == 32  # capped
    assert pack_size_for(20 * gib, 2 * gib, gib) == 8  # 2 + 8 * 1 <= 0.5 * 20
    assert pack_size_for(2 * gib, 2 * gib, gib) == 1  # never below one
    spec = GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"})
    assert auto_pack_size(spec, TrainConfig(iterations=1, device="cpu"), tiny_points()) == 1


def _search_runs(outcome, suite):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(outcome.tracking_uri)
    exp = client.get_experiment_by_name(suite.name)
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("stage") == "search"]
    return {int(r.data.tags["trial"]): r for r in runs}


def _run_json(out, run):
    import json

    from conftest import run_artifact_dir

    return json.loads((run_artifact_dir(out, run) / "run.json").read_text())


def test_the_runner_trains_a_pack_of_optuna_trials_as_it_would_one_by_one(tmp_path):
    """Same trials (random sampler, seed 0), same seeds, same records; the objectives (FID on 200
    points after 10 iterations) agree to float rounding."""
    import optuna

    from gan_bench.run import Runner

    got = {}
    for packed in (1, 3):
        suite = _suite(f"budget.packed_trials={packed}", f"output_dir={tmp_path / str(packed)}")
        outcome = Runner(suite).run()
        study = optuna.load_study(study_name=outcome.gans[0].study, storage=outcome.storage_url)
        got[packed] = (study.get_trials(), _search_runs(outcome, suite))
    (solo_trials, solo_runs), (trials, runs) = got[1], got[3]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert all(t.user_attrs["packed_trials"] == 3 for t in trials)
    contexts = {n: _run_json(tmp_path / "3", r)["context"] for n, r in runs.items()}
    assert {c["packed_with"] for c in contexts.values()} == {"0,1,2"}
    for solo, packed in zip(solo_trials, trials):
        assert solo.params == packed.params and solo.number == packed.number
        assert packed.value == pytest.approx(solo.value, rel=1e-3)
        run, solo_run = runs[packed.number], solo_runs[solo.number]
        assert run.info.status == solo_run.info.status == "FINISHED"
        assert run.data.metrics["eval/fid_points"] == pytest.approx(packed.value, rel=1e-12)
        # system/ metrics are sampled every few seconds: short runs may have none
        model = lambda r: {k for k in r.data.metrics if not k.startswith("system/")}  # noqa: E731
        assert model(run) == model(solo_run)
        assert set(run.data.params) == set(solo_run.data.params)
        assert set(run.data.tags) == set(solo_run.data.tags)
        assert contexts[packed.number]["speed"]["speed.packed_trials"] == "3"


def test_list_presets_says_every_preset_packs(monkeypatch, capsys):
    import json

    from conftest import cli_main

    code, out, _ = cli_main(monkeypatch, capsys, "list", "presets", "--json")
    assert code in (0, None)
    presets = {p["name"]: p for p in json.loads(out)["presets"]}
    assert {n: p["packable"] for n, p in presets.items()} == {n: True for n in PRESETS.names()}


@pytest.mark.parametrize("overrides,line", [
    (["budget.packed_trials=4"], "packing on cpu (budget.packed_trials 4): toy_ns: packs of up to 3"),
    ([], "packing on cpu (budget.packed_trials 1): toy_ns: one at a time"),
    (["budget.packed_trials=auto"], "toy_ns: one at a time (auto packs on cuda only)"),
    (["budget.packed_trials=4", "search.batch_size={choices: [32, 64]}"],
     "toy_ns: one at a time (batch_size is searched: trials differ in it)"),
])
def test_validate_says_how_each_gan_packs(monkeypatch, capsys, overrides, line):
    from conftest import cli_main

    sets = [a for o in ["gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating}]", *overrides]
            for a in ("--set", o)]
    code, out, err = cli_main(monkeypatch, capsys, "validate", "suites/smoke.yaml", "--no-estimate", *sets)
    assert code in (0, None), err
    assert line in out
