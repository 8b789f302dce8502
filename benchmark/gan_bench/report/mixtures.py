"""Mode coverage on the 2-D mixtures next to PacGAN's Table 1, and how it moves with training
length (pure: ReportData in, markdown lines out).

Rows are our GANs (finalists: one fixed setting, several seeds): modes captured, high-quality
share and reverse KL as mean +- standard error over the seeds (PacGAN's statistic), each remedy
tested against the plain GAN of the same setting (two-sided Mann-Whitney U on modes captured and
on reverse KL, Holm over the remedies of that setting): `pacgan2` against `gan` (the published
setting), `pacgan2_searched` against `gan_searched` (lr_ratio and k searched), and the published
row where PacGAN has one. A second table puts each `<row>_searched` next to `<row>`: does
searching lr_ratio and k move modes, high-quality share or reverse KL (Holm over the rows)?
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gan_bench.report.arms import arm_pairs
from gan_bench.report.data import GanRecord, ReportData
from gan_bench.report.published import SOURCE, published_row
from gan_bench.stats import ALPHA, _pvalue, holm

__all__ = ["mixtures_section", "searched_section", "length_section", "REFERENCE_GAN"]

REFERENCE_GAN = "gan"  # the plain GAN every remedy is tested against
SEARCHED = "_searched"  # `<row>_searched`: the row with lr_ratio and k searched
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


def _reference(name: str) -> str:
    """The plain GAN a row is tested against: `gan`, or `gan_searched` for a searched row."""
    return REFERENCE_GAN + SEARCHED if name.endswith(SEARCHED) else REFERENCE_GAN


def _tests(gans: Sequence[GanRecord], key: str) -> dict[str, float | None]:
    """Each row against the plain GAN of its setting, Holm-adjusted within each setting."""
    by_name = {g.name: g for g in gans}
    out: dict[str, float | None] = {}
    for ref_name in (REFERENCE_GAN, REFERENCE_GAN + SEARCHED):
        ref = by_name.get(ref_name)
        if ref is None:
            continue
        base = np.asarray(_vals(ref, key))
        raw = {g.name: _pvalue(np.asarray(_vals(g, key)), base, "mannwhitney")
               for g in gans if g is not ref and _reference(g.name) == ref_name}
        out.update(holm(raw))
    return out


def _p(p: float | None) -> str:
    return MISSING if p is None else f"{p:.2g}{' *' if p < ALPHA else ''}"


def mixtures_section(data: ReportData) -> list[str]:
    gans = [g for g in data.gans if _vals(g, "modes_captured")]
    if not gans or data.centres is None:
        return []
    p_modes = _tests(gans, "modes_captured")
    p_kl = _tests(gans, "kl_to_uniform")
    n_modes = len(data.centres)
    against = f"`{REFERENCE_GAN}`"
    if any(g.name.endswith(SEARCHED) for g in gans):
        against = (f"the plain GAN of the same setting (`{REFERENCE_GAN}`; "
                   f"`{REFERENCE_GAN}{SEARCHED}` for the `*{SEARCHED}` rows, lr_ratio and k searched)")
    lines = ["## Mode coverage next to the published numbers", "",
             f"Our finalists: mean +- standard error over seeds of modes captured (of {n_modes}), "
             "high-quality samples (%) and reverse KL (nats, KL of the high-quality samples' mode "
             f"histogram to uniform). p: two-sided Mann-Whitney U against {against} over "
             f"seeds, Holm-adjusted over the other rows of the same setting (* below {ALPHA}). "
             f"Published: {SOURCE}; "
             "our runs are far shorter (see the budget above), so read the published columns as "
             "where the nets end up, not as a like-for-like row.", ""]
    header = ["GAN", "seeds", "modes", "high quality %", "reverse KL", "p modes", "p KL",
              "published modes", "published HQ %", "published KL"]
    rows = []
    for g in gans:
        pub = None if g.name.endswith(SEARCHED) else published_row(data.dataset, g.name)
        rows.append([g.name, str(len(g.finalists)), _mean_se(_vals(g, "modes_captured")),
                     _mean_se(_vals(g, "high_quality_share"), 100.0),
                     _mean_se(_vals(g, "kl_to_uniform")),
                     _p(p_modes.get(g.name)), _p(p_kl.get(g.name)),
                     *((f"{pub[0]} +- {pub[1]}", f"{pub[2]}", f"{pub[3]}") if pub else (MISSING,) * 3)])
    lines += [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    lines += [f"| {' | '.join(r)} |" for r in rows] + [""]
    return lines + searched_section(gans)


def _shift(base: GanRecord, searched: GanRecord, key: str, scale: float = 1.0) -> str:
    a, b = _vals(base, key), _vals(searched, key)
    if not a or not b:
        return MISSING
    return f"{np.mean(a) * scale:.3g} -> {np.mean(b) * scale:.3g}"


def searched_section(gans: Sequence[GanRecord]) -> list[str]:
    """Each `<row>_searched` next to `<row>` on every mode metric; [] without such pairs."""
    pairs = [(p.control, p.searched) for p in arm_pairs(gans)]  # `<row>_searched` with `<row>`
    if not pairs:
        return []
    keys = (("modes_captured", "modes", 1.0), ("high_quality_share", "high quality %", 100.0),
            ("kl_to_uniform", "reverse KL", 1.0))
    p = {key: holm({s.name: _pvalue(np.asarray(_vals(s, key)), np.asarray(_vals(b, key)),
                                    "mannwhitney") for b, s in pairs})
         for key, _, _ in keys}
    lines = ["### Searching lr_ratio and k: each row against its published setting", "",
             "Finalists' mean at the published setting (lr_ratio 1, k 1) -> with lr_ratio and k "
             "searched (the setting the search picked, retrained with the same seeds); p: "
             f"two-sided Mann-Whitney U over seeds, Holm-adjusted over the {len(pairs)} rows per "
             f"column (* below {ALPHA}).", ""]
    header = ["row", "setting found"]
    for _, label, _ in keys:
        header += [label, f"p {label}"]
    lines += [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    for base, searched in pairs:
        cells = [base.name, _setting(searched)]
        for key, _, scale in keys:
            cells += [_shift(base, searched, key, scale), _p(p[key].get(searched.name))]
        lines.append(f"| {' | '.join(cells)} |")
    return lines + [""]


def _setting(gan: GanRecord) -> str:
    params = gan.best_params
    parts = [f"{k} {float(params[k]):.3g}" for k in ("lr_ratio", "k") if k in params]
    return ", ".join(parts) or MISSING


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
