"""Read a suite's tracked runs into a `ReportData`: the Optuna storage through study.py, MLflow
through tracking.py, artifacts from the store. Reading never trains anything; the only model
that runs is a finalist's saved generator, to draw the samples of the mode figures.

`source` is a suite YAML (its resolved output dir is read) or an output dir holding
suite.json next to optuna.db / mlflow.db (the runner writes all three).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse
from urllib.request import url2pathname

from gan_bench import stores
from gan_bench.errors import UserInputError
from gan_bench.keys import KEY_TAG, finalist_key_problem
from gan_bench.report.data import TRIAL_STATES, FinalistRecord, GanRecord, ReportData, TrialRecord
from gan_bench.stores import redact, sqlite_path

if TYPE_CHECKING:
    from gan_bench.config import ResolvedGan, Suite
    from gan_bench.tracking import Tracker

__all__ = ["collect", "resolve_source", "REFERENCES_PATH", "load_references"]

# Final records whose curve over training a report tabulates (report/mixtures.py)
CURVE_KEYS = ("modes_captured", "high_quality_share", "kl_to_uniform")
SNAPSHOT_TRIES = 20  # copies of a store whose write-ahead log a running writer keeps changing
REFERENCES_PATH = Path(__file__).resolve().parent.parent / "assets" / "references.json"


def resolve_source(source: str | Path) -> tuple[Suite, Path]:
    """(Suite, output dir) of a suite YAML or an output dir; UserInputError otherwise."""
    from gan_bench.config import load_suite, parse_suite

    path = Path(source).expanduser()
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        suite = load_suite(path)
        out = suite.resolved_output_dir()
        if not _has_stores(suite, out):
            raise UserInputError(f"{path}: no runs in {out} yet (run `gan-bench run {path}` first)")
        return suite, out
    if path.is_dir() and (path / "suite.json").is_file():
        suite = parse_suite(json.loads((path / "suite.json").read_text()), str(path / "suite.json"))
        if _has_stores(suite, path):
            return suite, path.absolute()
    raise UserInputError(f"{source}: neither a suite YAML nor a run output dir (a folder with "
                         "suite.json, optuna.db and mlflow.db, e.g. runs/smoke)")


def _has_stores(suite: Suite, out: Path) -> bool:
    """Both stores exist: a local db in `out`, or a remote URL named by the suite (never create
    an empty store by reading). A zero-byte db is refused: opening it would write a schema."""
    for name, url, label in ((stores.OPTUNA_DB, suite.storage, "Optuna storage"),
                             (stores.MLFLOW_DB, suite.tracking_uri, "MLflow tracking store")):
        path = out / name if url is None else sqlite_path(url)
        if path is not None and path.is_file() and path.stat().st_size == 0:
            raise UserInputError(f"{path}: the {label} is an empty (0-byte) file, so the runs "
                                 "it held are lost; restore it from a copy (reading it would "
                                 "write a fresh schema, and a report never writes to a store)")
    optuna_ok = bool(suite.storage) or (out / stores.OPTUNA_DB).is_file()
    return optuna_ok and (bool(suite.tracking_uri) or (out / stores.MLFLOW_DB).is_file())


def snapshot(url: str, folder: Path) -> str:
    """The URL of a copy in `folder` of the local sqlite store at `url` (other URLs unchanged).

    The report reads the copy, never the store: opening a store, even to read, lets sqlite write
    beside it (its -shm file) and fold the write-ahead log into it when the last connection
    closes, and fails on a read-only mount. The copy is the database file and its write-ahead
    log (-wal), which holds what a writer committed since its last checkpoint; the log is read
    before and after the database, and the copy is taken again when it changed meanwhile (a
    writer that restarted its log), so a report taken during a run is consistent too. A file
    that is not a database is copied as it is: opening the copy then fails with sqlite's own
    error, as opening the store would."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return url
    folder.mkdir(parents=True, exist_ok=True)
    dst, wal = folder / path.name, Path(f"{path}-wal")
    for _ in range(SNAPSHOT_TRIES):
        before = wal.read_bytes() if wal.is_file() else None
        shutil.copyfile(path, dst)
        after = wal.read_bytes() if wal.is_file() else None
        if before == after:
            break
    if after is not None:
        Path(f"{dst}-wal").write_bytes(after)
    return "sqlite:///" + str(dst)


