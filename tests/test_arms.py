"""The paired-arms section (issue 14 part 2): control (lr_ratio 1, k 1) vs searched arms."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_report import _finalists, synthetic

from gan_bench.report import GanRecord, TrialRecord
from gan_bench.report.arms import arm_pairs, arms_figure, arms_section
from gan_bench.report.figures import draw
from gan_bench.report.render import render


def _arm(name: str, fids: list[float], trial_values: list[float], searched: bool) -> GanRecord:
    trials = tuple(TrialRecord(n, "complete", v, {"lr_g": 1e-3, "beta1": 0.5,
                                                  **({"lr_ratio": 2.0, "k": 2} if searched else {})})
                   for n, v in enumerate(trial_values))
    best = min(range(len(trials)), key=lambda i: trial_values[i])
    params = {"lr_g": 1e-3, "lr_ratio": 2.0 if searched else 1.0, "k": 2 if searched else 1}
    return GanRecord(name, "mlp / hinge / none", trials, _finalists(fids), best, params)


def _data(control: list[float], searched: list[float]):
    gans = (_arm("hinge_control", control, [30.0, 20.0, 25.0], False),
            _arm("hinge_searched", searched, [28.0, 15.0, 22.0], True),
            _arm("lonely_control", [5.0, 6.0], [9.0], False))
    return replace(synthetic(), gans=gans)


def test_arms_pair_by_name_and_leave_a_lone_arm_alone():
    (pair,) = arm_pairs(_data([1.0, 2.0], [1.0, 2.0]).gans)
    assert (pair.base, pair.control.name, pair.searched.name) == \
        ("hinge", "hinge_control", "hinge_searched")


def test_well_separated_arms_are_significant_and_named():
    lines = "\n".join(arms_section(_data([20.0, 21.0, 20.5, 21.5, 20.2],
                                         [10.0, 11.0, 10.5, 11.5, 10.2])))
    assert "searched arm better" in lines
    assert "| -10 |" in lines  # difference of the means, searched - control (lower is better)
    assert "significantly better finalists for hinge" in lines
    assert "lr_ratio 2, k 2" in lines and "lr_ratio 1, k 1" in lines


def test_identical_arms_say_no_difference():
    fids = [20.0, 21.0, 20.5, 21.5, 20.2]
    lines = "\n".join(arms_section(_data(fids, fids)))
    assert "no significant difference for hinge" in lines and "| 0 |" in lines


def test_one_seed_per_arm_cannot_be_told():
    lines = "\n".join(arms_section(_data([20.0], [10.0])))
    assert "too few finalist seeds to test" in lines and "cannot be told" in lines


def test_no_pairs_no_section_and_the_golden_report_is_unchanged():
    assert arms_section(synthetic()) == [] and arms_figure(synthetic()) is None
    assert "control vs searched" not in render(synthetic())[0]


def test_expected_best_figure_has_both_arms_and_draws():
    data = _data([20.0, 21.0], [10.0, 11.0])
    spec = arms_figure(data)
    assert list(spec.panels) == ["hinge"] and list(spec.panels["hinge"]) == ["control", "searched"]
    mean, lo, hi = spec.panels["hinge"]["searched"]
    assert mean[0] == pytest.approx((28 + 15 + 22) / 3) and mean[-1] == pytest.approx(15.0)
    assert draw(spec)[:8] == b"\x89PNG\r\n\x1a\n"
    markdown, figs = render(data)
    assert "expected_arms.png" in figs and "figures/expected_arms.png" in markdown
