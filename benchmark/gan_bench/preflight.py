"""Checks made before a command writes anything: can the outputs be written, the stores reached?

`validate` catches what the suite file alone shows (config.py calls `storage_url_problem` and
`tracking_uri_problem` for the shape of the two URLs). `run` then calls `check_run`, before the
Runner creates `runs/<name>/`: the output folder can be created and written, the Optuna storage
answers (a database server within CONNECT_TIMEOUT_S, a sqlite file's folder is writable) and so
does the MLflow store (an http(s) server within HTTP_TIMEOUT_S, one request, no retries). Each
problem is one UserInputError line naming the suite field, so a bad setting costs seconds, not a
trial's training, and leaves no `runs/<name>/` folder and no lock file behind.

Nothing here creates a file or folder: writability is probed with an unnamed temporary file in
the nearest folder that exists.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from gan_bench.errors import UserInputError

if TYPE_CHECKING:
    from typing import Protocol

    class _SuiteStores(Protocol):
        """What `check_run` reads of a config.Suite (config imports this module, so this module
        does not import it)."""

        def resolved_output_dir(self) -> Path: ...

        def resolved_storage(self) -> str: ...

        def resolved_tracking_uri(self) -> str: ...

__all__ = ["check_run", "check_report", "folder_problem", "storage_url_problem",
           "tracking_uri_problem", "machine_memory_bytes", "memory_problem", "format_bytes",
           "MEMORY_SHARE"]

MEMORY_SHARE = 0.5  # one array of samples may take at most half the machine's memory
CONNECT_TIMEOUT_S = 5  # a database server that does not answer in 5 s is not there
HTTP_TIMEOUT_S = 5  # one request to the MLflow server; MLflow itself would retry for minutes
SQL_SCHEMES = ("postgresql", "mysql", "mariadb", "mssql", "oracle")  # MLflow's database stores
URL_EXAMPLES = "e.g. sqlite:///runs/x/optuna.db or postgresql+psycopg2://user@host:5432/db"
TRACKING_EXAMPLES = ("sqlite:///path/mlflow.db, file:///path/mlruns, http://host:5000 or a "
                     "database URL")


# ----------------------------------------------------------------------------- the machine

def machine_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_problem(nbytes: int) -> str | None:
    """Why an array of `nbytes` cannot be held (more than MEMORY_SHARE of RAM), or None."""
    ram = machine_memory_bytes()
    if ram is None or nbytes <= ram * MEMORY_SHARE:
        return None
    return (f"{format_bytes(nbytes)}, more than {MEMORY_SHARE:.0%} of this machine's memory "
            f"({format_bytes(ram)})")


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # not reached


# ----------------------------------------------------------------------------- folders

def folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be (created and) written as a folder, or None when it can.

    Creates nothing: the nearest existing folder is probed with an unnamed temporary file
    (os.access says yes to root on a read-only filesystem, so it is not asked).
    """
    path = Path(path).expanduser().absolute()
    probe = path
    try:
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            return (f"{path} is a file, not a folder" if probe == path else
                    f"{probe} is a file, so {path} cannot be created below it")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        where = "write in" if probe == path else f"create {path}: cannot write in"
        return f"cannot {where} {probe} ({exc.strerror or exc})"
    return None


def _file_problem(path: Path) -> str | None:
    """Why a database file at `path` cannot be created or written, or None."""
    path = path.expanduser().absolute()
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else f"{path} is not writable"
    return folder_problem(path.parent)


# ----------------------------------------------------------------------------- URL shapes

def _sql_url(url: str) -> Any:
    """The parsed sqlalchemy URL, its dialect and driver importable; ValueError saying why not."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(f"not a database URL ({URL_EXAMPLES})") from None
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ValueError(f"unknown database scheme {parsed.drivername!r} ({URL_EXAMPLES})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ValueError(f"the driver of {parsed.drivername!r} is not installed ({exc}); name "
                         "an installed one, e.g. postgresql+psycopg2://") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("an in-memory sqlite database keeps nothing; give a file, "
                         "sqlite:///path/optuna.db")
    return parsed


def storage_url_problem(url: str) -> str | None:
    """What is wrong with an Optuna storage URL's shape (no connection is made), or None."""
    try:
        _sql_url(url)
    except ValueError as exc:
        return str(exc)
    return None


