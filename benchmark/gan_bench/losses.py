"""GAN losses: pure functions of (real logits, fake logits), one shared signature.

In the style of compare_gan's `loss_lib.py`. Each loss maps D's raw outputs on a real batch and on
a fake batch to a `LossOutput` (D loss, G loss, detached parts to log). The papers each one
follows are named in its section below:

- minimax, non_saturating: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661)
- least_squares: Mao et al. 2017, "Least Squares GANs" (arXiv:1611.04076); Lucic et al. 2018
- wasserstein: Arjovsky et al. 2017, "Wasserstein GAN" (arXiv:1701.07875)
- hinge: Lim & Ye 2017, "Geometric GAN" (arXiv:1705.02894); Miyato et al. 2018 (arXiv:1802.05957)
- relativistic_average: Jolicoeur-Martineau 2018, "The relativistic discriminator"
  (arXiv:1807.00734)

Logits are real-valued tensors of shape (N,) or (N, 1); real and fake batches may differ in size.
Everything with a log is written with softplus (log(1 + e^x)), never log(sigmoid(x)), so logits of
+-100 give finite losses and gradients. The same function gives both losses: the trainer uses
`d_loss` on the D step (fake logits from detached samples) and `g_loss` on the G step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_bench.errors import UserInputError
from gan_bench.registry import LOSSES

__all__ = [
    "LossOutput", "GanLoss", "UnknownParamError", "resolve_params", "d_probabilities",
    "minimax", "non_saturating", "least_squares", "wasserstein", "hinge", "relativistic_average",
]


class UnknownParamError(UserInputError, ValueError):
    """A loss or penalty parameter that the component does not define (a typo is never ignored)."""


def resolve_params(owner: str, defaults: Mapping[str, Any], params: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """`defaults` updated with `params`; unknown names fail, ints are accepted for floats.

    `owner` names the component in messages ("loss 'hinge'"). A value whose type does not match
    its default (a string for a float, a float for a bool) is a TypeError.
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise UnknownParamError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {owner} "
            f"(known: {', '.join(sorted(defaults)) or 'none'})")
    merged = dict(defaults)
    for key, value in params.items():
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            raise TypeError(f"parameter {key!r} of {owner} must be {want.__name__}, "
                            f"got {value!r}")
        merged[key] = value
    return merged