def load_references(path: Path = REFERENCES_PATH) -> tuple[dict[str, Any], ...] | None:
    """The measured reference rows (real vs real, noise), or None while not measured."""
    if not path.is_file():
        return None
    return tuple(json.loads(path.read_text()))


def _number(text: Any) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except (TypeError, ValueError):
            pass
    return text


def _metric(run: dict[str, Any], key: str, old: str | None = None) -> float | None:
    """A run's metric under its name (e.g. "eval/fid_mnist"), else under the name stores made
    before the UI's metric groups used (e.g. "objective")."""
    value = run["metrics"].get(key)
    return run["metrics"].get(old) if value is None and old is not None else value


def _history_key(run: dict[str, Any], key: str, old: str) -> str:
    return key if key in run["metrics"] else old


class _Artifacts:
    """Artifacts of a run: local files when the store is local (also after the output dir was
    moved: `mlflow-artifacts:` URIs are resolved under the output dir's `mlartifacts/`), else
    downloaded through the MLflow client into a temporary folder."""

    def __init__(self, tracker: Tracker, out: Path, tmp: Path) -> None:
        self.tracker, self.out, self.tmp = tracker, out, tmp

    def _local(self, run: dict[str, Any]) -> Path | None:
        from gan_bench.tracking import ARTIFACTS_FOLDER, PROXY_SCHEME

        uri = run.get("artifact_uri") or ""
        if urlparse(uri).scheme == PROXY_SCHEME and self.tracker.uri.startswith("sqlite:"):
            path = self.out / ARTIFACTS_FOLDER / urlparse(uri).path.lstrip("/")
            return path if path.exists() else None
        if urlparse(uri).scheme != "file":
            return None
        path = Path(url2pathname(urlparse(uri).path))
        if "mlartifacts" in path.parts:  # the output dir's own copy wins (a copied or moved
            # folder must report its own files, not those of the folder it was copied from)
            own = self.out / Path(*path.parts[path.parts.index("mlartifacts"):])
            if own.exists():
                return own
        return path if path.exists() else None

    def expected(self, run: dict[str, Any], rel: str) -> str:
        """Where artifact `rel` of `run` should be, for messages: a local path when the store
        keeps its artifacts here, else the artifact URI."""
        from gan_bench.tracking import ARTIFACTS_FOLDER, PROXY_SCHEME

        uri = run.get("artifact_uri") or ""
        if urlparse(uri).scheme == PROXY_SCHEME and self.tracker.uri.startswith("sqlite:"):
            return str(self.out / ARTIFACTS_FOLDER / urlparse(uri).path.lstrip("/") / rel)
        if urlparse(uri).scheme == "file":
            return str(Path(url2pathname(urlparse(uri).path)) / rel)
        return f"{uri.rstrip('/')}/{rel}"

    def _kept_here(self, run: dict[str, Any]) -> bool:
        """The run's artifacts are files of this machine (a local store's `mlartifacts/` or a
        file: URI): a missing one is missing, there is nothing to download."""
        from gan_bench.tracking import PROXY_SCHEME

        scheme = urlparse(run.get("artifact_uri") or "").scheme
        return scheme == "file" or (scheme == PROXY_SCHEME and self.tracker.uri.startswith("sqlite:"))

    def path(self, run: dict[str, Any], rel: str) -> Path | None:
        root = self._local(run)
        if root is not None:
            return root / rel if (root / rel).exists() else None
        if self._kept_here(run):
            return None
        try:
            dst = self.tmp / run["run_id"]
            dst.mkdir(exist_ok=True)
            return self.tracker.download_artifact(run["run_id"], rel, dst)
        except Exception:  # noqa: BLE001 - a missing artifact only drops a figure
            return None

    def last(self, run: dict[str, Any], key: str) -> Path | None:
        """The image logged last (largest step) under `key`: MLflow's stepped images
        (images/<key>+step+<n>+...png), or the PNGs of folder `key` in older stores."""
        root = self._local(run)
        if root is not None:
            names = [p.relative_to(root).as_posix() for p in (root / "images").glob(f"{key}+step+*.png")]
            names = names or [p.relative_to(root).as_posix() for p in (root / key).glob("*.png")]
        else:
            names = [p for folder in ("images", key)
                     for p in self.tracker.artifact_paths(run["run_id"], folder)
                     if p.endswith(".png")]
            stepped = [n for n in names if Path(n).name.startswith(f"{key}+step+")]
            names = stepped or [n for n in names if n.startswith(f"{key}/")]
        if not names:
            return None
        return self.path(run, max(names, key=_image_order))


