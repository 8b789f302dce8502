"""Goodfellow et al. 2014's theory checked on a trained generator: the optimal discriminator,
the value of the game, and the vanishing gradient of the minimax G loss.

Papers followed:
- Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661). Proposition 1: for
  a fixed G, the D that maximises V(D, G) = E_data log D(x) + E_z log(1 - D(G(z))) is
  D*(x) = p_data(x) / (p_data(x) + p_g(x)). Theorem 1: V(D*, G) = -log 4 + 2 JSD(p_data || p_g),
  -log 4 with D* = 1/2 everywhere exactly when p_g = p_data. Section 3: log(1 - D(G(z)))
  saturates when D rejects G's samples confidently; G maximises log D(G(z)) instead.
- Goodfellow 2016, "NIPS 2016 Tutorial: Generative Adversarial Networks" (arXiv:1701.00160),
  figure 16: both G costs as functions of D(G(z)). Here it is measured, not drawn: the norm of
  G's parameter gradient of each cost, on a real G and D.

The checks and their protocol (constants below; every draw from a CPU torch.Generator seeded
from `seed`, so a seed gives the same draws on every device):

1. D* (`dstar_check`; 2-D mixtures, whose p_data is known in closed form). p_g is a Gaussian
   KDE of N_KDE samples of G in eval mode (as the evaluation samples it). Kernel sd per
   dimension: Scott's rule (sd_j n^(-1/6)) times the factor that maximises the mean log-density
   of N_HELD_OUT other G samples (likelihood cross-validation over BANDWIDTH_FACTORS, then the
   geometric midpoints around the best). Scott's rule alone assumes one smooth bump: on ring8 it
   gives ~0.14, fourteen times the modes' sigma 0.01, and would spread p_g so thin that D* ~ 1
   on every mode even for a perfect G; on ring8 samples the likelihood picks ~0.3 sigma. The
   KDE is what D* is made of, so its bandwidth goes with every D* number. A fresh D (the GAN's
   architecture built with pack=1, minibatch_std and minibatch_disc off and unconditional, so that D(x) is a
   function of x alone) is trained alone against the frozen G: minimax D loss, fresh data and
   G samples every step, Adam with a cosine-decayed lr. Its error is E_m |sigmoid(D(x)) - D*(x)|
   with m = (p_data + p_g) / 2, by Monte Carlo on N_MC points, half drawn from the mixture and
   half from G (fresh draws, not the KDE's points, whose own kernels would inflate p_g). Not on
   a grid: ring8's modes (sigma 0.01) are narrower than any affordable grid's cells (150 x 150
   on [-1.5, 1.5]^2 has cells 2 sigma wide), so grid quadrature misplaces the mass, and D* is
   0/0 where both densities vanish: only m's mass matters to V(D, G). The grid is drawn only.
   What the number can and cannot show (measured, ring8): against a "G" that drops every other
   mode, D alone gets within 0.003-0.014 of D* (PacGAN's D, toy_mlp tiny); against one with the
   right modes twice as wide (D* from 0.8 at a centre to 0 at 4 sigma) the same nets stay at
   D = 1/2 for 1,500 steps (error 0.24): first-order features cannot tell two bumps with the
   same centre apart, so a difference finer than D resolves reads as D = 1/2, V = -log 4.
2. V (`value_of_game`), from logits with softplus. V of any D is at most V(D*, G), so
   (V(D, G) + log 4) / 2 bounds JSD(p_data || p_g) from below, up to Monte Carlo error.
3. Gradients (`gradient_sweep`): a fresh D (as in 1) is trained alone against a frozen G, from
   the trained G and from G at its initialisation (rebuilt with the trial's seed, so that D
   becomes confidently right, D(G(z)) ~ 1e-3). At steps 0, 1, 2, 4, ... the same batch of
   GRAD_BATCH z gives the mean D(G(z)) and the 2-norms of G's parameter gradients of the
   minimax cost E log(1 - D(G(z))) and of the non-saturating -E log D(G(z)). Through one
   logit l they differ by a factor: d/dl log(1 - sigmoid(l)) = -sigmoid(l) and
   d/dl -log sigmoid(l) = -(1 - sigmoid(l)), so per sample |minimax| / |non-saturating| =
   D / (1 - D) exactly (`per_sample_gradient_norms`). Over a batch the ratio is smaller than
   (1 - D) / D of the mean D whenever D(G(z)) varies over the batch: the minimax gradient is
   carried by the few samples D is unsure of (PacGAN's nets at init, BatchNorm spreading G's
   samples: 4.8 at mean D(G(z)) 0.019, where one sample's ratio would be 51). G and D run in
   train mode here, as in the trainer's G step (on copies; buffers a measurement updates are
   restored). With BatchNorm in D (dcgan), real and fake batches apart make D confident within a
   few steps (MNIST dcgan small: mean D(G(z)) 0.46 -> 0.15 after one step, 0.007 after four).

D is always called as the trainer calls it: train mode, real and fake batches apart.
"""

from __future__ import annotations

import copy
import io
import math
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_bench.data.base import ArrayDataset
from gan_bench.data.mixtures import MixtureSource
from gan_bench.errors import UserInputError
from gan_bench.losses import d_probabilities
from gan_bench.metrics.features import float32_math
from gan_bench.models.base import Discriminator, Generator, build_models
from gan_bench.registry import DATASETS, LOSSES

__all__ = [
    "Sampler", "LogDensity", "value_of_game", "mixture_log_density", "mixture_sampler",
    "generator_sampler", "dataset_sampler", "GaussianKDE", "fit_kde", "fresh_discriminator",
    "train_alone", "DStarResult", "dstar_check", "GradientPoint", "per_sample_gradient_norms",
    "generator_gradient_norms", "gradient_sweep", "load_checkpoint", "TheoryReport",
    "theory_checks", "markdown_lines", "dstar_png", "value_png", "gradients_png",
    "N_KDE", "N_HELD_OUT", "N_MC", "GRID", "BANDWIDTH_FACTORS", "D_STEPS", "GRAD_STEPS",
]

