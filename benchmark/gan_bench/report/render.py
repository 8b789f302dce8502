"""`render(data) -> (markdown, figures)`: a pure function of the run records (STYLE.md 12).

No I/O, no clock, no randomness beyond seeded bootstraps: the same ReportData gives the same
markdown byte for byte (tests/golden/leaderboard_synthetic.md pins it).

Rows are (GAN, evaluation protocol) pairs; rows whose finalists were scored under different
protocols (extractor, weights, resize, n_real, n_fake, real split, parameters) sit in separate
tables and are never ranked against each other.

Page order: the leaderboard (one short table per protocol: rank, GAN, objective mean [CI],
seeds, vs best, the dataset's coverage columns, a samples link), the full metrics with each
table's evaluation protocol, the calibration ladder on that protocol, the mixture / length /
arms sections, search and cost, reference rows on the finalists' protocol, what the search
found, the papers' checks, figures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gan_bench.report.arms import arms_section
from gan_bench.report.data import FinalistRecord, GanRecord, ReportData
from gan_bench.report.figures import FigureSpec, figure_specs
from gan_bench.report.findings import findings
from gan_bench.report.mixtures import length_section, mixtures_section
from gan_bench.stats import ALPHA, CONFIDENCE, Comparison, bootstrap_ci, compare_to_best

__all__ = ["render", "Row", "protocol_groups", "rank_rows", "coverage_keys", "METRIC_ORDER",
           "COVERAGE_KEYS"]

# Column order of the secondary metrics (others follow alphabetically).
METRIC_ORDER = ("fid_mnist", "fid_inception", "fid_points", "fid", "is_mnist", "kid", "precision",
                "recall", "density", "coverage", "classes_covered", "confident_share", "modes_covered",
                "modes_captured", "high_quality_share", "kl_to_uniform")
# What the leaderboard's short tables show next to the objective, where the finalists have it:
# MNIST classes and confident share, Stacked MNIST modes, 2-D mixtures modes and quality.
COVERAGE_KEYS = ("classes_covered", "confident_share", "modes_covered", "modes_captured",
                 "high_quality_share")
PROTOCOL_COLUMNS = ("extractor", "extractor_sha256", "resize", "n_real", "n_fake", "real_split")
SEARCH_PARAMS = ("lr_g", "lr_d", "lr_ratio", "k", "beta1")
MISSING = "-"


@dataclass(frozen=True)
class Row:
    """One line of a leaderboard: a GAN's finalists that share one protocol."""

    gan: GanRecord
    finalists: tuple[FinalistRecord, ...]
    protocol: dict[str, dict[str, Any]]  # record key -> protocol ({} without finalists)

    @property
    def values(self) -> list[float]:
        return [f.objective for f in self.finalists]

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.finalists else None

    def metric_mean(self, key: str) -> float | None:
        vals = [f.metrics[key] for f in self.finalists if key in f.metrics]
        return sum(vals) / len(vals) if vals else None


def _signature(protocols: dict[str, dict[str, Any]]) -> str:
    return json.dumps(protocols, sort_keys=True, default=str)


def protocol_groups(gans: Sequence[GanRecord]) -> list[list[Row]]:
    """Rows grouped by protocol: biggest group first; GANs without finalists last, alone."""
    groups: dict[str, list[Row]] = {}
    for gan in gans:
        by_sig: dict[str, list[FinalistRecord]] = {}
        for f in gan.finalists:
            by_sig.setdefault(_signature(f.protocols), []).append(f)
        if not by_sig:
            groups.setdefault("", []).append(Row(gan, (), {}))
        for sig, fs in by_sig.items():
            groups.setdefault(sig, []).append(Row(gan, tuple(fs), fs[0].protocols))
    keys = sorted((k for k in groups if k), key=lambda k: -len(groups[k]))
    return [groups[k] for k in keys] + ([groups[""]] if "" in groups else [])


def _best_search(gan: GanRecord, higher: bool) -> float | None:
    values = [t.value for t in gan.trials if t.state == "complete" and t.value is not None]
    return (max(values) if higher else min(values)) if values else None


def rank_rows(rows: Sequence[Row], higher: bool) -> list[Row]:
    """Best first by the finalists' mean objective (the search's best when none), then name."""
    def key(row: Row) -> tuple[int, float, str]:
        value = row.mean if row.finalists else _best_search(row.gan, higher)
        if value is None:
            return (1, 0.0, row.gan.name)
        return (0, -value if higher else value, row.gan.name)
    return sorted(rows, key=key)


def coverage_keys(finalists: Sequence[FinalistRecord], objective: str) -> list[str]:
    """The COVERAGE_KEYS that some of these finalists recorded (the objective left out)."""
    return [k for k in COVERAGE_KEYS
            if k != objective and any(k in f.metrics for f in finalists)]


