"""A suite's problems: `SuiteError` holds one line per problem, each naming its YAML path; the
helpers here are the phrasing that every other module of gan_bench.config shares."""

from __future__ import annotations

from collections.abc import Sequence

from gan_bench.errors import UserInputError

__all__ = ["SuiteError"]


class SuiteError(UserInputError):
    """A suite that cannot be used; `problems` holds one line per problem, each with its path."""

    def __init__(self, problems: Sequence[str], source: str = "<suite>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(self.problems))


class _KeyProblem(ValueError):
    """Raised inside a validator of a mapping field: the problem is at `field.key`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _got(value: object) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(lines: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(lines))
