"""Maxout units (Goodfellow et al. 2013, "Maxout Networks", arXiv:1302.4389) and the maxout
discriminator of PacGAN's 2-D experiments (Lin et al. 2018, arXiv:1712.04086).

What PacGAN's code does (fjxmlzn/PacGAN, synthetic_data_experiments/2DRing_GAN&PacGAN and
2DGrid_GAN&PacGAN, pacgan_task.py `create_model_brick` and config.py; Blocks' `LinearMaxout`):

- D = LinearMaxout(2 * pack -> 200, 5 pieces) -> LinearMaxout(200 -> 200, 5) ->
  LinearMaxout(200 -> 200, 5) -> Linear(200 -> 1): three maxout layers, no other activation,
  no BatchNorm and no dropout (`_create_model(with_dropout=False)` for both graphs).
- Blocks' `LinearMaxout` is a Linear to output_dim * num_pieces features followed by `Maxout`,
  which reshapes the last axis to (output_dim, num_pieces) and takes the max over the pieces:
  unit j is the max of linear outputs j * pieces .. j * pieces + pieces - 1 (contiguous groups,
  the layout `Maxout.forward` below reproduces, so weights map one to one).
- Every weight (the three maxout Linears and the output Linear) is IsotropicGaussian(0.02), every
  bias Constant(0): `init_normal_` in options.py, called by the builder in toy_mlp.py.

The layer is plain tensor ops (Linear, unflatten, amax), so `torch.func.vmap` over stacked
parameters (train/packed.py) runs it like any Linear stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gan_bench.models.mlp import MLPDiscriminator

__all__ = ["Maxout", "MaxoutDiscriminator"]


class Maxout(nn.Module):
    """(..., in_features) -> (..., out_features): unit j = max_p (W x + b)[j * pieces + p].

    `linear` holds the out_features * pieces affine maps (weight (out * pieces, in)).
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"maxout needs at least one piece, got {pieces}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).unflatten(-1, (self.out_features, self.pieces)).amax(-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


class MaxoutDiscriminator(MLPDiscriminator):
    """(N, *in_shape) -> flattened packs (N / pack, pack * prod(in_shape)) -> maxout layers ->
    Linear -> (N // pack,) logits: the mlp D with maxout units instead of Linear + LeakyReLU.

    minibatch_std appends Karras' statistic to the input of the last maxout layer (as in the mlp
    D); minibatch_disc puts Salimans' minibatch discrimination before the logit (as in the mlp
    D); conditional adds a Linear class head on the last maxout features (AC-GAN).
    """

    def __init__(self, in_shape: Sequence[int], *, hidden: Sequence[int], pieces: int,
                 pack: int = 1, n_classes: int | None = None,
                 minibatch_std: bool = False, minibatch_disc: bool = False) -> None:
        self.pieces = pieces  # read by _hidden_layer during MLPDiscriminator.__init__
        super().__init__(in_shape, hidden=hidden, pack=pack, n_classes=n_classes,
                         minibatch_std=minibatch_std, minibatch_disc=minibatch_disc)

    def _hidden_layer(self, a: int, b: int) -> list[nn.Module]:
        return [Maxout(a, b, self.pieces)]
