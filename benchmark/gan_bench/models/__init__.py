"""Architectures: the (Generator, Discriminator) contract and its builder.

The families themselves (mlp, toy_mlp, dcgan, infogan) register on import; `gan_bench.catalogue`
imports them, so this package does not (no import cycle, one place for the catalogue).
"""

from gan_bench.models.base import (
    Architecture,
    ArchOptions,
    Discriminator,
    Generator,
    ModelConfigError,
    build_models,
)

__all__ = ["ArchOptions", "Generator", "Discriminator", "Architecture", "build_models",
           "ModelConfigError"]
