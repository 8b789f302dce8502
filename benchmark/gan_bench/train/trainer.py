"""The one generic GAN trainer (Goodfellow et al. 2014, Algorithm 1, with k D steps per G step).

Every combination of architecture x loss x penalty trains through this loop. It owns learning
rates, k, evaluation cadence, checkpoints and divergence checks; tracking and pruning are
callbacks. Data stay resident on the device and batches are drawn by random index there.

`TrainConfig.fast` (on by default on cuda) defers the per-step finite checks to log steps and
may replay each iteration from a CUDA graph; train/speed.py explains what changes and what not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from gan_bench.data.base import ArrayDataset
from gan_bench.train.callbacks import Callback, CallbackList
from gan_bench.train.config import GanSpec, TrainConfig
from gan_bench.train.speed import DivergenceFlags, IterationGraph, SpeedPlan

log = logging.getLogger("gan_bench.train")

__all__ = ["Trainer", "TrainResult", "TrainingDiverged", "resolve_device", "to_uint8"]


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN/Inf; nothing after `step` is valid.

    `detected_at`: the iteration whose check found it, later than `step` when the fast path
    deferred the check to a log step (None when found at once).
    """

    def __init__(self, step: int, what: str, detected_at: int | None = None) -> None:
        late = f" (found at the check after iteration {detected_at})" if detected_at not in (None, step) else ""
        super().__init__(f"training diverged at iteration {step}: {what} is not finite{late}")
        self.step = step
        self.what = what
        self.detected_at = step if detected_at is None else detected_at


@dataclass
class TrainResult:
    status: str  # "completed", "stopped" (a callback asked) or "diverged"
    iterations: int  # G steps done
    d_steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # eval metrics with "step"
    final_metrics: dict[str, float] = field(default_factory=dict)
    stop_reason: str = ""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255] (round to nearest)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


def _grad_norm(params: list[torch.nn.Parameter]) -> torch.Tensor:
    grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.cat(grads))


