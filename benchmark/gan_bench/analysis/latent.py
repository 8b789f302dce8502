"""Latent-space checks of a trained image generator, read through the project's MNIST classifier:
interpolations, perceptual path length (PPL) and vector arithmetic.

Papers and code followed:
- Radford, Metz & Chintala 2015, DCGAN (arXiv:1511.06434), section 6.1 "walking in the latent
  space" (smooth transitions, not sharp jumps, suggest G has not memorised), and section 6.3.2
  with figure 7: arithmetic on the mean z of three exemplars per concept ("experiments working on
  only single samples per concept were unstable"); the result Y is decoded, and Y plus uniform
  noise of scale +-0.25 gives 8 more samples.
- White 2016, "Sampling Generative Networks" (arXiv:1609.04468): slerp, not lerp, between
  Gaussian latents (a straight line passes near the origin, where N(0, I) puts no samples).
- Karras, Laine & Aila 2019, StyleGAN (arXiv:1812.04948), section 3: PPL in Z,
  l_Z = E[d(G(slerp(z1, z2; t)), G(slerp(z1, z2; t + eps))) / eps^2], t ~ U(0, 1), eps = 1e-4,
  and its code (NVlabs/stylegan metrics/perceptual_path_length.py), which drops distances below
  the 1st percentile (numpy "lower") and above the 99th ("higher") before taking the mean.

Where this differs from them, and why:
- d is the squared Euclidean distance between the MNIST classifier's 128-d features, NOT LPIPS
  (a VGG-16 calibrated on photographs; 28x28 digits are the classifier's own domain and its
  weights are pinned by sha256). Compare PPL only with PPL of the same protocol.
- slerp keeps norms (White's formula) instead of projecting onto the unit sphere as StyleGAN's
  code does: StyleGAN's mapping network normalises z first, DCGAN's G reads z as it is.
- Uniform latents (U(-1, 1)^nz) are interpolated linearly: the cube is convex, with no hollow
  centre to avoid.
- The classifier sees G's float images as unrounded grey levels (x + 1) * 127.5: an eps step
  moves pixels by far less than one grey level, so rounding to uint8 would zero most steps.

All random draws come from CPU torch.Generators seeded `seed` (z through `Generator.sample_z`),
so a seed gives the same z on every device. G runs in eval mode under strict float32 and its mode
is restored; G must already be on `device`.
"""

from __future__ import annotations

import io
import math
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_bench.metrics.features import FeatureExtractor, extract, float32_math, get_extractor
from gan_bench.models.base import Generator
from gan_bench.train.sampling import to_uint8

__all__ = [
    "lerp", "slerp", "interpolate", "decode", "float_features", "classify",
    "interpolation_grid", "interpolation_png", "path_distances", "trimmed_mean",
    "perceptual_path_length", "ink", "slant", "Attribute", "ATTRIBUTES", "ArithmeticCase",
    "VectorArithmetic", "vector_arithmetic", "arithmetic_png", "LatentReport", "latent_checks",
    "markdown_lines", "N_PATHS", "EPS", "PERCENTILES", "CLASS_PAIRS",
]

BATCH = 500  # images per forward pass: bounds memory, not results (draws are made up front)
DPI = 80  # the report figures' DPI (report/figures.py)
SCALE = 2  # screen pixels per image pixel in the figures: a 28x28 digit is 56 px wide
GAP, CAPTION, ROW_BAND = 4, 8, 36  # image pixels between frames, under them, left of rows
TITLE_LINE_IN = 0.16  # inches above the grid per line of title
N_PATHS = 2000  # ~9 s on one CPU thread for dcgan "small" (StyleGAN: 100,000 on GPUs)
EPS = 1e-4  # StyleGAN's epsilon
PERCENTILES = (1.0, 99.0)  # StyleGAN's outlier rejection before the mean
CHECK = 10.0  # PPL is also measured at CHECK * eps: a gap exposes float32 rounding
N_SAMPLES = 5000  # samples classified to find exemplars of each class
CONFIDENCE = 0.9  # max softmax probability of an exemplar: an unambiguous digit
QUANTILE = 0.25  # "thick" = top quarter of a class's ink, "thin" = bottom quarter
GROUP = 3  # DCGAN averaged three exemplars per concept (one was unstable)
N_RESULTS = 8  # results per class pair and attribute, each from fresh random triples
NOISE = 0.25  # DCGAN figure 7: uniform noise of scale +-0.25 added to Y
N_NOISE = 8  # DCGAN figure 7: 8 noisy samples around each Y
CLASS_PAIRS = ((1, 7), (3, 8), (4, 9))  # digits with related strokes: a transfer is visible