Sampler = Callable[[int, torch.Generator], Tensor]  # (n, CPU generator) -> (n, *shape) float
LogDensity = Callable[[Tensor], Tensor]  # (M, 2) points -> (M,) float64 log density

LOG4 = math.log(4.0)
DPI = 80  # the report figures' DPI (report/figures.py)
N_KDE = 20_000  # G samples in the KDE: its evaluation costs ~12 ns per (point, sample) pair on a core
N_HELD_OUT = 1_000  # G samples that choose the bandwidth
BANDWIDTH_FACTORS = tuple(2.0 ** -k for k in range(9))  # x Scott's rule: 1 down to 1/256
N_MC = 4_000  # Monte Carlo points of m = (p_data + p_g)/2, half each: sd of the error <= 0.008
GRID = 100  # figure only: GRID x GRID cells
D_STEPS = 500  # ~20-40 s for PacGAN's D on a core; no plateau yet for a trained G (module doc)
D_BATCH = 256  # real and fake samples per D step (each)
D_LR = 3e-3  # Adam, cosine-decayed to 0 over the steps: settles on the optimum
BETAS = (0.5, 0.999)  # DCGAN's Adam betas, the trainer's default
GRAD_STEPS = 128  # D steps per gradient sweep; measured at 0, 1, 2, 4, ..., 128
GRAD_BATCH = 64  # z per measurement and samples per D step (the TrainConfig default batch)
GRAD_LR = 1e-3  # constant: a trajectory to confident rejection, not a converged D
EVAL_BATCH = 512  # samples per D forward when D is only evaluated
FRESH_D = "the GAN's arch, pack=1, minibatch_std and minibatch_disc off, unconditional"


