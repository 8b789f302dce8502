"""The D step and the G step, written once (Goodfellow et al. 2014, Algorithm 1).

Each step's objective is a function of one trial: its two networks as functions, the batch and
the random draws (`d_objective`, `g_objective`). A solo trial evaluates it with its own modules;
a pack of P trials evaluates it under `torch.func.vmap`, the networks being
`torch.func.functional_call` of the template modules on each trial's slice of the stacked
parameters and buffers (P, ...). Either way the gradients are one `torch.autograd.grad` of the
objective (of the pack's sum: the trials share nothing, so each gets its own gradient), and the
update is train/optim.py's on the trial's tensors, or on the stacked ones with per-trial
hyperparameters and a mask of the trials that step now.

- gradient penalties (WGAN-GP, DRAGAN, R1) differentiate D's input gradients: a solo critic
  takes them with autograd (create_graph), a packed one with torch.func.grad, which composes
  with vmap (torch.autograd.grad inside vmap is not supported), the outer backward being the
  same autograd;
- buffers that a forward pass updates in place (BatchNorm's statistics, spectral norm's u and v)
  are each trial's own: the module's, or its slice of the stacked buffers, updated in a plain
  loop's order (inside torch.func.grad they are explicit inputs, the form torch.func asks for);
- AC-GAN's class head: D is called with `aux=True`, and the labels are drawn per trial;
- a penalty's after-D-step hook (weight clipping) acts on the trial's, or the pack's, tensors.

The random draws are not made here: the trainer draws them per trial from the trial's own
torch.Generator, in a plain loop's order (batch indices, z, labels, the penalty's U(0, 1)
draws), so a packed trial draws what it would draw alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
import torch.utils._pytree
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from gan_bench.losses import minimax
from gan_bench.train import optim

if TYPE_CHECKING:
    from gan_bench.losses import GanLoss
    from gan_bench.penalties import Critic, Penalty
    from gan_bench.train.config import GanSpec

__all__ = ["Net", "Batch", "Steps"]


@dataclass
class Net:
    """One network's tensors: parameters and buffers by name (a trial's, or a pack's stacked),
    and `leaves`, the same parameters as the tensors autograd differentiates (requires_grad);
    `params` are their detached aliases, updated in place by the optimizer."""

    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    leaves: dict[str, Tensor]

    @classmethod
    def of(cls, module: nn.Module) -> Net:
        """A module's own tensors (updating them in place updates the module)."""
        leaves: dict[str, Tensor] = dict(module.named_parameters())
        return cls({k: p.detach() for k, p in leaves.items()},
                   {k: b.detach() for k, b in module.named_buffers()}, leaves)

    @classmethod
    def stacked(cls, params: dict[str, Tensor], buffers: dict[str, Tensor]) -> Net:
        """A pack's stacked tensors (torch.func.stack_module_state's)."""
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        return cls({k: v.detach() for k, v in leaves.items()},
                   {k: b.detach() for k, b in buffers.items()}, leaves)


@dataclass
class Batch:
    """What one step of one trial (or of a pack, stacked) reads besides the networks."""

    z: Tensor  # (b, nz) latents
    x_real: Tensor | None = None  # (b, ...) real samples (the D step; the G step's last real batch)
    y_real: Tensor | None = None  # (b,) labels of the real samples (AC-GAN)
    y_fake: Tensor | None = None  # (b,) labels drawn for the fake samples (AC-GAN)
    draws: list[Tensor] = field(default_factory=list)  # the penalty's U(0, 1) draws


# vmap maps over the fields of a Batch like over a dict's values (None fields stay None)
torch.utils._pytree.register_dataclass(Batch)


