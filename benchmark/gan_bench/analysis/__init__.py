"""Analyses of trained models that are not benchmark metrics: what a finalist's latent space
and training dynamics look like, checked against the papers' own demonstrations.

    latent.py   interpolations (DCGAN section 6.1), perceptual path length (StyleGAN section
                3), vector arithmetic (DCGAN figure 7), for an image generator and the MNIST
                classifier's features
    theory.py   Goodfellow et al. 2014 on a trained GAN: D against the optimal D* (2-D
                mixtures, p_g by a kernel density estimate), the value of the game against
                -log 4, G's gradient under the minimax and the non-saturating loss

Layer: below report/ and cli; may import metrics, models, data, train and errors, never config,
plan, study, tracking, run, report or cli. The caller loads the generator and passes it in.
The names below load their module on first use (PEP 562), so importing this package does not
import torch and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan_bench.analysis.latent import (
        LatentReport,
        VectorArithmetic,
        interpolate,
        latent_checks,
        markdown_lines,
        perceptual_path_length,
        vector_arithmetic,
    )
    from gan_bench.analysis.theory import TheoryReport, theory_checks

# the modules' public names (each module's markdown_lines is reached through its module)
_MODULE_OF = {**{name: "latent" for name in (
    "LatentReport", "VectorArithmetic", "interpolate", "latent_checks", "markdown_lines",
    "perceptual_path_length", "vector_arithmetic")},
    **{name: "theory" for name in ("TheoryReport", "theory_checks")}}

__all__ = ["LatentReport", "VectorArithmetic", "interpolate", "latent_checks", "markdown_lines",
           "perceptual_path_length", "vector_arithmetic", "TheoryReport", "theory_checks"]


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"gan_bench.analysis.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'gan_bench.analysis' has no attribute {name!r}")
