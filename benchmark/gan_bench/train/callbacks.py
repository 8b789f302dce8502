"""Trainer hooks. Tracking, pruning and sample grids are callbacks; the trainer knows neither
mlflow nor optuna (minGPT's `Trainer.add_callback`, mimicry's Trainer)."""

from __future__ import annotations

from typing import Any

from gan_bench.train.results import TrainResult

# What a hook receives: one trial of a Trainer (train/trainer.py `Trial`): cfg, spec, data,
# step, history, total_iterations, generate, request_stop, resolved_config, G. Typed Any here so
# that this module imports nothing of the trainer (which imports it).
Trainer = Any

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Override what you need; every hook is optional.

    `on_eval` runs every `eval_every` iterations and at the end; it may return metrics (name ->
    float) that the trainer adds to its history, and may call `trainer.request_stop(reason)`
    (pruning); training then stops after the current iteration.
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first iteration (also after a resume)."""

    def on_log(self, trainer: Trainer, step: int, diagnostics: dict[str, float]) -> None:
        """Every `log_every` iterations: loss_d, loss_g, d_real, d_fake, grad norms, ..."""

    def on_eval(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        """Every `eval_every` iterations and at the last one; may return metrics."""
        return None

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """After the last iteration, a stop request or a divergence (result.status says which)."""


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback] | tuple[Callback, ...] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_train_start(self, trainer: Trainer) -> None:
        for cb in self.callbacks:
            cb.on_train_start(trainer)

    def on_log(self, trainer: Trainer, step: int, diagnostics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_log(trainer, step, diagnostics)

    def on_eval(self, trainer: Trainer, step: int) -> dict[str, float]:
        merged: dict[str, Any] = {}
        for cb in self.callbacks:
            merged.update(cb.on_eval(trainer, step) or {})
        return merged

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        for cb in self.callbacks:
            cb.on_train_end(trainer, result)
