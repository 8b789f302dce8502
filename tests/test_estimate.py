"""What a suite costs before it runs (estimate.py): counts on constructed suites, the timing of
a tiny GAN, the table and hint, the ETA clock and text, and `gan-bench validate`'s estimate."""

from __future__ import annotations

import io
import math

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from gan_bench.cli import app
from gan_bench.config import parse_suite
from gan_bench.data.mixtures import RING8
from gan_bench.estimate import (
    ITERS,
    WARMUP,
    GanCount,
    GanTiming,
    SuiteClock,
    SuiteEstimate,
    count_suite,
    format_duration,
    format_estimate,
    midpoint_params,
    shrink_overrides,
    time_gan,
)
from gan_bench.progress import PlainProgress, RichProgress, format_eta
from gan_bench.train import GanSpec, TrainConfig, Trainer

TOY = {"arch": "toy_mlp", "arch_options": {"size": "tiny"}}


def suite_dict(**budget) -> dict:
    """Two toy GANs on ring8; `budget` replaces the default budget."""
    return {
        "name": "tiny", "dataset": {"name": "ring8"}, "device": "cpu",
        "gans": [{"name": "toy_ns", "loss": "non_saturating", **TOY},
                 {"name": "toy_hinge", "loss": "hinge", **TOY}],
        "search": {"k": {"low": 1, "high": 2}},
        "metrics": {"objective": "fid_points", "final": ["modes"], "n_fake_search": 500,
                    "n_fake": 2500, "n_real": 2500},
        "budget": budget or {"trials": 4, "iterations": 300, "eval_every": 100},
        "finalists": {"top": 2, "seeds": 3},
    }


# --- counts -------------------------------------------------------------------------------------

def test_counts_trials_times_iterations_and_finalists():
    counts = count_suite(parse_suite(suite_dict()), n_train=1000)
    assert [c.name for c in counts] == ["toy_ns", "toy_hinge"]
    for c in counts:
        assert (c.iterations, c.trials, c.finalists, c.evals_per_run) == (300, 4, 6, 3)
        assert (c.runs, c.steps, c.evals, c.final_evals) == (10, 3000, 30, 6)
        assert (c.k, c.batch_size) == (2, 64)  # k 1..2: midpoint 1.5 rounds half up


@pytest.mark.parametrize("iterations,eval_every,evals", [(250, 100, 3), (300, 100, 3),
                                                         (300, 0, 1), (50, 100, 1)])
def test_eval_points_per_run_match_the_trainer(iterations, eval_every, evals):
    """The Trainer evaluates at every multiple of eval_every and at the last iteration."""
    s = parse_suite(suite_dict(trials=2, iterations=iterations, eval_every=eval_every))
    assert count_suite(s, 1000)[0].evals_per_run == evals


def test_epochs_are_converted_with_the_midpoint_k_and_batch():
    data = suite_dict(trials=3, epochs=2, eval_every=4)
    data["search"] = {"k": {"low": 1, "high": 4}, "batch_size": 50}  # k midpoint 2.5 -> 3
    data["gans"][1]["train"] = {"k": 2}  # fixed for this GAN: it leaves the search
    ns, hinge = count_suite(parse_suite(data), n_train=1000)
    assert (ns.k, ns.batch_size, ns.iterations) == (3, 50, math.ceil(2 * 1000 / (50 * 3)))
    assert (hinge.k, hinge.iterations) == (2, 20)  # 2 epochs x 1000 / (50 x 2)
    assert (ns.evals_per_run, hinge.evals_per_run) == (4, 5)  # ceil(14 / 4), 20 / 4
    assert ns.steps == (3 + 6) * 14


@pytest.mark.parametrize("top,trials,seeds,finalists", [(2, 4, 3, 6), (3, 2, 2, 4), (0, 4, 3, 0)])
def test_finalists_are_top_of_the_trials_times_seeds(top, trials, seeds, finalists):
    data = suite_dict(trials=trials, iterations=10)
    data["finalists"] = {"top": top, "seeds": seeds}
    c = count_suite(parse_suite(data), 1000)[0]
    assert (c.finalists, c.runs, c.final_evals) == (finalists, trials + finalists, finalists)


def test_midpoint_params():
    data = suite_dict()
    data["search"] = {"lr_g": {"low": 1e-4, "high": 1e-2, "log": True},
                      "lr_ratio": {"low": 1.0, "high": 3.0}, "k": {"choices": [1, 2, 5]},
                      "beta1": {"choices": [0.0, 0.5]}}
    mid = midpoint_params(parse_suite(data).resolved_gans()[0])
    assert mid == {"lr_g": pytest.approx(1e-3, rel=1e-12), "lr_ratio": 2.0, "k": 3,
                   "beta1": 0.25}
    assert isinstance(mid["k"], int)


