"""The mixture report (issue 14 part 1): remedies tested against the plain GAN of their own
setting, and each `<row>_searched` next to its published-setting `<row>`."""

from __future__ import annotations

from dataclasses import replace

from scipy.stats import mannwhitneyu
from test_report import synthetic

from gan_bench.report import FinalistRecord, GanRecord, TrialRecord, render
from gan_bench.report.mixtures import mixtures_section, searched_section
from gan_bench.report.publish import leaderboard_table

RING = tuple((float(i), 0.0) for i in range(8))  # only the count matters here


def _row(name: str, modes: list[float], hq: float = 0.5, kl: float | None = None,
         ratio: float = 1.0, k: int = 1) -> GanRecord:
    finalists = tuple(
        FinalistRecord(1000 + i, 0, kl if kl is not None else 0.1 * (8 - m),
                       {"modes_captured": m, "high_quality_share": hq,
                        "kl_to_uniform": kl if kl is not None else 0.1 * (8 - m)}, {})
        for i, m in enumerate(modes))
    trial = TrialRecord(0, "complete", 0.3, {"lr_ratio": ratio, "k": k})
    return GanRecord(name, "toy_mlp / non_saturating / none", (trial,), finalists, 0,
                     {"lr_g": 1e-4, "lr_ratio": ratio, "k": k})


LOW = [6.0, 6.0, 5.0, 6.0, 5.0, 6.0, 5.0, 6.0]
HIGH = [8.0, 8.0, 7.0, 8.0, 8.0, 8.0, 7.0, 8.0]


def _data(*gans: GanRecord):
    return replace(synthetic(), dataset="ring8", centres=RING, sigma=0.01, gans=gans)


def _table(lines: list[str], title: str) -> dict[str, list[str]]:
    """Rows of the markdown table after `title`, by their first cell."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    out = {}
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("| ") and not line.startswith("| GAN |") and not line.startswith("| row |"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells
    return out


def test_each_remedy_is_tested_against_the_gan_of_its_own_setting():
    # published setting: pacgan2 far above gan; searched: pacgan2_searched level with gan_searched
    lines = mixtures_section(_data(_row("gan", LOW), _row("pacgan2", HIGH),
                                   _row("gan_searched", HIGH, ratio=0.5, k=2),
                                   _row("pacgan2_searched", HIGH, ratio=2.0)))
    rows = _table(lines, "## Mode coverage")
    assert rows["gan"][5] == "-" and rows["gan_searched"][5] == "-"  # the references
    p = float(rows["pacgan2"][5].rstrip(" *"))
    assert 0.0 < p < 0.01 and rows["pacgan2"][5].endswith("*")  # vs gan, alone in its family
    assert rows["pacgan2_searched"][5] == "1"  # vs gan_searched (identical values), not vs gan
    assert rows["pacgan2"][7] == "7.9 +- 0.1"  # published row next to the published setting
    assert rows["pacgan2_searched"][7] == "-"  # ... and not next to a searched one
    assert rows["gan"][2] == "5.62 +- 0.18"  # mean 5.625, SE = std(ddof 1) 0.5175 / sqrt(8)


def test_without_searched_rows_the_table_is_the_published_comparison_only():
    lines = mixtures_section(_data(_row("gan", LOW), _row("pacgan2", HIGH), _row("pacgan4", LOW)))
    rows = _table(lines, "## Mode coverage")
    assert rows["pacgan4"][5] == "1"  # identical to gan
    # Holm over the two remedies: pacgan2's raw p doubled (pacgan4's p 1 stays 1)
    raw = mannwhitneyu(HIGH, LOW, alternative="two-sided").pvalue
    assert rows["pacgan2"][5] == f"{2 * raw:.2g} *" and 0.0 < 2 * raw < 0.01
    assert not any(line.startswith("### Searching lr_ratio") for line in lines)


def test_searched_rows_sit_next_to_their_published_setting():
    lines = searched_section([_row("gan", LOW, hq=0.2, kl=0.5), _row("pacgan2", HIGH),
                              _row("gan_searched", HIGH, hq=0.6, kl=0.5, ratio=0.25, k=2),
                              _row("pacgan2_searched", HIGH, ratio=3.0)])
    rows = _table(lines, "### Searching lr_ratio and k")
    assert set(rows) == {"gan", "pacgan2"}
    gan = rows["gan"]
    assert gan[1] == "lr_ratio 0.25, k 2"
    assert gan[2] == f"{sum(LOW) / 8:.3g} -> {sum(HIGH) / 8:.3g}" and gan[3].endswith("*")
    assert gan[4] == "20 -> 60"  # high-quality share in percent
    assert gan[7] == "1"  # reverse KL 0.5 in both: no difference
    assert rows["pacgan2"][3] == "1"  # identical modes: nothing moved


def test_a_searched_row_without_its_published_row_is_not_paired():
    assert searched_section([_row("gan_searched", HIGH), _row("pacgan4", LOW)]) == []


def _ring8(*gans: GanRecord):
    return replace(_data(*gans), objective="kl_to_uniform",
                   directions={"kl_to_uniform": False, "modes_captured": True,
                               "high_quality_share": True})


def test_the_leaderboard_of_a_mixture_leads_with_modes_and_quality():
    markdown, _ = render(_ring8(_row("gan", LOW, hq=0.4), _row("pacgan2", HIGH, hq=0.8)))
    section = markdown.split("## Leaderboard\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]
    assert rows[0] == ["rank", "GAN", "kl_to_uniform ↓ mean [95% CI]", "seeds", "vs best",
                       "modes_captured ↑", "high_quality_share ↑", "samples"]
    assert [r[:2] for r in rows[1:]] == [["1", "pacgan2"], ["2", "gan"]]
    assert rows[1][5:] == ["7.75", "0.8", "-"] and rows[2][5:] == ["5.625", "0.4", "-"]


def test_the_mlflow_table_of_a_mixture_leads_with_modes_and_quality():
    table = leaderboard_table(_ring8(_row("gan", LOW), _row("pacgan2", HIGH)))
    assert list(table)[:7] == ["gan", "final kl_to_uniform mean", "ci_low", "ci_high", "seeds",
                               "modes_captured", "high_quality_share"]
    assert table["gan"] == ["pacgan2", "gan"] and table["modes_captured"] == [7.75, 5.625]