class _ModuleCritic:
    """A solo trial's D for a penalty: its logits, and per-sample input gradients that
    backpropagate into its parameters (autograd, create_graph)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, x: Tensor) -> Tensor:
        return self.module(x)

    def input_gradients(self, x: Tensor) -> Tensor:
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.module(x).sum(), x, create_graph=True)
        return g.reshape(x.shape[0], -1)


class _FunctionalCritic:
    """A packed trial's D for a penalty (inside vmap): functional_call on its slice, input
    gradients with torch.func.grad, its buffers passed explicitly (BatchNorm updates them)."""

    def __init__(self, module: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor]):
        self.module, self.params, self.buffers = module, params, buffers

    def __call__(self, x: Tensor) -> Tensor:
        return functional_call(self.module, (self.params, self.buffers), (x,))

    def input_gradients(self, x: Tensor) -> Tensor:
        def total(inputs: Tensor, buffers: dict[str, Tensor]) -> Tensor:
            return functional_call(self.module, (self.params, buffers), (inputs,)).sum()

        return grad(total)(x.detach(), self.buffers).reshape(x.shape[0], -1)


def _grad_norm(grads: Sequence[Tensor], packed: bool) -> Tensor:
    """L2 norm over all gradients: 0-dim for one trial, (P,) per trial for a pack."""
    if packed:
        return torch.stack([g.detach().flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()
    return torch.linalg.vector_norm(torch.cat([g.detach().reshape(-1) for g in grads]))


Forward = Callable[..., Any]


class Steps:
    """The D step and the G step of one GAN (spec) for `trials` trials (1: its own modules;
    more: vmap over stacked tensors, G and D being the templates)."""

    loss: GanLoss  # the registry's entries (LOSSES, PENALTIES) for the spec's names
    penalty: Penalty

    def __init__(self, spec: GanSpec, G: nn.Module, D: nn.Module, optimizer: str, trials: int,
                 fused: bool = False, capturable: bool = False) -> None:
        from gan_bench.registry import LOSSES, PENALTIES

        self.G, self.D, self.optimizer, self.packed = G, D, optimizer, trials > 1
        self.update_options = {"fused": fused, "capturable": capturable}  # one trial's update
        self.loss, self.penalty = LOSSES.get(spec.loss), PENALTIES.get(spec.penalty)
        self.loss_params, self.penalty_params = dict(spec.loss_params), dict(spec.penalty_params)
        self.penalty.resolve(self.penalty_params)  # a typo fails here, not at the first step
        self.probabilistic = self.loss.is_probabilistic(self.loss_params)
        self.conditional = getattr(G, "n_classes", None) is not None
        self._vmapped: dict[tuple[str, bool], Callable[..., Any]] = {}

    # ------------------------------------------------------------------ one trial's objectives
    def _d_logits(self, D: Forward, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return D(x, aux=True) if self.conditional else (D(x), None)

    def d_objective(self, G: Forward, D: Forward, critic: Critic, batch: Batch, want_log: bool
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss (with penalty, AC-GAN's class terms) and the D step's logs, one trial."""
        assert batch.x_real is not None  # a D step's batch always holds its real samples
        with torch.no_grad():
            x_fake = G(batch.z, batch.y_fake)
        r, r_cls = self._d_logits(D, batch.x_real)
        f, f_cls = self._d_logits(D, x_fake)
        out = self.loss(r, f, **self.loss_params)
        pen, pen_parts = self.penalty.loss(critic, batch.x_real, x_fake, batch.draws,
                                           **self.penalty_params)
        total = out.d_loss + pen
        if self.conditional:  # AC-GAN: D also classifies real and fake by their labels
            assert r_cls is not None and f_cls is not None  # D(x, aux=True) gives class logits
            assert batch.y_real is not None and batch.y_fake is not None  # drawn when conditional
            total = total + F.cross_entropy(r_cls, batch.y_real) + F.cross_entropy(f_cls, batch.y_fake)
        logs = {"loss_d": total.detach(), "penalty": pen.detach(), **out.parts,
                **{f"penalty_{k}": v for k, v in pen_parts.items()}}
        if want_log:
            logs.update(self._d_outputs(r.detach(), f.detach()))
        return total, logs

    def _d_outputs(self, r: Tensor, f: Tensor) -> dict[str, Tensor]:
        """Mean D(x) and D(G(z)): probabilities when the loss gives them that meaning; then also
        the value of the game V(D, G) = E log D(x) + E log(1 - D(G(z))) on this batch
        (Goodfellow 2014 eq. 1: -log 4 at the global optimum, Theorem 1), from the logits."""
        if not self.probabilistic:
            return {"d_real": r.mean(), "d_fake": f.mean()}
        value = -minimax(r, f).d_loss  # V is minus the minimax D loss (its softplus form)
        return {"d_real": torch.sigmoid(r).mean(), "d_fake": torch.sigmoid(f).mean(), "value": value}

    def g_objective(self, G: Forward, D: Forward, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss against the current D, one trial; a relativistic loss also reads D on the
        trial's last real batch (`batch.x_real`)."""
        x_fake = G(batch.z, batch.y_fake)
        f, f_cls = self._d_logits(D, x_fake)
        if self.loss.needs_real_for_g:
            assert batch.x_real is not None  # the trial's last real batch (Trainer._last_real)
            with torch.no_grad():
                r = self._d_logits(D, batch.x_real)[0]
        else:
            r = f.detach()  # unused by non-relativistic G losses
        total = self.loss(r, f, **self.loss_params).g_loss
        if self.conditional:
            assert f_cls is not None and batch.y_fake is not None  # AC-GAN: drawn labels, class logits
            total = total + F.cross_entropy(f_cls, batch.y_fake)
        return total, {"loss_g": total.detach()}

    # ------------------------------------------------------------------ solo or vmapped
    def _objective(self, which: str, want_log: bool, d: Net, g: Net, batch: Batch
                   ) -> tuple[Tensor, dict[str, Tensor]]:
        """The objective of every trial: (loss, logs), losses 0-dim or (P,)."""
        if not self.packed:
            if which == "d":
                return self.d_objective(self.G, self.D, _ModuleCritic(self.D), batch, want_log)
            return self.g_objective(self.G, self.D, batch)
        key = (which, want_log)
        if key not in self._vmapped:
            def one(dp: dict[str, Tensor], db: dict[str, Tensor], gp: dict[str, Tensor],
                    gb: dict[str, Tensor], b: Batch) -> tuple[Tensor, dict[str, Tensor]]:
                return self._one(which, want_log, dp, db, gp, gb, b)

            self._vmapped[key] = vmap(one)
        return self._vmapped[key](d.leaves, d.buffers, g.leaves, g.buffers, batch)

    def _one(self, which: str, want_log: bool, dp: dict[str, Tensor], db: dict[str, Tensor],
             gp: dict[str, Tensor], gb: dict[str, Tensor], batch: Batch
             ) -> tuple[Tensor, dict[str, Tensor]]:
        """One packed trial's objective, its networks functional on its slice (inside vmap)."""
        def G(z: Tensor, y: Tensor | None) -> Tensor:
            return functional_call(self.G, (gp, gb), (z, y))

        def D(x: Tensor, aux: bool = False) -> Any:
            return functional_call(self.D, (dp, db), (x,), {"aux": aux} if aux else None)

        if which == "d":
            return self.d_objective(G, D, _FunctionalCritic(self.D, dp, db), batch, want_log)
        return self.g_objective(G, D, batch)

    # ------------------------------------------------------------------ the steps
    def d_step(self, d: Net, g: Net, opt: optim.State, hyper: dict[str, Any], batch: Batch,
               want_log: bool, check: Callable[[Tensor], Tensor | None]) -> dict[str, Tensor]:
        """One D update. `check(loss_d)` records divergence and returns the trials that may
        step (None: all, a solo trial); their parameters, optimizer state and buffers change."""
        return self._step("d", d, g, opt, hyper, batch, want_log, check)

    def g_step(self, g: Net, d: Net, opt: optim.State, hyper: dict[str, Any], batch: Batch,
               want_log: bool, check: Callable[[Tensor], Tensor | None]) -> dict[str, Tensor]:
        """One G update against the current D (same contract as `d_step`; D's weights get no
        gradient)."""
        return self._step("g", d, g, opt, hyper, batch, want_log, check)

    def _step(self, which: str, d: Net, g: Net, opt: optim.State, hyper: dict[str, Any],
              batch: Batch, want_log: bool, check: Callable[[Tensor], Tensor | None]
              ) -> dict[str, Tensor]:
        own = d if which == "d" else g
        keep = self._buffers_before(d, g)
        loss, logs = self._objective(which, want_log, d, g, batch)
        grads = torch.autograd.grad(loss.sum(), list(own.leaves.values()))
        if want_log:
            logs = {**logs, f"grad_norm_{which}": _grad_norm(grads, self.packed)}
        active = check(logs[f"loss_{which}"])
        optim.update_(self.optimizer, own.params, dict(zip(own.params, grads)), opt, hyper, active,
                      **self.update_options)
        if which == "d":
            self.penalty.after_d_step_(own.params, active, **self.penalty_params)
        self._restore(keep, active)
        return logs

    def _buffers_before(self, *nets: Net) -> list[tuple[Tensor, Tensor]]:
        """A pack's buffers before a step: a trial that does not step keeps its own."""
        if not self.packed:
            return []
        return [(b, b.clone()) for net in nets for b in net.buffers.values()]

    @staticmethod
    def _restore(keep: list[tuple[Tensor, Tensor]], active: Tensor | None) -> None:
        if active is None:
            return
        for now, before in keep:
            now.copy_(torch.where(active.reshape(-1, *([1] * (now.dim() - 1))), now, before))
