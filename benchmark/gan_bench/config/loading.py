"""Reading a suite: `load_suite` reads a file (gan_bench.config.safe_yaml), `parse_suite` applies
the `--set` overrides to the mapping, validates it (schema, then the whole-suite checks) and
raises `SuiteError` with one line per problem."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gan_bench.config.checks import _cross_problems
from gan_bench.config.errors import SuiteError, _got, _unique
from gan_bench.config.messages import _path, _problem
from gan_bench.config.overrides import apply_overrides
from gan_bench.config.safe_yaml import _safe_load, _yaml_reason
from gan_bench.config.schema import Suite

__all__ = ["load_suite", "parse_suite"]


def parse_suite(data: Any, source: str = "<suite>", overrides: Sequence[str] = ()) -> Suite:
    """Validate a suite mapping (after `overrides`); SuiteError lists every problem found."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _got(data)
        raise SuiteError([f"{source}: the top level must be a mapping of keys (got {got})"], source)
    data = apply_overrides(_stores_from_env(data), overrides)
    text = _text_problems(data)
    if text:  # before anything else reads a value that cannot be written anywhere
        raise SuiteError(text, source)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(_unique([_problem(e) for e in exc.errors()]), source) from None
    problems = _unique(_cross_problems(suite))
    if problems:
        raise SuiteError(problems, source)
    return suite


# A deployment's shared stores, for a suite that names none (docker/compose.yaml sets them; the
# URLs may hold passwords, so they come from the environment rather than a command line).
STORE_ENV = {"storage": "GAN_BENCH_STORAGE", "tracking_uri": "GAN_BENCH_TRACKING_URI"}


def _stores_from_env(data: dict[str, Any]) -> dict[str, Any]:
    """`storage` / `tracking_uri` from GAN_BENCH_STORAGE / GAN_BENCH_TRACKING_URI where the
    suite file leaves them out (the file wins; `--set` wins over both)."""
    found = {key: os.environ[env] for key, env in STORE_ENV.items()
             if os.environ.get(env) and data.get(key) is None}
    return {**data, **found} if found else data


def _text_problems(node: object, loc: tuple[Any, ...] = ()) -> list[str]:
    """Strings that are not text: a YAML escape such as "\\uD800" yields a lone surrogate,
    which no file, JSON record or database column can store (run would fail after creating
    its stores). Keys and values, at any depth."""
    def bad(text: str) -> bool:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    problems = []
    if isinstance(node, str) and bad(node):
        problems.append(f"{_path(loc)}: contains a lone surrogate ({_got(node)}), which is not "
                        "text that can be stored; remove the \\uD8xx-\\uDFxx escape")
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and bad(key):
                problems.append(f"{_path(loc) if loc else '<top level>'}: a key contains a lone "
                                f"surrogate ({_got(key)}), which is not text that can be stored")
                continue
            problems += _text_problems(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += _text_problems(value, (*loc, i))
    return problems


def load_suite(path: str | Path, overrides: Sequence[str] = ()) -> Suite:
    """Read a suite YAML file (safe_load only), apply `--set` overrides and validate it."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([f"{source}: file not found"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{source}: cannot read ({exc})"], source) from None
    try:
        data = _safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError([f"{source}: not valid YAML ({_yaml_reason(exc)})"], source) from None
    return parse_suite(data, source, overrides)
