"""ui.py without a browser: metric groups, run names, parent summaries, the summary table, and
what the runner records (names, tags, no name shared between a param, a metric and a tag)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from gan_bench import ui, views


def rec(**values):
    return SimpleNamespace(flat=lambda: dict(values))


def test_metric_groups_and_no_constant_learning_rate_curves():
    diag = {"loss_d": 1.0, "loss_g": 2.0, "d_real": 0.6, "grad_norm_d": 3.0, "grad_norm_g": 4.0,
            "lr_g": 1e-4, "lr_d": 2e-4}
    assert views.train_metrics(diag) == {"train/loss_d": 1.0, "train/loss_g": 2.0,
                                      "train/d_real": 0.6, "opt/grad_norm_d": 3.0,
                                      "opt/grad_norm_g": 4.0}
    records = {"modes_captured": rec(modes_captured=8.0, modes_captured_n_modes=8.0),
               "kl_to_uniform": rec(kl_to_uniform=0.1)}
    assert views.eval_metrics(records) == {"eval/modes_captured": 8.0,
                                        "eval/modes_captured_n_modes": 8.0,
                                        "eval/kl_to_uniform": 0.1}
    assert views.final_metrics(records)["final/kl_to_uniform"] == 0.1


def test_run_names_are_short_and_say_what_the_run_is():
    assert views.trial_name(3, {"k": 2, "lr_ratio": 0.7812}) == "t3 k=2 r=0.78"
    assert views.trial_name(3, {"k": 1, "lr_ratio": 1.0}, pruned_at=500) == "t3 k=1 r=1 pruned@500"
    assert views.trial_name(0, {"k": 1, "lr_ratio": 12.34}, failed=True) == "t0 k=1 r=12 failed"
    assert views.final_name(1000, 3) == "final s1000 <- t3"


def trial(number, state, value=None, params=None, intermediate=None):
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state), value=value,
                           params=params or {}, intermediate_values=intermediate or {})


def test_summary_metrics_of_a_parent():
    trials = [trial(0, "COMPLETE", 5.0, {"lr_g": 1e-4, "lr_ratio": 2.0, "k": 2}),
              trial(1, "COMPLETE", 3.0, {"lr_g": 3e-4, "lr_ratio": 0.5, "k": 1}),
              trial(2, "PRUNED", None, {"lr_g": 1e-3, "lr_ratio": 1.0, "k": 3}, {1: 9.0}),
              trial(3, "FAIL")]
    finals = [{"fid_mnist": 4.0, "is_mnist": 9.0}, {"fid_mnist": 6.0, "is_mnist": 8.0}]
    out = views.summary_metrics(trials, finals, "fid_mnist", higher=False)
    assert (out["search/complete"], out["search/pruned"], out["search/failed"]) == (2, 1, 1)
    assert out["eval/fid_mnist"] == 3.0 and out["search/best_trial"] == 1  # lower is better
    assert out["search/best_lr_ratio"] == 0.5 and out["search/best_k"] == 1
    assert out["search/best_log10_lr_ratio"] == pytest.approx(math.log10(0.5), rel=1e-4)  # 5 digits
    assert out["final/fid_mnist"] == 5.0 and out["final/is_mnist"] == 8.5
    assert out["final_ci/fid_mnist_low"] == pytest.approx(4.0)  # 2 seeds: bootstrap of the mean
    assert out["final_ci/fid_mnist_high"] == pytest.approx(6.0)
    only = views.summary_metrics(trials, finals, "fid_mnist", higher=False, records=["fid_mnist"])
    assert "final/is_mnist" not in only and "final/fid_mnist" in only
    assert out["final/seeds"] == 2
    best_high = views.summary_metrics(trials, finals, "fid_mnist", higher=True)
    assert best_high["eval/fid_mnist"] == 5.0 and best_high["search/best_k"] == 2
    empty = views.summary_metrics([trial(0, "FAIL")], [], "fid_mnist", higher=False)
    assert empty == {"search/complete": 0, "search/pruned": 0, "search/failed": 1}


def test_study_figures_have_one_point_per_trial_and_seed():
    trials = [trial(0, "COMPLETE", 5.0, {"k": 2, "lr_ratio": 2.0}),
              trial(1, "PRUNED", None, {"k": 1, "lr_ratio": 1.0}, {1: 9.0, 2: 8.0})]
    figs = views.study_figures("g", trials, [{"fid_mnist": 4.0}, {"fid_mnist": 6.0}],
                            "fid_mnist", higher=False)
    try:
        assert sorted(figs) == ["finalists", "search"]
        offsets = [c.get_offsets() for c in figs["search"].axes[0].collections]
        assert [tuple(o[0]) for o in offsets] == [(0.0, 5.0), (1.0, 8.0)]  # pruned: last value
    finally:
        views.close_figures(figs)


def test_default_view_selects_the_summary_columns():
    view = views.default_views("fid_mnist", ["fid_mnist", "is_mnist"])[views.VIEW_KEY]
    assert view["selectedColumns"][:4] == ["metrics.`final/fid_mnist`", "metrics.`final_ci/fid_mnist_low`",
                                           "metrics.`final_ci/fid_mnist_high`", "metrics.`eval/fid_mnist`"]
    assert view["selectedColumns"][-1] == "metrics.`final/is_mnist`"
    assert view["columnOrder"] == view["selectedColumns"]
    assert ui.experiment_url("http://127.0.0.1:5000/", "3") == \
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=gan-bench"


def test_default_view_charts_compare_parents_and_show_the_last_samples():
    view = views.default_views("fid_mnist", ["fid_mnist", "is_mnist"], final_step=1300)[views.VIEW_KEY]
    sections = {s["uuid"] for s in view["compareRunSections"]}
    charts = view["compareRunCharts"]
    assert all(c["metricSectionId"] in sections for c in charts)
    bars = [c["metricKey"] for c in charts if c["type"] == "BAR"]
    assert bars[:2] == ["final/fid_mnist", "eval/fid_mnist"] and "final/is_mnist" in bars
    (image,) = [c for c in charts if c["type"] == "IMAGE"]
    assert image["imageKeys"] == ["samples"] and image["step"] == 1300
