"""gan_bench.analysis.theory: Goodfellow et al. 2014's Proposition 1 and Theorem 1, and the
vanishing minimax gradient (NIPS 2016 tutorial, figure 16), on known answers.

Known answers: V = -log 4 at logits 0 and in closed form otherwise; per sample, the minimax and
non-saturating G gradients differ by exactly D / (1 - D) through the logit; a "G" that drops
every other mode of ring8 (sigma 0.01, modes 0.77 apart, so disjoint) has D* = 1/3 on the modes
it keeps (1/8 data vs 1/4 G mass) and 1 on the ones it drops, V(D*, G) = log(1/3) / 2 +
log(2/3) = -0.9548, and D* > 0.9 on a quarter of m = (p_data + p_g) / 2.

Tolerances, both sides, measured margins in brackets (seeds 0-3 unless said):
- D trained alone (toy_mlp tiny, 400 steps) vs exact D*: weighted mean |D - D*| < 0.02
  [0.0065-0.0081]; |V(D alone) - V(D*)| < 0.01 [0.0026-0.0043]; V(D*) on 4,000 Monte Carlo
  points within 0.04 of -0.9548 [<= 0.028; the Monte Carlo sd is 0.012]; mass with D* > 0.9
  within 0.02 of 1/4 [<= 0.013; sd 0.006].
- KDE of 10,000 ring8 samples: bandwidth in [sigma/8, sigma] [0.22-0.48 sigma]; mean
  |p_kde / p - 1| at fresh samples < 0.25 [0.116-0.163]; D* with the KDE's p_g vs exact D* in
  the half-modes case: weighted mean |difference| < 0.04 [0.0137-0.0160]. KDE of 5,000 samples
  of one Gaussian N(0, diag(0.5^2, 0.1^2)): factor 1 (Scott's rule itself) [1.0, seeds 0-3],
  mean |p_kde / p - 1| < 0.15 [0.060-0.078].
- Per sample, |minimax| / |non-saturating| = D / (1 - D) to rtol 1e-5 [8.4e-7; D from 0.018 to
  1.0]: float32 gradients, both scaled copies of one backward.
- Gradient sweep, toy_mlp tiny G at init, D alone at lr 1e-2: at step 0 (D(G(z)) in [0.43,
  0.56]) |non-saturating| / |minimax| = (1 - D) / D within 5% [<= 0.1%]; after 64 steps
  D(G(z)) < 1e-3 [2.6e-4-4.3e-4] and the ratio > 100 [1,723-3,517], within 50% of (1 - D) / D
  [0.74-0.93 of it]. dcgan tiny on synthetic images, 16 steps at lr 1e-3: D(G(z)) < 0.05
  [0.011-0.015], ratio within 25% of (1 - D) / D [0.89-0.96 of it].
"""

from __future__ import annotations

import math

import pytest
import torch

from gan_bench.analysis import theory as T
from gan_bench.data.base import ArrayDataset
from gan_bench.data.mixtures import RING8, ring_centres
from gan_bench.models.base import build_models
from gan_bench.registry import load_builtins

load_builtins()

SIGMA = 0.01
CENTRES = ring_centres().float()
HALF = CENTRES[::2]  # a "G" that dropped every other mode
TINY_POINTS = {"gan": {"arch": "toy_mlp", "arch_options": {"size": "tiny"}}}
TINY_IMAGES = {"gan": {"arch": "dcgan", "arch_options": {"size": "tiny"}}}
V_HALF = 0.5 * math.log(1 / 3) + math.log(2 / 3)  # V(D*, G) of the half-modes G


def log_p_data(x):
    return T.mixture_log_density(x, CENTRES, SIGMA)


def log_p_half(x):
    return T.mixture_log_density(x, HALF, SIGMA)


