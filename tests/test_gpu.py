"""GPU tests (issue 15): the CUDA code paths no CPU test can run. Every test is marked `gpu` and
skipped without a CUDA device (CI has none); benchmark/scripts/gpu_run.sh runs them first on a GPU
machine (`python3 -m pytest -m gpu tests/test_gpu.py`). The CPU equivalents are in test_fast.py,
test_packed.py and test_eval_precision.py, whose helpers are reused here.

Tolerances, and why (float32 has a 24-bit mantissa, TF32 a 11-bit one: ~5e-4 per product):

- fast path vs plain path, both fp32: the same training; fused Adam and cuDNN's algorithm
  choice round differently, so the first iterations' logs agree to FP32_RTOL = 1e-4;
- fast path as it runs by default (TF32 matmuls and convolutions, fused Adam) vs the plain fp32
  path: the first 3 iterations' losses and D outputs to TF32_RTOL = 2e-2 (gradient norms 5e-2):
  a wrong loss, lr or random draw moves them by far more;
- CUDA-graph replay vs eager (fast path, fp32, every capturable combination): the same kernels;
  only capturable Adam (bias corrections on the device) differs: GRAPH_RTOL = 1e-4;
- packed vs solo on cuda: test_packed.py's float32 tolerances;
- bf16 autocast vs fp32: first-step losses to 5e-2, as on the CPU;
- evaluation: features on cuda equal CPU features to 1e-4 relative (norm of the difference over
  the norm), because evaluation runs strict fp32 (metrics/features.py `float32_math`) even with
  cuDNN's TF32 on, as torch leaves it by default.
"""

from __future__ import annotations

import pytest
import test_evaluate
import torch
from test_fast import COMBOS, LogAll
from test_packed import (
    CASES,
    FLOAT32_STATES_NOT_COMPARED,
    Rec,
    assert_logs_close,
    assert_states_close,
    states,
    three_trials,
)
from test_trainer import data_for, tiny_images

from gan_bench.registry import ARCHITECTURES, LOSSES, PENALTIES, load_builtins
from gan_bench.train import GanSpec, TrainConfig, Trainer
from gan_bench.train.speed import GRAPH_WARMUP, graph_blockers

load_builtins()
tiny_mnist = test_evaluate.tiny_mnist  # fixtures: MNIST replaced by random digits,
fresh_memo = test_evaluate.fresh_memo  # and no real features memoised across tests

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")]

FP32_RTOL, FP32_ATOL = 1e-4, 1e-6
TF32_RTOL, TF32_ATOL, TF32_GRAD_RTOL = 2e-2, 2e-3, 5e-2
GRAPH_RTOL, GRAPH_ATOL = 1e-4, 1e-6
BF16_TOL = 5e-2
FEATURE_REL = 1e-4


def _fit(spec, cfg, data):
    rec = LogAll()
    trainer = Trainer(spec, cfg, data, [rec])
    trainer.fit()
    return trainer, rec


def _assert_logs(a, b, rtol, atol, grad_rtol=None):
    assert [s for s, _ in a] == [s for s, _ in b]
    for (step, x), (_, y) in zip(a, b):
        assert set(x) == set(y)
        for key in x:
            tol = grad_rtol if grad_rtol and key.startswith("grad_norm") else rtol
            torch.testing.assert_close(torch.tensor(y[key], dtype=torch.float64),
                                       torch.tensor(x[key], dtype=torch.float64), rtol=tol,
                                       atol=atol, msg=lambda m: f"step {step} {key}: {m}")


