"""Packed trials: P trials of one GAN trained at once, each as it would train alone.

Small GANs leave a GPU idle; P trials of the same architecture x loss x penalty with their own
lr_g, lr_d (or lr_ratio), k, beta1, beta2 and seed fill it. The P parameter sets are stacked
(`torch.func.stack_module_state`) and every forward pass is one `torch.func.vmap` over
`functional_call`; BatchNorm running statistics are stacked buffers updated in place under vmap.
Each trial keeps what makes it itself:

- its initialisation (`torch.manual_seed(seed)` before building, as the Trainer does) and its own
  torch.Generator, seeded like the Trainer's, drawing batch indices and z in the Trainer's order;
- its own Adam (`StackedAdam`, torch.optim.Adam's update with per-trial lr and betas);
- its own k: every iteration runs max(k) D steps and masks the updates (parameters, Adam state,
  BatchNorm statistics) of trials whose k is smaller; their random draws are skipped, so their
  streams stay aligned. Cost: a pack with k = (1, 5) computes 5 D steps for both trials; pack
  trials of equal k where the search allows it;
- its own fate: a trial whose loss turns non-finite is frozen on the device at that iteration
  (its updates masked; the others are untouched, since nothing crosses the trial dimension) and
  is reported at the next log or eval step, with the iteration it happened at. A trial that is
  pruned or finished is masked too (it still costs compute until the pack ends).

Equivalence: batched kernels sum in another order than the Trainer's, so a packed trial equals
its solo run up to float rounding (about 1e-6 relative after a few steps on CPU; GAN dynamics
amplify it over long runs, as any change of kernel would). tests/test_packed.py states the
tolerance.

Not packed (`pack_problems` says so): penalties with a double backward (gradient_penalty, dragan,
r1: autograd.grad inside vmap is not supported), spectral_norm (parametrisations keep their own
power-iteration buffers), conditional (AC-GAN), RMSprop, and trials that differ in anything but
the searched hyperparameters (batch size, log / eval cadence, device).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from gan_bench.data.base import ArrayDataset
from gan_bench.train.callbacks import Callback, CallbackList
from gan_bench.train.config import GanSpec, TrainConfig
from gan_bench.train.speed import SpeedPlan
from gan_bench.train.trainer import TrainingDiverged, TrainResult, resolve_device, to_uint8

__all__ = ["PackedTrainer", "PackedTrial", "StackedAdam", "pack_problems", "pack_size_for",
           "auto_pack_size", "PACKABLE_PENALTIES", "MAX_AUTO_PACK"]

PACKABLE_PENALTIES = ("none", "weight_clip")
MAX_AUTO_PACK = 32  # issue 7: 32 vmapped infogan trials on an H100 were still gaining throughput
_PER_TRIAL = ("lr_g", "lr_d", "lr_ratio", "k", "beta1", "beta2", "seed", "iterations", "epochs")


def pack_problems(spec: GanSpec, cfgs: Sequence[TrainConfig]) -> list[str]:
    """Why these trials cannot share a pack ([] when they can)."""
    problems = []
    if not cfgs:
        problems.append("no trials")
    if spec.penalty not in PACKABLE_PENALTIES:
        problems.append(f"penalty {spec.penalty} takes a double backward, which vmap does not support")
    for option in ("spectral_norm", "conditional"):
        if spec.arch_options.get(option):
            problems.append(f"{option} is not packed yet")
    if any(c.optimizer != "adam" for c in cfgs):
        problems.append("only Adam is packed")
    shared = [f for f in TrainConfig.__dataclass_fields__ if f not in _PER_TRIAL]
    for f in shared:
        if len({repr(getattr(c, f)) for c in cfgs}) > 1:
            problems.append(f"trials differ in {f} (only {', '.join(_PER_TRIAL)} may differ)")
    return problems


def pack_size_for(free_bytes: int, base_bytes: int, per_trial_bytes: int,
                  cap: int = MAX_AUTO_PACK, headroom: float = 0.5) -> int:
    """The largest P in [1, cap] with base + P * per_trial <= headroom * free (half of the free
    memory by default: evaluation, Inception features and the allocator's slack need the rest)."""
    if per_trial_bytes <= 0:
        return cap
    return max(1, min(cap, int((headroom * free_bytes - base_bytes) // per_trial_bytes)))


def auto_pack_size(spec: GanSpec, cfg: TrainConfig, data: ArrayDataset,
                   cap: int = MAX_AUTO_PACK) -> int:
    """`pack: auto`: 1 off cuda; on cuda, P from the peak memory of 2-iteration packs of 1 and 2
    trials (their difference is one trial's share) and the free memory now."""
    device = resolve_device(cfg.device)
    if device.type != "cuda" or pack_problems(spec, [cfg]):
        return 1
    peaks = []
    for p in (1, 2):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        probe = [cfg.with_(iterations=2, epochs=None, eval_every=0, seed=i) for i in range(p)]
        PackedTrainer(spec, probe, data).fit()
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    torch.cuda.empty_cache()
    per_trial = peaks[1] - peaks[0]
    return pack_size_for(torch.cuda.mem_get_info(device)[0], peaks[0] - per_trial, per_trial, cap)


def _per_trial(values: Tensor, like: Tensor) -> Tensor:
    """(P,) -> (P, 1, ..., 1) broadcasting against a stacked tensor `like` (P, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


class StackedAdam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) on stacked tensors (P, ...) with a
    per-trial lr, beta1 and beta2 (P,), and a mask (P,) bool of the trials that step now (the
    others keep parameters, moments and step count). Bias corrections are computed in float64
    and rounded to the parameters' dtype, as torch's single-tensor Adam does with Python floats."""

    def __init__(self, params: dict[str, Tensor], lr: Tensor, beta1: Tensor, beta2: Tensor,
                 eps: float = 1e-8) -> None:
        self.params, self.eps = params, eps  # eps 1e-8: torch.optim.Adam's default
        self.lr, self.beta1, self.beta2 = (t.double() for t in (lr, beta1, beta2))
        self.steps = torch.zeros_like(self.lr)  # per-trial step count
        self.m = {k: torch.zeros_like(p) for k, p in params.items()}
        self.v = {k: torch.zeros_like(p) for k, p in params.items()}

    @torch.no_grad()
    def step(self, grads: dict[str, Tensor], mask: Tensor) -> None:
        steps = self.steps + mask.double()
        bc1 = 1 - self.beta1 ** steps.clamp(min=1)
        bc2_sqrt = (1 - self.beta2 ** steps.clamp(min=1)) ** 0.5
        step_size = self.lr / bc1
        for name, p in self.params.items():
            g, dt = grads[name], p.dtype
            keep = _per_trial(mask, p)
            m = self.m[name].lerp(g, _per_trial(1 - self.beta1, p).to(dt))
            v = self.v[name] * _per_trial(self.beta2, p).to(dt) + _per_trial(1 - self.beta2, p).to(dt) * g * g
            denom = v.sqrt() / _per_trial(bc2_sqrt, p).to(dt) + self.eps
            new = p + (-_per_trial(step_size, p).to(dt)) * m / denom
            self.m[name] = torch.where(keep, m, self.m[name])
            self.v[name] = torch.where(keep, v, self.v[name])
            p.copy_(torch.where(keep, new, p))
        self.steps = steps


class PackedTrial:
    """One trial of a pack, seen by callbacks as a Trainer: `cfg`, `spec`, `data`, `step`,
    `history`, `generate`, `request_stop`, `resolved_config`, `G` (a materialised copy)."""

    def __init__(self, pack: "PackedTrainer", index: int, cfg: TrainConfig,
                 callbacks: Sequence[Callback]) -> None:
        self.pack, self.index, self.cfg = pack, index, cfg
        self.callbacks = CallbackList(callbacks)
        self.total_iterations = cfg.total_iterations(len(pack.data))
        self.step = self.d_steps = 0
        self.history: list[dict[str, float]] = []
        self.status = "running"  # then "completed", "stopped" or "diverged"
        self._stop_reason = ""
        self.error: TrainingDiverged | None = None
        self.result: TrainResult | None = None

    spec = property(lambda self: self.pack.spec)
    data = property(lambda self: self.pack.data)
    device = property(lambda self: self.pack.device)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason or "stop requested"

    def resolved_config(self) -> dict[str, Any]:
        return {"gan": self.spec.to_dict(), "train": self.cfg.resolved(len(self.data)),
                "data": {"dataset": self.data.name, "split": self.data.split,
                         "n": len(self.data), "source": self.data.source},
                "speed": self.pack.speed_tags()}

    def state(self, net: str) -> dict[str, Tensor]:
        """This trial's parameters and buffers of "G" or "D" (detached slices)."""
        params, buffers = self.pack.nets[net]
        return {k: v[self.index].detach() for k, v in {**params, **buffers}.items()}

    @property
    def G(self) -> torch.nn.Module:
        g = copy.deepcopy(self.pack.templates["G"])
        g.load_state_dict(self.state("G"))
        return g

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, batch_size: int = 500,
                 labels: Tensor | None = None) -> Tensor:
        """As Trainer.generate: n samples from fixed z, G in eval mode; uint8 images or points."""
        g = self.pack.templates["G"]
        state, gen, out = self.state("G"), torch.Generator(device=self.device).manual_seed(seed), []
        from gan_bench.metrics.features import float32_math

        g.eval()
        try:
            with float32_math():  # strict fp32, as Trainer.generate
                for start in range(0, n, batch_size):
                    z = g.sample_z(min(batch_size, n - start), generator=gen, device=self.device)
                    x = functional_call(g, state, (z,))
                    out.append((to_uint8(x) if self.data.is_image else x.float()).cpu())
        finally:
            g.train()
        return torch.cat(out) if out else torch.empty(0)


class PackedTrainer:
    """Trains `cfgs` (one TrainConfig per trial) of one `spec` together; `fit` -> one TrainResult
    per trial. `callbacks[i]` are trial i's (they see a PackedTrial). A diverged trial's result
    has status "diverged" and its TrainingDiverged in `trials[i].error`; fit never raises it."""

    def __init__(self, spec: GanSpec, cfgs: Sequence[TrainConfig], data: ArrayDataset,
                 callbacks: Sequence[Sequence[Callback]] = ()) -> None:
        from gan_bench.catalogue import load_builtins
        from gan_bench.models.base import build_models
        from gan_bench.registry import LOSSES, PENALTIES

        load_builtins()
        problems = pack_problems(spec, cfgs)
        if problems:
            raise ValueError("cannot pack these trials: " + "; ".join(problems))
        self.spec, self.cfgs = spec, list(cfgs)
        self.device = resolve_device(cfgs[0].device)
        self.data = data.to(self.device)
        self.loss, self.penalty = LOSSES.get(spec.loss), PENALTIES.get(spec.penalty)
        self.loss_params, self.penalty_params = dict(spec.loss_params), dict(spec.penalty_params)
        nets = {"G": [], "D": []}
        for cfg in cfgs:
            torch.manual_seed(cfg.seed)  # model init, as the Trainer
            g, d = build_models(spec.arch, data.sample_shape, **spec.arch_options)
            nets["G"].append(g.to(self.device))
            nets["D"].append(d.to(self.device))
        self.templates = {k: copy.deepcopy(v[0]) for k, v in nets.items()}
        self.nets = {k: stack_module_state(v) for k, v in nets.items()}  # (params, buffers)
        self.gens = [torch.Generator(device=self.device).manual_seed(c.seed) for c in cfgs]
        self.k = [c.k for c in cfgs]
        tensor = lambda values: torch.tensor(values, dtype=torch.float64, device=self.device)  # noqa: E731
        betas = tensor([c.beta1 for c in cfgs]), tensor([c.beta2 for c in cfgs])
        self.opt = {"G": StackedAdam(self.nets["G"][0], tensor([c.lr_g for c in cfgs]), *betas),
                    "D": StackedAdam(self.nets["D"][0], tensor([c.resolved_lr_d for c in cfgs]), *betas)}
        self.trials = [PackedTrial(self, i, c, callbacks[i] if i < len(callbacks) else ())
                       for i, c in enumerate(cfgs)]
        p = len(cfgs)
        self.alive = torch.ones(p, dtype=torch.bool, device=self.device)  # not diverged
        self.first_bad = torch.zeros(p, dtype=torch.int64, device=self.device)  # 0: finite so far
        self.bad_what = torch.zeros(p, dtype=torch.int64, device=self.device)  # 0 loss_d, 1 loss_g
        self.step = 0
        self._last_real: Tensor | None = None  # (P, batch, ...) for relativistic G losses
        # TF32 / bf16 as in the Trainer; losses are read at log steps only; no graph capture yet
        self.speed = dataclasses.replace(SpeedPlan.make(spec, cfgs[0], self.device), cuda_graphs=False,
                                         graphs_off="packed trials are not captured", fused_adam=False)
        self._fwd = {k: vmap(self._functional(k)) for k in ("G", "D")}
        self._losses = vmap(self._loss_fn)

    def speed_tags(self) -> dict[str, str]:
        return {**self.speed.as_tags(), "speed.fast": "true", "speed.packed_trials": str(len(self.cfgs))}

    # ------------------------------------------------------------------ functional pieces
    def _functional(self, net: str) -> Callable[..., Tensor]:
        module = self.templates[net]
        return lambda params, buffers, x: functional_call(module, (params, buffers), (x,))

    def _loss_fn(self, r: Tensor, f: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        out = self.loss(r, f, **self.loss_params)
        return out.d_loss, out.g_loss, dict(out.parts)

    def _forward(self, net: str, x: Tensor) -> Tensor:
        params, buffers = self.nets[net]
        return self._fwd[net](params, buffers, x)

    # ------------------------------------------------------------------ random draws per trial
    def _draw(self, mask: list[bool], real: bool) -> tuple[Tensor | None, Tensor]:
        """Per-trial draws in the Trainer's order (indices, then z); skipped where not `mask`."""
        b, g = self.cfgs[0].batch_size, self.templates["G"]
        idx = torch.zeros(len(mask), b, dtype=torch.int64, device=self.device)
        z = torch.zeros(len(mask), b, g.nz, device=self.device)
        for i, on in enumerate(mask):
            if on:
                if real:
                    idx[i] = self.data.sample_indices(b, self.gens[i])
                z[i] = g.sample_z(b, generator=self.gens[i], device=self.device)
        if not real:
            return None, z
        x = self.data.data[idx]
        if self.data.is_image:
            x = x.float().div_(127.5).sub_(1.0)
        return x, z

    def _keep_buffers(self, mask: Tensor) -> Callable[[], None]:
        """Snapshot BatchNorm buffers; the returned function undoes the updates of masked trials."""
        saved = {n: {k: b.clone() for k, b in self.nets[n][1].items()} for n in ("G", "D")}

        def restore() -> None:
            for n, old in saved.items():
                for k, b in self.nets[n][1].items():
                    b.copy_(torch.where(_per_trial(mask, b), b, old[k]))
        return restore

    def _check(self, what: int, loss: Tensor, mask: Tensor) -> Tensor:
        """Freeze trials whose loss is not finite (on the device); the mask of those that step."""
        bad = mask & ~torch.isfinite(loss)
        new = bad & (self.first_bad == 0)
        self.first_bad = torch.where(new, torch.full_like(self.first_bad, self.step), self.first_bad)
        self.bad_what = torch.where(new, what, self.bad_what)
        self.alive &= ~bad
        return mask & ~bad

    # ------------------------------------------------------------------ the steps
    def d_step(self, mask_host: list[bool], want_log: bool) -> dict[str, Tensor]:
        """One D update of the trials in `mask_host` (and alive); logs are (P,) tensors."""
        mask = torch.tensor(mask_host, device=self.device) & self.alive
        restore = self._keep_buffers(mask)
        x_real, z = self._draw(mask_host, real=True)
        with torch.no_grad():
            x_fake = self._forward("G", z)
        r, f = self._forward("D", x_real), self._forward("D", x_fake)
        d_loss, _, parts = self._losses(r, f)
        params = self.nets["D"][0]
        grads = torch.autograd.grad(d_loss.sum(), list(params.values()))
        mask = self._check(0, d_loss, mask)
        self.opt["D"].step(dict(zip(params, grads)), mask)
        restore()
        if self.spec.penalty == "weight_clip":
            clip = self.penalty.resolve(self.penalty_params)["clip"]
            with torch.no_grad():
                for p in params.values():
                    p.clamp_(-clip, clip)
        # each trial's own last real batch (trials with a smaller k drew theirs in an earlier D step)
        drew = torch.tensor(mask_host, device=self.device)
        self._last_real = x_real if self._last_real is None else torch.where(
            _per_trial(drew, x_real), x_real, self._last_real)
        logs = {"loss_d": d_loss.detach(), "penalty": torch.zeros_like(d_loss), **parts}
        if want_log:
            logs["grad_norm_d"] = _norms(grads)
            logs.update(self._d_outputs(r.detach(), f.detach()))
        return logs

    def _d_outputs(self, r: Tensor, f: Tensor) -> dict[str, Tensor]:
        if self.loss.is_probabilistic(self.loss_params):
            r, f = torch.sigmoid(r), torch.sigmoid(f)
        return {"d_real": r.mean(1), "d_fake": f.mean(1)}

    def g_step(self, mask_host: list[bool], want_log: bool) -> dict[str, Tensor]:
        mask = torch.tensor(mask_host, device=self.device) & self.alive
        restore = self._keep_buffers(mask)
        _, z = self._draw(mask_host, real=False)
        f = self._forward("D", self._forward("G", z))
        if getattr(self.loss, "needs_real_for_g", False):
            with torch.no_grad():
                r = self._forward("D", self._last_real)
        else:
            r = f.detach()
        _, g_loss, _ = self._losses(r, f)
        params = self.nets["G"][0]
        grads = torch.autograd.grad(g_loss.sum(), list(params.values()))
        mask = self._check(1, g_loss, mask)
        self.opt["G"].step(dict(zip(params, grads)), mask)
        restore()
        logs = {"loss_g": g_loss.detach()}
        if want_log:
            logs["grad_norm_g"] = _norms(grads)
        return logs

    # ------------------------------------------------------------------ the loop
    def fit(self) -> list[TrainResult]:
        start = time.perf_counter()
        for t in self.trials:
            t.callbacks.on_train_start(t)
        while any(t.running for t in self.trials):
            self._iteration(start)
        return [t.result for t in self.trials]  # type: ignore[misc]

    def _iteration(self, start: float) -> None:
        self.step += 1
        running = [t.running for t in self.trials]
        logs_at = [t.running and (self.step % t.cfg.log_every == 0 or self.step == t.total_iterations)
                   for t in self.trials]
        d_logs: dict[str, Tensor] = {}
        with self.speed.train_context():
            for i in range(max(k for k, on in zip(self.k, running) if on)):
                last = [on and i == k - 1 for on, k in zip(running, self.k)]
                d_logs = _merge(d_logs, self.d_step([on and i < k for on, k in zip(running, self.k)],
                                                    any(logs_at)), last)
            logs = {**d_logs, **self.g_step(running, any(logs_at))}
        for t, on in zip(self.trials, running):
            if on:
                t.step, t.d_steps = self.step, t.d_steps + t.cfg.k
        self._after_iteration(running, logs_at, logs, start)

    def _after_iteration(self, running: list[bool], logs_at: list[bool],
                         logs: dict[str, Tensor], start: float) -> None:
        evals_at = [on and (bool(t.cfg.eval_every and self.step % t.cfg.eval_every == 0)
                            or self.step == t.total_iterations) for t, on in zip(self.trials, running)]
        if not any(logs_at) and not any(evals_at):
            return
        first_bad, bad_what, finite = torch.stack(
            [self.first_bad, self.bad_what, self._finite_params().long()]).tolist()  # one sync
        values = torch.stack([v.detach().float() for v in logs.values()]).tolist() if any(logs_at) else []
        for i, t in enumerate(self.trials):
            if not running[i]:
                continue
            if first_bad[i]:
                t.error = TrainingDiverged(first_bad[i], ("loss_d", "loss_g")[bad_what[i]], self.step)
            elif logs_at[i] and not finite[i]:
                t.error = TrainingDiverged(self.step, self._bad_parameter(i))
            if t.error is not None:
                self._finish(t, "diverged", start)
                continue
            if logs_at[i]:
                diag = {k: v[i] for k, v in zip(logs, values)}
                diag.update(lr_g=t.cfg.lr_g, lr_d=t.cfg.resolved_lr_d)
                t.callbacks.on_log(t, self.step, diag)
            if evals_at[i]:
                metrics = t.callbacks.on_eval(t, self.step)
                t.history.append({"step": float(self.step), **{k: float(v) for k, v in metrics.items()}})
            if t._stop_reason:
                self._finish(t, "stopped", start)
            elif self.step >= t.total_iterations:
                self._finish(t, "completed", start)

    def _finish(self, t: PackedTrial, status: str, start: float) -> None:
        t.status = status
        final = dict(t.history[-1]) if t.history and status != "diverged" else {}
        final.pop("step", None)
        t.result = TrainResult(status, t.step, t.d_steps, time.perf_counter() - start,
                               t.history, final, t._stop_reason)
        t.callbacks.on_train_end(t, t.result)

    def _finite_params(self) -> Tensor:
        """(P,) bool: every parameter of trial i is finite."""
        flags = [torch.isfinite(p).flatten(1).all(1) for n in ("G", "D")
                 for p in self.nets[n][0].values()]
        return torch.stack(flags).all(0)

    def _bad_parameter(self, i: int) -> str:
        for n in ("G", "D"):
            for name, p in self.nets[n][0].items():
                if not bool(torch.isfinite(p[i]).all()):
                    return f"parameter {n}.{name}"
        return "a parameter"


def _norms(grads: Sequence[Tensor]) -> Tensor:
    """Per-trial L2 norm over all stacked gradients (P, ...) -> (P,)."""
    return torch.stack([g.detach().flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()


def _merge(old: dict[str, Tensor], new: dict[str, Tensor], take: list[bool]) -> dict[str, Tensor]:
    """Per trial, the logs of its own last D step (`take`), else what it had."""
    if not old:
        return new
    mask = torch.tensor(take, device=next(iter(new.values())).device)
    return {k: torch.where(mask, v, old[k]) if k in old else v for k, v in new.items()}
