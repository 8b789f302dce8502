"""Adam and RMSprop for one trial and for a pack of P trials.

One trial's update is torch.optim's own functional API (`torch.optim.adam.adam`,
`torch.optim.rmsprop.rmsprop`): the single-tensor implementation that torch.optim.Adam runs on a
CPU by default, or its fused kernel when the trainer's fast path asks (one pass over each
tensor: 9x faster on InfoGAN's 13 M parameters on a 2-core CPU; numbers change in the last
bits, as torch documents for `fused=True`).

A pack's tensors are stacked (P, ...) with per-trial hyperparameters (P,) and a mask of the
trials that step now (a smaller k, a diverged or finished trial keeps its parameters, moments
and step count exactly); no torch.optim function takes per-trial hyperparameters, so this module
writes Adam and RMSprop once for stacks, with torch's single-tensor arithmetic operation for
operation (bias corrections in float64, as torch computes them in Python floats); a trial that
does not step gets factors that make its update the identity, exactly (no copies of the pack's
tensors: a third of a packed step's time went to them).
tests/test_optim.py checks the stacked update against torch.optim bit for bit, trial by trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim.adam import adam as torch_adam
from torch.optim.rmsprop import rmsprop as torch_rmsprop

__all__ = ["OPTIMIZERS", "init_state", "update_", "hyperparameters", "State"]

OPTIMIZERS = ("adam", "rmsprop")
ADAM_EPS = 1e-8  # torch.optim.Adam's default
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8  # torch.optim.RMSprop's defaults (WGAN used RMSprop)

State = dict[str, Any]


def hyperparameters(lr: float | list[float], beta1: float | list[float],
                    beta2: float | list[float], device: torch.device | str = "cpu"
                    ) -> dict[str, Any]:
    """One trial's hyperparameters as Python floats; a pack's (lists) as float64 (P,) tensors
    made from the floats (never through float32)."""
    values = {"lr": lr, "beta1": beta1, "beta2": beta2}
    if not isinstance(lr, list):
        return {k: float(v) for k, v in values.items()}  # type: ignore[arg-type]
    return {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in values.items()}


def init_state(kind: str, params: Mapping[str, Tensor], trials: int | None = None) -> State:
    """Zero moments like each parameter. Step counts: one float32 tensor per parameter for one
    trial (`trials` None: torch.optim's layout), one float64 (P,) tensor for a pack."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r} (known: {', '.join(OPTIMIZERS)})")
    first = next(iter(params.values()))
    if trials is None:
        steps: Any = {k: torch.zeros((), dtype=torch.float32, device=first.device) for k in params}
    else:
        steps = torch.zeros(trials, dtype=torch.float64, device=first.device)
    moments = ("exp_avg", "exp_avg_sq") if kind == "adam" else ("square_avg",)
    return {"step": steps, **{m: {k: torch.zeros_like(p) for k, p in params.items()} for m in moments}}


@torch.no_grad()
def update_(kind: str, params: Mapping[str, Tensor], grads: Mapping[str, Tensor], state: State,
            hyper: Mapping[str, Any], active: Tensor | None = None, *, fused: bool = False,
            capturable: bool = False) -> None:
    """One optimizer step, in place: of one trial (torch.optim's functional update; `fused`
    and `capturable` as torch.optim's), or of the trials of a pack in `active`."""
    if isinstance(state["step"], dict):
        _torch_step(kind, params, grads, state, hyper, fused, capturable)
        return
    step = state["step"] + (1.0 if active is None else active.double())
    if kind == "adam":
        _stacked_adam_(params, grads, state, hyper, step, active)
    else:
        _stacked_rmsprop_(params, grads, state, hyper, active)
    state["step"].copy_(step)  # in place: a captured CUDA graph keeps the tensor's address


def _torch_step(kind: str, params: Mapping[str, Tensor], grads: Mapping[str, Tensor],
                state: State, hyper: Mapping[str, float], fused: bool, capturable: bool) -> None:
    names = list(params)
    tensors = ([params[k] for k in names], [grads[k] for k in names])
    steps = [state["step"][k] for k in names]
    if kind == "adam":
        torch_adam(*tensors, [state["exp_avg"][k] for k in names],
                   [state["exp_avg_sq"][k] for k in names], [], steps, foreach=False, fused=fused,
                   capturable=capturable and not fused, amsgrad=False, beta1=hyper["beta1"],
                   beta2=hyper["beta2"], lr=hyper["lr"], weight_decay=0.0, eps=ADAM_EPS,
                   maximize=False)
    else:
        torch_rmsprop(*tensors, [state["square_avg"][k] for k in names], [], [], steps,
                      foreach=False, capturable=capturable, lr=hyper["lr"], alpha=RMSPROP_ALPHA,
                      eps=RMSPROP_EPS, weight_decay=0.0, momentum=0.0, centered=False)


def _per_trial(value: Tensor, like: Tensor) -> Tensor:
    """A (P,) hyperparameter shaped to broadcast against a stacked tensor (P, ...)."""
    return value.reshape(-1, *([1] * (like.dim() - 1)))


def _stacked_adam_(params: Mapping[str, Tensor], grads: Mapping[str, Tensor], state: State,
                   hyper: Mapping[str, Tensor], step: Tensor, active: Tensor | None) -> None:
    b1, b2 = hyper["beta1"], hyper["beta2"]
    count = step.clamp(min=1)  # a masked trial that never stepped: no division by zero
    on = _on(active, b1)
    scalars = _Scalars((on * (1 - b1), torch.where(on > 0, b2, 1.0), on * (1 - b2),
                        (1 - b2 ** count) ** 0.5, on * -hyper["lr"] / (1 - b1 ** count)))
    for name, p in params.items():
        g = _masked(grads[name], active)
        one_minus_b1, beta2, one_minus_b2, bc2_sqrt, neg_step = scalars.like(p)
        m, v = state["exp_avg"][name], state["exp_avg_sq"][name]
        # torch.optim.Adam's single-tensor lines; a (c * g) * g is g * (g * c), bit for bit
        m.lerp_(g, one_minus_b1)
        v.mul_(beta2).addcmul_(g, g * one_minus_b2)
        p.addcdiv_(m * neg_step, v.sqrt().div_(bc2_sqrt).add_(ADAM_EPS))


def _stacked_rmsprop_(params: Mapping[str, Tensor], grads: Mapping[str, Tensor], state: State,
                      hyper: Mapping[str, Tensor], active: Tensor | None) -> None:
    on = _on(active, hyper["lr"])
    scalars = _Scalars((torch.where(on > 0, torch.full_like(on, RMSPROP_ALPHA), 1.0),
                        on * (1 - RMSPROP_ALPHA),
                        on * -hyper["lr"]))
    for name, p in params.items():
        g = _masked(grads[name], active)
        alpha, one_minus_alpha, neg_lr = scalars.like(p)
        sq = state["square_avg"][name]
        sq.mul_(alpha).addcmul_(g, g * one_minus_alpha)
        p.addcdiv_(g * neg_lr, sq.sqrt().add_(RMSPROP_EPS))


def _on(active: Tensor | None, like: Tensor) -> Tensor:
    """1.0 for the trials that step, 0.0 for the others (float64 (P,)). A masked trial's
    factors make each update exactly the identity: lerp by 0, multiply by 1, add 0."""
    return torch.ones_like(like) if active is None else active.to(like.dtype)


def _masked(grad: Tensor, active: Tensor | None) -> Tensor:
    """The gradient with a masked trial's set to 0: a diverged trial's NaN would survive the
    identity factors (NaN * 0 is NaN), and it must stay frozen where it diverged."""
    return grad if active is None else torch.where(_per_trial(active, grad), grad, 0.0)


class _Scalars:
    """float64 per-trial scalars, cast once per dtype and shaped once per number of dims (a
    small net has dozens of tensors: casting per tensor was a fifth of a step's time)."""

    def __init__(self, values: tuple[Tensor, ...]) -> None:
        self.values = values
        self._cache: dict[tuple[torch.dtype, int], tuple[Tensor, ...]] = {}

    def like(self, p: Tensor) -> tuple[Tensor, ...]:
        key = (p.dtype, p.dim())
        if key not in self._cache:
            self._cache[key] = tuple(_per_trial(v, p).to(p.dtype) for v in self.values)
        return self._cache[key]
