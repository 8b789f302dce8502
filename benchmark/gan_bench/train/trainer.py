"""The one trainer (Goodfellow et al. 2014, Algorithm 1, with k D steps per G step), for one trial
or for a pack of P trials of one GAN trained at once.

Every combination of architecture x loss x penalty trains through this loop, and one loop serves
P >= 1 trials: it owns the learning rates, k, the log / eval / checkpoint cadence, divergence and
the random draws; the D and G steps are train/step.py's (called directly for one trial, under
vmap for a pack); tracking and pruning are callbacks. Data stay resident on the device and
batches are drawn by random index there.

Each trial of a pack keeps what makes it itself: its initialisation (`torch.manual_seed(seed)`
before building, as alone), its own torch.Generator drawing batch indices, z, labels and the
penalty's draws in a solo trial's order, its own optimizer hyperparameters, its own k (each
iteration runs max(k) D steps and masks the updates of trials whose k is smaller; their draws
are skipped so their streams stay aligned), and its own fate: a trial whose loss turns
non-finite is frozen on the device (its updates masked) and reported at the next log or eval
step with the iteration it happened at; a pruned or finished trial is masked too.

Divergence is one status, solo or packed: `fit` returns a TrainResult with status "diverged"
and the TrainingDiverged in `result.error`. Without the fast path (the CPU default) a solo
trial's losses are checked after every step; with it, and in packs, at log and eval steps.

Equivalence: a packed trial runs the same functions as its solo run; batched kernels sum in
another order, so the two agree to float rounding (1e-9 relative in float64 after 20
iterations, tests/test_packed.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor
from torch.func import stack_module_state

from gan_bench.data.base import ArrayDataset
from gan_bench.devices import resolve_device
from gan_bench.train import optim
from gan_bench.train.callbacks import Callback, CallbackList
from gan_bench.train.config import GanSpec, TrainConfig
from gan_bench.train.packed import MAX_AUTO_PACK, pack_problems, pack_size_for
from gan_bench.train.results import TrainingDiverged, TrainResult
from gan_bench.train.sampling import generate, to_uint8
from gan_bench.train.speed import DivergenceFlags, IterationGraph, SpeedPlan
from gan_bench.train.step import Batch, Net, Steps

if TYPE_CHECKING:
    from gan_bench.models.base import Discriminator, Generator

__all__ = ["Trainer", "PackedTrainer", "Trial", "TrainResult", "TrainingDiverged",
           "resolve_device", "to_uint8", "auto_pack_size"]

CHECKPOINT_FORMAT = 2  # per-trial states (format 1: one trial's torch.optim state dicts)


class Trial:
    """One trial of a Trainer, as its callbacks and the runner see it: `cfg`, `spec`, `data`,
    `device`, `step`, `d_steps`, `history`, `total_iterations`, `status`, `error`, `result`,
    `request_stop`, `resolved_config`, `generate`, and `G` / `D` (a solo trial's own modules; a
    packed trial's, materialised from its slice of the pack)."""

    def __init__(self, trainer: Trainer, index: int, cfg: TrainConfig,
                 callbacks: Sequence[Callback]) -> None:
        self.trainer, self.index, self.cfg = trainer, index, cfg
        self.callbacks = CallbackList(list(callbacks))
        self.total_iterations = cfg.total_iterations(len(trainer.data))
        self.step = self.d_steps = 0
        self.history: list[dict[str, float]] = []
        self.status = "running"  # then "completed", "stopped" or "diverged"
        self._stop_reason = ""
        self.error: TrainingDiverged | None = None
        self.result: TrainResult | None = None
        self.gen = torch.Generator(device=trainer.device).manual_seed(cfg.seed)
        self.last_real: Tensor | None = None  # this trial's last real batch (relativistic G)

    spec = property(lambda self: self.trainer.spec)
    data = property(lambda self: self.trainer.data)
    device = property(lambda self: self.trainer.device)
    speed = property(lambda self: self.trainer.speed)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def request_stop(self, reason: str) -> None:
        """Stop after the current iteration (pruning, wall-clock caps)."""
        self._stop_reason = reason or "stop requested"

    def resolved_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this run: spec, hyperparameters, data; and the speed
        settings as applied (`speed`, not compared on resume)."""
        return {"gan": self.spec.to_dict(), "train": self.cfg.resolved(len(self.data)),
                "data": {"dataset": self.data.name, "split": self.data.split, "n": len(self.data),
                         "source": self.data.source},
                "speed": self.trainer.speed_tags()}

    def state(self, net: str) -> dict[str, Tensor]:
        """This trial's parameters and buffers of "G" or "D" (detached views)."""
        return self.trainer.trial_state(net, self.index)

    @property
    def G(self) -> Generator:
        return cast("Generator", self.trainer.module("G", self.index))  # built by build_models

    @property
    def D(self) -> Discriminator:
        return cast("Discriminator", self.trainer.module("D", self.index))

    def generate(self, n: int, seed: int = 0, batch_size: int = 500,
                 labels: Tensor | None = None) -> Tensor:
        """n samples from fixed z (train/sampling.py): uint8 images or float32 points."""
        return generate(self.G, n, seed, images=self.data.is_image, device=self.device,
                        batch_size=batch_size, labels=labels)


class Trainer:
    """Trains one GAN `spec` on `data`: one trial (`cfgs` a TrainConfig, `callbacks` a list)
    or a pack (`cfgs` a list of TrainConfigs that `pack_problems` accepts, `callbacks[i]` trial
    i's). `fit` returns a TrainResult, or a list of them for a pack."""

    def __init__(self, spec: GanSpec, cfgs: TrainConfig | Sequence[TrainConfig], data: ArrayDataset,
                 callbacks: Sequence[Any] = ()) -> None:
        self.solo = isinstance(cfgs, TrainConfig)
        configs: list[TrainConfig] = [cfgs] if isinstance(cfgs, TrainConfig) else list(cfgs)
        per_trial = [callbacks] if self.solo else [callbacks[i] if i < len(callbacks) else ()
                                                   for i in range(len(configs))]
        problems = pack_problems(spec, configs)
        if problems:
            raise ValueError("cannot pack these trials: " + "; ".join(problems))
        self.spec, self.cfgs = spec, configs
        self.device = resolve_device(configs[0].device)
        self.data = data.to(self.device)
        self.speed = SpeedPlan.make(spec, configs[0], self.device, len(configs))
        self._build_nets(spec, configs)
        self.trials = [Trial(self, i, c, per_trial[i]) for i, c in enumerate(configs)]
        shape = () if self.solo else (len(configs),)
        self.flags = DivergenceFlags(("loss_d", "loss_g"), shape, self.device)
        self.step = 0  # iterations (G steps) done by the pack
        self._step_dev = torch.zeros((), dtype=torch.int64, device=self.device)
        self._real_dtype = self.data.batch(torch.zeros(1, dtype=torch.long, device=self.device))[0].dtype
        self._masks: dict[tuple[bool, ...], Tensor] = {}
        self._graphs: dict[tuple[bool, ...], IterationGraph] = {}
        self.checkpoint_dir: Path | None = None

    def _build_nets(self, spec: GanSpec, configs: list[TrainConfig]) -> None:
        from gan_bench.models.base import build_models

        built = []
        for cfg in configs:
            torch.manual_seed(cfg.seed)  # model init
            g, d = build_models(spec.arch, self.data.sample_shape, **spec.arch_options)
            built.append((g.to(self.device), d.to(self.device)))
        pack = int(getattr(built[0][1], "pack", 1))
        if configs[0].batch_size % pack:
            raise ValueError(f"batch_size {configs[0].batch_size} is not divisible by pack {pack}")
        if self.solo:
            self.modules: dict[str, torch.nn.Module] = {"G": built[0][0], "D": built[0][1]}
            self.nets = {k: Net.of(m) for k, m in self.modules.items()}
        else:  # templates give the structure; the stacked tensors (P, ...) are the trials'
            self.modules = {"G": copy.deepcopy(built[0][0]), "D": copy.deepcopy(built[0][1])}
            self.nets = {}
            for i, key in enumerate(("G", "D")):
                self.nets[key] = Net.stacked(*stack_module_state([b[i] for b in built]))
        kind, trials = configs[0].optimizer, None if self.solo else len(configs)
        self.opt = {k: optim.init_state(kind, self.nets[k].params, trials) for k in ("G", "D")}
        value = (lambda xs: xs[0]) if self.solo else list  # floats for one trial, lists for a pack
        betas = value([c.beta1 for c in configs]), value([c.beta2 for c in configs])
        self.hyper = {"G": optim.hyperparameters(value([c.lr_g for c in configs]), *betas, self.device),
                      "D": optim.hyperparameters(value([c.resolved_lr_d for c in configs]), *betas,
                                                 self.device)}
        self.steps = Steps(spec, self.modules["G"], self.modules["D"], kind, len(configs),
                           fused=self.speed.fused_adam, capturable=self.speed.cuda_graphs)

    # ------------------------------------------------------------------ views
    def speed_tags(self) -> dict[str, str]:
        tags = self.speed.as_tags()
        if not self.solo:
            tags["speed.packed_trials"] = str(len(self.trials))
        return tags

    def trial_state(self, net: str, index: int) -> dict[str, Tensor]:
        tensors = {**self.nets[net].params, **self.nets[net].buffers}
        return {k: v.detach() if self.solo else v[index].detach() for k, v in tensors.items()}

    def module(self, net: str, index: int) -> torch.nn.Module:
        """A solo trial's own module; a packed trial's as a copy loaded with its tensors."""
        if self.solo:
            return self.modules[net]
        module = copy.deepcopy(self.modules[net])
        module.load_state_dict(self.trial_state(net, index))
        return module

    # solo conveniences: the one trial's view
    cfg = property(lambda self: self.trials[0].cfg)
    G = property(lambda self: self.trials[0].G)
    D = property(lambda self: self.trials[0].D)
    history = property(lambda self: self.trials[0].history)
    d_steps = property(lambda self: self.trials[0].d_steps)

    @property
    def total_iterations(self) -> int:
        return self.trials[0].total_iterations

    @total_iterations.setter
    def total_iterations(self, value: int) -> None:
        for t in self.trials:
            t.total_iterations = value

    def request_stop(self, reason: str) -> None:
        for t in self.trials:
            t.request_stop(reason)

    def resolved_config(self) -> dict[str, Any]:
        return self.trials[0].resolved_config()

    def generate(self, n: int, seed: int = 0, batch_size: int = 500,
                 labels: Tensor | None = None) -> Tensor:
        return self.trials[0].generate(n, seed, batch_size, labels)

    # ------------------------------------------------------------------ random draws per trial
    def _mask(self, on: Sequence[bool]) -> Tensor | None:
        """The trials in `on` as a device bool (P,) and not diverged; None for a solo trial."""
        if self.solo:
            return None
        key = tuple(on)
        if key not in self._masks:  # made once: a CUDA graph capture cannot copy from the host
            self._masks[key] = torch.tensor(key, device=self.device)
        return self._masks[key] & self.flags.alive()

    def _draw(self, on: Sequence[bool], d_step: bool) -> Batch:
        """The draws of one step, per trial in `on` and in a solo trial's order (batch indices,
        z, labels, the penalty's draws); trials that do not step draw nothing (zeros)."""
        b, G = self.cfgs[0].batch_size, cast("Generator", self.modules["G"])
        shape = (b, *self.data.sample_shape)
        rows: list[Any] = []  # per trial: (indices, z, labels, draws), None when it does not step
        for trial, stepping in zip(self.trials, on):
            if not stepping:
                rows.append(None)
                continue
            g = trial.gen
            idx = self.data.sample_indices(b, g) if d_step else None
            z = G.sample_z(b, generator=g, device=self.device)
            y = (torch.randint(cast(int, G.n_classes), (b,), device=self.device, generator=g)
                 if self.steps.conditional else None)
            draws = self.steps.penalty.draw(shape, self._real_dtype, self.device, g) if d_step else []
            rows.append((idx, z, y, draws))
        if self.solo:
            idx, z, y, draws = rows[0]
            x, labels = self.data.batch(idx) if d_step else (None, None)
            return Batch(z, x, labels, y, draws)
        return self._stacked(rows, d_step, b)

    def _stacked(self, rows: list[Any], d_step: bool, b: int) -> Batch:
        first = next(r for r in rows if r is not None)

        def stack(j: int) -> Any:
            if first[j] is None:
                return None
            return torch.stack([r[j] if r is not None else torch.zeros_like(first[j]) for r in rows])

        draws = [torch.stack([r[3][k] if r is not None else torch.zeros_like(first[3][k]) for r in rows])
                 for k in range(len(first[3]))]
        x = labels = None
        if d_step:
            x, labels = self.data.batch(stack(0))
        return Batch(stack(1), x, labels, stack(2), draws)

    def _remember_real(self, on: Sequence[bool], batch: Batch) -> None:
        """Each trial's own last real batch (trials with a smaller k drew theirs earlier)."""
        if self.solo:
            self.trials[0].last_real = batch.x_real
            return
        assert batch.x_real is not None  # a D step's batch (stacked real samples)
        for trial, stepping, x in zip(self.trials, on, batch.x_real):
            if stepping:
                trial.last_real = x

    def _last_real(self, on: Sequence[bool]) -> Tensor | None:
        if not self.steps.loss.needs_real_for_g:
            return None
        if self.solo:
            return self.trials[0].last_real
        zero = next(t.last_real for t in self.trials if t.last_real is not None)
        return torch.stack([t.last_real if t.last_real is not None else torch.zeros_like(zero)
                            for t in self.trials])

    # ------------------------------------------------------------------ the steps
    def _check(self, name: str, on: Sequence[bool]) -> Callable[[Tensor], Tensor | None]:
        active = self._mask(on)
        return lambda loss: self.flags.update(name, loss, self._step_dev, active)

    def d_step(self, want_log: bool, on: Sequence[bool] | None = None) -> dict[str, Tensor]:
        """One D update of the trials in `on` (all by default); logs per trial."""
        on = [True] * len(self.trials) if on is None else on
        batch = self._draw(on, d_step=True)
        logs = self.steps.d_step(self.nets["D"], self.nets["G"], self.opt["D"], self.hyper["D"],
                                 batch, want_log, self._check("loss_d", on))
        self._remember_real(on, batch)
        return logs

    def g_step(self, want_log: bool, on: Sequence[bool] | None = None) -> dict[str, Tensor]:
        """One G update of the trials in `on` (all by default) against the current D."""
        on = [True] * len(self.trials) if on is None else on
        batch = self._draw(on, d_step=False)
        batch.x_real = self._last_real(on)
        return self.steps.g_step(self.nets["G"], self.nets["D"], self.opt["G"], self.hyper["G"],
                                 batch, want_log, self._check("loss_g", on))

    def _iteration_body(self, running: tuple[bool, ...], want_log: bool) -> dict[str, Tensor]:
        """k D steps (each trial its own k) and one G step: what a CUDA graph captures."""
        self._step_dev.add_(1)
        ks = [t.cfg.k for t in self.trials]
        logs: dict[str, Tensor] = {}
        for i in range(max(k for k, on in zip(ks, running) if on)):
            last = [on and i == k - 1 for on, k in zip(running, ks)]
            # a pack logs every D step of a log iteration (keys must match to merge them)
            step_logs = self.d_step(want_log and (any(last) or not self.solo),
                                    [on and i < k for on, k in zip(running, ks)])
            logs = _merge(logs, step_logs, last, self.solo)
        return {**logs, **self.g_step(want_log, list(running))}

    def _train_steps(self, running: tuple[bool, ...], want_log: bool) -> dict[str, Tensor]:
        """Eagerly, or replayed from a CUDA graph captured per pattern of stepping trials."""
        if not self.speed.cuda_graphs:
            return self._iteration_body(running, want_log)
        if running not in self._graphs:
            self._graphs[running] = IterationGraph(
                lambda: self._iteration_body(running, True),
                tuple(t.gen for t in self.trials), lambda: None, self.device)
        return self._graphs[running].run()

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult | list[TrainResult]:
        """Train every trial until its budget, a stop request or a divergence; callbacks see
        every phase. A TrainResult for one trial, a list for a pack."""
        start = time.perf_counter()
        for net in self.modules.values():
            net.train()
        self._step_dev.fill_(self.step)
        for t in self.trials:
            if t.step < t.total_iterations:  # also a trial fitted before with a longer budget
                t.status, t._stop_reason, t.result, t.error = "running", "", None, None
            elif t.result is None:
                t.status = "ending"  # resumed at its end
            t.callbacks.on_train_start(t)
        for t in self.trials:  # resumed at its end: the objective at the end of training
            if t.status == "ending":
                self._evaluate_at_end(t, start)
        while any(t.running for t in self.trials):
            self._iteration(start)
        results = cast("list[TrainResult]", [t.result for t in self.trials])  # _finish set each
        return results[0] if self.solo else results

    def _evaluate_at_end(self, t: Trial, start: float) -> None:
        if not t.history or t.history[-1]["step"] != t.step:
            self._evaluate(t)
        self._finish(t, "stopped" if t._stop_reason else "completed", start)

    def _iteration(self, start: float) -> None:
        nxt = self.step + 1
        running = tuple(t.running for t in self.trials)
        last = [on and nxt == t.total_iterations for t, on in zip(self.trials, running)]
        logs_at = [on and (nxt % t.cfg.log_every == 0 or end)
                   for t, on, end in zip(self.trials, running, last)]
        evals_at = [on and (bool(t.cfg.eval_every and nxt % t.cfg.eval_every == 0) or end)
                    for t, on, end in zip(self.trials, running, last)]
        ck = self.cfgs[0].checkpoint_every
        want_ckpt = self.checkpoint_dir is not None and bool(ck and nxt % ck == 0)
        with self.speed.train_context():
            logs = self._train_steps(running, any(logs_at))
        self.step = nxt
        for t, on in zip(self.trials, running):
            if on:
                t.step, t.d_steps = nxt, t.d_steps + t.cfg.k
        if any(logs_at) or any(evals_at) or want_ckpt or not self.speed.fast:
            self._after_checks(running, logs_at, evals_at, logs, start)
        if want_ckpt:
            assert self.checkpoint_dir is not None  # want_ckpt asks for it
            self.save_checkpoint(self.checkpoint_dir / "last.pt")

    def _after_checks(self, running: Sequence[bool], logs_at: list[bool], evals_at: list[bool],
                      logs: dict[str, Tensor], start: float) -> None:
        """Divergence (one sync), then logs, evaluations and each trial's end."""
        bad = self.flags.check()
        finite = self._finite_params().tolist() if any(logs_at) else [True] * len(self.trials)
        values = self._diagnostics(logs) if any(logs_at) else []
        for i, t in enumerate(self.trials):
            if not running[i]:
                continue
            if bad[i] is not None:
                t.error = TrainingDiverged(*cast("tuple[int, str]", bad[i]), detected_at=self.step)
            elif logs_at[i] and not finite[i]:
                t.error = TrainingDiverged(self.step, self._bad_parameter(i))
            if t.error is not None:
                self._finish(t, "diverged", start)
                continue
            if logs_at[i]:
                diag = {k: v[i] for k, v in zip(logs, values)}
                diag.update(lr_g=float(self._hyper("G", i)), lr_d=float(self._hyper("D", i)))
                t.callbacks.on_log(t, self.step, diag)
            if evals_at[i]:
                self._evaluate(t)
            if t._stop_reason:
                self._finish(t, "stopped", start)
            elif self.step >= t.total_iterations:
                self._finish(t, "completed", start)

    def _hyper(self, net: str, i: int) -> float:
        lr = self.hyper[net]["lr"]
        return float(lr if self.solo else lr[i])

    def _diagnostics(self, logs: dict[str, Tensor]) -> list[list[float]]:
        """Per log key, its value per trial (one host sync for every key and trial)."""
        n = len(self.trials)
        stacked = torch.stack([v.detach().float().reshape(n) for v in logs.values()])
        return stacked.tolist()

    def _evaluate(self, t: Trial) -> None:
        metrics = t.callbacks.on_eval(t, t.step)
        t.history.append({"step": float(t.step), **{k: float(v) for k, v in metrics.items()}})
        if self.checkpoint_dir is not None and not self.cfgs[0].checkpoint_every:
            self.save_checkpoint(self.checkpoint_dir / "last.pt")

    def _finish(self, t: Trial, status: str, start: float) -> None:
        t.status = status
        final = dict(t.history[-1]) if t.history and status != "diverged" else {}
        final.pop("step", None)
        t.result = TrainResult(status, t.step, t.d_steps, time.perf_counter() - start,
                               t.history, final, t._stop_reason, t.error)
        t.callbacks.on_train_end(t, t.result)

    def _finite_params(self) -> Tensor:
        """(trials,) bool: every parameter of trial i is finite (one sync when read)."""
        n = len(self.trials)
        flags = [torch.isfinite(p).reshape(n, -1).all(1) for k in ("G", "D")
                 for p in self.nets[k].params.values()]
        return torch.stack(flags).all(0)

    def _bad_parameter(self, i: int) -> str:
        for k in ("G", "D"):
            for name, p in self.nets[k].params.items():
                if not bool(torch.isfinite(p if self.solo else p[i]).all()):
                    return f"parameter {k}.{name}"
        return "a parameter"

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Every trial's G, D, optimizer states, step counts, generator state and history; the
        CPU RNG; one format for a solo trial and a pack."""
        trials = []
        for i, t in enumerate(self.trials):
            opt = {k: _slice_state(self.opt[k], None if self.solo else i) for k in ("G", "D")}
            trials.append({"G": self.trial_state("G", i), "D": self.trial_state("D", i),
                           "opt_g": opt["G"], "opt_d": opt["D"], "step": t.step,
                           "d_steps": t.d_steps, "rng_gen": t.gen.get_state(),
                           "config": t.resolved_config(), "history": t.history})
        state = {"format": CHECKPOINT_FORMAT, "step": self.step, "trials": trials,
                 "rng_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_checkpoint(self, path: str | Path) -> Path:
        """The state above, written atomically."""
        from gan_bench.cache import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue the same run (solo or pack): on CPU the result equals an uninterrupted run."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT or len(state["trials"]) != len(self.trials):
            raise ValueError(f"checkpoint {path} was written for a different configuration")
        for t, saved in zip(self.trials, state["trials"]):
            mine = t.resolved_config()
            if saved["config"]["gan"] != mine["gan"] or saved["config"]["train"] != mine["train"]:
                raise ValueError(f"checkpoint {path} was written for a different configuration")
        self._graphs.clear()  # tensors are overwritten in place, but the step counters restart
        for i, (t, saved) in enumerate(zip(self.trials, state["trials"])):
            for key, net in (("G", self.nets["G"]), ("D", self.nets["D"])):
                for name, value in {**net.params, **net.buffers}.items():
                    (value if self.solo else value[i]).copy_(saved[key][name])
            for key, opt in (("opt_g", self.opt["G"]), ("opt_d", self.opt["D"])):
                _load_state(opt, saved[key], None if self.solo else i)
            t.step, t.d_steps = int(saved["step"]), int(saved["d_steps"])
            t.gen.set_state(saved["rng_gen"].cpu())
            t.history = [dict(h) for h in saved["history"]]
        self.step = int(state["step"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)


def PackedTrainer(spec: GanSpec, cfgs: Sequence[TrainConfig], data: ArrayDataset,
                  callbacks: Sequence[Sequence[Callback]] = ()) -> Trainer:
    """A Trainer of the trials `cfgs` trained together (fit returns one TrainResult each)."""
    return Trainer(spec, list(cfgs), data, callbacks)


def auto_pack_size(spec: GanSpec, cfg: TrainConfig, data: ArrayDataset,
                   cap: int = MAX_AUTO_PACK) -> int:
    """`packed_trials: auto`: 1 off cuda; on cuda, P from the peak memory of 2-iteration packs
    of 1 and 2 trials (their difference is one trial's share) and the free memory now."""
    device = resolve_device(cfg.device)
    if device.type != "cuda":
        return 1
    peaks = []
    for p in (1, 2):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        probe = [cfg.with_(iterations=2, epochs=None, eval_every=0, seed=i) for i in range(p)]
        Trainer(spec, probe, data).fit()
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    torch.cuda.empty_cache()
    per_trial = peaks[1] - peaks[0]
    return pack_size_for(torch.cuda.mem_get_info(device)[0], peaks[0] - per_trial, per_trial, cap)


def _merge(old: dict[str, Tensor], new: dict[str, Tensor], take: list[bool],
           solo: bool) -> dict[str, Tensor]:
    """Per trial, the logs of its own last D step (`take`), else what it had (a solo trial's
    last D step is the last one)."""
    if not old or solo:
        return new
    mask = torch.tensor(take, device=next(iter(new.values())).device)
    return {k: torch.where(mask, v, old[k]) if k in old else v for k, v in new.items()}


def _slice_state(state: optim.State, i: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out[key] = {k: (v if i is None else v[i]).detach().clone() for k, v in value.items()}
        else:
            out[key] = (value if i is None else value[i]).detach().clone()
    return out


def _load_state(state: optim.State, saved: dict[str, Any], i: int | None) -> None:
    for key, value in state.items():
        if isinstance(value, dict):
            for k, v in value.items():
                (v if i is None else v[i]).copy_(saved[key][k])
        else:
            (value if i is None else value[i]).copy_(saved[key])
