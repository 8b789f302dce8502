"""The architecture contract: options, the two base networks, and the registered builder.

An architecture turns one sample's shape and an `ArchOptions` into a (Generator, Discriminator)
pair. G maps a latent batch (N, nz) (plus int64 labels (N,) when conditional) to samples of that
shape: images (N, C, H, W) float in [-1, 1], or points (N, 2) unbounded. D maps a batch of the
same shape to N // pack float logits. Families live one per file (mlp.py, toy_mlp.py, dcgan.py,
infogan.py), each opening with the paper it follows, and register an `Architecture` in
`gan_bench.registry.ARCHITECTURES` (the builder pattern of torchvision's `get_model`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from gan_bench.errors import UserInputError
from gan_bench.models.options import concat_labels, pack_input
from gan_bench.registry import ARCHITECTURES

__all__ = [
    "ModelConfigError", "ArchOptions", "Generator", "Discriminator", "Architecture",
    "build_models", "register_architecture", "data_kind", "require_batch_norm_g", "SHAPE_KINDS",
    "LATENTS", "SIZES",
]

LATENTS = ("normal", "uniform")  # N(0, 1) or U(-1, 1)
SIZES = ("full", "small", "tiny")
SHAPE_KINDS = {  # data-shape kind -> what it means, for messages
    "images28": "images28 (C, 28, 28)",
    "images32": "images32 (C, 32, 32)",
    "points": "points (2,)",
}


class ModelConfigError(UserInputError, ValueError):
    """An unknown or invalid architecture option, or a data shape the architecture cannot take."""


@dataclass(frozen=True)
class ArchOptions:
    """Architecture options; the defaults give each family's plain baseline from its paper."""

    spectral_norm: bool = False  # off: SN (Miyato 2018) on every D weight layer is a remedy to test
    minibatch_std: bool = False  # off: Karras 2018 minibatch stddev feature is a remedy under test
    minibatch_disc: bool = False  # off: Salimans 2016 minibatch discrimination (B 100, C 5) in D's head
    pack: int = 1  # 1: no packing; PacGAN (Lin 2018) D sees `pack` samples, gives N // pack logits
    conditional: bool = False  # off: the suite compares unconditional GANs; AC-GAN is opt-in
    n_classes: int = 10  # 10: MNIST, Fashion-MNIST and CIFAR-10 all have ten classes
    nz: int | None = None  # None: the paper's latent size (mlp, dcgan 100; infogan 64; toy_mlp 2)
    batch_norm_d: bool | None = None  # None: family default (infogan/dcgan True); Lucic searched it
    batch_norm_g: bool | None = None  # None: family default (mlp True as in PyTorch-GAN; dcgan/infogan always True)
    size: str = "full"  # "full": paper sizes; "small": CPU quickstart nets (each family says how small); "tiny": CPU tests only
    nets: str = "default"  # "default": the family's own nets; others (toy_mlp "pacgan") are a paper's nets, per family

    def __post_init__(self) -> None:
        for name in ("spectral_norm", "minibatch_std", "minibatch_disc", "conditional"):
            if not isinstance(getattr(self, name), bool):
                raise ModelConfigError(f"architecture option {name} must be true or false, "
                                       f"got {getattr(self, name)!r}")
        _check_int("pack", self.pack, 1)
        _check_int("n_classes", self.n_classes, 2)
        if self.nz is not None:
            _check_int("nz", self.nz, 1)
        for name in ("batch_norm_d", "batch_norm_g"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ModelConfigError(f"{name} must be true, false or null, got {value!r}")
        if self.size not in SIZES:
            raise ModelConfigError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        if not isinstance(self.nets, str) or not self.nets:
            raise ModelConfigError(f"architecture option nets must be a name such as 'default', "
                                   f"got {self.nets!r}")
        if self.pack > 1 and self.conditional:
            raise ModelConfigError("pack and conditional cannot be combined (AC-GAN's auxiliary "
                                   "classifier needs one label per D input)")

    @classmethod
    def from_kwargs(cls, base: ArchOptions | None = None, /, **kw: Any) -> ArchOptions:
        """`base` (or the defaults) with the fields in `kw` replaced; unknown names are errors."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(kw) - set(known))
        if unknown:
            raise ModelConfigError(
                f"unknown architecture option(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(known)})")
        return replace(base or cls(), **kw)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelConfigError(
            f"architecture option {name} must be an integer >= {low}, got {value!r}")


def require_batch_norm_g(opts: ArchOptions, arch: str) -> None:
    """Families whose G always batch-norms (dcgan, infogan) reject batch_norm_g: false."""
    if opts.batch_norm_g is False:
        raise ModelConfigError(f"{arch}'s generator always uses BatchNorm (its paper's net): "
                               "batch_norm_g must be unset or true")


def data_kind(shape: Sequence[int]) -> str | None:
    """'images28' for (C, 28, 28), 'images32' for (C, 32, 32), 'points' for (2,); None otherwise."""
    shape = tuple(shape)
    if shape == (2,):
        return "points"
    if len(shape) == 3 and shape[0] >= 1 and shape[1] == shape[2] and shape[1] in (28, 32):
        return f"images{shape[1]}"
    return None


class Generator(nn.Module, ABC):
    """Maps a latent batch (and labels, when conditional) to samples of `out_shape`.

    Subclasses implement `decode`; `forward` checks the latent and appends one-hot labels.
    """

    def __init__(self, nz: int, out_shape: Sequence[int], *, latent: str = "normal",
                 n_classes: int | None = None) -> None:
        super().__init__()
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
        self.nz = nz
        self.latent = latent  # "normal": N(0, 1); "uniform": U(-1, 1)
        self.out_shape = tuple(out_shape)
        self.n_classes = n_classes  # None for an unconditional G

    @property
    def conditional(self) -> bool:
        return self.n_classes is not None

    @property
    def in_features(self) -> int:
        """Width of what `decode` receives: nz, plus n_classes one-hot entries when conditional."""
        return self.nz + (self.n_classes or 0)

    def _device(self, generator: torch.Generator | None, device: torch.device | str | None
                ) -> torch.device:
        if device is not None:
            return torch.device(device)
        if generator is not None:
            return generator.device
        return next(self.parameters()).device

    def sample_z(self, n: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
        """(n, nz) float32 latents, N(0, 1) or U(-1, 1) per `latent`; on `device`, else the
        torch.Generator's device, else this module's device."""
        dev = self._device(generator, device)
        if self.latent == "normal":
            return torch.randn(n, self.nz, generator=generator, device=dev)
        return torch.rand(n, self.nz, generator=generator, device=dev).mul_(2.0).sub_(1.0)

    def sample_y(self, n: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
        """(n,) int64 labels uniform over the classes (conditional G only)."""
        if self.n_classes is None:
            raise ValueError("this generator is unconditional: build it with conditional=True")
        return torch.randint(self.n_classes, (n,), generator=generator,
                             device=self._device(generator, device))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, nz) float, y int64 (N,) labels (conditional only) -> (N, *out_shape) float:
        images in [-1, 1], points unbounded."""
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"latent must have shape (N, {self.nz}), got {tuple(z.shape)}")
        if self.n_classes is None:
            if y is not None:
                raise ValueError("labels given to an unconditional generator "
                                 "(build it with conditional=True to use them)")
            return self.decode(z)
        if y is None:
            raise ValueError("this generator is conditional: pass labels y (N,)")
        return self.decode(concat_labels(z, y, self.n_classes))

    @abstractmethod
    def decode(self, h: Tensor) -> Tensor:
        """(N, in_features) float -> (N, *out_shape) float (images already squashed to [-1, 1])."""