def _assert_params(a, b, rtol, atol):
    for (name, x), y in zip([*a.G.state_dict().items(), *a.D.state_dict().items()],
                            [*b.G.state_dict().values(), *b.D.state_dict().values()]):
        if x.is_floating_point():
            torch.testing.assert_close(y, x, rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


# --- the fast path -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,loss,penalty,options,data", COMBOS)
def test_fast_path_matches_the_plain_path_on_cuda(arch, loss, penalty, options, data):
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    base = dict(iterations=3, k=2, batch_size=8, seed=5, log_every=1, device="cuda")
    plain, rec_plain = _fit(spec, TrainConfig(**base, fast=False, precision="fp32"), data())
    fast32, rec_fast32 = _fit(spec, TrainConfig(**base, fast=True, precision="fp32"), data())
    tf32, rec_tf32 = _fit(spec, TrainConfig(**base), data())  # the defaults on cuda
    assert not plain.speed.fast and fast32.speed.fast and fast32.speed.fused_adam
    assert (tf32.speed.fast, tf32.speed.precision, tf32.speed.fused_adam) == (True, "tf32", True)
    _assert_logs(rec_plain.logs, rec_fast32.logs, FP32_RTOL, FP32_ATOL)
    _assert_params(plain, fast32, FP32_RTOL, FP32_ATOL)
    _assert_logs(rec_plain.logs, rec_tf32.logs, TF32_RTOL, TF32_ATOL, TF32_GRAD_RTOL)
    assert tf32.d_steps == plain.d_steps == 6


def _capturable():
    combos = [(arch, loss, penalty, {}) for arch in ARCHITECTURES.names() for loss in LOSSES.names()
              for penalty in PENALTIES.names() if not PENALTIES.get(penalty).double_backward]
    return combos + [("dcgan", "hinge", "none", {"conditional": True}),
                     ("mlp", "non_saturating", "weight_clip", {"minibatch_std": True, "pack": 2})]


@pytest.mark.parametrize("arch,loss,penalty,options", _capturable())
def test_cuda_graph_replay_equals_eager(arch, loss, penalty, options):
    """Every combination train/speed.py captures: warm-up, one capture, replays; same training."""
    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    cfg = TrainConfig(iterations=GRAPH_WARMUP + 3, k=2, batch_size=8, seed=3, log_every=1,
                      device="cuda", fast=True, precision="fp32", cuda_graphs=True)
    assert graph_blockers(spec, cfg, torch.device("cuda")) == []
    eager, rec_eager = _fit(spec, cfg.with_(cuda_graphs=False), data_for(arch))
    graph, rec_graph = _fit(spec, cfg, data_for(arch))
    assert graph.speed.cuda_graphs and not eager.speed.cuda_graphs
    assert len(graph._graphs) == 1 and next(iter(graph._graphs.values())).graph is not None
    assert graph.d_steps == eager.d_steps == 2 * cfg.iterations and graph.step == cfg.iterations
    _assert_logs(rec_eager.logs, rec_graph.logs, GRAPH_RTOL, GRAPH_ATOL)
    _assert_params(eager, graph, GRAPH_RTOL, GRAPH_ATOL)
    samples = graph.generate(4, seed=1)  # eager generation after replays still works
    assert samples.shape[0] == 4


def test_bf16_autocast_on_cuda_stays_close_to_fp32():
    spec = GanSpec("infogan", "non_saturating", arch_options={"size": "tiny"})
    first = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(iterations=1, batch_size=16, seed=2, device="cuda", precision=precision)
        trainer, rec = _fit(spec, cfg, tiny_images(32))
        assert trainer.speed.precision == precision
        first[precision] = torch.tensor([rec.logs[0][1][k] for k in ("loss_d", "loss_g")])
    assert torch.isfinite(first["bf16"]).all()
    torch.testing.assert_close(first["bf16"], first["fp32"], rtol=BF16_TOL, atol=BF16_TOL)
    assert not torch.equal(first["bf16"], first["fp32"])  # autocast really ran


# --- packed trials -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,loss,penalty,options,data,iterations,skip", CASES)
def test_packed_trials_train_as_they_would_alone_on_cuda(arch, loss, penalty, options, data,
                                                         iterations, skip):
    from gan_bench.train import PackedTrainer

    spec = GanSpec(arch, loss, penalty, arch_options={"size": "tiny", **options})
    cfgs = three_trials(iterations=iterations, batch_size=8, log_every=1, eval_every=2,
                        device="cuda", precision="fp32")
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, data(), [[r] for r in recs])
    assert pack.device.type == "cuda" and pack.speed.precision == "fp32"
    results = pack.fit()
    for i, cfg in enumerate(cfgs):
        solo_rec = Rec()
        solo = Trainer(spec, cfg, data(), [solo_rec])
        init = states({k: v.clone() for k, v in solo.G.state_dict().items()},
                      {k: v.clone() for k, v in solo.D.state_dict().items()})
        solo_result = solo.fit()
        assert (results[i].status, results[i].iterations, results[i].d_steps) == (
            solo_result.status, solo_result.iterations, solo_result.d_steps)
        assert_logs_close(solo_rec.logs, recs[i].logs)
        if (arch, i) not in FLOAT32_STATES_NOT_COMPARED:
            assert_states_close(init, states(solo.G.state_dict(), solo.D.state_dict()),
                                states(pack.trials[i].state("G"), pack.trials[i].state("D")), skip)


