"""The trainer's fast path (train/speed.py) on the CPU: same training as the plain path, deferred
divergence checks that still find the exact iteration, and the CUDA decisions as plain logic.

What needs a GPU (graph capture and replay, capturable Adam, TF32, bf16 on cuda) is not
exercised here; the decisions that select them are. Fused Adam runs on the CPU too (torch's
fused kernel): it agrees with the single-tensor update to float rounding.
"""

import math

import pytest
import torch
from test_trainer import tiny_images, tiny_points

from gan_bench.registry import load_builtins
from gan_bench.train import Callback, GanSpec, TrainConfig, Trainer, TrainingDiverged
from gan_bench.train.speed import DivergenceFlags, SpeedPlan, graph_blockers

load_builtins()


class LogAll(Callback):
    def __init__(self):
        self.logs, self.end = [], None

    def on_log(self, trainer, step, diagnostics):
        self.logs.append((step, diagnostics))

    def on_train_end(self, trainer, result):
        self.end = result.status


COMBOS = [  # arch, loss, penalty, arch options, data
    ("toy_mlp", "non_saturating", "none", {}, tiny_points),
    ("toy_mlp", "relativistic_average", "r1", {}, tiny_points),
    ("dcgan", "non_saturating", "gradient_penalty", {"conditional": True}, lambda: tiny_images(32)),
    ("infogan", "wasserstein", "weight_clip", {}, lambda: tiny_images(32)),
]


@pytest.mark.parametrize("arch,loss,penalty,options,data", COMBOS)
def test_fast_path_trains_exactly_like_the_plain_path_on_cpu(arch, loss, penalty, options, data):
    """Deferring the checks moves no arithmetic: every logged value and every weight is equal.
    (The fast path's fused Adam changes the last bits; tests/test_optim.py compares it with the
    single-tensor update. Here it is switched off to isolate the deferral.)"""
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    runs = {}
    for fast in (False, True):
        cfg = TrainConfig(iterations=6, k=2, batch_size=8, seed=5, log_every=1, device="cpu", fast=fast)
        rec = LogAll()
        tr = Trainer(spec, cfg, data(), [rec])
        assert tr.speed.fused_adam is fast
        tr.steps.update_options["fused"] = False
        tr.fit()
        runs[fast] = (tr, rec)
    (plain, rec_p), (fast, rec_f) = runs[False], runs[True]
    assert fast.speed.fast and not plain.speed.fast
    assert [s for s, _ in rec_f.logs] == [1, 2, 3, 4, 5, 6]
    assert rec_f.logs == rec_p.logs  # exact floats, step by step
    for a, b in zip([*plain.G.state_dict().values(), *plain.D.state_dict().values()],
                    [*fast.G.state_dict().values(), *fast.D.state_dict().values()]):
        assert torch.equal(a, b)
    assert fast.d_steps == plain.d_steps == 12


def _absurd(log_every, fast):
    cfg = TrainConfig(iterations=200, lr_g=1e12, lr_ratio=1.0, beta1=0.0, batch_size=16,
                      log_every=log_every, device="cpu", fast=fast)
    rec = LogAll()
    tr = Trainer(GanSpec("toy_mlp", "wasserstein", arch_options={"size": "tiny"}), cfg, tiny_points(), [rec])
    result = tr.fit()
    assert result.status == "diverged" and isinstance(result.error, TrainingDiverged)
    return tr, rec, result.error


def test_fast_path_reports_the_exact_iteration_at_the_next_log_step():
    _, _, plain = _absurd(1, False)
    tr, rec, exc = _absurd(10, True)
    assert (exc.step, exc.what) == (plain.step, plain.what)  # the iteration it happened at
    assert exc.detected_at == 10 * math.ceil(plain.step / 10)  # found at the next log step
    assert tr.step == exc.detected_at  # training ran on until that check, not beyond
    assert rec.end == "diverged"
    assert all(s < exc.step for s, _ in rec.logs)  # nothing diverged was logged
    assert exc.step < exc.detected_at  # lr 1e12 breaks the first G step: found 9 steps later
    assert f"found at the check after iteration {exc.detected_at}" in str(exc)


