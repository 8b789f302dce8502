"""Known answers of the penalties on linear critics (whose input gradient is w everywhere), the
interpolates they sample, weight clipping, and double backprop through a tiny conv D."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_bench.losses import UnknownParamError, d_probabilities
from gan_bench.penalties import Penalty
from gan_bench.registry import LOSSES, PENALTIES

NAMES = ["dragan", "gradient_penalty", "none", "r1", "weight_clip"]
GRADIENT_PENALTIES = ["dragan", "gradient_penalty", "r1"]


def linear_critic(norm: float, dim: int = 6) -> tuple[nn.Module, torch.Tensor]:
    """d(x) = flatten(x) @ w with ||w|| = norm (float64)."""
    w = torch.randn(dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = w * (norm / w.norm())

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(w.clone())

        def forward(self, x):
            return x.flatten(1) @ self.w

    return Linear(), w


def batches(n: int = 16, shape=(6,), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    fake = 3 + torch.randn(n, *shape, generator=g, dtype=torch.float64)
    return real, fake


def penalty(name: str, d, real, fake, **params):
    return PENALTIES.get(name).loss(d, real, fake, generator=torch.Generator().manual_seed(0),
                                    **params)


def test_registry_holds_the_five_penalties():
    assert PENALTIES.names() == NAMES
    for name in NAMES:
        p = PENALTIES.get(name)
        assert isinstance(p, Penalty) and p.name == name
        assert set(p.param_docs) == set(p.defaults)


@pytest.mark.parametrize("norm,want", [(2.0, 10.0), (1.0, 0.0), (0.5, 2.5)])
def test_gradient_penalty_on_linear_critic(norm, want):
    d, _ = linear_critic(norm)
    value, parts = penalty("gradient_penalty", d, *batches())
    assert value.item() == pytest.approx(want, rel=1e-9, abs=1e-9)  # 10 * (||w|| - 1)^2
    assert parts["grad_norm_mean"].item() == pytest.approx(norm, rel=1e-9)
    assert parts["gp"].item() == pytest.approx(want / 10, rel=1e-9, abs=1e-9)
    value, _ = penalty("gradient_penalty", d, *batches(), weight=1.0)
    assert value.item() == pytest.approx(want / 10, rel=1e-9, abs=1e-9)


def test_dragan_on_linear_critic():
    d, _ = linear_critic(2.0)
    value, parts = penalty("dragan", d, *batches(), slope_eps=0.0)
    assert value.item() == pytest.approx(10.0, rel=1e-9)  # the same form as WGAN-GP
    value, parts = penalty("dragan", d, *batches())  # Lucic's sqrt(1e-4 + ||g||^2)
    assert value.item() == pytest.approx(10 * (math.sqrt(4 + 1e-4) - 1) ** 2, rel=1e-9)
    assert parts["grad_norm_mean"].item() == pytest.approx(math.sqrt(4 + 1e-4), rel=1e-9)


def test_r1_on_linear_critic():
    d, w = linear_critic(2.0)
    value, parts = penalty("r1", d, *batches())
    assert value.item() == pytest.approx(10 / 2 * 4.0, rel=1e-9)  # gamma/2 ||w||^2
    assert parts["r1"].item() == pytest.approx(4.0, rel=1e-9)
    value, _ = penalty("r1", d, *batches(), gamma=1.0)
    assert value.item() == pytest.approx(2.0, rel=1e-9)


class Recorder(nn.Module):
    """A linear critic that keeps the batch it was called on."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(dim, dtype=torch.float64))
        self.seen: torch.Tensor | None = None

    def forward(self, x):
        self.seen = x.detach()
        return x.flatten(1) @ self.w


def test_gradient_penalty_samples_per_sample_interpolates():
    real, fake = batches(n=32, shape=(2, 3))
    d = Recorder(6)
    penalty("gradient_penalty", d, real, fake)
    # x_hat - fake = eps * (real - fake) with one eps in [0, 1] per sample
    eps = (d.seen - fake).flatten(1) / (real - fake).flatten(1)
    torch.testing.assert_close(eps, eps[:, :1].expand_as(eps))
    assert ((eps >= 0) & (eps <= 1)).all() and eps.std() > 0.1
    first = d.seen.clone()
    penalty("gradient_penalty", d, real, fake)  # the same generator seed, the same draw
    torch.testing.assert_close(d.seen, first)


def test_dragan_perturbs_real_data_within_half_a_std():
    real, fake = batches(n=32)
    d = Recorder(6)
    penalty("dragan", d, real, fake)
    step = (d.seen - real) / (0.5 * real.std(correction=0))
    assert ((step >= 0) & (step <= 1)).all() and step.mean().item() == pytest.approx(0.25, abs=0.05)


def test_gradient_penalty_rejects_unequal_batches():
    d, _ = linear_critic(1.0)
    real, fake = batches()
    with pytest.raises(ValueError, match="same shape"):
        penalty("gradient_penalty", d, real, fake[:8])


