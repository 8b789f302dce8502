"""How the runner describes a run: the tags and params a user filters on, the protocol tag,
the machine, and whether an error was the device running out of memory."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import torch

from gan_bench.procs import cpu_model
from gan_bench.train import TrainConfig

if TYPE_CHECKING:
    from gan_bench.config import ResolvedGan
    from gan_bench.metrics.records import MetricRecord

__all__ = ["spec_params", "train_params", "name_params", "protocol_line", "describe_hardware",
           "is_out_of_memory"]

# What torch's CPU allocator says when an allocation fails (the kernel may also kill the
# process first: validate's memory rule is the first line of defence, this the second).
_CPU_OOM = ("can't allocate memory", "not enough memory", "out of memory")
_TRAIN_PARAMS = ("lr_g", "lr_d", "lr_ratio", "k", "beta1", "beta2", "optimizer", "batch_size",
                 "iterations", "seed", "device")


def spec_params(gan: ResolvedGan) -> dict[str, Any]:
    """A GAN's fixed choices (its parent run's params; every run of it repeats them)."""
    spec = gan.spec
    return {"penalty": spec.penalty, "arch_options": dict(spec.arch_options),
            "loss_params": dict(spec.loss_params), "penalty_params": dict(spec.penalty_params),
            "searched": ",".join(sorted(gan.search)) or "-"}


def train_params(gan: ResolvedGan, cfg: TrainConfig, n_data: int) -> dict[str, Any]:
    """The hyperparameters a user compares runs by; every field of the resolved config is in
    the run's config.json."""
    r = cfg.resolved(n_data)
    return {**spec_params(gan), **{k: r[k] for k in _TRAIN_PARAMS},
            "log10_lr_ratio": round(math.log10(r["lr_ratio"]), 6)}


def name_params(cfg: TrainConfig) -> dict[str, Any]:
    """k and lr_ratio of a run, for its name."""
    return {"k": cfg.k, "lr_ratio": cfg.resolved_lr_d / cfg.lr_g}


def protocol_line(records: dict[str, MetricRecord]) -> str:
    """One compact tag for the runs table: each record's extractor, samples and split, e.g.
    "fid_mnist: mnist_classifier 5000 vs test 10000 fp32-strict"."""
    seen, parts = set(), []
    for rec in records.values():
        p = rec.protocol
        key = (p.get("metric"), p.get("extractor"), p.get("n_fake"), p.get("n_real"))
        if key in seen:
            continue
        seen.add(key)
        real = f" vs {p.get('real_split')} {p.get('n_real')}" if p.get("n_real") else ""
        sha = f" {str(p['extractor_sha256'])[:8]}" if p.get("extractor_sha256") else ""
        prec = f" {p['precision']}" if p.get("precision") else ""
        parts.append(f"{p.get('metric')}: {p.get('extractor')}{sha} {p.get('n_fake')}{real}{prec}")
    return "; ".join(parts)


def describe_hardware(device: torch.device) -> str:
    """"NVIDIA H100 80GB HBM3" or "Intel(R) Xeon(R) ... x 2 cores": goes with every run."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} x {os.cpu_count()} cores"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation that failed on the device: CUDA's OutOfMemoryError or the CPU
    allocator's RuntimeError (a trial whose setting does not fit is a failed trial)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _CPU_OOM)
