"""The trainer's fast path (issue 7): what changes when `TrainConfig.fast` is on, and why.

The plain path is the loop as commonly written: after every D and G step it reads the loss on
the host to check it is finite, which on a GPU stalls the launch queue once per step. The fast
path computes the same training (same kernels, same random draws) and only moves work around:

- finite checks are accumulated on the device (`DivergenceFlags`) and read at log steps, eval
  steps and the end; a divergence is then *reported* at the first such check after it happened,
  with the exact iteration it happened at (kept on the device) and the one it was found at.
  Training continues with non-finite values until that check: nothing after the reported
  iteration is valid, as with the plain path;
- diagnostics are read with one host sync per log step, not one per value;
- precision: "tf32" lets cuBLAS / cuDNN use TF32 for float32 matmuls and convolutions, "bf16"
  runs the D and G steps under bfloat16 autocast; both only on cuda, and only around the D and
  G steps (`train_context`). Evaluation does not inherit the process flags: torch leaves cuDNN's
  TF32 for convolutions ON by default, so the feature extractors force strict float32 around
  every forward pass (metrics/features.py `float32_math`) and record "precision" in the protocol;
- CUDA graphs (`cuda_graphs: true`; "auto" keeps them off: the capture has only been exercised
  with a simulated graph on CPU, never on a GPU — `gan-bench perf` asks for them on cuda, so its
  first GPU run verifies them): after `GRAPH_WARMUP` eager iterations, one whole iteration (k D
  steps and the G step, optimiser steps included) is captured in one `torch.cuda.CUDAGraph` and
  replayed; a pack keeps one capture per pattern of trials that step (k, finished trials).
  Combinations whose penalty declares a double backward and spectral norm are not captured
  (not verified); `graph_blockers` says why a combination is not, and the reason is recorded.

- fused Adam: a solo trial's update is torch.optim's fused kernel (one pass over each tensor;
  on a CPU too, where it is 9x faster on InfoGAN's 13 M parameters); a pack's is train/optim.py's
  per-trial masked update (no fused kernel takes per-trial hyperparameters).

On the CPU "auto" turns the fast path off (the plain loop is the reference); `fast: true` on the
CPU keeps only the deferred checks, which are harmless there. Everything CUDA-specific is guarded
by the device type and falls back to the plain behaviour.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gan_bench.train.config import GanSpec, TrainConfig

__all__ = ["SpeedPlan", "DivergenceFlags", "IterationGraph", "graph_blockers", "GRAPH_WARMUP"]

GRAPH_WARMUP = 3  # eager iterations before capture (PyTorch's whole-network example uses 3)


def graph_blockers(spec: GanSpec, cfg: TrainConfig, device: torch.device) -> list[str]:
    """Why one iteration of this combination is not captured in a CUDA graph ([] when it is)."""
    reasons = []
    if device.type != "cuda":
        reasons.append(f"device is {device.type}")
    wanted = cfg.with_(device=str(device)).resolved_speed()
    if not wanted["fast"]:
        reasons.append("fast path off")
    if cfg.cuda_graphs is False:
        reasons.append("cuda_graphs: false")
    if cfg.cuda_graphs == "auto":
        reasons.append("cuda_graphs: auto is off until capture is verified on a GPU (set true)")
    from gan_bench.registry import PENALTIES

    if PENALTIES.get(spec.penalty).double_backward:  # the penalty's own declaration
        reasons.append(f"penalty {spec.penalty} takes a double backward (not captured)")
    if spec.arch_options.get("spectral_norm"):
        reasons.append("spectral_norm's power-iteration buffers are not verified under capture")
    return reasons


@dataclass(frozen=True)
class SpeedPlan:
    """The fast-path settings as used on one device (the config's "auto" values resolved)."""

    fast: bool  # deferred finite checks, one sync per log step
    precision: str  # "fp32", "tf32" or "bf16" as applied ("tf32"/"bf16" only on cuda)
    cuda_graphs: bool  # one iteration captured and replayed
    graphs_off: str  # why graphs are off ("" when on)
    fused_adam: bool  # a solo trial's Adam as torch.optim's fused kernel
    device_type: str

    @classmethod
    def make(cls, spec: GanSpec, cfg: TrainConfig, device: torch.device, trials: int = 1
             ) -> SpeedPlan:
        wanted = cfg.with_(device=str(device)).resolved_speed()
        blockers = graph_blockers(spec, cfg, device)
        fused = wanted["fast"] and cfg.optimizer == "adam" and trials == 1
        return cls(wanted["fast"], wanted["precision"], not blockers, "; ".join(blockers), fused,
                   device.type)

    def as_tags(self) -> dict[str, str]:
        """What was applied, for run tags (the config's requested values go to params)."""
        return {"speed.fast": str(self.fast).lower(), "speed.precision": self.precision,
                "speed.cuda_graphs": str(self.cuda_graphs).lower(),
                "speed.cuda_graphs_off": self.graphs_off or "-",
                "speed.fused_adam": str(self.fused_adam).lower()}

    @contextlib.contextmanager
    def train_context(self) -> Iterator[None]:
        """TF32 flags and bf16 autocast around the D and G steps only; the flags are restored
        afterwards (evaluation sets its own: metrics/features.py `float32_math`)."""
        if self.device_type != "cuda":
            if self.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    yield
            else:
                yield
            return
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        saved = (matmul.allow_tf32, cudnn.allow_tf32)
        matmul.allow_tf32 = cudnn.allow_tf32 = self.precision == "tf32"
        try:
            if self.precision == "bf16":  # no cast cache across a capture (PyTorch's graph notes)
                with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not self.cuda_graphs):
                    yield
            else:
                yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32 = saved