def test_none_is_a_zero_on_the_data_device():
    d, _ = linear_critic(1.0)
    value, parts = penalty("none", d, *batches())
    assert value.item() == 0.0 and value.dim() == 0 and parts == {}
    assert value.device == batches()[0].device and value.dtype == torch.float64


def test_weight_clip_clamps_after_the_d_step():
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -0.5, 0.005, -0.003]] * 3))
        lin.bias.copy_(torch.tensor([0.02, -0.001, 0.0]))
    value, parts = penalty("weight_clip", lin, torch.zeros(2, 4), torch.zeros(2, 4))
    assert value.item() == 0.0 and parts == {}
    params = {k: p.detach() for k, p in lin.named_parameters()}  # D's tensors, clamped in place
    PENALTIES.get("weight_clip").after_d_step_(params)
    torch.testing.assert_close(lin.weight, torch.tensor([[0.01, -0.01, 0.005, -0.003]] * 3))
    torch.testing.assert_close(lin.bias, torch.tensor([0.01, -0.001, 0.0]))
    PENALTIES.get("weight_clip").after_d_step_(params, clip=0.002)
    assert lin.weight.abs().max().item() == pytest.approx(0.002)
    with pytest.raises(ValueError, match=r"'c' for penalty 'weight_clip' \(known: clip\)"):
        PENALTIES.get("weight_clip").after_d_step_(params, c=0.1)


def test_weight_clip_in_a_pack_clamps_only_the_trials_that_stepped():
    stacked = {"w": torch.full((3, 2, 2), 0.5)}
    PENALTIES.get("weight_clip").after_d_step_(stacked, torch.tensor([True, False, True]), clip=0.1)
    assert stacked["w"][:, 0, 0].tolist() == pytest.approx([0.1, 0.5, 0.1])


def test_penalties_declare_what_they_need():
    """The packing and CUDA-graph plans read these instead of keeping their own lists."""
    double = {n for n in NAMES if PENALTIES.get(n).double_backward}
    after = {n for n in NAMES if PENALTIES.get(n).acts_after_d_step}
    assert double == set(GRADIENT_PENALTIES) and after == {"weight_clip"}
    shape = (8, 1, 4, 4)
    draws = {n: [d(shape) for d in PENALTIES.get(n).uniform_draws] for n in NAMES}
    assert draws == {"none": [], "weight_clip": [], "r1": [], "gradient_penalty": [(8, 1, 1, 1)],
                     "dragan": [shape, (8, 1, 1, 1)]}


@pytest.mark.parametrize("name", NAMES)
def test_unknown_params_are_errors(name):
    d, _ = linear_critic(1.0)
    with pytest.raises(UnknownParamError, match="lambda_"):
        penalty(name, d, *batches(), lambda_=1.0)


def tiny_conv_d() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 1))


@pytest.mark.parametrize("name", NAMES)
def test_backward_through_a_conv_d_on_images(name):
    d = tiny_conv_d()
    real, fake = batches(n=8, shape=(1, 8, 8))
    real, fake = real.float(), fake.float()
    value, parts = penalty(name, d, real, fake)
    assert value.dim() == 0 and torch.isfinite(value)
    assert all(not v.requires_grad and torch.isfinite(v) for v in parts.values())
    d_loss = d(fake).mean() - d(real).mean() + value
    d_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    if name in GRADIENT_PENALTIES:  # the penalty alone reaches D's weights (double backprop)
        d.zero_grad()
        penalty(name, d, real, fake)[0].backward()
        assert d[0].weight.grad.abs().sum() > 0 and d[3].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("penalty_name", PENALTIES.names())
@pytest.mark.parametrize("loss_name", LOSSES.names())
def test_every_loss_and_penalty_take_one_d_and_one_g_step(loss_name, penalty_name):
    """The combination contract on 2-D points: finite losses, D and G parameters that move."""
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_d, opt_g = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (D, G))
    loss, pen = LOSSES.get(loss_name), PENALTIES.get(penalty_name)
    real, z = torch.randn(8, 2), torch.randn(8, 2)
    before_d, before_g = ([p.detach().clone() for p in m.parameters()] for m in (D, G))

    fake = G(z).detach()
    out = loss(D(real), D(fake))
    value, _ = pen.loss(D, real, fake, generator=torch.Generator().manual_seed(0))
    opt_d.zero_grad()
    (out.d_loss + value).backward()
    opt_d.step()
    pen.after_d_step_({k: p.detach() for k, p in D.named_parameters()})
    assert torch.isfinite(out.d_loss + value)
    assert set(d_probabilities(loss, {}, D(real), D(fake))) == {"d_real", "d_fake"}

    fake = G(z)
    real_logits = D(real) if loss.needs_real_for_g else D(fake).detach()
    g_loss = loss(real_logits, D(fake)).g_loss
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(g_loss)
    for before, m in ((before_d, D), (before_g, G)):
        assert any(not torch.equal(b, p) for b, p in zip(before, m.parameters()))
