"""Tiny versions of the two paper studies (issue 14) end to end: the committed suites with
small budgets, trained, then reported; the report has the sections the studies are read by."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_bench.config import load_suite
from gan_bench.report import collect, render
from gan_bench.run import Runner

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_pacgan_ring8_suite_reports_next_to_table_1(tmp_path):
    suite = load_suite(ROOT / "suites" / "pacgan_ring8.yaml", [
        f"output_dir={tmp_path}", "budget.iterations=20", "budget.eval_every=10",
        "finalists.seeds=2", "budget.trials=1",
        "gans=[{name: gan, arch: toy_mlp, loss: non_saturating, arch_options: {nets: pacgan, "
        "size: tiny}, train: {batch_size: 100}, search: {lr_ratio: 1.0, k: 1}}, {name: pacgan2, "
        "arch: toy_mlp, loss: non_saturating, arch_options: {nets: pacgan, pack: 2, size: tiny}, "
        "train: {batch_size: 200}, search: {lr_ratio: 1.0, k: 1}}, {name: gan_searched, "
        "arch: toy_mlp, loss: non_saturating, arch_options: {nets: pacgan, size: tiny}, "
        "train: {batch_size: 100}}]", "budget.trials=2"])
    outcome = Runner(suite).run()
    # the fixed rows run one trial beside the searched arm's two
    assert [g.complete for g in outcome.gans] == [1, 1, 2] and outcome.new_finalists == 6
    markdown = render(collect(tmp_path, ladder_rows=False))[0]
    assert "## Mode coverage next to the published numbers" in markdown
    assert "| pacgan2 | 2 |" in markdown and "7.9 +- 0.1" in markdown  # ours, then PacGAN's
    assert "**modes_captured** by iteration:" in markdown and "| GAN | 10 | 20 |" in markdown
    assert "### Searching lr_ratio and k: each row against its published setting" in markdown
    assert "| gan | lr_ratio " in markdown  # gan_searched next to gan, with the ratio it found
    assert "**control** (nothing searched: the paper's fixed setting, 1 trial(s))" in markdown


def test_tiny_mnist_cpu_suite_pairs_its_arms(tmp_path):
    from gan_bench.errors import DataUnavailableError

    suite = load_suite(ROOT / "suites" / "mnist_cpu.yaml", [
        f"output_dir={tmp_path}", "budget.iterations=20", "budget.eval_every=10",
        "budget.trials=2", "finalists.seeds=2", "metrics.n_fake_search=200",
        "metrics.n_fake=200", "metrics.n_real=200", "metrics.final=[fid_mnist]",
        "gans=[{name: gan_control, preset: gan, arch_options: {size: tiny}, "
        "search: {lr_ratio: 1.0, k: 1}}, {name: gan_searched, preset: gan, "
        "arch_options: {size: tiny}}]"])
    try:
        Runner(suite).run()
    except DataUnavailableError as exc:
        pytest.skip(f"MNIST not available offline here: {exc}")
    markdown = render(collect(tmp_path, ladder_rows=False))[0]
    assert "## Does searching lr_ratio and k help? (control vs searched arms)" in markdown
    assert "| **gan** | control |" in markdown and "|  | searched |" in markdown
    assert "**control** (beta1, lr_g searched, 2 trial(s))" in markdown


def test_objective_record_is_what_the_search_optimises_and_curves_are_logged(tmp_path):
    """metrics.objective_record: the search minimises kl_to_uniform (a record of `modes`, whose
    headline modes_captured ties); metrics.curves: fid_points scored at every evaluation."""
    import optuna

    from gan_bench.tracking import Tracker

    suite = load_suite(ROOT / "suites" / "smoke.yaml", [
        f"output_dir={tmp_path}", "budget.trials=2", "budget.iterations=20",
        "budget.eval_every=10", "finalists.seeds=1", "metrics.objective=modes",
        "metrics.objective_record=kl_to_uniform", "metrics.curves=[fid_points]",
        "metrics.final=[modes]", "metrics.n_fake_search=2500",
        "gans=[{name: toy, arch: toy_mlp, loss: non_saturating, arch_options: {size: tiny}}]"])
    Runner(suite).run()
    study = optuna.load_study(study_name="smoke/toy", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # lower KL is better
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "smoke", read_only=True)
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        run = tracker.find_runs(f"tags.trial = '{trial.number}' and tags.stage = 'search'")[0]
        kl = tracker.metric_history(run["run_id"], "eval/kl_to_uniform")
        assert kl[-1] == (20, pytest.approx(trial.value, rel=1e-9))
        assert [s for s, _ in tracker.metric_history(run["run_id"], "eval/fid_points")] == [10, 20]
        assert 0.0 <= trial.value <= 2.08 + 1e-9  # KL to uniform over 8 modes is in [0, ln 8]