class Discriminator(nn.Module, ABC):
    """Maps a batch of samples of `in_shape` to one logit per pack of `pack` samples.

    Subclasses implement `features` (packed batch -> penultimate features) and `logits`
    (features -> (M,)); when conditional they set `aux_head`, a Linear on the flattened
    features giving class logits (AC-GAN). D never reads labels: AC-GAN predicts them.
    """

    def __init__(self, in_shape: Sequence[int], *, pack: int = 1,
                 n_classes: int | None = None) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)  # one unpacked sample's shape
        self.pack = pack
        self.n_classes = n_classes
        self.aux_head: nn.Module | None = None

    def _packed(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"discriminator expects samples of shape {self.in_shape}, "
                             f"got a batch of shape {tuple(x.shape)}")
        return pack_input(x, self.pack)

    def forward(self, x: Tensor, y: Tensor | None = None, *, aux: bool = False
                ) -> Tensor | tuple[Tensor, Tensor]:
        """x (N, *in_shape) float -> logits (N // pack,) float. `y` is accepted for a uniform
        call signature and ignored (an AC-GAN D classifies); `aux=True` is `forward_aux`
        (so torch.func.functional_call, which calls forward, reaches it too)."""
        if aux:
            return self.forward_aux(x)
        return self.logits(self.features(self._packed(x)))

    def forward_aux(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Conditional D only: x (N, *in_shape) -> (logits (N,), class logits (N, n_classes))."""
        if self.aux_head is None:
            raise ValueError("this discriminator has no auxiliary classifier: build it with "
                             "conditional=True")
        h = self.features(self._packed(x))
        return self.logits(h), self.aux_head(h.flatten(1))

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """Packed batch (M, pack*C, H, W) or (M, pack*F) -> penultimate features (M, ...)."""

    @abstractmethod
    def logits(self, h: Tensor) -> Tensor:
        """Penultimate features (M, ...) -> logits (M,) float."""


Builder = Callable[[tuple[int, ...], ArchOptions], tuple[Generator, Discriminator]]


@dataclass(frozen=True)
class Architecture:
    """A registered family: `arch(data_shape, **options)` -> (G, D)."""

    name: str
    summary: str
    supports: tuple[str, ...]  # keys of SHAPE_KINDS
    build: Builder
    nets: tuple[str, ...] = ("default",)  # values of ArchOptions.nets this family builds

    def options(self, options: ArchOptions | None = None, **kw: object) -> ArchOptions:
        """`options` with `kw` applied, checked against this family (nets); no nets are built.
        ModelConfigError (a ValueError) names what is accepted."""
        opts = ArchOptions.from_kwargs(options, **kw)
        if opts.nets not in self.nets:
            raise ModelConfigError(f"architecture {self.name!r} has no nets {opts.nets!r} "
                                   f"(known: {', '.join(self.nets)})")
        return opts

    def __call__(self, data_shape: Sequence[int], options: ArchOptions | None = None,
                 **kw: object) -> tuple[Generator, Discriminator]:
        """Build a fresh (G, D) for samples of `data_shape`, e.g. (1, 28, 28) or (2,).

        `kw` overrides fields of `options`; an unknown option or an unsupported shape raises
        ModelConfigError (a ValueError) that names what is accepted.
        """
        opts = self.options(options, **kw)
        shape = tuple(int(d) for d in data_shape)
        if data_kind(shape) not in self.supports:
            raise ModelConfigError(
                f"architecture {self.name!r} does not support data shape {shape}; it supports "
                f"{', '.join(SHAPE_KINDS[k] for k in self.supports)}")
        return self.build(shape, opts)


def register_architecture(name: str, build: Builder, *, summary: str,
                          supports: Sequence[str], nets: Sequence[str] = ("default",),
                          **meta: Any) -> Architecture:
    """Wrap `build` in an Architecture and register it in ARCHITECTURES (meta: catalogue fields).
    `nets`: the values of ArchOptions.nets `build` accepts, "default" first."""
    unknown = set(supports) - set(SHAPE_KINDS)
    if unknown:
        raise ValueError(f"unknown data-shape kind(s) {sorted(unknown)}: use {list(SHAPE_KINDS)}")
    if not nets or nets[0] != "default":
        raise ValueError(f"nets must start with 'default' (the family's own nets), got {list(nets)}")
    arch = Architecture(name, summary, tuple(supports), build, tuple(nets))
    ARCHITECTURES.register(name, arch, summary=summary, supports=list(supports),
                           nets=list(nets), **meta)
    return arch


def build_models(arch_name: str, data_shape: Sequence[int], **options: object
                 ) -> tuple[Generator, Discriminator]:
    """(G, D) of the registered architecture `arch_name`; options are ArchOptions fields.

    Built-ins must be registered first (`gan_bench.catalogue.load_builtins()`); an unknown name
    raises UnknownNameError listing the known ones.
    """
    return ARCHITECTURES.get(arch_name)(data_shape, **options)


def activation_bytes_per_sample(arch_name: str, data_shape: Sequence[int],
                                **options: object) -> int:
    """Float32 bytes that one sample of a training batch holds in activations: every module's
    output in one G forward and two D forwards (real and fake), as a D step and a G step keep
    them for backward. A lower bound of what a step allocates (gradients and the optimizer
    come on top); measured on CPU with a batch of 2 packs, no gradients."""
    G, D = build_models(arch_name, data_shape, **options)
    n = 2 * D.pack
    total = [0]

    def count(module: nn.Module, inputs: tuple[Any, ...], output: object) -> None:
        if isinstance(output, Tensor) and not list(module.children()):  # leaves only
            total[0] += output.numel()

    hooks = [m.register_forward_hook(count) for net in (G, D) for m in net.modules()]
    try:
        with torch.no_grad():
            G.eval(), D.eval()  # BatchNorm in eval mode: no running statistics to update
            z = G.sample_z(n, generator=torch.Generator().manual_seed(0), device="cpu")
            y = G.sample_y(n, generator=torch.Generator().manual_seed(0), device="cpu") \
                if G.conditional else None
            fake = G(z, y)
            D(fake)
            D(fake)  # the real batch: same shape, same activations
    finally:
        for hook in hooks:
            hook.remove()
    return 4 * total[0] // n