# ----------------------------------------------------------------------------- shared pieces

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check_image_g(G: Generator) -> None:
    if len(G.out_shape) != 3:
        raise ValueError(f"latent checks need an image generator (C, H, W), got samples of shape "
                         f"{G.out_shape}")


def _labels(G: Generator, n: int, gen: torch.Generator) -> Tensor | None:
    """(n,) classes for a conditional G (held along each path), None for an unconditional one."""
    return G.sample_y(n, generator=gen, device="cpu") if G.conditional else None


@contextmanager
def _eval_mode(G: torch.nn.Module) -> Iterator[None]:
    was_training = G.training
    G.eval()  # BatchNorm's running statistics, as at evaluation time
    try:
        yield
    finally:
        G.train(was_training)


@torch.no_grad()
def decode(G: Generator, z: Tensor, y: Tensor | None = None, *,
           device: str | torch.device = "cpu", batch_size: int = BATCH) -> Tensor:
    """z (N, nz) float (y int64 (N,) for a conditional G) -> float32 images (N, C, H, W) in
    [-1, 1] on the CPU."""
    out = []
    with _eval_mode(G), float32_math():
        for start in range(0, len(z), batch_size):
            zb = z[start:start + batch_size].to(device, torch.float32)
            yb = None if y is None else y[start:start + batch_size].to(device)
            out.append(G(zb, yb).float().cpu())
    return torch.cat(out) if out else torch.empty(0, *G.out_shape)


@torch.no_grad()
def float_features(extractor: FeatureExtractor, images: Tensor, batch_size: int = BATCH) -> Tensor:
    """float images (N, C, H, W) in [-1, 1] -> float32 features (N, F) on the CPU, unrounded.

    The extractor's own preprocessing runs on the grey levels (x + 1) * 127.5 in [0, 255] without
    rounding them: the built-in extractors start with `x.float()` on 0..255 values
    (mnist_classifier: (x / 255 - 0.1307) / 0.3081, `MnistNet.preprocess`), so this is
    `extractor.features(to_uint8(x))` minus the rounding. The public `features` accepts uint8
    only, hence `_features` under `_numerics` (the same precision and autocast as `features`).
    """
    out = []
    with extractor._numerics():
        for batch in torch.split(images, batch_size):
            x = ((batch.clamp(-1, 1) + 1) * 127.5).to(extractor.device)  # clamp: as to_uint8
            out.append(extractor._features(x).float().cpu())
    return torch.cat(out)


def classify(extractor: FeatureExtractor, images_uint8: Tensor) -> tuple[Tensor, Tensor]:
    """uint8 images (N, C, H, W) -> (labels int64 (N,): the argmax of the logits, confidences
    float32 (N,): the max softmax probability, in [0, 1])."""
    probs = extract(extractor, images_uint8, kind="logits", batch_size=BATCH).softmax(1)
    confidences, labels = probs.max(1)
    return labels, confidences


# ----------------------------------------------------------------------------- interpolation

def lerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """z0, z1 (N, nz), t (N,) -> (N, nz) z0 + t (z1 - z0); t outside [0, 1] extrapolates."""
    return z0 + t[:, None].to(z0.dtype) * (z1 - z0)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """White 2016: z0, z1 (N, nz), t (N,) -> (N, nz)
    sin((1 - t) theta) / sin(theta) z0 + sin(t theta) / sin(theta) z1, theta the angle between
    z0 and z1. Ends at z0 (t = 0) and z1 (t = 1); keeps the norm of orthogonal equal-norm ends.
    Computed in float64, returned in z0's dtype; (anti)parallel ends (sin theta < 1e-6) fall
    back to lerp."""
    a, b, tt = z0.double(), z1.double(), t.double()[:, None]
    cos = (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1, keepdim=True).clamp(-1, 1)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    flat = sin < 1e-6
    out = (torch.sin((1 - tt) * theta) * a + torch.sin(tt * theta) * b) / torch.where(flat, 1.0, sin)
    return torch.where(flat, a + tt * (b - a), out).to(z0.dtype)


