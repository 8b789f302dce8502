"""Error types. `UserInputError` is the one the CLI turns into a single line and exit code 2."""

from __future__ import annotations


class GanBenchError(Exception):
    """Base class of gan-bench's own errors."""


class UserInputError(GanBenchError):
    """Bad input from the user (a name, a file, a suite field): one line, exit code 2."""


class UnknownNameError(UserInputError, LookupError):
    """A registry lookup of a name that is not registered; the message lists the known names."""


class DataUnavailableError(UserInputError):
    """No source could supply a dataset; the message names each source tried and how to fix it."""


class IntegrityError(GanBenchError):
    """A downloaded or cached file does not have the pinned sha256: it is refused, never used."""


class TrialTaken(GanBenchError):
    """This process's trial is no longer RUNNING in the Optuna storage: another worker judged
    its owner dead, failed it and queued its parameters again. The trial's result is no longer
    this process's to tell; it stops the trial and moves on (never a crash)."""


class StoreFailure(GanBenchError):
    """A store stopped working under a running command (a lost database connection, a full
    disk). One line naming the store; what was recorded is intact, and running the same command
    again resumes. Exit code 1 (2 is for bad input)."""