# ----------------------------------------------------------------------------- small pieces

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@contextmanager
def _kept_buffers(*modules: nn.Module) -> Iterator[None]:
    """Restore the modules' buffers (BatchNorm statistics, spectral norm's u, v) on exit: a
    forward pass in train mode updates them, and a measurement must not change the nets."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


@contextmanager
def _mode(module: nn.Module, train: bool) -> Iterator[None]:
    was = module.training
    module.train(train)
    try:
        yield
    finally:
        module.train(was)


def value_of_game(real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """V(D, G) = E log D(x) + E log(1 - D(G(z))) from D's logits (N,) or (N, 1) on real and on
    fake samples (sizes may differ), with mean D(x) and mean D(G(z)): detached 0-dim tensors
    "value" in (-inf, 0], "d_real" and "d_fake" in [0, 1]. No host sync, so a trainer can log it.
    V is minus the registered minimax D loss (softplus form: finite for logits of +-100);
    Theorem 1: V = -log 4 and D = 1/2 at the optimum."""
    minimax = LOSSES.get("minimax")
    value = -minimax(real_logits, fake_logits).d_loss.detach()
    return {"value": value, **d_probabilities(minimax, None, real_logits, fake_logits)}


# ----------------------------------------------------------------------------- densities

def mixture_log_density(x: Tensor, centres: Tensor, sigma: float) -> Tensor:
    """log p(x), float64 (M,), of the equal-weight mixture of N(c, sigma^2 I) over `centres`
    (K, 2), at points x (M, 2). log-sum-exp: finite even 100 sigma from every centre."""
    x, c = x.double(), centres.double().to(x.device)
    d2 = torch.cdist(x, c).square()
    norm = math.log(len(c)) + math.log(2 * math.pi * sigma**2)
    return torch.logsumexp(-0.5 * d2 / sigma**2, dim=1) - norm


def mixture_sampler(centres: Tensor, sigma: float, device: str | torch.device = "cpu") -> Sampler:
    """Draws float32 (n, 2) points of the mixture (a mode uniformly, then Gaussian noise)."""
    c = centres.float()

    def sample(n: int, gen: torch.Generator) -> Tensor:
        modes = torch.randint(len(c), (n,), generator=gen)
        return (c[modes] + sigma * torch.randn(n, 2, generator=gen)).to(device)

    return sample


def generator_sampler(G: Generator) -> Sampler:
    """Draws G(z) (n, *out_shape) on G's device without gradients, in G's current mode; z (and
    y, uniform classes, for a conditional G) from the CPU generator."""
    def sample(n: int, gen: torch.Generator) -> Tensor:
        z = G.sample_z(n, generator=gen, device="cpu")
        y = G.sample_y(n, generator=gen, device="cpu") if G.conditional else None
        with torch.no_grad():
            return G(z.to(_device(G)), None if y is None else y.to(_device(G)))

    return sample


def dataset_sampler(data: ArrayDataset, device: str | torch.device = "cpu") -> Sampler:
    """Draws training samples with replacement, as the trainer does: float images in [-1, 1]
    (n, C, H, W) or points (n, 2), on `device`."""
    def sample(n: int, gen: torch.Generator) -> Tensor:
        idx = torch.randint(len(data), (n,), generator=gen)
        return data.batch(idx.to(data.device))[0].to(device)

    return sample


@dataclass(frozen=True)
class GaussianKDE:
    """p(x) = mean_i N(x; points_i, diag(bandwidth^2)): points float64 (n, d), bandwidth (d,)."""

    points: Tensor
    bandwidth: Tensor

    def log_density(self, x: Tensor, chunk: int = 32) -> Tensor:
        """log p at x (M, d) -> float64 (M,). Chunks of `chunk` x n distances stay in cache."""
        p = self.points / self.bandwidth
        p2 = p.square().sum(1)
        q = x.double().to(p.device) / self.bandwidth
        norm = (math.log(len(p)) + self.bandwidth.log().sum().item()
                + 0.5 * p.shape[1] * math.log(2 * math.pi))
        out = []
        for qc in torch.split(q, chunk):
            # |a - b|^2 expanded: one gemm; then log-sum-exp by hand, because exp of arguments
            # below ~-745 (which underflow to 0 anyway) takes a 10x slower path: clamped first
            e = torch.addmm(p2[None], qc, p.T, alpha=-2.0).add_(qc.square().sum(1, keepdim=True))
            e.mul_(-0.5)
            top = e.amax(1, keepdim=True)
            out.append(e.sub_(top).clamp_min_(-700.0).exp_().sum(1).log_().add_(top[:, 0]))
        return (torch.cat(out) if out else q.new_empty(0)) - norm


def fit_kde(samples: Tensor, held_out: Tensor,
            factors: Sequence[float] = BANDWIDTH_FACTORS) -> tuple[GaussianKDE, dict[str, Any]]:
    """KDE of `samples` (n, d) whose bandwidth is Scott's rule per dimension times the factor
    that maximises the mean log-density of `held_out` (m, d): the best of `factors`, then of
    its geometric midpoints with both neighbours. Its protocol: n, factor, bandwidth, the
    log-likelihood per factor tried, whether the best is at the edge of `factors`."""
    pts = samples.double()
    n, d = pts.shape
    scott = (pts.std(0) * n ** (-1.0 / (d + 4))).clamp_min(1e-12)  # clamp: a collapsed G

    def score(f: float) -> float:
        return GaussianKDE(pts, scott * f).log_density(held_out).mean().item()

    tried = {float(f): score(f) for f in factors}
    best = max(tried, key=tried.__getitem__)
    i = list(tried).index(best)
    for j in (i - 1, i + 1):  # factors of 2 are coarse: a 2-D KDE's peak moves 4x per step
        if 0 <= j < len(factors):
            mid = math.sqrt(best * factors[j])
            tried[mid] = score(mid)
    best = max(tried, key=tried.__getitem__)
    kde = GaussianKDE(pts, scott * best)
    return kde, {"kind": "gaussian", "n": n, "n_held_out": len(held_out),
                 "rule": "scott x factor by held-out likelihood", "factor": best,
                 "bandwidth": kde.bandwidth.tolist(), "scott": scott.tolist(),
                 "log_likelihood": tried, "at_edge": best in (factors[0], factors[-1])}


# ----------------------------------------------------------------------------- D alone

def fresh_discriminator(config: Mapping[str, Any], shape: Sequence[int], seed: int,
                        device: str | torch.device = "cpu") -> Discriminator:
    """A new D of the GAN's architecture (config["gan"]["arch"], ["arch_options"]) built with
    pack=1, minibatch_std and minibatch_disc off and unconditional, so that D(x) depends on x
    alone; init seeded."""
    gan = config["gan"]
    options = {**gan.get("arch_options", {}), "pack": 1, "minibatch_std": False,
               "minibatch_disc": False, "conditional": False}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, D = build_models(gan["arch"], tuple(shape), **options)
    return D.to(device)


def train_alone(D: nn.Module, sample_real: Sampler, sample_fake: Sampler, *, steps: int,
                batch: int, lr: float, seed: int, cosine: bool, deadline: float = math.inf,
                measure: Callable[[int], None] | None = None,
                measure_at: Sequence[int] = ()) -> int:
    """Train D (in train mode) alone for `steps` Adam steps on the minimax D loss, a fresh real
    and a fresh fake batch of `batch` each step. `measure(step)` runs before the steps in
    `measure_at` (and after the last when it is listed). Stops at time.monotonic() `deadline`;
    returns the steps done."""
    gen = _gen(seed)
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=BETAS)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1)) if cosine else None
    minimax = LOSSES.get("minimax")
    at = set(measure_at)
    with _mode(D, True):
        for step in range(steps + 1):
            if measure is not None and step in at:
                measure(step)
            if step == steps or time.monotonic() > deadline:
                return step
            real, fake = sample_real(batch, gen), sample_fake(batch, gen)
            loss = minimax(D(real), D(fake)).d_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
    return steps


@torch.no_grad()
def _logits(D: nn.Module, x: Tensor, batch: int = EVAL_BATCH) -> Tensor:
    """D's logits on x in batches of `batch` (a multiple of D's pack), train mode, buffers kept."""
    with _mode(D, True), _kept_buffers(D):
        return torch.cat([D(xb).reshape(-1) for xb in torch.split(x, batch)]).float()


# ----------------------------------------------------------------------------- 1. D*

@dataclass
class DStarResult:
    """D trained alone (and the checkpoint's D) against D* = p_data / (p_data + p_g).

    Errors are E_m |sigmoid(D(x)) - D*(x)| in [0, 1], m = (p_data + p_g) / 2 by Monte Carlo;
    `error_on` splits them into the data half and the G half (the total is their mean).
    `mass` is m's share where D* > 0.9 (data G misses), D* < 0.1 (G where data is not), and
    between. Values V are by Monte Carlo on the same points. `maps` holds float64
    (GRID, GRID) arrays for the figure, rows from y0 up to y1, columns from x0 to x1 of
    `extent` (x0, x1, y0, y1): log10 p_data, log10 p_g, D*, D alone, D at the end of training."""

    error: float
    error_on: dict[str, float]
    error_end: float | None
    error_end_on: dict[str, float] | None
    mass: dict[str, float]
    value_star: float  # V(D*, G): -log 4 + 2 JSD, with the KDE's p_g
    value_alone: float  # V(D alone, G) <= V(D*, G)
    value_end: float | None
    jsd_lower_bound: float  # (value_alone + log 4) / 2, in nats
    steps: int
    protocol: dict[str, Any]
    maps: dict[str, np.ndarray] = field(repr=False)
    extent: tuple[float, float, float, float]


def _grid(extent: tuple[float, float, float, float], n: int) -> Tensor:
    """(n * n, 2) float64 cell centres, row-major from the bottom row (as imshow origin=lower)."""
    x0, x1, y0, y1 = extent
    xs = torch.linspace(x0, x1, n, dtype=torch.float64)
    ys = torch.linspace(y0, y1, n, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _abs_errors(d: Tensor, dstar: Tensor, half: int) -> tuple[float, dict[str, float]]:
    err = (d.double() - dstar).abs()
    on = {"data": err[:half].mean().item(), "g": err[half:].mean().item()}
    return 0.5 * (on["data"] + on["g"]), on


def _apart(D: nn.Module, x: Tensor, half: int) -> Tensor:
    """D's logits (M,) on the CPU for x (M, 2): the data half and the G half in batches apart."""
    x = x.to(_device(D))
    return torch.cat([_logits(D, x[:half]), _logits(D, x[half:])]).cpu()


def _value(logits: Tensor, half: int) -> float:
    return value_of_game(logits[:half], logits[half:])["value"].item()


def dstar_check(D: nn.Module, sample_data: Sampler, log_p_data: LogDensity, sample_g: Sampler,
                log_p_g: LogDensity, *, extent: tuple[float, float, float, float], seed: int = 0,
                steps: int = D_STEPS, batch: int = D_BATCH, lr: float = D_LR, n_mc: int = N_MC,
                grid: int = GRID, d_end: nn.Module | None = None, deadline: float = math.inf,
                protocol: Mapping[str, Any] | None = None) -> DStarResult:
    """Train the fresh 2-D D alone against `sample_g` and compare sigmoid(D) with
    D* = sigmoid(log p_data - log p_g) (see the module doc); `d_end` (pack 1) is compared too.
    `log_p_g` is exact for a known G, or a KDE's; `protocol` (its bandwidth...) is kept."""
    done = train_alone(D, sample_data, sample_g, steps=steps, batch=batch, lr=lr, seed=seed,
                       cosine=True, deadline=deadline)
    gen = _gen(seed + 1)
    half = n_mc // 2
    x = torch.cat([sample_data(half, gen).float().cpu(), sample_g(n_mc - half, gen).float().cpu()])
    log_ratio = log_p_data(x) - log_p_g(x)
    dstar = torch.sigmoid(log_ratio)
    logits = _apart(D, x, half)
    error, error_on = _abs_errors(torch.sigmoid(logits), dstar, half)
    end = _apart(d_end, x, half) if d_end is not None else None
    error_end, end_on = _abs_errors(torch.sigmoid(end), dstar, half) if end is not None else (None, None)
    value_star = (F.logsigmoid(log_ratio[:half]).mean() + F.logsigmoid(-log_ratio[half:]).mean()).item()
    value_alone = _value(logits, half)
    maps = _maps(D, d_end, log_p_data, log_p_g, extent, grid)
    return DStarResult(
        error=error, error_on=error_on, error_end=error_end, error_end_on=end_on,
        mass={"d_star_above_0.9": (dstar > 0.9).double().mean().item(),
              "d_star_below_0.1": (dstar < 0.1).double().mean().item(),
              "between": ((dstar >= 0.1) & (dstar <= 0.9)).double().mean().item()},
        value_star=value_star, value_alone=value_alone,
        value_end=_value(end, half) if end is not None else None,
        jsd_lower_bound=(value_alone + LOG4) / 2, steps=done,
        protocol={**(protocol or {}), "d_steps": done, "d_steps_planned": steps, "d_batch": batch,
                  "d_lr": lr, "d_lr_schedule": "cosine to 0", "betas": list(BETAS),
                  "d_loss": "minimax", "n_mc": n_mc, "mc": "half p_data, half p_g (fresh)",
                  "grid": [grid, grid], "extent": list(extent), "seed": seed},
        maps=maps, extent=extent)


def _maps(D: nn.Module, d_end: nn.Module | None, log_p_data: LogDensity, log_p_g: LogDensity,
          extent: tuple[float, float, float, float], n: int) -> dict[str, np.ndarray]:
    pts = _grid(extent, n)
    lpd, lpg = log_p_data(pts), log_p_g(pts)
    maps = {"p_data": lpd / math.log(10), "p_g": lpg / math.log(10), "d_star": torch.sigmoid(lpd - lpg),
            "d_alone": torch.sigmoid(_logits(D, pts.float().to(_device(D))).cpu())}
    if d_end is not None:
        maps["d_end"] = torch.sigmoid(_logits(d_end, pts.float().to(_device(d_end))).cpu())
    return {k: v.double().reshape(n, n).numpy() for k, v in maps.items()}


# ----------------------------------------------------------------------------- 3. gradients

class GradientPoint(NamedTuple):
    """One measurement on one batch of z: the first three fields are the figure's point."""

    d_fake: float  # mean D(G(z)), in (0, 1)
    minimax: float  # |grad_theta E log(1 - D(G(z)))|, 2-norm over all of G's parameters
    non_saturating: float  # |grad_theta -E log D(G(z))|
    start: str  # "trained" G, "init" G (D trained alone from fresh), or "end" (the run's own D)
    step: int  # D steps taken alone before the measurement


def _grad_norm(loss: Tensor, params: Sequence[Tensor]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    total = sum((g.double().square().sum() for g in grads if g is not None), torch.zeros((), dtype=torch.float64))
    return math.sqrt(float(total))


def generator_gradient_norms(G: Generator, D: nn.Module, z: Tensor, y: Tensor | None = None
                             ) -> tuple[float, float, float]:
    """(mean D(G(z)), |grad minimax|, |grad non-saturating|) on the batch z (N, nz), as the
    trainer's G step computes them: G and D in train mode; their buffers are restored."""
    params = [p for p in G.parameters() if p.requires_grad]
    with _mode(G, True), _mode(D, True), _kept_buffers(G, D):
        f = D(G(z, y)).reshape(-1)
        d_fake = torch.sigmoid(f.detach().double()).mean().item()
        minimax = _grad_norm(-F.softplus(f).mean(), params)  # log(1 - sigmoid(f)) = -softplus(f)
        non_saturating = _grad_norm(F.softplus(-f).mean(), params)  # -log sigmoid(f)
    return d_fake, minimax, non_saturating


def per_sample_gradient_norms(G: Generator, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per sample of z (N, nz): D(G(z_i)) float64 (N,) in (0, 1) and the two gradient norms
    (N,) each, one sample per forward in eval mode (one sample's logit then depends on that
    sample alone; D's pack must be 1). |minimax| / |non-saturating| = D / (1 - D) exactly."""
    params = [p for p in G.parameters() if p.requires_grad]
    d, mm, ns = [], [], []
    with _mode(G, False), _mode(D, False):
        for zi in z.split(1):
            f = D(G(zi)).reshape(())
            d.append(torch.sigmoid(f.detach().double()).item())
            mm.append(_grad_norm(-F.softplus(f), params))
            ns.append(_grad_norm(F.softplus(-f), params))
    as_tensor = torch.tensor
    return (as_tensor(d, dtype=torch.float64), as_tensor(mm, dtype=torch.float64),
            as_tensor(ns, dtype=torch.float64))


def _schedule(steps: int) -> list[int]:
    """0, 1, 2, 4, ... and `steps`: dense early, where D(G(z)) moves fastest."""
    return sorted({0, steps, *(2**k for k in range(int(math.log2(max(steps, 1))) + 1))})


def gradient_sweep(G: Generator, D: nn.Module, sample_real: Sampler, *, start: str, seed: int = 0,
                   steps: int = GRAD_STEPS, batch: int = GRAD_BATCH, lr: float = GRAD_LR,
                   deadline: float = math.inf) -> list[GradientPoint]:
    """Train the fresh D alone against G (frozen, train mode, as in training) and measure
    `generator_gradient_norms` on one fixed batch of `batch` z at steps 0, 1, 2, 4, ..., `steps`
    (constant lr: a trajectory from D(G(z)) ~ 1/2 towards confident rejection). G and D are
    changed in place only by D's training; pass copies."""
    gen = _gen(seed + 2)
    z = G.sample_z(batch, generator=gen, device="cpu").to(_device(G))
    y = G.sample_y(batch, generator=gen, device="cpu").to(_device(G)) if G.conditional else None
    points: list[GradientPoint] = []

    def measure(step: int) -> None:
        points.append(GradientPoint(*generator_gradient_norms(G, D, z, y), start, step))

    with _mode(G, True):
        train_alone(D, sample_real, generator_sampler(G), steps=steps, batch=batch, lr=lr,
                    seed=seed + 3, cosine=False, deadline=deadline, measure=measure,
                    measure_at=_schedule(steps))
    return points


# ----------------------------------------------------------------------------- checkpoints

def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[Generator, Discriminator | None, dict[str, Any]]:
    """(G, D or None, resolved config) from a finalist checkpoint {"G", "config"[, "D"]}: the
    nets rebuilt from config["gan"] as report/samples.py rebuilds G; D only when saved."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        config = ckpt["config"]
        gan = config["gan"]
        shape = DATASETS.get(config["data"]["dataset"]).shape
        G, D = build_models(gan["arch"], shape, **gan["arch_options"])
        G.load_state_dict(ckpt["G"])
        if "D" in ckpt:
            D.load_state_dict(ckpt["D"])
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated, zero-byte or foreign file: one line
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise UserInputError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})"
                             ) from None
    return G.to(device), (D.to(device) if "D" in ckpt else None), config


# ----------------------------------------------------------------------------- all together

@dataclass
class TheoryReport:
    """What `theory_checks` measured: results, protocol per part, wall seconds per part, and
    the parts that did not run with the reason ("dstar", "dstar_end": the run's own D against
    D*, "value_end")."""

    gan: dict[str, Any]  # arch, arch_options, loss, loss_params, dataset
    dstar: DStarResult | None
    value_end: dict[str, float] | None  # V, d_real, d_fake of the run's own D at the end
    gradients: list[GradientPoint]
    protocol: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    skipped: dict[str, str]


def _why_not_compared(D: Discriminator | None, config: Mapping[str, Any]) -> str | None:
    """Why the run's own D cannot be set against D*, or None when it can."""
    if D is None:
        return "the checkpoint holds no D"
    if D.pack != 1:
        return f"its D is packed (pack={D.pack}): it scores packs of samples, not points"
    if config["gan"].get("arch_options", {}).get("minibatch_std"):
        return "its D uses minibatch stddev: D(x) depends on the rest of the batch"
    if config["gan"].get("arch_options", {}).get("minibatch_disc"):
        return "its D uses minibatch discrimination: D(x) depends on the rest of the batch"
    return None


def _value_end(G: Generator, D: Discriminator, sample_real: Sampler, batch: int, seed: int,
               n: int = 4096) -> dict[str, float]:
    """V, mean D(x), mean D(G(z)) of the run's own D on n fresh samples each, G in eval mode."""
    gen = _gen(seed + 4)
    n = max(batch, n // batch * batch)  # whole training batches: D may be packed
    real = sample_real(n, gen)
    with _mode(G, False):
        fake = generator_sampler(G)(n, gen)
    out = value_of_game(_logits(D, real, batch), _logits(D, fake, batch))
    return {k: v.item() for k, v in out.items()}


def theory_checks(source: str | Path | tuple[Generator, Discriminator | None, Mapping[str, Any]], *,
                  seed: int = 0, budget_seconds: float = 120.0, device: str | torch.device = "cpu",
                  data: ArrayDataset | None = None, d_steps: int = D_STEPS,
                  grad_steps: int = GRAD_STEPS, n_kde: int = N_KDE) -> TheoryReport:
    """Every check that applies to a checkpoint path or (G, D or None, resolved config): D* for
    a 2-D mixture with a probabilistic loss, V at the end of training when D is saved and the
    loss is probabilistic, gradients always. `data`: the real training split (default: the
    config's dataset, "train"); mixtures use their closed form (the dataset's default sigma: the
    resolved config does not record dataset options). D training stops early past its share of
    `budget_seconds` (half to D*, the rest to gradients) and the protocol says how many steps it
    did. The nets given are not changed (copies are used)."""
    G, D_end, config = load_checkpoint(source, device) if isinstance(source, (str, Path)) else source
    G = copy.deepcopy(G).to(device)
    D_end = copy.deepcopy(D_end).to(device) if D_end is not None else None
    gan, dataset = config["gan"], config["data"]["dataset"]
    data_source = DATASETS.get(dataset)
    probabilistic = LOSSES.get(gan["loss"]).is_probabilistic(gan.get("loss_params") or {})
    mixture = isinstance(data_source, MixtureSource)
    report = TheoryReport({"arch": gan["arch"], "arch_options": dict(gan.get("arch_options", {})),
                           "loss": gan["loss"], "loss_params": dict(gan.get("loss_params") or {}),
                           "dataset": dataset}, None, None, [], {}, {}, {})
    start = time.monotonic()
    with float32_math(), _timed(report, "data"):
        if isinstance(data_source, MixtureSource):
            centres, sigma = data_source.centres(), data_source.default_sigma
            sample_real = mixture_sampler(centres, sigma, device)
        else:
            sample_real = dataset_sampler(data or data_source.load("train"), device)
    if not probabilistic:
        why = f"loss {gan['loss']!r} with these params does not make sigmoid(D) a probability"
        report.skipped.update(dstar=why, value_end=why)
    elif not mixture:
        report.skipped["dstar"] = "p_data is known in closed form only for the 2-D mixtures"
    if probabilistic and D_end is None:
        report.skipped["value_end"] = "the checkpoint holds no D"
    with float32_math():
        if "dstar" not in report.skipped:
            with _timed(report, "dstar"):
                report.dstar = _run_dstar(G, D_end, config, centres, sigma, seed, d_steps, n_kde,
                                          start + 0.5 * budget_seconds, report)
        if "value_end" not in report.skipped and D_end is not None:
            with _timed(report, "value_end"):
                batch = int(config.get("train", {}).get("batch_size", GRAD_BATCH))
                report.value_end = _value_end(G, D_end, sample_real, batch, seed)
        with _timed(report, "gradients"):
            report.gradients = _run_gradients(G, D_end, config, sample_real, seed, grad_steps,
                                              start + budget_seconds, report)
    return report


@contextmanager
def _timed(report: TheoryReport, part: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[part] = round(time.perf_counter() - start, 2)


def _run_dstar(G: Generator, D_end: Discriminator | None, config: Mapping[str, Any],
               centres: Tensor, sigma: float, seed: int, steps: int, n_kde: int,
               deadline: float, report: TheoryReport) -> DStarResult:
    device = _device(G)
    G_eval = copy.deepcopy(G).eval()  # p_g is what the evaluation samples
    sample_g = generator_sampler(G_eval)
    gen = _gen(seed + 5)
    kde, kde_protocol = fit_kde(sample_g(n_kde, gen).cpu(), sample_g(N_HELD_OUT, gen).cpu())
    why_not = _why_not_compared(D_end, config)
    if why_not is not None:
        report.skipped["dstar_end"] = why_not
    lo, hi = centres.min(0).values, centres.max(0).values
    margin = 0.25 * float((hi - lo).max()) + 4 * sigma
    extent = (float(lo[0]) - margin, float(hi[0]) + margin, float(lo[1]) - margin, float(hi[1]) + margin)
    D = fresh_discriminator(config, (2,), seed, device)
    result = dstar_check(D, mixture_sampler(centres, sigma, device),
                         lambda x: mixture_log_density(x, centres, sigma), sample_g,
                         kde.log_density, extent=extent, seed=seed, steps=steps,
                         d_end=D_end if why_not is None else None, deadline=deadline,
                         protocol={"kde": kde_protocol, "p_data": f"closed form, sigma {sigma}",
                                   "fresh_d": FRESH_D})
    report.protocol["dstar"] = result.protocol
    return result


def _run_gradients(G: Generator, D_end: Discriminator | None, config: Mapping[str, Any],
                   sample_real: Sampler, seed: int, steps: int, deadline: float,
                   report: TheoryReport) -> list[GradientPoint]:
    gan, device = config["gan"], _device(G)
    shape = G.out_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config.get("train", {}).get("seed", 0)))  # as the trainer inits
        G_init, _ = build_models(gan["arch"], shape, **gan.get("arch_options", {}))
    points: list[GradientPoint] = []
    starts = {"trained": copy.deepcopy(G), "init": G_init.to(device)}
    for i, (name, g) in enumerate(starts.items()):
        share = (deadline - time.monotonic()) / (len(starts) - i)  # what is left, split evenly
        D = fresh_discriminator(config, shape, seed, device)
        points += gradient_sweep(g, D, sample_real, start=name, seed=seed, steps=steps,
                                 deadline=time.monotonic() + share)
    if D_end is not None:  # the run's own D on the trained G: where training left D(G(z))
        gen = _gen(seed + 6)
        n = max(D_end.pack, GRAD_BATCH // D_end.pack * D_end.pack)
        z = G.sample_z(n, generator=gen, device="cpu").to(device)
        y = G.sample_y(n, generator=gen, device="cpu").to(device) if G.conditional else None
        points.append(GradientPoint(*generator_gradient_norms(copy.deepcopy(G), D_end, z, y), "end", 0))
    report.protocol["gradients"] = {
        "starts": ["trained", "init (build_models after torch.manual_seed(train seed))"]
        + (["end (the run's own D)"] if D_end is not None else []),
        "d_steps": steps, "measured_at": _schedule(steps), "batch": GRAD_BATCH, "lr": GRAD_LR,
        "lr_schedule": "constant", "betas": list(BETAS), "d_loss": "minimax",
        "fresh_d": FRESH_D, "modes": "G and D train",
        "norm": "2-norm over all G parameters", "seed": seed,
        "steps_done": {s: max((p.step for p in points if p.start == s), default=0)
                       for s in ("trained", "init")}}
    return points


# ----------------------------------------------------------------------------- words

def _closest(points: Sequence[GradientPoint], d: float) -> GradientPoint | None:
    swept = [p for p in points if p.start != "end" and p.d_fake > 0]
    return min(swept, key=lambda p: abs(math.log(p.d_fake / d))) if swept else None


def markdown_lines(report: TheoryReport, figure_names: Mapping[str, str]) -> list[str]:
    """A short markdown section in words: D* (Proposition 1), V (Theorem 1), gradients (tutorial
    figure 16), each with its protocol; `figure_names` maps "dstar", "gradients" (and "value")
    to file names, and a figure is linked only when named. No timings: same report, same lines."""
    g = report.gan
    lines = ["### Theory checks (Goodfellow et al. 2014)", "",
             f"{g['arch']} / {g['loss']} on {g['dataset']}.", ""]
    lines += _dstar_lines(report) + _value_lines(report) + _gradient_lines(report)
    for key, title in (("dstar", "D* check"), ("value", "value of the game"),
                       ("gradients", "G's gradient vs D(G(z))")):
        if key in figure_names:
            lines += [f"![{title}]({figure_names[key]})", ""]
    for part, why in sorted(report.skipped.items()):
        lines.append(f"- not run: {part}: {why}.")
    return lines


def _dstar_lines(report: TheoryReport) -> list[str]:
    r = report.dstar
    if r is None:
        return []
    kde = r.protocol["kde"]
    bw = ", ".join(f"{b:.3g}" for b in kde["bandwidth"])
    cut = r.protocol["d_steps_planned"]
    cut_words = f" (cut by the time budget; {cut} planned)" if r.steps < cut else ""
    lines = [f"Proposition 1: a fresh D trained alone against the frozen G for {r.steps} steps{cut_words} is "
             f"within **{r.error:.3f}** of D* = p_data / (p_data + p_g) (mean |D - D*| over "
             f"(p_data + p_g) / 2: {r.error_on['data']:.3f} on data, {r.error_on['g']:.3f} on G's "
             f"samples)."]
    if r.error_end is not None and r.error_end_on is not None:
        lines.append(f"The run's own D at the end of training is within **{r.error_end:.3f}** "
                     f"({r.error_end_on['data']:.3f} on data, {r.error_end_on['g']:.3f} on G).")
    lines += [f"Where the mass is: D* > 0.9 (data G misses) on {100 * r.mass['d_star_above_0.9']:.0f}%, "
              f"D* < 0.1 (G off the data) on {100 * r.mass['d_star_below_0.1']:.0f}%, in between on "
              f"{100 * r.mass['between']:.0f}%.",
              f"V(D*, G) = {r.value_star:.3f} (-log 4 = {-LOG4:.3f} at p_g = p_data); V(D alone, G) "
              f"= {r.value_alone:.3f}, so JSD(p_data || p_g) >= {max(r.jsd_lower_bound, 0.0):.3f} nats."
              + _gap_words(r),
              f"Protocol: p_g is a Gaussian KDE of {kde['n']} G samples, bandwidth ({bw}) = Scott's "
              f"rule x {kde['factor']:g} chosen on {kde['n_held_out']} held-out samples"
              f"{' (at the edge of the search)' if kde['at_edge'] else ''}; {r.protocol['n_mc']} "
              f"Monte Carlo points; D: {r.protocol['fresh_d']}, Adam lr {r.protocol['d_lr']:g} "
              f"cosine, batch {r.protocol['d_batch']}; seed {r.protocol['seed']}.", ""]
    return lines


def _gap_words(r: DStarResult) -> str:
    """How much of V(D*, G) + log 4 = 2 JSD the D trained alone reaches (module doc, 1)."""
    gap = r.value_star + LOG4
    if gap < 0.05:  # p_g ~ p_data by the KDE: nothing to reach
        return ""
    share = (r.value_alone + LOG4) / gap
    words = f" D alone reaches {100 * share:.0f}% of the gap V(D*, G) + log 4."
    if share < 0.5:
        words += (" Far from D*: D* changes on the scale where p_data and p_g differ (ring8's "
                  "sigma 0.01), finer than this D resolves in its steps.")
    return words


def _value_lines(report: TheoryReport) -> list[str]:
    v = report.value_end
    if v is None:
        return []
    return [f"Theorem 1: V at the end of training (the run's own D) is **{v['value']:.3f}** vs "
            f"-log 4 = {-LOG4:.3f}; mean D(x) = {v['d_real']:.3f}, mean D(G(z)) = "
            f"{v['d_fake']:.3f} (1/2 at the optimum).", ""]


def _gradient_lines(report: TheoryReport) -> list[str]:
    p = _closest(report.gradients, 0.01)
    if p is None:
        return []
    # which G and D the point comes from: at init every GAN of one arch and seed shares it
    where = {"trained": f"the trained G, a fresh D after {p.step} steps alone",
             "init": f"G at its initialisation, a fresh D after {p.step} steps alone",
             "end": "the run's own G and D at the end of training"}.get(p.start, p.start)
    lines = [f"Vanishing gradients (tutorial figure 16, measured): at mean D(G(z)) = {p.d_fake:.3g} "
             f"({where}) the minimax G loss's gradient is **{p.non_saturating / max(p.minimax, 1e-300):.3g} "
             f"times smaller** than the non-saturating one's (|grad| {p.minimax:.3g} vs "
             f"{p.non_saturating:.3g}; one sample at that D would give (1 - D) / D = "
             f"{(1 - p.d_fake) / p.d_fake:.3g}, a batch less where D(G(z)) varies)."]
    half = _closest(report.gradients, 0.5)
    if half is not None:
        lines.append(f"Near D(G(z)) = {half.d_fake:.2f} the ratio is "
                     f"{half.non_saturating / max(half.minimax, 1e-300):.2f}.")
    pr = report.protocol.get("gradients", {})
    done = pr.get("steps_done", {})
    cut = (f" (cut by the time budget: {done} done)"
           if any(v < pr.get("d_steps", 0) for v in done.values()) else "")
    lines += [f"Protocol: a fresh D ({pr.get('fresh_d')}) trained alone for {pr.get('d_steps')} "
              f"steps{cut} (Adam lr {pr.get('lr')}, batch {pr.get('batch')}) against the trained "
              f"G and against G at its initialisation, measured at steps {pr.get('measured_at')}; "
              f"G and D in train mode, as in the trainer's G step.", ""]
    return lines


# ----------------------------------------------------------------------------- figures

def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # no version: same bytes
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib  # deferred: heavy, and only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dstar_png(result: DStarResult) -> bytes:
    """PNG: log10 p_data, log10 p_g (KDE), D* (blank where m = (p_data + p_g) / 2 is below 1e-6
    of its peak: 0/0 there), D trained alone (and D at the end of training)."""
    plt = _pyplot()
    maps = result.maps
    log_m = np.logaddexp(maps["p_data"] * math.log(10), maps["p_g"] * math.log(10))
    d_star = np.where(log_m >= log_m.max() - 6 * math.log(10), maps["d_star"], np.nan)
    panels = [(maps["p_data"], "log10 p_data"), (maps["p_g"], "log10 p_g (KDE)"),
              (d_star, "D* (blank: no mass)"), (maps["d_alone"], f"D alone ({result.error:.3f})")]
    if "d_end" in maps:
        panels.append((maps["d_end"], f"D end of training ({result.error_end:.3f})"))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    try:
        for i, (ax, (img, title)) in enumerate(zip(axes[0], panels)):
            top = float(np.nanmax(img)) if i < 2 else 1.0
            im = ax.imshow(img, origin="lower", extent=result.extent, cmap="viridis",
                           vmin=top - 6 if i < 2 else 0.0, vmax=top)  # densities: 6 decades
            ax.set_title(title, fontsize=8)
            ax.tick_params(labelsize=6)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        fig.suptitle("Proposition 1: D* = p_data / (p_data + p_g); in brackets mean |D - D*| over "
                     "(p_data + p_g) / 2", fontsize=8)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)


def value_png(curves: Mapping[str, Mapping[int, tuple[float, float, float]]]) -> bytes:
    """PNG of training histories {run: {step: (V, mean D(x), mean D(G(z)))}}: V with -log 4
    dashed (left), D(x) solid and D(G(z)) dotted with 1/2 dashed (right)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    try:
        for i, (name, history) in enumerate(curves.items()):
            steps = sorted(history)
            v, dr, df = (np.array([history[s][j] for s in steps]) for j in range(3))
            color = f"C{i % 10}"
            left.plot(steps, v, color=color, label=name)
            right.plot(steps, dr, color=color, label=f"{name} D(x)")
            right.plot(steps, df, color=color, ls=":", label=f"{name} D(G(z))")
        left.axhline(-LOG4, color="k", ls="--", lw=1, label="-log 4")
        right.axhline(0.5, color="k", ls="--", lw=1, label="1/2")
        left.set(xlabel="iteration", ylabel="V(D, G)", title="value of the game")
        right.set(xlabel="iteration", ylabel="mean D", ylim=(0, 1),
                  title="D(x) solid, D(G(z)) dotted")
        for ax in (left, right):
            ax.legend(fontsize=6)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)


def gradients_png(points_by_dataset: Mapping[str, Sequence[GradientPoint]]) -> bytes:
    """PNG, one log-log panel per dataset: |grad| of each G cost vs mean D(G(z)); blue minimax,
    orange non-saturating; o trained G, ^ G at init, * the run's own D at the end of training."""
    from matplotlib import ticker

    plt = _pyplot()
    n = max(len(points_by_dataset), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    markers = {"trained": "o", "init": "^", "end": "*"}
    try:
        for ax, (name, points) in zip(axes[0], points_by_dataset.items()):
            for start, marker in markers.items():
                pts = [p for p in points if p.start == start and p.d_fake > 0]
                x = [p.d_fake for p in pts]
                ax.scatter(x, [p.minimax for p in pts], c="C0", marker=marker, s=18)
                ax.scatter(x, [p.non_saturating for p in pts], c="C1", marker=marker, s=18)
            ax.set(xscale="log", yscale="log", xlabel="mean D(G(z))", ylabel="|grad of G's cost|")
            # D(G(z)) may span less than a decade (then labels at 1, 2, 5 x 10^n) or four
            # (then at most 6 labels); never labels on minor ticks, which crowd
            xs = [p.d_fake for p in points if p.d_fake > 0] or [1.0]
            narrow = max(xs) / min(xs) < 30
            ax.xaxis.set_major_locator(ticker.LogLocator(
                base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,), numticks=6))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(name, fontsize=8)
        title = ("G's gradient vs D(G(z)): minimax log(1 - D(G(z))) (blue) vanishes as D(G(z)) -> 0, "
                 "non-saturating -log D(G(z)) (orange) does not. o trained G, ^ G at init, "
                 "* the run's own D")
        # ~11 characters of 7-point text per inch: wrapped to the figure, never cut at its edges
        fig.suptitle(textwrap.fill(title, width=max(30, int(3.6 * n * 11))), fontsize=7)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)
