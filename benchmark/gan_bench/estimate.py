"""What a suite will cost before it runs: G steps, evaluations and hours (issue 12).

`count_suite` is pure (a suite and its training-set size in, counts out); `time_gan` and
`time_evaluation` measure on the suite's device; `estimate_suite` puts them together and
`format_estimate` prints them. `SuiteClock` turns the work left and the seconds per G step
measured so far into the suite's ETA that `gan-bench run` shows.

What is counted per GAN, in the runner's order of things (runner.py):

- a run is one search trial or one finalist run; each trains `iterations` G steps: the budget's
  iterations, or its epochs converted by `TrainConfig.total_iterations` with k and batch_size at
  the search's midpoint (`midpoint_params`: k is the mean of its range, rounded half up);
- runs: budget.trials search trials (1 for a GAN that searches nothing), then
  min(finalists.top, trials) x finalists.seeds;
- evaluations: each run scores the objective on n_fake_search samples every eval_every G steps
  and at its end (ceil(iterations / eval_every); 1 when eval_every is 0); each finalist run
  then scores every metric once on n_fake samples (a final evaluation).

Time: seconds per G step are measured on WARMUP + ITERS iterations of each GAN at its midpoint
setting; an objective evaluation is timed once on EVAL_SAMPLES samples and scaled linearly;
final metrics whose extractor is not the objective's (Inception, on MNIST) are too slow to time
on a CPU and get ROUGH_IMG_PER_S, said so in the output. The total is an estimate, not a bound:
pruned trials stop early and trials packed together on a GPU (budget.packed_trials) share the
device (both make it less), while one-time work (the real and training features, the ladder),
MLflow writes, the report and its checks are not counted and short timed bursts can read fast
(both make it more: the quickstart on a 2-core CPU, 1.6 min estimated, took 2.1 min of runs and
2.5 min with its report).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import torch

from gan_bench.errors import GanBenchError
from gan_bench.procs import cpu_model

if TYPE_CHECKING:
    from gan_bench.config.resolve import ResolvedGan
    from gan_bench.config.schema import Suite
    from gan_bench.data.base import ArrayDataset
    from gan_bench.metrics.evaluator import Evaluator
    from gan_bench.train.config import TrainConfig
    from gan_bench.train.trainer import Trainer

__all__ = ["GanCount", "GanTiming", "SuiteEstimate", "SuiteClock", "count_suite", "midpoint_params",
           "time_gan", "time_evaluation", "estimate_suite", "format_estimate", "format_duration",
           "shrink_overrides", "WARMUP", "ITERS", "EVAL_SAMPLES", "ROUGH_IMG_PER_S", "LARGE_S"]

WARMUP = 2  # untimed iterations first (allocator, lazy init, cudnn autotuning)
ITERS = 5  # timed iterations per GAN: ~3 s for a DCGAN at k=3 on one CPU thread
EVAL_SAMPLES = 2000  # samples of the timed objective evaluation (time scales linearly with N)
# Images/s of an extractor not timed here: Inception (299x299) runs ~6 img/s on 2 CPU cores
# (measured, see `gan-bench score --help`); the cuda figure is a rough guess for a current GPU.
ROUGH_IMG_PER_S = {"cpu": 6.0, "cuda": 1000.0}
LARGE_S = 30 * 60  # above this, print the --set overrides that shrink the suite
SHRINK = {"trials": 3, "iterations": 500, "top": 1, "seeds": 1, "n_fake_search": 2000}
# What the estimate survives (a suite that cannot train is reported, validate still finishes).
_SKIPPED = (GanBenchError, ValueError, RuntimeError)


# --- counting (pure) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GanCount:
    """One GAN's share of a suite."""

    name: str
    k: int  # D steps per G step at the search's midpoint (what is timed)
    batch_size: int
    iterations: int  # G steps of one run (a search trial or a finalist run)
    trials: int  # search trials
    finalists: int  # finalist runs: min(top, trials) x seeds
    evals_per_run: int  # objective evaluations (n_fake_search samples) of one run

    @property
    def runs(self) -> int:
        return self.trials + self.finalists

    @property
    def steps(self) -> int:
        return self.runs * self.iterations

    @property
    def evals(self) -> int:
        """Objective evaluations on n_fake_search samples, search and finalists."""
        return self.runs * self.evals_per_run

    @property
    def final_evals(self) -> int:
        """Evaluations of every metric on n_fake samples (one per finalist run)."""
        return self.finalists


