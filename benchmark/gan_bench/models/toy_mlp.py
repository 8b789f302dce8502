"""Small MLPs for the 2-D Gaussian mixtures (ring8, grid25) of PacGAN (Lin et al. 2018,
arXiv:1712.04086) and VEEGAN (Srivastava et al. 2017, arXiv:1705.07761).

- G: z (nz=2, N(0, 1), PacGAN's 2-D Gaussian latent) -> 128 -> 128 -> 128 -> 2, ReLU, linear out.
- D: 2 * pack -> 128 -> 128 -> 128 -> 1, LeakyReLU(0.2).
- tiny: 32 units per hidden layer (CPU tests only).

These are smaller and plainer than PacGAN's own 2-D nets (its code: G four hidden layers of 400
ReLU units with BatchNorm; D three LinearMaxout layers of 200 units with 5 pieces; N(0, 0.02)
init): cheap enough for many seeds, and the same nets for every loss. Scores from them are our
own baseline, not PacGAN's Table 1 numbers (report both, as PROTOCOLS.md says). PyTorch's
default initialisation is kept because N(0, 0.02) relied on the BatchNorm this G does not have.
Options behave as in `mlp` (same classes): pack=k feeds D k points concatenated, (N/k, 2k).
"""

from __future__ import annotations

from gan_bench.models.base import ArchOptions, register_architecture
from gan_bench.models.mlp import MLPDiscriminator, MLPGenerator, build_mlp_pair

__all__ = ["build_toy_mlp", "TOY_MLP", "SIZES"]

SIZES = {"full": 128, "small": 64, "tiny": 32}  # hidden units per layer, 3 hidden layers in G and in D
DEPTH = 3


def build_toy_mlp(shape: tuple[int, ...],
                  opts: ArchOptions) -> tuple[MLPGenerator, MLPDiscriminator]:
    """(G, D) for 2-D points."""
    hidden = (SIZES[opts.size],) * DEPTH
    return build_mlp_pair(shape, opts, arch="toy_mlp", g_hidden=hidden, d_hidden=hidden,
                          default_nz=2, default_bn_g=False)  # batch_norm_g: true opts in


TOY_MLP = register_architecture(
    "toy_mlp", build_toy_mlp,
    summary="3x128 ReLU G (nz=2) and 3x128 LeakyReLU D for the 2-D mixtures (PacGAN, VEEGAN)",
    supports=("points",),
    paper="Lin et al. 2018, arXiv:1712.04086", nz=2, latent="normal",
)
