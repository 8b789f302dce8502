"""What a suite looks like in the MLflow UI: metric and run names, notes, study summaries,
the summary run and the runs view (ui.py serves the UI).

The runner records; this module decides the names and summaries a user compares variants by:

- metric names grouped by prefix, one chart section each: `train/` (losses, D outputs), `opt/`
  (gradient norms), `eval/` (the objective's records, and metrics.curves, at each evaluation),
  `final/` (the finalists' scores on n_fake samples), `perf/` (seconds, img/s), `search/` (a
  GAN's study on its parent run); MLflow adds `system/`. No series is logged twice.
- run names: `t3 k=2 r=0.78` (search trial 3, k, lr_ratio), `t3 k=2 r=0.78 pruned@500`,
  `final s1000 <- t3` (a finalist: seed 1000 of trial 3's setting); a parent is the GAN's name.
- a parent run carries its study's summary as metrics, so the collapsed runs table and a bar
  chart grouped by GAN compare variants directly: `eval/<objective>` the best search value,
  `final/<record>` the finalists' mean with `final_ci/<record>_low` / `_high` (95% bootstrap,
  as the report), `search/complete|pruned|failed`, `search/best_lr_ratio`, `search/best_k`, ...
- the experiment opens in Model training mode with the suite's description as its note, and a
  runs-table view (`VIEW_KEY`) that shows those columns; `gan-bench ui` links to it.
"""
from __future__ import annotations

import getpass
import math
import os
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.data.meta_dataset import MetaDataset
    from optuna.trial import FrozenTrial

    from gan_bench.config import Choices, Range, ResolvedGan, Suite
    from gan_bench.data.base import ArrayDataset
    from gan_bench.metrics.records import MetricRecord
    from gan_bench.tracking import Tracker

__all__ = ["train_metrics", "eval_metrics", "final_metrics", "trial_name", "final_name",
           "suite_note", "gan_note", "summary_metrics", "study_figures", "close_figures",
           "dataset_inputs", "user",
           "VIEW_KEY", "default_views", "view_keys", "describe"]

VIEW_KEY = "gan-bench"  # #/experiments/<id>?viewStateShareKey=gan-bench
_OPT = ("grad_norm_d", "grad_norm_g")  # optimiser-side diagnostics
_CONSTANT = ("lr_g", "lr_d")  # constant over a run (no schedules): params, not curves


# ----------------------------------------------------------------------------- metric names

def train_metrics(diagnostics: Mapping[str, float]) -> dict[str, float]:
    """The trainer's step diagnostics under `train/` and `opt/`; learning rates are params."""
    return {(f"opt/{k}" if k in _OPT else f"train/{k}"): v for k, v in diagnostics.items()
            if k not in _CONSTANT}


def eval_metrics(records: Mapping[str, MetricRecord]) -> dict[str, float]:
    """Records of one evaluation during training (objective + curves) under `eval/`."""
    return {f"eval/{k}": v for rec in records.values() for k, v in rec.flat().items()}


def final_metrics(records: Mapping[str, MetricRecord]) -> dict[str, float]:
    """A finalist's records (metrics.final on n_fake samples) under `final/`."""
    return {f"final/{k}": v for rec in records.values() for k, v in rec.flat().items()}


# ----------------------------------------------------------------------------- run names

def _short(value: object) -> str:
    return f"{float(value):.2g}" if isinstance(value, float) else str(value)


def trial_name(number: int, params: Mapping[str, Any], *, pruned_at: int | None = None,
               failed: bool = False) -> str:
    """"t3 k=2 r=0.78": search trial 3 (its k and lr_ratio, when searched or set)."""
    parts = [f"t{number}"]
    if "k" in params:
        parts.append(f"k={params['k']}")
    if "lr_ratio" in params:
        parts.append(f"r={_short(params['lr_ratio'])}")
    if pruned_at is not None:
        parts.append(f"pruned@{pruned_at}")
    if failed:
        parts.append("failed")
    return " ".join(parts)


def final_name(seed: int, trial: int) -> str:
    """"final s1000 <- t3": a finalist, seed 1000 of trial 3's setting."""
    return f"final s{seed} <- t{trial}"


# ----------------------------------------------------------------------------- notes