@dataclass(frozen=True)
class LossOutput:
    """Scalar D and G losses (both minimised) and detached scalar parts to log."""

    d_loss: Tensor
    g_loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class GanLoss:
    """A registered loss: `fn(real_logits, fake_logits, **params)` with typed, documented defaults.

    `needs_real_for_g`: the G loss reads D(x) too (relativistic losses), so the G step must run D
    on a real batch. `probabilistic`: sigmoid(logit) is a probability D(x) under the default
    params; `is_probabilistic(params)` answers for given params.
    """

    name: str
    fn: Callable[..., LossOutput]
    needs_real_for_g: bool
    probabilistic: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    param_docs: dict[str, str] = field(default_factory=dict)  # one line per default
    probabilistic_when: Callable[[dict[str, Any]], bool] | None = None  # params -> probabilistic

    def __post_init__(self) -> None:
        if set(self.param_docs) != set(self.defaults):
            raise ValueError(f"loss {self.name!r}: document every default, and only those")
        if self.is_probabilistic() != self.probabilistic:
            raise ValueError(f"loss {self.name!r}: `probabilistic` disagrees with its defaults")

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults merged with `params`; UnknownParamError (a ValueError) for unknown names."""
        return resolve_params(f"loss {self.name!r}", self.defaults, params or {})

    def is_probabilistic(self, params: Mapping[str, Any] | None = None) -> bool:
        if self.probabilistic_when is None:
            self.resolve(params)
            return self.probabilistic
        return self.probabilistic_when(self.resolve(params))

    def __call__(self, real_logits: Tensor, fake_logits: Tensor, **params: object) -> LossOutput:
        """Losses for logits (N,) or (N, 1); see the module docstring."""
        return self.fn(_flat(real_logits, "real"), _flat(fake_logits, "fake"),
                       **self.resolve(params))

    def describe(self) -> dict[str, Any]:
        """Catalogue fields (JSON-ready) for `gan-bench list`."""
        return {"needs_real_for_g": self.needs_real_for_g, "probabilistic": self.probabilistic,
                "defaults": dict(self.defaults), "params": dict(self.param_docs)}


def _flat(logits: Tensor, which: str) -> Tensor:
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits.reshape(-1)
    if logits.dim() != 1 or logits.numel() == 0:
        raise ValueError(f"{which} logits must have shape (N,) or (N, 1) with N >= 1, "
                         f"got {tuple(logits.shape)}")
    return logits


def _parts(**values: Tensor) -> dict[str, Tensor]:
    return {k: v.detach() for k, v in values.items()}


def d_probabilities(loss: GanLoss, params: Mapping[str, Any] | None, real_logits: Tensor,
                    fake_logits: Tensor) -> dict[str, Tensor]:
    """Detached `d_real`, `d_fake`: mean D(x), D(G(z)) in [0, 1] when the loss is probabilistic,
    else the mean raw outputs (critic values, unbounded)."""
    real, fake = _flat(real_logits, "real").detach(), _flat(fake_logits, "fake").detach()
    if loss.is_probabilistic(params):
        real, fake = torch.sigmoid(real), torch.sigmoid(fake)
    return {"d_real": real.mean(), "d_fake": fake.mean()}


# --- Goodfellow et al. 2014 ---------------------------------------------------------------------
# D maximises V(D, G) = E_x log D(x) + E_z log(1 - D(G(z))), D = sigmoid(logit); with
# -log sigmoid(r) = softplus(-r) and -log(1 - sigmoid(f)) = softplus(f).

def _d_cross_entropy(r: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
    return F.softplus(-r).mean(), F.softplus(f).mean()


def minimax(r: Tensor, f: Tensor) -> LossOutput:
    """Goodfellow 2014 value function; G minimises E log(1 - D(G(z))) (saturates early on)."""
    d_real, d_fake = _d_cross_entropy(r, f)
    return LossOutput(d_real + d_fake, -d_fake, _parts(d_loss_real=d_real, d_loss_fake=d_fake))


def non_saturating(r: Tensor, f: Tensor) -> LossOutput:
    """Goodfellow 2014 section 3: D as minimax; G minimises -E log D(G(z)) instead."""
    d_real, d_fake = _d_cross_entropy(r, f)
    return LossOutput(d_real + d_fake, F.softplus(-f).mean(),
                      _parts(d_loss_real=d_real, d_loss_fake=d_fake))


# --- Mao et al. 2017 (LSGAN) --------------------------------------------------------------------
# D: 1/2 E(D(x) - b)^2 + 1/2 E(D(G(z)) - a)^2; G: 1/2 E(D(G(z)) - c)^2. a=-1, b=1, c=0 is the
# Pearson chi^2 form of the paper; a=0, b=c=1 is the 0-1 coding Lucic et al. 2018 use, applied to
# the sigmoid of the logit (sigmoid_output=True) in their code.

def least_squares(r: Tensor, f: Tensor, *, a: float, b: float, c: float,
                  sigmoid_output: bool) -> LossOutput:
    """Mao 2017 least squares on the raw output, or on sigmoid(logit) when sigmoid_output."""
    if sigmoid_output:
        r, f = torch.sigmoid(r), torch.sigmoid(f)
    d_real = 0.5 * (r - b).square().mean()
    d_fake = 0.5 * (f - a).square().mean()
    return LossOutput(d_real + d_fake, 0.5 * (f - c).square().mean(),
                      _parts(d_loss_real=d_real, d_loss_fake=d_fake))


# --- Arjovsky et al. 2017 (WGAN) ----------------------------------------------------------------
# The critic maximises E f(x) - E f(G(z)); it needs a Lipschitz constraint (weight_clip,
# gradient_penalty) from penalties.py to be a Wasserstein estimate.

def wasserstein(r: Tensor, f: Tensor) -> LossOutput:
    """Arjovsky 2017: D minimises E f(G(z)) - E f(x); G minimises -E f(G(z))."""
    d_real, d_fake = -r.mean(), f.mean()
    return LossOutput(d_real + d_fake, -f.mean(), _parts(d_loss_real=d_real, d_loss_fake=d_fake))


# --- Lim & Ye 2017, Miyato et al. 2018 (hinge) --------------------------------------------------

def hinge(r: Tensor, f: Tensor) -> LossOutput:
    """Hinge: D minimises E relu(1 - D(x)) + E relu(1 + D(G(z))); G minimises -E D(G(z))."""
    d_real, d_fake = F.relu(1 - r).mean(), F.relu(1 + f).mean()
    return LossOutput(d_real + d_fake, -f.mean(), _parts(d_loss_real=d_real, d_loss_fake=d_fake))


# --- Jolicoeur-Martineau 2018 (RaGAN, standard/sigmoid form, RaSGAN) ----------------------------
# D~(x_r) = sigmoid(C(x_r) - E C(x_f)), D~(x_f) = sigmoid(C(x_f) - E C(x_r)). The paper's equations
# are used as written; the author's code halves both losses, which Adam's scale invariance makes
# (almost) immaterial. The G loss depends on real logits, hence needs_real_for_g.

def relativistic_average(r: Tensor, f: Tensor) -> LossOutput:
    """RaSGAN: D wants real more realistic than the average fake; G wants the reverse."""
    r_rel, f_rel = r - f.mean(), f - r.mean()
    d_real, d_fake = F.softplus(-r_rel).mean(), F.softplus(f_rel).mean()
    g_fake, g_real = F.softplus(-f_rel).mean(), F.softplus(r_rel).mean()
    return LossOutput(d_real + d_fake, g_fake + g_real,
                      _parts(d_loss_real=d_real, d_loss_fake=d_fake, g_loss_fake=g_fake,
                             g_loss_real=g_real))


_LS_DOCS = {
    "a": "D's target for fake outputs (0 in the 0-1 coding, -1 in Pearson chi^2)",
    "b": "D's target for real outputs (1 in both codings)",
    "c": "G's target for fake outputs (1 in the 0-1 coding, 0 in Pearson chi^2)",
    "sigmoid_output": "apply the losses to sigmoid(logit) as Lucic et al. 2018's code does",
}

BUILTIN_LOSSES = (
    GanLoss("minimax", minimax, needs_real_for_g=False, probabilistic=True),
    GanLoss("non_saturating", non_saturating, needs_real_for_g=False, probabilistic=True),
    GanLoss("least_squares", least_squares, needs_real_for_g=False, probabilistic=False,
            # 0-1 coding on the raw output by default (Lucic's coding; sigmoid is opt-in)
            defaults={"a": 0.0, "b": 1.0, "c": 1.0, "sigmoid_output": False},
            param_docs=_LS_DOCS, probabilistic_when=lambda p: p["sigmoid_output"]),
    GanLoss("wasserstein", wasserstein, needs_real_for_g=False, probabilistic=False),
    GanLoss("hinge", hinge, needs_real_for_g=False, probabilistic=False),
    GanLoss("relativistic_average", relativistic_average, needs_real_for_g=True,
            probabilistic=False),
)
_SUMMARIES = {
    "minimax": "Minimax GAN, saturating G loss log(1 - D(G(z))) (Goodfellow et al. 2014)",
    "non_saturating": "Non-saturating GAN, G loss -log D(G(z)) (Goodfellow et al. 2014)",
    "least_squares": "Least squares GAN, a/b/c coding (Mao et al. 2017; Lucic et al. 2018)",
    "wasserstein": "Wasserstein critic loss, needs a Lipschitz penalty (Arjovsky et al. 2017)",
    "hinge": "Hinge loss (Lim & Ye 2017; Miyato et al. 2018)",
    "relativistic_average": "Relativistic average standard GAN, RaSGAN (Jolicoeur-Martineau 2018)",
}
for _loss in BUILTIN_LOSSES:
    LOSSES.register(_loss.name, _loss, summary=_SUMMARIES[_loss.name], **_loss.describe())