def midpoint_params(gan: ResolvedGan) -> dict[str, int | float]:
    """The middle of each searched parameter of a `config.ResolvedGan`: a range's midpoint
    (geometric on a log scale), the mean of choices; k and batch_size rounded half up."""
    from gan_bench.config import INT_PARAMS, Range

    out: dict[str, int | float] = {}
    for name, param in gan.search.items():
        if isinstance(param, Range):
            mid = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
        else:
            mid = sum(param.choices) / len(param.choices)
        out[name] = math.floor(mid + 0.5) if name in INT_PARAMS else float(mid)
    return out


def count_suite(suite: Suite, n_train: int) -> list[GanCount]:
    """Runs, G steps and evaluations of each GAN of `suite` (a config.Suite) on `n_train`
    training samples (they convert epochs to iterations); see the module docstring."""
    from gan_bench.plan import gan_trials, trial_config

    b, f = suite.budget, suite.finalists
    out = []
    for gan in suite.resolved_gans():
        trials = gan_trials(suite, gan)
        cfg = trial_config(suite, gan, midpoint_params(gan), seed=0, device="cpu")
        iterations = cfg.total_iterations(n_train)
        evals = -(-iterations // b.eval_every) if b.eval_every else 1
        out.append(GanCount(gan.name, cfg.k, cfg.batch_size, iterations, trials,
                            min(f.top, trials) * f.seeds, evals))
    return out


# --- timing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GanTiming:
    step_s: float  # seconds per G step (k D steps and one G step), warm
    sample_s: float  # seconds per generated evaluation sample (fixed z, eval mode)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_gan(trainer: Trainer, warmup: int = WARMUP, iters: int = ITERS,
             n_samples: int = 500) -> GanTiming:
    """Seconds per G step of `trainer` (a train.Trainer, which this trains further) over `iters`
    iterations after `warmup` untimed ones, and seconds per sample of generating `n_samples`."""
    trainer.total_iterations = trainer.step + warmup
    trainer.fit()
    trainer.total_iterations = trainer.step + iters
    _sync(trainer.device)
    start = time.perf_counter()
    trainer.fit()
    _sync(trainer.device)
    step_s = (time.perf_counter() - start) / iters
    start = time.perf_counter()
    trainer.generate(n_samples, seed=0)
    return GanTiming(step_s, (time.perf_counter() - start) / n_samples)


def time_evaluation(evaluator: Evaluator, metric: str | list[str], fake: torch.Tensor) -> float:
    """Seconds per sample of evaluating `metric` (or several) on `fake`, after an untimed first
    evaluation (it loads the extractor and computes, or reads the cached, real features)."""
    metrics = [metric] if isinstance(metric, str) else list(metric)
    evaluator.evaluate(fake, metrics)
    start = time.perf_counter()
    evaluator.evaluate(fake, metrics)
    _sync(evaluator.device)
    return (time.perf_counter() - start) / len(fake)


def timing_config(suite: Suite, gan: ResolvedGan, device: torch.device) -> TrainConfig:
    """The TrainConfig timed for `gan`: its midpoint setting, no evaluations."""
    from gan_bench.plan import trial_config

    cfg = trial_config(suite, gan, midpoint_params(gan), seed=0, device=str(device))
    return cfg.with_(iterations=WARMUP + ITERS, epochs=None, eval_every=0, checkpoint_every=0)


def describe_device(device: torch.device) -> str:
    """"cpu (AMD EPYC 7B13 x 2 threads)" or "cuda (NVIDIA H100 80GB HBM3)"."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({cpu_model()} x {threads} thread{'s' if threads > 1 else ''})"


# --- the estimate -------------------------------------------------------------------------------

@dataclass
class SuiteEstimate:
    suite: Suite
    counts: list[GanCount]
    device: str  # describe_device
    device_type: str  # "cpu" or "cuda"
    n_train: int  # training samples (epochs -> iterations)
    timings: dict[str, GanTiming | str] = field(default_factory=dict)  # GAN -> timing or why not
    eval_sample_s: float | str | None = None  # objective, per sample; str: why not timed
    eval_n: int = 0  # samples of the timed evaluation
    timed: bool = False  # False: counts only
    untimed: str = "--no-estimate"  # why the time was not measured

    def untimed_extractors(self) -> list[str]:
        """Extractors of the final metrics other than the objective's: ROUGH_IMG_PER_S."""
        m = self.suite.metrics
        objective = _extractor(self.suite, m.objective)
        found = [_extractor(self.suite, r) for r in m.final]
        return sorted({e for e in found if e not in (objective, "identity", None)})

    def gan_split(self, count: GanCount) -> tuple[float, float] | None:
        """(training, evaluation) seconds of one GAN; None when it was not timed."""
        timing, m = self.timings.get(count.name), self.suite.metrics
        if not isinstance(timing, GanTiming):
            return None
        score = self.eval_sample_s if isinstance(self.eval_sample_s, float) else 0.0
        per_sample = timing.sample_s + score
        extra = len(self.untimed_extractors()) / ROUGH_IMG_PER_S.get(self.device_type, 6.0)
        evals = (count.evals * m.n_fake_search * per_sample
                 + count.final_evals * m.n_fake * (per_sample + extra))
        return count.steps * timing.step_s, evals

    def gan_seconds(self, count: GanCount) -> float | None:
        split = self.gan_split(count)
        return None if split is None else sum(split)

    def total_seconds(self) -> float | None:
        """Seconds of the whole suite; None unless every GAN was timed."""
        seconds = [self.gan_seconds(c) for c in self.counts]
        return None if any(s is None for s in seconds) else sum(cast("list[float]", seconds))

    def rates(self) -> dict[str, float]:
        """Seconds per G step, evaluations included, of each timed GAN (SuiteClock's prior)."""
        out = {}
        for c in self.counts:
            seconds = self.gan_seconds(c)
            if seconds is not None and c.steps:
                out[c.name] = seconds / c.steps
        return out

    def with_suite(self, suite: Suite) -> SuiteEstimate:
        """The same timings applied to another version of the suite (e.g. shrunk by --set)."""
        return dataclasses.replace(self, suite=suite, counts=count_suite(suite, self.n_train))


