"""The stores of a suite: where they are by default, how a URL names a file, and what a store's
failure looks like, in one line (a lost database connection or a full disk).

Defaults: a suite without `storage` / `tracking_uri` keeps both in its output folder, as
`sqlite:///<abs output_dir>/optuna.db` and `.../mlflow.db` (absolute, so the store does not
follow the working folder); every module asks here (`storage_url(suite)`, `tracking_uri(suite)`).

Such a failure arrives from deep inside SQLAlchemy, Optuna or MLflow, often wrapped two or three
times (Optuna's StorageInternalError around SQLAlchemy's OperationalError around psycopg2's),
and used to end `run` with a 1,600-line traceback. `store_failure_line` reads the exception's
chain and says which store failed and what to do, or None for anything else (a bug stays a
traceback). An MLflow call fails as tracking.TrackingError, so a failure with one in its chain
is the tracking store's; any other database failure is the Optuna storage's.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.request import pathname2url, url2pathname

if TYPE_CHECKING:
    from typing import Protocol

    class _SuiteStores(Protocol):
        """What these functions read of a config.Suite (config imports this module, so this
        module does not import it)."""

        @property
        def storage(self) -> str | None: ...

        @property
        def tracking_uri(self) -> str | None: ...

        def resolved_output_dir(self) -> Path: ...

__all__ = ["store_failure_line", "redact", "sqlite_path", "default_storage_url",
           "default_tracking_uri", "storage_url", "tracking_uri", "OPTUNA_DB", "MLFLOW_DB",
           "DISK_FULL", "CONNECTION_LOST"]

OPTUNA_DB, MLFLOW_DB = "optuna.db", "mlflow.db"  # the default stores' file names in output_dir
DISK_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
CONNECTION_LOST = (
    "server closed the connection", "connection refused", "could not connect",
    "connection to server", "terminating connection", "connection reset", "broken pipe",
    "ssl syscall error", "lost connection", "connection timed out", "can't connect",
    "max retries exceeded", "connection aborted", "remote end closed connection",
    "connection already closed", "eof detected", "no route to host",
)


def default_storage_url(output_dir: os.PathLike[str] | str) -> str:
    """`sqlite:////abs/output_dir/optuna.db`."""
    return "sqlite:///" + pathname2url(str((Path(output_dir) / OPTUNA_DB).resolve()))


def default_tracking_uri(output_dir: os.PathLike[str] | str) -> str:
    """`sqlite:////abs/output_dir/mlflow.db`."""
    return "sqlite:///" + pathname2url(str((Path(output_dir) / MLFLOW_DB).resolve()))


def storage_url(suite: _SuiteStores, output_dir: os.PathLike[str] | str | None = None) -> str:
    """The suite's Optuna storage: its `storage`, else the default in `output_dir` (the suite's
    own output folder unless given: a moved run folder reports from where it is)."""
    return suite.storage or default_storage_url(output_dir or suite.resolved_output_dir())


def tracking_uri(suite: _SuiteStores, output_dir: os.PathLike[str] | str | None = None) -> str:
    """The suite's MLflow tracking URI: its `tracking_uri`, else the default in `output_dir`."""
    return suite.tracking_uri or default_tracking_uri(output_dir or suite.resolved_output_dir())


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///path` URL; None for any other store (or in-memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(url2pathname(path)) if path and path != ":memory:" else None


def redact(url: str) -> str:
    """A store URL without its password (URLs go into messages and tags)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int]
    out: list[BaseException]
    todo: list[BaseException | None]
    seen, out, todo = set(), [], [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
    return out


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    return (text.split(" (Background on this error")[0] or type(exc).__name__)[:200]


def store_failure_line(exc: BaseException, storage_url: str, tracking_uri: str,
                       out: Path) -> str | None:
    """One line for a store failure in `exc`'s chain, or None."""
    chain = _chain(exc)
    for e in chain:
        message = str(e).lower()
        if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) \
                or any(s in message for s in DISK_FULL):
            return (f"{out}: the disk is full ({_first_line(e)}); what was recorded is intact: "
                    "free some space (or use another output_dir), then run the same command "
                    "again to resume")
    lost = next((e for e in chain if _is_connection_loss(e)), None)
    if lost is None:
        return None
    tracking = any(type(e).__name__ == "TrackingError" for e in chain)
    url, label = (tracking_uri, "MLflow tracking store") if tracking else \
        (storage_url, "Optuna storage")
    return (f"{redact(url)}: lost the connection to the {label} ({_first_line(lost)}); what was "
            "recorded is intact: run the same command again to resume once it answers")


def _is_connection_loss(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = str(exc).lower()
    if names & {"DisconnectionError", "InterfaceError", "ConnectionError"}:
        return True
    if names & {"OperationalError", "StorageInternalError", "TrackingError", "MlflowException"}:
        return any(s in message for s in CONNECTION_LOST)
    return isinstance(exc, (ConnectionError, TimeoutError))
