"""PacGAN's 2-D nets (toy_mlp nets=pacgan, models/maxout.py) and the reverse-KL column, on known
answers: maxout values, parameter counts, init statistics, packed input shapes, a short training
run, packed trials equal to solo runs, and KL(p_modes || uniform) as PacGAN computes it.
"""

from __future__ import annotations

import math

import pytest
import test_packed
import torch
from test_packed import Rec, _as_float64, three_trials
from test_trainer import tiny_points
from torch import nn
from torch.nn.utils import parametrize

from gan_bench.data.mixtures import RING8, ring_centres
from gan_bench.errors import UnknownNameError
from gan_bench.metrics.mode_coverage import kl_to_uniform, mixture_modes
from gan_bench.models import build_models
from gan_bench.models.base import ModelConfigError
from gan_bench.models.maxout import Maxout, MaxoutDiscriminator
from gan_bench.models.options import pack_input
from gan_bench.registry import ARCHITECTURES, load_builtins
from gan_bench.train import GanSpec, PackedTrainer, TrainConfig, Trainer
from gan_bench.train.packed import pack_problems

load_builtins()

N = 8
float64 = test_packed.float64  # the fixture: parameters, z and data in float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pacgan(size="full", **options):
    return build_models("toy_mlp", (2,), nets="pacgan", size=size, **options)


# ---------------------------------------------------------------- the maxout layer

def test_maxout_is_the_max_over_contiguous_pieces_of_hand_set_affine_maps():
    layer = Maxout(2, 2, pieces=3)
    with torch.no_grad():  # unit 0: rows 0..2, unit 1: rows 3..5 (Blocks' Maxout layout)
        layer.linear.weight.copy_(torch.tensor([[1., 0], [0, 1], [-1, -1],
                                                [2, 0], [0, -1], [1, 1]]))
        layer.linear.bias.copy_(torch.tensor([0., 0, 0.5, -1, 0, 0]))
    x = torch.tensor([[1., 2], [-1, 0.5]])
    # row 0: affine (1, 2, -2.5 | 1, -2, 3) -> (2, 3); row 1: (-1, 0.5, 1 | -3, -0.5, -0.5) -> (1, -0.5)
    torch.testing.assert_close(layer(x), torch.tensor([[2., 3], [1, -0.5]]), rtol=0, atol=0)


def test_maxout_equals_max_of_separate_linears_and_routes_the_gradient_to_the_winner():
    torch.manual_seed(0)
    layer = Maxout(6, 4, pieces=5)
    x = torch.randn(10, 6)
    affine = x @ layer.linear.weight.T + layer.linear.bias  # (10, 20)
    expected = torch.stack([affine[:, j * 5:(j + 1) * 5].max(1).values for j in range(4)], dim=1)
    torch.testing.assert_close(layer(x), expected)
    layer(x[:1]).sum().backward()
    winners = affine[0].view(4, 5).argmax(1) + torch.arange(4) * 5
    grad_rows = layer.linear.bias.grad.nonzero().flatten()
    assert grad_rows.tolist() == winners.tolist()  # one piece per unit gets the gradient
    with pytest.raises(ValueError, match="at least one piece"):
        Maxout(2, 2, pieces=0)


# ---------------------------------------------------------------- the paper's nets

def test_pacgan_parameter_counts_match_the_hand_count():
    g, _ = pacgan()
    # G: Linear 2->400 (no bias) + 3 x Linear 400->400 (no bias) + Linear 400->2 (+ bias)
    #    + 4 BatchNorms (scale + shift, 400 each) = 800 + 480,000 + 802 + 3,200
    assert sum(p.numel() for p in g.parameters()) == 484_802
    for pack, first in ((1, 2 * 1000 + 1000), (2, 4 * 1000 + 1000), (4, 8 * 1000 + 1000)):
        _, d = pacgan(pack=pack)
        # D: maxout 2*pack -> 200x5 (W + b), 2 x maxout 200 -> 200x5 (201,000 each), Linear 200->1
        assert sum(p.numel() for p in d.parameters()) == first + 2 * 201_000 + 201
    assert sum(p.numel() for p in pacgan()[1].parameters()) == 405_201


