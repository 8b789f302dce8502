"""Typed training settings. YAML suites hold only overrides; unknown keys are errors.

Defaults follow DCGAN (Radford et al. 2015, section 4) unless a preset says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = ["GanSpec", "TrainConfig", "from_dict", "PRECISIONS"]

PRECISIONS = ("auto", "fp32", "tf32", "bf16")


@dataclass(frozen=True)
class GanSpec:
    """A GAN as a combination: architecture x loss x penalty, each with its parameters."""

    arch: str
    loss: str
    penalty: str = "none"
    arch_options: dict[str, Any] = field(default_factory=dict)  # ArchOptions fields (spectral_norm, pack, ...)
    loss_params: dict[str, Any] = field(default_factory=dict)  # e.g. least_squares a, b, c
    penalty_params: dict[str, Any] = field(default_factory=dict)  # e.g. gradient_penalty weight

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run. A G step counts as one iteration."""

    lr_g: float = 2e-4  # DCGAN's Adam lr
    lr_d: float | None = None  # None -> lr_g * lr_ratio (TTUR: the two may differ either way)
    lr_ratio: float = 1.0  # lr_d / lr_g; 1 is the single shared lr of most papers (Lucic 2018)
    k: int = 1  # D steps per G step (Goodfellow 2014 Algorithm 1: "we used k = 1")
    beta1: float = 0.5  # DCGAN: 0.9 made training oscillate
    beta2: float = 0.999  # Adam's default; Lucic 2018 did not search it
    optimizer: str = "adam"  # "adam" or "rmsprop" (WGAN with weight clipping used RMSprop)
    batch_size: int = 64  # Lucic 2018 (DCGAN used 128)
    iterations: int | None = None  # G steps; exactly one of iterations / epochs
    epochs: float | None = None  # passes of D over the training set: iterations = ceil(epochs * N / (batch * k))
    eval_every: int = 0  # iterations between evaluation hooks; 0 -> only at the end
    log_every: int = 50  # iterations between diagnostics (and divergence checks of parameters)
    checkpoint_every: int = 0  # iterations between checkpoints; 0 -> at eval points when a dir is given
    seed: int = 0  # seeds model init, batch indices and z
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1", ...
    # Speed (train/speed.py). Recorded with every run: tf32, bf16 and fused Adam change the numerics slightly.
    fast: bool | str = "auto"  # "auto": on for cuda (no per-step host syncs, fused Adam); off on cpu, the reference loop
    precision: str = "auto"  # "auto": tf32 on cuda, fp32 on cpu; "fp32", "tf32" (cuda matmul/conv), "bf16" (autocast)
    cuda_graphs: bool | str = "auto"  # true: capture each iteration when fast on cuda and the combination allows; "auto": off (not yet verified on a GPU)

    def __post_init__(self) -> None:
        problems = []
        if self.lr_g <= 0 or (self.lr_d is not None and self.lr_d <= 0) or self.lr_ratio <= 0:
            problems.append("learning rates and lr_ratio must be > 0")
        if self.k < 1:
            problems.append(f"k must be >= 1 (got {self.k})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if (self.iterations is None) == (self.epochs is None):
            problems.append("give exactly one of iterations and epochs")
        if self.iterations is not None and self.iterations < 1:
            problems.append(f"iterations must be >= 1 (got {self.iterations})")
        if self.epochs is not None and self.epochs <= 0:
            problems.append(f"epochs must be > 0 (got {self.epochs})")
        if self.optimizer not in ("adam", "rmsprop"):
            problems.append(f"unknown optimizer {self.optimizer!r} (known: adam, rmsprop)")
        if min(self.eval_every, self.log_every, self.checkpoint_every) < 0 or self.log_every == 0:
            problems.append("eval_every and checkpoint_every must be >= 0, log_every >= 1")
        for name in ("fast", "cuda_graphs"):
            if not (isinstance(getattr(self, name), bool) or getattr(self, name) == "auto"):
                problems.append(f"{name} must be true, false or 'auto' (got {getattr(self, name)!r})")
        if self.precision not in PRECISIONS:
            problems.append(f"unknown precision {self.precision!r} (known: {', '.join(PRECISIONS)})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def resolved_lr_d(self) -> float:
        return self.lr_d if self.lr_d is not None else self.lr_g * self.lr_ratio

    def total_iterations(self, n_train: int) -> int:
        if self.iterations is not None:
            return self.iterations
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * n_train / (self.batch_size * self.k)))

    def resolved(self, n_train: int) -> dict[str, Any]:
        """Every hyperparameter as it is used, for params / tags / checkpoints. The speed options'
        "auto" become what they mean on this device; whether a combination could really be
        captured in a CUDA graph is the trainer's to say (`Trainer.speed`)."""
        out = asdict(self)
        out.update(lr_d=self.resolved_lr_d, lr_ratio=self.resolved_lr_d / self.lr_g,
                   iterations=self.total_iterations(n_train), **self.resolved_speed())
        return out

    def resolved_speed(self) -> dict[str, Any]:
        """fast, precision and cuda_graphs with "auto" resolved for `device` (tf32 is a cuBLAS /
        cuDNN mode, so it is fp32 off cuda)."""
        from gan_bench.devices import device_type  # torch: only when speed is resolved

        cuda = device_type(self.device) == "cuda"
        fast = cuda if self.fast == "auto" else self.fast
        precision = "tf32" if self.precision == "auto" else self.precision
        if precision == "tf32" and not cuda:
            precision = "fp32"
        # "auto" keeps graphs off until capture has been verified on a GPU (see train/speed.py)
        graphs = False if self.cuda_graphs == "auto" else self.cuda_graphs
        return {"fast": fast, "precision": precision, "cuda_graphs": graphs}

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, rejecting unknown keys with the list of known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown} (known: {sorted(known)})")
    return cls(**values)
