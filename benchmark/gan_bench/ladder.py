"""The calibration ladder: real digits with known damage, scored with the same protocol as the
ranked rows, so that a number such as fid_mnist 560 can be read ("worse than real digits under
sigma-64 pixel noise, better than a single class").

Rungs (MNIST-family 1x28x28 datasets), each `n_fake` images drawn from the *training* split with
a seeded subset (seed 0), then damaged, scored against the report's real split:

    real train                 the undamaged subset (the ceiling a GAN can reach)
    real split itself          the real split's first n_fake images: the sampling floor at this n
    pixel noise sigma 25 / 64  + N(0, sigma^2) per pixel on the 0-255 scale, rounded, clipped
    blur sigma 1 / 2 px        Gaussian blur (kernel radius 3 sigma, edges replicated)
    digits 0-4 only            half the classes (a GAN that drops modes)
    one class (digit 1)        total mode collapse onto real digits (repeats beyond its ~6,700)
    uniform noise              U{0..255} pixels (seed 1): the floor

Results are cached per protocol (dataset, real split, n_fake, n_real, subset seed, metrics,
classifier weights, versions) under the gan-bench cache as JSON; computing one ladder at
10,000 samples takes about a minute and a half on a 2-core CPU, at 2,000 about 20 s.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from gan_bench.errors import UserInputError

__all__ = ["RUNGS", "LADDER_METRICS", "damaged_sets", "ladder_rows", "ladder_markdown",
           "LADDER_DATASETS", "gaussian_blur", "pixel_noise"]

LADDER_METRICS = ["fid_mnist", "is_mnist", "precision_recall", "modes"]
LADDER_DATASETS = ("mnist",)  # 1x28x28 digits the project's classifier knows
COLUMNS = (("fid_mnist", "fid_mnist", 1), ("is_mnist", "IS", 2), ("classes_covered", "classes", 0),
           ("confident_share", "confident", 2), ("precision", "precision", 2),
           ("recall", "recall", 2))
SINGLE_CLASS = 1
CACHE_VERSION = 2  # bump when a rung's definition or order changes


def pixel_noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """uint8 (N, C, H, W) + N(0, sigma^2) on the 0-255 scale, rounded and clipped -> uint8."""
    g = torch.Generator().manual_seed(seed)
    noisy = x.float() + sigma * torch.randn(x.shape, generator=g)
    return noisy.round().clamp_(0, 255).to(torch.uint8)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 (N, C, H, W) blurred with a separable Gaussian of `sigma` pixels -> uint8."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = x.float()
    row, col = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), row, groups=c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), col, groups=c)
    return y.round().clamp_(0, 255).to(torch.uint8)


def _pick(labels: torch.Tensor, n: int,
          keep: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Indices of n samples (seeded, seed 0) among those whose label passes `keep`; drawn with
    repetition only when fewer exist (one MNIST class has ~6,000 digits; a collapsed G repeats)."""
    idx = torch.nonzero(keep(labels)).flatten()
    g = torch.Generator().manual_seed(0)
    if len(idx) == 0:
        raise UserInputError("ladder: no training samples for a rung")
    if len(idx) < n:
        return idx[torch.randint(len(idx), (n,), generator=g)]
    return idx[torch.randperm(len(idx), generator=g)[:n]]


def damaged_sets(dataset: str, n: int, real_split: str = "test") -> dict[str, torch.Tensor]:
    """Rung label -> uint8 (n, 1, 28, 28) images, in ladder order (best to worst, roughly)."""
    from gan_bench.data import load_dataset

    train = load_dataset(dataset, "train")
    x, y = train.data, torch.as_tensor(train.labels)
    base = x[_pick(y, n, lambda lab: torch.ones_like(lab, dtype=torch.bool))]
    real = load_dataset(dataset, real_split).data
    return {
        "real train (seeded subset)": base,
        f"real {real_split} split itself": real[:n],
        "pixel noise sigma 25": pixel_noise(base, 25.0, seed=2),
        "blur sigma 1 px": gaussian_blur(base, 1.0),
        "digits 0-4 only": x[_pick(y, n, lambda lab: lab <= 4)],
        "pixel noise sigma 64": pixel_noise(base, 64.0, seed=3),
        "blur sigma 2 px": gaussian_blur(base, 2.0),
        f"one class (digit {SINGLE_CLASS})": x[_pick(y, n, lambda lab: lab == SINGLE_CLASS)],
        "uniform noise": torch.randint(0, 256, base.shape, dtype=torch.uint8,
                                       generator=torch.Generator().manual_seed(1)),
    }


