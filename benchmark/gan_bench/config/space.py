"""Numbers in a suite and the search space: each searched parameter a fixed number, a range
{low, high, log} or {choices: [...]}, with its bounds (`_check_param`). The base model of every
suite section (`_Model`: unknown keys are errors, values frozen) is here too."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gan_bench.config.errors import _got
from gan_bench.train.config import TrainConfig

__all__ = ["Range", "Choices", "SearchSpace", "INT_PARAMS"]

INT_PARAMS = ("k", "batch_size")  # searched as ints (suggest_int); every other parameter is a float


class _NotFinite(ValueError):
    """A number that is not usable as one: inf, nan, or an int past 64 bits."""


def _finite(value: int | float) -> int | float:
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        raise _NotFinite(f"must fit in 64 bits (got {_got(value)})")
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotFinite(f"must be a finite number (got {_got(value)})")
    return value


def _number(value: Any) -> int | float:
    """A finite int or float; numeric strings (YAML reads `1e-5` as a string) are converted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(value)
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return _finite(convert(value))
            except _NotFinite:
                raise
            except ValueError:
                pass
    raise ValueError(f"must be a number (got {_got(value)})")


def _fixed(value: Any) -> int | float:
    try:
        return _number(value)
    except _NotFinite:
        raise
    except ValueError:
        raise ValueError("must be a number, a range {low: .., high: .., log: false} or "
                         f"{{choices: [...]}} (got {_got(value)})") from None


Number = Annotated[int | float, PlainValidator(_number)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(_Model):
    """A searched interval [low, high]: ints for k and batch_size, floats otherwise."""

    low: Number
    high: Number
    log: bool = False  # linear unless asked: a log scale needs low > 0 (learning rates use it)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got low {self.low})")
        return self

    def values(self) -> list[int | float]:
        return [self.low, self.high]


class Choices(_Model):
    """A searched categorical parameter: one of `choices`."""

    choices: list[Number] = Field(min_length=1)  # no default: an empty list searches nothing

    def values(self) -> list[int | float]:
        return list(self.choices)


Fixed = Annotated[int | float, PlainValidator(_fixed)]
_TAGS = {"Range": Range, "Choices": Choices, "Fixed": None}  # tags appear in pydantic locs


def _param_tag(value: object) -> str:
    if isinstance(value, (Range, Choices)):
        return type(value).__name__
    if isinstance(value, dict):
        return "Choices" if "choices" in value else "Range"
    return "Fixed"


Param = Annotated[Annotated[Range, Tag("Range")] | Annotated[Choices, Tag("Choices")]
                  | Annotated[Fixed, Tag("Fixed")], Discriminator(_param_tag)]
Searched = Range | Choices


def _check_param(name: str, param: Any) -> None:
    """Per-parameter bounds: ints >= 1 for k and batch_size, (0, inf) for rates, Adam's betas."""
    values = param.values() if isinstance(param, (Range, Choices)) else [param]
    if name in INT_PARAMS and not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"must be integers >= 1 (got {values})")
    if name.startswith("lr") and not all(v > 0 for v in values):
        raise ValueError(f"learning rates and their ratio must be > 0 (got {values})")
    # A range may end at 1 (Lucic 2018: beta1 ~ U[0, 1]); samplers do not return high itself.
    ok = (lambda v: 0 <= v <= 1) if isinstance(param, Range) else (lambda v: 0 <= v < 1)
    if name.startswith("beta") and not all(ok(v) for v in values):
        raise ValueError(f"Adam's betas must lie in [0, 1) (got {values})")


def _as_float(param: Any) -> Any:
    """The same parameter with float values (`lr_ratio: 1` is the float 1.0)."""
    if isinstance(param, Range):
        return param.model_copy(update={"low": float(param.low), "high": float(param.high)})
    if isinstance(param, Choices):
        return param.model_copy(update={"choices": [float(v) for v in param.choices]})
    return float(param)


class SearchSpace(_Model):
    """What the study searches: each parameter a fixed number, a range or a list of choices.
    beta1, beta2 and batch_size default to TrainConfig's values (train/config.py gives the
    reasons); an unstated one ranks below a preset's value (gan_bench.config.resolve)."""

    lr_g: Param = Range(low=1e-5, high=1e-3, log=True)  # searched: the best lr differs per GAN
    lr_ratio: Param = Range(low=0.1, high=10.0, log=True)  # TTUR: D faster or slower than G
    k: Param = Range(low=1, high=5)  # D steps per G step (Goodfellow's k; WGAN used 5)
    beta1: Param = TrainConfig.beta1
    beta2: Param = TrainConfig.beta2
    batch_size: Param = TrainConfig.batch_size

    @field_validator("*")
    @classmethod
    def _bounds(cls, value: Any, info: ValidationInfo) -> Any:
        _check_param(str(info.field_name), value)
        return value if info.field_name in INT_PARAMS else _as_float(value)

    def searched(self) -> dict[str, Searched]:
        """Parameters the sampler draws, by name."""
        return {n: v for n, v in self._params().items() if isinstance(v, (Range, Choices))}

    def fixed(self) -> dict[str, int | float]:
        """Parameters held at one value, by name."""
        return {n: v for n, v in self._params().items() if not isinstance(v, (Range, Choices))}

    def stated(self) -> set[str]:
        """Parameters the suite file gives explicitly (not left at their defaults)."""
        return set(self.model_fields_set)

    def _params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}
