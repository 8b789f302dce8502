"""MLflow tracking: one experiment per suite, a parent run per study, a child run per trial.

The only module that imports mlflow. Everything goes through `MlflowClient` with explicit run ids,
never the fluent `mlflow.start_run`, whose active-run stack is per thread: the runner logs from
worker threads, and several `gan-bench run` processes may share one store (two workers on one
study). A child run nests under its parent in the UI through the tag `mlflow.parentRunId`.

Local stores (`sqlite:` and `file:` URIs) are guarded by a file lock next to the store, so two
processes that create the store, the experiment or a study's parent run at once end up with one
of each. Every MLflow call retries while sqlite reports "database is locked" (for up to
`RETRY_SECONDS`) and then raises `TrackingError`: nothing is dropped silently.

Runs carry `gan_bench.owner` ("host:space:pid", gan_bench.procs) and `gan_bench.heartbeat` (unix seconds), from which
`Tracker.close_orphans` finds runs left RUNNING by a killed process.

Portable local stores: an experiment made in a local sqlite store keeps its artifacts under
`mlflow-artifacts:/<experiment>` URIs, which name no folder. This process writes them to
`<db folder>/mlartifacts/<experiment>/...` (`_LocalProxyRepository`); `mlflow server
--artifacts-destination <db folder>/mlartifacts` (what `gan-bench ui` starts) serves them from
wherever the folder now is, so a moved, copied or unpacked `runs/<suite>/` keeps its images.
Stores made before this keep their absolute `file://` locations.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import random
import shlex
import sqlite3
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

# MLflow 3 sends usage telemetry from a background thread; a benchmark on an offline GPU box
# should not. An explicit MLFLOW_DISABLE_TELEMETRY=false from the user still wins.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Progress bars of artifact downloads would print between gan-bench's own lines (a report
# that refuses a store must say so in one line).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np  # noqa: E402
import sqlalchemy.exc  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry as _ARTIFACT_REPOS  # noqa: E402
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository  # noqa: E402
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from gan_bench.errors import GanBenchError  # noqa: E402
from gan_bench.procs import owner_state, owner_token  # noqa: E402
from gan_bench.stores import default_tracking_uri, redact  # noqa: E402  (one place: stores.py)
from gan_bench.timing import LEDGER  # noqa: E402

if TYPE_CHECKING:
    from types import TracebackType

    import pandas as pd
    from matplotlib.figure import Figure
    from mlflow.entities import Run
    from mlflow.models import ModelSignature
    from torch import Tensor, nn

_T = TypeVar("_T")

__all__ = ["TrackingError", "Tracker", "RunHandle", "default_tracking_uri", "ui_command",
           "git_sha", "git_commit", "migrate_backend", "local_artifact_dir", "PROXY_SCHEME", "KEY_TAG", "OWNER_TAG", "HEARTBEAT_TAG", "PARENT_TAG", "RUN_NAME_TAG"]

KEY_TAG = "gan_bench.key"  # identifies a parent run: one per Optuna study
OWNER_TAG = "gan_bench.owner"  # "host:space:pid" of the process working on the run (procs.py)
HEARTBEAT_TAG = "gan_bench.heartbeat"  # unix seconds of the owner's last sign of life
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag
RUN_NAME_TAG = "mlflow.runName"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # MLflow's list of table artifacts of a run
NOTE_TAG = "mlflow.note.content"  # the run's / experiment's "Description" in the UI (markdown)
KIND_TAG = "mlflow.experimentKind"  # the UI opens "custom_model_development" in Model training
MODEL_TRAINING = "custom_model_development"
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."  # + key: a runs-table view the UI restores
PROXY_SCHEME = "mlflow-artifacts"  # artifact URIs resolved by the server (or here, locally)
ARTIFACTS_FOLDER = "mlartifacts"  # next to a local store's db; `mlflow server`'s default name
STATE_TAG = "state"  # "orphaned", "interrupted", "resumed"
ERROR_TAG = "error"  # one-line message of the exception that failed the run

RETRY_SECONDS = 10.0  # how long a call retries a locked sqlite db; MLflow itself waits 20 s/try
# a run of another host or PID space (a container) with no heartbeat for this long is dead
HEARTBEAT_TIMEOUT_S = float(os.environ.get("GAN_BENCH_RUN_STALE_S", "600"))
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")

# MLflow's validation limits (mlflow/utils/validation.py).
_MAX_PARAM_VALUE = 6000
_MAX_TAG_VALUE = 8000
_MAX_PARAMS_PER_BATCH = 100  # also the limit for tags
_MAX_METRICS_PER_BATCH = 1000
_MAX_SEARCH_PAGE = 50000
_TRUNCATED = "...[truncated]"

_NAMED_STORES = ("databricks", "databricks-uc", "uc")  # URIs without a scheme, not paths
_logger = logging.getLogger(__name__)

# A fresh sqlite db logs every alembic migration at INFO; a retried lock logs a traceback.
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db").setLevel(logging.WARNING)
# MLflow logs every failed database call at ERROR with its traceback, then raises; `_call`
# turns the raise into one TrackingError, so the log only repeats it (a full disk printed
# 4,000 lines of these before gan-bench's own line).
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


class TrackingError(GanBenchError):
    """An MLflow call failed for good (after retries); `error_code` is MLflow's code, if any."""

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