def test_fast_path_checks_before_an_evaluation_between_log_steps():
    cfg = TrainConfig(iterations=200, lr_g=1e12, beta1=0.0, batch_size=16, log_every=100,
                      eval_every=1, device="cpu", fast=True)

    class Eval(Callback):
        def __init__(self):
            self.evaluated = []

        def on_eval(self, trainer, step):
            self.evaluated.append(step)
            return {"objective": 0.0}

    ev = Eval()
    tr = Trainer(GanSpec("toy_mlp", "wasserstein", arch_options={"size": "tiny"}), cfg, tiny_points(), [ev])
    error = tr.fit().error
    assert error.detected_at == error.step  # eval every step: checked every step
    assert ev.evaluated == list(range(1, error.step))


def test_divergence_flags_keep_the_first_bad_value():
    flags = DivergenceFlags(("loss_d", "loss_g"), (), torch.device("cpu"))
    step = torch.zeros((), dtype=torch.int64)
    for value, name in [(1.0, "loss_d"), (2.0, "loss_g"), (float("inf"), "loss_g"), (float("nan"), "loss_d")]:
        step.add_(1)
        assert flags.update(name, torch.tensor(value), step, None) is None  # a solo step
    assert flags.check() == [(3, "loss_g")]
    flags.reset()
    assert flags.check() == [None]


def test_divergence_flags_per_trial_mask_the_bad_ones():
    flags = DivergenceFlags(("loss_d", "loss_g"), (3,), torch.device("cpu"))
    step = torch.ones((), dtype=torch.int64)
    active = torch.tensor([True, True, False])
    left = flags.update("loss_d", torch.tensor([1.0, float("nan"), float("nan")]), step, active)
    assert left.tolist() == [True, False, False]  # the third did not step: not judged
    step.add_(1)
    flags.update("loss_g", torch.tensor([float("inf"), 0.0, 0.0]), step, flags.alive())
    assert flags.check() == [(2, "loss_g"), (1, "loss_d"), None]


def test_speed_options_resolve_per_device_and_are_recorded():
    cfg = TrainConfig(iterations=1, device="cpu")
    assert cfg.resolved(10)["fast"] is False and cfg.resolved(10)["precision"] == "fp32"
    assert cfg.resolved(10)["cuda_graphs"] is False
    cuda = cfg.with_(device="cuda:0").resolved(10)
    assert (cuda["fast"], cuda["precision"], cuda["cuda_graphs"]) == (True, "tf32", False)  # opt-in
    assert cfg.with_(device="cuda", cuda_graphs=True).resolved(10)["cuda_graphs"] is True
    assert cfg.with_(precision="tf32").resolved(10)["precision"] == "fp32"  # a cuda-only mode
    assert cfg.with_(device="cuda", precision="bf16", fast=False).resolved_speed() == {
        "fast": False, "precision": "bf16", "cuda_graphs": False}
    tr = Trainer(GanSpec("toy_mlp", "hinge", arch_options={"size": "tiny"}), cfg, tiny_points())
    speed = tr.resolved_config()["speed"]
    assert speed["speed.cuda_graphs"] == "false" and "device is cpu" in speed["speed.cuda_graphs_off"]
    assert speed["speed.fused_adam"] == "false"
    assert tr.steps.update_options == {"fused": False, "capturable": False}