def _image_order(name: str) -> tuple[int, str]:
    """Sort key of an image artifact: its step ("samples+step+500+timestamp+..."), then name."""
    parts = Path(name).name.split("+")
    step = int(parts[2]) if len(parts) > 2 and parts[1] == "step" and parts[2].isdigit() else -1
    return step, name


def _trial(rec: dict[str, Any]) -> TrialRecord:
    attrs = rec["user_attrs"]
    seconds = attrs.get("seconds", rec.get("duration_s"))
    return TrialRecord(rec["number"], rec["state"], rec["value"] if rec["state"] == "complete" else None,
                       dict(rec["params"]), None if seconds is None else float(seconds),
                       attrs.get("failure_kind"), attrs.get("device"))


def _verified(run: dict[str, Any], path: Path | None, what: str, where: str = "") -> Path | None:
    """`path` when its sha256 is the one recorded in the run (runs made before sha256 tags:
    unchecked); a damaged artifact is one clear UserInputError, never read, and so is a
    missing one whose sha256 the run recorded (it was logged, then lost). `where`: where the
    artifact should be, for the message."""
    from gan_bench.cache import sha256_file
    from gan_bench.plan import SHA_TAGS

    want = run["tags"].get(SHA_TAGS[what])
    if path is None and want is not None:
        raise UserInputError(
            f"{where or what}: {what} of finalist run {run['run_id']} ({run['name']}) is missing "
            f"(MLflow recorded it with sha256 {want[:12]}); restore the run's artifacts "
            "(mlartifacts/) from a copy or delete the run, then report again")
    if path is None or want is None:
        return path
    got = sha256_file(path)
    if got != want:
        size = path.stat().st_size
        raise UserInputError(
            f"{path}: {what} of finalist run {run['run_id']} ({run['name']}) is damaged: sha256 "
            f"{got[:12]} ({size} bytes), MLflow recorded {want[:12]}; restore the artifact or "
            "delete the run, then report again")
    return path


def _finalist(run: dict[str, Any], arts: _Artifacts, objective: str,
              tracker: Tracker | None = None) -> FinalistRecord:
    # every finalist's generator is checked, not only the one the figures load: a damaged
    # artifact in the store is refused wherever it is
    ckpt = f"checkpoint/{run['run_id']}_G.pt"
    _verified(run, arts.path(run, ckpt), "checkpoint", arts.expected(run, ckpt))
    path = _verified(run, arts.path(run, "metrics.json"), "metrics.json",
                     arts.expected(run, "metrics.json"))
    if path is not None:
        try:
            records = json.loads(path.read_text())
            if not isinstance(records, dict):
                raise ValueError("not a JSON object")
            for rec in records.values():
                float(rec["value"]), rec["protocol"].items()
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{path}: metrics.json of finalist run {run['run_id']} "
                                 f"({run['name']}) is unreadable ({type(exc).__name__}: "
                                 f"{str(exc)[:120]}); restore it or delete the run") from None
        metrics = {k: float(r["value"]) for k, r in records.items()}
        protocols = {k: {f: v for f, v in r["protocol"].items() if f != "versions"}
                     for k, r in records.items()}
    else:  # a run logged without the artifact: the tags hold the protocol, flattened
        metrics = {k[6:]: v for k, v in run["metrics"].items() if k.startswith("final/")}
        protocols = _protocols_from_tags(run["tags"])
        metrics = {k: v for k, v in metrics.items() if k in protocols}
    value = run["metrics"].get("final/objective", metrics.get(objective))
    if value is None:  # neither the artifact nor the run's metrics hold the objective
        raise UserInputError(
            f"{arts.expected(run, 'metrics.json')}: finalist run {run['run_id']} ({run['name']}) "
            f"records no final {objective} (no metrics.json, no final/ metric); restore the "
            "run's artifacts from a copy or delete the run, then report again")
    history = {}
    if tracker is not None:  # records also logged as curves during training (e.g. modes_captured)
        for key in sorted(k for k in metrics if k in CURVE_KEYS):
            name = _history_key(run, f"eval/{key}", key)
            if name in run["metrics"]:
                history[key] = tuple(tracker.metric_history(run["run_id"], name))
    seed = run["params"].get("seed", run["tags"].get("seed", 0))
    return FinalistRecord(int(seed), int(run["tags"].get("source_trial", -1)),
                          float(value), metrics, protocols,
                          _metric(run, "perf/train_seconds", "train_seconds"), history)