# ----------------------------------------------------------------------------- formatting

def _num(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in rows]


def _arrow(data: ReportData, key: str) -> str:
    if key.partition("@")[0] == "data_copying":  # a diagnostic: near 0 is the target
        return f"{key} (0 = no copying)"
    if key not in data.directions:
        return key
    return f"{key} {'↑' if data.directions[key] else '↓'}"


def _marker(row: Row, best: Row | None, comparisons: dict[str, Comparison]) -> str:
    if row is best:
        return "best"
    c = comparisons.get(row.gan.name)
    if c is None or c.p_holm is None:
        return "too few seeds"
    return f"{c.p_holm:.2g} {'*' if c.significant else 'n.s.'}"


def _ci(row: Row) -> str:
    if not row.finalists:
        return MISSING
    ci = bootstrap_ci(row.values)
    return "n=1: no CI" if ci is None else f"[{_num(ci[0])}, {_num(ci[1])}]"


# ----------------------------------------------------------------------------- sections

def _made_by(commands: Sequence[str]) -> str:
    """The commands that made the runs; one command started as several workers (`--worker N`,
    worker 0 without the flag) is one entry with its count."""
    workers: dict[str, int] = {}
    for command in commands:
        base = re.sub(r" --worker[= ]\S+", "", command)
        workers[base] = workers.get(base, 0) + 1
    return "; ".join(f"`{c}`" + (f" ({n} workers)" if n > 1 else "")
                     for c, n in workers.items()) or MISSING


def _header(data: ReportData) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(data.versions.items())) or MISSING
    shas = ", ".join(data.git_shas) or MISSING
    if len(data.git_shas) > 1:
        shas += " (runs from several commits)"
    facts = [("dataset", data.dataset_text), ("objective", _arrow(data, data.objective)),
             ("budget", data.budget_text), ("date", f"{data.date} (newest run end)"),
             ("git sha", shas), ("hardware", data.hardware), ("packages", versions)]
    if data.commands or data.wall_seconds is not None:
        made = _made_by(data.commands)
        span = MISSING if data.wall_seconds is None else f"{data.wall_seconds:.0f} s"
        facts += [("made by", made), ("wall time", f"{span} (first run start to last run end, "
                                                   "report not included)")]
    lines = [f"# Leaderboard: {data.suite}", ""]
    if data.description:
        lines += [data.description, ""]
    return lines + _table(("", ""), [(f"**{k}**", v) for k, v in facts]) + [""]