# ----------------------------------------------------------------------------- module helpers



def ui_command(uri: str, output_dir: Path | None = None) -> str:
    """The shell command that opens the MLflow UI on `uri`, e.g. to print after a run:
    `gan-bench ui <output dir>` for a run folder's own sqlite store (it serves the folder's
    artifacts and links to the suite's view)."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser (the MLflow server is already running)"
    if output_dir is not None and local_artifact_dir(uri) == Path(output_dir).resolve() / ARTIFACTS_FOLDER:
        return f"gan-bench ui {shlex.quote(str(output_dir))}"
    # a password in the URL is not printed: the user fills it in (logs outlive a terminal)
    return f"mlflow ui --backend-store-uri {shlex.quote(redact(uri))}"


# What decides a run's numbers: changes here make a sha "-dirty"; edited reports, READMEs and
# tests do not (a session regenerating reports/ before committing them is not running other code).
CODE_PATHS = ("benchmark", "suites", "pyproject.toml", "constraints.txt", "Makefile")


def migrate_backend(uri: str) -> None:
    """Create (or upgrade) MLflow's tables in the database `uri` (a server's backend store):
    a deployment's one-shot step before `mlflow server` and the workers start."""
    import sqlalchemy as sa
    from mlflow.store.db import utils as db
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = db.create_sqlalchemy_engine_with_retry(uri)
    try:  # an existing store of an older MLflow: migrate it (SqlAlchemyStore would refuse)
        if (sa.inspect(engine).has_table("experiments")
                and db._get_schema_version(engine) != db._get_latest_schema_revision()):
            db._upgrade_db(engine)
    finally:
        engine.dispose()
    # a fresh database: the store creates every table; an up-to-date one: it only checks
    SqlAlchemyStore(uri, tempfile.gettempdir()).engine.dispose()


def git_sha(root: Path | None = None) -> str:
    """Short sha of the checkout holding this package (or `root`), "-dirty" appended if tracked
    files under CODE_PATHS have changes (reports, docs, tests and untracked run outputs do not
    count).

    "unknown" when the package is not in a git checkout (or git is missing).
    """
    here = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        top = Path(_git(here, "rev-parse", "--show-toplevel"))
        sha = _git(top, "rev-parse", "--short", "HEAD")
        dirty = _git(top, "status", "--porcelain", "--untracked-files=no", "--",
                     *[p for p in CODE_PATHS if (top / p).exists()])
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def _local_store_path(uri: str) -> Path | None:
    """The db file of a `sqlite:` URI or the folder of a `file:` store; None for other stores."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):].split("?", 1)[0] if uri.startswith("sqlite:///") else ""
        return Path(url2pathname(path)).resolve() if path and path != ":memory:" else None
    if parsed.scheme == "file" or (parsed.scheme == "" and uri not in _NAMED_STORES):
        return Path(url2pathname(parsed.path)).resolve()
    return None


def local_artifact_dir(uri: str) -> Path | None:
    """`<db folder>/mlartifacts` of a local sqlite store: where its `mlflow-artifacts:` URIs
    live (`mlflow server --artifacts-destination`); None for other stores."""
    if urlparse(uri).scheme != "sqlite":
        return None
    db = _local_store_path(uri)
    return None if db is None else db.parent / ARTIFACTS_FOLDER


def _proxy_path(artifact_uri: str) -> str:
    """"mlflow-artifacts:/smoke/<run>/artifacts" -> "smoke/<run>/artifacts"."""
    return urlparse(artifact_uri).path.lstrip("/")


class _LocalProxyRepository(LocalArtifactRepository):
    """`mlflow-artifacts:` URIs of a local sqlite store, read and written in this process as
    files under the store's `mlartifacts/` folder (MLflow's own repository for the scheme needs
    an http tracking server); with any other tracking URI, MLflow's repository (the server)."""

    def __new__(cls, artifact_uri: str, tracking_uri: str | None = None,
                registry_uri: str | None = None) -> Any:
        import mlflow

        root = local_artifact_dir(tracking_uri or mlflow.get_tracking_uri())
        if root is None:
            return MlflowArtifactsRepository(artifact_uri, tracking_uri=tracking_uri,
                                             registry_uri=registry_uri)
        return LocalArtifactRepository((root / _proxy_path(artifact_uri)).as_uri(),
                                       tracking_uri=tracking_uri, registry_uri=registry_uri)


