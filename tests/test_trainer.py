"""The one trainer: contract tests over the registries, k / lr ratio, divergence, resume."""

import itertools

import pytest
import torch

from gan_bench.data.base import ArrayDataset
from gan_bench.data.mixtures import RING8
from gan_bench.registry import ARCHITECTURES, LOSSES, PENALTIES, PRESETS, load_builtins
from gan_bench.train import Callback, GanSpec, TrainConfig, Trainer, TrainingDiverged

load_builtins()


def tiny_images(n=64, shape=(1, 28, 28), seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    return ArrayDataset("noise", "train", data, torch.randint(0, 10, (n,), generator=g), "test")


def tiny_points(n=512):
    return RING8.load("train", n=n, seed=0)


def data_for(arch):
    supports = ARCHITECTURES.get(arch).supports
    return tiny_points() if "points" in supports and "images28" not in supports else tiny_images()


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


COMBOS = list(itertools.product(ARCHITECTURES.names(), LOSSES.names(), PENALTIES.names()))


@pytest.mark.parametrize("arch,loss,penalty", COMBOS)
def test_contract_one_d_and_one_g_step(arch, loss, penalty):
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny"})
    cfg = TrainConfig(iterations=1, batch_size=8, seed=0, device="cpu")
    tr = Trainer(spec, cfg, data_for(arch))
    g0, d0 = _params(tr.G), _params(tr.D)
    d_logs = tr.d_step(want_log=True)
    assert all(torch.isfinite(v) for v in d_logs.values()), d_logs
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters())), "D step changed nothing"
    assert all(torch.equal(a, b) for a, b in zip(g0, tr.G.parameters())), "D step changed G"
    d1 = _params(tr.D)
    g_logs = tr.g_step(want_log=True)
    assert torch.isfinite(g_logs["loss_g"]) and torch.isfinite(g_logs["grad_norm_g"])
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters())), "G step changed nothing"
    assert all(torch.equal(a, b) for a, b in zip(d1, tr.D.parameters())), "G step changed D's weights"
    out = tr.generate(5, seed=1)
    if tr.data.is_image:
        assert out.dtype == torch.uint8 and out.shape == (5, *tr.data.sample_shape)
    else:
        assert out.dtype == torch.float32 and out.shape == (5, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("preset", PRESETS.names())
def test_every_preset_trains_two_iterations(preset):
    p = PRESETS.get(preset)
    spec = GanSpec(p.spec.arch, p.spec.loss, p.spec.penalty, {**p.spec.arch_options, "size": "tiny"},
                   p.spec.loss_params, p.spec.penalty_params)
    cfg = TrainConfig(**{**p.train, "batch_size": 8, "iterations": 2, "device": "cpu"})
    res = Trainer(spec, cfg, tiny_images()).fit()
    assert res.status == "completed" and res.iterations == 2 and res.d_steps == 2 * cfg.k


class Recorder(Callback):
    def __init__(self):
        self.logs, self.evals, self.events = [], [], []

    def on_train_start(self, trainer):
        self.events.append("start")

    def on_log(self, trainer, step, diagnostics):
        self.logs.append((step, diagnostics))

    def on_eval(self, trainer, step):
        self.evals.append(step)
        return {"objective": float(step)}

    def on_train_end(self, trainer, result):
        self.events.append(("end", result.status))


@pytest.mark.parametrize("k,ratio", [(1, 1.0), (3, 0.25), (5, 4.0)])
def test_k_and_lr_ratio_are_honoured(k, ratio):
    cfg = TrainConfig(iterations=6, k=k, lr_g=1e-3, lr_ratio=ratio, batch_size=16, log_every=2,
                      eval_every=3, device="cpu")
    rec = Recorder()
    tr = Trainer(GanSpec("toy_mlp", "non_saturating", arch_options={"size": "tiny"}), cfg, tiny_points(), [rec])
    res = tr.fit()
    assert (res.iterations, res.d_steps) == (6, 6 * k)
    # Adam counts its own steps: G stepped once per iteration, D k times
    g_steps = {int(s) for s in tr.opt["G"]["step"].values()}
    d_steps = {int(s) for s in tr.opt["D"]["step"].values()}
    assert g_steps == {6} and d_steps == {6 * k}
    assert tr.hyper["G"]["lr"] == pytest.approx(1e-3, rel=1e-12)
    assert tr.hyper["D"]["lr"] == pytest.approx(1e-3 * ratio, rel=1e-12)
    assert rec.logs[-1][1]["lr_d"] == pytest.approx(1e-3 * ratio, rel=1e-12)
    assert [s for s, _ in rec.logs] == [2, 4, 6] and rec.evals == [3, 6]
    assert rec.events == ["start", ("end", "completed")]
    diag = rec.logs[-1][1]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "lr_g", "lr_d"):
        assert key in diag
    assert 0.0 <= diag["d_real"] <= 1.0 and 0.0 <= diag["d_fake"] <= 1.0  # probabilities for NS
    assert res.final_metrics == {"objective": 6.0}


