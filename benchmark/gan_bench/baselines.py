"""Baselines: every MNIST preset trained at its paper's defaults for a stated wall-clock budget,
scored on one fixed protocol, so a reader can see that each net learns (and how fast).

    gan-bench baselines [--dataset mnist] [--seconds 120] [--presets dcgan,ns_gan] [--out DIR]

One process trains the presets one after another on one device (the budget is wall-clock seconds
of training; evaluation time is not counted). The curve is scored at a few fractions of the
budget with a cheap protocol (n_fake `curve_n` vs the cached real test features), the end with
the full protocol (n_fake `n` vs the whole test split), beside the calibration ladder of the same
protocol. Settings not stated by a preset's paper use TrainConfig's defaults (batch 64, k 1).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from gan_bench.errors import UserInputError
from gan_bench.train.callbacks import Callback

if TYPE_CHECKING:
    from gan_bench.data.base import ArrayDataset
    from gan_bench.metrics.evaluator import Evaluator
    from gan_bench.presets import Preset
    from gan_bench.train.config import TrainConfig
    from gan_bench.train.results import TrainResult
    from gan_bench.train.trainer import Trial

__all__ = ["BaselineResult", "mnist_presets", "train_baseline", "run_baselines", "render_baselines",
           "FINAL_METRICS"]

FINAL_METRICS = ["fid_mnist", "is_mnist", "precision_recall", "modes"]
CURVE_METRIC = "fid_mnist"
CURVE_FRACTIONS = (0.125, 0.25, 0.5, 0.75)  # and 1.0: the final, full-protocol point
GRID_N = 64  # samples in each preset's grid (8 x 8, fixed z seed 0)
BIG_ITERATIONS = 10**9  # the budget is seconds: the trainer stops by request long before this


@dataclass
class BaselineResult:
    """One preset's run: settings used, steps done, the curve and the final records."""

    preset: str
    paper: str
    settings: dict[str, Any]  # arch, loss, penalty, options and the TrainConfig fields used
    iterations: int = 0
    seconds: float = 0.0  # training wall time (evaluation excluded)
    curve: list[tuple[float, int, float]] = field(default_factory=list)  # (seconds, step, fid)
    final: dict[str, float] = field(default_factory=dict)  # record key -> value (full protocol)
    protocol: dict[str, Any] = field(default_factory=dict)  # fid_mnist's protocol record
    status: str = "completed"  # or "diverged at step N"
    grid: str = ""  # file name of the sample grid, relative to the report folder


def mnist_presets() -> list[str]:
    """Every registered preset whose architecture takes 28x28 images (all built-ins do)."""
    from gan_bench.registry import ARCHITECTURES, PRESETS

    return [p["name"] for p in PRESETS.catalogue()
            if "images28" in ARCHITECTURES.get(p["arch"]).supports]