class Trainer:
    """Trains one GAN spec with one TrainConfig on one dataset split."""

    def __init__(self, spec: GanSpec, cfg: TrainConfig, data: ArrayDataset,
                 callbacks: list[Callback] | tuple[Callback, ...] = ()) -> None:
        from gan_bench.catalogue import load_builtins
        from gan_bench.models.base import build_models
        from gan_bench.registry import LOSSES, PENALTIES

        load_builtins()
        self.spec, self.cfg = spec, cfg
        self.device = resolve_device(cfg.device)
        self.data = data.to(self.device)
        self.loss = LOSSES.get(spec.loss)
        self.penalty = PENALTIES.get(spec.penalty)
        self.loss_params = dict(spec.loss_params)
        self.penalty_params = dict(spec.penalty_params)
        torch.manual_seed(cfg.seed)  # model init
        self.G, self.D = build_models(spec.arch, data.sample_shape, **spec.arch_options)
        self.G.to(self.device)
        self.D.to(self.device)
        self.conditional = bool(spec.arch_options.get("conditional", False))
        self.n_classes = int(spec.arch_options.get("n_classes", 10))
        pack = int(getattr(self.D, "pack", 1))
        if cfg.batch_size % pack:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by pack {pack}")
        self.speed = SpeedPlan.make(spec, cfg, self.device)
        self.opt_g = self._optimizer(self.G.parameters(), cfg.lr_g)
        self.opt_d = self._optimizer(self.D.parameters(), cfg.resolved_lr_d)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        # fast path: the iteration counter and the first non-finite loss live on the device
        self._step_dev = torch.zeros((), dtype=torch.int64, device=self.device)
        self._flags = DivergenceFlags(("loss_d", "loss_g"), self.device)
        self._graph: IterationGraph | None = None
        self.callbacks = CallbackList(callbacks)
        self.total_iterations = cfg.total_iterations(len(data))
        self.step = 0  # G steps done
        self.d_steps = 0
        self.history: list[dict[str, float]] = []
        self._stop_reason = ""
        self.checkpoint_dir: Path | None = None
        self.probabilistic = self._is_probabilistic()

    # ------------------------------------------------------------------ setup helpers
    def _optimizer(self, params: Any, lr: float) -> torch.optim.Optimizer:
        extra = self.speed.optimizer_kwargs(self.cfg.optimizer)
        if self.cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, **extra)
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, self.cfg.beta2), **extra)

    def _is_probabilistic(self) -> bool:
        fn = getattr(self.loss, "is_probabilistic", None)
        return bool(fn(self.loss_params)) if callable(fn) else bool(getattr(self.loss, "probabilistic", False))

    def resolved_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this run: spec, hyperparameters, data; and the speed
        settings as applied (`speed`, not compared on resume)."""
        return {"gan": self.spec.to_dict(), "train": self.cfg.resolved(len(self.data)),
                "data": {"dataset": self.data.name, "split": self.data.split, "n": len(self.data),
                         "source": self.data.source},
                "speed": self.speed.as_tags()}

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after the current iteration (pruning, wall-clock caps)."""
        self._stop_reason = reason or "stop requested"

    # ------------------------------------------------------------------ one step of each
    def _fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(self.n_classes, (n,), device=self.device, generator=self.gen)

    def _sample_fake(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = self.G.sample_z(n, generator=self.gen, device=self.device)
        y = self._fake_labels(n)
        return self.G(z, y), y

    def _d_logits(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.conditional:
            return self.D.forward_aux(x)
        return self.D(x), None

    def d_step(self, want_log: bool) -> dict[str, torch.Tensor]:
        """One discriminator update on a real batch and a (detached) fake batch."""
        b = self.cfg.batch_size
        x_real, y_real = self.data.batch(self.data.sample_indices(b, self.gen))
        with torch.no_grad():
            x_fake, y_fake = self._sample_fake(b)
        r, r_cls = self._d_logits(x_real, y_real)
        f, f_cls = self._d_logits(x_fake, y_fake)
        out = self.loss(r, f, **self.loss_params)
        pen, pen_parts = self.penalty.loss(self.D, x_real, x_fake, generator=self.gen, **self.penalty_params)
        total = out.d_loss + pen
        if self.conditional:  # AC-GAN: D also classifies real and fake by their labels
            total = total + F.cross_entropy(r_cls, y_real) + F.cross_entropy(f_cls, y_fake)
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        logs = {"loss_d": total.detach(), "penalty": pen.detach(), **out.parts,
                **{f"penalty_{k}": v for k, v in pen_parts.items()}}
        if want_log:
            logs["grad_norm_d"] = _grad_norm(list(self.D.parameters()))
            logs.update(self._d_outputs(r.detach(), f.detach()))
        self.opt_d.step()
        self.penalty.after_d_step(self.D, **self.penalty_params)
        self.d_steps += 1
        self._last_real = (x_real, y_real)
        return logs

    def _d_outputs(self, r: torch.Tensor, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean D(x) and D(G(z)): probabilities when the loss gives them that meaning."""
        if self.probabilistic:
            return {"d_real": torch.sigmoid(r).mean(), "d_fake": torch.sigmoid(f).mean()}
        return {"d_real": r.mean(), "d_fake": f.mean()}

    def g_step(self, want_log: bool) -> dict[str, torch.Tensor]:
        """One generator update against the current D."""
        x_fake, y_fake = self._sample_fake(self.cfg.batch_size)
        f, f_cls = self._d_logits(x_fake, y_fake)
        if getattr(self.loss, "needs_real_for_g", False):
            with torch.no_grad():
                r = self._d_logits(*self._last_real)[0]
        else:
            r = f.detach()  # unused by non-relativistic G losses
        out = self.loss(r, f, **self.loss_params)
        total = out.g_loss
        if self.conditional:
            total = total + F.cross_entropy(f_cls, y_fake)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward(inputs=list(self.G.parameters()))  # D's weight gradients are not needed
        logs = {"loss_g": total.detach()}
        if want_log:
            logs["grad_norm_g"] = _grad_norm(list(self.G.parameters()))
        self.opt_g.step()
        return logs

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        """Train until the budget, a stop request or a divergence; callbacks see every phase."""
        start = time.perf_counter()
        self.G.train()
        self.D.train()
        self._step_dev.fill_(self.step)
        self._flags.reset()
        self.callbacks.on_train_start(self)
        status = "completed"
        try:
            while self.step < self.total_iterations and not self._stop_reason:
                self._iteration()
            if self.step >= self.total_iterations and (not self.history or self.history[-1]["step"] != self.step):
                self._evaluate()  # the objective at the end of training
            if self._stop_reason:
                status = "stopped"
        except TrainingDiverged:
            result = TrainResult("diverged", self.step, self.d_steps, time.perf_counter() - start,
                                 self.history, {}, "")
            self.callbacks.on_train_end(self, result)
            raise
        final = dict(self.history[-1]) if self.history else {}
        final.pop("step", None)
        result = TrainResult(status, self.step, self.d_steps, time.perf_counter() - start,
                             self.history, final, self._stop_reason)
        self.callbacks.on_train_end(self, result)
        return result

    def _iteration(self) -> None:
        next_step = self.step + 1
        last = next_step == self.total_iterations
        want_log = next_step % self.cfg.log_every == 0 or last
        ev, ck = self.cfg.eval_every, self.cfg.checkpoint_every
        want_eval = bool(ev and next_step % ev == 0) or last
        want_ckpt = self.checkpoint_dir is not None and bool(ck and next_step % ck == 0)
        with self.speed.train_context():
            logs = self._train_steps(next_step, want_log)
        self.step = next_step
        if self.speed.fast and (want_log or want_eval or want_ckpt):
            self._check_deferred(next_step)  # nothing diverged is logged, evaluated or saved
        if want_log:
            self._check_parameters(next_step)
            self.callbacks.on_log(self, next_step, self._diagnostics(logs))
        if want_eval:
            self._evaluate()
        if want_ckpt:
            self.save_checkpoint(self.checkpoint_dir / "last.pt")  # type: ignore[operator]

    def _train_steps(self, step: int, want_log: bool) -> dict[str, torch.Tensor]:
        """k D steps and one G step: plain (host check after each), fast, or a graph replay."""
        if self.speed.cuda_graphs:
            if self._graph is None:
                self._graph = IterationGraph(lambda: self._fast_body(True), (self.gen,),
                                             self._grads_to_none, self.device)
            before = self.d_steps
            logs = self._graph.run()
            self.d_steps = before + self.cfg.k  # a replay runs no Python; a capture runs it once
            return logs
        if self.speed.fast:
            return self._fast_body(want_log)
        return self._steps(want_log, lambda name, v: self._check_finite(step, {name: v}))

    def _fast_body(self, want_log: bool) -> dict[str, torch.Tensor]:
        self._step_dev.add_(1)
        return self._steps(want_log, lambda name, v: self._flags.update(name, v, self._step_dev))

    def _steps(self, want_log: bool, check: Callable[[str, torch.Tensor], None]) -> dict[str, torch.Tensor]:
        d_logs: dict[str, torch.Tensor] = {}
        for i in range(self.cfg.k):
            d_logs = self.d_step(want_log and i == self.cfg.k - 1)
            check("loss_d", d_logs["loss_d"])
        g_logs = self.g_step(want_log)
        check("loss_g", g_logs["loss_g"])
        return {**d_logs, **g_logs}

    def _grads_to_none(self) -> None:
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)

    def _diagnostics(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """The step's logs as floats (one host sync), plus both learning rates."""
        values = torch.stack([v.detach().float().reshape(()) for v in logs.values()]).tolist()
        diag = dict(zip(logs, values))
        diag.update(lr_g=self.opt_g.param_groups[0]["lr"], lr_d=self.opt_d.param_groups[0]["lr"])
        return diag

    def _check_finite(self, step: int, values: dict[str, torch.Tensor]) -> None:
        # the plain path: one host sync per step (the fast path defers these, see speed.py)
        for name, v in values.items():
            if not bool(torch.isfinite(v).all()):
                raise TrainingDiverged(step, name)

    def _check_deferred(self, step: int) -> None:
        bad = self._flags.check()
        if bad is not None:
            raise TrainingDiverged(bad[0], bad[1], detected_at=step)

    def _check_parameters(self, step: int) -> None:
        named = [(f"{net_name}.{pname}", p) for net_name, net in (("G", self.G), ("D", self.D))
                 for pname, p in net.named_parameters()]
        finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()  # one sync
        for (name, _), ok in zip(named, finite):
            if not ok:
                raise TrainingDiverged(step, f"parameter {name}")

    def _evaluate(self) -> None:
        metrics = self.callbacks.on_eval(self, self.step)
        self.history.append({"step": float(self.step), **{k: float(v) for k, v in metrics.items()}})
        if self.checkpoint_dir is not None and not self.cfg.checkpoint_every:
            self.save_checkpoint(self.checkpoint_dir / "last.pt")

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, batch_size: int = 500,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        """n samples from fixed z (seeded): uint8 images (n, C, H, W) or float32 points (n, 2).

        G runs in eval mode (BatchNorm running statistics), as at evaluation time in
        compare_gan; the training mode is restored afterwards.
        """
        from gan_bench.metrics.features import float32_math

        was_training = self.G.training
        self.G.eval()
        gen = torch.Generator(device=self.device).manual_seed(seed)
        out = []
        # strict fp32, as the extractors: torch leaves cuDNN's TF32 on for convolutions, and the
        # samples are part of what a protocol's `precision: fp32-strict` states
        try:
            with float32_math():
                for start in range(0, n, batch_size):
                    m = min(batch_size, n - start)
                    z = self.G.sample_z(m, generator=gen, device=self.device)
                    y = None
                    if self.conditional:
                        y = (labels[start:start + m].to(self.device) if labels is not None
                             else torch.arange(start, start + m, device=self.device) % self.n_classes)
                    x = self.G(z, y)
                    out.append((to_uint8(x) if self.data.is_image else x.float()).cpu())
        finally:
            self.G.train(was_training)
        return torch.cat(out) if out else torch.empty(0)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = {
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "step": self.step, "d_steps": self.d_steps,
            "rng_cpu": torch.get_rng_state(), "rng_gen": self.gen.get_state(),
            "config": self.resolved_config(), "history": self.history,
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_checkpoint(self, path: str | Path) -> Path:
        """G, D, both optimisers, step, RNG states and the resolved config; atomic write."""
        from gan_bench.cache import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue the same run: same seed -> on CPU the result equals an uninterrupted run."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved, mine = state["config"], self.resolved_config()
        if saved["gan"] != mine["gan"] or saved["train"] != mine["train"]:
            raise ValueError(f"checkpoint {path} was written for a different configuration")
        self._graph = None  # the optimisers' state tensors are replaced: capture again
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.d_steps = int(state["step"]), int(state["d_steps"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        self.gen.set_state(state["rng_gen"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
        self.history = [dict(h) for h in state["history"]]