def test_auto_pack_size_picks_a_pack_that_fits_in_free_memory():
    """With all but FREE_GIB of the GPU taken, `auto_pack_size` sizes a pack of full-size infogan
    trials from the memory left; that pack then trains without running out of memory."""
    from gan_bench.train import PackedTrainer
    from gan_bench.train.packed import MAX_AUTO_PACK
    from gan_bench.train.trainer import auto_pack_size

    free_gib = 4
    spec = GanSpec("infogan", "non_saturating")  # full size, as the Lucic suites pack it
    cfg = TrainConfig(iterations=3, batch_size=64, log_every=1, device="cuda")
    data = tiny_images(512)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    blocker = torch.empty(max(0, free - free_gib * 2 ** 30), dtype=torch.uint8, device="cuda")
    try:
        left, _ = torch.cuda.mem_get_info()
        p = auto_pack_size(spec, cfg, data)
        assert 1 <= p <= MAX_AUTO_PACK
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        cfgs = [cfg.with_(seed=i, lr_g=1e-4 * (1 + i)) for i in range(p)]
        results = PackedTrainer(spec, cfgs, data).fit()
        assert [r.status for r in results] == ["completed"] * p
        peak = torch.cuda.max_memory_allocated() - before
        assert peak <= left, f"pack of {p} peaked at {peak / 2**30:.2f} GiB of {left / 2**30:.2f}"
        print(f"auto pack size {p} with {left / 2**30:.2f} GiB free; peak {peak / 2**30:.2f} GiB")
    finally:
        del blocker
        torch.cuda.empty_cache()


# --- evaluation ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def test_digits():
    from gan_bench.data import load_dataset
    from gan_bench.errors import DataUnavailableError

    try:
        return load_dataset("mnist", "test").data[:256]
    except DataUnavailableError as exc:
        pytest.skip(f"real MNIST unavailable here: {str(exc)[:200]}")


@pytest.fixture
def cudnn_tf32_on():
    """torch's default: cuDNN may use TF32 for float32 convolutions."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32 = saved


def _relative(a, b):
    return float((a - b).norm() / b.norm())


def _cuda_vs_cpu(name, images, batch_size):
    from gan_bench.metrics.features import extract, get_extractor

    cpu = extract(get_extractor(name, "cpu"), images, batch_size=batch_size)
    ext = get_extractor(name, "cuda")
    cuda = extract(ext, images, batch_size=batch_size)
    assert ext.protocol()["precision"] == "fp32-strict"
    assert torch.backends.cudnn.allow_tf32  # the caller's flags are left as they were
    tf32_ext = get_extractor(name, "cuda", precision="tf32")
    tf32 = extract(tf32_ext, images, batch_size=batch_size)
    assert tf32_ext.protocol()["precision"] == "tf32"
    print(f"{name}: cuda vs cpu {_relative(cuda, cpu):.2e} (strict fp32), "
          f"{_relative(tf32, cpu):.2e} (tf32)")
    return cuda, cpu


def test_mnist_classifier_features_on_cuda_equal_cpu_features(test_digits, cudnn_tf32_on):
    cuda, cpu = _cuda_vs_cpu("mnist_classifier", test_digits, 64)
    assert _relative(cuda, cpu) <= FEATURE_REL


def test_inception_features_on_cuda_equal_cpu_features(test_digits, cudnn_tf32_on):
    from gan_bench.assets import INCEPTION_TF, fetch_asset
    from gan_bench.errors import GanBenchError

    try:
        fetch_asset(INCEPTION_TF)
    except (GanBenchError, OSError) as exc:
        pytest.skip(f"Inception weights unavailable here: {str(exc)[:200]}")
    cuda, cpu = _cuda_vs_cpu("inception_tf", test_digits[:32], 16)
    assert _relative(cuda, cpu) <= FEATURE_REL


def test_real_features_on_cuda_are_cached_apart_from_cpu_ones(tiny_mnist, cudnn_tf32_on):
    from gan_bench.metrics.evaluator import Evaluator

    entries = {d: Evaluator("mnist", metrics=["fid@random_tiny"], n_real=60, device=d)
               .real_features("random_tiny") for d in ("cpu", "cuda")}
    assert [entries[d].key["device_type"] for d in ("cpu", "cuda")] == ["cpu", "cuda"]
    assert entries["cuda"].digest != entries["cpu"].digest
    assert entries["cuda"].key["precision"] == "fp32-strict"
    cpu, cuda = (torch.from_numpy(entries[d].features) for d in ("cpu", "cuda"))
    assert _relative(cuda, cpu) <= FEATURE_REL