class DivergenceFlags:
    """Per trial, the first non-finite loss, recorded on the device without a host sync until
    `check`: shape () for a solo trial, (P,) for a pack.

    `step` is a 0-dim int64 device tensor holding the current iteration (so a CUDA graph that
    increments it in place records the right iteration on every replay).
    """

    def __init__(self, names: tuple[str, ...], shape: tuple[int, ...], device: torch.device) -> None:
        self.names = names
        self.first_bad = torch.zeros(shape, dtype=torch.int64, device=device)  # 0: finite so far
        self.what = torch.zeros(shape, dtype=torch.int64, device=device)  # index into names

    def alive(self) -> torch.Tensor:
        """Trials with no non-finite loss so far (bool, the flags' shape)."""
        return self.first_bad == 0

    def update(self, name: str, value: torch.Tensor, step: torch.Tensor,
               active: torch.Tensor | None) -> torch.Tensor | None:
        """Record trials whose `value` is not finite now; return `active` without them (None
        stays None: a solo trial's step is never masked)."""
        bad = ~torch.isfinite(value)
        if active is not None:
            bad = bad & active
        new = bad & (self.first_bad == 0)
        self.first_bad.copy_(torch.where(new, step, self.first_bad))
        self.what.copy_(torch.where(new, self.names.index(name), self.what))
        return None if active is None else active & ~bad

    def check(self) -> list[tuple[int, str] | None]:
        """Per trial, (iteration, name) of the first non-finite value, or None. One host sync."""
        first, what = torch.stack([self.first_bad.reshape(-1), self.what.reshape(-1)]).tolist()
        return [(int(f), self.names[int(w)]) if f else None for f, w in zip(first, what)]

    def reset(self) -> None:
        self.first_bad.zero_()
        self.what.zero_()


class IterationGraph:
    """One training iteration captured in a CUDA graph; `run` replays it.

    `body()` runs one iteration eagerly and returns its logs (device tensors). The first
    `warmup` calls run it eagerly on a side stream (real iterations: they train), the next call
    captures it and replays the capture, later calls replay. Every tensor the body reads or
    writes must keep its address across replays: parameters, optimiser state (capturable=True),
    the resident dataset, the generators registered here, and the body's own outputs.
    """

    def __init__(self, body: Callable[[], dict[str, torch.Tensor]],
                 generators: tuple[torch.Generator, ...], before_capture: Callable[[], None],
                 device: torch.device, warmup: int = GRAPH_WARMUP) -> None:
        self.body, self.generators, self.before_capture = body, generators, before_capture
        self.device, self.warmup = device, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: dict[str, torch.Tensor] = {}

    def run(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        with torch.cuda.device(self.device):  # streams of the trainer's device, not the current one
            if self.graph is not None:
                self.graph.replay()
            elif self.calls <= self.warmup:
                return self._eager_on_side_stream()
            else:
                self._capture()
                assert self.graph is not None  # _capture sets it
                self.graph.replay()  # capture records the kernels; this replay runs the iteration
        return self.outputs

    def _eager_on_side_stream(self) -> dict[str, torch.Tensor]:
        side, main = torch.cuda.Stream(), torch.cuda.current_stream()
        side.wait_stream(main)
        with torch.cuda.stream(side), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")  # eager on purpose
            out = self.body()
        main.wait_stream(side)
        return out

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        for gen in self.generators:
            graph.register_generator_state(gen)  # its draws advance on every replay
        self.before_capture()  # grads to None: backward allocates them in the graph's pool
        torch.cuda.synchronize()
        # thread_local: MLflow / Optuna heartbeat threads may run while we capture
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.outputs = self.body()
        self.graph = graph