def _protocols_from_tags(tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, text in tags.items():
        if key.startswith("protocol."):
            record, _, field = key[len("protocol."):].rpartition(".")
            out.setdefault(record, {})[field] = json.loads(text) if text[:1] in "{[" else _number(text)
    return out


def _best(trials: Sequence[TrialRecord], higher: bool) -> TrialRecord | None:
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    # done holds only trials with a value
    return (max if higher else min)(done, key=lambda t: cast(float, t.value)) if done else None


def _search_run(runs: Sequence[dict[str, Any]], number: int) -> dict[str, Any] | None:
    found = [r for r in runs if r["tags"].get("stage") == "search"
             and r["tags"].get("trial", r["tags"].get("optuna_trial")) == str(number)
             and r["status"] == "FINISHED"]
    return found[-1] if found else None


class _Context:
    """What every GAN of a suite is read with."""

    def __init__(self, suite: Suite, out: Path, tracker: Tracker, storage: str, runs: list[dict[str, Any]],
                 objective: str, higher: bool, tmp: Path) -> None:
        self.suite, self.out, self.tracker, self.storage = suite, out, tracker, storage
        self.runs, self.objective, self.higher = runs, objective, higher
        self.arts = _Artifacts(tracker, out, tmp)
        self.warnings: list[str] = []
        self.storage_label, self.tracking_label = storage, tracker.uri  # the stores' own URLs


def _unique_finals(ctx: _Context, gan: str, finals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per finalist key (trial, seed), the oldest; a duplicate is said in a warning,
    never counted (two runs of one seed would count one setting twice in mean, CI and test)."""
    seen: dict[str, dict[str, Any]] = {}
    dropped = []
    for run in sorted(finals, key=lambda r: r["start_time"] or 0):
        key = run["tags"].get(KEY_TAG) or run["run_id"]
        if key in seen:
            dropped.append(run)
        else:
            seen[key] = run
    if dropped:
        keys = sorted({r["tags"][KEY_TAG] for r in dropped})
        ctx.warnings.append(
            f"{gan}: the store holds {len(dropped)} duplicate FINISHED finalist run(s) of "
            f"{', '.join(f'`{k}`' for k in keys)} (two workers trained one finalist); only the "
            f"oldest run of each is counted (ignored: {', '.join(r['run_id'] for r in dropped)})")
    return list(seen.values())


def _cross_check(ctx: _Context, name: str, records: list[dict[str, Any]],
                 runs: list[dict[str, Any]]) -> None:
    """Refuse when Optuna and MLflow disagree on a value both hold: one store is damaged, and
    the report would print numbers that no trial produced."""
    search = [r for r in runs if r["tags"].get("stage") == "search"]
    if search and not records:
        raise UserInputError(
            f"{redact(ctx.storage_label)}: the Optuna storage holds no trials of study {name!r}, but MLflow "
            f"holds {len(search)} search run(s) of it: the Optuna store was emptied "
            "or replaced; restore it (or report from a fresh output_dir)")
    if not search and any(r["state"] in ("complete", "pruned") for r in records):
        raise UserInputError(
            f"{ctx.tracking_label}: MLflow holds no runs of study {name!r}, but the Optuna storage "
            f"holds {len(records)} trial(s) of it: the MLflow store was emptied or replaced; "
            "restore it (or report from a fresh output_dir)")
    for rec in records:
        if rec["state"] != "complete":
            continue
        run = _search_run(runs, rec["number"])
        if run is None:
            continue
        pairs = [(k, v, run["params"].get(k)) for k, v in rec["params"].items()]
        pairs.append(("objective", rec["value"], _metric(run, f"eval/{ctx.objective}", "objective")))
        for key, optuna_value, mlflow_value in pairs:
            if mlflow_value is None or _close(optuna_value, mlflow_value):
                continue
            raise UserInputError(
                f"{name} trial {rec['number']}: {key} is {optuna_value!r} in the Optuna storage "
                f"but {mlflow_value!r} in MLflow run {run['run_id']}; one store is damaged, so "
                "no report is written (restore the damaged store from a copy)")


def _close(a: Any, b: Any, rel: float = 1e-6) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)
    return x == y or abs(x - y) <= rel * max(abs(x), abs(y))


def _gan(ctx: _Context, gan: ResolvedGan) -> GanRecord:
    from gan_bench.study import param_importances, study_name, study_records

    name = study_name(ctx.suite.name, gan.name)
    records = study_records(ctx.storage, name)
    runs = [r for r in ctx.runs if r["tags"].get("gan") == gan.name]
    _cross_check(ctx, name, records, runs)
    trials = tuple(_trial(r) for r in records if r["state"] in TRIAL_STATES)
    finals = [r for r in runs if r["tags"].get("stage") == "final" and r["status"] == "FINISHED"]
    for run in finals:  # damage first: a key that contradicts its run is not a duplicate
        problem = finalist_key_problem(run, name)
        if problem is not None:
            raise UserInputError(f"{problem}; no report is written")
    finals = _unique_finals(ctx, gan.name, finals)
    ranked = sorted((r for r in records if r["state"] == "complete" and r["value"] is not None),
                    key=lambda r: -r["value"] if ctx.higher else r["value"])
    order = {r["number"]: i for i, r in enumerate(ranked)}  # the finalists' setting rank

    def rank(run: dict[str, Any]) -> tuple[int, int]:
        seed = run["params"].get("seed", run["tags"].get("seed", 0))
        if "finalist_rank" in run["tags"]:
            return int(run["tags"]["finalist_rank"]), int(seed)
        return order.get(int(run["tags"].get("source_trial", -1)), 0), int(seed)

    finals.sort(key=rank)
    finalists = tuple(_finalist(r, ctx.arts, ctx.objective, ctx.tracker) for r in finals)
    best = _best(trials, ctx.higher)
    search = _search_run(runs, best.number) if best else None
    params = {k: _number(v) for k, v in (search or {}).get("params", {}).items()}
    curve: tuple[tuple[int, float], ...] = ()
    if search:
        curve = tuple(ctx.tracker.metric_history(
            search["run_id"], _history_key(search, f"eval/{ctx.objective}", "objective")))
    spec = gan.spec
    record = GanRecord(gan.name, f"{spec.arch} / {spec.loss} / {spec.penalty}", trials, finalists,
                       best.number if best else None, {**params, **(best.params if best else {})},
                       curve, importances=param_importances(ctx.storage, name))
    return _with_samples(ctx, record, finals)


def _with_samples(ctx: _Context, gan: GanRecord, finals: list[dict[str, Any]]) -> GanRecord:
    """Add the best finalist's last sample grid and its mode-figure samples."""
    from dataclasses import replace

    from gan_bench.plan import EVAL_SEED
    from gan_bench.report import samples

    if not finals:
        return gan
    pick = (max if ctx.higher else min)(range(len(finals)), key=lambda i: gan.finalists[i].objective)
    run, fin = finals[pick], gan.finalists[pick]
    grid = ctx.arts.last(run, "samples")
    gan = replace(gan, samples_png=grid.read_bytes() if grid else None)
    ckpt = _verified(run, ctx.arts.path(run, f"checkpoint/{run['run_id']}_G.pt"), "checkpoint")
    kind = _dataset_kind(ctx.suite.dataset.name)
    if ckpt is None or (kind != "points" and ctx.suite.dataset.name != "mnist"):
        return gan
    gan = replace(gan, checks=_checks(ctx, run, ckpt, gan.name))
    key = "modes_captured" if kind == "points" else "classes_covered"
    n = int(fin.protocols.get(key, {}).get("n_fake") or samples.N_POINTS)
    note = f"{n} samples each, z seed {EVAL_SEED} as at evaluation"
    if kind == "points":
        pts = samples.mixture_points(ckpt, EVAL_SEED, n)
        return replace(gan, points=tuple(map(tuple, pts.round(5).tolist())), samples_note=note)
    return replace(gan, class_counts=tuple(samples.class_counts(ckpt, EVAL_SEED, n)), samples_note=note)


def _checks(ctx: _Context, run: dict[str, Any], ckpt: Path, gan: str) -> Any:
    """The best finalist's checks (report/checks.py): read from its run's checks/ artifacts, or
    computed now and logged there (a store that cannot take them, e.g. a read-only copy, gets
    a warning and the report still shows them). None when GAN_BENCH_CHECKS=off."""
    from gan_bench.plan import EVAL_SEED
    from gan_bench.report import checks
    from gan_bench.tracking import RunHandle

    if not checks.enabled():
        return None
    meta = ctx.arts.path(run, f"{checks.FOLDER}/checks.json")
    record = checks.from_files(meta) if meta is not None else None
    if record is not None:
        return record
    history = {k: ctx.tracker.metric_history(run["run_id"], k)
               for k in ("train/value", "train/d_real", "train/d_fake")}
    record = checks.compute(ckpt, gan, history, EVAL_SEED)
    try:
        root = ctx.arts._local(run)
        if root is not None:  # this output dir's own artifacts (also a moved or copied one)
            checks.to_files(record, root / checks.FOLDER)
        else:
            handle = RunHandle(ctx.tracker, run["run_id"])
            checks.log_record(record, lambda path, folder: handle.log_artifact(path, folder))
    except Exception as exc:  # noqa: BLE001 - the report does not need the store to take them
        ctx.warnings.append(f"the checks of {gan}'s best finalist were not logged to its run "
                            f"{run['run_id']} ({type(exc).__name__}); they are in this report")
    return record


def _dataset_kind(name: str) -> str:
    from gan_bench.registry import DATASETS

    return DATASETS.get(name).kind


def _directions(suite: Suite, keys: set[str]) -> tuple[str, dict[str, bool]]:
    """(objective record key, {record key: higher is better}) from the metric catalogue."""
    from gan_bench.metrics.evaluator import Evaluator

    m, ds = suite.metrics, suite.dataset
    ev = Evaluator(ds.name, real_split=ds.eval_split, metrics=[m.objective, *m.final, *m.curves],
                   n_real=m.n_real, dataset_options=dict(ds.options))
    objective = ev.objective_key(m.objective, m.objective_record)
    return objective, {k: ev.higher_is_better(k) for k in sorted(keys | {objective})}


def _dataset_text(suite: Suite) -> str:
    ds = suite.dataset
    subset = f", first {ds.subset} samples" if ds.subset else ""
    options = f", options {json.dumps(ds.options, sort_keys=True)}" if ds.options else ""
    return f"{ds.name} ({ds.train_split} split{subset}{options}; metrics on {ds.eval_split})"


def _budget_text(suite: Suite) -> str:
    b, m, f = suite.budget, suite.metrics, suite.finalists
    length = f"{b.iterations} iterations" if b.iterations else f"{b.epochs:g} epochs"
    return (f"{b.trials} trials per GAN of {length} (eval every {b.eval_every or 'end'}); "
            f"sampler {suite.sampler.name} seed {suite.sampler.seed} (each GAN's seed derived "
            f"from it and the GAN's name), pruner {suite.pruner.name}; "
            f"search scored on {m.n_fake_search} samples, finalists (top {f.top} x {f.seeds} "
            f"seeds) on {m.n_fake}")


def _date(runs: Sequence[dict[str, Any]]) -> str:
    ends = [r["end_time"] for r in runs if r.get("end_time")]
    if not ends:
        return "no finished runs"
    return datetime.fromtimestamp(max(ends) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(runs: Sequence[dict[str, Any]]) -> float | None:
    """Seconds from the first run's start to the last run's end (None without finished runs)."""
    starts = [r["start_time"] for r in runs if r.get("start_time")]
    ends = [r["end_time"] for r in runs if r.get("end_time")]
    return (max(ends) - min(starts)) / 1000 if starts and ends else None


def _hardware(runs: Sequence[dict[str, Any]], gans: Sequence[GanRecord],
              versions: dict[str, str]) -> str:
    devices = {t.device for g in gans for t in g.trials if t.device}
    devices |= {r["params"]["device"] for r in runs if "device" in r["params"]}
    torch = sorted({r["tags"]["version.torch"] for r in runs if "version.torch" in r["tags"]})
    torch = torch or ([versions["torch"]] if "torch" in versions else [])
    machines = sorted({r["tags"]["hardware"] for r in runs if r["tags"].get("hardware")})
    where = f" ({'; '.join(machines)})" if machines else ""
    return (f"{', '.join(sorted(devices)) or 'unknown device'}{where}; "
            f"torch {', '.join(torch) or 'unknown'}")


def _versions(runs: Sequence[dict[str, Any]], arts: _Artifacts) -> dict[str, str]:
    """Package versions of the newest run with versions recorded (its metrics' protocol): its
    run.json, or its `version.*` tags in stores made before run.json."""
    for run in reversed(runs):
        if run["tags"].get("stage") not in ("search", "final") or run["status"] != "FINISHED":
            continue
        if any(k.startswith("version.") for k in run["tags"]):
            return {k[len("version."):]: v for k, v in run["tags"].items()
                    if k.startswith("version.")}
        path = arts.path(run, "run.json")
        if path is not None:
            try:
                versions = json.loads(path.read_text()).get("versions") or {}
            except (ValueError, UnicodeDecodeError, AttributeError):
                continue
            return {str(k): str(v) for k, v in versions.items()}
    return {}


def _centres(suite: Suite) -> tuple[tuple[tuple[float, float], ...] | None, float | None]:
    if _dataset_kind(suite.dataset.name) != "points":
        return None, None
    from gan_bench.data import load_dataset

    meta = load_dataset(suite.dataset.name, suite.dataset.eval_split, **suite.dataset.options).meta
    return tuple(tuple(c) for c in meta["centres"]), float(meta["sigma"])


def _ladder(suite: Suite) -> tuple[dict[str, Any], ...] | None:
    """The calibration ladder on the finals' protocol (cached per protocol; ~20 s at 2,000)."""
    from gan_bench.ladder import LADDER_DATASETS, ladder_rows

    if suite.dataset.name not in LADDER_DATASETS or suite.dataset.options:
        return None
    m = suite.metrics
    return tuple(ladder_rows(suite.dataset.name, n_fake=m.n_fake, n_real=m.n_real,
                             real_split=suite.dataset.eval_split))


def collect(source: str | Path, references: Path = REFERENCES_PATH,
            test: str = "mannwhitney", ladder_rows: bool = True) -> ReportData:
    """ReportData of the suite at `source` (suite YAML or output dir); see the module doc."""
    from gan_bench.tracking import Tracker

    suite, out = resolve_source(source)
    storage, tracking = stores.storage_url(suite, out), stores.tracking_uri(suite, out)
    objective, directions = _directions(suite, set())
    higher = directions[objective]
    with _damaged_store_is_one_line(out), \
            tempfile.TemporaryDirectory(prefix="gan-bench-report-") as tmp:
        # read from snapshots of local sqlite stores: a store on a read-only mount reads too
        # (sqlite would need to write beside it), and the store itself is never written
        tracker = Tracker(snapshot(tracking, Path(tmp) / "mlflow"), suite.name, read_only=True)
        # the summary run (made after a run's report) is not a run of any study
        runs = [r for r in tracker.find_runs() if r["tags"].get("stage") != "summary"]
        ctx = _Context(suite, out, tracker, snapshot(storage, Path(tmp) / "optuna"), runs,
                       objective, higher, Path(tmp))
        ctx.storage_label, ctx.tracking_label = storage, tracking
        gans = tuple(_gan(ctx, g) for g in suite.resolved_gans())
        versions = _versions(runs, ctx.arts)
    keys = {k for g in gans for f in g.finalists for k in f.metrics}
    centres, sigma = _centres(suite)
    ladder = _ladder(suite) if ladder_rows else None
    return ReportData(
        suite=suite.name, description=suite.description, dataset=suite.dataset.name,
        dataset_text=_dataset_text(suite), objective=objective,
        directions=_directions(suite, keys)[1], budget_text=_budget_text(suite), date=_date(runs),
        git_shas=tuple(sorted({r["tags"]["git_sha"] for r in runs if "git_sha" in r["tags"]})),
        commands=tuple(sorted({c for r in runs
                               if (c := r["tags"].get("command", r["tags"].get("mlflow.source.name")))})),
        wall_seconds=_span(runs),
        hardware=_hardware(runs, gans, versions), versions=versions, gans=gans,
        references=load_references(references), centres=centres, sigma=sigma, test=test,
        ladder=ladder, warnings=tuple(ctx.warnings))


@contextlib.contextmanager
def _damaged_store_is_one_line(out: Path) -> Iterator[None]:
    """A store sqlite cannot read (bit flips, truncation, not a database) is bad input: one line
    naming it, not a traceback from deep inside SQLAlchemy or MLflow."""
    import sqlalchemy.exc

    from gan_bench.tracking import TrackingError

    try:
        yield
    except (sqlite3.DatabaseError, sqlalchemy.exc.DatabaseError) as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise UserInputError(f"{out}: a store cannot be read ({first}); restore optuna.db / "
                             "mlflow.db from a copy") from None
    except TrackingError as exc:
        raise UserInputError(str(exc).splitlines()[0]) from None