def test_epochs_budget_counts_d_passes():
    cfg = TrainConfig(epochs=2, k=2, batch_size=32, device="cpu")
    assert cfg.total_iterations(512) == 16  # 2 * 512 / (32 * 2)


def test_callback_can_stop_training():
    class Pruner(Callback):
        def on_eval(self, trainer, step):
            if step >= 4:
                trainer.request_stop("pruned at 4")
            return {"objective": 1.0}

    cfg = TrainConfig(iterations=100, eval_every=2, batch_size=8, device="cpu")
    res = Trainer(GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"}), cfg, tiny_points(), [Pruner()]).fit()
    assert (res.status, res.iterations, res.stop_reason) == ("stopped", 4, "pruned at 4")


def test_absurd_learning_rate_is_a_diverged_result():
    """Divergence is one status, solo or packed: a result with the TrainingDiverged in `error`."""
    rec = Recorder()
    cfg = TrainConfig(iterations=200, lr_g=1e12, lr_ratio=1.0, beta1=0.0, batch_size=16, log_every=1,
                      device="cpu")
    tr = Trainer(GanSpec("toy_mlp", "wasserstein", arch_options={"size": "tiny"}), cfg, tiny_points(), [rec])
    res = tr.fit()
    assert res.status == "diverged" and isinstance(res.error, TrainingDiverged)
    assert 1 <= res.error.step <= 200 and res.error.what and res.iterations == res.error.step
    assert "not finite" in str(res.error)
    assert rec.events == ["start", ("end", "diverged")]


def test_resume_matches_uninterrupted_run_exactly(tmp_path):
    spec = GanSpec("dcgan", "non_saturating", "gradient_penalty", arch_options={"size": "tiny"})
    cfg = TrainConfig(iterations=8, eval_every=4, batch_size=8, k=2, seed=3, device="cpu")
    data = tiny_images(32)
    full = Trainer(spec, cfg, data)
    full.fit()
    first = Trainer(spec, cfg, data)
    first.checkpoint_dir = tmp_path
    first.total_iterations = 4  # "killed" right after the checkpoint at iteration 4
    first.fit()
    resumed = Trainer(spec, cfg, data)
    resumed.load_checkpoint(tmp_path / "last.pt")
    assert resumed.step == 4
    resumed.fit()
    for a, b in itertools.chain(zip(full.G.state_dict().values(), resumed.G.state_dict().values()),
                                zip(full.D.state_dict().values(), resumed.D.state_dict().values())):
        assert torch.equal(a, b)
    assert torch.equal(full.generate(4, seed=0), resumed.generate(4, seed=0))


def test_checkpoint_refuses_other_config(tmp_path):
    spec = GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"})
    tr = Trainer(spec, TrainConfig(iterations=2, batch_size=8, device="cpu"), tiny_points())
    tr.save_checkpoint(tmp_path / "c.pt")
    other = Trainer(spec, TrainConfig(iterations=2, batch_size=8, k=2, device="cpu"), tiny_points())
    with pytest.raises(ValueError, match="different configuration"):
        other.load_checkpoint(tmp_path / "c.pt")


def test_training_is_deterministic_on_cpu():
    spec = GanSpec("toy_mlp", "least_squares", arch_options={"size": "tiny"})
    cfg = TrainConfig(iterations=5, batch_size=16, seed=7, device="cpu")
    a, b = Trainer(spec, cfg, tiny_points()), Trainer(spec, cfg, tiny_points())
    a.fit(), b.fit()
    assert all(torch.equal(x, y) for x, y in zip(a.G.parameters(), b.G.parameters()))


@pytest.mark.slow
def test_toy_mlp_learns_the_ring():
    """A real, loose check of learning: after a short CPU run most samples sit near some mode,
    for at least one of two seeds. One seed alone is a coin toss across CPUs: seed 0 learned on
    a 2-core AMD EPYC and not at all on a 2-core Intel Xeon (0% near a mode, radius 1.33; seed 1
    there: 75%, radius 0.97), float32 rounding differing between the two. A broken trainer
    fails both."""
    data = RING8.load("train", n=20_000, seed=0)
    centres = RING8.centres()

    def near_share(points, radius):
        return float((torch.cdist(points, centres).min(dim=1).values < radius).float().mean())

    learned = []
    for seed in (0, 1):
        cfg = TrainConfig(iterations=1500, lr_g=1e-3, lr_ratio=1.0, beta1=0.5, batch_size=256,
                          seed=seed, log_every=500, device="cpu")
        tr = Trainer(GanSpec("toy_mlp", "non_saturating"), cfg, data)
        before = tr.generate(2000, seed=1)
        tr.fit()
        after = tr.generate(2000, seed=1)
        # within 10 sigma = 0.1 of some mode (the modes are 0.77 apart)
        assert near_share(before, 0.1) < 0.2
        learned.append(near_share(after, 0.1) > 0.5 and 0.8 < float(after.norm(dim=1).median()) < 1.2)
    assert any(learned)