def _range_text(param: Range | Choices) -> str:
    from gan_bench.config import Range

    if isinstance(param, Range):
        return f"{param.low:g}..{param.high:g}" + (" (log)" if param.log else "")
    return "{" + ", ".join(f"{v:g}" for v in param.choices) + "}"


def gan_note(suite: Suite, gan: ResolvedGan) -> str:
    """A parent run's description: what the GAN is, what its study searched."""
    spec = gan.spec
    searched = ", ".join(f"{n} {_range_text(p)}" for n, p in gan.search.items()) or "nothing"
    fixed = ", ".join(f"{k}={v}" for k, v in gan.trial_train().items() if k not in gan.search)
    options = ", ".join(f"{k}={v}" for k, v in spec.arch_options.items())
    lines = [f"**{gan.name}**: {spec.arch} / {spec.loss} / {spec.penalty}"
             + (f" ({options})" if options else ""),
             "", f"- searched: {searched}", f"- fixed: {fixed or '-'}",
             f"- objective: {suite.metrics.objective}"
             + (f" ({suite.metrics.objective_record})" if suite.metrics.objective_record else ""),
             "- children: search trials `t<n> k=.. r=..` (r = lr_d / lr_g), finalists "
             "`final s<seed> <- t<n>`; this run's metrics summarise them (see the experiment's "
             "description)"]
    return "\n".join(lines)


def suite_note(suite: Suite, command: str) -> str:
    """The experiment's description: the suite, its GANs, how to read the runs."""
    m, b = suite.metrics, suite.budget
    length = f"{b.iterations} iterations" if b.iterations else f"{b.epochs:g} epochs"
    objective = m.objective + (f" ({m.objective_record})" if m.objective_record else "")
    gans = ", ".join(g.name for g in suite.resolved_gans())
    return "\n".join([
        f"# {suite.name}", "", (suite.description or "").strip(), "",
        f"- dataset: {suite.dataset.name}; GANs: {gans}",
        f"- budget: {b.trials} trials per GAN of {length}, finalists top {suite.finalists.top} "
        f"x {suite.finalists.seeds} seeds; objective {objective}",
        f"- made by `{command}`",
        "",
        "Each GAN is a parent run (its Optuna study); expand it for its search trials and "
        "finalists. A parent's metrics summarise its study: `eval/<objective>` is the best "
        "search value, `final/<metric>` the finalists' mean, `final_ci/<metric>_low` / `_high` "
        "its 95% bootstrap interval, `search/*` the trial counts and the best lr_ratio and k.",
        "Metric groups: `train/` losses and D outputs, `opt/` gradient norms, `eval/` scores at "
        "each evaluation, `final/` the finalists' scores, `perf/` time, `system/` the machine.",
        "`gan-bench report` writes the leaderboard with tests and figures; the `summary` run "
        "holds it as a table."])


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER", "unknown")


# ----------------------------------------------------------------------------- summaries

def summary_metrics(trials: Sequence[FrozenTrial], finals: Sequence[Mapping[str, float]],
                    objective_key: str, higher: bool,
                    records: Collection[str] | None = None) -> dict[str, float]:
    """A GAN's parent-run metrics from its Optuna trials (frozen trials) and its finalists'
    final records ({record key: value} per finalist; `records`: the keys to summarise, e.g.
    not a record's extras such as modes_captured_n_modes; default all). CIs go under
    `final_ci/` (their own chart section)."""
    from gan_bench.stats import bootstrap_ci  # deferred: scipy

    out: dict[str, float] = {}
    states = [t.state.name for t in trials]
    out["search/complete"] = states.count("COMPLETE")
    out["search/pruned"] = states.count("PRUNED")
    out["search/failed"] = states.count("FAIL")
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None
            and math.isfinite(t.value)]
    if done:
        # done holds only trials with a value
        best = (max if higher else min)(done, key=lambda t: cast(float, t.value))
        assert best.value is not None
        out[f"eval/{objective_key}"] = best.value
        out["search/best_trial"] = best.number
        for name in ("lr_g", "lr_ratio", "k", "beta1"):
            if name in best.params:
                out[f"search/best_{name}"] = float(best.params[name])
        if "lr_ratio" in best.params:
            out["search/best_log10_lr_ratio"] = math.log10(best.params["lr_ratio"])
    keys = sorted({k for f in finals for k in f if records is None or k in records})
    for key in keys:
        values = [f[key] for f in finals if key in f and math.isfinite(f[key])]
        if not values:
            continue
        out[f"final/{key}"] = sum(values) / len(values)
        ci = bootstrap_ci(values)
        if ci is not None:
            out[f"final_ci/{key}_low"], out[f"final_ci/{key}_high"] = ci
    if finals:
        out["final/seeds"] = len(finals)
    # summaries for reading and charting: 5 significant digits (the runs hold the raw values)
    return {k: float(f"{v:.5g}") for k, v in out.items()}