# Registered for this process only (never as a package entry point: `mlflow server` must keep
# MLflow's own handling of the scheme).
_ARTIFACT_REPOS.register(PROXY_SCHEME, _LocalProxyRepository)
_FLUENT_LOCK = threading.Lock()  # mlflow's fluent tracking URI is process-global


@contextlib.contextmanager
def _fluent_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (model logging reads it) at `uri` for the block."""
    import mlflow

    with _FLUENT_LOCK:
        before, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)
            mlflow.set_registry_uri(registry)


def git_commit() -> str | None:
    """Full sha of HEAD of the checkout holding this package (MLflow's `mlflow.source.git.commit`);
    None outside a git checkout."""
    try:
        return _git(Path(__file__).resolve().parent, "rev-parse", "HEAD") or None
    except (OSError, subprocess.SubprocessError):
        return None


def _owner() -> str:
    return owner_token()


def _now_s() -> str:
    return f"{time.time():.0f}"


def _life_tags() -> dict[str, str]:
    """This process owns the run, alive now."""
    return {OWNER_TAG: _owner(), HEARTBEAT_TAG: _now_s()}


def _is_lock_message(message: str) -> bool:
    return "database is locked" in message or "database table is locked" in message


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: a locked sqlite db, a busy server; never a full disk (it stays full)."""
    message = str(exc).lower()
    if "disk is full" in message or "no space left" in message:
        return False
    if isinstance(exc, MlflowException) and exc.error_code == "TEMPORARILY_UNAVAILABLE":
        return True
    return isinstance(exc, sqlalchemy.exc.OperationalError) or _is_lock_message(str(exc))


def _one_line(exc: BaseException | str, limit: int = 500) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - len(_TRUNCATED)] + _TRUNCATED


def _call(what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """`fn(*args, **kwargs)`, retried with backoff while the store is locked; else TrackingError."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.05
    with LEDGER.phase("tracking"):
        while True:
            try:
                return fn(*args, **kwargs)
            except (MlflowException, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
                if not _is_transient(exc) or time.monotonic() >= deadline:
                    code = getattr(exc, "error_code", None)
                    raise TrackingError(f"MLflow could not {what}: {_one_line(exc)}", code) from exc
            # Jitter: writers that collided once should not collide again on the same schedule.
            time.sleep(min(delay * random.uniform(0.5, 1.0), max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 1.0)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"opt": {"lr": 1e-4}} -> {"opt.lr": 1e-4}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _clip(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - len(_TRUNCATED)] + _TRUNCATED


def _str_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {key: _clip(value, _MAX_TAG_VALUE) for key, value in (tags or {}).items()}


def _filter_literal(value: str) -> str:
    """A string literal for an MLflow filter string."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search for a value with both quote kinds: {value!r}")


def _run_record(run: Run) -> dict[str, Any]:
    info, data = run.info, run.data
    return {"run_id": info.run_id, "name": info.run_name, "status": info.status,
            "start_time": info.start_time, "end_time": info.end_time,
            "parent_id": data.tags.get(PARENT_TAG), "artifact_uri": info.artifact_uri,
            "params": dict(data.params), "tags": dict(data.tags), "metrics": dict(data.metrics)}


