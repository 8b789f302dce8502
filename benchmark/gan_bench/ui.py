"""What a suite looks like in the MLflow UI, and `gan-bench ui`.

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

import contextlib
import errno
import getpass
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

from gan_bench.stores import default_tracking_uri

__all__ = ["train_metrics", "eval_metrics", "final_metrics", "trial_name", "final_name",
           "suite_note", "gan_note", "summary_metrics", "study_figures", "close_figures",
           "dataset_inputs", "user",
           "VIEW_KEY", "default_views", "serve", "experiment_url", "publish_summary",
           "leaderboard_table", "SUMMARY_STAGE"]

VIEW_KEY = "gan-bench"  # #/experiments/<id>?viewStateShareKey=gan-bench
_OPT = ("grad_norm_d", "grad_norm_g")  # optimiser-side diagnostics
_CONSTANT = ("lr_g", "lr_d")  # constant over a run (no schedules): params, not curves


# ----------------------------------------------------------------------------- metric names

def train_metrics(diagnostics: Mapping[str, float]) -> dict[str, float]:
    """The trainer's step diagnostics under `train/` and `opt/`; learning rates are params."""
    return {(f"opt/{k}" if k in _OPT else f"train/{k}"): v for k, v in diagnostics.items()
            if k not in _CONSTANT}


def eval_metrics(records: Mapping[str, Any]) -> dict[str, float]:
    """Records of one evaluation during training (objective + curves) under `eval/`."""
    return {f"eval/{k}": v for rec in records.values() for k, v in rec.flat().items()}


def final_metrics(records: Mapping[str, Any]) -> dict[str, float]:
    """A finalist's records (metrics.final on n_fake samples) under `final/`."""
    return {f"final/{k}": v for rec in records.values() for k, v in rec.flat().items()}


# ----------------------------------------------------------------------------- run names

def _short(value: Any) -> str:
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

def _range_text(param: Any) -> str:
    from gan_bench.config import Range

    if isinstance(param, Range):
        return f"{param.low:g}..{param.high:g}" + (" (log)" if param.log else "")
    return "{" + ", ".join(f"{v:g}" for v in param.choices) + "}"


def gan_note(suite: Any, gan: Any) -> str:
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
             f"- children: search trials `t<n> k=.. r=..` (r = lr_d / lr_g), finalists "
             f"`final s<seed> <- t<n>`; this run's metrics summarise them (see the experiment's "
             "description)"]
    return "\n".join(lines)


def suite_note(suite: Any, command: str) -> str:
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

def summary_metrics(trials: Sequence[Any], finals: Sequence[Mapping[str, float]],
                    objective_key: str, higher: bool,
                    records: Sequence[str] | None = None) -> dict[str, float]:
    """A GAN's parent-run metrics from its Optuna trials (frozen trials) and its finalists'
    final records ({record key: value} per finalist; `records`: the keys to summarise, e.g.
    not a record's extras such as modes_captured_n_modes; default all). CIs go under
    `final_ci/` (their own chart section)."""
    from gan_bench.report.stats import bootstrap_ci

    out: dict[str, float] = {}
    states = [t.state.name for t in trials]
    out["search/complete"] = states.count("COMPLETE")
    out["search/pruned"] = states.count("PRUNED")
    out["search/failed"] = states.count("FAIL")
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None
            and math.isfinite(t.value)]
    if done:
        best = (max if higher else min)(done, key=lambda t: t.value)
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