RUNGS = ("real train (seeded subset)", "real split itself", "pixel noise sigma 25",
         "blur sigma 1 px", "digits 0-4 only", "pixel noise sigma 64", "blur sigma 2 px",
         f"one class (digit {SINGLE_CLASS})", "uniform noise")


def _cache_key(protocol: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, default=str).encode()).hexdigest()[:20]


def ladder_rows(dataset: str, *, n_fake: int, n_real: int | None, real_split: str = "test",
                seed: int = 0, device: str = "cpu", metrics: Sequence[str] = LADDER_METRICS,
                use_cache: bool = True) -> list[dict[str, Any]]:
    """[{label, values: {record key: value}, protocol: fid_mnist's protocol}] per rung.

    The protocol is the Evaluator's (n_real real samples of `real_split`, subset seed `seed`,
    every fake set of n_fake): the same as a suite's finals with metrics.n_fake / n_real.
    """
    from gan_bench.cache import atomic_write_json, cache_root
    from gan_bench.metrics.evaluator import Evaluator

    if dataset not in LADDER_DATASETS:
        raise UserInputError(f"ladder: defined for {', '.join(LADDER_DATASETS)} only, not {dataset!r}")
    ev = Evaluator(dataset, real_split=real_split, metrics=list(metrics), n_real=n_real,
                   device=device, seed=seed)
    key_protocol = {"v": CACHE_VERSION, "dataset": dataset, "real_split": real_split,
                    "n_fake": n_fake, "n_real": n_real, "seed": seed, "metrics": list(metrics),
                    "device": torch.device(device).type, "torch": torch.__version__,
                    "extractor": ev._extractor_protocol("mnist_classifier")}
    path = cache_root() / "ladder" / f"{dataset}-{_cache_key(key_protocol)}.json"
    if use_cache and path.exists():
        try:
            saved = json.loads(path.read_text())
            if saved.get("key") == key_protocol:
                return saved["rows"]
        except (OSError, ValueError):
            pass  # recomputed below
    rows = []
    for label, fake in damaged_sets(dataset, n_fake, real_split).items():
        records = ev.evaluate(fake)
        rows.append({"label": label, "values": {k: float(r.value) for k, r in records.items()},
                     "protocol": records["fid_mnist"].protocol if "fid_mnist" in records else {}})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"key": key_protocol, "rows": rows})
    return rows


def _cell(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{0.0 if abs(value) < 0.5 * 10 ** -digits else value:.{digits}f}"  # no "-0.0"


def ladder_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown table of the rungs (pure)."""
    head = ["rung"] + [name for _, name, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        vals = row["values"]
        cells = [row["label"]] + [_cell(vals.get(k), d) for k, _, d in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def protocol_text(rows: Sequence[dict[str, Any]]) -> str:
    p = rows[0]["protocol"] if rows else {}
    sha = str(p.get("extractor_sha256", "?"))[:12]
    return (f"Protocol: {p.get('extractor', '?')} (weights sha256 {sha}), n_fake "
            f"{p.get('n_fake', '?')}, n_real {p.get('n_real', '?')} of the "
            f"{p.get('real_split', '?')} split, {p.get('dtype', '?')}; damaged sets drawn from the training split (seed 0). "
            "classes: classes with >= 1% of the samples (classifier argmax); confident: share "
            "of samples the classifier gives >= 0.9 probability.")


def ladder_markdown(dataset: str, *, n_fake: int, n_real: int | None, real_split: str = "test",
                    seed: int = 0, device: str = "cpu") -> list[str]:
    """The ladder as markdown lines ([] for datasets without a ladder)."""
    if dataset not in LADDER_DATASETS:
        return []
    rows = ladder_rows(dataset, n_fake=n_fake, n_real=n_real, real_split=real_split, seed=seed,
                       device=device)
    return [protocol_text(rows), "", *ladder_table(rows)]
