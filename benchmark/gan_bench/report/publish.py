"""The report in MLflow: the experiment's `summary` run holds the leaderboard as MLflow's table,
leaderboard.md and the report's figures (`gan-bench run` publishes it after each report)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from gan_bench.report.data import GanRecord, ReportData

__all__ = ["SUMMARY_STAGE", "leaderboard_table", "publish_summary"]

SUMMARY_STAGE = "summary"


def leaderboard_table(data: ReportData) -> dict[str, list[Any]]:
    """One row per GAN of a ReportData, in the report's order (protocol table, then rank): first
    what ranks it (gan, the finalists' mean objective, its 95% CI, seeds and the finalists'
    means of the coverage records they have, e.g. classes_covered and confident_share), then
    arch / loss / penalty, best search value and setting, trial counts (columns of MLflow's
    table artifact)."""
    from gan_bench.report.render import coverage_keys, protocol_groups, rank_rows  # deferred: scipy
    from gan_bench.stats import bootstrap_ci

    cover = coverage_keys([f for g in data.gans for f in g.finalists], data.objective)
    cols: dict[str, list[Any]] = {k: [] for k in (
        "gan", f"final {data.objective} mean", "ci_low", "ci_high", "seeds", *cover,
        "arch / loss / penalty", "best search", "lr_ratio", "k", "lr_g", "complete", "pruned",
        "failed")}
    order: list[GanRecord] = []
    for rows in protocol_groups(data.gans):
        order += [r.gan for r in rank_rows(rows, data.higher_is_better) if r.gan not in order]
    for g in order:
        values = [f.objective for f in g.finalists]
        ci = bootstrap_ci(values) if values else None
        states = [t.state for t in g.trials]
        best = next((t.value for t in g.trials if t.number == g.best_trial), None)
        means = []
        for key in cover:
            vals = [f.metrics[key] for f in g.finalists if key in f.metrics]
            means.append(sum(vals) / len(vals) if vals else None)
        row = [g.name, sum(values) / len(values) if values else None,
               ci[0] if ci else None, ci[1] if ci else None, len(values), *means, g.combination,
               best, g.best_params.get("lr_ratio"), g.best_params.get("k"),
               g.best_params.get("lr_g"), states.count("complete"), states.count("pruned"),
               states.count("failed")]
        for key, value in zip(cols, row, strict=True):
            cols[key].append(value)
    return cols


def publish_summary(tracking_uri: str, data: ReportData, report: Path) -> str:
    """The experiment's `summary` run (top level, tag stage=summary), updated after each
    `gan-bench run`: the leaderboard as MLflow's table (leaderboard.json), leaderboard.md and
    the report's figures, each replacing the previous one. One run per experiment, found by
    its key like a study's parent (tracking.Tracker.parent_run), never deleted: two workers
    that finish together update the same run (the last one's files stay), where deleting the
    other's run made its publishing fail ("Current state is deleted"). Returns its run id."""
    import pandas as pd

    from gan_bench.tracking import RunHandle, Tracker

    tracker = Tracker(tracking_uri, data.suite)
    key = f"{data.suite}/{SUMMARY_STAGE}"
    run_id = tracker.parent_run(key, "summary", tags={"stage": SUMMARY_STAGE})
    for old in tracker.find_runs(f"tags.stage = '{SUMMARY_STAGE}'"):  # made before the key
        if old["run_id"] != run_id and old["tags"].get("gan_bench.key") is None \
                and old["status"] != "RUNNING":
            with contextlib.suppress(Exception):  # another worker deleted it first
                tracker.delete_run(old["run_id"])
    run = RunHandle(tracker, run_id)
    status = "FAILED"
    try:
        run.set_note(f"Leaderboard of suite **{data.suite}** ({data.date}): the table "
                     "`leaderboard.json` (Artifacts tab), `leaderboard.md` and its figures, as "
                     "`gan-bench report` wrote them from this experiment's runs.")
        run.log_table(pd.DataFrame(leaderboard_table(data)), "leaderboard.json")
        run.log_artifact(report)
        figures = report.parent / "figures"
        if figures.is_dir():
            run.log_artifact(figures, "figures")
        status = "FINISHED"
    finally:
        tracker.finish_parent(run_id, status)
    return run_id
