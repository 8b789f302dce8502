"""What a store's failure looks like, in one line: a lost database connection or a full disk.

Such a failure arrives from deep inside SQLAlchemy, Optuna or MLflow, often wrapped two or three
times (Optuna's StorageInternalError around SQLAlchemy's OperationalError around psycopg2's),
and used to end `run` with a 1,600-line traceback. `store_failure_line` reads the exception's
chain and says which store failed and what to do, or None for anything else (a bug stays a
traceback). An MLflow call fails as tracking.TrackingError, so a failure with one in its chain
is the tracking store's; any other database failure is the Optuna storage's.
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["store_failure_line", "redact", "DISK_FULL", "CONNECTION_LOST"]

DISK_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
CONNECTION_LOST = (
    "server closed the connection", "connection refused", "could not connect",
    "connection to server", "terminating connection", "connection reset", "broken pipe",
    "ssl syscall error", "lost connection", "connection timed out", "can't connect",
    "max retries exceeded", "connection aborted", "remote end closed connection",
    "connection already closed", "eof detected", "no route to host",
)


def redact(url: str) -> str:
    """A store URL without its password (URLs go into messages and tags)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


def _chain(exc: BaseException) -> list[BaseException]:
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