def test_pacgan_layer_layout():
    g, d = pacgan()
    linears = [m for m in g.net if isinstance(m, nn.Linear)]
    norms = [m for m in g.net if isinstance(m, nn.BatchNorm1d)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 400)] + [(400, 400)] * 3 + [(400, 2)]
    assert [m.bias is None for m in linears] == [True] * 4 + [False]
    assert len(norms) == 4 and all(m.eps == 1e-4 and m.momentum == 0.05 for m in norms)
    kinds = [type(m).__name__ for m in g.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 4 + ["Linear"]  # BN before ReLU
    assert isinstance(d, MaxoutDiscriminator)
    maxouts = list(d.body)
    assert [(m.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (2, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert (d.head.in_features, d.head.out_features) == (200, 1)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout, nn.LeakyReLU)) for m in d.modules())
    assert g.nz == 2 and g.latent == "normal" and not g.squash


def test_pacgan_init_is_normal_002_with_zero_biases():
    torch.manual_seed(0)
    g, d = pacgan(pack=4)
    weights = [m.weight for net in (g, d) for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(weights) == 5 + 4
    for w in weights:
        n = w.numel()  # two-sided, 5 standard errors of the sample std and mean
        assert w.std().item() == pytest.approx(0.02, rel=5 / math.sqrt(2 * n))
        assert w.mean().item() == pytest.approx(0.0, abs=5 * 0.02 / math.sqrt(n))
    biases = [m.bias for net in (g, d) for m in net.modules()
              if isinstance(m, (nn.Linear, nn.BatchNorm1d)) and m.bias is not None]
    assert len(biases) == 1 + 4 + 4  # G out, G's 4 BN shifts, D's 3 maxouts + head
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases)
    scales = [m.weight for m in g.modules() if isinstance(m, nn.BatchNorm1d)]
    assert all(torch.equal(s, torch.ones_like(s)) for s in scales)  # Blocks: scale 1, not N(1, .02)


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_pacgan_d_takes_packs_of_concatenated_points(pack):
    torch.manual_seed(0)
    _, d = pacgan(pack=pack)
    x = torch.randn(N, 2)
    assert d.body[0].in_features == 2 * pack
    packed = x.reshape(N // pack, 2 * pack)  # pack j = points j*pack .. j*pack + pack - 1
    torch.testing.assert_close(pack_input(x, pack), packed)
    logits = d(x)
    assert logits.shape == (N // pack,)
    torch.testing.assert_close(logits, d.head(d.body(packed)).squeeze(1))
    if pack > 1:
        with pytest.raises(ValueError, match=f"not divisible by pack={pack}"):
            d(x[:N - 1])


@pytest.mark.parametrize("options", [{}, {"spectral_norm": True}, {"minibatch_std": True},
                                     {"pack": 2}, {"conditional": True}, {"batch_norm_g": False},
                                     {"spectral_norm": True, "minibatch_std": True, "pack": 2},
                                     {"minibatch_disc": True, "pack": 2}],
                         ids=["plain", "sn", "mbstd", "pack2", "conditional", "no_bn_g", "sn+mbstd+pack2",
                              "mbdisc+pack2"])
def test_pacgan_options_build_run_and_train_one_step(options):
    torch.manual_seed(0)
    g, d = pacgan("tiny", **options)
    pack = options.get("pack", 1)
    z = g.sample_z(N)
    y = g.sample_y(N) if g.conditional else None
    x = g(z, y)
    assert x.shape == (N, 2) and torch.isfinite(x).all()
    assert d(x).shape == (N // pack,)
    if options.get("conditional"):
        assert d.forward_aux(x)[1].shape == (N, 10)
    if options.get("spectral_norm"):
        assert all(parametrize.is_parametrized(m, "weight") for m in d.modules()
                   if isinstance(m, nn.Linear))
    assert any(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == (options.get("batch_norm_g") is not False)
    opt = torch.optim.SGD([*g.parameters(), *d.parameters()], lr=0.1)
    named = lambda: [*((f"g.{k}", p) for k, p in g.named_parameters()),  # noqa: E731
                     *((f"d.{k}", p) for k, p in d.named_parameters())]
    before = {k: p.detach().clone() for k, p in named()}
    loss = nn.functional.softplus(-d(torch.randn(N, 2))).mean() + nn.functional.softplus(d(x)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = {k for k, p in named() if not torch.equal(before[k], p)}
    used = {f"d.{k}" for k, p in d.named_parameters() if p.dim() >= 2 and "aux_head" not in k}
    if options.get("batch_norm_g") is not False:  # without BatchNorm, four 0.02-scale layers
        used |= {f"g.{k}" for k, p in g.named_parameters() if p.dim() >= 2}  # give G ~1e-8 grads
    assert used <= moved


def test_nets_option_is_checked_per_family_and_listed():
    with pytest.raises(ModelConfigError, match=r"architecture 'toy_mlp' has no nets 'pacgn' "
                                               r"\(known: default, pacgan\)"):
        build_models("toy_mlp", (2,), nets="pacgn")
    for arch, shape in (("mlp", (2,)), ("dcgan", (1, 28, 28)), ("infogan", (1, 28, 28))):
        with pytest.raises(ModelConfigError, match=rf"'{arch}' has no nets 'pacgan' \(known: default\)"):
            build_models(arch, shape, nets="pacgan", size="tiny")
    with pytest.raises(ValueError, match="nets must be a name"):
        build_models("toy_mlp", (2,), nets=3)
    with pytest.raises(ModelConfigError, match="no BatchNorm in D"):
        pacgan("tiny", batch_norm_d=True)
    nets = {e["name"]: e["nets"] for e in ARCHITECTURES.catalogue()}
    assert nets["toy_mlp"] == ["default", "pacgan"] and nets["mlp"] == ["default"]
    assert "nets: pacgan" in ARCHITECTURES.entry("toy_mlp").summary
    assert ARCHITECTURES.get("toy_mlp").options(nets="pacgan").nets == "pacgan"
    with pytest.raises(UnknownNameError):
        build_models("toy_mlp_pacgan", (2,))
    g, d = build_models("toy_mlp", (2,), size="tiny")  # the default nets are unchanged
    assert type(d).__name__ == "MLPDiscriminator" and not any(
        isinstance(m, nn.BatchNorm1d) for m in g.modules())


# ---------------------------------------------------------------- training with them

def test_a_short_run_at_the_published_setting_moves_samples_onto_the_ring():
    """100 iterations of the full nets at lr 1e-4, beta1 0.8, batch 100 (about 3 s on one thread)."""
    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"nets": "pacgan"})
    cfg = TrainConfig(iterations=100, batch_size=100, lr_g=1e-4, beta1=0.8, log_every=50,
                      device="cpu", seed=0)
    rec = Rec()
    tr = Trainer(spec, cfg, RING8.load("train", n=10_000, seed=0), [rec])
    radius_error = lambda x: (x.norm(dim=1) - 1).abs().mean().item()  # noqa: E731
    before = radius_error(tr.generate(2500, seed=1))
    assert tr.fit().status == "completed"
    after = radius_error(tr.generate(2500, seed=1))
    assert before > 0.9  # eval-mode G at init: outputs near 0, the ring's radius is 1
    assert after < 0.3
    assert all(math.isfinite(v) for _, logs in rec.logs for v in logs.values())


def test_pacgan_nets_are_packable():
    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"nets": "pacgan", "size": "tiny", "pack": 2})
    assert pack_problems(spec, three_trials(iterations=2, batch_size=8)) == []


@pytest.mark.usefixtures("float64")
def test_packed_pacgan_trials_equal_solo_runs_in_float64():
    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"nets": "pacgan", "size": "tiny", "pack": 2})
    cfgs = three_trials(iterations=4, batch_size=8, log_every=1, device="cpu")
    recs = [Rec() for _ in cfgs]
    pack = PackedTrainer(spec, cfgs, _as_float64(tiny_points()), [[r] for r in recs])
    pack.fit()
    for i, cfg in enumerate(cfgs):
        solo = Trainer(spec, cfg, _as_float64(tiny_points()), [solo_rec := Rec()])
        solo.fit()
        assert next(solo.G.parameters()).dtype == torch.float64
        for (_, a), (_, b) in zip(solo_rec.logs, recs[i].logs, strict=True):
            torch.testing.assert_close(torch.tensor([b[k] for k in a]), torch.tensor([a[k] for k in a]),
                                       rtol=1e-9, atol=1e-8)
        solo_state = {**solo.G.state_dict(), **{f"D.{k}": v for k, v in solo.D.state_dict().items()}}
        packed_state = {**pack.trials[i].state("G"), **{f"D.{k}": v for k, v in pack.trials[i].state("D").items()}}
        assert solo_state.keys() == packed_state.keys()
        for name, value in solo_state.items():  # BatchNorm running stats included
            torch.testing.assert_close(packed_state[name], value, rtol=1e-9, atol=1e-8,
                                       msg=lambda m: f"trial {i} {name}: {m}")