def _enable_wal(db: Path) -> None:
    """Switch a sqlite db to write-ahead logging (persistent; a no-op once done).

    Readers (reports, `mlflow ui`) then no longer block the writer, and a commit costs one
    fsync: two processes x 4 threads logging metrics ran 2.5x faster than in rollback mode.
    WAL needs a local filesystem; where it cannot be had the db stays as it was.
    """
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=RETRY_SECONDS)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        _logger.warning("gan-bench: %s stays in sqlite's rollback-journal mode: %s", db, exc)


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """Exclusive flock on `path` (None: no lock); excludes other threads and processes alike."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- Tracker

class Tracker:
    """One MLflow experiment (a suite) in the store at `uri`; safe to share between threads.

    Args:
        uri: tracking URI, e.g. `default_tracking_uri(output_dir)`; sqlite, file or http(s).
        experiment: experiment name; got or created (race-safe across processes).
        artifact_root: where a new experiment keeps artifacts (a folder); default for a local
            sqlite store `mlflow-artifacts:/<experiment>`, kept in `<db folder>/mlartifacts/`
            and portable with the folder (see the module doc); `<store>/mlartifacts` for a
            `file:` store (MLflow's default would be `./mlruns` in the cwd); the server's default
            for remote ones. An existing experiment keeps the location it was made with.
        tags: experiment tags, set on every construction (later values overwrite).
        read_only: open an existing experiment without creating, tagging or locking anything
            (reports); TrackingError when the experiment is not there.

    Attributes: `uri`, `experiment_id`, `artifact_location` (None: the server decides) and
    `client`, the underlying `MlflowClient`, for what this class does not cover.
    """

    def __init__(self, uri: str, experiment: str, *, artifact_root: Path | None = None,
                 tags: Mapping[str, Any] | None = None, read_only: bool = False) -> None:
        self.uri = uri
        store = _local_store_path(uri)
        if read_only:  # reports: open an existing store and experiment, never write to either
            self.artifact_location: str | None = None
            self._lock_path = None
            self.client = _call(f"open the tracking store {uri}", MlflowClient, uri, uri)
            exp = _call(f"read experiment {experiment!r}", self.client.get_experiment_by_name,
                        experiment)
            if exp is None or exp.lifecycle_stage != "active":
                raise TrackingError(f"{uri}: no active MLflow experiment {experiment!r} in it")
            self.experiment_id: str = exp.experiment_id
            return
        self._lock_path = store.with_name(store.name + ".lock") if store else None
        if artifact_root is not None:
            self.artifact_location = Path(artifact_root).resolve().as_uri()
        elif local_artifact_dir(uri) is not None:
            self.artifact_location = f"{PROXY_SCHEME}:/{quote(experiment, safe='')}"
        else:
            self.artifact_location = (store.parent / ARTIFACTS_FOLDER).as_uri() if store else None
        # The lock also covers MLflow's creation of a fresh db, which is not safe to race.
        with _file_lock(self._lock_path):
            self.client = _call(f"open the tracking store {uri}", MlflowClient, uri, uri)
            if store and urlparse(uri).scheme == "sqlite":
                _enable_wal(store)
            self.experiment_id = self._get_or_create_experiment(experiment, _str_tags(tags))

    def _get_or_create_experiment(self, name: str, tags: dict[str, str]) -> str:
        exp = _call(f"read experiment {name!r}", self.client.get_experiment_by_name, name)
        if exp is None:
            try:
                return _call(f"create experiment {name!r}", self.client.create_experiment, name,
                             artifact_location=self.artifact_location, tags=tags)
            except TrackingError as err:  # another process won the race
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            exp = _call(f"read experiment {name!r}", self.client.get_experiment_by_name, name)
            assert exp is not None  # RESOURCE_ALREADY_EXISTS: the other process created it
        if exp.lifecycle_stage != "active":
            raise TrackingError(f"MLflow experiment {name!r} is deleted; restore it with `mlflow "
                                f"experiments restore --experiment-id {exp.experiment_id}`")
        for key, value in tags.items():
            _call("tag the experiment", self.client.set_experiment_tag, exp.experiment_id, key,
                  value)
        return exp.experiment_id

    # -- the experiment in the UI

    def describe_experiment(self, note: str, views: Mapping[str, Any] | None = None) -> None:
        """Open in the UI's Model training mode with `note` (markdown) as the experiment's
        description; `views` {key: view state} become runs-table views the UI restores from
        `#/experiments/<id>?viewStateShareKey=<key>` (what `gan-bench ui` links to)."""
        tags = {KIND_TAG: MODEL_TRAINING, NOTE_TAG: note}
        for key, state in (views or {}).items():
            tags[SHARED_VIEW_PREFIX + key] = json.dumps(state, separators=(",", ":"))
        for key, value in _str_tags(tags).items():
            _call("tag the experiment", self.client.set_experiment_tag, self.experiment_id, key,
                  value)

    def alias_run(self, name: str, alias: str) -> str | None:
        """Run id of the model version that `alias` of registered model `name` points to; None
        when there is no such model or alias."""
        try:
            return self.client.get_model_version_by_alias(name, alias).run_id
        except MlflowException:
            return None

    def register_model(self, name: str, model_uri: str, run_id: str, alias: str,
                       description: str = "") -> str:
        """A new version of registered model `name` from `model_uri` (created if missing),
        with `alias` moved to it; returns the version."""
        with _fluent_uri(self.uri):
            try:
                _call(f"create registered model {name!r}", self.client.create_registered_model,
                      name, description=description or None)
            except TrackingError as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            version = _call(f"register {model_uri}", self.client.create_model_version, name,
                            model_uri, run_id=run_id,
                            model_id=model_uri.split("/", 2)[-1] if model_uri.startswith("models:/") else None)
            _call(f"set alias {alias!r}", self.client.set_registered_model_alias, name, alias,
                  version.version)
        return str(version.version)

    # -- runs

    def parent_run(self, key: str, name: str, *, tags: Mapping[str, Any] | None = None,
                   params: Mapping[str, Any] | None = None) -> str:
        """Get or create the parent run tagged `gan_bench.key == key`; returns its run id.

        A rerun reuses the parent (set back to RUNNING, `gan_bench.owner` = this process, `tags`
        overwritten): never a duplicate, also when two processes ask at once (local stores: the
        file lock; remote ones: the later of two duplicates is deleted). `params` are
        logged like `RunHandle.log_params`; MLflow params are immutable, so a value that differs
        from the one already logged raises TrackingError (put values that may change in tags).
        """
        with _file_lock(self._lock_path):
            found = self._runs_with_key(key)
            if found:
                run_id = found[0].info.run_id
                self._reacquire(found[0], _str_tags(tags))
            else:
                run_id = self._create_run(name, None, {**_str_tags(tags), KEY_TAG: key})
                if self._lock_path is None:  # a remote store: settle a race after the fact
                    run_id = self._settle_parent(key, run_id)
        if params:
            RunHandle(self, run_id).log_params(params)
        return run_id

    def start_run(self, name: str, *, parent_id: str | None = None,
                  tags: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> RunHandle:
        """Create a RUNNING run (a child of `parent_id` if given) and log `params` to it.

        Tags: `tags` plus `mlflow.runName`, `mlflow.parentRunId`, `gan_bench.owner` and a first
        `gan_bench.heartbeat`. A parent that is not RUNNING (finished by another worker, closed
        as orphan) is set back to RUNNING. Use the handle as a context manager to end the run.
        """
        if parent_id is not None:
            self._ensure_running(parent_id)
        handle = RunHandle(self, self._create_run(name, parent_id, _str_tags(tags)), parent_id)
        try:
            handle.log_params(params or {})
        except TrackingError as err:
            with contextlib.suppress(TrackingError):
                handle.end("FAILED", {ERROR_TAG: str(err)})
            raise
        return handle

    def finish_parent(self, run_id: str, status: str = "FINISHED") -> None:
        """End a parent run with `status` (FINISHED | FAILED | KILLED) and the current time."""
        _check_status(status)
        _call(f"end run {run_id}", self.client.set_terminated, run_id, status)

    def _create_run(self, name: str, parent_id: str | None, tags: dict[str, str]) -> str:
        tags = {**tags, RUN_NAME_TAG: name, **_life_tags()}
        if parent_id is not None:
            tags[PARENT_TAG] = parent_id
        run = _call(f"create run {name!r}", self.client.create_run, self.experiment_id,
                    tags=tags, run_name=name)
        return run.info.run_id

    def _runs_with_key(self, key: str) -> list[Any]:
        """Active runs tagged with `key`, oldest first."""
        return list(_call("search runs", self.client.search_runs, [self.experiment_id],
                          f"tags.`{KEY_TAG}` = {_filter_literal(key)}",
                          order_by=["attributes.start_time ASC"]))

    def _reacquire(self, run: Run, tags: dict[str, str]) -> None:
        run_id = run.info.run_id
        tags = {**tags, **_life_tags()}
        if run.data.tags.get(STATE_TAG) == "orphaned":
            tags[STATE_TAG] = "resumed"
        RunHandle(self, run_id).set_tags(tags)
        if run.info.status != "RUNNING":
            _call(f"resume run {run_id}", self.client.update_run, run_id, status="RUNNING")

    def _ensure_running(self, run_id: str) -> None:
        run = _call(f"read run {run_id}", self.client.get_run, run_id)
        if run.info.status != "RUNNING":
            self._reacquire(run, {})

    def _settle_parent(self, key: str, run_id: str) -> str:
        """Without a lock two processes may both create a parent: all keep the oldest."""
        oldest = self._runs_with_key(key)[0].info.run_id
        if oldest != run_id:
            _call(f"delete duplicate run {run_id}", self.client.delete_run, run_id)
        return oldest

    # -- reading

    def find_runs(self, filter_string: str = "", max_results: int = 10000) -> list[dict[str, Any]]:
        """Active runs of this experiment matching an MLflow filter string, oldest first.

        Each is a plain dict: run_id, name, status ("RUNNING" | "FINISHED" | "FAILED" |
        "KILLED"), start_time and end_time (unix ms; end_time None while running), parent_id,
        artifact_uri, params (str -> str), tags (str -> str), metrics (key -> the value at its
        largest step).
        Example filter: "tags.stage = 'final' and attributes.status = 'FINISHED'".
        """
        runs: list[Any] = []
        token = None
        while len(runs) < max_results:
            page = _call("search runs", self.client.search_runs, [self.experiment_id],
                         filter_string, ViewType.ACTIVE_ONLY,
                         min(max_results - len(runs), _MAX_SEARCH_PAGE),
                         ["attributes.start_time ASC"], token)
            runs.extend(page)
            token = page.token
            if not token:
                break
        return [_run_record(run) for run in runs]

    def artifact_paths(self, run_id: str, folder: str) -> list[str]:
        """Paths of the artifacts directly under `folder` of a run ("images/a.png", ...)."""
        return [f.path for f in self.client.list_artifacts(run_id, folder)]

    def download_artifact(self, run_id: str, path: str, dst: str | Path) -> Path:
        """Copy one artifact of a run into the folder `dst`; returns its local path."""
        return Path(self.client.download_artifacts(run_id, path, str(dst)))

    def logged_model_id(self, run_id: str) -> str | None:
        """The id of the MLflow LoggedModel a run logged (its generator), or None."""
        found = self.client.search_logged_models(experiment_ids=[self.experiment_id],
                                                 filter_string=f"source_run_id = '{run_id}'")
        return found[0].model_id if found else None

    def delete_run(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    def experiment_tags(self) -> dict[str, str]:
        return dict(self.client.get_experiment(self.experiment_id).tags)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Every logged value of metric `key` as (step, value), in step order."""
        history = _call(f"read metric {key!r}", self.client.get_metric_history, run_id, key)
        return [(m.step, m.value) for m in sorted(history, key=lambda m: (m.step, m.timestamp))]

    # -- orphans

    def close_orphans(self, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S) -> int:
        """Mark RUNNING runs whose owner is dead FAILED with tag state=orphaned; return how many.

        Dead: the owner ran in this host's and this process's PID space and its pid is gone,
        or anywhere else (another host, another container on this host) and its last heartbeat
        (else its start time) is older than `heartbeat_timeout` seconds.
        A parent counts as alive while any of its RUNNING children is. Runs with no
        `gan_bench.owner` tag (not made by gan-bench) are left alone. Caveat: a reused pid in
        this PID space keeps a dead run alive until the next check.
        """
        running = [_run_record(run) for run in self._search_all("attributes.status = 'RUNNING'")]
        now = time.time()
        alive = {run["run_id"]: _owner_alive(run, now, heartbeat_timeout) for run in running}
        for run in running:
            if run["parent_id"] in alive and alive[run["run_id"]]:
                alive[run["parent_id"]] = True
        closed = 0
        for run in running:
            if not alive[run["run_id"]] and self._close_orphan(run):
                closed += 1
        return closed

    def _search_all(self, filter_string: str) -> Iterable[Any]:
        token = None
        while True:
            page = _call("search runs", self.client.search_runs, [self.experiment_id],
                         filter_string, ViewType.ACTIVE_ONLY, _MAX_SEARCH_PAGE, None, token)
            yield from page
            token = page.token
            if not token:
                return

    def _close_orphan(self, run: dict[str, Any]) -> bool:
        run_id = run["run_id"]
        # Re-read: the owner may have ended the run since the search.
        if _call(f"read run {run_id}", self.client.get_run, run_id).info.status != "RUNNING":
            return False
        RunHandle(self, run_id).set_tags({STATE_TAG: "orphaned"})
        beat = run["tags"].get(HEARTBEAT_TAG)
        end_ms = int(float(beat) * 1000) if beat else None  # None: now
        _call(f"end run {run_id}", self.client.set_terminated, run_id, "FAILED", end_ms)
        return True


def _owner_alive(run: dict[str, Any], now: float, timeout: float) -> bool:
    """A pid is asked only in this process's host and PID space (procs.owner_state): a worker
    in another container on this host is alive while its heartbeat is fresh."""
    owner = run["tags"].get(OWNER_TAG)
    if not owner:
        return True
    state = owner_state(owner)
    if state != "elsewhere":
        return state == "alive"
    beat = run["tags"].get(HEARTBEAT_TAG)  # set at creation, so later than the start time
    last = float(beat) if beat else (run["start_time"] or 0) / 1000
    return now - last < timeout


def _check_status(status: str) -> None:
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(TERMINAL_STATUSES)}, "
                         f"not {status!r}")