def study_figures(gan: str, trials: Sequence[Any], finals: Sequence[Mapping[str, float]],
                  objective_key: str, higher: bool) -> dict[str, Any]:
    """Matplotlib figures for a GAN's parent run: `search` (each trial's objective, pruned
    trials hollow at their last value, labelled k / lr_ratio) and `finalists` (each seed's
    final objective, their mean and 95% bootstrap CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_bench.report.stats import bootstrap_ci

    better = "higher" if higher else "lower"
    figures: dict[str, Any] = {}
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


def close_figures(figures: Mapping[str, Any]) -> None:
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


def dataset_inputs(suite: Any, train: Any) -> list[tuple[Any, str]]:
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
    made = [(MetaDataset(CodeDatasetSource({"source": str(train.source)}),
                         name=f"{ds.name}/{ds.train_split}{subset}", digest=digest, schema=schema),
             "training")]
    if ds.eval_split != ds.train_split:
        made.append((MetaDataset(CodeDatasetSource({"source": str(train.source),
                                                    "n_real": str(suite.metrics.n_real)}),
                                 name=f"{ds.name}/{ds.eval_split}",
                                 digest=hashlib.sha256(f"{ds.name}/{ds.eval_split}/"
                                                       f"{suite.metrics.n_real}".encode())
                                 .hexdigest()[:12], schema=schema), "evaluation"))
    return made


# ----------------------------------------------------------------------------- summary run

SUMMARY_STAGE = "summary"


def leaderboard_table(data: Any) -> dict[str, list[Any]]:
    """One row per GAN of a ReportData: the finalists' mean objective and 95% CI, seeds, best
    search value and setting, trial counts (columns of MLflow's table artifact)."""
    from gan_bench.report.stats import bootstrap_ci

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


def publish_summary(tracking_uri: str, data: Any, report: Path) -> str:
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
                tracker.client.delete_run(old["run_id"])
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
    sections = [{"uuid": "gan-bench-compare", "name": "Compare GANs (parent runs: study summaries)"},
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


def view_keys(suite: Any) -> tuple[str, list[str]]:
    """(objective record key, [objective key, each final metric's headline]) of a suite."""
    from gan_bench.metrics.evaluate import Evaluator

    m, ds = suite.metrics, suite.dataset
    ev = Evaluator(ds.name, real_split=ds.eval_split, metrics=[m.objective, *m.final],
                   n_real=m.n_real, dataset_options=dict(ds.options))
    objective = ev.objective_key(m.objective, m.objective_record)
    keys = [objective]
    for metric in m.final:
        if (key := ev.primary(metric)) not in keys:
            keys.append(key)
    return objective, keys


def describe(tracker: Any, suite: Any, command: str) -> None:
    """The experiment's kind (Model training), note and runs view, from the suite."""
    objective, keys = view_keys(suite)
    tracker.describe_experiment(suite_note(suite, command),
                                default_views(objective, keys, suite.budget.iterations))


# ----------------------------------------------------------------------------- gan-bench ui

def experiment_url(base: str, experiment_id: str, views: bool = True) -> str:
    """The experiment's runs table in Model training mode (MLflow 3 opens experiments in its
    GenAI mode otherwise), with gan-bench's view when `views`."""
    query = "workflowType=machine_learning" + (f"&viewStateShareKey={VIEW_KEY}" if views else "")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listen_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (unknown host, port in use), or None:
    asked before `mlflow server` starts, whose own failure is eight lines of log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"--host {host}: not a host name or address of this machine ({exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"--port {port}: {host}:{port} is in use (stop what listens there, or "
                        "pass --port 0 for a free port)")
            return f"--host {host}: cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    from gan_bench.errors import GanBenchError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GanBenchError(f"mlflow server exited with code {proc.returncode} before it "
                                f"answered: {_last_line(log)} (its log: {log})")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise GanBenchError(f"mlflow server did not answer {base}/health within {timeout:.0f} s "
                        f"(its log: {log})")


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def tour(url: str, uri: str, suite: Any, out_dir: Path) -> list[Path]:
    """Screenshots of the suite in the UI (ui_tour.screenshot_tour) into `out_dir`: the first
    GAN expanded, its first finished search trial's metrics, its parent's overview."""
    from gan_bench.tracking import Tracker
    from gan_bench.ui_tour import screenshot_tour

    reader = Tracker(uri, suite.name, read_only=True)
    parents = reader.find_runs("tags.stage = 'study'")
    gan = suite.resolved_gans()[0].name
    parent = next(r for r in parents if r["tags"].get("gan") == gan)
    trials = reader.find_runs(f"tags.stage = 'search' and tags.gan = '{gan}' and "
                              "attributes.status = 'FINISHED'")
    return screenshot_tour(url, Path(out_dir), gan, {"parent": parent["run_id"],
                                                      "trial": trials[-1]["run_id"]})


def _describe_if_missing(uri: str, suite: Any) -> None:
    """A store made before gan-bench described its experiment (or by another tool) opens in
    Model training mode with the summary view too: its experiment tags are set once."""
    from gan_bench.tracking import KIND_TAG, Tracker

    reader = Tracker(uri, suite.name, read_only=True)
    tags = reader.client.get_experiment(reader.experiment_id).tags
    if KIND_TAG in tags:
        return
    runs = reader.find_runs("tags.stage = 'study'", max_results=1)
    command = (runs[0]["tags"].get("mlflow.source.name") or runs[0]["tags"].get("command")
               if runs else None) or "gan-bench run"
    describe(Tracker(uri, suite.name), suite, command)


def server_command(out: Path, host: str, port: int) -> list[str]:
    """`mlflow server` on a run folder's store, serving `mlflow-artifacts:` URIs from its
    `mlartifacts/` folder (wherever the folder is now)."""
    from gan_bench.tracking import ARTIFACTS_FOLDER

    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [mlflow_bin, "server", "--backend-store-uri", default_tracking_uri(out),
            "--artifacts-destination", str((out / ARTIFACTS_FOLDER).resolve()),
            "--host", host, "--port", str(port), "--workers", "1"]


def serve(source: str | Path, *, host: str = "127.0.0.1", port: int = 5000,
          timeout: float = 120.0, announce: Any = print, then: Any = None) -> int:
    """Start the MLflow UI on a suite's store, print the experiment's URL, wait for Ctrl-C
    (SIGTERM and SIGHUP too: gan-bench's main turns them into KeyboardInterrupt, and the
    server's process group is stopped on the way out, never left serving the port).

    Job execution off (MLflow 3's job workers take ~2.4 GB and a benchmark store has no jobs);
    a remote tracking URI is not served here: its URL is printed. `then(url, uri)`: called
    once the server answers, after which the server stops (screenshots).
    """
    from gan_bench.errors import UserInputError
    from gan_bench.report.collect import resolve_source
    from gan_bench.tracking import Tracker

    suite, out = resolve_source(source)
    if suite.tracking_uri and not suite.tracking_uri.startswith("sqlite:"):
        if suite.tracking_uri.startswith(("http://", "https://")):
            exp = Tracker(suite.tracking_uri, suite.name, read_only=True).experiment_id
            announce(f"MLflow UI: {experiment_url(suite.tracking_uri, exp)} (already served)")
            return 0
        raise UserInputError(f"{suite.tracking_uri}: gan-bench ui serves a local sqlite store "
                             "only; start `mlflow server` on this store yourself")
    uri = default_tracking_uri(out)
    exp = Tracker(uri, suite.name, read_only=True).experiment_id
    _describe_if_missing(uri, suite)
    problem = _listen_problem(host, port)
    if problem is not None:
        raise UserInputError(problem)
    port = port or _free_port(host)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = Path(tempfile.mkstemp(prefix="gan-bench-mlflow-server-", suffix=".log")[1])
    with open(log, "wb") as sink:  # the server's own log: read for one line when it fails
        proc = subprocess.Popen(server_command(out, host, port), env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{host}:{port}"
    failed = True
    try:
        _wait_healthy(base, proc, timeout, log)
        announce(f"MLflow UI: {experiment_url(base, exp)}")
        failed = False
        if then is not None:
            then(experiment_url(base, exp), uri)
            return 0
        announce("(Ctrl-C stops the server)")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_server(proc)
        if not failed:
            log.unlink(missing_ok=True)


def _stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (its workers too), SIGKILL after 10 s; the
    signals gan-bench handles are held meanwhile, so a second Ctrl-C cannot cut this short."""
    held = set(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:  # the group is gone already
                break
            try:
                proc.wait(timeout=10)
                _wait_group_gone(proc.pid, 10)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Until no process of group `pgid` is left (a worker may outlive the server briefly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired("mlflow server", timeout)
