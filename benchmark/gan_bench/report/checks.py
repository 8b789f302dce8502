"""The papers' claims, checked on each GAN's best finalist (the report's "Checked against the
papers" section).

- Image GANs on MNIST: latent interpolations, perceptual path length and vector arithmetic
  (Radford et al. 2015 section 6, Karras et al. 2019; analysis/latent.py); the 16 samples' nearest
  training digits in classifier features and in pixels (the picture beside the `data_copying`
  metric, Meehan et al. 2020; metrics/data_copying.py); G's gradient under the minimax and the
  non-saturating G loss (Goodfellow 2016, figure 16; analysis/theory.py).
- 2-D mixtures: D against the optimal D* = p_data / (p_data + p_g) (Goodfellow et al. 2014,
  Proposition 1), the value of the game during training against -log 4 (Theorem 1), and the
  same gradients.

Computed once: the first report after a run computes them from the finalist's checkpoint and
logs them as artifacts of that finalist's run under checks/ (checks.json with the markdown and
the figure names, and the PNGs); later reports read them back. GAN_BENCH_CHECKS=off skips them
(the test suite's many tiny reports do).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_bench.timing import LEDGER

__all__ = ["ChecksRecord", "ENV", "FOLDER", "enabled", "compute", "to_files", "from_files",
           "log_record", "checkpoint_checks"]

ENV = "GAN_BENCH_CHECKS"  # "off": no checks in reports (tests); anything else: on
FOLDER = "checks"  # artifact folder of the best finalist's run
VERSION = 2  # of checks.json: a different version is computed again (2: the gradient line names its G)
N_NEIGHBOURS = 16  # samples in the nearest-neighbour grid (Meehan et al. show a handful)
THEORY_BUDGET_S = 60.0  # D trained alone (D*) and gradient sweeps: about a minute per GAN


@dataclass(frozen=True)
class ChecksRecord:
    """What the report shows for one GAN: markdown lines (figure links already resolved to
    figures/<name>) and the figures as PNG bytes, named with the GAN's name first."""

    lines: tuple[str, ...]
    figures: tuple[tuple[str, bytes], ...]
    seconds: tuple[tuple[str, float], ...] = ()  # wall seconds per part when computed here


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def _timed(seconds: dict[str, float], part: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    try:
        with LEDGER.phase("papers' checks"):
            return fn()
    finally:
        seconds[part] = round(time.perf_counter() - start, 1)


def compute(ckpt: Path, gan: str, history: dict[str, list[tuple[int, float]]],
            seed: int) -> ChecksRecord:
    """Every check that applies to the finalist checkpoint `ckpt` of GAN `gan`; `history` holds
    its run's logged train/value, train/d_real, train/d_fake (empty for older stores)."""
    from gan_bench.analysis import theory
    from gan_bench.registry import DATASETS

    G, D, config = theory.load_checkpoint(ckpt)
    dataset = config["data"]["dataset"]
    seconds: dict[str, float] = {}
    lines: list[str] = []
    figures: dict[str, bytes] = {}
    if DATASETS.get(dataset).kind == "images" and dataset == "mnist":
        lines += _latent(G, gan, seed, figures, seconds)
        lines += _neighbours(G, gan, seed, figures, seconds)
    report = _timed(seconds, "theory", lambda: theory.theory_checks(
        (G, D, config), seed=seed, budget_seconds=THEORY_BUDGET_S))
    names = {"gradients": f"{gan}_gradients.png"}
    figures[names["gradients"]] = theory.gradients_png({dataset: report.gradients})
    if report.dstar is not None:
        names["dstar"] = f"{gan}_dstar.png"
        figures[names["dstar"]] = theory.dstar_png(report.dstar)
    curve = _value_curve(history)
    if curve:
        names["value"] = f"{gan}_value.png"
        figures[names["value"]] = theory.value_png({gan: curve})
    lines += theory.markdown_lines(report, {k: f"figures/{v}" for k, v in names.items()})
    lines += _value_history_lines(curve)
    return ChecksRecord(tuple(lines), tuple(figures.items()), tuple(seconds.items()))


def _latent(G: Any, gan: str, seed: int, figures: dict[str, bytes],
            seconds: dict[str, float]) -> list[str]:
    from gan_bench.analysis import latent

    rep = _timed(seconds, "latent", lambda: latent.latent_checks(G, seed=seed))
    interp, arith = f"{gan}_latent_interpolation.png", f"{gan}_latent_arithmetic.png"
    figures[interp] = rep.interpolation_png
    if rep.arithmetic_png is not None:
        figures[arith] = rep.arithmetic_png
    return latent.markdown_lines(rep, f"figures/{interp}", f"figures/{arith}") + [""]


def _neighbours(G: Any, gan: str, seed: int, figures: dict[str, bytes],
                seconds: dict[str, float]) -> list[str]:
    """16 samples (the evaluation z) and their 5 nearest training digits, two ways."""
    import torch

    from gan_bench.metrics import features
    from gan_bench.metrics.data_copying import neighbour_grid
    from gan_bench.metrics.evaluator import Evaluator
    from gan_bench.train import sampling

    def draw() -> bytes:
        ev = Evaluator("mnist", real_split="test", metrics=["fid_mnist"])
        train_images = ev.train_samples()
        train_feats = ev.train_features("mnist_classifier")
        fake = sampling.generate(G, N_NEIGHBOURS, seed, images=True, device=torch.device("cpu"))
        ext = features.get_extractor("mnist_classifier", "cpu")
        fake_feats = features.extract(ext, fake)
        return neighbour_grid(fake, train_images, fake_feats, train_feats.features, k=5)

    name = f"{gan}_neighbours.png"
    figures[name] = _timed(seconds, "neighbours", draw)
    return ["### Nearest training digits", "",
            f"{N_NEIGHBOURS} samples (z seed {seed}, as at evaluation) and their 5 nearest of the "
            "60,000 training digits, in the MNIST classifier's 128-d features and in pixels "
            "(Euclidean). A copying G shows its own sample again in the first column; the "
            "`data_copying` column of the leaderboard is the test over thousands of samples.", "",
            f"![nearest training digits](figures/{name})", ""]


def _value_curve(history: dict[str, list[tuple[int, float]]]) -> dict[int, tuple[float, float, float]]:
    """{step: (V, mean D(x), mean D(G(z)))} where all three were logged."""
    v, r, f = (dict(history.get(f"train/{k}", [])) for k in ("value", "d_real", "d_fake"))
    return {s: (v[s], r[s], f[s]) for s in sorted(v) if s in r and s in f}


def _value_history_lines(curve: dict[int, tuple[float, float, float]]) -> list[str]:
    if not curve:
        return []
    tail = list(curve.values())[-max(1, len(curve) // 10):]  # the last tenth of training
    v, r, f = (sum(x[i] for x in tail) / len(tail) for i in range(3))
    return ["", f"During training (the finalist's logged D steps, mean of the last "
            f"{len(tail)} of {len(curve)} logs): V = {v:.3f} (-log 4 = -1.386 at the optimum), "
            f"mean D(x) = {r:.3f}, mean D(G(z)) = {f:.3f} (1/2 at the optimum).", ""]


def to_files(record: ChecksRecord, folder: Path) -> Path:
    """Write `record` into folder (checks.json + PNGs); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, png in record.figures:
        (folder / name).write_bytes(png)
    meta = {"version": VERSION, "lines": list(record.lines),
            "figures": [name for name, _ in record.figures], "seconds": dict(record.seconds)}
    (folder / "checks.json").write_text(json.dumps(meta, indent=1))
    return folder


def from_files(meta_path: Path) -> ChecksRecord | None:
    """The record logged next to `meta_path` (checks.json), or None when it is of another
    version or a figure is missing (then it is computed again)."""
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != VERSION:
            return None
        figures = tuple((n, (meta_path.parent / n).read_bytes()) for n in meta["figures"])
        return ChecksRecord(tuple(meta["lines"]), figures,
                            tuple((k, float(v)) for k, v in meta.get("seconds", {}).items()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def log_record(record: ChecksRecord, log_artifact: Callable[[Path, str], None]) -> None:
    """Log `record` as the artifact folder checks/ through `log_artifact(path, folder)`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = to_files(record, Path(tmp) / "files")
        for path in sorted(folder.iterdir()):
            log_artifact(path, FOLDER)


def checkpoint_checks(ckpt: Path, seed: int, budget_seconds: float) -> ChecksRecord:
    """The theory checks of one checkpoint (`gan-bench theory FILE`): D* for a 2-D mixture with
    a probabilistic loss, V of the saved D, G's gradients; figures named after the file."""
    from gan_bench.analysis import theory

    stem = ckpt.name.removesuffix(".pt")
    start = time.perf_counter()
    report = theory.theory_checks(ckpt, seed=seed, budget_seconds=budget_seconds)
    names = {"gradients": f"{stem}_gradients.png"}
    figures = {names["gradients"]: theory.gradients_png({report.gan["dataset"]: report.gradients})}
    if report.dstar is not None:
        names["dstar"] = f"{stem}_dstar.png"
        figures[names["dstar"]] = theory.dstar_png(report.dstar)
    lines = theory.markdown_lines(report, names)
    return ChecksRecord(tuple(lines), tuple(figures.items()),
                        (("theory", round(time.perf_counter() - start, 1)),))