def synthetic_images(n=256, seed=0):
    """Sparse binary 'digits' in [-1, 1] (N, 1, 28, 28): a real set that a D tells from G."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.8).float() * 2 - 1


# ----------------------------------------------------------------------------- value of the game

def test_value_of_game_at_one_half_is_minus_log_4():
    out = T.value_of_game(torch.zeros(7), torch.zeros(5, 1))
    assert out["value"].item() == pytest.approx(-math.log(4), abs=1e-6)
    assert out["d_real"].item() == pytest.approx(0.5, abs=1e-7)
    assert out["d_fake"].item() == pytest.approx(0.5, abs=1e-7)


def test_value_of_game_closed_form_and_extreme_logits():
    r, f = torch.tensor([0.0, math.log(3.0)]), torch.tensor([-math.log(3.0), 2.0, 100.0])
    log_one_minus_d = [math.log(3 / 4), -math.log1p(math.e**2), -100.0 - math.log1p(math.exp(-100.0))]
    want = (math.log(1 / 2) + math.log(3 / 4)) / 2 + sum(log_one_minus_d) / 3
    out = T.value_of_game(r, f)
    assert out["value"].item() == pytest.approx(want, rel=1e-5)  # log(1 - D) = -100 stays finite
    assert out["d_real"].item() == pytest.approx((0.5 + 0.75) / 2, abs=1e-6)
    assert out["d_fake"].item() == pytest.approx((0.25 + 1 / (1 + math.exp(-2.0)) + 1.0) / 3, abs=1e-6)


# ----------------------------------------------------------------------------- gradients

def test_per_sample_gradient_ratio_is_d_over_one_minus_d():
    torch.manual_seed(0)
    G, D = build_models("toy_mlp", (2,), size="tiny")
    z = G.sample_z(24, generator=torch.Generator().manual_seed(1))
    last = [m for m in G.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # spread the logits, centred: D from confident-fake to fooled
        last.weight.mul_(30.0)
        D.head.weight.mul_(100.0)
        D.head.bias.sub_(D(G(z)).mean())
    d, minimax, non_saturating = T.per_sample_gradient_norms(G, D, z)
    assert d.min() < 0.1 and d.max() > 0.9  # the identity is checked across the range
    torch.testing.assert_close(minimax / non_saturating, d / (1 - d), rtol=1e-5, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_minimax_gradient_vanishes_when_d_rejects_g(seed):
    torch.manual_seed(seed)
    G, _ = build_models("toy_mlp", (2,), size="tiny")
    D = T.fresh_discriminator(TINY_POINTS, (2,), seed)
    points = T.gradient_sweep(G, D, T.mixture_sampler(CENTRES, SIGMA), start="init", seed=seed,
                              steps=64, lr=1e-2)
    assert [p.step for p in points] == [0, 1, 2, 4, 8, 16, 32, 64]
    first, last = points[0], points[-1]
    assert first.d_fake == pytest.approx(0.5, abs=0.07)
    ratio = first.non_saturating / first.minimax
    assert ratio == pytest.approx((1 - first.d_fake) / first.d_fake, rel=0.05)  # similar near 1/2
    assert last.d_fake == pytest.approx(5e-4, abs=5e-4)  # confidently rejected
    ratio = last.non_saturating / last.minimax
    assert ratio == pytest.approx((1 - last.d_fake) / last.d_fake, rel=0.5)
    assert ratio > 100


def test_gradient_sweep_on_images():
    torch.manual_seed(0)
    G, _ = build_models("dcgan", (1, 28, 28), size="tiny")  # BatchNorm in G and D: train mode
    D = T.fresh_discriminator(TINY_IMAGES, (1, 28, 28), 0)
    images = synthetic_images()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    points = T.gradient_sweep(G, D, lambda n, g: images[torch.randint(len(images), (n,), generator=g)],
                              start="init", steps=16)
    last = points[-1]
    assert last.d_fake == pytest.approx(0.025, abs=0.025)
    assert last.non_saturating / last.minimax == pytest.approx((1 - last.d_fake) / last.d_fake, rel=0.25)
    for k, v in G.state_dict().items():  # G is frozen; its BatchNorm statistics may move only
        if "running" not in k and "num_batches" not in k:
            torch.testing.assert_close(v, before[k], rtol=0, atol=0)


# ----------------------------------------------------------------------------- D*

@pytest.mark.parametrize("seed", [0, 2])
def test_d_alone_reaches_known_d_star(seed):
    D = T.fresh_discriminator(TINY_POINTS, (2,), seed)
    r = T.dstar_check(D, T.mixture_sampler(CENTRES, SIGMA), log_p_data, T.mixture_sampler(HALF, SIGMA),
                      log_p_half, extent=(-1.5, 1.5, -1.5, 1.5), seed=seed, steps=400, grid=10)
    assert r.error == pytest.approx(0.0, abs=0.02)
    assert r.error == pytest.approx((r.error_on["data"] + r.error_on["g"]) / 2, rel=1e-12)
    assert r.value_alone == pytest.approx(r.value_star, abs=0.01)
    assert r.value_star == pytest.approx(V_HALF, abs=0.04)
    assert r.mass["d_star_above_0.9"] == pytest.approx(0.25, abs=0.02)
    assert r.mass["d_star_below_0.1"] == pytest.approx(0.0, abs=1e-12)
    assert r.jsd_lower_bound == pytest.approx((r.value_alone + math.log(4)) / 2, rel=1e-12)
    assert r.maps["d_star"].shape == (10, 10) and r.error_end is None


def test_kde_recovers_a_known_mixture_and_its_d_star():
    gen = torch.Generator().manual_seed(0)
    sample, sample_half = T.mixture_sampler(CENTRES, SIGMA), T.mixture_sampler(HALF, SIGMA)
    kde, protocol = T.fit_kde(sample(10_000, gen), sample(1_000, gen))
    assert protocol["bandwidth"][0] == pytest.approx(SIGMA * 9 / 16, abs=SIGMA * 7 / 16)  # [s/8, s]
    assert not protocol["at_edge"]
    x = sample(4_000, gen)
    relative = (kde.log_density(x) - log_p_data(x)).exp().sub(1).abs().mean().item()
    assert relative == pytest.approx(0.0, abs=0.25)
    half_kde, _ = T.fit_kde(sample_half(10_000, gen), sample_half(1_000, gen))
    x = torch.cat([sample(2_000, gen), sample_half(2_000, gen)])  # m = (p_data + p_g) / 2
    exact = torch.sigmoid(log_p_data(x) - log_p_half(x))
    estimated = torch.sigmoid(log_p_data(x) - half_kde.log_density(x))
    assert (estimated - exact).abs().mean().item() == pytest.approx(0.0, abs=0.04)


def test_kde_of_one_gaussian_matches_closed_form():
    gen = torch.Generator().manual_seed(3)
    sd = torch.tensor([0.5, 0.1])
    kde, protocol = T.fit_kde(torch.randn(5_000, 2, generator=gen) * sd, torch.randn(500, 2, generator=gen) * sd)
    assert protocol["factor"] == pytest.approx(1.0, abs=0.3)  # Scott's rule is made for this case
    x = torch.randn(1_000, 2, generator=gen) * sd
    exact = -0.5 * (x / sd).square().sum(1) - sd.log().sum() - math.log(2 * math.pi)
    assert (kde.log_density(x) - exact.double()).exp().sub(1).abs().mean().item() == pytest.approx(0.0, abs=0.15)


# ----------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A tiny toy_mlp GAN trained 300 iterations on ring8, saved with its D (~2 s)."""
    from gan_bench.train import GanSpec, TrainConfig, Trainer

    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"size": "tiny"})
    cfg = TrainConfig(iterations=300, lr_g=1e-3, batch_size=64, device="cpu", log_every=300)
    trainer = Trainer(spec, cfg, RING8.load("train", n=4_000, seed=0))
    trainer.fit()
    path = tmp_path_factory.mktemp("theory") / "run_G.pt"
    torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict(),
                "config": trainer.resolved_config()}, path)
    return path


