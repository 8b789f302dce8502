"""Known answers, gradient directions and numerical stability of every registered loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_bench.losses import GanLoss, LossOutput, UnknownParamError, d_probabilities
from gan_bench.registry import LOSSES

NAMES = ["hinge", "least_squares", "minimax", "non_saturating", "relativistic_average",
         "wasserstein"]
# every registered loss, plus least squares on the sigmoid output (Lucic et al. 2018's variant)
VARIANTS = [(n, {}) for n in LOSSES.names()] + [("least_squares", {"sigmoid_output": True})]
VARIANT_IDS = [n + ("+sigmoid" if p else "") for n, p in VARIANTS]

R = [1.0, 2.0]  # real logits
Fk = [-1.0, 0.0, 3.0]  # fake logits: a different batch size on purpose


def sp(x: float) -> float:
    """softplus(x) = log(1 + e^x), by hand."""
    return math.log1p(math.exp(x))


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def run(name: str, real, fake, **params) -> LossOutput:
    return LOSSES.get(name)(torch.tensor(real, dtype=torch.float64),
                            torch.tensor(fake, dtype=torch.float64), **params)


def test_registry_holds_exactly_the_six_losses():
    assert LOSSES.names() == NAMES
    for name in NAMES:
        loss = LOSSES.get(name)
        assert isinstance(loss, GanLoss) and loss.name == name
        assert set(loss.param_docs) == set(loss.defaults)
        assert LOSSES.entry(name).summary
    assert [n for n in NAMES if LOSSES.get(n).needs_real_for_g] == ["relativistic_average"]
    assert [n for n in NAMES if LOSSES.get(n).probabilistic] == ["minimax", "non_saturating"]


def _expected(name: str, **params) -> tuple[float, float]:
    """(D loss, G loss) on R, Fk computed by hand from the papers' formulas."""
    if name == "minimax":
        d_fake = mean(sp(f) for f in Fk)
        return mean(sp(-r) for r in R) + d_fake, -d_fake
    if name == "non_saturating":
        return (mean(sp(-r) for r in R) + mean(sp(f) for f in Fk), mean(sp(-f) for f in Fk))
    if name == "least_squares":
        a, b, c = params.get("a", 0.0), params.get("b", 1.0), params.get("c", 1.0)
        act = sig if params.get("sigmoid_output") else (lambda x: x)
        d = 0.5 * mean((act(r) - b) ** 2 for r in R) + 0.5 * mean((act(f) - a) ** 2 for f in Fk)
        return d, 0.5 * mean((act(f) - c) ** 2 for f in Fk)
    if name == "wasserstein":
        return mean(Fk) - mean(R), -mean(Fk)
    if name == "hinge":
        return mean(max(0, 1 - r) for r in R) + mean(max(0, 1 + f) for f in Fk), -mean(Fk)
    assert name == "relativistic_average"
    mr, mf = mean(R), mean(Fk)
    d = mean(sp(-(r - mf)) for r in R) + mean(sp(f - mr) for f in Fk)
    g = mean(sp(-(f - mr)) for f in Fk) + mean(sp(r - mf) for r in R)
    return d, g


@pytest.mark.parametrize("name,params", VARIANTS, ids=VARIANT_IDS)
def test_known_answers(name, params):
    out = run(name, R, Fk, **params)
    d, g = _expected(name, **params)
    assert out.d_loss.dim() == 0 and out.g_loss.dim() == 0
    assert out.d_loss.item() == pytest.approx(d, rel=1e-12, abs=1e-12)
    assert out.g_loss.item() == pytest.approx(g, rel=1e-12, abs=1e-12)
    # parts: detached, and the D loss is their real + fake sum
    assert all(not v.requires_grad and v.dim() == 0 for v in out.parts.values())
    torch.testing.assert_close(out.parts["d_loss_real"] + out.parts["d_loss_fake"], out.d_loss)


def test_hand_values_at_logit_zero():
    """D(x) = D(G(z)) = 1/2: each log term is log 2."""
    z = [0.0, 0.0]
    assert run("minimax", z, z).d_loss.item() == pytest.approx(2 * math.log(2), rel=1e-12)
    assert run("minimax", z, z).g_loss.item() == pytest.approx(-math.log(2), rel=1e-12)
    assert run("non_saturating", z, z).g_loss.item() == pytest.approx(math.log(2), rel=1e-12)
    assert run("relativistic_average", z, z).g_loss.item() == pytest.approx(2 * math.log(2))
    assert run("hinge", z, z).d_loss.item() == pytest.approx(2.0, rel=1e-12)


def test_cross_entropy_losses_match_bce_with_logits():
    r, f = torch.randn(7, generator=torch.Generator().manual_seed(0)), torch.randn(5)
    bce = F.binary_cross_entropy_with_logits
    want_d = bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))
    for name in ("minimax", "non_saturating"):
        torch.testing.assert_close(LOSSES.get(name)(r, f).d_loss, want_d)
    torch.testing.assert_close(LOSSES.get("non_saturating")(r, f).g_loss,
                               bce(f, torch.ones_like(f)))