# --- timing -------------------------------------------------------------------------------------

def test_time_gan_on_a_tiny_gan_gives_a_sane_seconds_per_step():
    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"size": "tiny"})
    trainer = Trainer(spec, TrainConfig(iterations=100, k=2, device="cpu"),
                      RING8.load("train", n=512, seed=0))
    timing = time_gan(trainer)
    assert (trainer.step, trainer.d_steps) == (WARMUP + ITERS, 2 * (WARMUP + ITERS))
    assert math.isfinite(timing.step_s) and 1e-6 < timing.step_s < 1.0
    assert math.isfinite(timing.sample_s) and 1e-9 < timing.sample_s < 1e-2


# --- the estimate and its text ------------------------------------------------------------------

def fake_estimate(data: dict, step_s: float = 0.01, sample_s: float = 1e-5,
                  eval_s: float = 2e-5, n_train: int = 1000) -> SuiteEstimate:
    """An estimate with given timings (nothing trains)."""
    suite = parse_suite(data)
    est = SuiteEstimate(suite, count_suite(suite, n_train), "cpu (Test CPU x 2 threads)", "cpu",
                        n_train, timed=True, eval_sample_s=eval_s, eval_n=500)
    est.timings = {c.name: GanTiming(step_s, sample_s) for c in est.counts}
    return est


def test_seconds_are_steps_and_evaluations():
    est = fake_estimate(suite_dict())
    c = est.counts[0]  # 3000 G steps, 30 evals of 500 samples, 6 finals of 2500
    train = 3000 * 0.01
    evals = 30 * 500 * (1e-5 + 2e-5) + 6 * 2500 * (1e-5 + 2e-5)
    assert est.gan_split(c) == pytest.approx((train, evals), rel=1e-12)
    assert est.total_seconds() == pytest.approx(2 * (train + evals), rel=1e-12)
    assert est.rates()["toy_ns"] == pytest.approx((train + evals) / 3000, rel=1e-12)


def test_table_total_and_no_hint_for_a_small_suite():
    lines = format_estimate(fake_estimate(suite_dict()))
    assert lines[0].startswith("cost of suite tiny")
    header, ns, hinge, total = lines[1:5]
    assert header.split()[:3] == ["GAN", "k", "batch"]
    assert ns.split()[:8] == ["toy_ns", "2", "64", "300", "4+6", "3,000", "30", "6"]
    assert total.split()[:5] == ["total", "20", "6,000", "60", "12"]
    assert any(line.startswith("estimated 62 s on cpu (Test CPU x 2 threads)") for line in lines)
    # what the number covers, and no claim of a bound (the quickstart ran over its estimate)
    line = next(line for line in lines if line.startswith("estimated "))
    assert "training and evaluations" in line and "on top" in line and "upper bound" not in line
    assert not any(line.startswith("hint:") for line in lines)


def test_a_large_suite_gets_the_overrides_that_shrink_it():
    data = suite_dict(trials=50, epochs=20, eval_every=1000)
    data["finalists"] = {"top": 3, "seeds": 5}
    data["metrics"]["n_fake_search"] = 10000
    est = fake_estimate(data, step_s=0.5, n_train=60000)
    overrides = shrink_overrides(est.suite, est.counts)
    assert overrides == ["budget.trials=3", "budget.epochs=null", "budget.iterations=500",
                         "finalists.top=1", "finalists.seeds=1", "metrics.n_fake_search=2000"]
    small = parse_suite(est.suite.to_dict(), overrides=overrides)
    assert (small.budget.trials, small.budget.iterations, small.budget.epochs) == (3, 500, None)
    hint = [line for line in format_estimate(est) if line.startswith("hint:")]
    seconds = est.with_suite(small).total_seconds()
    assert hint == ["hint: shrink it with " + " ".join(f"--set {o}" for o in overrides)
                    + f" (about {format_duration(seconds)})"]