def test_theory_checks_end_to_end(trained_checkpoint):
    report = T.theory_checks(trained_checkpoint, seed=0, d_steps=100, grad_steps=16, n_kde=5_000)
    r = report.dstar
    assert r is not None and report.skipped == {}
    assert r.error_end is not None and 0.0 <= r.error_end <= 1.0  # the run's own D, also compared
    assert sum(r.mass.values()) == pytest.approx(1.0, abs=1e-12)
    assert r.value_star >= -math.log(4) - 0.05  # -log 4 + 2 JSD, up to Monte Carlo error
    assert set(r.maps) == {"p_data", "p_g", "d_star", "d_alone", "d_end"}
    assert report.value_end is not None and 0.0 <= report.value_end["d_fake"] <= 1.0
    assert [p.start for p in report.gradients] == ["trained"] * 6 + ["init"] * 6 + ["end"]
    assert report.protocol["dstar"]["kde"]["n"] == 5_000
    assert set(report.seconds) == {"data", "dstar", "value_end", "gradients"}
    lines = T.markdown_lines(report, {"dstar": "dstar.png", "gradients": "gradients.png"})
    text = "\n".join(lines)
    assert "![D* check](dstar.png)" in text and "![G's gradient vs D(G(z))](gradients.png)" in text
    assert "-log 4 = -1.386" in text and "Scott's rule" in text
    for png in (T.dstar_png(r), T.gradients_png({"ring8": report.gradients})):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert T.dstar_png(r) == T.dstar_png(r)  # no timestamps: same input, same bytes


