"""pydantic's validation errors, each turned into one line `a.b[2].c: message` that names its
YAML path (`_problem`), with the known keys of the section for an unknown one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from inspect import isclass
from typing import Any, get_args

from pydantic import BaseModel

from gan_bench.config.errors import _got, _KeyProblem
from gan_bench.config.schema import Suite
from gan_bench.config.space import _TAGS


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _TAGS:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def _submodel(annotation: object) -> type[BaseModel] | None:
    if isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model at `loc` (a path into a Suite), for 'unknown key' messages."""
    cls: type[BaseModel] | None = Suite
    for part in loc:
        if cls is None:
            return []
        if isinstance(part, int):
            continue
        if part in _TAGS:
            cls = _TAGS[part]
            continue
        field = cls.model_fields.get(part)
        cls = _submodel(field.annotation) if field is not None else None
    return list(cls.model_fields) if cls is not None else []


_TYPE_PHRASES = {  # pydantic type errors -> what the value must be; "(got ...)" is appended
    "must be an integer": ("int_parsing", "int_type", "int_from_float"),
    "must be a number": ("float_parsing", "float_type"),
    "must be true or false": ("bool_parsing", "bool_type"),
    "must be a string": ("string_type",),
    "must be a list": ("list_type",),
    "must be a mapping": ("dict_type", "model_type", "model_attributes_type"),
}

def _typed(phrase: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda e: f"{phrase} (got {_got(e['input'])})"


_MESSAGES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda e: "required",
    "greater_than_equal": lambda e: f"must be >= {e['ctx']['ge']} (got {_got(e['input'])})",
    "greater_than": lambda e: f"must be > {e['ctx']['gt']} (got {_got(e['input'])})",
    "literal_error": lambda e: f"must be one of {e['ctx']['expected']} (got {_got(e['input'])})",
    "string_pattern_mismatch":
        lambda e: f"must match {e['ctx']['pattern']} (got {_got(e['input'])})",
    "too_short": lambda e: f"must have at least {e['ctx']['min_length']} item(s)",
    "less_than": lambda e: f"must be < {e['ctx']['lt']} (got {_got(e['input'])})",
    "less_than_equal": lambda e: f"must be <= {e['ctx']['le']} (got {_got(e['input'])})",
    "finite_number": lambda e: f"must be a finite number (got {_got(e['input'])})",
    **{kind: _typed(phrase) for phrase, kinds in _TYPE_PHRASES.items() for kind in kinds},
}


def _problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as `a.b[2].c: message`."""
    loc, cause = list(error["loc"]), error.get("ctx", {}).get("error")
    if isinstance(cause, _KeyProblem):
        loc.append(cause.key)
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return f"{_path(loc)}: unknown key" + (f" (known: {', '.join(known)})" if known else "")
    if cause is not None:
        return f"{_path(loc)}: {cause}"
    message = _MESSAGES.get(error["type"])
    text = message(error) if message else error["msg"][:1].lower() + error["msg"][1:]
    return f"{_path(loc)}: {text}"
