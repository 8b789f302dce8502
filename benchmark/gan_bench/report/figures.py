"""Figures of a report: `figure_specs` (pure: data in, specs + markdown out) and `draw`
(matplotlib Agg: one spec in, PNG bytes out). File names are stable, so a regenerated report
overwrites the same files.

figures/objective_curves.png   objective vs iteration of each GAN's best trial
figures/samples_<gan>.png      last sample grid of each GAN's best finalist (same z for all)
figures/landscape.png          objective over log10 lr_ratio x k, one panel per GAN
figures/expected_best.png      expected best objective vs number of trials, +- 1 std band
figures/importances.png        Optuna parameter importances, one panel per GAN
figures/expected_arms.png      paired arms: control vs searched expected best, one panel per GAN
figures/modes.png              mixtures: best finalists' samples over the true modes
figures/classes.png            MNIST: class histogram of the best finalists' samples
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from gan_bench.report.data import FigureSpec, ReportData
from gan_bench.stats import expected_max

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.ticker import MaxNLocator

__all__ = ["FigureSpec", "figure_specs", "draw", "DPI"]

DPI = 80  # small PNGs: reports are committed
PANEL_IN = 3.0  # inches per panel
MARKERS = {"complete": "o", "pruned": "s", "failed": "x"}


def _label(data: ReportData) -> str:
    return f"{data.objective} ({'higher' if data.higher_is_better else 'lower'} is better)"


def _curves(data: ReportData) -> FigureSpec | None:
    panels = {g.name: list(g.curve) for g in data.gans if g.curve}
    return FigureSpec("curves", "objective of each GAN's best trial", panels,
                      {"ylabel": _label(data)}) if panels else None


def _landscape(data: ReportData) -> FigureSpec | None:
    panels = {g.name: [(float(t.params["lr_ratio"]), float(t.params.get("k", g.best_params.get("k", 1))),
                        t.value, t.state) for t in g.trials if "lr_ratio" in t.params]
              for g in data.gans}
    panels = {k: v for k, v in panels.items() if v}
    return FigureSpec("landscape", "objective over lr_ratio x k (x: failed, square: pruned)",
                      panels, {"clabel": _label(data)}) if panels else None


def _expected(data: ReportData) -> FigureSpec | None:
    panels = {}
    for g in data.gans:
        values = [t.value for t in g.trials if t.state == "complete" and t.value is not None]
        if len(values) >= 2:  # one trial has no curve; the band is clipped to the values seen
            mean, std = expected_max(values, data.higher_is_better)
            lo, hi = np.clip(mean - std, min(values), None), np.clip(mean + std, None, max(values))
            panels[g.name] = (mean.tolist(), lo.tolist(), hi.tolist())
    return FigureSpec("expected", "expected best objective after n trials (band: +- 1 std)",
                      panels, {"ylabel": _label(data)}) if panels else None


def _importances(data: ReportData) -> FigureSpec | None:
    panels = {g.name: dict(g.importances) for g in data.gans if g.importances}
    return FigureSpec("importances", "Optuna parameter importances (fANOVA)", panels) if panels else None


def _modes(data: ReportData) -> tuple[str, FigureSpec] | None:
    points = {g.name: g.points for g in data.gans if g.points}
    if points and data.centres:
        return "modes.png", FigureSpec("points", "best finalists' samples over the true modes",
                                       points, {"centres": data.centres, "sigma": data.sigma})
    counts = {g.name: list(g.class_counts) for g in data.gans if g.class_counts}
    if counts:
        return "classes.png", FigureSpec("classes", "classes of the best finalists' samples", counts)
    return None


def figure_specs(data: ReportData) -> tuple[dict[str, FigureSpec | bytes], list[str]]:
    """({file name under figures/: spec or PNG bytes}, markdown lines linking them).

    A figure that cannot be made from the data is left out with a one-line note saying why.
    """
    figs: dict[str, FigureSpec | bytes] = {}
    lines: list[str] = []

    def add(name: str, spec: FigureSpec | bytes | None, caption: str, missing: str) -> None:
        if spec is None:
            lines.append(f"- {caption}: not drawn ({missing}).")
            return
        figs[name] = spec
        lines.append(f"- {caption}:\n\n  ![{name[:-4]}](figures/{name})\n")

    add("objective_curves.png", _curves(data), "objective vs iteration of each GAN's best trial",
        "no completed trial with a recorded curve")
    for g in data.gans:
        if g.samples_png:
            add(f"samples_{g.name}.png", g.samples_png, f"samples of {g.name}'s best finalist "
                "(last evaluation, the same z for every GAN)", "")
    no_grid = [g.name for g in data.gans if not g.samples_png]
    if no_grid:
        lines.append(f"- sample grids: not drawn for {', '.join(no_grid)} (no finalist with a "
                     "sample grid).")
    add("landscape.png", _landscape(data), "lr_ratio x k landscape", "lr_ratio was not searched")
    add("expected_best.png", _expected(data), "expected best objective vs number of trials",
        "no GAN has 2 completed trials")
    from gan_bench.report.arms import arm_pairs, arms_figure

    if arm_pairs(data.gans):
        add("expected_arms.png", arms_figure(data), "control vs searched arm: expected best "
            "objective vs number of trials", "no completed trial in the arms")
    add("importances.png", _importances(data), "parameter importances",
        "no study has 2 completed trials with a varied parameter")
    skipped = [g.name for g in data.gans if not g.importances]
    if figs.get("importances.png") is not None and skipped:
        lines.append(f"  (left out: {', '.join(skipped)}: fewer than 2 completed trials, or no "
                     "parameter varied)\n")
    modes = _modes(data)
    notes = sorted({g.samples_note for g in data.gans if g.samples_note})
    what = {"modes.png": "best finalists' samples over the true modes",
            "classes.png": "class histogram of the best finalists' samples"}
    name = modes[0] if modes else "modes.png"
    add(name, modes[1] if modes else None, what[name] + (f" ({'; '.join(notes)})" if notes else ""),
        "no finalist checkpoint, or a dataset that is neither a 2-D mixture nor MNIST")
    return figs, lines


# ----------------------------------------------------------------------------- drawing

def draw(spec: FigureSpec) -> bytes:
    """PNG bytes of one figure (matplotlib Agg, DPI 80, no timestamps: same data, same bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(spec.panels)
    one_axis = spec.kind in ("curves", "expected")
    cols = 1 if one_axis else min(n, 3)
    rows = 1 if one_axis else math.ceil(n / cols)
    width = 5.0 if one_axis else PANEL_IN * cols
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.2 * rows), squeeze=False)
    try:
        # an object array of Axes: the drawers only index, slice and iterate it
        DRAWERS[spec.kind](spec, cast("Sequence[Axes]", axes.ravel()))
        # wrapped to the figure's width: a one-panel figure is narrower than most titles
        fig.suptitle(textwrap.fill(spec.title, width=max(30, int(width * 11))), fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def _draw_curves(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    ax = axes[0]
    for name, curve in spec.panels.items():
        steps, values = zip(*curve)
        ax.plot(steps, values, marker="o", ms=3, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel(spec.options["ylabel"], fontsize=8)
    ax.legend(fontsize=7)


def _draw_expected(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    ax = axes[0]
    for name, (mean, lo, hi) in spec.panels.items():
        n = np.arange(1, len(mean) + 1)
        ax.plot(n, mean, marker="o", ms=3, label=name)
        ax.fill_between(n, lo, hi, alpha=0.2)
    # a fresh axis's default locator is an AutoLocator, a MaxNLocator
    cast("MaxNLocator", ax.xaxis.get_major_locator()).set_params(integer=True)
    ax.set_xlabel("number of trials")
    ax.set_ylabel(f"expected best {spec.options['ylabel']}", fontsize=8)
    ax.legend(fontsize=7)


def _draw_landscape(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    values = [v for pts in spec.panels.values() for _, _, v, s in pts if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    rng = np.random.default_rng(0)  # fixed jitter: the figure is the same on every rebuild
    for ax, (name, pts) in zip(axes, spec.panels.items()):
        for state, marker in MARKERS.items():
            sel = [p for p in pts if p[3] == state]
            if not sel:
                continue
            x = np.log10([p[0] for p in sel])
            y = np.array([p[1] for p in sel]) + rng.uniform(-0.15, 0.15, len(sel))
            c = [p[2] if p[2] is not None else np.nan for p in sel]
            kw = {"c": c, "cmap": "viridis", "vmin": lo, "vmax": hi} if state == "complete" else {"c": "grey"}
            sc = ax.scatter(x, y, marker=marker, s=25, **kw)
            if state == "complete":
                ax.figure.colorbar(sc, ax=ax).set_label(spec.options["clabel"], fontsize=7)
        ks = sorted({p[1] for p in pts})
        ax.axvline(0.0, color="k", lw=0.5, ls=":")
        ax.set(title=name, xlabel="log10 lr_ratio (lr_d / lr_g)", ylabel="k (jittered)",
               yticks=ks, ylim=(ks[0] - 0.5, ks[-1] + 0.5))
    _hide_rest(axes, len(spec.panels))


def _draw_importances(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    for ax, (name, imp) in zip(axes, spec.panels.items()):
        keys = sorted(imp, key=lambda k: (imp[k], k))
        ax.barh(keys, [imp[k] for k in keys])
        ax.set(title=name, xlabel="importance", xlim=(0, 1))
    _hide_rest(axes, len(spec.panels))


def _draw_points(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    import matplotlib.patches as mpatches

    centres = np.asarray(spec.options["centres"], dtype=float)
    half = 1.3 * float(np.abs(centres).max())
    for ax, (name, pts) in zip(axes, spec.panels.items()):
        pts = np.asarray(pts, dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="tab:blue")
        for c in centres:  # high-quality radius: 3 sigma (PacGAN's mode-capture threshold)
            ax.add_patch(mpatches.Circle(c, 3 * (spec.options["sigma"] or 0), fill=False, color="red", lw=0.8))
        ax.scatter(centres[:, 0], centres[:, 1], marker="+", color="red", s=30)
        ax.set(title=name, xlim=(-half, half), ylim=(-half, half), aspect="equal")
    _hide_rest(axes, len(spec.panels))


def _draw_classes(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    for ax, (name, counts) in zip(axes, spec.panels.items()):
        share = np.asarray(counts, dtype=float) / max(sum(counts), 1)
        ax.bar(range(len(counts)), share)
        ax.axhline(1 / len(counts), color="k", lw=0.5, ls=":")
        ax.set(title=name, xlabel="class (MNIST classifier argmax)", ylabel="share",
               xticks=range(len(counts)))
    _hide_rest(axes, len(spec.panels))


def _draw_expected_arms(spec: FigureSpec, axes: Sequence[Axes]) -> None:
    colours = {"control": "tab:grey", "searched": "tab:blue"}
    for ax, (name, curves) in zip(axes, spec.panels.items()):
        for arm, (mean, lo, hi) in curves.items():
            n = np.arange(1, len(mean) + 1)
            ax.plot(n, mean, marker="o", ms=3, color=colours.get(arm), label=arm)
            ax.fill_between(n, lo, hi, alpha=0.2, color=colours.get(arm))
        cast("MaxNLocator", ax.xaxis.get_major_locator()).set_params(integer=True)
        ax.set(title=name, xlabel="number of trials")
        ax.set_ylabel(f"expected best {spec.options['ylabel']}", fontsize=7)
        ax.legend(fontsize=7)
    _hide_rest(axes, len(spec.panels))


def _hide_rest(axes: Sequence[Axes], used: int) -> None:
    for ax in axes[used:]:
        ax.set_visible(False)


DRAWERS = {"curves": _draw_curves, "expected": _draw_expected, "landscape": _draw_landscape,
           "importances": _draw_importances, "points": _draw_points, "classes": _draw_classes,
           "expected_arms": _draw_expected_arms}
