"""Your own GAN in a benchmark, without forking gan-bench: plugins and references.

Two ways, one contract (each component's documented base; the example package under
`benchmark/examples/my_gan/` uses both):

- a plugin: an installed package with an entry point in the group `gan_bench.plugins`, e.g. in
  its pyproject `[project.entry-points."gan_bench.plugins"] my_gan = "my_gan.plugin"`. Loading
  the entry point (a module, or a callable that is then called) registers its entries with the
  registries' own functions (`gan_bench.models.base.register_architecture`,
  `gan_bench.registry.LOSSES.register`, `PENALTIES.register`); `gan-bench list` shows them with
  their source. A suite then names them like built-ins (`arch: my_mlp`).
- a reference: a suite names `package.module:callable` as its `arch`, `loss` or `penalty`; the
  module must be importable (installed, or on PYTHONPATH). An architecture reference is a builder
  `(data_shape, ArchOptions) -> (Generator, Discriminator)` (gan_bench.models.base); a loss a
  `GanLoss` or a function `(real_logits, fake_logits) -> LossOutput` (gan_bench.losses); a
  penalty a `Penalty` instance or class (gan_bench.penalties).

Either way the component is probed at `validate` (`probe_problems`): G and D built on the
suite's data shape, G's samples and D's logits of the documented shapes, a loss's two scalars
finite, a penalty's scalar: a wrong signature or shape is one line naming the field, before
anything trains. A plugin that cannot be imported is one line naming it, exit 2.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import types
from typing import TYPE_CHECKING, Any

import torch

from gan_bench.errors import UserInputError
from gan_bench.registry import ARCHITECTURES, LOSSES, PENALTIES, Registry, registering_from

if TYPE_CHECKING:
    from gan_bench.train.config import GanSpec

__all__ = ["PLUGIN_GROUP", "load_plugins", "is_reference", "resolve_reference", "short_name",
           "probe_problems"]

PLUGIN_GROUP = "gan_bench.plugins"


def load_plugins() -> None:
    """Load every installed plugin once (the registries call this after their built-ins)."""
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        dist = getattr(ep, "dist", None)
        source = f"plugin {dist.name if dist else ep.name} ({ep.value})"
        with registering_from(source):
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, types.ModuleType):
                    obj()
            except UserInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - someone else's code: one line, exit 2
                raise UserInputError(f"plugin {ep.name!r} ({ep.value}, entry point group "
                                     f"{PLUGIN_GROUP}) cannot be loaded: {type(exc).__name__}: "
                                     f"{_first_line(exc)}") from None


def is_reference(name: str) -> bool:
    """`package.module:callable` (a suite's own component) rather than a registry name."""
    return ":" in name


def short_name(name: str) -> str:
    """The callable's name of a reference (for GAN names), the name itself otherwise."""
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if is_reference(name) else name


def resolve_reference(registry: Registry[Any], name: str) -> str:
    """Register the component a `package.module:callable` reference names in `registry` (once
    per process), under the reference itself; ValueError saying why it cannot be used."""
    if name in registry:
        return name
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import of the user's module: one line
        raise ValueError(f"{name}: cannot import {module_name} ({type(exc).__name__}: "
                         f"{_first_line(exc)}); install the package or put it on PYTHONPATH") from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{name}: {module_name} has no {attr!r}")
    source = f"reference {name}"
    with registering_from(source):
        _REGISTER[registry.axis](registry, name, obj)
    return name


def _register_architecture(registry: Registry[Any], name: str, obj: object) -> None:
    from gan_bench.models.base import SHAPE_KINDS, Architecture

    if not callable(obj):
        raise ValueError(f"{name}: an architecture is a builder (data_shape, ArchOptions) -> "
                         f"(Generator, Discriminator), got {type(obj).__name__}")
    supports = tuple(getattr(obj, "supports", tuple(SHAPE_KINDS)))
    arch = Architecture(name, _doc(obj) or name, supports, obj)
    registry.register(name, arch, summary=arch.summary, supports=list(supports), nets=["default"],
                      reference=True)


def _register_loss(registry: Registry[Any], name: str, obj: object) -> None:
    from gan_bench.losses import GanLoss

    if not isinstance(obj, GanLoss):
        if not callable(obj):
            raise ValueError(f"{name}: a loss is a GanLoss or a function (real_logits, "
                             f"fake_logits) -> LossOutput, got {type(obj).__name__}")
        obj = GanLoss(name, obj, needs_real_for_g=bool(getattr(obj, "needs_real_for_g", False)),
                      probabilistic=bool(getattr(obj, "probabilistic", False)))
    registry.register(name, obj, summary=_doc(obj.fn) or name, reference=True, **obj.describe())


def _register_penalty(registry: Registry[Any], name: str, obj: object) -> None:
    from gan_bench.penalties import Penalty

    if isinstance(obj, type) and issubclass(obj, Penalty):
        obj = obj()
    if not isinstance(obj, Penalty):
        raise ValueError(f"{name}: a penalty is a gan_bench.penalties.Penalty (instance or "
                         f"class), got {type(obj).__name__}")
    registry.register(name, obj, summary=getattr(obj, "summary", "") or name, reference=True,
                      **obj.describe())


_REGISTER = {ARCHITECTURES.axis: _register_architecture, LOSSES.axis: _register_loss,
             PENALTIES.axis: _register_penalty}


# ----------------------------------------------------------------------------- the probe

def probe_problems(spec: GanSpec, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """(field, problem) for each component of `spec` (a GanSpec) that breaks its contract on
    samples of `shape`. Built-ins are tested by the test suite and not probed."""
    problems: list[tuple[str, str]] = []
    for field, registry, name, probe in (("arch", ARCHITECTURES, spec.arch, _probe_architecture),
                                         ("loss", LOSSES, spec.loss, _probe_loss),
                                         ("penalty", PENALTIES, spec.penalty, _probe_penalty)):
        if registry.entry(name).meta.get("source", "built-in") == "built-in":
            continue
        try:
            problem = probe(spec, shape)
        except Exception as exc:  # noqa: BLE001 - the user's component raised: say what
            problem = f"raised {type(exc).__name__}: {_first_line(exc)}"
        if problem is not None:
            problems.append((field, f"{name}: {problem}"))
    return problems


def _probe_architecture(spec: GanSpec, shape: tuple[int, ...]) -> str | None:
    from gan_bench.models.base import Discriminator, Generator, build_models

    G, D = build_models(spec.arch, shape, **spec.arch_options)
    if not isinstance(G, Generator) or not isinstance(D, Discriminator):
        return ("the builder must return (Generator, Discriminator) of gan_bench.models.base, "
                f"got ({type(G).__name__}, {type(D).__name__})")
    n = 2 * D.pack
    gen = torch.Generator().manual_seed(0)
    z = G.sample_z(n, generator=gen, device="cpu")
    y = G.sample_y(n, generator=gen, device="cpu") if G.conditional else None
    with torch.no_grad():
        x = G(z, y)
        if tuple(x.shape) != (n, *shape):
            return f"G gives samples of shape {tuple(x.shape)}, the data are (N, {shape})"
        logits = D(x)
    if tuple(logits.reshape(logits.shape[0], -1).shape) != (n // D.pack, 1):
        return f"D gives logits of shape {tuple(logits.shape)} for {n} samples, expected ({n // D.pack},)"
    if not torch.isfinite(x).all() or not torch.isfinite(logits).all():
        return "G's samples or D's logits are not finite on a first batch"
    return None


def _probe_loss(spec: GanSpec, shape: tuple[int, ...]) -> str | None:
    from gan_bench.losses import LossOutput

    gen = torch.Generator().manual_seed(0)
    out = LOSSES.get(spec.loss)(torch.randn(8, generator=gen), torch.randn(8, generator=gen),
                                **spec.loss_params)
    if not isinstance(out, LossOutput):
        return f"returned {type(out).__name__}, not a gan_bench.losses.LossOutput"
    for what in ("d_loss", "g_loss"):
        value = getattr(out, what)
        if not isinstance(value, torch.Tensor) or value.dim() != 0 or not math.isfinite(float(value)):
            return f"its {what} must be a finite scalar tensor, got {value!r}"[:200]
    return None


def _probe_penalty(spec: GanSpec, shape: tuple[int, ...]) -> str | None:
    weight = torch.randn(int(torch.tensor(shape).prod()), generator=torch.Generator().manual_seed(0))

    def critic(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ weight

    real, fake = torch.rand(4, *shape), torch.rand(4, *shape)
    value, parts = PENALTIES.get(spec.penalty).loss(critic, real, fake,
                                                    generator=torch.Generator().manual_seed(0),
                                                    **spec.penalty_params)
    if not isinstance(value, torch.Tensor) or value.dim() != 0 or not math.isfinite(float(value)):
        return f"its value must be a finite scalar tensor, got {value!r}"[:200]
    if not isinstance(parts, dict):
        return f"its parts must be a dict of tensors to log, got {type(parts).__name__}"
    return None


def _doc(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]
