"""Paired arms: does searching lr_ratio and k help? (pure: ReportData in, markdown and a figure
spec out)

A suite that names two GANs `<base>_control` and `<base>_searched` (suites/mnist_cpu.yaml) asks
TTUR's question (Heusel et al. 2017) under one protocol: the control arm fixes lr_ratio = 1 and
k = 1 and searches what Lucic et al. 2018 searched; the searched arm also searches lr_ratio and
k, with the same number of trials. Each arm's best setting is retrained with fresh seeds; the
arms are compared on those finalists (mean, bootstrap CI, difference, two-sided test, Holm over
the pairs) and on the expected best objective after n trials (Dodge et al. 2019), both arms on
one plot per GAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan_bench.report.data import FigureSpec, GanRecord, ReportData
from gan_bench.stats import ALPHA, CONFIDENCE, _pvalue, bootstrap_ci, expected_max, holm

__all__ = ["ArmPair", "arm_pairs", "arms_section", "arms_figure", "ARMS"]

ARMS = ("control", "searched")
MISSING = "-"


@dataclass(frozen=True)
class ArmPair:
    base: str  # e.g. "ns_gan"
    control: GanRecord
    searched: GanRecord


def arm_pairs(gans: Sequence[GanRecord]) -> list[ArmPair]:
    """Pairs `<base>_searched` with `<base>_control`, else with `<base>` (a paper's fixed
    setting, e.g. PacGAN's), in suite order; a lone arm is not paired."""
    by_name = {g.name: g for g in gans}
    out = []
    for g in gans:
        if g.name.endswith("_searched"):
            base = g.name[: -len("_searched")]
            control = by_name.get(f"{base}_control") or by_name.get(base)
            if control is not None:
                out.append(ArmPair(base, control, g))
    return out


def _values(gan: GanRecord) -> list[float]:
    return [f.objective for f in gan.finalists]


def _num(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def _setting(gan: GanRecord) -> str:
    best = next((t for t in gan.trials if t.number == gan.best_trial), None)
    if best is None:
        return MISSING
    params = {**gan.best_params, **best.params}
    parts = []
    for key in ("lr_g", "lr_ratio", "k", "beta1"):
        if key in params:
            parts.append(f"{key} {_num(float(params[key]), 3)}")
    return ", ".join(parts)


def _ci(values: Sequence[float]) -> str:
    ci = bootstrap_ci(values)
    return "n<2: no CI" if ci is None else f"[{_num(ci[0])}, {_num(ci[1])}]"


def _comparisons(pairs: Sequence[ArmPair], test: str) -> dict[str, dict[str, Any]]:
    raw = {}
    a: np.ndarray | list[float]
    b: np.ndarray | list[float]
    for p in pairs:
        a, b = np.asarray(_values(p.control)), np.asarray(_values(p.searched))
        raw[p.base] = _pvalue(a, b, test)
    adjusted = holm(raw)
    out = {}
    for p in pairs:
        a, b = _values(p.control), _values(p.searched)
        diff = float(np.mean(b) - np.mean(a)) if a and b else None
        out[p.base] = {"p": raw[p.base], "p_holm": adjusted[p.base], "diff": diff}
    return out


def _verdict(c: dict[str, Any], higher: bool) -> tuple[str, int | None]:
    """(words, +1 searched better / -1 worse / 0 no difference / None untold)."""
    if c["p_holm"] is None or c["diff"] is None:
        return "too few finalist seeds to test", None
    if c["p_holm"] >= ALPHA:
        return "no significant difference", 0
    better = c["diff"] > 0 if higher else c["diff"] < 0
    return ("searched arm better" if better else "control arm better"), (1 if better else -1)


def arms_section(data: ReportData) -> list[str]:
    """Markdown lines of the paired-arms section; [] when the suite has no paired arms."""
    pairs = arm_pairs(data.gans)
    if not pairs:
        return []
    higher = data.higher_is_better
    test = {"mannwhitney": "Mann-Whitney U", "welch": "Welch's t"}[data.test]
    comps = _comparisons(pairs, data.test)
    arrow = "↑" if higher else "↓"
    lines = ["## Does searching lr_ratio and k help? (control vs searched arms)", "",
             f"Each GAN ran two studies: **control** ({_searched_text(pairs, 'control')}) and "
             f"**searched** ({_searched_text(pairs, 'searched')}; lr_ratio = lr_d / lr_g, TTUR's "
             "question, and k, D steps per G step). Each arm's best "
             f"setting was retrained with fresh seeds. Difference = searched - control of the "
             f"finalists' mean {data.objective}; p: two-sided {test} on the finalists' values, "
             f"Holm-adjusted over the {len(pairs)} pair(s) (alpha {ALPHA}). Expected best after "
             "n trials: the mean best of n trials drawn from the arm's completed trials.", ""]
    header = ["GAN", "arm", f"{data.objective} {arrow} finalists' mean", f"{CONFIDENCE:.0%} CI",
              "seeds", "best setting found", "best search",
              "expected best of 3 trials", "difference", "p (Holm)", "verdict"]
    rows = []
    verdicts = []
    for p in pairs:
        c = comps[p.base]
        words, verdict = _verdict(c, higher)
        verdicts.append((p.base, verdict, c))
        for arm, gan in zip(ARMS, (p.control, p.searched)):
            vals = _values(gan)
            done = [t.value for t in gan.trials if t.state == "complete" and t.value is not None]
            e3 = (float(expected_max(done, higher)[0][min(3, len(done)) - 1]) if done else None)
            best = (max if higher else min)(done) if done else None
            first = arm == "control"
            rows.append([f"**{p.base}**" if first else "", arm,
                         _num(float(np.mean(vals))) if vals else MISSING, _ci(vals),
                         str(len(vals)), _setting(gan), _num(best), _num(e3),
                         "" if first else _num(c["diff"]),
                         "" if first else (MISSING if c["p_holm"] is None
                                           else f"{c['p_holm']:.2g} (raw {c['p']:.2g})"),
                         "" if first else words])
    lines += [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += ["", _summary(verdicts), ""]
    return lines


def _searched_text(pairs: Sequence[ArmPair], arm: str) -> str:
    """What an arm searched, from its trials' sampled parameters."""
    keys = sorted({k for p in pairs for t in getattr(p, arm).trials for k in t.params})
    trials = sorted({len(getattr(p, arm).trials) for p in pairs})
    n = "/".join(map(str, trials))
    if not keys:
        return f"nothing searched: the paper's fixed setting, {n} trial(s)"
    return f"{', '.join(keys)} searched, {n} trial(s)"


def _summary(verdicts: list[tuple[str, int | None, dict[str, Any]]]) -> str:
    told = [(b, v) for b, v, _ in verdicts if v is not None]
    if not told:
        return ("**Finding:** cannot be told from these runs (fewer than 2 finalist seeds per "
                "arm); raise finalists.seeds.")
    better = [b for b, v in told if v > 0]
    worse = [b for b, v in told if v < 0]
    same = [b for b, v in told if v == 0]
    parts = []
    if better:
        parts.append(f"searching lr_ratio and k gave significantly better finalists for "
                     f"{', '.join(better)}")
    if worse:
        parts.append(f"significantly worse finalists for {', '.join(worse)}")
    if same:
        parts.append(f"no significant difference for {', '.join(same)}")
    untold = len(verdicts) - len(told)
    tail = f" ({untold} pair(s) with too few seeds)" if untold else ""
    return (f"**Finding:** at this budget, {'; '.join(parts)}{tail}. A difference that is not "
            "significant with this many seeds is not evidence of no effect; it bounds how large "
            "the effect can be at this budget.")


def arms_figure(data: ReportData) -> FigureSpec | None:
    """FigureSpec "expected_arms": per GAN, both arms' expected best vs trials; None without pairs."""
    panels = {}
    for p in arm_pairs(data.gans):
        curves = {}
        for arm, gan in zip(ARMS, (p.control, p.searched)):
            done = [t.value for t in gan.trials if t.state == "complete" and t.value is not None]
            if done:
                mean, std = expected_max(done, data.higher_is_better)
                lo = np.clip(mean - std, min(done), None)
                hi = np.clip(mean + std, None, max(done))
                curves[arm] = (mean.tolist(), lo.tolist(), hi.tolist())
        if curves:
            panels[p.base] = curves
    if not panels:
        return None
    label = f"{data.objective} ({'higher' if data.higher_is_better else 'lower'} is better)"
    return FigureSpec("expected_arms", "expected best objective after n trials: control "
                      "(lr_ratio 1, k 1) vs searched arm (band: +- 1 std)", panels,
                      {"ylabel": label})