def study_figures(gan: str, trials: Sequence[FrozenTrial], finals: Sequence[Mapping[str, float]],
                  objective_key: str, higher: bool) -> dict[str, Figure]:
    """Matplotlib figures for a GAN's parent run: `search` (each trial's objective, pruned
    trials hollow at their last value, labelled k / lr_ratio) and `finalists` (each seed's
    final objective, their mean and 95% bootstrap CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_bench.stats import bootstrap_ci  # deferred: scipy

    better = "higher" if higher else "lower"
    figures: dict[str, Figure] = {}
    shown = []
    for t in trials:
        if t.state.name == "COMPLETE" and t.value is not None:
            shown.append((t, t.value, True))
        elif t.state.name == "PRUNED" and t.intermediate_values:
            shown.append((t, t.intermediate_values[max(t.intermediate_values)], False))
    if shown:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        for t, value, complete in shown:
            ax.scatter([t.number], [value], s=40, facecolors="C0" if complete else "none",
                       edgecolors="C0" if complete else "C3")
            label = " ".join(f"{k}={_short(t.params[k])}" for k in ("k", "lr_ratio")
                             if k in t.params)
            if label:
                ax.annotate(label.replace("lr_ratio", "r"), (t.number, value), fontsize=7,
                            xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("search trial (filled: complete; hollow red: pruned, last value)")
        ax.set_ylabel(f"{objective_key} ({better} is better)")
        ax.set_title(f"{gan}: search", fontsize=10)
        fig.tight_layout()
        figures["search"] = fig
    values = [f[objective_key] for f in finals if objective_key in f]
    if values:
        fig, ax = plt.subplots(figsize=(6, 3.0), dpi=100)
        ax.scatter(values, [0] * len(values), s=40, alpha=0.7, label="finalist seeds")
        mean = sum(values) / len(values)
        ax.axvline(mean, color="C1", label=f"mean {mean:.4g}")
        ci = bootstrap_ci(values)
        if ci is not None:
            ax.axvspan(ci[0], ci[1], color="C1", alpha=0.15, label="95% bootstrap CI")
        ax.set_yticks([])
        ax.set_xlabel(f"final {objective_key} ({better} is better)")
        ax.set_title(f"{gan}: {len(values)} finalist seed(s)", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        figures["finalists"] = fig
    return figures


def close_figures(figures: Mapping[str, Figure]) -> None:
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


def dataset_inputs(suite: Suite, train: ArrayDataset) -> list[tuple[MetaDataset, str]]:
    """(MLflow dataset, context) of the suite's training split and evaluation split: metadata
    only (name, digest of the arrays, shape, where they came from), for the UI's Dataset column."""
    import hashlib

    import numpy as np
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import Schema, TensorSpec

    ds = suite.dataset
    arr = train.data.cpu().numpy()
    digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:12]
    schema = Schema([TensorSpec(arr.dtype, (-1, *arr.shape[1:]), name="x")])
    subset = f" (first {ds.subset})" if ds.subset else ""
    # mlflow marks Dataset.profile abstract but Dataset is no ABC: MetaDataset instantiates fine
    made = [(MetaDataset(CodeDatasetSource({"source": str(train.source)}),  # type: ignore[abstract]
                         name=f"{ds.name}/{ds.train_split}{subset}", digest=digest, schema=schema),
             "training")]
    if ds.eval_split != ds.train_split:
        made.append((MetaDataset(CodeDatasetSource({"source": str(train.source),  # type: ignore[abstract]
                                                    "n_real": str(suite.metrics.n_real)}),
                                 name=f"{ds.name}/{ds.eval_split}",
                                 digest=hashlib.sha256(f"{ds.name}/{ds.eval_split}/"
                                                       f"{suite.metrics.n_real}".encode())
                                 .hexdigest()[:12], schema=schema), "evaluation"))
    return made