def _protocol_table(protocol: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for key in _metric_keys([protocol]):
        p = protocol[key]
        cells = [MISSING if p.get(c) is None else str(p[c]) for c in PROTOCOL_COLUMNS]
        params = json.dumps(p.get("params") or {}, sort_keys=True)
        rows.append([key, *cells, f"`{params}`"])
    return _table(("record", *PROTOCOL_COLUMNS, "params"), rows)


def _metric_keys(protocols: Sequence[dict[str, Any]]) -> list[str]:
    keys = {k for p in protocols for k in p}
    order = {k: i for i, k in enumerate(METRIC_ORDER)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def _ranked(data: ReportData, rows: list[Row]) -> tuple[list[Row], Row | None, dict[str, Comparison]]:
    """Rows best first, the best scored row and each row's test against it."""
    rows = rank_rows(rows, data.higher_is_better)
    scored = [r for r in rows if r.finalists]
    best = scored[0] if scored else None
    comparisons: dict[str, Comparison] = {}
    if best is not None:
        groups = {r.gan.name: r.values for r in scored}
        comparisons = compare_to_best(groups, best.gan.name, data.test)
    return rows, best, comparisons


def _mean_ci(row: Row) -> str:
    """`131.9 [126.3, 137.4]`: the finalists' mean and its bootstrap CI in one cell."""
    if not row.finalists:
        return MISSING
    ci = bootstrap_ci(row.values)
    tail = "(n=1: no CI)" if ci is None else f"[{_num(ci[0])}, {_num(ci[1])}]"
    return f"{_num(row.mean)} {tail}"


def _lead_table(data: ReportData, rows: list[Row], figs: dict[str, FigureSpec | bytes]) -> list[str]:
    """The short table a reader starts with: rank, objective mean [CI], seeds, vs best, the
    coverage columns the finalists have, and a link to the GAN's sample grid."""
    rows, best, comparisons = _ranked(data, rows)
    cover = coverage_keys([f for r in rows for f in r.finalists], data.objective)
    header = ["rank", "GAN", f"{_arrow(data, data.objective)} mean [{CONFIDENCE:.0%} CI]", "seeds",
              "vs best", *[_arrow(data, k) for k in cover], "samples"]
    body = []
    for i, row in enumerate(rows, 1):
        grid = f"samples_{row.gan.name}.png"
        body.append([str(i) if row.finalists else MISSING, row.gan.name, _mean_ci(row),
                     str(len(row.finalists)),
                     _marker(row, best, comparisons) if row.finalists else MISSING,
                     *[_num(row.metric_mean(k)) for k in cover],
                     f"[samples](figures/{grid})" if grid in figs else MISSING])
    return _table(header, body)


def _leaderboard(data: ReportData, rows: list[Row]) -> list[str]:
    higher = data.higher_is_better
    rows, best, comparisons = _ranked(data, rows)
    extra = [k for k in _metric_keys([r.protocol for r in rows]) if k != data.objective]
    header = ["rank", "GAN", f"{_arrow(data, data.objective)} final mean",
              f"{CONFIDENCE:.0%} CI", "seeds", "vs best", "best search",
              *[_arrow(data, k) for k in extra]]
    body = []
    for i, row in enumerate(rows, 1):
        body.append([str(i) if row.finalists else MISSING, f"{row.gan.name}", _num(row.mean),
                     _ci(row), str(len(row.finalists)),
                     _marker(row, best, comparisons) if row.finalists else MISSING,
                     _num(_best_search(row.gan, higher)),
                     *[_num(row.metric_mean(k)) for k in extra]])
    return _table(header, body)


def _seconds_unit(data: ReportData) -> str:
    devices = {t.device.split(":")[0] for g in data.gans for t in g.trials if t.device}
    return {frozenset({"cpu"}): "CPU-s", frozenset({"cuda"}): "GPU-s"}.get(frozenset(devices), "s")


def _search_table(data: ReportData, order: Sequence[GanRecord]) -> list[str]:
    unit = _seconds_unit(data)
    body = []
    for gan in order:
        trials = gan.trials
        secs = [t.seconds for t in trials if t.seconds is not None]
        total = sum(secs) + sum(f.train_seconds or 0.0 for f in gan.finalists)
        counts = "/".join(str(sum(t.state == s for t in trials)) for s in ("complete", "pruned", "failed"))
        params = [_num(_float(gan.best_params.get(p)), 3) for p in SEARCH_PARAMS]
        body.append([gan.name, gan.combination,
                     MISSING if gan.best_trial is None else f"#{gan.best_trial}", *params, counts,
                     _num(sum(secs) / len(secs) if secs else None, 3), f"{total:.0f}"])
    return _table(("GAN", "arch / loss / penalty", "best trial", *SEARCH_PARAMS,
                   "complete/pruned/failed", f"{unit} per trial", f"{unit} total"), body)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _references(data: ReportData, protocol: dict[str, dict[str, Any]], title: str) -> list[str]:
    """Reference rows measured on the finalists' protocol (`title`'s); the others are not shown,
    one line says how many and where they are."""
    if data.references is None:
        return ["(reference rows not measured yet)"]
    refs = [r for r in data.references
            if r.get("dataset") == data.dataset and r.get("metric") in data.directions]
    if not refs:
        return [f"(no reference rows for {data.dataset} and these metrics)"]
    same = [r for r in refs
            if _same_protocol(r.get("protocol") or {}, protocol.get(r["metric"])) == "same"]
    own = ("`gan-bench score --ladder` scores real digits, intact and damaged, on the protocol "
           "of your own samples" if data.dataset == "mnist" else
           "`gan-bench score` scores real samples on your own protocol")
    other = len(refs) - len(same)
    what = "1 reference row" if other == 1 else f"{other} reference rows"
    verb = "is" if other == 1 else "are"
    note = (f"{what} measured on another protocol than the finalists' {verb} not shown (their "
            "numbers are not comparable with these): the "
            "10k floors and ceilings are in `docs/metrics.md#floors-and-ceilings-real-data` and "
            f"`benchmark/gan_bench/assets/references.json`; {own}.")
    if not same:
        return [note]
    body = [[str(r.get("label", "")), _arrow(data, r["metric"]), _num(_float(r.get("value")))]
            for r in same]
    lines = [f"Measured on the finalists' protocol ({title}):", "",
             *_table(("reference", "record", "value"), body)]
    return lines + (["", note] if other else [])


def _ladder(data: ReportData, protocol: dict[str, dict[str, Any]], title: str) -> list[str]:
    """The calibration ladder (real digits with known damage) on the finals' protocol."""
    if not data.ladder:
        return []
    from gan_bench.ladder import ladder_table, protocol_text

    same = _same_protocol(data.ladder[0].get("protocol") or {}, protocol.get("fid_mnist"))
    return ["## Calibration ladder", "", "Real digits with known damage, scored like the "
            f"finalists (protocol vs {title}: {same}). Read a GAN's row against these: "
            "class coverage next to the confident share, since damaged or noisy digits still "
            "get an argmax class.", "", protocol_text(data.ladder), "",
            *ladder_table(data.ladder), ""]


def _same_protocol(ref: dict[str, Any], ours: dict[str, Any] | None) -> str:
    if ours is None:
        return "no finalist scored this record"
    from gan_bench.metrics.records import protocol_differences

    # every field that changes a value: extractor and weights, sizes, split, dtype, seed,
    # precision and each metric parameter (issue 13: dtype and params were left out)
    diff = protocol_differences(ref, ours)
    return "same" if not diff else "differs: " + "; ".join(diff)


LEAD = (f"One short table per evaluation protocol, ranked by the finalists' mean objective (one "
        f"finalist per seed; in brackets the {CONFIDENCE:.0%} percentile bootstrap CI of the "
        "mean). *vs best*: Holm-adjusted two-sided p of {test} against the best row; `*` below "
        f"{ALPHA}, `n.s.` not significant. Coverage columns: finalists' means. *samples*: the "
        "best finalist's sample grid. Every metric and each table's protocol follow under "
        "*Full metrics*, the calibration ladder on that protocol right after.")

LEGEND = (f"Ranked by the finalists' mean objective (one finalist per seed; CI: {CONFIDENCE:.0%} "
          "percentile bootstrap of the mean). *vs best*: Holm-adjusted two-sided p of {test} "
          f"against the best row; `*` below {ALPHA}, `n.s.` not significant. *best search*: the "
          "best trial's objective during the search, on fewer samples (not comparable with the "
          "final column). Other columns: finalists' means.")


def render(data: ReportData) -> tuple[str, dict[str, FigureSpec | bytes]]:
    """(leaderboard markdown, {file name under figures/: FigureSpec or PNG bytes})."""
    groups = protocol_groups(data.gans)
    titles = [f"Protocol {chr(64 + i)}" if rows[0].finalists else "GANs without finalist runs"
              for i, rows in enumerate(groups, 1)]
    test = {"mannwhitney": "Mann-Whitney U", "welch": "Welch's t"}[data.test]
    figs, fig_lines = figure_specs(data)
    lines = _header(data) + [f"> **Warning:** {w}" for w in data.warnings]
    lines += [""] if data.warnings else []
    lines += ["## Leaderboard", "", LEAD.format(test=test), ""]
    if len([g for g in groups if g[0].finalists]) > 1:
        lines += ["The finalists were scored under different evaluation protocols: each table "
                  "below holds one protocol, and rows of different tables are not ranked "
                  "against each other.", ""]
    for title, rows in zip(titles, groups):
        lines += [f"### {title}", ""] + _lead_table(data, rows, figs) + [""]
    lines += ["## Full metrics", "", LEGEND.format(test=test), ""]
    order: list[GanRecord] = []
    for title, rows in zip(titles, groups):
        lines += [f"### {title}", ""] + _leaderboard(data, rows) + [""]
        if rows[0].finalists:
            lines += ["Evaluation protocol:", ""] + _protocol_table(rows[0].protocol) + [""]
        order += [r.gan for r in rank_rows(rows, data.higher_is_better) if r.gan not in order]
    scored = bool(groups) and bool(groups[0][0].finalists)
    first, first_title = (groups[0][0].protocol, titles[0]) if scored else ({}, "the finalists'")
    lines += _ladder(data, first, first_title)
    lines += mixtures_section(data) + length_section(data) + arms_section(data)
    lines += ["## Search and cost", "", "Best hyperparameters of each GAN's best trial; seconds "
              "are wall seconds per search trial and in total (search trials plus finalist "
              "training).", ""] + _search_table(data, order) + [""]
    lines += ["## Reference rows", ""] + _references(data, first, first_title) + [""]
    lines += ["## What the search found", ""] + findings(data) + [""]
    lines += _checks_section(data, figs)
    lines += ["## Figures", ""] + fig_lines
    return "\n".join(lines).rstrip() + "\n", figs


def _checks_section(data: ReportData, figs: dict[str, FigureSpec | bytes]) -> list[str]:
    """Each GAN's best finalist checked against the papers (report/checks.py); its figures
    join `figs`."""
    checked = [g for g in data.gans if g.checks is not None]
    if not checked:
        return []
    lines = ["## Checked against the papers", "",
             "What the GAN papers claim, measured on each GAN's best finalist (its checkpoint, "
             "seeds and protocols stated with each number): latent walks and arithmetic "
             "(Radford et al. 2015), path length (Karras et al. 2019), nearest training samples "
             "(Meehan et al. 2020), the optimal discriminator and the value of the game "
             "(Goodfellow et al. 2014) and G's gradient as D wins (Goodfellow 2016).", ""]
    for g in checked:
        lines += [f"### {g.name}", ""]
        lines += [line.replace("### ", "#### ", 1) if line.startswith("### ") else line
                  for line in g.checks.lines]
        lines.append("")
        figs.update(dict(g.checks.figures))
    return lines