# ---------------------------------------------------------------- reverse KL (PacGAN Table 1)

def test_reverse_kl_of_samples_on_half_the_ring_modes_is_log_2():
    """PacGAN's code (extensions.py MetricLogger): the mode histogram counts only high-quality
    samples (standardised distance to the nearest mean < 3), and the KL to uniform of that
    histogram is in nats (scipy.stats.entropy); 2,500 samples, 625 on each of 4 of the 8 modes."""
    centres = ring_centres().float()
    offsets = 0.01 * torch.tensor([[0.5, 0.0], [0.0, -1.0], [-2.0, 0.0], [1.0, 1.0]])  # < 3 sigma
    points = (centres[[0, 2, 4, 6]].repeat_interleave(625, 0) + offsets.repeat(625, 1))
    out = mixture_modes(points, centres, 0.01)
    assert out["counts"] == [625, 0, 625, 0, 625, 0, 625, 0] and out["high_quality_share"] == 1.0
    assert kl_to_uniform(out["counts"]) == pytest.approx(math.log(2), rel=1e-12)
    # a far sample (nearest mode 1, at 5 sigma) is not high quality: it changes neither the
    # histogram nor the KL, only the high-quality share
    far = torch.cat([points, centres[1:2] + torch.tensor([[0.05, 0.0]])])
    out = mixture_modes(far, centres, 0.01)
    assert out["counts"][1] == 0 and out["nearest_counts"][1] == 1
    assert out["high_quality_share"] == pytest.approx(2500 / 2501, rel=1e-12)
    assert kl_to_uniform(out["counts"]) == pytest.approx(math.log(2), rel=1e-12)
    # uneven: shares (1/2, 1/4, 1/4) on 3 of 8 modes -> sum p log(8 p) = 0.5 log 4 + 0.5 log 2
    assert kl_to_uniform([2, 1, 1, 0, 0, 0, 0, 0]) == pytest.approx(1.5 * math.log(2), rel=1e-12)


def test_the_modes_metric_records_pacgans_reverse_kl_on_a_mixture():
    """Four of ring8's eight modes, 625 high-quality samples each: reverse KL = ln 2; a far
    sample changes the high-quality share, not the KL; no high-quality sample: log 8."""
    import math

    import numpy as np

    from gan_bench.metrics.evaluator import Evaluator

    ev = Evaluator("ring8", metrics=["modes"], n_real=None)
    angles = 2 * np.pi * np.arange(8) / 8
    centres = np.stack([np.cos(angles), np.sin(angles)], 1)
    pts = np.repeat(centres[[0, 2, 4, 6]], 625, axis=0).astype(np.float32)
    recs = ev.evaluate(pts, ["modes"])
    assert recs["kl_to_uniform"].value == pytest.approx(math.log(2), abs=1e-12)
    assert recs["modes_captured"].value == 4 and recs["kl_to_uniform"].extra["n_high_quality"] == 2500
    assert ev.higher_is_better("kl_to_uniform") is False
    far = np.full((2500, 2), 5.0, dtype=np.float32)
    assert ev.evaluate(far, ["modes"])["kl_to_uniform"].value == pytest.approx(math.log(8))