# ----------------------------------------------------------------------------- the runs view

def default_views(objective_key: str, final_keys: Sequence[str],
                  final_step: int | None = None) -> dict[str, Any]:
    """{VIEW_KEY: the view state the experiment link opens}: the same JSON the UI's own "Share"
    button stores (an experiment tag `mlflow.sharedViewState.<key>`; plain JSON is accepted).

    Runs table: the study summaries first (a parent's finalists' mean and CI of the objective,
    its best search value and setting, trial counts), then each trial's state, lr_ratio and k,
    then the other final metrics' headlines. Charts: a "Compare GANs" section (bar charts of
    the parents' summaries, one bar per visible run) and a "Samples" image grid at the last
    iteration (`final_step`, step slider over every evaluation); MLflow adds its own sections
    (eval/, final/, train/, ... by prefix) after them.
    """
    metric = lambda key: f"metrics.`{key}`"  # noqa: E731
    columns = [metric(f"final/{objective_key}"), metric(f"final_ci/{objective_key}_low"),
               metric(f"final_ci/{objective_key}_high"), metric(f"eval/{objective_key}"),
               metric("search/best_lr_ratio"), metric("search/best_k"),
               metric("search/complete"), metric("search/pruned"), metric("search/failed"),
               "tags.`state`", "params.`lr_ratio`", "params.`k`", "params.`lr_g`"]
    columns += [metric(f"final/{key}") for key in final_keys if key != objective_key]
    widths = {c: 150 if "_ci/" in c or "search/" in c else 120 for c in columns}
    sections: list[dict[str, Any]] = [
        {"uuid": "gan-bench-compare", "name": "Compare GANs (parent runs: study summaries)"},
        {"uuid": "gan-bench-samples", "name": "Samples"}]
    sections = [{**sec, "display": True, "isReordered": True, "deleted": False,
                 "isGenerated": False} for sec in sections]
    bars = [f"final/{objective_key}", f"eval/{objective_key}", "search/best_lr_ratio",
            "search/best_k", *[f"final/{k}" for k in final_keys if k != objective_key]]
    charts: list[dict[str, Any]] = [
        {"uuid": f"gan-bench-bar-{i}", "type": "BAR", "metricKey": key, "displayName": key,
         "metricSectionId": "gan-bench-compare", "isGenerated": False, "deleted": False,
         "runsCountToCompare": 50} for i, key in enumerate(bars)]
    charts.append({"uuid": "gan-bench-samples-grid", "type": "IMAGE", "imageKeys": ["samples"],
                   "step": int(final_step or 0), "showRunParams": False,
                   "metricSectionId": "gan-bench-samples", "isGenerated": False,
                   "deleted": False, "runsCountToCompare": 50})
    return {VIEW_KEY: {"selectedColumns": columns, "columnOrder": columns, "columnWidths": widths,
                       "orderByKey": "attributes.start_time", "orderByAsc": True,
                       "runsHiddenMode": "SHOW_ALL", "hideEmptyCharts": True,
                       "useGroupedValuesInCharts": True, "compareRunCharts": charts,
                       "isAccordionReordered": True,
                       "compareRunSections": sections}}


def view_keys(suite: Suite) -> tuple[str, list[str]]:
    """(objective record key, [objective key, each final metric's headline]) of a suite."""
    from gan_bench.metrics.evaluator import Evaluator

    m, ds = suite.metrics, suite.dataset
    ev = Evaluator(ds.name, real_split=ds.eval_split, metrics=[m.objective, *m.final],
                   n_real=m.n_real, dataset_options=dict(ds.options))
    objective = ev.objective_key(m.objective, m.objective_record)
    keys = [objective]
    for metric in m.final:
        if (key := ev.primary(metric)) not in keys:
            keys.append(key)
    return objective, keys


def describe(tracker: Tracker, suite: Suite, command: str) -> None:
    """The experiment's kind (Model training), note and runs view, from the suite."""
    objective, keys = view_keys(suite)
    tracker.describe_experiment(suite_note(suite, command),
                                default_views(objective, keys, suite.budget.iterations))
