"""Goodfellow et al. 2014, Proposition 1 and Theorem 1, checked numerically in 1-D.

With G fixed (a known density p_g), the D that maximises V(D, G) = E_data log D + E_g log(1 - D)
is D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Proposition 1), and V(D*, G) = -log 4 +
2 JSD(p_data || p_g) (Theorem 1), which is -log 4 exactly when p_g = p_data. A small MLP trained
with the registered minimax D loss on fresh samples should get there.

Tolerances, both sides, measured margins in brackets (4 seeds): max |sigmoid(D(x)) - D*(x)| on
x in [-2, 2] < 0.05 [<= 0.024]; |V - V*| < 0.01 [<= 0.003], V from 200,000 samples per side, whose
Monte Carlo error is ~0.002.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, special, stats
from torch import nn

import gan_bench.losses  # noqa: F401  (registers the built-in losses)
from gan_bench.registry import LOSSES

Sampler = Callable[[int, torch.Generator], torch.Tensor]
Density = Callable[[np.ndarray], np.ndarray]


def gaussian(mean: float, sd: float) -> tuple[Sampler, Density]:
    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        return mean + sd * torch.randn(n, generator=g)

    return sample, lambda x: stats.norm.pdf(x, mean, sd)


def two_gaussians(mean: float, sd: float) -> tuple[Sampler, Density]:
    """Equal mixture of N(-mean, sd^2) and N(mean, sd^2)."""
    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        signs = 2.0 * torch.randint(2, (n,), generator=g) - 1.0
        return signs * mean + sd * torch.randn(n, generator=g)

    return sample, lambda x: 0.5 * (stats.norm.pdf(x, -mean, sd) + stats.norm.pdf(x, mean, sd))


CASES = {  # name: (p_data, p_g)
    "gaussians": (gaussian(-1.0, 1.0), gaussian(1.0, 1.0)),  # D* = sigmoid(-2x)
    "mixture_vs_gaussian": (two_gaussians(1.5, 0.5), gaussian(0.0, 1.0)),
    "equal": (gaussian(0.0, 1.0), gaussian(0.0, 1.0)),  # D* = 1/2, V* = -log 4
}


def train_d(sample_data: Sampler, sample_g: Sampler, steps: int = 600, batch: int = 512
            ) -> nn.Module:
    """Adam on the minimax D loss, fresh samples every step, cosine-decayed lr to settle."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: a second thread only adds contention on a shared CPU
    try:
        return _train_d(sample_data, sample_g, steps, batch)
    finally:
        torch.set_num_threads(threads)


def _train_d(sample_data: Sampler, sample_g: Sampler, steps: int, batch: int) -> nn.Module:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                      nn.Linear(32, 1))
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(1)
    loss = LOSSES.get("minimax")
    for _ in range(steps):
        x, y = sample_data(batch, g), sample_g(batch, g)
        d_loss = loss(d(x[:, None]), d(y[:, None])).d_loss
        opt.zero_grad()
        d_loss.backward()
        opt.step()
        sched.step()
    return d


def jsd(p: Density, q: Density) -> float:
    """JSD(p || q) in nats on a fine grid (both densities are negligible outside [-12, 12])."""
    x = np.linspace(-12.0, 12.0, 240_001)
    pa, pb = p(x), q(x)
    m = 0.5 * (pa + pb)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = 0.5 * special.xlogy(pa, pa / m) + 0.5 * special.xlogy(pb, pb / m)
    return float(integrate.trapezoid(np.nan_to_num(terms), x))


@pytest.fixture(scope="module", params=list(CASES))
def trained(request):
    (sample_data, p_data), (sample_g, p_g) = CASES[request.param]
    return request.param, train_d(sample_data, sample_g), (sample_data, p_data), (sample_g, p_g)


def test_jsd_quadrature_known_values():
    assert jsd(stats.norm.pdf, stats.norm.pdf) == pytest.approx(0.0, abs=1e-10)
    far = jsd(*(gaussian(m, 0.5)[1] for m in (-6.0, 6.0)))  # 24 sd apart: log 2
    assert far == pytest.approx(math.log(2), rel=1e-6)


def test_optimal_discriminator_proposition_1(trained):
    name, d, (_, p_data), (_, p_g) = trained
    xs = np.linspace(-2.0, 2.0, 81)
    with torch.no_grad():
        got = torch.sigmoid(d(torch.tensor(xs, dtype=torch.float32)[:, None])).squeeze(1)
    want = p_data(xs) / (p_data(xs) + p_g(xs))
    if name == "equal":
        np.testing.assert_allclose(want, 0.5)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=0.05)


def test_value_at_the_optimum_theorem_1(trained):
    name, d, (sample_data, p_data), (sample_g, p_g) = trained
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        r, f = d(sample_data(200_000, g)[:, None]), d(sample_g(200_000, g)[:, None])
    value = -(F.softplus(-r).mean() + F.softplus(f).mean()).item()  # E log D + E log(1 - D)
    want = -math.log(4) + 2 * jsd(p_data, p_g)
    if name == "equal":
        assert want == pytest.approx(-math.log(4), abs=1e-9)
    assert value == pytest.approx(want, abs=0.01)