def check_request(presets: Sequence[str], seconds: float, dataset: str, n: int) -> None:
    """UserInputError (one line) for what `gan-bench baselines` cannot run."""
    if dataset != "mnist":
        raise UserInputError(f"baselines: only mnist has a baseline protocol so far, got {dataset!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserInputError(f"baselines: --seconds must be a positive number, got {seconds!r}")
    if n < 2:
        raise UserInputError(f"baselines: --n must be >= 2 samples, got {n}")
    known = mnist_presets()
    unknown = [p for p in presets if p not in known]
    if unknown or not presets:
        raise UserInputError(f"baselines: unknown MNIST preset(s) {', '.join(unknown) or '(none given)'} "
                             f"(known: {', '.join(known)})")


class _Budget(Callback):
    """Stops training after `seconds` of training time; scores the curve at fixed fractions."""

    def __init__(self, seconds: float, score: Callable[[Trial], float]) -> None:
        self.seconds, self.score = seconds, score
        self.marks = [f * seconds for f in CURVE_FRACTIONS]
        self.curve: list[tuple[float, int, float]] = []
        self.trained = 0.0
        self._since = 0.0

    def on_train_start(self, trainer: Trial) -> None:
        self._since = time.perf_counter()

    def on_log(self, trainer: Trial, step: int, diagnostics: dict[str, float]) -> None:
        self.trained += time.perf_counter() - self._since
        if self.marks and self.trained >= self.marks[0]:
            self.marks.pop(0)
            self.curve.append((self.trained, step, self.score(trainer)))
        if self.trained >= self.seconds:
            trainer.request_stop(f"time budget of {self.seconds:g} s")
        self._since = time.perf_counter()


def _config(preset: Preset, device: str, seed: int, log_every: int) -> TrainConfig:
    from gan_bench.train.config import TrainConfig

    return TrainConfig(**{**preset.train, "iterations": BIG_ITERATIONS, "eval_every": 0,
                          "log_every": log_every, "seed": seed, "device": device})


def train_baseline(name: str, seconds: float, *, data: ArrayDataset, curve_eval: Evaluator,
                   final_eval: Evaluator, n: int, curve_n: int, device: str = "cpu", seed: int = 0,
                   log_every: int = 10) -> tuple[BaselineResult, torch.Tensor]:
    """Train preset `name` for `seconds` of wall time; return its result and a sample grid
    batch (GRID_N uint8 images from z seed 0). Diverging is a result, not an error."""
    from gan_bench.presets import get_preset
    from gan_bench.train.trainer import Trainer

    preset = get_preset(name)
    cfg = _config(preset, device, seed, log_every)

    def score(trainer: Trial) -> float:
        return float(curve_eval.evaluate(trainer.generate(curve_n, seed=1))[CURVE_METRIC].value)

    budget = _Budget(seconds, score)
    trainer = Trainer(preset.spec, cfg, data, callbacks=[budget])
    settings = {"arch": preset.spec.arch, "loss": preset.spec.loss, "penalty": preset.spec.penalty,
                "arch_options": dict(preset.spec.arch_options), "lr_g": cfg.lr_g,
                "lr_d": cfg.resolved_lr_d, "k": cfg.k, "beta1": cfg.beta1, "beta2": cfg.beta2,
                "optimizer": cfg.optimizer, "batch_size": cfg.batch_size}
    result = BaselineResult(name, preset.paper, settings)
    outcome = cast("TrainResult", trainer.fit())  # one trial: one TrainResult
    if outcome.error is not None:
        result.status = f"diverged: {outcome.error}"
    result.iterations, result.seconds, result.curve = trainer.step, budget.trained, budget.curve
    if result.status == "completed":
        records = final_eval.evaluate(trainer.generate(n, seed=1))
        result.final = {key: float(rec.value) for key, rec in records.items()}
        result.protocol = records["fid_mnist"].protocol
        result.curve.append((budget.trained, trainer.step, result.final["fid_mnist"]))
    return result, trainer.generate(GRID_N, seed=0)


def run_baselines(presets: Sequence[str], seconds: float, *, dataset: str = "mnist",
                  n: int = 10000, curve_n: int = 2000, device: str = "cpu", seed: int = 0,
                  progress: Callable[[str], None] = print) -> list[tuple[BaselineResult, torch.Tensor]]:
    """Train each preset in turn (see train_baseline); `progress` gets one line per preset."""
    from gan_bench.data import load_dataset
    from gan_bench.metrics.evaluator import Evaluator

    check_request(presets, seconds, dataset, n)
    data = load_dataset(dataset, "train")
    curve_eval = Evaluator(dataset, real_split="test", metrics=[CURVE_METRIC], n_real=None,
                           device=device)
    final_eval = Evaluator(dataset, real_split="test", metrics=FINAL_METRICS, n_real=None,
                           device=device)
    out = []
    for name in presets:
        result, grid = train_baseline(name, seconds, data=data, curve_eval=curve_eval,
                                      final_eval=final_eval, n=n, curve_n=curve_n, device=device,
                                      seed=seed)
        fid = result.final.get("fid_mnist")
        progress(f"{name}: {result.iterations} iterations in {result.seconds:.0f} s, "
                 f"fid_mnist {'-' if fid is None else f'{fid:.1f}'}, "
                 f"classes {result.final.get('classes_covered', '-')} ({result.status})")
        out.append((result, grid))
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _learns(result: BaselineResult) -> str:
    """A stated reading of the numbers: 'learns' needs digits of most classes, not noise."""
    fid, classes = result.final.get("fid_mnist"), result.final.get("classes_covered")
    conf = result.final.get("confident_share")
    if fid is None:
        return "no (" + result.status + ")"
    if fid <= 200 and (classes or 0) >= 9 and (conf is None or conf >= 0.5):
        return "yes"
    if fid <= 600 and (classes or 0) >= 7:
        return "partly (digits, not yet clean)"
    return "no (collapsed or noise at this budget)"


def render_baselines(results: Sequence[BaselineResult], *, seconds: float, header: Sequence[str],
                     ladder: Sequence[str] = (), n: int = 10000) -> str:
    """The markdown of reports/baselines/README.md (pure: results in, text out)."""
    lines = ["# Baselines: every MNIST preset at its paper's defaults", "", *header, ""]
    lines += [f"Each preset trains for {seconds:g} s of wall time on the machine above (evaluation "
              f"not counted), then {n:,} samples (z seed 1, G in eval mode) are scored against the "
              "10,000 MNIST test digits. `learns` reads the row: yes = fid_mnist <= 200 with >= 9 "
              "classes covered and >= 50% confident samples; partly = fid_mnist <= 600 with >= 7 "
              "classes.", ""]
    cols = ["preset", "arch / loss / penalty", "settings", "iterations", "seconds", "fid_mnist",
            "IS", "classes", "confident", "precision", "recall", "learns"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        s = r.settings
        opts = "".join(f", {k}={v}" for k, v in s["arch_options"].items())
        what = f"{s['arch']} / {s['loss']} / {s['penalty']}{opts}"
        how = (f"{s['optimizer']} lr_g {s['lr_g']:g}, lr_d {s['lr_d']:g}, k {s['k']}, "
               f"beta1 {s['beta1']:g}, batch {s['batch_size']}")
        f = r.final
        lines.append("| " + " | ".join([
            f"`{r.preset}`", what, how, str(r.iterations), f"{r.seconds:.0f}",
            _fmt(f.get("fid_mnist")), _fmt(f.get("is_mnist"), 2),
            "-" if "classes_covered" not in f else f"{f['classes_covered']:.0f}",
            _fmt(f.get("confident_share"), 2), _fmt(f.get("precision"), 2),
            _fmt(f.get("recall"), 2), _learns(r)]) + " |")
    lines += ["", "## fid_mnist against training time", "",
              f"Scored on {CURVE_FRACTIONS} of the budget with 2,000 samples (the last point: "
              "the 10,000-sample final).", "", "| preset | (seconds, iterations, fid_mnist) ... |",
              "|---|---|"]
    for r in results:
        pts = ", ".join(f"({t:.0f} s, {i}, {v:.0f})" for t, i, v in r.curve)
        lines.append(f"| `{r.preset}` | {pts or '-'} |")
    if ladder:
        lines += ["", f"## Calibration ladder (same protocol: {n:,} vs the test split)", "",
                  *ladder]
    lines += ["", "## Samples (8 x 8, fixed z, G in eval mode)", ""]
    for r in results:
        if r.grid:
            lines += [f"**{r.preset}** ({r.iterations} iterations, fid_mnist "
                      f"{_fmt(r.final.get('fid_mnist'))})", "", f"![{r.preset}]({r.grid})", ""]
    return "\n".join(lines).rstrip() + "\n"


def machine_text(device: str) -> str:
    from gan_bench.procs import cpu_model

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return (f"{cpu_model()} ({torch.get_num_threads()} torch threads), {platform.machine()}, "
            f"torch {torch.__version__}")


def write_grid(path: Path, images: torch.Tensor) -> None:
    from gan_bench.images import encode_png, image_grid

    path.write_bytes(encode_png(image_grid(images.numpy(), nrow=8)))


def header_lines(*, command: str, wall_seconds: float, device: str, sha: str, date: str,
                 n: int = 10000) -> list[str]:
    """The report header: how it was made, on what, from which commit."""
    import sys

    return [f"- command: `{command}`", f"- wall time: {wall_seconds:.0f} s (training, evaluation "
            "and this report)", f"- git sha: `{sha}`", f"- date: {date}",
            f"- machine: {machine_text(device)}; device {device}",
            f"- python {sys.version.split()[0]}",
            "- protocol: fid_mnist / is_mnist / precision_recall / modes on the project's MNIST "
            "classifier (gan_bench/assets/mnist_classifier.pt; weights sha256 in results.json), "
            f"{n:,} generated vs the 10,000 test digits, float32, no resize"]


def write_baselines(pairs: Sequence[tuple[BaselineResult, torch.Tensor]], out_dir: str | Path, *,
                    seconds: float, header: Sequence[str], ladder: Sequence[str] = (),
                    n: int = 10000) -> Path:
    """reports/baselines/: README.md, grids/<preset>.png and results.json (the numbers, for
    re-rendering with `gan-bench baselines --render`)."""
    from dataclasses import asdict

    from gan_bench.cache import atomic_write_json

    out = Path(out_dir)
    (out / "grids").mkdir(parents=True, exist_ok=True)
    results = []
    for result, grid in pairs:
        result.grid = f"grids/{result.preset}.png"
        write_grid(out / result.grid, grid)
        results.append(result)
    atomic_write_json(out / "results.json", {"seconds": seconds, "n": n, "header": list(header),
                                             "results": [asdict(r) for r in results]})
    text = render_baselines(results, seconds=seconds, header=header, ladder=ladder, n=n)
    (out / "README.md").write_text(text)
    return out / "README.md"


def rerender(out_dir: str | Path, ladder: Sequence[str] = ()) -> Path:
    """Re-render README.md from results.json (e.g. after the ladder's rows were measured)."""
    import json

    out = Path(out_dir)
    try:
        saved = json.loads((out / "results.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"baselines: cannot read {out / 'results.json'}: {exc}") from None
    results = [BaselineResult(**{**r, "curve": [tuple(p) for p in r["curve"]]})
               for r in saved["results"]]
    text = render_baselines(results, seconds=saved["seconds"], header=saved["header"],
                            ladder=ladder, n=saved.get("n", 10000))
    (out / "README.md").write_text(text)
    return out / "README.md"
