"""Latent-space checks (gan_bench.analysis.latent): known answers on hand-made generators.

A stroke generator whose thickness, class and slant are set by z[0], sign(z[1]) and z[2] gives
vector arithmetic a known direction; a constant G has PPL 0; a G linear in z has a PPL that
scales as the square of its gain and, for uniform z and pixel features, equals a closed form.
Fake extractors keep these fast; one test runs the shipped MNIST classifier.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import Tensor, nn

from gan_bench.analysis import latent
from gan_bench.analysis.latent import (
    arithmetic_png,
    decode,
    float_features,
    ink,
    interpolate,
    interpolation_grid,
    interpolation_png,
    latent_checks,
    lerp,
    markdown_lines,
    path_distances,
    perceptual_path_length,
    slant,
    slerp,
    trimmed_mean,
    vector_arithmetic,
)
from gan_bench.metrics.features import FeatureExtractor, extract, get_extractor
from gan_bench.models.base import Generator, build_models
from gan_bench.registry import load_builtins
from gan_bench.train.sampling import to_uint8

load_builtins()

ROWS, COLS = torch.arange(28.0), torch.arange(28.0)


class StrokeG(Generator):
    """A vertical stroke (rows 4..23): width 3 + 1.5 tanh(z[0]) px, in the left half (class 0)
    when z[1] <= 0 and the right half (class 1) otherwise, shear 0.25 tanh(z[2]) columns per
    row (top to the right when > 0). The edges are linear ramps, so the ink mass is the width
    times the 20 rows."""

    def __init__(self, nz: int = 6) -> None:
        super().__init__(nz, (1, 28, 28))
        self.anchor = nn.Parameter(torch.zeros(()))

    def decode(self, h: Tensor) -> Tensor:
        width = 3 + 1.5 * torch.tanh(h[:, 0])
        centre = torch.where(h[:, 1] > 0, 19.0, 9.0)
        shear = 0.25 * torch.tanh(h[:, 2])
        c = centre[:, None] + shear[:, None] * (13.5 - ROWS)  # (N, 28): the centre of each row
        ink_ = (width[:, None, None] / 2 + 0.5 - (COLS - c[:, :, None]).abs()).clamp(0, 1)
        ink_ = ink_ * ((ROWS >= 4) & (ROWS <= 23)).float()[None, :, None]
        return (2 * ink_ - 1)[:, None]


class TiledLinearG(Generator):
    """Pixel k = gain * 0.1 * z[k % nz]: linear in z, within [-gain / 10, gain / 10] for
    uniform z."""

    def __init__(self, gain: float, nz: int = 4, latent: str = "uniform") -> None:
        super().__init__(nz, (1, 28, 28), latent=latent)
        self.gain = gain
        self.anchor = nn.Parameter(torch.zeros(()))

    def decode(self, h: Tensor) -> Tensor:
        return (self.gain * 0.1 * h[:, torch.arange(784) % self.nz]).reshape(-1, 1, 28, 28)


class ConstantG(Generator):
    def __init__(self) -> None:
        super().__init__(8, (1, 28, 28))
        self.image = nn.Parameter(torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1)

    def decode(self, h: Tensor) -> Tensor:
        return self.image.expand(len(h), -1, -1, -1)


class PixelsFake(FeatureExtractor):
    """Features: the grey levels / 255 (784-d). Logits: class 0 when the ink's centre column
    is left of 14, class 1 when right (margin 20 logits at columns 9 and 19), others -50."""

    name = "fake_pixels"
    num_features = 784
    has_logits = True
    resize = "none"
    weights_sha256 = "none"

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def _features(self, x: Tensor) -> Tensor:
        return x.float().flatten(1) / 255

    def _logits(self, x: Tensor) -> Tensor:
        w = x.float()[:, 0] / 255
        cx = (w.sum(1) * COLS).sum(1) / w.sum((1, 2)).clamp_min(1e-6)
        logits = torch.full((len(x), 10), -50.0)
        logits[:, 0], logits[:, 1] = 2 * (14 - cx), 2 * (cx - 14)
        return logits


@pytest.fixture(scope="module")
def fake() -> PixelsFake:
    return PixelsFake().eval()


@pytest.fixture(scope="module")
def mnist() -> FeatureExtractor:
    return get_extractor("mnist_classifier", "cpu")


# ----------------------------------------------------------------------------- interpolation

def test_slerp_ends_norm_and_midpoint():
    e0, e1 = torch.eye(5)[:1] * 3, torch.eye(5)[1:2] * 3  # orthogonal, equal norms
    t = torch.tensor([0.0, 0.3, 0.5, 1.0])
    path = slerp(e0.expand(4, -1), e1.expand(4, -1), t)
    torch.testing.assert_close(path[0], e0[0])
    torch.testing.assert_close(path[3], e1[0])
    torch.testing.assert_close(path.norm(dim=1), torch.full((4,), 3.0))
    torch.testing.assert_close(path[2], (e0[0] + e1[0]) / math.sqrt(2))


def test_slerp_parallel_falls_back_to_lerp():
    z0 = torch.tensor([[1.0, 2.0]])
    out = slerp(z0, 2 * z0, torch.tensor([0.5]))
    torch.testing.assert_close(out, 1.5 * z0)


def test_interpolate_slerp_for_normal_lerp_for_uniform():
    z0, z1 = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([-0.2, 0.8, 0.1])
    lin = interpolate(z0, z1, 5, "uniform")
    assert lin.shape == (5, 3)
    torch.testing.assert_close(lin, z0 + torch.linspace(0, 1, 5)[:, None] * (z1 - z0))
    torch.testing.assert_close(lerp(z0[None], z1[None], torch.tensor([2.0]))[0], 2 * z1 - z0)  # extrapolates
    sph = interpolate(z0, z1, 5, "normal")
    torch.testing.assert_close(sph[[0, -1]], torch.stack([z0, z1]))
    assert not torch.allclose(sph[2], lin[2])  # a curve, not the chord
    with pytest.raises(ValueError, match="latent"):
        interpolate(z0, z1, 5, "cauchy")


def test_interpolation_grid_shapes_and_seed(fake):
    G = StrokeG()
    images, labels, conf = interpolation_grid(G, fake, pairs=3, steps=4, seed=5)
    assert images.shape == (12, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (12,) and conf.shape == (12,)
    assert float(conf.min()) >= 0.0 and float(conf.max()) <= 1.0
    again = interpolation_grid(G, fake, pairs=3, steps=4, seed=5)
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert not torch.equal(images, interpolation_grid(G, fake, pairs=3, steps=4, seed=6)[0])


def test_interpolation_png_same_bytes_and_size(fake):
    from PIL import Image

    images, labels, _ = interpolation_grid(StrokeG(), fake, pairs=8, steps=10, seed=0)
    png = interpolation_png(images, labels, 8, 10)
    assert png == interpolation_png(images, labels, 8, 10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = Image.open(io.BytesIO(png)).size
    assert (width, height) == (640, pytest.approx(596, abs=20))  # 10 x 8 frames of 56 px + gaps


# ----------------------------------------------------------------------------- features

def test_float_features_equal_uint8_features_on_grey_levels(mnist):
    levels = torch.randint(0, 256, (16, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    x = levels.float() / 127.5 - 1  # exactly representable grey levels in [-1, 1]
    assert torch.equal(to_uint8(x), levels.to(torch.uint8))
    torch.testing.assert_close(float_features(mnist, x, batch_size=5),
                               extract(mnist, levels.to(torch.uint8), kind="features"),
                               rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- path length

def test_trimmed_mean_drops_stylegan_percentiles():
    assert trimmed_mean(torch.arange(200.0)) == (99.5, 198)  # drops 0 and 199
    d = torch.ones(200)
    d[7] = 1e6
    assert trimmed_mean(d) == (1.0, 199)


def test_ppl_of_constant_g_is_zero(fake):
    value, extras = perceptual_path_length(ConstantG(), fake, n_paths=50, seed=0)
    assert value == 0.0 and extras["raw_mean"] == 0.0


def test_ppl_scales_as_gain_squared(fake):
    lo = perceptual_path_length(TiledLinearG(1.0, nz=8, latent="normal"), fake, n_paths=200)[0]
    hi = perceptual_path_length(TiledLinearG(2.0, nz=8, latent="normal"), fake, n_paths=200)[0]
    assert lo > 0
    assert hi / lo == pytest.approx(4.0, rel=0.02)


def test_ppl_known_answer_uniform_linear_g(fake):
    """d / eps^2 = (0.5 * 0.1 * gain)^2 * (784 / nz) * |z2 - z1|^2 for lerp paths; E|z2 - z1|^2
    = nz * 2 / 3 for U(-1, 1)^nz, so the untrimmed mean is 0.0025 * 784 * 2 / 3 * gain^2."""
    gain = 2.0
    value, extras = perceptual_path_length(TiledLinearG(gain), fake, n_paths=1000, seed=3)
    expected = 0.0025 * 784 * 2 / 3 * gain ** 2
    assert extras["raw_mean"] == pytest.approx(expected, rel=0.08)
    assert value == pytest.approx(expected, rel=0.1)  # the trimmed mean, slightly lower
    assert extras["check_value"] == pytest.approx(value, rel=0.01)  # linear: eps does not matter
    assert extras["n_kept"] == pytest.approx(980, abs=2)


def test_path_distances_seeded_and_batch_independent(fake):
    G = build_models("dcgan", (1, 28, 28), size="tiny")[0]
    a = path_distances(G, fake, n_paths=40, eps=1e-2, seed=1)
    assert a.shape == (40,) and a.dtype == torch.float64 and float(a.min()) >= 0
    assert torch.equal(a, path_distances(G, fake, n_paths=40, eps=1e-2, seed=1))
    torch.testing.assert_close(a, path_distances(G, fake, n_paths=40, eps=1e-2, seed=1, batch_size=7),
                               rtol=1e-2, atol=0)
    assert not torch.equal(a, path_distances(G, fake, n_paths=40, eps=1e-2, seed=2))
    assert G.training  # its mode is restored


def test_ppl_rejects_w_space(fake):
    with pytest.raises(ValueError, match="mapping"):
        perceptual_path_length(StrokeG(), fake, n_paths=4, space="w")


# ----------------------------------------------------------------------------- vector arithmetic

def test_ink_and_slant_known_answers():
    G = StrokeG()
    z = torch.zeros(3, 6)
    z[:, 0] = torch.tensor([-1.0, 0.0, 1.0])
    widths = 3 + 1.5 * torch.tanh(z[:, 0])
    torch.testing.assert_close(ink(decode(G, z)), 20 * widths, rtol=1e-5, atol=1e-3)
    z = torch.zeros(3, 6)
    z[:, 2] = torch.tensor([-1.0, 0.0, 1.0])  # leans left, upright, leans right
    torch.testing.assert_close(slant(decode(G, z)), 0.25 * torch.tanh(z[:, 2]), rtol=0.03, atol=1e-4)


def test_vector_arithmetic_moves_thickness_and_slant(fake):
    result = vector_arithmetic(StrokeG(), fake, pairs=((0, 1),), seed=0, n_samples=400)
    thick, lean = result.cases
    assert (thick.attribute, lean.attribute) == ("thickness", "slant")
    assert thick.n == latent.N_RESULTS * (1 + latent.N_NOISE)
    for case in (thick, lean):
        assert case.skipped is None
        assert case.share_moved == pytest.approx(1.0, abs=0.03)
        assert 1.0 < case.shift < 6.0  # in std of class b's attribute
        assert -1.0 < case.baseline_shift < 1.5
        assert 0.3 < case.baseline_share_b < 0.7  # random z: either half
        assert 0.7 < case.share_b <= 1.0  # z[1] of the result is the thin-b triple's, about
    assert 0.6 < thick.baseline_share_moved < 0.97  # the thin-b mean is a low bar
    assert 0.3 < lean.baseline_share_moved < 0.7  # upright ~ 0 slant: half lean right
    assert thick.images is not None and thick.images.shape == (4, 1, 28, 28)
    assert thick.image_labels[:3] == (0, 0, 1)
    assert sum(result.class_counts) == 400  # every stroke is a confident 0 or 1
    assert result.protocol["extractor"] == "fake_pixels" and result.protocol["group"] == 3


def test_vector_arithmetic_skips_absent_classes_and_draws(fake):
    result = vector_arithmetic(StrokeG(), fake, pairs=((0, 1), (2, 3)), seed=0, n_samples=200,
                               attributes=("thickness",))
    assert result.cases[1].skipped == ("class 2: 0 confident samples; class 3: 0 confident "
                                       "samples (need 12)")
    assert math.isnan(result.cases[1].share_b)
    png = arithmetic_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == arithmetic_png(result)
    none = vector_arithmetic(StrokeG(), fake, pairs=((2, 3),), seed=0, n_samples=50)
    assert arithmetic_png(none)[:8] == b"\x89PNG\r\n\x1a\n"


def test_vector_arithmetic_refuses_conditional_g(fake):
    G = build_models("dcgan", (1, 28, 28), size="tiny", conditional=True)[0]
    with pytest.raises(ValueError, match="unconditional"):
        vector_arithmetic(G, fake, n_samples=20)
    with pytest.raises(ValueError, match="unknown attribute"):
        vector_arithmetic(StrokeG(), fake, attributes=("colour",), n_samples=20)


# ----------------------------------------------------------------------------- all three

def test_latent_checks_with_the_mnist_classifier(mnist):
    torch.manual_seed(0)
    G = build_models("dcgan", (1, 28, 28), size="tiny")[0]
    kw = {"pairs": 2, "steps": 3, "n_paths": 32, "n_samples": 64, "class_pairs": ((1, 7),)}
    report = latent_checks(G, mnist, seed=0, **kw)
    assert report.ppl >= 0 and set(report.seconds) == {"interpolation", "ppl", "arithmetic"}
    assert report.ppl == latent_checks(G, mnist, seed=0, **kw).ppl  # seeded
    protocol = report.ppl_extras["protocol"]
    assert protocol["extractor"] == "mnist_classifier" and len(protocol["extractor_sha256"]) == 64
    assert (protocol["eps"], protocol["n_paths"], protocol["space"]) == (1e-4, 32, "z")
    assert protocol["percentile_filter"] == [1.0, 99.0] and "not LPIPS" in protocol["distance"]
    assert report.arithmetic is not None and len(report.arithmetic.cases) == 2
    assert report.interpolation_png[:8] == b"\x89PNG\r\n\x1a\n"
    lines = markdown_lines(report, "a.png", "b.png")
    text = "\n".join(lines)
    assert "lower PPL is smoother" in text and "(a.png)" in text and "(b.png)" in text
    assert "random z" in text and protocol["extractor_sha256"][:12] in text
    assert lines == markdown_lines(report, "a.png", "b.png")


def test_latent_checks_conditional_g_skips_arithmetic(fake):
    G = build_models("dcgan", (1, 28, 28), size="tiny", conditional=True)[0]
    report = latent_checks(G, fake, pairs=2, steps=3, n_paths=16)
    assert report.arithmetic is None and report.arithmetic_png is None
    assert "conditional" in (report.arithmetic_note or "")
    assert "conditional" in "\n".join(markdown_lines(report))