def _extractor(suite: Suite, request: str) -> str | None:
    """The feature extractor a metric request uses on the suite's dataset (None: it cannot be
    computed there; the evaluation's timing says why)."""
    from gan_bench.metrics.metric import DataInfo, parse_request
    from gan_bench.registry import METRICS

    try:
        name, extractor = parse_request(request)
        plan = METRICS.get(name).plan(request, DataInfo.of(suite.dataset.name), extractor, {},
                                      suite.metrics.n_real, 0)
    except GanBenchError:
        return None
    return plan.extractor


def estimate_suite(suite: Suite, *, data: ArrayDataset | None = None,
                   evaluator: Evaluator | None = None,
                   timed: bool = True) -> SuiteEstimate:
    """Counts of `suite`, and unless `timed` is False its time measured on the suite's device.
    `data` and `evaluator` default to what the runner would build (runner.train_data,
    runner.suite_evaluator); a GAN that cannot be timed is reported, not raised."""
    from gan_bench.devices import resolve_device
    from gan_bench.plan import EVAL_SEED, suite_evaluator, train_data
    from gan_bench.train import Trainer

    data = train_data(suite) if data is None else data
    device = resolve_device(suite.device)
    est = SuiteEstimate(suite, count_suite(suite, len(data)), describe_device(device),
                        device.type, len(data), timed=timed)
    if not timed:
        return est
    first = None
    for gan in suite.resolved_gans():
        try:
            trainer = Trainer(gan.spec, timing_config(suite, gan, device), data)
            est.timings[gan.name] = time_gan(trainer)
            first = first or trainer
        except _SKIPPED as exc:
            est.timings[gan.name] = f"not timed ({type(exc).__name__}: {exc})"
    if first is None:
        return est
    m = suite.metrics
    try:
        evaluator = evaluator or suite_evaluator(suite, device)
        at_eval = list(dict.fromkeys([m.objective, *m.curves]))  # what every evaluation scores
        n = max(min(m.n_fake_search, EVAL_SAMPLES), evaluator.min_samples(at_eval))
        est.eval_sample_s = time_evaluation(evaluator, at_eval, first.generate(n, seed=EVAL_SEED))
        est.eval_n = n
    except _SKIPPED as exc:
        est.eval_sample_s = f"{type(exc).__name__}: {exc}"
    return est


# --- output -------------------------------------------------------------------------------------

