"""Named GAN combinations, each following one paper. A suite may name a preset or give
arch / loss / penalty explicitly; a preset's fields are defaults the suite can override.

A preset is data, not code: the same trainer runs all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan_bench.registry import PRESETS
from gan_bench.train.config import GanSpec

__all__ = ["Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A GAN spec plus the training settings its paper used (only those it states)."""

    spec: GanSpec
    paper: str
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, e.g. k, lr_g, beta1

    def describe(self) -> dict[str, Any]:
        """Catalogue fields; `packable`: trials of this GAN can train together in one pack
        (train/packed.py `pack_problems`, the runner's rule)."""
        from gan_bench.train.config import TrainConfig
        from gan_bench.train.packed import pack_problems

        probe = TrainConfig(iterations=1, **self.train)
        return {"arch": self.spec.arch, "loss": self.spec.loss, "penalty": self.spec.penalty,
                "arch_options": self.spec.arch_options, "loss_params": self.spec.loss_params,
                "penalty_params": self.spec.penalty_params, "train": self.train, "paper": self.paper,
                "packable": not pack_problems(self.spec, [probe, probe.with_(seed=1)])}


def _add(name: str, summary: str, preset: Preset) -> None:
    PRESETS.register(name, preset, summary=summary, **preset.describe())


_add("gan", "Goodfellow et al. 2014: MLP G and D, the minimax (saturating) value function",
     Preset(GanSpec("mlp", "minimax"), "arXiv:1406.2661", {"k": 1}))
_add("ns_gan", "Goodfellow et al. 2014 section 3: MLP, non-saturating G loss -log D(G(z))",
     Preset(GanSpec("mlp", "non_saturating"), "arXiv:1406.2661", {"k": 1}))
_add("dcgan", "Radford et al. 2015: DCGAN nets, non-saturating loss, Adam 2e-4, beta1 0.5",
     Preset(GanSpec("dcgan", "non_saturating"), "arXiv:1511.06434",
            {"lr_g": 2e-4, "beta1": 0.5, "batch_size": 128}))
_add("lsgan", "Mao et al. 2017: least-squares loss (0-1 coding) on DCGAN nets",
     Preset(GanSpec("dcgan", "least_squares"), "arXiv:1611.04076", {"lr_g": 2e-4, "beta1": 0.5}))
_add("wgan", "Arjovsky et al. 2017: critic with weight clipping 0.01, k=5, RMSprop 5e-5",
     Preset(GanSpec("dcgan", "wasserstein", "weight_clip", penalty_params={"clip": 0.01}),
            "arXiv:1701.07875", {"k": 5, "lr_g": 5e-5, "optimizer": "rmsprop"}))
_add("wgan_gp", "Gulrajani et al. 2017: gradient penalty lambda 10, k=5, Adam 1e-4 (0, 0.9)",
     Preset(GanSpec("dcgan", "wasserstein", "gradient_penalty", penalty_params={"weight": 10.0}),
            "arXiv:1704.00028", {"k": 5, "lr_g": 1e-4, "beta1": 0.0, "beta2": 0.9}))
_add("dragan", "Kodali et al. 2017: non-saturating loss + gradient penalty around perturbed real data",
     Preset(GanSpec("dcgan", "non_saturating", "dragan", penalty_params={"weight": 10.0}),
            "arXiv:1705.07215", {"lr_g": 1e-4, "beta1": 0.5}))
_add("sngan", "Miyato et al. 2018: spectral normalisation in D, hinge loss, Adam 2e-4 (0.5, 0.999)",
     Preset(GanSpec("dcgan", "hinge", arch_options={"spectral_norm": True}),
            "arXiv:1802.05957", {"lr_g": 2e-4, "beta1": 0.5, "beta2": 0.999}))
_add("pacgan", "Lin et al. 2018: PacGAN2, D judges 2 samples packed together (DCGAN nets)",
     Preset(GanSpec("dcgan", "non_saturating", arch_options={"pack": 2}),
            "arXiv:1712.04086", {"lr_g": 2e-4, "beta1": 0.5}))
_add("acgan", "Odena et al. 2017: class-conditional G, auxiliary classifier head on D",
     Preset(GanSpec("dcgan", "non_saturating", arch_options={"conditional": True}),
            "arXiv:1610.09585", {"lr_g": 2e-4, "beta1": 0.5}))


def get_preset(name: str) -> Preset:
    return PRESETS.get(name)