# ----------------------------------------------------------------------------- RunHandle

class RunHandle:
    """One RUNNING MLflow run; every method may be called from any thread.

    As a context manager it ends the run on exit: FINISHED normally, KILLED with tag
    state=interrupted on KeyboardInterrupt or SystemExit, FAILED with tag error=<one line> on any other
    exception, unless the run was already ended inside the block (e.g. a pruned trial).
    """

    def __init__(self, tracker: Tracker, run_id: str, parent_id: str | None = None) -> None:
        self.run_id = run_id
        self.parent_id = parent_id
        self._tracker = tracker
        self._client = tracker.client
        self._ended = False
        self._end_lock = threading.Lock()
        self.context: dict[str, Any] = {}  # the runner's notes for the run's run.json

    @property
    def ended(self) -> bool:
        return self._ended

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log floats (python, numpy or 0-d torch) at `step` in one batch; NaN/inf are skipped."""
        now_ms = int(time.time() * 1000)
        entries = [Metric(key, value, now_ms, int(step))
                   for key, value in ((k, float(v)) for k, v in metrics.items())
                   if math.isfinite(value)]
        for chunk in _chunks(entries, _MAX_METRICS_PER_BATCH):
            self._batch("log metrics", metrics=chunk)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params: nested dicts flattened with dots ("opt.lr"), values stringified.

        A value longer than MLflow's 6000 characters is logged truncated (ending "[truncated]")
        and in full as the artifact `params/<key>.txt`. Re-logging a value is a no-op; changing
        one raises TrackingError (MLflow params are immutable).
        """
        flat = {key: str(value) for key, value in _flatten(params).items()}
        for key, value in flat.items():
            if len(value) > _MAX_PARAM_VALUE:
                self._log_bytes(value.encode(), f"params/{key}.txt")
        entries = [Param(key, _clip(value, _MAX_PARAM_VALUE)) for key, value in flat.items()]
        for chunk in _chunks(entries, _MAX_PARAMS_PER_BATCH):
            self._batch("log params", params=chunk)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (overwrite) tags; values stringified, cut at MLflow's 8000 characters."""
        entries = [RunTag(key, value) for key, value in _str_tags(tags).items()]
        for chunk in _chunks(entries, _MAX_PARAMS_PER_BATCH):
            self._batch("set tags", tags=chunk)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a file or folder into the run's artifacts (under `artifact_path` if given)."""
        _call(f"log artifact {path}", self._client.log_artifact, self.run_id, str(path),
              artifact_path)

    def log_image(self, image_uint8: np.ndarray, name: str) -> None:
        """Log a uint8 image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as a PNG artifact.

        `name` is the artifact path, e.g. "samples/step_001000.png" (".png" added if missing).
        """
        from PIL import Image  # a dependency of matplotlib, which gan-bench requires

        image = np.asarray(image_uint8)
        if image.dtype != np.uint8 or not (image.ndim == 2 or
                                           (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
            raise ValueError(f"expected a uint8 (H, W) or (H, W, 1|3|4) image, got "
                             f"{image.dtype} {image.shape}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        self._log_bytes(buffer.getvalue(), name if name.endswith(".png") else name + ".png")

    def log_stepped_image(self, image_uint8: np.ndarray, key: str, step: int) -> None:
        """MLflow's time-stepped image: the UI's "Image grid" chart shows `key` across runs with
        a step slider (files `images/<key>+step+<step>+...png` and a compressed preview)."""
        image = np.asarray(image_uint8)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        _call(f"log image {key!r} for run {self.run_id}", self._client.log_image, self.run_id,
              image, key=key, step=int(step), synchronous=True)

    def log_figure(self, figure: Figure, name: str) -> None:
        """A matplotlib figure as the PNG artifact `name` (shown inline in the Artifacts tab)."""
        _call(f"log figure {name!r} for run {self.run_id}", self._client.log_figure, self.run_id,
              figure, name)

    def log_table(self, data: pd.DataFrame | Mapping[str, Any], name: str) -> None:
        """A pandas DataFrame (or dict of columns) as MLflow's table artifact `name` (.json),
        replacing an earlier table of that name (MLflow's own log_table appends rows to it):
        the file MLflow writes (`orient="split"`) and its `mlflow.loggedArtifacts` entry, so the
        UI shows it as a table."""
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        text = frame.to_json(orient="split", index=False, date_format="iso")
        self._log_bytes(text.encode(), name)
        tags = _call(f"read run {self.run_id}", self._client.get_run, self.run_id).data.tags
        logged = json.loads(tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
        entry = {"path": name, "type": "table"}
        if entry not in logged:
            self.set_tags({LOGGED_ARTIFACTS_TAG: json.dumps(logged + [entry])})

    def log_datasets(self, datasets: Sequence[tuple[Any, str]]) -> None:
        """(mlflow.data Dataset, context) pairs as the run's inputs (the UI's Dataset column);
        context e.g. "training" or "evaluation"."""
        from mlflow.entities import DatasetInput, InputTag

        inputs = [DatasetInput(ds._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])
                  for ds, context in datasets]
        _call(f"log inputs for run {self.run_id}", self._client.log_inputs, self.run_id, inputs)

    def log_model(self, module: nn.Module, name: str, *, example: Tensor | None = None,
                  pip_requirements: Sequence[str] = ()) -> str:
        """A torch module as an MLflow model (pickled, so loading it needs gan_bench installed)
        linked to this run (the UI's Models column); returns its `models:/<id>` URI. `example`
        (an input tensor) gives the model its signature."""
        import torch
        from mlflow.models import infer_signature

        signature = None
        was_training = module.training
        module.eval()  # saved in eval mode: sampling uses BatchNorm's running statistics
        try:
            if example is not None:
                with torch.no_grad():
                    signature = infer_signature(example.cpu().numpy(),
                                                module(example).float().cpu().numpy())
            return self._log_module(module, name, signature, pip_requirements)
        finally:
            module.train(was_training)

    def _log_module(self, module: nn.Module, name: str, signature: ModelSignature | None,
                    pip_requirements: Sequence[str]) -> str:
        import mlflow.pytorch

        exp = _call(f"read run {self.run_id}", self._client.get_run, self.run_id).info.experiment_id
        with _fluent_uri(self._tracker.uri), warnings.catch_warnings():
            # "pickle ... requires exercising caution": known; pt2 cannot trace our samplers
            warnings.simplefilter("ignore")
            logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
            model = _call("create a logged model", self._client.create_logged_model,
                          experiment_id=exp, name=name, source_run_id=self.run_id)
            info = _call(f"log model {name!r} for run {self.run_id}", mlflow.pytorch.log_model,
                         module, name=name, model_id=model.model_id, run_id=self.run_id,
                         signature=signature, pip_requirements=list(pip_requirements) or None,
                         serialization_format="pickle")
        return info.model_uri

    @contextlib.contextmanager
    def system_metrics(self, interval_s: float = 10.0) -> Iterator[None]:
        """MLflow's system metrics (`system/cpu_utilization_percentage`, memory, GPU when there
        is one) sampled every `interval_s` while the block runs; a no-op without psutil."""
        try:
            import psutil  # noqa: F401  (MLflow's monitor needs it)
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError:
            yield
            return
        logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
        monitor = SystemMetricsMonitor(self.run_id, sampling_interval=interval_s,
                                       tracking_uri=self._tracker.uri)
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()

    def set_note(self, text: str) -> None:
        """The run's description in the UI (markdown)."""
        self.set_tags({NOTE_TAG: text})

    def rename(self, name: str) -> None:
        """A new run name (e.g. "t2 k=1 r=0.31 pruned@500")."""
        _call(f"rename run {self.run_id}", self._client.update_run, self.run_id, name=name)

    def log_json(self, obj: Any, name: str) -> str:
        """Log `obj` as an indented JSON artifact (".json" added if missing; Paths etc. as str);
        returns the sha256 (hex) of the bytes logged, for a later integrity check."""
        data = (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
        self._log_bytes(data, name if name.endswith(".json") else name + ".json")
        return hashlib.sha256(data).hexdigest()

    def heartbeat(self) -> None:
        """Set `gan_bench.heartbeat` to now: the run is alive (see `Tracker.close_orphans`)."""
        self._batch("heartbeat", tags=[RunTag(HEARTBEAT_TAG, _now_s())])

    def end(self, status: str = "FINISHED", tags: Mapping[str, Any] | None = None) -> None:
        """Set `tags`, then end the run with `status` (FINISHED | FAILED | KILLED); idempotent."""
        _check_status(status)
        with self._end_lock:
            if self._ended:
                return
            if tags:
                self.set_tags(tags)
            _call(f"end run {self.run_id}", self._client.set_terminated, self.run_id, status)
            self._ended = True

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if exc is None:
            self.end()
            return False
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            status, tags = "KILLED", {STATE_TAG: "interrupted"}
        else:
            status, tags = "FAILED", {ERROR_TAG: f"{type(exc).__name__}: {_one_line(exc)}"}
        try:
            self.end(status, tags)
        except TrackingError as err:  # keep the original exception; mention this one
            exc.add_note(f"gan-bench: also failed to end the MLflow run: {err}")
        return False

    def _batch(self, what: str, **entries: Any) -> None:
        _call(f"{what} for run {self.run_id}", self._client.log_batch, self.run_id,
              synchronous=True, **entries)

    def _log_bytes(self, data: bytes, name: str) -> None:
        path = PurePosixPath(name)
        with tempfile.TemporaryDirectory(prefix="gan-bench-artifact-") as tmp:
            local = Path(tmp) / path.name
            local.write_bytes(data)
            parent = str(path.parent)
            self.log_artifact(local, None if parent == "." else parent)