def test_final_metrics_on_an_untimed_extractor_are_costed_roughly():
    data = suite_dict()
    data["dataset"] = {"name": "mnist"}
    data["gans"] = [{"name": "mlp_ns", "arch": "mlp", "loss": "non_saturating"}]
    data["metrics"] = {"objective": "fid_mnist", "final": ["fid_inception", "kid"],
                       "n_fake_search": 100, "n_fake": 600, "n_real": 600}
    est = fake_estimate(data, sample_s=0.0, eval_s=0.0)
    assert est.untimed_extractors() == ["inception_tf"]  # kid on mnist: the MNIST classifier
    assert est.gan_split(est.counts[0])[1] == pytest.approx(6 * 600 / 6.0, rel=1e-12)
    assert "metrics.final=[]" in shrink_overrides(est.suite, est.counts, untimed=True)
    assert any("inception_tf: rough 6 img/s" in line for line in format_estimate(est))


@pytest.mark.parametrize("seconds,text", [(0.04, "40 ms"), (4.21, "4.2 s"), (40, "40 s"),
                                          (750, "12.5 min"), (41.3 * 3600, "41.3 h"),
                                          (5.2 * 86400, "5.2 d")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --- ETA ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,text", [(0, "0s"), (-3, "0s"), (45.4, "45s"), (750, "12m30s"),
                                          (3600, "1h00m"), (5 * 3600 + 7 * 60 + 20, "5h07m"),
                                          (3 * 86400 + 4 * 3600, "3d04h")])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


def counts() -> list[GanCount]:
    return [GanCount("a", 1, 64, 100, trials=3, finalists=2, evals_per_run=1),
            GanCount("b", 1, 64, 200, trials=3, finalists=2, evals_per_run=1)]


def test_clock_from_the_prior_then_from_measured_runs():
    clock = SuiteClock(counts(), prior={"a": 0.01, "b": 0.02})
    assert clock.seconds_left() == pytest.approx(5 * 100 * 0.01 + 5 * 200 * 0.02, rel=1e-12)
    clock.done("a", "search", fraction=1.0, seconds=2.0)  # a: 0.02 s/step, twice its prior
    # a left: 4 runs at its measured 0.02; b: its prior scaled by a's measured / prior = 2
    assert clock.seconds_left() == pytest.approx(4 * 100 * 0.02 + 5 * 200 * 0.04, rel=1e-12)
    clock.done("a", "search", fraction=0.5, seconds=0.5)  # pruned halfway: 0.01 s/step
    assert clock.rate("a") == pytest.approx(2.5 / 150, rel=1e-12)
    clock.close("a", "search")
    clock.resume("b", trials=3, finalists=1)
    assert clock.runs_left() == 2 + 1


def test_clock_without_a_prior_waits_for_a_finished_run():
    clock = SuiteClock(counts())
    assert clock.seconds_left() is None
    clock.done("a", "search", fraction=1.0, seconds=1.0)  # 0.01 s/step; b borrows it
    assert clock.seconds_left() == pytest.approx(4 * 100 * 0.01 + 5 * 200 * 0.01, rel=1e-12)
    clock.done("b", "final")  # a failed finalist: counted, speed unchanged
    assert clock.runs_left() == 8 and clock.rate("b") == pytest.approx(0.01, rel=1e-12)
    for name in ("a", "b"):
        clock.close(name)
    assert clock.seconds_left() == 0.0


def test_plain_progress_lines_carry_the_suite_eta():
    buffer = io.StringIO()
    progress = PlainProgress(Console(file=buffer, width=200))
    progress.trial_end("g", 0, "complete", 1.0, 2.0, 1.0)
    progress.eta(750)
    progress.trial_end("g", 1, "complete", 1.0, 2.0, 1.0)
    first, second = buffer.getvalue().splitlines()
    assert "ETA" not in first and second.endswith("best so far 1; suite ETA 12m30s")


def test_rich_suite_bar_shows_the_eta():
    progress = RichProgress(Console(file=io.StringIO(), width=200))
    progress.suite_start("tiny", 2)
    progress.gan_start("g", 0, 3, None)
    progress.eta(90)
    eta_column = progress.bars.columns[-1]
    suite, gan = progress.bars.tasks
    assert eta_column.render(suite).plain == "ETA 1m30s" and eta_column.render(gan).plain == ""


# --- gan-bench validate -------------------------------------------------------------------------

def test_validate_prints_the_estimate(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite_dict(trials=2, iterations=20, eval_every=10)))
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert any(line.startswith("cost of suite tiny") for line in lines)
    assert any(line.split()[:5] == ["toy_ns", "2", "64", "20", "2+6"] for line in lines)
    assert any(line.startswith("estimated ") and " on cpu (" in line for line in lines), lines
    quick = CliRunner().invoke(app, ["validate", str(path), "--no-estimate"])
    assert quick.exit_code == 0, quick.output
    assert "time not measured (--no-estimate" in quick.stdout and "estimated " not in quick.stdout