def _path(latent: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """slerp for a Gaussian latent, lerp for a uniform one (see the module doc)."""
    if latent == "normal":
        return slerp
    if latent == "uniform":
        return lerp
    raise ValueError(f"latent must be 'normal' or 'uniform', got {latent!r}")


def interpolate(z0: Tensor, z1: Tensor, steps: int, latent: str) -> Tensor:
    """z0, z1 (nz,) -> (steps, nz) from z0 to z1, both included, evenly spaced in t: slerp for
    latent "normal", lerp for "uniform"."""
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    return _path(latent)(z0.expand(steps, -1), z1.expand(steps, -1), t)


def interpolation_grid(G: Generator, extractor: FeatureExtractor, pairs: int = 8, steps: int = 10,
                       seed: int = 0, *, device: str | torch.device = "cpu"
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """`pairs` paths of `steps` frames between z drawn from the prior (row-major).

    Returns images uint8 (pairs * steps, C, H, W), labels int64 (pairs * steps,) (the
    classifier's argmax on each frame) and confidences float32 (pairs * steps,) in [0, 1]. A
    conditional G gets one class per row, held along it.
    """
    _check_image_g(G)
    gen = _gen(seed)
    z0 = G.sample_z(pairs, generator=gen, device="cpu")
    z1 = G.sample_z(pairs, generator=gen, device="cpu")
    y = _labels(G, pairs, gen)
    z = torch.cat([interpolate(z0[i], z1[i], steps, G.latent) for i in range(pairs)])
    images = to_uint8(decode(G, z, None if y is None else y.repeat_interleave(steps), device=device))
    labels, confidences = classify(extractor, images)
    return images, labels, confidences


def _interpolation_summary(labels: Tensor, confidences: Tensor, pairs: int, steps: int
                           ) -> dict[str, float]:
    """Label changes between neighbouring frames per row (0 for a path within one digit) and the
    share of frames classified with confidence >= CONFIDENCE."""
    rows = labels.reshape(pairs, steps)
    changes = (rows[:, 1:] != rows[:, :-1]).sum(1).float().mean()
    return {"label_changes_per_row": float(changes),
            "confident_frames": float((confidences >= CONFIDENCE).float().mean())}


def _canvas(cells: Sequence[Sequence[tuple[Tensor, str]]], top: int, left: int) -> np.ndarray:
    """uint8 (H, W, 3) white canvas: the cells' images (C, h, w) on a grid of (h + CAPTION) x
    (w + GAP) pixel cells, after `top` rows and `left` columns of margin."""
    h, w = cells[0][0][0].shape[1:]
    canvas = np.full((top + len(cells) * (h + CAPTION), left + len(cells[0]) * (w + GAP), 3),
                     255, dtype=np.uint8)
    for r, row in enumerate(cells):
        for c, (image, _) in enumerate(row):
            y0, x0 = top + r * (h + CAPTION), left + c * (w + GAP) + GAP // 2
            canvas[y0:y0 + h, x0:x0 + w] = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
    return canvas


def _grid_png(cells: Sequence[Sequence[tuple[Tensor, str]]], title: str,
              col_titles: Sequence[str] = (), row_titles: Sequence[str] = ()) -> bytes:
    """PNG of a grid of uint8 (1 or 3, h, w) images, a small caption under each. One imshow of
    one canvas (an Axes per image took ~10 s for 80 images); matplotlib Agg, DPI 80, no
    Software tag or timestamps: the same cells give the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = cells[0][0][0].shape[1:]
    top, left = (CAPTION if col_titles else 0), (ROW_BAND if row_titles else 0)
    canvas = _canvas(cells, top, left)
    width, height = max(2.5, canvas.shape[1] * SCALE / DPI), canvas.shape[0] * SCALE / DPI
    title = textwrap.fill(title, width=int(width * 12))  # fits the width
    title_in = 0.1 + TITLE_LINE_IN * (title.count("\n") + 1)
    fig = plt.figure(figsize=(width, height + title_in))
    try:
        ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + title_in)))
        ax.imshow(canvas, interpolation="nearest")
        ax.set_axis_off()
        for r, row in enumerate(cells):
            for c, (_, caption) in enumerate(row):
                x, y = left + c * (w + GAP) + GAP / 2 + w / 2, top + r * (h + CAPTION) + h
                ax.text(x, y + 0.5, caption, ha="center", va="top", fontsize=6)
        for c, text in enumerate(col_titles):
            ax.text(left + c * (w + GAP) + GAP / 2 + w / 2, top - 1, text, ha="center",
                    va="bottom", fontsize=7)
        for r, text in enumerate(row_titles):
            ax.text(left - 1, top + r * (h + CAPTION) + h / 2, text, ha="right", va="center",
                    fontsize=6)
        fig.suptitle(title, fontsize=8, y=1 - 0.05 / (height + title_in))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def interpolation_png(images: Tensor, labels: Tensor, pairs: int, steps: int) -> bytes:
    """PNG bytes: `pairs` rows of `steps` frames (images uint8 (pairs * steps, C, H, W),
    row-major), the classifier's label (labels (pairs * steps,)) under each frame."""
    cells = [[(images[r * steps + c], str(int(labels[r * steps + c]))) for c in range(steps)]
             for r in range(pairs)]
    return _grid_png(cells, "latent interpolations (under each frame: the classifier's label)")


# ----------------------------------------------------------------------------- path length

def _distances(G: Generator, extractor: FeatureExtractor, n_paths: int, epss: Sequence[float],
               seed: int, device: str | torch.device, batch_size: int) -> Tensor:
    """float64 (len(epss), n_paths): `path_distances` for each eps, from the same z and t."""
    gen = _gen(seed)
    z1 = G.sample_z(n_paths, generator=gen, device="cpu")
    z2 = G.sample_z(n_paths, generator=gen, device="cpu")
    t = torch.rand(n_paths, generator=gen, dtype=torch.float64)
    y = _labels(G, n_paths, gen)
    path = _path(G.latent)
    out = []
    for s in range(0, n_paths, batch_size):
        ends = slice(s, s + batch_size)
        yb = None if y is None else y[ends]
        f0, *fs = (float_features(extractor, decode(G, path(z1[ends], z2[ends], tb), yb,
                                                    device=device, batch_size=batch_size))
                   for tb in (t[ends], *(t[ends] + eps for eps in epss)))
        out.append(torch.stack([(f.double() - f0.double()).pow(2).sum(1) / eps ** 2
                                for f, eps in zip(fs, epss)]))
    return torch.cat(out, 1)


def path_distances(G: Generator, extractor: FeatureExtractor, n_paths: int = N_PATHS,
                   eps: float = EPS, seed: int = 0, *, device: str | torch.device = "cpu",
                   batch_size: int = BATCH) -> Tensor:
    """float64 (n_paths,) >= 0: d(G(z(t)), G(z(t + eps))) / eps^2 per path, z(t) the slerp (lerp
    for uniform z) from z1 to z2, t ~ U(0, 1), d the squared L2 distance of `float_features`.
    z1, z2, t (and a conditional G's class, held along the path) are drawn up front, so the
    batch size does not change them; each end goes through G and the extractor in its own
    batch of the same size, so identical images give identical features."""
    return _distances(G, extractor, n_paths, (eps,), seed, device, batch_size)[0]


def trimmed_mean(d: Tensor, percentiles: tuple[float, float] = PERCENTILES) -> tuple[float, int]:
    """StyleGAN's outlier rejection: (mean of the d (N,) with lo <= d <= hi, how many kept), lo
    the lower percentile rounded down to a sample (numpy method "lower"), hi the upper one
    rounded up ("higher"), as in NVlabs/stylegan metrics/perceptual_path_length.py."""
    x = d.double().numpy()
    lo = np.percentile(x, percentiles[0], method="lower")
    hi = np.percentile(x, percentiles[1], method="higher")
    keep = (x >= lo) & (x <= hi)
    return float(x[keep].mean()), int(keep.sum())


def _ppl_protocol(G: Generator, extractor: FeatureExtractor, n_paths: int, eps: float,
                  seed: int) -> dict[str, Any]:
    return {
        "metric": "perceptual_path_length", "paper": "Karras et al. 2019 (StyleGAN) section 3, l_Z",
        "space": "z", "latent": G.latent, "nz": G.nz,
        "interpolation": "slerp, norms kept (White 2016)" if G.latent == "normal" else "lerp",
        "t": "U(0, 1)", "eps": eps, "n_paths": n_paths, "seed": seed,
        "distance": f"squared L2 of {extractor.name} features of float images (x + 1) * 127.5, "
                    "not rounded to uint8; not LPIPS",
        "percentile_filter": list(PERCENTILES), "percentile_methods": ["lower", "higher"],
        "g_dtype": "float32", "distance_dtype": "float64 (of float32 features)",
        **extractor.protocol(),
    }


def perceptual_path_length(G: Generator, extractor: FeatureExtractor, n_paths: int = N_PATHS,
                           eps: float = EPS, seed: int = 0, space: str = "z", *,
                           device: str | torch.device = "cpu", batch_size: int = BATCH
                           ) -> tuple[float, dict[str, Any]]:
    """PPL in Z (Karras 2019, l_Z), >= 0, lower is smoother: the 1..99-percentile trimmed mean
    of `path_distances`. d is the squared L2 distance between the classifier's features (NOT
    LPIPS). Returns (value, extras): extras["protocol"] (the dict to report it with),
    "raw_mean" (no trimming), "median", "n_kept", and "check_value", the same PPL at
    "check_eps" = 10 eps from the same z and t. For a smooth G the two agree; float32 rounding
    adds a term growing as 1 / eps^2, so a value well above check_value says the number is
    rounding (2,000 paths, seed 0: an untrained dcgan "small", whose pixels move by ~1e-5 per
    step, 0.00165 against 0.00086; one trained for 1,500 steps, 5925 against 5901). The default 2,000 paths take ~9 s on one CPU thread for dcgan "small";
    StyleGAN used 100,000."""
    if space != "z":
        raise ValueError(f"space must be 'z', got {space!r}: PPL in W needs StyleGAN's mapping "
                         "network, and these generators map z directly")
    _check_image_g(G)
    d, d_check = _distances(G, extractor, n_paths, (eps, CHECK * eps), seed, device, batch_size)
    value, kept = trimmed_mean(d)
    return value, {"protocol": _ppl_protocol(G, extractor, n_paths, eps, seed),
                   "raw_mean": float(d.mean()), "median": float(d.median()), "n_kept": kept,
                   "check_eps": CHECK * eps, "check_value": trimmed_mean(d_check)[0]}


# ----------------------------------------------------------------------------- vector arithmetic

def ink(images: Tensor) -> Tensor:
    """Stroke thickness: float images (N, C, H, W) in [-1, 1] -> (N,) float32 ink mass, the sum
    of intensities mapped to [0, 1] (MNIST ink is bright), in [0, C * H * W]."""
    return ((images.clamp(-1, 1) + 1) / 2).flatten(1).sum(1)


def slant(images: Tensor) -> Tensor:
    """Slant: float images (N, C, H, W) in [-1, 1] -> (N,) float32 shear mu11 / mu02 of the ink
    distribution (channels summed), x the column (rightwards) and y the row counted UPWARDS: the
    ink's horizontal shift per row going up. Positive: the top leans right (an italic "/"),
    negative: left, 0: upright. An image without ink gives 0."""
    w = ((images.clamp(-1, 1) + 1) / 2).sum(1).double()
    ys = -torch.arange(w.shape[1], dtype=torch.float64)[:, None]
    xs = torch.arange(w.shape[2], dtype=torch.float64)[None, :]
    mass = w.sum((1, 2)).clamp_min(1e-12)
    dx = xs - ((w * xs).sum((1, 2)) / mass)[:, None, None]
    dy = ys - ((w * ys).sum((1, 2)) / mass)[:, None, None]
    mu11, mu02 = (w * dx * dy).sum((1, 2)), (w * dy * dy).sum((1, 2))
    return (mu11 / mu02.clamp_min(1e-12)).float()


@dataclass(frozen=True)
class Attribute:
    """An image attribute for vector arithmetic: "high" exemplars are a class's top quantile of
    `measure`, "low" ones its bottom quantile of `low_key(measure)`."""

    name: str
    measure: Callable[[Tensor], Tensor]  # float images (N, C, H, W) in [-1, 1] -> (N,)
    high: str  # what the top quantile is called ("thick")
    low: str  # what the bottom quantile of low_key is called ("thin")
    low_key: Callable[[Tensor], Tensor]  # measure (N,) -> what "low" ranks: |slant| for upright


ATTRIBUTES = {
    "thickness": Attribute("thickness", ink, "thick", "thin", torch.clone),
    "slant": Attribute("slant", slant, "slanted", "upright", torch.abs),
}


@dataclass(frozen=True)
class ArithmeticCase:
    """high a - low a + low b for one class pair and attribute (thick 1 - thin 1 + thin 7).

    Results: N_RESULTS vectors Y, each from fresh triples, decoded with N_NOISE noisy copies
    each. "moved": a result's attribute exceeds the mean attribute of its own low-b exemplars;
    "shift": the mean of (attribute - that mean) in units of the attribute's std over the
    confident class-b samples. The baseline scores as many random z against the same means.
    """

    a: int
    b: int
    attribute: str
    n: int = 0  # decoded results (and baseline samples)
    share_b: float = math.nan  # results the classifier labels b (argmax), in [0, 1]
    share_moved: float = math.nan  # in [0, 1]
    shift: float = math.nan
    baseline_share_b: float = math.nan
    baseline_share_moved: float = math.nan
    baseline_shift: float = math.nan
    images: Tensor | None = None  # uint8 (4, C, H, W): decoded means of high a, low a, low b; Y
    image_labels: tuple[int, ...] = ()  # the classifier's labels of `images`
    skipped: str | None = None  # why there is no result (too few confident samples)


@dataclass(frozen=True)
class VectorArithmetic:
    """The cases of `vector_arithmetic`, with the confident samples per class and the protocol."""

    cases: list[ArithmeticCase]
    class_counts: list[int]  # confident samples per class (of protocol["n_samples"])
    protocol: dict[str, Any]


@dataclass(frozen=True)
class _Pool:
    """The classified samples the exemplars come from."""

    z: Tensor  # (N, nz)
    images: Tensor  # float (N, C, H, W) in [-1, 1]
    labels: Tensor  # int64 (N,)
    confident: Tensor  # bool (N,)

    def members(self, cls: int) -> Tensor:
        return torch.nonzero((self.labels == cls) & self.confident).flatten()


def _quantile(idx: Tensor, key: Tensor, top: bool) -> Tensor:
    """The top (or bottom) QUANTILE of `idx` ranked by `key`, at least GROUP of them."""
    k = max(GROUP, int(len(idx) * QUANTILE))
    return idx[torch.argsort(key, descending=top, stable=True)[:k]]


def _triples(idx: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """(n, GROUP) random distinct members of `idx` per row."""
    return torch.stack([idx[torch.randperm(len(idx), generator=gen)[:GROUP]] for _ in range(n)])


def _score(G: Generator, extractor: FeatureExtractor, z: Tensor, refs: Tensor, b: int,
           attr: Attribute, spread: float, device: str | torch.device) -> tuple[float, float, float]:
    """(share labelled b, share with attribute > refs, mean shift / spread) of G(z)."""
    images = decode(G, z, device=device)
    labels, _ = classify(extractor, to_uint8(images))
    delta = attr.measure(images) - refs
    return (float((labels == b).float().mean()), float((delta > 0).float().mean()),
            float(delta.mean() / spread))


def _case(G: Generator, extractor: FeatureExtractor, pool: _Pool, a: int, b: int,
          attr: Attribute, gen: torch.Generator, device: str | torch.device) -> ArithmeticCase:
    values = attr.measure(pool.images)
    ia, ib = pool.members(a), pool.members(b)
    need = math.ceil(GROUP / QUANTILE)  # a quarter must hold a group
    short = [f"class {c}: {len(i)} confident samples" for c, i in ((a, ia), (b, ib)) if len(i) < need]
    if short:
        return ArithmeticCase(a, b, attr.name, skipped=f"{'; '.join(short)} (need {need})")
    groups = [_quantile(ia, values[ia], True), _quantile(ia, attr.low_key(values[ia]), False),
              _quantile(ib, attr.low_key(values[ib]), False)]
    picks = torch.stack([_triples(g, N_RESULTS, gen) for g in groups])  # (3, N_RESULTS, GROUP)
    means = pool.z[picks].mean(2)  # (3, N_RESULTS, nz)
    y = means[0] - means[1] + means[2]
    noise = (torch.rand(N_RESULTS, N_NOISE, G.nz, generator=gen) * 2 - 1) * NOISE
    z = torch.cat([y[:, None], y[:, None] + noise], 1).reshape(-1, G.nz)
    refs = values[picks[2]].mean(1).repeat_interleave(1 + N_NOISE)
    baseline = G.sample_z(len(z), generator=gen, device="cpu")
    spread = float(values[ib].std()) or 1.0  # a constant attribute: shifts in raw units
    ours = _score(G, extractor, z, refs, b, attr, spread, device)
    base = _score(G, extractor, baseline, refs, b, attr, spread, device)
    images = to_uint8(decode(G, torch.stack([means[0, 0], means[1, 0], means[2, 0], y[0]]),
                             device=device))
    return ArithmeticCase(a, b, attr.name, len(z), *ours, *base, images=images,
                          image_labels=tuple(classify(extractor, images)[0].tolist()))


def _draw_pool(G: Generator, extractor: FeatureExtractor, n: int, gen: torch.Generator,
               device: str | torch.device) -> _Pool:
    z = G.sample_z(n, generator=gen, device="cpu")
    images = decode(G, z, device=device)
    labels, confidences = classify(extractor, to_uint8(images))
    return _Pool(z, images, labels, confidences >= CONFIDENCE)


def vector_arithmetic(G: Generator, extractor: FeatureExtractor,
                      pairs: Sequence[tuple[int, int]] = CLASS_PAIRS, seed: int = 0, *,
                      attributes: Sequence[str] = ("thickness", "slant"),
                      n_samples: int = N_SAMPLES, device: str | torch.device = "cpu"
                      ) -> VectorArithmetic:
    """DCGAN figure 7 on digits: for each (a, b) in `pairs` and attribute, high a - low a + low b
    on mean z of GROUP exemplars (see `ArithmeticCase`), with a random-z baseline.

    Exemplars come from `n_samples` samples of the prior that the classifier labels with
    confidence >= CONFIDENCE; high / low are a class's top / bottom QUANTILE of the attribute
    (thickness: ink mass; slant: `slant`, "upright" = smallest |slant|). A class with fewer than
    12 confident samples gives a skipped case. Unconditional G only: a conditional G's class is
    an input, not a direction in z.
    """
    _check_image_g(G)
    if G.conditional:
        raise ValueError("vector arithmetic needs an unconditional generator: a conditional G's "
                         "class is an input, not a direction in z")
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown} (known: {', '.join(ATTRIBUTES)})")
    gen = _gen(seed)
    pool = _draw_pool(G, extractor, n_samples, gen, device)
    cases = [_case(G, extractor, pool, a, b, ATTRIBUTES[name], gen, device)
             for a, b in pairs for name in attributes]
    counts = torch.bincount(pool.labels[pool.confident], minlength=10).tolist()
    return VectorArithmetic(cases, counts, _arithmetic_protocol(extractor, n_samples, seed))


def _arithmetic_protocol(extractor: FeatureExtractor, n_samples: int, seed: int) -> dict[str, Any]:
    return {
        "method": "DCGAN figure 7 (Radford et al. 2015): mean z of 3 exemplars per concept",
        "n_samples": n_samples, "confidence": CONFIDENCE, "quantile": QUANTILE,
        "group": GROUP, "n_results": N_RESULTS, "n_noise": N_NOISE,
        "noise": f"uniform +-{NOISE} per coordinate around each result (DCGAN figure 7)",
        "label": "argmax of the classifier's logits on uint8 images",
        "thickness": "ink mass: sum of intensities in [0, 1]",
        "slant": "mu11 / mu02 of the ink, y upwards: > 0 leans right; upright = smallest |slant|",
        "moved": "attribute above the mean of the result's own low-b exemplars",
        "baseline": "as many random z from the prior, scored against the same means",
        "seed": seed, **extractor.protocol(),
    }


def arithmetic_png(result: VectorArithmetic) -> bytes:
    """PNG bytes in DCGAN figure 7's layout: a row per case, columns + a | - a | + b | = result,
    each the decoded mean z of the first exemplar triple (and Y), captioned with the classifier's
    label. A placeholder figure when every case was skipped."""
    rows = [c for c in result.cases if c.images is not None]
    if not rows:
        return _grid_png([[(torch.zeros(1, 28, 28, dtype=torch.uint8), "no case")]],
                         "vector arithmetic: too few confident samples of the classes")
    cells, titles = [], []
    for case in rows:
        attr = ATTRIBUTES[case.attribute]
        names = [f"{attr.high} {case.a}", f"{attr.low} {case.a}", f"{attr.low} {case.b}", "result"]
        assert case.images is not None  # rows holds cases with images only
        cells.append([(case.images[i], f"{names[i]} ({case.image_labels[i]})") for i in range(4)])
        titles.append(f"{case.a} -> {case.b}\n{case.attribute}")
    return _grid_png(cells, "vector arithmetic on mean z of 3 exemplars (in brackets: the "
                     "classifier's label)", col_titles=["+ a", "- a", "+ b", "= result"],
                     row_titles=titles)


# ----------------------------------------------------------------------------- all three

@dataclass(frozen=True)
class LatentReport:
    """What `latent_checks` measured: numbers with their protocols, figures as PNG bytes."""

    interpolation: dict[str, float]  # label_changes_per_row, confident_frames
    interpolation_png: bytes
    interpolation_protocol: dict[str, Any]
    ppl: float  # lower is smoother
    ppl_extras: dict[str, Any]  # protocol, raw_mean, median, n_kept
    arithmetic: VectorArithmetic | None  # None for a conditional G (see arithmetic_note)
    arithmetic_png: bytes | None
    arithmetic_note: str | None
    seconds: dict[str, float]  # wall time per part: interpolation, ppl, arithmetic


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), round(time.perf_counter() - start, 2)


def latent_checks(G: Generator, extractor: FeatureExtractor | None = None, seed: int = 0, *,
                  pairs: int = 8, steps: int = 10, n_paths: int = N_PATHS, eps: float = EPS,
                  n_samples: int = N_SAMPLES, class_pairs: Sequence[tuple[int, int]] = CLASS_PAIRS,
                  device: str | torch.device = "cpu") -> LatentReport:
    """Interpolations, PPL and vector arithmetic of G, all seeded `seed`; `extractor` None: the
    shipped mnist_classifier on `device`. ~22 s on one CPU thread for dcgan "small" with the
    defaults."""
    ext = extractor if extractor is not None else get_extractor("mnist_classifier", device)
    (images, labels, conf), t_interp = _timed(
        lambda: interpolation_grid(G, ext, pairs, steps, seed, device=device))
    png = interpolation_png(images, labels, pairs, steps)
    interp_protocol = {"pairs": pairs, "steps": steps, "seed": seed,
                       "interpolation": "slerp" if G.latent == "normal" else "lerp",
                       "confidence": CONFIDENCE, **ext.protocol()}
    (ppl, extras), t_ppl = _timed(lambda: perceptual_path_length(G, ext, n_paths, eps, seed,
                                                                 device=device))
    arithmetic, note, t_arith = None, None, 0.0
    if G.conditional:
        note = "skipped: a conditional G's class is an input, not a direction in z"
    else:
        arithmetic, t_arith = _timed(lambda: vector_arithmetic(
            G, ext, class_pairs, seed, n_samples=n_samples, device=device))
    return LatentReport(_interpolation_summary(labels, conf, pairs, steps), png, interp_protocol,
                        ppl, extras, arithmetic,
                        arithmetic_png(arithmetic) if arithmetic is not None else None, note,
                        {"interpolation": t_interp, "ppl": t_ppl, "arithmetic": t_arith})


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def _arithmetic_lines(result: VectorArithmetic) -> list[str]:
    p = result.protocol
    lines = [f"Vector arithmetic (DCGAN figure 7): mean z of {p['group']} exemplars per concept "
             f"from {p['n_samples']} samples labelled with confidence >= {p['confidence']}; "
             f"{p['n_results']} results per row, each decoded with {p['n_noise']} copies under "
             f"uniform +-{NOISE} noise; \"moved\": the attribute exceeds the low-b exemplars' "
             "mean; shift in std of class b. Random z: as many samples from the prior.", "",
             "| a -> b | attribute | labelled b | random z | moved | random z | shift | random z |",
             "|---|---|---|---|---|---|---|---|"]
    for c in result.cases:
        if c.skipped:
            lines.append(f"| {c.a} -> {c.b} | {c.attribute} | skipped: {c.skipped} ||||||")
            continue
        lines.append(f"| {c.a} -> {c.b} | {c.attribute} | {_pct(c.share_b)} | "
                     f"{_pct(c.baseline_share_b)} | {_pct(c.share_moved)} | "
                     f"{_pct(c.baseline_share_moved)} | {c.shift:+.2f} | {c.baseline_shift:+.2f} |")
    return lines


def markdown_lines(report: LatentReport, interpolation_file: str = "latent_interpolation.png",
                   arithmetic_file: str = "latent_arithmetic.png") -> list[str]:
    """A short markdown section: the numbers with their protocol and the figures (file names as
    given). No timings: the same report gives the same lines."""
    pp = report.ppl_extras["protocol"]
    ip = report.interpolation_protocol
    lines = [
        "### Latent space", "",
        f"Interpolations ({ip['pairs']} paths x {ip['steps']} frames, {ip['interpolation']}; "
        f"label: {ip['extractor']} argmax): {report.interpolation['label_changes_per_row']:.1f} "
        f"label changes per path, {_pct(report.interpolation['confident_frames'])} of frames "
        f"with confidence >= {ip['confidence']}.", "",
        f"![latent interpolations]({interpolation_file})", "",
        f"Perceptual path length in Z (Karras et al. 2019): **{report.ppl:.4g}** (lower PPL is "
        f"smoother; untrimmed mean {report.ppl_extras['raw_mean']:.4g}; the same paths at eps "
        f"{report.ppl_extras['check_eps']:g}: {report.ppl_extras['check_value']:.4g}, a much "
        "smaller value there means float32 rounding makes up the PPL). Protocol: "
        f"{pp['n_paths']} paths, eps {pp['eps']}, {pp['interpolation']}, t ~ {pp['t']}, "
        f"{pp['percentile_filter'][0]:g}-{pp['percentile_filter'][1]:g} percentile filter; "
        f"d = {pp['distance']} ({pp['extractor']} sha256 {pp['extractor_sha256'][:12]}); "
        f"seed {pp['seed']}.", "",
    ]
    if report.arithmetic is None:
        return lines + [f"Vector arithmetic: {report.arithmetic_note}."]
    return lines + _arithmetic_lines(report.arithmetic) + [
        "", f"![vector arithmetic]({arithmetic_file})"]
