"""`gan-bench perf`: training throughput of the reference loop, our trainer on one trial and on
packs of trials, and the time of one FID evaluation, measured side by side in one process.

Rows (img/s = real images D consumed per second = iterations x batch / seconds, k = 1):

- reference: the loop as commonly written (PyTorch's DCGAN example): a torch DataLoader over CPU
  tensors with shuffling, each batch copied to the device, fp32, eager, torch.optim.Adam with
  its defaults, BCE-with-logits (the non-saturating loss), `.item()` of both losses every step.
  It reuses D's fake batch for the G step (one G forward per iteration where the Trainer draws
  a fresh z), so it does a little less work than our rows: the ratios are conservative;
- solo: the one Trainer on one trial with `fast: true` (train/speed.py): data resident on the
  device, no per-step host syncs, TF32 (or the --precision given) and CUDA graphs on cuda;
- packed xP: P trials with different lr_g and beta1 in the same Trainer (one step under vmap,
  train/step.py); img/s is the aggregate over the P trials, `x solo` its ratio to the solo row.

Warm-up iterations are excluded from every timing: the Trainer's are run in the same Trainer
(they include the CUDA-graph capture), the reference's in the same loop, the pack's in a pack
built the same way. FID: G generates n samples (fixed z) and the Evaluator scores them with
real features already cached (a first, untimed evaluation fills the cache and loads the
extractor); the time covers generation, features and the Frechet distance.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from gan_bench.procs import cpu_model

if TYPE_CHECKING:
    from gan_bench.data.base import ArrayDataset
    from gan_bench.train.config import GanSpec
    from gan_bench.train.trainer import Trainer

__all__ = ["PerfRow", "PerfReport", "run_perf", "format_report", "reference_loop"]

DEFAULT_FID = {"cuda": "fid_inception", "cpu": "fid_mnist"}  # Inception runs ~6 img/s on 2 CPU cores


@dataclass
class PerfRow:
    name: str  # "reference", "solo", "packed xP"
    what: str  # one line: what ran
    iterations: int  # timed iterations (per trial)
    images: int  # real images consumed in the timed iterations, all trials together
    seconds: float
    precision: str
    ratio: float = 1.0  # img/s relative to the reference row
    ratio_solo: float = 1.0  # img/s relative to the solo row (a pack's aggregate speed-up)

    @property
    def img_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-12)


@dataclass
class PerfReport:
    device: str  # e.g. "cuda (NVIDIA H100 80GB HBM3)" or "cpu (Intel Xeon, 2 threads)"
    versions: dict[str, str]
    setting: dict[str, Any]  # arch, dataset, batch, iters, warmup, pack
    rows: list[PerfRow] = field(default_factory=list)
    fid: dict[str, Any] = field(default_factory=dict)  # metric, n, seconds, generate_s, value
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, d in zip(self.rows, out["rows"]):
            d["img_per_s"] = row.img_per_s
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    model = cpu_model()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"cpu ({model}; {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}; "
            f"load average {load})")


def _versions(device: torch.device) -> dict[str, str]:
    out = {"torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        out.update(cuda=str(torch.version.cuda), cudnn=str(torch.backends.cudnn.version()))
    return out


def reference_loop(arch: str, options: dict[str, Any], data: ArrayDataset, batch: int, iters: int,
                   warmup: int, device: torch.device, seed: int = 0) -> PerfRow:
    """The common eager loop (see the module docstring); returns the timed part."""
    from torch.utils.data import DataLoader, TensorDataset

    from gan_bench.models.base import build_models

    torch.manual_seed(seed)
    x_all, _ = data.batch(torch.arange(len(data)))  # float, images in [-1, 1], on the CPU
    loader = DataLoader(TensorDataset(x_all), batch_size=batch, shuffle=True, drop_last=True)
    G, D = build_models(arch, data.sample_shape, **options)
    G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
    done, start = 0, 0.0
    while done < warmup + iters:
        for (x,) in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            x = x.to(device)
            fake = G(G.sample_z(batch, device=device))
            loss_d = (F.binary_cross_entropy_with_logits(D(x), ones)
                      + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            loss_d.item(), loss_g.item()  # what the loop prints or logs every step
            done += 1
            if done == warmup + iters:
                break
    seconds = time.perf_counter() - start
    return PerfRow("reference", "DataLoader(shuffle) on cpu tensors, eager fp32, .item() every step",
                   iters, iters * batch, seconds, "fp32 (torch defaults)")


def solo_trainer(spec: GanSpec, data: ArrayDataset, batch: int, iters: int, warmup: int,
                 device: torch.device, precision: str) -> tuple[PerfRow, Trainer]:
    """Our Trainer on one trial, fast on; the warm-up (and any graph capture) runs in it."""
    from gan_bench.train import TrainConfig, Trainer

    cfg = TrainConfig(iterations=warmup + iters, batch_size=batch, device=str(device), fast=True,
                      precision=precision, log_every=warmup + iters, seed=0,
                      cuda_graphs=device.type == "cuda")  # measured (and so verified) here
    trainer = Trainer(spec, cfg, data)
    trainer.total_iterations = warmup
    trainer.fit()
    trainer.total_iterations = warmup + iters
    _sync(device)
    start = time.perf_counter()
    trainer.fit()
    _sync(device)
    seconds = time.perf_counter() - start
    s = trainer.speed
    what = (f"Trainer, one trial: resident data, deferred checks, cuda graphs "
            f"{str(s.cuda_graphs).lower()}" + (f" ({s.graphs_off})" if s.graphs_off else ""))
    return PerfRow("solo", what, iters, iters * batch, seconds, s.precision), trainer


def packed_trials(spec: GanSpec, data: ArrayDataset, batch: int, iters: int, warmup: int,
                  device: torch.device, pack: int) -> PerfRow:
    """P trials (lr_g geometric in [1e-4, 1e-3], beta1 in {0.5, 0}) in one Trainer, fast on
    as the solo row; the warm-up runs in the same Trainer."""
    from gan_bench.train import PackedTrainer, TrainConfig

    cfgs = [TrainConfig(iterations=warmup + iters, batch_size=batch, device=str(device),
                        log_every=warmup + iters, seed=i, fast=True,
                        lr_g=1e-4 * 10 ** (i / max(pack - 1, 1)), beta1=0.5 if i % 2 == 0 else 0.0)
            for i in range(pack)]
    trainer = PackedTrainer(spec, cfgs, data)
    trainer.total_iterations = warmup
    trainer.fit()
    trainer.total_iterations = warmup + iters
    _sync(device)
    start = time.perf_counter()
    trainer.fit()
    _sync(device)
    seconds = time.perf_counter() - start
    return PerfRow(f"packed x{pack}", f"{pack} trials (lr_g, beta1, seed differ): one step under vmap",
                   iters, iters * batch * pack, seconds, trainer.speed.precision)


def fid_timing(trainer: Trainer, dataset: str, metric: str, n: int, device: torch.device) -> dict[str, Any]:
    """Seconds to generate n samples and score them (real features cached beforehand)."""
    from gan_bench.metrics.evaluator import Evaluator

    ev = Evaluator(dataset, metrics=[metric], device=device, n_real=None if dataset != "mnist" else 10000,
                   batch_size=500 if device.type == "cuda" else 200)
    ev.evaluate(trainer.generate(min(n, 500), seed=1), [metric])  # fills the real-feature cache
    _sync(device)
    start = time.perf_counter()
    fake = trainer.generate(n, seed=2)
    generated = time.perf_counter() - start
    records = ev.evaluate(fake, [metric])
    _sync(device)
    seconds = time.perf_counter() - start
    rec = records[ev.primary(metric)]
    return {"metric": metric, "n_fake": n, "seconds": seconds, "generate_s": generated,
            "value": rec.value, "extractor": rec.protocol["extractor"], "n_real": rec.protocol["n_real"]}


def perf_defaults(device: torch.device) -> dict[str, Any]:
    """What `gan-bench perf` measures when not told: on cuda the GPU reference setting (infogan,
    200 iterations, a pack of 8, 10,000 FID samples); on a CPU about a minute of work (dcgan
    small, 20 iterations, a pack of 4, 1,000 FID samples)."""
    if device.type == "cuda":
        return {"arch": "infogan", "size": "full", "iters": 200, "warmup": 20, "packs": [8],
                "fid_samples": 10000}
    return {"arch": "dcgan", "size": "small", "iters": 20, "warmup": 3, "packs": [4],
            "fid_samples": 1000}


def run_perf(*, device: str = "auto", arch: str = "infogan", batch: int = 64, iters: int = 200,
             warmup: int = 20, packs: Sequence[int] = (8,), dataset: str = "mnist",
             size: str = "full", precision: str = "auto", fid_metric: str | None = None,
             fid_samples: int = 10000, progress: Callable[[str], None] = lambda line: None,
             loss: str = "non_saturating", penalty: str = "none") -> PerfReport:
    """Measure every row and the FID time; see the module docstring for what each row is.
    `packs`: pack sizes > 1 to time besides the solo row; `progress` gets a line per row.
    The reference loop is the non-saturating GAN's: for another loss or a penalty there is no
    reference row, and `ratio` is against the solo row."""
    from gan_bench.data import load_dataset
    from gan_bench.devices import resolve_device
    from gan_bench.train import GanSpec

    dev = resolve_device(device)
    data = load_dataset(dataset, "train")
    options = {"size": size}
    spec = GanSpec(arch, loss, penalty, arch_options=options)
    packs = [p for p in packs if p > 1]
    setting = {"arch": arch, "size": size, "dataset": dataset, "loss": loss, "batch": batch,
               "iters": iters, "warmup": warmup, "pack": packs[0] if len(packs) == 1 else list(packs)}
    if penalty != "none":
        setting["penalty"] = penalty
    report = PerfReport(_device_text(dev), _versions(dev), setting)

    def timed(row: PerfRow) -> PerfRow:
        progress(f"{arch} {row.name}: {row.img_per_s:,.0f} img/s ({row.seconds:.1f} s)")
        return row

    plain = loss == "non_saturating" and penalty == "none"
    ref = timed(reference_loop(arch, options, data, batch, iters, warmup, dev)) if plain else None
    solo_row, trainer = solo_trainer(spec, data, batch, iters, warmup, dev, precision)
    report.rows = [*([ref] if ref else []), timed(solo_row)]
    for pack in packs:
        report.rows.append(timed(packed_trials(spec, data, batch, iters, warmup, dev, pack)))
    for row in report.rows:
        row.ratio = row.img_per_s / (ref or solo_row).img_per_s
        row.ratio_solo = row.img_per_s / solo_row.img_per_s
    if ref is None:
        report.notes.append(f"no reference row: the reference loop is the non-saturating GAN's, "
                            f"not {loss} / {penalty}; x reference is against the solo row")
    metric = fid_metric or (DEFAULT_FID.get(dev.type, "fid_mnist") if dataset == "mnist" else None)
    if metric is None:
        from gan_bench.metrics.evaluator import default_metrics

        metric = default_metrics(dataset)[0]
    if dev.type == "cpu" and fid_metric is None and dataset == "mnist":
        report.notes.append("FID on cpu defaults to fid_mnist (the MNIST classifier); Inception "
                            "runs ~6 img/s on 2 cores: force it with --fid-metric fid_inception "
                            "--fid-samples 500")
    if fid_samples > 0:
        report.fid = fid_timing(trainer, dataset, metric, fid_samples, dev)
        progress(f"{arch} FID ({metric}, {fid_samples} samples): {report.fid['seconds']:.1f} s")
    if dev.type == "cpu":
        report.notes.append("cpu: the solo row keeps only the deferred checks (no TF32, no CUDA "
                            "graphs); these ratios say nothing about GPU speed")
    return report


def format_report(report: PerfReport) -> str:
    """The report as a markdown table plus a header and the FID line."""
    s = report.setting
    penalty = f" / {s['penalty']}" if s.get("penalty") else ""
    lines = [f"device: {report.device}",
             "versions: " + " ".join(f"{k} {v}" for k, v in report.versions.items()),
             f"setting: {s['arch']} ({s['size']}) / {s['loss']}{penalty} on {s['dataset']}, batch {s['batch']}, "
             f"{s['iters']} timed iterations after {s['warmup']} warm-up", "",
             "| row | img/s | x reference | x solo | precision | seconds | what |",
             "|---|---:|---:|---:|---|---:|---|"]
    for r in report.rows:
        lines.append(f"| {r.name} | {r.img_per_s:,.0f} | {r.ratio:.2f} | {r.ratio_solo:.2f} | "
                     f"{r.precision} | {r.seconds:.3f} | {r.what} |")
    if report.fid:
        f = report.fid
        lines += ["", f"FID ({f['metric']}, extractor {f['extractor']}, {f['n_fake']} generated vs "
                      f"{f['n_real']} real, real features cached): {f['seconds']:.2f} s "
                      f"(generation {f['generate_s']:.2f} s); value {f['value']:.4g}"]
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
