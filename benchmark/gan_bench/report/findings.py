"""The "what the search found" paragraph, generated from the trials (pure).

The TTUR question (Heusel et al. 2017): does lr_d != lr_g beat equal rates? Trials split into
"ratio near 1" (|log lr_ratio| < log 1.25) and the rest; the two groups are compared by their
expected best objective over the same number of trials (the smaller group's size), because the
best of many trials beats the best of few even when nothing differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from gan_bench.report.data import GanRecord, ReportData, TrialRecord
from gan_bench.stats import expected_max

__all__ = ["findings", "ttur_comparison", "NEAR_ONE", "MIN_PER_GROUP"]

NEAR_ONE = math.log(1.25)  # |log lr_ratio| below this counts as "ratio = 1"
MIN_PER_GROUP = 2  # complete trials needed on each side before comparing


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _complete(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.state == "complete" and t.value is not None]


def ttur_comparison(gan: GanRecord, higher_is_better: bool) -> tuple[str, int | None]:
    """(sentence, verdict): verdict +1 when ratio != 1 did better, -1 worse, 0 tie, None: untold."""
    done = [t for t in _complete(gan.trials) if "lr_ratio" in t.params]
    ratios = {float(t.params["lr_ratio"]) for t in done}
    if len(ratios) < 2:
        return "lr_ratio was not varied in its completed trials", None
    # _complete keeps only trials whose value is not None
    near = cast("list[float]", [t.value for t in done if abs(math.log(float(t.params["lr_ratio"]))) < NEAR_ONE])
    away = cast("list[float]", [t.value for t in done if abs(math.log(float(t.params["lr_ratio"]))) >= NEAR_ONE])
    if min(len(near), len(away)) < MIN_PER_GROUP:
        return (f"too few trials to tell whether ratio != 1 beats ratio = 1 ({len(near)} near 1, "
                f"{len(away)} away from 1; {MIN_PER_GROUP} of each needed)"), None
    m = min(len(near), len(away))
    e_near = float(expected_max(near, higher_is_better)[0][m - 1])
    e_away = float(expected_max(away, higher_is_better)[0][m - 1])
    sign = (e_away > e_near) - (e_away < e_near)
    verdict = sign if higher_is_better else -sign
    word = {1: "better", -1: "worse", 0: "the same"}[verdict]
    return (f"expected best of {m} trials {_fmt(e_away)} with ratio != 1 vs {_fmt(e_near)} with "
            f"ratio = 1 ({len(away)} and {len(near)} trials): ratio != 1 did {word}"), verdict


def _failures(trials: Sequence[TrialRecord]) -> str:
    failed = [t for t in trials if t.state == "failed"]
    pruned = sum(t.state == "pruned" for t in trials)
    kinds: dict[str, int] = {}
    for t in failed:
        kinds[t.failure_kind or "unknown"] = kinds.get(t.failure_kind or "unknown", 0) + 1
    why = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    text = f"{len(failed)} of {len(trials)} trials failed" + (f" ({why})" if why else "")
    return text + (f", {pruned} pruned" if pruned else "")


def _best_setting(gan: GanRecord) -> str:
    best = next((t for t in gan.trials if t.number == gan.best_trial), None)
    if best is None:
        return "no completed trial"
    params = {**gan.best_params, **best.params}
    parts = [f"{key} {_fmt(float(params[key]))}" for key in ("lr_ratio", "k") if key in params]
    return f"best trial #{best.number} ({_fmt(best.value)})" + (": " + ", ".join(parts) if parts else "")


def findings(data: ReportData) -> list[str]:
    """Markdown lines: one bullet per GAN, then a summary over GANs."""
    lines, verdicts, n_trials, n_failed = [], [], 0, 0
    for gan in data.gans:
        sentence, verdict = ttur_comparison(gan, data.higher_is_better)
        verdicts.append(verdict)
        n_trials += len(gan.trials)
        n_failed += sum(t.state == "failed" for t in gan.trials)
        parts = [_best_setting(gan), sentence, _failures(gan.trials)]
        if gan.best_trial is None:
            del parts[1]
        lines.append(f"- **{gan.name}**: {'; '.join(parts)}.")
    told = [v for v in verdicts if v is not None]
    if told:
        wins = sum(v > 0 for v in told)
        summary = (f"Across GANs, ratio != 1 beat ratio = 1 in {wins} of the {len(told)} GAN(s) "
                   f"where it could be told ({len(verdicts) - len(told)} with too few trials).")
    else:
        summary = ("Whether ratio != 1 beats ratio = 1 cannot be told from these trials (too few "
                   "per GAN); raise budget.trials.")
    rate = f"{n_failed / n_trials:.0%}" if n_trials else "-"
    lines += ["", f"{summary} Failure rate over all trials: {n_failed} of {n_trials} ({rate})."]
    return lines
