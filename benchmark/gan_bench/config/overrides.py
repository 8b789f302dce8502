"""`--set key.path=value` overrides, applied to a suite's raw mapping before it is validated;
each value is read as YAML."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import yaml

from gan_bench.config.errors import SuiteError, _got
from gan_bench.config.messages import _path
from gan_bench.config.safe_yaml import _safe_load, _yaml_reason

__all__ = ["apply_overrides"]

_KEY_PATH = re.compile(r"[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*")
_KEY_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def _parse_override(text: str) -> tuple[list[str | int], Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATH.fullmatch(key):
        raise ValueError("expected key.path=value, e.g. budget.trials=2 or gans[0].train.k=3")
    parts = [m[1] if m[1] else int(m[2]) for m in _KEY_PART.finditer(key)]
    try:
        return parts, _safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"value is not valid YAML ({_yaml_reason(exc)})") from None


def _set(data: dict[str, Any], parts: list[str | int], value: Any) -> None:
    """data[parts[0]][parts[1]]... = value; missing mappings on the way are created."""
    node: Any = data
    for i, part in enumerate(parts):
        where = _path(parts[:i]) or "the suite"
        if isinstance(part, int) and not isinstance(node, list):
            raise ValueError(f"{where} is not a list")
        if isinstance(part, int) and part >= len(node):
            raise ValueError(f"{where} has {len(node)} entries, no index {part}")
        if isinstance(part, str) and not isinstance(node, dict):
            raise ValueError(f"{where} is not a mapping (got {_got(node)})")
        if i == len(parts) - 1:
            node[part] = value
        elif isinstance(part, str) and node.get(part) is None and isinstance(parts[i + 1], str):
            node[part] = {}
        node = node[part] if isinstance(part, int) else node.get(part)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `key.path=value` applied (value read as YAML)."""
    data, problems = copy.deepcopy(data), []
    for text in overrides:
        try:
            _set(data, *_parse_override(text))
        except ValueError as exc:
            problems.append(f"--set {text}: {exc}")
    if problems:
        raise SuiteError(problems)
    return data