def format_duration(seconds: float) -> str:
    """"40 ms", "4.2 s", "40 s", "12.5 min", "41.3 h", "5.2 d"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def shrink_overrides(suite: Suite, counts: Sequence[GanCount], untimed: bool = False) -> list[str]:
    """`--set` overrides (budget, finalists, metrics) that make `suite` cheap; [] if it is.
    `untimed`: the final metrics need a slow extractor (drop them)."""
    b, f, m = suite.budget, suite.finalists, suite.metrics
    out = []
    if b.trials > SHRINK["trials"]:
        out.append(f"budget.trials={SHRINK['trials']}")
    if max(c.iterations for c in counts) > SHRINK["iterations"]:
        out += (["budget.epochs=null"] if b.epochs is not None else []) + \
               [f"budget.iterations={SHRINK['iterations']}"]
    for key, value in (("top", f.top), ("seeds", f.seeds)):
        if value > SHRINK[key]:
            out.append(f"finalists.{key}={SHRINK[key]}")
    if m.n_fake_search > SHRINK["n_fake_search"]:
        out.append(f"metrics.n_fake_search={SHRINK['n_fake_search']}")
    if untimed:
        out.append("metrics.final=[]")  # Inception on a CPU: about half an hour per finalist
    return out


_COLUMNS = ("GAN", "k", "batch", "G steps/run", "runs", "G steps", "evals", "finals",
            "s/G step", "training", "evaluation", "time")


def _times(split: tuple[float, float] | None) -> list[str]:
    return ["-"] * 3 if split is None else [format_duration(t) for t in (*split, sum(split))]


def _row(est: SuiteEstimate, c: GanCount) -> list[str]:
    timing = est.timings.get(c.name)
    step = f"{timing.step_s:.3g}" if isinstance(timing, GanTiming) else "-"
    return [c.name, str(c.k), str(c.batch_size), f"{c.iterations:,}", f"{c.trials}+{c.finalists}",
            f"{c.steps:,}", f"{c.evals:,}", f"{c.final_evals:,}", step, *_times(est.gan_split(c))]


def _total_row(est: SuiteEstimate) -> list[str]:
    counts = est.counts
    splits = [est.gan_split(c) for c in counts]
    split = None if any(s is None for s in splits) else (
        sum(s[0] for s in cast("list[tuple[float, float]]", splits)),
        sum(s[1] for s in cast("list[tuple[float, float]]", splits)))
    return ["total", "", "", "", str(sum(c.runs for c in counts)),
            f"{sum(c.steps for c in counts):,}", f"{sum(c.evals for c in counts):,}",
            f"{sum(c.final_evals for c in counts):,}", "", *_times(split)]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def format_estimate(est: SuiteEstimate) -> list[str]:
    """The estimate as text lines: a table (runs = search trials + finalist runs), the total,
    how evaluations were costed and, when the total exceeds LARGE_S, the overrides that shrink
    it with the time they would leave."""
    s, b, m = est.suite, est.suite.budget, est.suite.metrics
    total = est.total_seconds()
    rows = [list(_COLUMNS), *[_row(est, c) for c in est.counts], _total_row(est)]
    length = f"{b.epochs:g} epochs at that k and batch" if b.epochs else "budget.iterations"
    every = f"every {b.eval_every} G steps and " if b.eval_every else ""
    lines = [f"cost of suite {s.name} (k, batch: the search's midpoint; G steps/run: {length}; "
             f"runs: search trials + finalist runs):", *_table(rows),
             f"  evals: {m.objective} on {m.n_fake_search} samples {every}at the end of each run; "
             f"finals: every metric on {m.n_fake} samples once per finalist run",
             packing_line(s, est.device_type)]
    if not est.timed:
        return lines + [f"time not measured ({est.untimed})"]
    for name, why in est.timings.items():
        if isinstance(why, str):
            lines.append(f"{name}: {why}")
    if total is not None:
        lines.append(f"estimated {format_duration(total)} on {est.device} for training and "
                     f"evaluations (less when trials are pruned; one-time feature extraction, "
                     f"MLflow writes and the report come on top)")
        if b.packed_trials != 1 and est.device_type == "cuda":
            lines.append(f"budget.packed_trials={b.packed_trials} is not modelled: trials trained "
                         "together share the GPU and take less time than this")
    lines += _eval_lines(est)
    if total is not None and total > LARGE_S:
        lines += _hint(est)
    return lines


def packing_line(suite: Suite, device_type: str) -> str:
    """How each GAN's trials will train on `device_type` (budget.packed_trials, the runner's
    rule): one at a time, in packs of up to P, or sized from free GPU memory (auto)."""
    from gan_bench.train.packed import MAX_AUTO_PACK

    want = suite.budget.packed_trials
    per_gan: list[tuple[str, str]] = []
    for gan in suite.resolved_gans():
        most = max(gan.search and suite.budget.trials or 1, suite.finalists.seeds)
        if want == 1 or most < 2:
            how = "one at a time"
        elif "batch_size" in gan.search:
            how = "one at a time (batch_size is searched: trials differ in it)"
        elif want == "auto":
            how = (f"packs sized from free GPU memory at its start (up to {min(MAX_AUTO_PACK, most)})"
                   if device_type == "cuda" else "one at a time (auto packs on cuda only)")
        else:
            how = f"packs of up to {min(want, most)}"
        per_gan.append((how, gan.name))
    groups: dict[str, list[str]] = {}
    for how, name in per_gan:
        groups.setdefault(how, []).append(name)
    return (f"  packing on {device_type} (budget.packed_trials {want}): "
            + "; ".join(f"{', '.join(names)}: {how}" for how, names in groups.items()))


def _eval_lines(est: SuiteEstimate) -> list[str]:
    m = est.suite.metrics
    if isinstance(est.eval_sample_s, str):
        return [f"evaluations not timed ({est.eval_sample_s}): the time leaves scoring out"]
    out = []
    if isinstance(est.eval_sample_s, float):
        out.append(f"evaluation: {m.objective} on {m.n_fake_search} samples ~ "
                   f"{format_duration(est.eval_sample_s * m.n_fake_search)} (timed on "
                   f"{est.eval_n} samples, scaled; "
                   "generation timed per GAN)")
    untimed = est.untimed_extractors()
    if untimed:
        rate = ROUGH_IMG_PER_S.get(est.device_type, 6.0)
        out.append(f"final metrics on {', '.join(untimed)}: rough {rate:g} img/s each on "
                   f"{est.device_type}, not timed (+ their real features once, unless cached)")
    return out


def _hint(est: SuiteEstimate) -> list[str]:
    from gan_bench.config import SuiteError, parse_suite

    overrides = shrink_overrides(est.suite, est.counts, bool(est.untimed_extractors()))
    if not overrides:
        return []
    text = " ".join(f"--set {o}" for o in overrides)
    try:
        small = est.with_suite(parse_suite(est.suite.to_dict(), overrides=overrides))
    except SuiteError:
        return [f"hint: shrink it with {text}"]
    seconds = small.total_seconds()
    about = "" if seconds is None else f" (about {format_duration(seconds)})"
    return [f"hint: shrink it with {text}{about}"]


# --- the suite's ETA ----------------------------------------------------------------------------

class SuiteClock:
    """Seconds left of a suite: runs left x G steps per run x seconds per G step.

    Seconds per G step of a GAN: measured on its runs finished in this process; else the
    estimate's (`prior`), scaled by how far the measured GANs were off theirs; else the mean
    measured over the other GANs; else unknown (None). A run counts as done when it completes,
    is pruned or is a finalist; a failed trial is asked again, so it does not.
    """

    def __init__(self, counts: Sequence[GanCount], prior: dict[str, float] | None = None) -> None:
        self.counts = {c.name: c for c in counts}
        self.left = {c.name: {"search": c.trials, "final": c.finalists} for c in counts}
        self.prior = dict(prior or {})
        self.measured: dict[str, list[float]] = {}  # GAN -> [seconds, G steps of runs at k]

    def resume(self, gan: str, trials: int = 0, finalists: int = 0) -> None:
        """Runs already done by an earlier invocation (or another worker)."""
        left = self.left[gan]
        left["search"] = max(0, left["search"] - trials)
        left["final"] = max(0, left["final"] - finalists)

    def done(self, gan: str, stage: str, fraction: float = 0.0, seconds: float = 0.0) -> None:
        """One run of `stage` ("search" or "final") finished after `seconds`, having trained
        `fraction` of its G steps (< 1 when pruned; 0 adds nothing to the measured speed)."""
        self.left[gan][stage] = max(0, self.left[gan][stage] - 1)
        if fraction > 0:
            seen = self.measured.setdefault(gan, [0.0, 0.0])
            seen[0] += seconds
            seen[1] += fraction * self.counts[gan].iterations

    def close(self, gan: str, stage: str | None = None) -> None:
        """Nothing more of `stage` (both when None) will run for `gan`."""
        for key in ([stage] if stage else ["search", "final"]):
            self.left[gan][key] = 0

    def runs_left(self) -> int:
        return sum(left["search"] + left["final"] for left in self.left.values())

    def rate(self, gan: str) -> float | None:
        if gan in self.measured:
            seconds, steps = self.measured[gan]
            return seconds / steps
        pairs = [(s, steps * self.prior[g]) for g, (s, steps) in self.measured.items()
                 if g in self.prior]
        if gan in self.prior:
            scale = sum(p[0] for p in pairs) / sum(p[1] for p in pairs) if pairs else 1.0
            return self.prior[gan] * scale
        if self.measured:
            return sum(s for s, _ in self.measured.values()) / sum(n for _, n in self.measured.values())
        return None

    def seconds_left(self) -> float | None:
        total = 0.0
        for gan, left in self.left.items():
            runs = left["search"] + left["final"]
            if runs:
                rate = self.rate(gan)
                if rate is None:
                    return None
                total += runs * self.counts[gan].iterations * rate
        return total
