"""The one place a device name becomes a torch.device: "auto" is cuda when there is one, else cpu;
a name torch does not know, or a cuda device this machine does not have, is one UserInputError.
The trainer, the evaluator and the train config's speed settings all ask here."""

from __future__ import annotations

import torch

from gan_bench.errors import UserInputError

__all__ = ["resolve_device", "device_type"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`device` as a torch.device that can run here ("auto": cuda when available, else cpu)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise UserInputError(f"unknown device {str(device)!r} (use cpu, or cuda / cuda:N on a "
                             "machine with an NVIDIA GPU, or auto)")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise UserInputError(f"device {str(device)!r}: this machine has {count} CUDA "
                                 "device(s) (use cpu)")
    return dev


def device_type(device: str | torch.device) -> str:
    """"cpu" or "cuda" for a device name, without checking that a named cuda device exists (a
    config may be written on one machine and run on another)."""
    if device == "auto":
        return resolve_device("auto").type
    return torch.device(device).type
