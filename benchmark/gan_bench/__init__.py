"""gan-bench: a GAN benchmark suite (architecture x loss x penalty, searched, scored, tracked)."""

__version__ = "0.1.0"

from gan_bench.errors import GanBenchError, UnknownNameError, UserInputError
from gan_bench.registry import REGISTRIES, Registry

__all__ = ["__version__", "GanBenchError", "UserInputError", "UnknownNameError", "Registry",
           "REGISTRIES"]
