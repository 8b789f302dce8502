"""Tiny versions of the two paper studies (issue 14) end to end: the committed suites with
small budgets, trained, then reported; the report has the sections the studies are read by."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_bench.config import load_suite
from gan_bench.report import collect, render
from gan_bench.runner import Runner

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_pacgan_ring8_suite_reports_next_to_table_1(tmp_path):
    suite = load_suite(ROOT / "suites" / "pacgan_ring8.yaml", [
        f"output_dir={tmp_path}", "budget.iterations=20", "budget.eval_every=10",
        "finalists.seeds=2",
        "gans=[{name: gan, arch: toy_mlp, loss: non_saturating, arch_options: {nets: pacgan, "
        "size: tiny}, train: {batch_size: 100}, search: {lr_ratio: 1.0, k: 1}}, {name: pacgan2, "
        "arch: toy_mlp, loss: non_saturating, arch_options: {nets: pacgan, pack: 2, size: tiny}, "
        "train: {batch_size: 200}, search: {lr_ratio: 1.0, k: 1}}]"])
    outcome = Runner(suite).run()
    assert [g.complete for g in outcome.gans] == [1, 1] and outcome.new_finalists == 4
    markdown = render(collect(tmp_path, ladder_rows=False))[0]
    assert "## Mode coverage next to the published numbers" in markdown
    assert "| pacgan2 | 2 |" in markdown and "7.9 +- 0.1" in markdown  # ours, then PacGAN's
    assert "**modes_captured** by iteration:" in markdown and "| GAN | 10 | 20 |" in markdown


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
