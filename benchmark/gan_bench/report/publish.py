"""The report in MLflow: the experiment's `summary` run holds the leaderboard as MLflow's table,
leaderboard.md and the report's figures (`gan-bench run` publishes it after each report)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from gan_bench.report.data import ReportData

__all__ = ["SUMMARY_STAGE", "leaderboard_table", "publish_summary"]

SUMMARY_STAGE = "summary"


def leaderboard_table(data: ReportData) -> dict[str, list[Any]]:
    """One row per GAN of a ReportData: the finalists' mean objective and 95% CI, seeds, best
    search value and setting, trial counts (columns of MLflow's table artifact)."""
    from gan_bench.stats import bootstrap_ci  # deferred: scipy

    cols: dict[str, list[Any]] = {k: [] for k in (
        "gan", "arch / loss / penalty", f"final {data.objective} mean", "ci_low", "ci_high",
        "seeds", "best search", "lr_ratio", "k", "lr_g", "complete", "pruned", "failed")}
    for g in data.gans:
        values = [f.objective for f in g.finalists]
        ci = bootstrap_ci(values) if values else None
        states = [t.state for t in g.trials]
        best = next((t.value for t in g.trials if t.number == g.best_trial), None)
        row = [g.name, g.combination, sum(values) / len(values) if values else None,
               ci[0] if ci else None, ci[1] if ci else None, len(values), best,
               g.best_params.get("lr_ratio"), g.best_params.get("k"), g.best_params.get("lr_g"),
               states.count("complete"), states.count("pruned"), states.count("failed")]
        for key, value in zip(cols, row):
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
