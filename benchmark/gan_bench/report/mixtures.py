"""Mode coverage on the 2-D mixtures next to PacGAN's Table 1, and how it moves with training
length (pure: ReportData in, markdown lines out).

Rows are our GANs (finalists: one fixed setting, several seeds): modes captured, high-quality
share and reverse KL as mean +- standard error over the seeds (PacGAN's statistic), each remedy
tested against the plain GAN (two-sided Mann-Whitney U on modes captured and on reverse KL,
Holm over the remedies), and the published row where PacGAN has one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from gan_bench.report.data import GanRecord, ReportData
from gan_bench.report.published import SOURCE, published_row
from gan_bench.report.stats import ALPHA, _pvalue, holm

__all__ = ["mixtures_section", "length_section", "REFERENCE_GAN"]

REFERENCE_GAN = "gan"  # the plain GAN every remedy is tested against
MISSING = "-"
KEYS = ("modes_captured", "high_quality_share", "kl_to_uniform")  # collect.CURVE_KEYS


def _vals(gan: GanRecord, key: str) -> list[float]:
    return [f.metrics[key] for f in gan.finalists
            if key in f.metrics and f.metrics[key] is not None and math.isfinite(f.metrics[key])]


def _mean_se(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    if not values:
        return MISSING
    x = np.asarray(values, dtype=np.float64) * scale
    se = x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else None
    return f"{x.mean():.{digits}g}" + ("" if se is None else f" +- {se:.2g}")


def _tests(gans: Sequence[GanRecord], ref: GanRecord, key: str) -> dict[str, float | None]:
    base = np.asarray(_vals(ref, key))
    raw = {g.name: _pvalue(np.asarray(_vals(g, key)), base, "mannwhitney")
           for g in gans if g is not ref}
    return holm(raw)


def _p(p: float | None) -> str:
    return MISSING if p is None else f"{p:.2g}{' *' if p < ALPHA else ''}"


def mixtures_section(data: ReportData) -> list[str]:
    gans = [g for g in data.gans if _vals(g, "modes_captured")]
    if not gans or data.centres is None:
        return []
    ref = next((g for g in gans if g.name == REFERENCE_GAN), None)
    p_modes = _tests(gans, ref, "modes_captured") if ref else {}
    p_kl = _tests(gans, ref, "kl_to_uniform") if ref else {}
    n_modes = len(data.centres)
    lines = ["## Mode coverage next to the published numbers", "",
             f"Our finalists: mean +- standard error over seeds of modes captured (of {n_modes}), "
             "high-quality samples (%) and reverse KL (nats, KL of the high-quality samples' mode "
             f"histogram to uniform). p: two-sided Mann-Whitney U against `{REFERENCE_GAN}` over "
             f"seeds, Holm-adjusted over the other rows (* below {ALPHA}). Published: {SOURCE}; "
             "our runs are far shorter (see the budget above), so read the published columns as "
             "where the nets end up, not as a like-for-like row.", ""]
    header = ["GAN", "seeds", "modes", "high quality %", "reverse KL", "p modes", "p KL",
              "published modes", "published HQ %", "published KL"]
    rows = []
    for g in gans:
        pub = published_row(data.dataset, g.name)
        rows.append([g.name, str(len(g.finalists)), _mean_se(_vals(g, "modes_captured")),
                     _mean_se(_vals(g, "high_quality_share"), 100.0),
                     _mean_se(_vals(g, "kl_to_uniform")),
                     MISSING if g is ref else _p(p_modes.get(g.name)),
                     MISSING if g is ref else _p(p_kl.get(g.name)),
                     *((f"{pub[0]} +- {pub[1]}", f"{pub[2]}", f"{pub[3]}") if pub else (MISSING,) * 3)])
    lines += [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    lines += [f"| {' | '.join(r)} |" for r in rows] + [""]
    return lines


def length_section(data: ReportData) -> list[str]:
    """Finalists' mean of each curve-logged record at each evaluation step."""
    keys = [k for k in KEYS if any(k in f.history for g in data.gans for f in g.finalists)]
    if not keys:
        return []
    lines = ["## How the numbers move with training length", "",
             "Finalists' mean over seeds at each evaluation (the same samples' protocol as the "
             "final scores, scored on metrics.n_fake_search samples during training).", ""]
    for key in keys:
        steps = sorted({s for g in data.gans for f in g.finalists for s, _ in f.history.get(key, ())})
        header = ["GAN", *[f"{s:,}" for s in steps]]
        lines += [f"**{key}** by iteration:", "", f"| {' | '.join(header)} |",
                  "|" + "---|" * len(header)]
        for g in data.gans:
            cells = []
            for s in steps:
                vals = [v for f in g.finalists for st, v in f.history.get(key, ()) if st == s]
                cells.append(f"{np.mean(vals):.3g}" if vals else MISSING)
            if any(c != MISSING for c in cells):
                lines.append(f"| {g.name} | {' | '.join(cells)} |")
        lines.append("")
    return lines