def _tracking_kind(uri: str) -> str:
    """"sql", "file" or "http" for a tracking URI MLflow can use; ValueError otherwise."""
    scheme = urlparse(uri).scheme.lower() if "://" in uri or uri.startswith("file:") else ""
    if scheme in ("http", "https"):
        if not urlparse(uri).hostname:
            raise ValueError(f"no host in {uri!r} (e.g. http://127.0.0.1:5000)")
        return "http"
    if scheme == "file":
        return "file"
    if scheme.split("+")[0] in ("sqlite", *SQL_SCHEMES):
        _sql_url(uri)
        return "sql"
    if not scheme and ":" not in uri and uri.strip():
        return "file"  # a plain folder path: MLflow's file store
    raise ValueError(f"not a tracking URI MLflow can use (use {TRACKING_EXAMPLES})")


def tracking_uri_problem(uri: str) -> str | None:
    """What is wrong with an MLflow tracking URI's shape (nothing is contacted), or None."""
    try:
        _tracking_kind(uri)
    except ValueError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------------- reachability

def _sql_problem(url: str) -> str | None:
    """None when the database at `url` can be opened; else why not (one line)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    parsed = _sql_url(url)
    if parsed.get_backend_name() == "sqlite":  # connecting would create the file: look instead
        return _file_problem(Path(parsed.database))
    timeout = ({"connect_timeout": CONNECT_TIMEOUT_S}
               if parsed.get_backend_name() in ("postgresql", "mysql", "mariadb") else {})
    engine = sqlalchemy.create_engine(parsed, connect_args=timeout, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return f"cannot connect to {parsed.render_as_string(hide_password=True)} ({reason})"
    finally:
        engine.dispose()
    return None


def _http_problem(uri: str) -> str | None:
    """None when an MLflow server answers GET /health at `uri`; else why not."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HTTP_TIMEOUT_S).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # a server that wants credentials: MLflow sends them
            return None
        return f"no MLflow server at {uri} (GET /health gave HTTP {exc.code})"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return f"no server answers at {uri} within {HTTP_TIMEOUT_S} s ({reason})"
    return None


def _tracking_problem(uri: str) -> str | None:
    try:
        kind = _tracking_kind(uri)
    except ValueError as exc:
        return str(exc)
    if kind == "http":
        return _http_problem(uri)
    if kind == "sql":
        return _sql_problem(uri)
    parsed = urlparse(uri)
    return folder_problem(url2pathname(parsed.path) if parsed.scheme else uri)


def check_run(suite: _SuiteStores) -> None:
    """Before `run` writes anything: output folder, Optuna storage and MLflow store usable.

    UserInputError naming the suite field for the first that is not."""
    checks = (("output_dir", lambda: folder_problem(suite.resolved_output_dir())),
              ("storage", lambda: _storage_problem(suite.resolved_storage())),
              ("tracking_uri", lambda: _tracking_problem(suite.resolved_tracking_uri())))
    for field, check in checks:
        problem = check()
        if problem is not None:
            raise UserInputError(f"{field}: {problem}")


def _storage_problem(url: str) -> str | None:
    try:
        return _sql_problem(url)
    except ValueError as exc:
        return str(exc)


# ----------------------------------------------------------------------------- report

def check_report(source: str, out_dir: str | None) -> None:
    """Before `report` reads or writes: --out can be a folder, a run's suite.json is JSON."""
    if out_dir is not None:
        problem = folder_problem(out_dir)
        if problem is not None:
            raise UserInputError(f"--out: {problem}")
    record = Path(source) / "suite.json"
    if Path(source).is_dir() and record.is_file():
        try:
            json.loads(record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserInputError(f"{record}: not a readable suite record ({exc}); restore it, or "
                                 "report from the suite's YAML file instead") from None
