"""The suite schema as a JSON Schema, for editors (`gan-bench schema` writes
suites/suite.schema.json; each suite's first line `# yaml-language-server: $schema=...` points
YAML editors at it, so they complete and check fields while one types).

Generated from the pydantic models (`Suite.model_json_schema()`); each field's description is
its source comment, the one-line reason for its default that the models carry (STYLE.md 4), so
the file says what the code says. What JSON Schema cannot express (a name against a registry,
metrics against the dataset, memory) stays `gan-bench validate`'s job.
"""

from __future__ import annotations

import inspect
import io
import json
import tokenize
from typing import Any

from pydantic import BaseModel

__all__ = ["suite_json_schema", "schema_text", "SCHEMA_FILE", "MODELINE"]

SCHEMA_FILE = "suite.schema.json"  # under suites/
MODELINE = "# yaml-language-server: $schema=suite.schema.json"  # first line of each suite there


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """{field name: its trailing `# comment`} from the class body's source."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    last_name: str | None = None
    line_of_name = -1
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and last_name is None:
            last_name, line_of_name = tok.string, tok.start[0]
        elif tok.type == tokenize.COMMENT and last_name and tok.start[0] == line_of_name:
            comments[last_name] = tok.string.lstrip("#").strip()
        if tok.type in (tokenize.NEWLINE, tokenize.NL):
            last_name = None
    return {k: v for k, v in comments.items() if k in model.model_fields}


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from `root`'s fields, by class name ($defs keys)."""
    found: dict[str, type[BaseModel]] = {}
    todo = [root]
    while todo:
        model = todo.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for field in model.model_fields.values():
            for arg in _types(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    todo.append(arg)
    return found


def _types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *[t for a in args for t in _types(a)]]


def _describe(schema: dict[str, Any], model: type[BaseModel]) -> None:
    comments = _field_comments(model)
    for name, prop in schema.get("properties", {}).items():
        if name in comments and "description" not in prop:
            prop["description"] = comments[name]


def _any_of(node: Any) -> Any:
    """pydantic writes a searched parameter (a range, a list of choices or one fixed value) as
    `oneOf` with an open `{}` for the value, which every range also matches: a JSON Schema
    validator then rejects every range. `anyOf` says what the models accept."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_any_of(v) for v in node]
    return node


def suite_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a suite file, with field descriptions."""
    from gan_bench.config.schema import Suite

    schema = _any_of(Suite.model_json_schema())
    models = _models(Suite)
    _describe(schema, Suite)
    for name, sub in schema.get("$defs", {}).items():
        if name in models:
            _describe(sub, models[name])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "gan-bench suite",
            "description": "A gan-bench suite file (gan-bench validate checks what a schema "
                           "cannot: registry names, metrics against the dataset, memory).",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def schema_text() -> str:
    """The file's text: sorted keys, 1-space indent, a final newline (stable under git)."""
    return json.dumps(suite_json_schema(), indent=1, sort_keys=True) + "\n"
