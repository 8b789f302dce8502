"""Small MLPs for the 2-D Gaussian mixtures (ring8, grid25) of PacGAN (Lin et al. 2018,
arXiv:1712.04086) and VEEGAN (Srivastava et al. 2017, arXiv:1705.07761).

Two sets of nets, chosen with the architecture option `nets`:

`nets: default` (the default; our own cheap baseline):
- G: z (nz=2, N(0, 1), PacGAN's 2-D Gaussian latent) -> 128 -> 128 -> 128 -> 2, ReLU, linear out.
- D: 2 * pack -> 128 -> 128 -> 128 -> 1, LeakyReLU(0.2).
- small: 64 units, tiny: 32 units per hidden layer (CPU tests only).
- PyTorch's default initialisation is kept because N(0, 0.02) relied on the BatchNorm this G
  does not have. Options behave as in `mlp` (same classes).

`nets: pacgan` (PacGAN Table 1's nets), read from the authors' code, fjxmlzn/PacGAN,
synthetic_data_experiments/2DRing_GAN&PacGAN and 2DGrid_GAN&PacGAN (config.py and
pacgan_task.py `create_model_brick`, identical for ring and grid):
- G: Blocks `MLP(dims=[2, 400, 400, 400, 400, 2])`, each hidden layer
  Linear (no bias) -> BatchNormalization -> Rectifier, then Linear(400 -> 2) with a bias
  (`linear_transformations[-1].use_bias = True`) and an identity output. "A 4-layer MLP" is four
  hidden layers of 400 units (five Linears).
- G's BatchNorm: Blocks' defaults, epsilon 1e-4 (inside the sqrt), scale 1 and shift 0 (Blocks'
  BatchNormalization is not Initializable, so the 0.02 Gaussian is not pushed to it); running
  statistics as `m * 0.05 + p * 0.95` (`bn_updates`), i.e. torch momentum 0.05. Blocks keeps a
  running standard deviation where torch keeps a running (unbiased) variance: eval-mode samples
  differ slightly. Samples are scored in inference mode (GraphLogger applies the decoder outside
  `batch_normalization`), as our Trainer.generate does.
- D: maxout.py (3 LinearMaxout layers of 200 units x 5 pieces, Linear(200 -> 1)); the input is
  the concatenation of `pack` points, (N / pack, 2 * pack).
- Initialisation: every Linear weight IsotropicGaussian(0.02), every bias 0.
- small: G 200 units, D 100 units x 5 pieces; tiny: G 16, D 8 x 5 (CPU tests only).
- Options: batch_norm_g: false drops G's BatchNorm (the hidden Linears then get zero biases; with
  the 0.02 init G's first layers then get gradients near 1e-8, so it hardly trains: an ablation,
  not a baseline); pack, spectral_norm, minibatch_std, minibatch_disc and conditional act on the maxout D as on
  the mlp D.

Where PacGAN's training differs from our Trainer (suite-level, not nets; see
suites/pacgan_ring8.yaml): their "batch 100" counts D inputs (packs), so pack m draws 100 * m
real points and G runs m times on 100 z each (BatchNorm statistics per 100); D and G are updated
simultaneously from one graph (ALI's `ali_algorithm`), where our Trainer alternates; an epoch is
1,000 iterations for every m (100,000 packed examples / 100) and they trained 400 epochs.
"""

from __future__ import annotations

from gan_bench.models.base import ArchOptions, ModelConfigError, register_architecture
from gan_bench.models.maxout import MaxoutDiscriminator
from gan_bench.models.mlp import MLPDiscriminator, MLPGenerator, build_mlp_pair
from gan_bench.models.options import init_normal_, spectral_norm_all_

__all__ = ["build_toy_mlp", "build_pacgan_nets", "TOY_MLP", "SIZES", "PACGAN_SIZES", "NETS"]

SIZES = {"full": 128, "small": 64, "tiny": 32}  # hidden units per layer, 3 hidden layers in G and in D
DEPTH = 3
NETS = ("default", "pacgan")

# PacGAN's config.py: gen_hidden_size 400, disc_hidden_size 200, disc_maxout_pieces 5
PACGAN_SIZES = {"full": (400, 200), "small": (200, 100), "tiny": (16, 8)}  # (G units, D units)
PACGAN_G_DEPTH = 4  # decoder dims [2, 400, 400, 400, 400, 2]
PACGAN_D_DEPTH = 3  # discriminator_h1 .. h3
PACGAN_PIECES = 5
PACGAN_INIT_STD = 0.02  # weights_init_std; biases_init Constant(0)
PACGAN_BN_EPS = 1e-4  # Blocks BatchNormalization's default epsilon
PACGAN_BN_MOMENTUM = 0.05  # bn_updates: m * 0.05 + p * 0.95


def build_pacgan_nets(shape: tuple[int, ...],
                      opts: ArchOptions) -> tuple[MLPGenerator, MaxoutDiscriminator]:
    """PacGAN's 2-D nets (see the module docstring) for points (2,)."""
    if opts.batch_norm_d:
        raise ModelConfigError("toy_mlp nets=pacgan has no BatchNorm in D (a maxout D, as in "
                               "PacGAN's code): batch_norm_d must be unset or false")
    g_units, d_units = PACGAN_SIZES[opts.size]
    n_classes = opts.n_classes if opts.conditional else None
    g = MLPGenerator(shape, nz=opts.nz or 2, hidden=(g_units,) * PACGAN_G_DEPTH,
                     n_classes=n_classes, squash=False,
                     batch_norm=opts.batch_norm_g is not False,  # default on, as in the paper
                     bn_eps=PACGAN_BN_EPS, bn_momentum=PACGAN_BN_MOMENTUM)
    d = MaxoutDiscriminator(shape, hidden=(d_units,) * PACGAN_D_DEPTH, pieces=PACGAN_PIECES,
                            pack=opts.pack, n_classes=n_classes,
                            minibatch_std=opts.minibatch_std,
                            minibatch_disc=opts.minibatch_disc)
    init_normal_(g, PACGAN_INIT_STD, bn_std=0.0)  # BatchNorm scale exactly 1, as Blocks
    init_normal_(d, PACGAN_INIT_STD)
    if opts.spectral_norm:
        spectral_norm_all_(d)  # after the init: the parametrisation starts from these weights
    return g, d


def build_toy_mlp(shape: tuple[int, ...],
                  opts: ArchOptions) -> tuple[MLPGenerator, MLPDiscriminator | MaxoutDiscriminator]:
    """(G, D) for 2-D points: our default nets, or PacGAN's with nets=pacgan."""
    if opts.nets == "pacgan":
        return build_pacgan_nets(shape, opts)
    hidden = (SIZES[opts.size],) * DEPTH
    return build_mlp_pair(shape, opts, arch="toy_mlp", g_hidden=hidden, d_hidden=hidden,
                          default_nz=2, default_bn_g=False)  # batch_norm_g: true opts in


TOY_MLP = register_architecture(
    "toy_mlp", build_toy_mlp,
    summary="3x128 ReLU G (nz=2) and 3x128 LeakyReLU D for the 2-D mixtures (PacGAN, VEEGAN); "
            "nets: pacgan gives PacGAN's own nets (G 4x400 ReLU + BatchNorm, D 3 maxout layers "
            "of 200 units x 5 pieces, N(0, 0.02) init)",
    supports=("points",), nets=NETS,
    paper="Lin et al. 2018, arXiv:1712.04086", nz=2, latent="normal",
)
