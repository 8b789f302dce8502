"""What training returns: a TrainResult per trial, and TrainingDiverged as the reason of a
diverged one (train/trainer.py fills both; callbacks see them in `on_train_end`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainResult", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN/Inf; nothing after `step` is valid.

    `detected_at`: the iteration whose check found it, later than `step` when the check was
    deferred to a log or eval step (the fast path, packs).
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
    error: TrainingDiverged | None = None  # why, when status is "diverged"