def test_least_squares_pearson_and_sigmoid_forms():
    pearson = {"a": -1.0, "b": 1.0, "c": 0.0}
    out = run("least_squares", R, Fk, **pearson)
    # by hand: D = 1/2 mean(0, 1) + 1/2 mean(0, 1, 16); G = 1/2 mean(1, 0, 9)
    assert out.d_loss.item() == pytest.approx(0.25 + 17 / 6, rel=1e-12)
    assert out.g_loss.item() == pytest.approx(5 / 3, rel=1e-12)
    out = run("least_squares", [0.0], [0.0], sigmoid_output=True)  # D = G = 1/2 everywhere
    assert out.d_loss.item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.25, rel=1e-12)
    assert out.g_loss.item() == pytest.approx(0.5 * 0.25, rel=1e-12)
    ls = LOSSES.get("least_squares")
    assert not ls.is_probabilistic() and ls.is_probabilistic({"sigmoid_output": True})


@pytest.mark.parametrize("name,params", VARIANTS, ids=VARIANT_IDS)
def test_gradient_directions(name, params):
    """D's loss pushes real logits up and fake ones down; G's pushes fake logits up.

    Logits lie where every loss is active: hinge margins not met, and for least squares the fake
    logits sit between the fake label a=0 and the G target c=1.
    """
    r = torch.tensor([0.2, -0.3, 0.5], requires_grad=True)
    f = torch.tensor([0.1, 0.4], requires_grad=True)
    out = LOSSES.get(name)(r, f, **params)
    gr, gf = torch.autograd.grad(out.d_loss, (r, f))
    assert (gr < 0).all() and (gf > 0).all()
    (gf,) = torch.autograd.grad(LOSSES.get(name)(r, f, **params).g_loss, f)
    assert (gf < 0).all()


def test_minimax_saturates_where_non_saturating_does_not():
    """At D(G(z)) = sigmoid(-10) ~ 4.5e-5, d/df log(1 - D) = -sigmoid(f) ~ -4.5e-5 while
    d/df -log D = -(1 - sigmoid(f)) ~ -1 (Goodfellow 2014, section 3)."""
    r = torch.tensor([3.0], dtype=torch.float64)
    grads = {}
    for name in ("minimax", "non_saturating"):
        f = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
        (grads[name],) = torch.autograd.grad(LOSSES.get(name)(r, f).g_loss, f)
    s = 1 / (1 + math.exp(10))
    assert s == pytest.approx(4.5398e-5, rel=1e-4)
    assert grads["minimax"].item() == pytest.approx(-s, rel=1e-9)
    assert grads["non_saturating"].item() == pytest.approx(-(1 - s), rel=1e-9)


@pytest.mark.parametrize("name,params", VARIANTS, ids=VARIANT_IDS)
def test_extreme_logits_are_finite(name, params):
    r = torch.tensor([100.0, -100.0, 0.0], requires_grad=True)
    f = torch.tensor([-100.0, 100.0], requires_grad=True)
    out = LOSSES.get(name)(r, f, **params)
    assert torch.isfinite(out.d_loss) and torch.isfinite(out.g_loss)
    for loss in (out.d_loss, out.g_loss):
        for grad in torch.autograd.grad(loss, (r, f), allow_unused=True,
                                        retain_graph=True):
            assert grad is None or torch.isfinite(grad).all()


def test_column_logits_are_flattened_and_other_shapes_rejected():
    r, f = torch.tensor([[0.5], [1.0]]), torch.tensor([[-0.5]])
    loss = LOSSES.get("hinge")
    torch.testing.assert_close(loss(r, f).d_loss, loss(r.reshape(-1), f.reshape(-1)).d_loss)
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, 1\)"):
        loss(torch.zeros(2, 2), f)
    with pytest.raises(ValueError, match="N >= 1"):
        loss(torch.zeros(0), f)


def test_unknown_and_mistyped_params_are_errors():
    r, f = torch.zeros(2), torch.zeros(2)
    with pytest.raises(ValueError, match=r"'sigmoid' for loss 'least_squares' \(known: a, b, c, "
                                         r"sigmoid_output\)"):
        LOSSES.get("least_squares")(r, f, sigmoid=True)
    with pytest.raises(UnknownParamError, match=r"known: none"):
        LOSSES.get("hinge")(r, f, margin=1.0)
    with pytest.raises(TypeError, match="must be float"):
        LOSSES.get("least_squares")(r, f, a="0")
    with pytest.raises(TypeError, match="must be bool"):
        LOSSES.get("least_squares")(r, f, sigmoid_output=1)
    out = LOSSES.get("least_squares")(r, f, a=-1)  # an int where a float is expected is fine
    assert out.d_loss.item() == pytest.approx(0.5 * 1 + 0.5 * 1)


def test_d_probabilities():
    r, f = torch.tensor([0.0, 2.0]), torch.tensor([-2.0])
    p = d_probabilities(LOSSES.get("minimax"), None, r, f)
    assert p["d_real"].item() == pytest.approx((0.5 + sig(2.0)) / 2, rel=1e-6)
    assert p["d_fake"].item() == pytest.approx(sig(-2.0), rel=1e-6)
    raw = d_probabilities(LOSSES.get("wasserstein"), {}, r, f)
    assert (raw["d_real"].item(), raw["d_fake"].item()) == (1.0, -2.0)
    ls = d_probabilities(LOSSES.get("least_squares"), {"sigmoid_output": True}, r, f)
    assert ls["d_fake"].item() == pytest.approx(sig(-2.0), rel=1e-6)
    assert d_probabilities(LOSSES.get("least_squares"), {}, r, f)["d_fake"].item() == -2.0