def test_old_checkpoint_without_d(trained_checkpoint, tmp_path):
    ckpt = torch.load(trained_checkpoint, weights_only=True)
    del ckpt["D"]
    torch.save(ckpt, tmp_path / "old_G.pt")
    G, D, config = T.load_checkpoint(tmp_path / "old_G.pt")
    assert D is None and config["gan"]["arch"] == "toy_mlp"
    report = T.theory_checks((G, D, {**config, "gan": {**config["gan"], "loss": "wasserstein"}}),
                             grad_steps=2)
    assert report.dstar is None and report.value_end is None
    assert set(report.skipped) == {"dstar", "value_end"}
    assert [p.step for p in report.gradients] == [0, 1, 2, 0, 1, 2]


def test_theory_checks_on_images_skip_d_star():
    torch.manual_seed(0)
    G, D = build_models("dcgan", (1, 28, 28), size="tiny")
    images = ((synthetic_images(64) + 1) * 127.5).to(torch.uint8)
    data = ArrayDataset("mnist", "train", images, torch.zeros(64, dtype=torch.long), "synthetic")
    config = {"gan": {"arch": "dcgan", "arch_options": {"size": "tiny"}, "loss": "minimax"},
              "data": {"dataset": "mnist"}, "train": {"seed": 0, "batch_size": 16}}
    report = T.theory_checks((G, D, config), data=data, grad_steps=4)
    assert report.dstar is None and "closed form" in report.skipped["dstar"]
    assert report.value_end is not None
    assert report.value_end["value"] == pytest.approx(-math.log(4), abs=0.5)  # untrained D [0.23]
    assert len(report.gradients) == 2 * 4 + 1


def test_value_png_is_deterministic():
    curves = {"a": {0: (-1.2, 0.6, 0.4), 100: (-1.38, 0.51, 0.49)}, "b": {0: (-0.9, 0.8, 0.2)}}
    png = T.value_png(curves)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == T.value_png(curves)


def test_time_budget_cuts_d_training_and_says_so(trained_checkpoint):
    report = T.theory_checks(trained_checkpoint, budget_seconds=0.0, n_kde=2_000)
    assert report.dstar is not None and report.dstar.steps == 0
    assert report.protocol["dstar"]["d_steps_planned"] == T.D_STEPS
    assert {p.step for p in report.gradients} == {0}
    assert report.protocol["gradients"]["steps_done"] == {"trained": 0, "init": 0}
    text = "\n".join(T.markdown_lines(report, {}))
    assert text.count("cut by the time budget") == 2
