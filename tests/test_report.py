"""Reports: the golden leaderboard of fixed synthetic records, the statistics on samples with
known outcomes, protocol grouping, figures, the smoke suite end to end and the CLI.

GAN_BENCH_REGEN_GOLDEN=1 rewrites tests/golden/leaderboard_synthetic.md.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gan_bench.report import (
    FigureSpec,
    FinalistRecord,
    GanRecord,
    ReportData,
    TrialRecord,
    draw,
    render,
    write_files,
    write_report,
)
from gan_bench.report.findings import ttur_comparison
from gan_bench.report.render import protocol_groups
from gan_bench.stats import bootstrap_ci, compare_to_best, expected_max, holm

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "leaderboard_synthetic.md"
SHA = "ce597e9bd606583fb060391e37e28a60bebd59647ba00ec5df6e9699abee3418"
PNG = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- synthetic records

def _protocol(n_fake: int = 10000) -> dict[str, dict]:
    base = {"extractor": "mnist_classifier", "extractor_sha256": SHA, "resize": "none (28x28)",
            "n_fake": n_fake, "dtype": "float32", "seed": 0}
    return {"fid_mnist": {**base, "metric": "fid_mnist", "n_real": 10000, "real_split": "test",
                          "params": {"dataset": "mnist", "method": "eigh"}},
            "is_mnist": {**base, "metric": "is_mnist", "n_real": None, "real_split": None,
                         "params": {"dataset": "mnist", "splits": 10}},
            "classes_covered": {**base, "metric": "modes", "n_real": None, "real_split": None,
                                "params": {"dataset": "mnist", "min_share": 0.01}}}


def _finalists(fids: list[float], n_fake: int = 10000) -> tuple[FinalistRecord, ...]:
    return tuple(FinalistRecord(1000 + i, 3, fid, {"fid_mnist": fid, "is_mnist": 9.5 - fid / 10,
                                                   "classes_covered": 10.0 - (fid > 20)},
                                _protocol(n_fake), 60.0 + i) for i, fid in enumerate(fids))


def _trials(values: list[tuple[float, int, str, float | None]]) -> tuple[TrialRecord, ...]:
    """(lr_ratio, k, state, value) -> trials with lr_g 2e-4, 30 s each, on cuda:0."""
    out = []
    for n, (ratio, k, state, value) in enumerate(values):
        out.append(TrialRecord(n, state, value, {"lr_g": 2e-4, "lr_ratio": ratio, "k": k},
                               30.0 + n, "diverged" if state == "failed" else None, "cuda:0"))
    return tuple(out)


def _best_params(ratio: float, k: int) -> dict:
    return {"lr_g": 2e-4, "lr_d": 2e-4 * ratio, "lr_ratio": ratio, "k": k, "beta1": 0.5,
            "batch_size": 64}


def synthetic() -> ReportData:
    """Five GANs: three under one protocol (one far behind, one close), one scored on fewer
    samples (another protocol), one without finalists."""
    ttur = _trials([(1.0, 1, "complete", 12.0), (1.1, 1, "complete", 11.0), (4.0, 1, "complete", 8.0),
                    (3.0, 2, "complete", 7.5), (0.2, 1, "failed", None), (2.0, 1, "pruned", None)])
    few = _trials([(1.0, 1, "complete", 30.0), (5.0, 2, "complete", 28.0), (0.5, 1, "failed", None)])
    gans = (
        GanRecord("wgan_gp", "dcgan / wasserstein / gradient_penalty", ttur,
                  _finalists([7.9, 8.1, 8.0, 7.8, 8.2]), 3, _best_params(3.0, 2),
                  ((500, 20.0), (1000, 9.0), (1500, 7.5)), PNG + b"wgan",
                  {"k": 0.2, "lr_g": 0.3, "lr_ratio": 0.5}, class_counts=(10,) * 10,
                  samples_note="10000 samples each, z seed 2024 as at evaluation"),
        GanRecord("ns_gan", "dcgan / non_saturating / none", few,
                  _finalists([25.0, 26.0, 24.5, 25.5, 26.5]), 1, _best_params(5.0, 2),
                  ((500, 40.0), (1500, 28.0)), None, None, class_counts=(19,) * 5 + (1,) * 5),
        GanRecord("lsgan", "dcgan / least_squares / none", few,
                  _finalists([8.3, 7.7, 8.6, 7.9, 8.4]), 1, _best_params(5.0, 2)),
        GanRecord("hinge_small", "dcgan / hinge / none", few, _finalists([6.0], n_fake=2000), 1,
                  _best_params(5.0, 2)),
        GanRecord("no_finals", "mlp / minimax / none", _trials([(1.0, 1, "failed", None)])),
    )
    refs = ({"dataset": "mnist", "label": "real train 10k vs test 10k", "metric": "fid_mnist",
             "value": 0.51, "protocol": _protocol()["fid_mnist"]},
            {"dataset": "mnist", "label": "uniform noise", "metric": "fid_mnist", "value": 350.0,
             "protocol": {**_protocol()["fid_mnist"], "n_fake": 5000}},
            {"dataset": "cifar10", "label": "real vs real", "metric": "fid_inception", "value": 3.0})
    return ReportData(
        suite="synthetic", description="Fixed records for the golden file.", dataset="mnist",
        dataset_text="mnist (train split; metrics on test)", objective="fid_mnist",
        directions={"fid_mnist": False, "is_mnist": True, "classes_covered": True},
        budget_text="6 trials per GAN of 1500 iterations", date="2025-01-02 03:04 UTC",
        git_shas=("abc1234",), hardware="cuda:0; torch 2.5.1",
        versions={"torch": "2.5.1", "numpy": "2.1.0"}, gans=gans, references=refs)


def test_golden_leaderboard():
    markdown, _ = render(synthetic())
    if os.environ.get("GAN_BENCH_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(markdown, encoding="utf-8")
    assert markdown == GOLDEN.read_text(encoding="utf-8")
    assert render(synthetic())[0] == markdown  # deterministic


def test_leaderboard_ranks_and_marks():
    markdown, _ = render(synthetic())
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| \S+ \| (\w+) \|.*$", markdown, re.M)}
    assert rows["wgan_gp"].startswith("| 1 | wgan_gp |") and "| best |" in rows["wgan_gp"]
    assert rows["lsgan"].startswith("| 2 |") and "n.s." in rows["lsgan"]
    assert rows["ns_gan"].startswith("| 3 |") and re.search(r"\| 0\.0\d+ \* \|", rows["ns_gan"])
    assert "(reference rows not measured yet)" in render(replace(synthetic(), references=None))[0]


def test_made_by_counts_the_workers_of_one_command():
    commands = ("gan-bench run suites/a.yaml --plain", "gan-bench run suites/a.yaml --plain --worker 1",
                "gan-bench run suites/a.yaml --plain --worker=2", "gan-bench run suites/b.yaml")
    markdown, _ = render(replace(synthetic(), commands=commands, wall_seconds=12.0))
    made = next(line for line in markdown.splitlines() if line.startswith("| **made by**"))
    assert made == ("| **made by** | `gan-bench run suites/a.yaml --plain` (3 workers); "
                    "`gan-bench run suites/b.yaml` |")


def _lead(markdown: str, title: str = "### Protocol A") -> list[list[str]]:
    """Cells of the first table under `title` in the leaderboard section (header first)."""
    section = markdown.split("## Leaderboard\n", 1)[1].split("\n## ", 1)[0]
    block = section.split(title + "\n", 1)[1].split("\n### ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]


def test_the_leaderboard_leads_with_one_short_table_per_protocol_mnist():
    data = synthetic()
    gans = tuple(replace(g, finalists=tuple(
        replace(f, metrics={**f.metrics, "confident_share": 0.5 + f.seed % 2 / 10})
        for f in g.finalists)) for g in data.gans)
    data = replace(data, gans=gans, directions={**data.directions, "confident_share": True})
    markdown, figures = render(data)
    rows = _lead(markdown)
    assert rows[0] == ["rank", "GAN", "fid_mnist ↓ mean [95% CI]", "seeds", "vs best",
                       "classes_covered ↑", "confident_share ↑", "samples"]
    lo, hi = bootstrap_ci([7.9, 8.1, 8.0, 7.8, 8.2])
    assert rows[1] == ["1", "wgan_gp", f"8 [{lo:.4g}, {hi:.4g}]", "5", "best", "10", "0.54",
                       "[samples](figures/samples_wgan_gp.png)"]
    assert "samples_wgan_gp.png" in figures
    from gan_bench.report.html import to_html

    assert '<td><a href="figures/samples_wgan_gp.png">samples</a></td>' in to_html(markdown, "x")
    assert [r[1] for r in rows[1:]] == ["wgan_gp", "lsgan", "ns_gan"]
    assert rows[3][6:] == ["0.54", "-"]  # ns_gan: no sample grid, no link
    assert _lead(markdown, "### Protocol B")[1][2] == "6 (n=1: no CI)"
    # the short tables come first, then the full metrics with the protocols
    lead, full = markdown.index("## Leaderboard"), markdown.index("## Full metrics")
    assert lead < full < markdown.index("Evaluation protocol:") < markdown.index("## Search and cost")
    assert "best search" not in markdown[lead:full] and "is_mnist" not in markdown[lead:full]
    assert "| 1 | wgan_gp | 8 | [7.88, 8.12] | 5 | best | 7.5 | 8.7 | 10 |" in markdown[full:]


def test_reference_rows_show_only_the_finalists_protocol():
    data = synthetic()  # one reference row on Protocol A's protocol, one on n_fake 5000
    markdown, _ = render(data)
    refs = markdown.split("## Reference rows\n", 1)[1].split("\n## ", 1)[0]
    assert "| real train 10k vs test 10k | fid_mnist ↓ | 0.51 |" in refs
    assert "uniform noise" not in refs and "350" not in refs and "differs" not in refs
    assert "1 reference row measured on another protocol than the finalists' is not shown" in refs
    other = replace(data, references=data.references[1:])  # none on the finalists' protocol
    refs = render(other)[0].split("## Reference rows\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in refs.splitlines() if line.strip()]
    assert len(lines) == 1 and not lines[0].startswith("|")
    assert lines[0].startswith("1 reference row measured on another protocol")
    assert "docs/metrics.md#floors-and-ceilings-real-data" in lines[0]
    assert "benchmark/gan_bench/assets/references.json" in lines[0]
    assert "gan-bench score --ladder" in lines[0]


def test_the_ladder_follows_the_protocol_table_before_search_and_cost():
    from types import SimpleNamespace

    data = synthetic()
    rung = {"label": "real train (seeded subset)", "protocol": _protocol()["fid_mnist"],
            "values": {"fid_mnist": 0.9, "is_mnist": 9.78, "classes_covered": 10.0}}
    checks = SimpleNamespace(lines=["what the papers claim"], figures={})
    gans = (replace(data.gans[0], checks=checks), *data.gans[1:3])  # one protocol
    markdown, _ = render(replace(data, gans=gans, ladder=(rung,)))
    order = [markdown.index(h) for h in (
        "## Leaderboard", "## Full metrics", "Evaluation protocol:", "## Calibration ladder",
        "## Search and cost", "## Reference rows", "## What the search found",
        "## Checked against the papers", "## Figures")]
    assert order == sorted(order)
    before = markdown[:markdown.index("## Calibration ladder")].rstrip().splitlines()
    assert before[-1].startswith("| classes_covered | mnist_classifier |")  # the protocol's last row
    assert "(protocol vs Protocol A: same)" in markdown


def test_the_mlflow_table_leads_with_what_ranks():
    from gan_bench.report.publish import leaderboard_table

    data = synthetic()
    table = leaderboard_table(data)
    assert list(table) == ["gan", "final fid_mnist mean", "ci_low", "ci_high", "seeds",
                           "classes_covered", "arch / loss / penalty", "best search", "lr_ratio",
                           "k", "lr_g", "complete", "pruned", "failed"]
    assert table["gan"] == ["wgan_gp", "lsgan", "ns_gan", "hinge_small", "no_finals"]  # ranked
    assert table["final fid_mnist mean"][0] == pytest.approx(8.0)
    assert (table["ci_low"][0], table["ci_high"][0]) == bootstrap_ci([7.9, 8.1, 8.0, 7.8, 8.2])
    assert table["seeds"] == [5, 5, 5, 1, 0] and table["classes_covered"] == [10, 10, 9, 10, None]
    assert table["arch / loss / penalty"][0] == "dcgan / wasserstein / gradient_penalty"
    assert table["complete"][0] == 4 and table["best search"][0] == 7.5
    assert all(len(col) == 5 for col in table.values())


# ----------------------------------------------------------------------------- statistics

def test_bootstrap_ci_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, big = rng.normal(5.0, 1.0, 8), rng.normal(5.0, 1.0, 200)
    lo_s, hi_s = bootstrap_ci(small)
    lo_b, hi_b = bootstrap_ci(big)
    assert lo_s < small.mean() < hi_s and lo_b < big.mean() < hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 2
    assert bootstrap_ci(small) == (lo_s, hi_s)  # seeded
    assert bootstrap_ci([3.0]) is None
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


@pytest.mark.parametrize("test", ["mannwhitney", "welch"])
def test_identical_groups_are_not_significant(test):
    same = [1.0, 2.0, 3.0, 4.0, 5.0]
    out = compare_to_best({"best": same, "twin": list(reversed(same))}, "best", test)
    assert out["twin"].p == pytest.approx(1.0) and not out["twin"].significant


@pytest.mark.parametrize("test", ["mannwhitney", "welch"])
def test_well_separated_groups_are_significant(test):
    best = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02]
    far = [9.0, 9.2, 8.8, 9.1, 8.9, 9.05]
    out = compare_to_best({"best": best, "far": far, "one": [5.0]}, "best", test)
    assert out["far"].significant and out["far"].p < 0.01
    assert out["one"].p is None and not out["one"].significant  # one seed: no test


def test_holm_step_down():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted["a"] == pytest.approx(0.03)  # 3 x 0.01
    assert adjusted["c"] == pytest.approx(0.06)  # 2 x 0.03
    assert adjusted["b"] == pytest.approx(0.06)  # max(1 x 0.04, 0.06): monotone
    assert adjusted["d"] is None


def test_holm_can_remove_significance():
    best = [1.0, 1.1, 0.9, 1.05, 0.95]
    groups = {"best": best, "x": [1.3, 1.4, 1.2, 1.35, 1.25], "y": [1.0, 1.1, 0.9, 1.05, 0.96]}
    out = compare_to_best(groups, "best", "welch")
    assert out["x"].p_holm == pytest.approx(min(1.0, 2 * out["x"].p))
    assert out["x"].p_holm >= out["x"].p and out["y"].p_holm >= out["y"].p


@pytest.mark.parametrize("higher", [True, False])
def test_expected_max_matches_brute_force(higher):
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    mean, std = expected_max(values, higher)
    pick = max if higher else min
    for n in range(1, len(values) + 1):
        bests = [pick(s) for s in itertools.combinations(values, n)]
        assert mean[n - 1] == pytest.approx(np.mean(bests))
        assert std[n - 1] == pytest.approx(np.std(bests), abs=1e-9)
    assert mean[0] == pytest.approx(np.mean(values)) and mean[-1] == pick(values)
    steps = np.diff(mean)
    assert (steps >= -1e-12).all() if higher else (steps <= 1e-12).all()


# ----------------------------------------------------------------------------- grouping, findings

def test_different_protocols_are_never_ranked_together():
    data = synthetic()
    groups = protocol_groups(data.gans)
    names = [[row.gan.name for row in rows] for rows in groups]
    assert names == [["wgan_gp", "ns_gan", "lsgan"], ["hinge_small"], ["no_finals"]]
    markdown, _ = render(data)
    assert "different evaluation protocols" in markdown
    protocol_b = markdown.split("### Protocol B")[1].split("###")[0]
    # hinge_small has the best mean of all, yet it is rank 1 only of its own table
    assert "| 1 | hinge_small |" in protocol_b and "wgan_gp" not in protocol_b
    assert "| 1 | hinge_small |" not in markdown.split("### Protocol B")[0]


def test_ttur_comparison_verdicts():
    data = synthetic()
    sentence, verdict = ttur_comparison(data.gans[0], higher_is_better=False)
    assert verdict == 1 and "ratio != 1 did better" in sentence  # 8.0, 7.5 beat 12, 11
    sentence, verdict = ttur_comparison(data.gans[1], higher_is_better=False)
    assert verdict is None and "too few trials" in sentence


# ----------------------------------------------------------------------------- figures

def test_figures_of_synthetic_records_are_pngs(tmp_path):
    data = synthetic()
    _, figures = render(data)
    expected = {"objective_curves.png", "samples_wgan_gp.png", "landscape.png",
                "expected_best.png", "importances.png", "classes.png"}
    assert set(figures) == expected
    path = write_files(data, tmp_path)
    for name in expected:
        blob = (tmp_path / "figures" / name).read_bytes()
        assert blob.startswith(PNG) and len(blob) > 8
    spec = figures["landscape.png"]
    assert isinstance(spec, FigureSpec) and draw(spec) == draw(spec)  # no timestamps
    assert path.read_text() == render(data)[0]


# ----------------------------------------------------------------------------- smoke suite, CLI

@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    from gan_bench.config import load_suite
    from gan_bench.run import Runner

    runs = tmp_path_factory.mktemp("smoke_runs")
    suite = load_suite(ROOT / "suites" / "smoke.yaml", [f"output_dir={runs}"])
    Runner(suite).run()
    out = tmp_path_factory.mktemp("smoke_report")
    return suite, runs, out, write_report(runs, out)


@pytest.mark.slow
def test_smoke_report_figures(smoke_report):
    suite, runs, out, path = smoke_report
    markdown = path.read_text()
    gans = [g.name for g in suite.resolved_gans()]
    expected = {"objective_curves.png", "landscape.png", "expected_best.png", "importances.png",
                "modes.png", *(f"samples_{g}.png" for g in gans)}
    made = {p.name for p in (out / "figures").iterdir()}
    assert made == expected
    for name in expected:
        assert (out / "figures" / name).read_bytes().startswith(PNG)
        assert f"](figures/{name})" in markdown
    assert all(f"| {g} |" in markdown for g in gans) and "| 1 |" in markdown


@pytest.mark.slow
def test_smoke_report_is_deterministic(smoke_report, tmp_path):
    suite, runs, out, path = smoke_report
    again = write_report(runs, tmp_path)
    assert again.read_text() == path.read_text()
    for fig in (out / "figures").iterdir():
        assert (tmp_path / "figures" / fig.name).read_bytes() == fig.read_bytes()


@pytest.mark.slow
def test_cli_report_html(smoke_report, tmp_path):
    suite, runs, out, path = smoke_report
    res = subprocess.run([sys.executable, "-m", "gan_bench.cli", "report", str(runs), "--out",
                          str(tmp_path), "--format", "html"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "figures/modes.png" in page


def test_cli_report_on_a_bad_path_exits_2_with_one_line(tmp_path):
    text = (ROOT / "suites" / "smoke.yaml").read_text()
    (tmp_path / "never_run.yaml").write_text(text + f"\noutput_dir: {tmp_path / 'empty'}\n")
    for bad in (tmp_path / "missing", tmp_path, tmp_path / "never_run.yaml"):
        res = subprocess.run([sys.executable, "-m", "gan_bench.cli", "report", str(bad)],
                             capture_output=True, text=True, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