@pytest.mark.parametrize("penalty,options,graphs", [
    ("none", {}, True), ("weight_clip", {"conditional": True}, True),
    ("gradient_penalty", {}, False), ("r1", {}, False), ("none", {"spectral_norm": True}, False),
])
def test_cuda_plan_captures_only_combinations_without_double_backward(penalty, options, graphs):
    """The choice made on a cuda device, computed without one."""
    spec = GanSpec("dcgan", "hinge", penalty, arch_options=options)
    auto = SpeedPlan.make(spec, TrainConfig(iterations=1, device="cuda"), torch.device("cuda"))
    assert not auto.cuda_graphs and "verified on a GPU" in auto.graphs_off  # "auto": off for now
    cfg = TrainConfig(iterations=1, device="cuda", cuda_graphs=True)
    plan = SpeedPlan.make(spec, cfg, torch.device("cuda"))
    assert plan.fast and plan.precision == "tf32" and plan.fused_adam
    assert plan.cuda_graphs is graphs and bool(plan.graphs_off) is not graphs
    assert not SpeedPlan.make(spec, cfg, torch.device("cuda"), trials=4).fused_adam  # packs: masked
    assert not SpeedPlan.make(spec, cfg.with_(optimizer="rmsprop"), torch.device("cuda")).fused_adam
    off = SpeedPlan.make(spec, cfg.with_(cuda_graphs=False), torch.device("cuda"))
    assert not off.cuda_graphs and "cuda_graphs: false" in off.graphs_off
    assert graph_blockers(spec, cfg.with_(fast=False), torch.device("cuda"))[0] == "fast path off"


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    """bf16 changes the numerics (about 3 significant digits); first-step losses agree to ~5%."""
    spec = GanSpec("infogan", "non_saturating", arch_options={"size": "tiny"})
    first = {}
    for precision in ("fp32", "bf16"):
        rec = LogAll()
        cfg = TrainConfig(iterations=1, batch_size=16, seed=2, device="cpu", precision=precision)
        Trainer(spec, cfg, tiny_images(32), [rec]).fit()
        first[precision] = torch.tensor([rec.logs[0][1][k] for k in ("loss_d", "loss_g")])
    assert torch.isfinite(first["bf16"]).all()
    torch.testing.assert_close(first["bf16"], first["fp32"], rtol=5e-2, atol=5e-2)
    assert not torch.equal(first["bf16"], first["fp32"])  # autocast really ran


@pytest.mark.parametrize("field,value", [("fast", "yes"), ("cuda_graphs", 1), ("precision", "fp16")])
def test_bad_speed_options_are_errors(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(iterations=1, **{field: value})


def test_graph_bookkeeping_with_a_simulated_cuda_graph(monkeypatch):
    """No GPU here: torch.cuda's graph API is replaced by a stand-in whose capture runs the body
    once (as a capture followed by its first replay would) and whose later replays run it again
    and write into the captured outputs. This checks the trainer's side only: warm-up count, one
    capture, the generator registered, counters, and logs read from the graph's static outputs."""
    from contextlib import nullcontext
    from dataclasses import replace

    holder = {}

    class FakeGraph:
        def __init__(self):
            self.replays, self.generators = 0, []
            holder.setdefault("graphs", []).append(self)

        def register_generator_state(self, gen):
            self.generators.append(gen)

        def replay(self):
            self.replays += 1
            if self.replays > 1:  # the first replay is the capture's own iteration, already run
                (ig,) = holder["trainer"]._graphs.values()
                for name, value in ig.body().items():
                    ig.outputs[name].copy_(value)

    class FakeStream:
        def wait_stream(self, other):
            pass

    cuda = torch.cuda
    monkeypatch.setattr(cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(cuda, "graph", lambda graph, **kw: nullcontext())
    monkeypatch.setattr(cuda, "Stream", FakeStream)
    monkeypatch.setattr(cuda, "current_stream", lambda *a: FakeStream())
    monkeypatch.setattr(cuda, "stream", lambda s: nullcontext())
    monkeypatch.setattr(cuda, "device", lambda d: nullcontext())
    monkeypatch.setattr(cuda, "synchronize", lambda *a: None)

    spec = GanSpec("dcgan", "hinge", arch_options={"size": "tiny", "conditional": True})
    cfg = TrainConfig(iterations=7, k=2, batch_size=8, seed=1, log_every=1, device="cpu", fast=True)
    recs = {}
    for graphs in (False, True):
        recs[graphs] = LogAll()
        tr = Trainer(spec, cfg, tiny_images(32), [recs[graphs]])
        tr.speed = replace(tr.speed, cuda_graphs=graphs)
        holder["trainer"] = tr
        tr.fit()
        assert tr.d_steps == 14 and tr.step == 7
    graph = holder["graphs"][0]
    assert len(holder["graphs"]) == 1 and graph.generators == [tr.trials[0].gen]
    assert graph.replays == 7 - 3  # three eager warm-up iterations, then capture + replays
    assert recs[True].logs == recs[False].logs
