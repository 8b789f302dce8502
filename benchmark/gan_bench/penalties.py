"""Discriminator regularisers, one shared signature, in the style of compare_gan's `penalty_lib.py`.

A penalty sees the D step's batches, D as a critic function and the D step's random draws; it
returns a scalar that the trainer adds to the D loss, and may act on D's parameters after the
optimiser step. The trainer calls it for one trial, alone or under vmap in a pack. Papers followed:

- weight_clip: Arjovsky et al. 2017, "Wasserstein GAN" (arXiv:1701.07875)
- gradient_penalty: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs"
  (arXiv:1704.00028)
- dragan: Kodali et al. 2017, "On Convergence and Stability of GANs" (arXiv:1705.07215), as
  implemented in Lucic et al. 2018's compare_gan (v1)
- r1: Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"
  (arXiv:1801.04406)

Shapes: `real` and `fake` are batches of any shape (N, ...), e.g. images (N, C, H, W) or points
(N, 2); `d` maps such a batch to logits (N',) or (N', 1). Gradient norms are taken per input
sample (flattened over all but the first dim) of the gradient of sum(d(x)); this is the per-sample
gradient of D unless D mixes samples (batch norm in training mode, packing), which WGAN-GP warns
against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from gan_bench.losses import resolve_params
from gan_bench.registry import PENALTIES

__all__ = ["Penalty", "NoPenalty", "WeightClip", "GradientPenalty", "Dragan", "R1",
           "input_gradients"]

Critic = Callable[[Tensor], Tensor]


class Penalty(ABC):
    """A regulariser of D. Subclasses set `name`, `summary`, `defaults`, `param_docs`, declare
    what they need, and implement `compute`.

    Declarations (the trainer's packing and CUDA-graph plans read them, no list elsewhere):
    `uniform_draws`: the U(0, 1) tensors a penalty draws per D step, in order, as functions of
    the real batch's shape (drawn by the trainer from the trial's generator, so a pack under
    vmap draws each trial's own); `double_backward`: it differentiates D's input gradients (a
    grad of a grad: torch.func composes it with vmap; a CUDA graph capture is not verified);
    `after_d_step_` acts on D's parameters after each D step (weight clipping)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    param_docs: ClassVar[dict[str, str]] = {}  # one line per default: what it is, why that value
    double_backward: ClassVar[bool] = False
    uniform_draws: ClassVar[tuple[Callable[[tuple[int, ...]], tuple[int, ...]], ...]] = ()

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults merged with `params`; UnknownParamError (a ValueError) for unknown names."""
        return resolve_params(f"penalty {self.name!r}", self.defaults, params)

    def draw(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
             generator: torch.Generator | None) -> list[Tensor]:
        """This D step's U(0, 1) draws for a real batch of `shape` and `dtype` on `device`,
        taken from `generator` where it lives."""
        return [_uniform(draw(tuple(shape)), dtype, device, generator)
                for draw in self.uniform_draws]

    def loss(self, d: Critic, real: Tensor, fake: Tensor, draws: Sequence[Tensor] | None = None,
             *, generator: torch.Generator | None = None, **params: object
             ) -> tuple[Tensor, dict[str, Tensor]]:
        """(scalar to add to the D loss, detached parts to log). `draws`: from `draw` (the
        trainer's, per trial); None draws them here from `generator`."""
        resolved = self.resolve(params)
        if draws is None:
            draws = self.draw(tuple(real.shape), real.dtype, real.device, generator)
        return self.compute(d, real.detach(), fake.detach(), list(draws), **resolved)

    @abstractmethod
    def compute(self, d: Critic, real: Tensor, fake: Tensor, draws: list[Tensor],
                **params: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """The penalty for resolved `params`; `real`, `fake` are already detached."""

    def after_d_step_(self, params: Mapping[str, Tensor], active: Tensor | None = None,
                      **penalty_params: object) -> None:
        """After each D optimiser step, on D's parameters (in place; the trials of a pack in
        `active` only). A no-op unless overridden; always checks `penalty_params`."""
        self.resolve(penalty_params)

    @property
    def acts_after_d_step(self) -> bool:
        return type(self).after_d_step_ is not Penalty.after_d_step_

    def describe(self) -> dict[str, Any]:
        """Catalogue fields (JSON-ready) for `gan-bench list`."""
        return {"defaults": dict(self.defaults), "params": dict(self.param_docs),
                "double_backward": self.double_backward,
                "acts_after_d_step": self.acts_after_d_step}


def _zero(like: Tensor) -> Tensor:
    return like.new_zeros(())


def _uniform(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
             generator: torch.Generator | None) -> Tensor:
    """U(0, 1) of `shape` and `dtype` on `device`, drawn from `generator` where it lives."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)


def _per_sample_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0],) + (1,) * (len(shape) - 1)


def _same_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def input_gradients(d: Critic, x: Tensor) -> Tensor:
    """Per-sample gradients (N, prod(rest)) of sum(d(x)) w.r.t. x, differentiable w.r.t. D's
    parameters (second order), through torch.func so that it composes with vmap. A critic with
    state that its forward updates (BatchNorm's running statistics) provides its own
    `input_gradients` (the trainer's functional critic passes that state explicitly)."""
    own = getattr(d, "input_gradients", None)
    if own is not None:
        return own(x)
    grad = torch.func.grad(lambda inputs: d(inputs).sum())(x.detach())
    return grad.reshape(x.shape[0], -1)


class NoPenalty(Penalty):
    name = "none"
    summary = "No regulariser: adds 0 to the D loss"

    def compute(self, d, real, fake, draws, **params):
        return _zero(real), {}


class WeightClip(Penalty):
    """Clamp every D parameter (not buffers) to [-clip, clip] after each D step."""

    name = "weight_clip"
    summary = "Weight clipping of the WGAN critic (Arjovsky et al. 2017)"
    defaults = {"clip": 0.01}
    param_docs = {"clip": "clamp bound c; 0.01 in WGAN's Algorithm 1 (Lucic: 10^U[-3,0])"}

    def compute(self, d, real, fake, draws, **params):
        return _zero(real), {}

    def after_d_step_(self, params: Mapping[str, Tensor], active: Tensor | None = None,
                      **penalty_params: object) -> None:
        # WGAN's reference code clamps before each critic forward; clamping after each step gives
        # the same sequence of clamped weights except the very first, unclamped, initial one.
        clip = self.resolve(penalty_params)["clip"]
        with torch.no_grad():
            for p in params.values():
                clamped = p.clamp(-clip, clip)
                if active is not None:  # a pack: (P,) trials, stacked parameters (P, ...)
                    clamped = torch.where(active.reshape(-1, *([1] * (p.dim() - 1))), clamped, p)
                p.copy_(clamped)


class GradientPenalty(Penalty):
    """weight * E[(||grad d(x_hat)||_2 - 1)^2], x_hat = eps*real + (1-eps)*fake, eps ~ U(0,1)."""

    name = "gradient_penalty"
    summary = "Gradient penalty on real-fake interpolates, WGAN-GP (Gulrajani et al. 2017)"
    defaults = {"weight": 10.0}
    param_docs = {"weight": "lambda; 10 in WGAN-GP's Algorithm 1 (Lucic: 10^U[-1,2])"}
    double_backward = True
    uniform_draws = (_per_sample_shape,)  # eps, one per sample

    def compute(self, d, real, fake, draws, **params):
        if real.shape != fake.shape:
            raise ValueError("gradient_penalty needs real and fake batches of the same shape, "
                             f"got {tuple(real.shape)} and {tuple(fake.shape)}")
        (eps,) = draws
        norms = input_gradients(d, eps * real + (1 - eps) * fake).norm(dim=1)
        gp = (norms - 1).square().mean()
        return params["weight"] * gp, {"gp": gp.detach(), "grad_norm_mean": norms.mean().detach()}


class Dragan(Penalty):
    """weight * E[(||grad d(x_hat)|| - 1)^2] around the real data.

    As in Lucic et al. 2018's code: x_p = x + 0.5 * std(x) * u with u ~ U(0,1) per element and
    std over the whole batch (population std), then x_hat = x + alpha * (x_p - x) with alpha ~
    U(0,1) per sample, and slopes sqrt(slope_eps + ||grad||^2). (Later compare_gan versions use
    u - 0.5 and clip x_p to [0, 1]; the paper itself uses Gaussian noise.)
    """

    name = "dragan"
    summary = "Gradient penalty around perturbed real data, DRAGAN (Kodali et al. 2017)"
    defaults = {"weight": 10.0, "perturb_scale": 0.5, "slope_eps": 1e-4}
    param_docs = {
        "weight": "lambda; 10 as in DRAGAN's code (Lucic: 10^U[-1,2])",
        "perturb_scale": "noise scale in units of std(real batch); 0.5 as in Lucic's code",
        "slope_eps": "added under the square root of ||grad||^2; 1e-4 as in Lucic's code",
    }

    double_backward = True
    uniform_draws = (_same_shape, _per_sample_shape)  # noise per element, then alpha per sample

    def compute(self, d, real, fake, draws, **params):
        noise, alpha = draws
        step = params["perturb_scale"] * real.std(correction=0) * noise
        grads = input_gradients(d, real + alpha * step)
        slopes = torch.sqrt(params["slope_eps"] + grads.square().sum(dim=1))
        gp = (slopes - 1).square().mean()
        return params["weight"] * gp, {"gp": gp.detach(), "grad_norm_mean": slopes.mean().detach()}


class R1(Penalty):
    """gamma / 2 * E_real ||grad_x d(x)||^2 (zero-centred, on real data only)."""

    name = "r1"
    summary = "R1 zero-centred gradient penalty on real data (Mescheder et al. 2018)"
    defaults = {"gamma": 10.0}
    param_docs = {"gamma": "gamma in gamma/2 E||grad D(x)||^2; 10 as in Mescheder et al.'s configs"}
    double_backward = True

    def compute(self, d, real, fake, draws, **params):
        sq = input_gradients(d, real).square().sum(dim=1)
        r1 = sq.mean()
        return 0.5 * params["gamma"] * r1, {"r1": r1.detach(),
                                            "grad_norm_mean": sq.detach().sqrt().mean()}


for _cls in (NoPenalty, WeightClip, GradientPenalty, Dragan, R1):
    PENALTIES.register(_cls.name, _cls(), summary=_cls.summary, **_cls().describe())
