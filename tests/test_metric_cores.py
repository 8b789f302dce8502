"""Known-answer tests of the pure metric cores (FID, KID, PRDC, IS, mode coverage, records).

Every check is two-sided: closed forms where they exist, reference implementations
(torchmetrics, a brute-force numpy PRDC) where they do not. CPU only, small sizes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial
import torch
from torch import nn

from gan_bench.metrics import fid as fid_mod
from gan_bench.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from gan_bench.metrics.inception_score import inception_score_from_logits, inception_score_from_probs
from gan_bench.metrics.kid import kid, kid_subset_size, polynomial_mmd2
from gan_bench.metrics.mode_coverage import STACKED_MNIST_N, class_coverage, mixture_modes, stacked_mnist_modes
from gan_bench.metrics.prdc import density_coverage, knn_radii, prdc, precision_recall
from gan_bench.metrics.records import PROTOCOL_FIELDS, MetricRecord, base_protocol, package_versions

METHODS = ("eigh", "sqrtm")


def random_cov(rng: np.random.Generator, d: int, floor: float = 0.1) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + floor * np.eye(d)


def random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# ----------------------------------------------------------------------------- FID


@pytest.mark.parametrize("method", METHODS)
def test_fd_diagonal_closed_form(method):
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    a[0] = 0.0  # a singular covariance: no Cholesky factor, the eigh path's fallback
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_fd_commuting_covariances_closed_form(method):
    # S1, S2 share eigenvectors: FD = |dmu|^2 + sum (sqrt(l1) - sqrt(l2))^2
    rng = np.random.default_rng(1)
    q = random_rotation(rng, 8)
    l1, l2 = rng.uniform(0.05, 4, size=8), rng.uniform(0.05, 4, size=8)
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_fd_non_commuting_2d_closed_form(method):
    # 2x2: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)) for M = S1 S2 (eigenvalues >= 0);
    # S2 = R S1 R^T with a 40 degree rotation, so S1 and S2 do not commute.
    s1 = np.array([[2.0, 0.6], [0.6, 0.5]])
    t = math.radians(40)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    s2 = rot @ s1 @ rot.T
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.array([0.3, -1.0]), np.array([1.0, 0.5])
    m = s1 @ s2
    tr_sqrt = math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_fd_identical_stats_zero_and_symmetric(method):
    rng = np.random.default_rng(2)
    mu, s = rng.normal(size=32), random_cov(rng, 32)
    assert frechet_distance(mu, s, mu, s, method=method) == pytest.approx(0.0, abs=1e-6)
    mu2, s2 = rng.normal(size=32), random_cov(rng, 32)
    forward = frechet_distance(mu, s, mu2, s2, method=method)
    assert forward > 1.0
    assert frechet_distance(mu2, s2, mu, s, method=method) == pytest.approx(forward, rel=1e-9)


def test_fd_eigh_matches_scipy_sqrtm_path():
    rng = np.random.default_rng(3)
    for d, floor in ((16, 0.1), (64, 1e-3)):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_cov(rng, d, floor), random_cov(rng, d, floor)
        expected = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
        assert frechet_distance(mu1, s1, mu2, s2, method="eigh") == pytest.approx(expected, rel=1e-8)


def test_fid_from_samples_close_to_closed_form():
    # 20k samples per side in D=4 (FD about 1.7): measured over 10 seeds the estimate's bias is
    # -0.006 and its std 0.016, so abs 0.08 is about 5 std.
    rng = np.random.default_rng(4)
    s1, s2 = random_cov(rng, 4, 0.5), random_cov(rng, 4, 0.5)
    mu1, mu2 = np.zeros(4), np.full(4, 0.5)
    exact = frechet_distance(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=20_000)
    y = rng.multivariate_normal(mu2, s2, size=20_000)
    assert fid_from_features(x, y) == pytest.approx(exact, abs=0.08)
    assert fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == \
        pytest.approx(exact, abs=0.08)


def test_gaussian_stats_matches_np_cov():
    x = np.random.default_rng(5).normal(size=(50, 7))
    mu, sigma = gaussian_stats(torch.from_numpy(x))
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-14)
    assert mu.dtype == sigma.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_fid_singular_covariance_is_finite(method):
    # N < D: both covariances have rank 4 < 16
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 16)), rng.normal(size=(5, 16)) + 0.5
    value = fid_from_features(x, y, method=method)
    assert math.isfinite(value) and value > 0
    assert value == pytest.approx(fid_from_features(x, y, method="eigh"), rel=1e-6)
    assert fid_from_features(x, x, method=method) == pytest.approx(0.0, abs=1e-6)


def test_sqrtm_retries_with_eps_when_not_finite(monkeypatch):
    calls = []
    real_sqrtm = scipy.linalg.sqrtm

    def flaky_sqrtm(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid_mod.scipy.linalg, "sqrtm", flaky_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-3, method="sqrtm")
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-3 * np.eye(2)) @ (s2 + 1e-3 * np.eye(2)))
    expected = 2 * (np.sqrt(1.001) - np.sqrt(4.001)) ** 2 - 4e-3  # eps only in the cross term
    assert value == pytest.approx(expected, rel=1e-9)


def test_sqrtm_significant_imaginary_part_raises():
    # not a covariance: sqrtm(diag(1, -1)) = diag(1, i)
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2), method="sqrtm")
    for s1, s2 in ((np.diag([1.0, -1.0]), np.eye(2)), (np.eye(2), np.diag([1.0, -1.0]))):
        with pytest.raises(ValueError, match="positive semi-definite"):
            frechet_distance(np.zeros(2), s1, np.zeros(2), s2, method="eigh")


class IdentityFeatures(nn.Module):
    """Passes float features through: lets torchmetrics' metrics run on our test features."""

    num_features = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    rng = np.random.default_rng(7)
    real = torch.from_numpy(rng.normal(size=(600, 16)))
    fake = torch.from_numpy(rng.normal(size=(500, 16)) * 1.3 + 0.2)
    metric = FrechetInceptionDistance(feature=IdentityFeatures())
    metric.update(real[:300], real=True)  # two batches: its running sums are exercised too
    metric.update(real[300:], real=True)
    metric.update(fake, real=False)
    expected = float(metric.compute())
    for method in METHODS:
        assert fid_from_features(real, fake, method=method) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("bad, match", [
    ((np.zeros((1, 3)), np.zeros((5, 3))), "at least 2 samples"),
    ((np.zeros((5, 3)), np.zeros((5, 4))), "dimensions differ"),
    ((np.zeros(5), np.zeros((5, 1))), "2-D"),
    ((np.full((5, 3), np.nan), np.zeros((5, 3))), "non-finite"),
])
def test_fid_input_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        fid_from_features(*bad)


def test_frechet_distance_validation():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="svd")


# ----------------------------------------------------------------------------- KID


def test_kid_identical_distributions_near_zero():
    # Null std of the estimate at N = 1000, D = 64 measured at 1.3e-3: abs 6e-3 is ~4.5 std.
    rng = np.random.default_rng(8)
    mean, std = kid(rng.normal(size=(1000, 64)), rng.normal(size=(1000, 64)), subsets=10,
                    subset_size=500)
    assert mean == pytest.approx(0.0, abs=6e-3)
    assert 0.0 < std < 6e-3


def test_kid_grows_with_shift():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(600, 16))
    fake = rng.normal(size=(600, 16))
    means = [kid(real, fake + shift, subsets=10, subset_size=300)[0] for shift in (0.25, 0.5, 1.0)]
    assert means[0] > 0.05  # null std at this size is ~3e-3
    assert means[0] < means[1] < means[2]


def test_kid_full_subset_matches_torchmetrics():
    # subset_size = N: every subset is the whole set, so the mean is the full-set MMD^2, std 0
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(10)
    real = torch.from_numpy(rng.normal(size=(300, 16)))
    fake = torch.from_numpy(rng.normal(size=(300, 16)) + 0.3)
    with pytest.warns(UserWarning, match="save all extracted features"):
        metric = KernelInceptionDistance(feature=IdentityFeatures(), subsets=2, subset_size=300)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    expected = float(metric.compute()[0])
    mean, std = kid(real, fake, subsets=3, subset_size=300)
    assert mean == pytest.approx(expected, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert polynomial_mmd2(real, fake) == pytest.approx(expected, rel=1e-9)


def test_kid_seeded_and_clipped():
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(200, 8)), rng.normal(size=(150, 8)) + 0.2
    assert kid(real, fake, subsets=5, subset_size=100, seed=3) == \
        kid(real, fake, subsets=5, subset_size=100, seed=3)
    assert kid(real, fake, subsets=5, subset_size=100, seed=3) != \
        kid(real, fake, subsets=5, subset_size=100, seed=4)
    assert kid_subset_size(200, 150, 1000) == 150
    # clipped to 150: equal to asking for 150 explicitly
    assert kid(real, fake, subsets=2, subset_size=1000) == kid(real, fake, subsets=2, subset_size=150)


def test_kid_input_validation():
    with pytest.raises(ValueError, match="dimensions differ"):
        kid(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kid(np.zeros((1, 3)), np.zeros((10, 3)))


# ----------------------------------------------------------------------------- PRDC


def reference_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> dict:
    """Brute force after the authors' code (Kynkaanniemi: <=; Naeem's prdc: <)."""
    d_rr = scipy.spatial.distance.cdist(real, real)
    d_ff = scipy.spatial.distance.cdist(fake, fake)
    d_rf = scipy.spatial.distance.cdist(real, fake)
    r_pr, f_pr = np.sort(d_rr, axis=1)[:, k_pr], np.sort(d_ff, axis=1)[:, k_pr]
    r_dc = np.sort(d_rr, axis=1)[:, k_dc]
    return {
        "precision": (d_rf <= r_pr[:, None]).any(axis=0).mean(),
        "recall": (d_rf <= f_pr[None, :]).any(axis=1).mean(),
        "density": (d_rf < r_dc[:, None]).sum() / (k_dc * fake.shape[0]),
        "coverage": (d_rf.min(axis=1) < r_dc).mean(),
    }


def test_prdc_matches_brute_force_reference_with_small_blocks():
    rng = np.random.default_rng(12)
    real = rng.normal(size=(300, 5))
    fake = rng.normal(size=(250, 5)) * 1.2 + 0.3
    expected = reference_prdc(real, fake, 3, 5)
    for block in (8 * 300 * 41, 256 * 2**20):  # 41-row blocks (with a remainder), then one
        got = prdc(real, fake, max_block_bytes=block)
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, abs=1e-12), name
    assert 0.3 < got["precision"] < 1.0 and 0.3 < got["recall"] < 1.0
    p, r = precision_recall(real, fake, k=3)
    d, c = density_coverage(real, fake, k=5)
    assert (p, r, d, c) == pytest.approx(tuple(expected[n] for n in
                                               ("precision", "recall", "density", "coverage")))


def test_prdc_identical_sets():
    # real = fake: every fake sits on its real twin; each real ball (strict <) holds exactly k
    # fakes (itself and its k-1 nearest), so density = 1 up to ties.
    x = torch.randn(400, 8, generator=torch.Generator().manual_seed(13))
    out = prdc(x, x.clone())
    assert out == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0},
                                abs=1e-3)


def test_prdc_collapsed_fakes():
    gen = torch.Generator().manual_seed(14)
    real = torch.randn(500, 8, generator=gen, dtype=torch.float64)
    fake = real[0] + 1e-3 * torch.randn(200, 8, generator=gen, dtype=torch.float64)
    out = prdc(real, fake)
    assert out["precision"] == pytest.approx(1.0)
    assert out["recall"] == pytest.approx(1 / 500)  # only real[0] lies inside the fake manifold
    assert out["recall"] < 0.1 and out["coverage"] < 0.1
    assert out["coverage"] == pytest.approx(
        float((torch.cdist(real, real[:1])[:, 0] < knn_radii(real, 5)).double().mean()), abs=1 / 500)


def test_prdc_far_fakes():
    real = torch.randn(200, 4, generator=torch.Generator().manual_seed(15))
    out = prdc(real, real + 100.0)
    assert out == pytest.approx({"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0},
                                abs=0)


def test_knn_radii_known_answer():
    # points on a line at 0, 1, 3, 6, 10: nearest-other distances known by hand
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    torch.testing.assert_close(knn_radii(x, 1), torch.tensor([1.0, 1.0, 2.0, 3.0, 4.0],
                                                             dtype=torch.float64))
    torch.testing.assert_close(knn_radii(x, (1, 2))[:, 1],
                               torch.tensor([3.0, 2.0, 3.0, 4.0, 7.0], dtype=torch.float64))


def test_prdc_input_validation():
    with pytest.raises(ValueError, match="dimensions differ"):
        prdc(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="at least 6 samples"):
        density_coverage(np.random.rand(5, 3), np.random.rand(10, 3), k=5)
    with pytest.raises(ValueError, match="fake features: k=3"):
        precision_recall(np.random.rand(10, 3), np.random.rand(3, 3), k=3)


# ----------------------------------------------------------------------------- IS


def test_is_balanced_one_hot_equals_n_classes():
    probs = np.eye(10)[np.arange(1000) % 10]  # every split of 100 rows holds 10 of each class
    mean, std = inception_score_from_probs(probs, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-9)
    logits = torch.from_numpy(50.0 * probs).float()
    assert inception_score_from_logits(logits)[0] == pytest.approx(10.0, rel=1e-6)


def test_is_collapsed_or_uninformative_is_one():
    same_class = np.tile(np.eye(10)[3], (100, 1))
    uniform = np.full((100, 10), 0.1)
    for probs in (same_class, uniform):
        mean, std = inception_score_from_probs(probs, splits=5)
        assert (mean, std) == pytest.approx((1.0, 0.0), abs=1e-9)


def test_is_two_class_closed_form():
    # half (1, 0), half (0.5, 0.5): p(y) = (0.75, 0.25)
    probs = np.array([[1.0, 0.0], [0.5, 0.5]] * 50)
    kl_a = math.log(1 / 0.75)
    kl_b = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    mean, _ = inception_score_from_probs(probs, splits=1)
    assert mean == pytest.approx(math.exp((kl_a + kl_b) / 2), rel=1e-12)


def test_is_logits_match_probs_path():
    z = np.random.default_rng(16).normal(size=(200, 7)) * 3
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert inception_score_from_logits(z, splits=4) == \
        pytest.approx(inception_score_from_probs(probs, splits=4), rel=1e-10)


def test_is_input_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score_from_probs(np.full((20, 4), 0.3), splits=2)
    with pytest.raises(ValueError, match="at least splits=10"):
        inception_score_from_probs(np.full((5, 4), 0.25), splits=10)
    with pytest.raises(ValueError, match="2-D"):
        inception_score_from_logits(np.zeros(10), splits=1)


# ----------------------------------------------------------------------------- mode coverage


def test_class_coverage_balanced_and_three_classes():
    out = class_coverage(np.arange(1000) % 10)
    assert out["classes_covered"] == 10 and out["counts"] == [100] * 10
    assert out["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    out = class_coverage(torch.tensor([2, 5, 7] * 100))
    assert out["classes_covered"] == 3
    assert out["kl_to_uniform"] == pytest.approx(math.log(10 / 3), rel=1e-12)
    assert out["shares"][5] == pytest.approx(1 / 3)


def test_class_coverage_min_share_default():
    # default min_share = 0.1 / 10 = 1%: 5 of 1000 (0.5%) is not covered, 20 (2%) is
    labels = np.concatenate([np.zeros(975), np.full(5, 1), np.full(20, 2)]).astype(int)
    out = class_coverage(labels)
    assert out["min_share"] == pytest.approx(0.01)
    assert out["classes_covered"] == 2
    assert class_coverage(labels, min_share=0.0)["classes_covered"] == 10  # 0 share counts too
    assert class_coverage(labels, min_share=1e-9)["classes_covered"] == 3


def test_stacked_mnist_five_modes():
    triples = np.array([[0, 0, 0], [1, 2, 3], [9, 9, 9], [4, 0, 7], [0, 7, 4]])
    reps = np.array([10, 20, 30, 40, 100])
    out = stacked_mnist_modes(np.repeat(triples, reps, axis=0))
    assert out["modes_covered"] == 5 and out["n_modes"] == 1000 and out["n_samples"] == 200
    assert out["counts"][123] == 20 and out["counts"][407] == 40 and out["counts"][74] == 100
    p = reps / reps.sum()
    assert out["kl_to_uniform"] == pytest.approx(float(np.sum(p * np.log(p * 1000))), rel=1e-12)
    assert STACKED_MNIST_N == 26_000


def test_stacked_mnist_all_modes_uniform():
    digits = np.stack([np.arange(1000) // 100, np.arange(1000) // 10 % 10, np.arange(1000) % 10], 1)
    out = stacked_mnist_modes(digits)
    assert out["modes_covered"] == 1000 and out["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def ring8() -> np.ndarray:
    t = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def test_mixture_points_on_three_centres():
    centres = ring8()
    points = np.repeat(centres[[0, 2, 5]], [10, 5, 1], axis=0)
    out = mixture_modes(points, centres, sigma=0.01)
    assert out["modes_captured"] == 3 and out["n_modes"] == 8
    assert out["high_quality_share"] == pytest.approx(1.0)
    assert out["counts"] == [10, 0, 5, 0, 0, 1, 0, 0]


def test_mixture_far_points_and_3_sigma_boundary():
    centres = ring8()
    far = centres[:4] * 1.5  # 0.5 away from the ring = 50 sigma
    out = mixture_modes(far, centres, sigma=0.01)
    assert (out["modes_captured"], out["high_quality_share"]) == (0, 0.0)
    assert sum(out["nearest_counts"]) == 4
    inside = centres[1] + np.array([0.029, 0.0])  # 2.9 sigma: high quality
    outside = centres[6] + np.array([0.0, 0.031])  # 3.1 sigma: not
    out = mixture_modes(torch.tensor(np.stack([inside, outside])), torch.tensor(centres), 0.01)
    assert (out["modes_captured"], out["high_quality_share"]) == (1, 0.5)
    assert out["counts"][1] == 1


def test_mode_coverage_input_validation():
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        class_coverage(np.array([0, 10]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        stacked_mnist_modes(np.zeros((5, 2), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        class_coverage(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="share D"):
        mixture_modes(np.zeros((5, 3)), ring8(), 0.01)


# ----------------------------------------------------------------------------- records


def test_metric_record_round_trip_and_flat():
    protocol = base_protocol(metric="fid", extractor="mnist_classifier", n_real=10_000,
                             n_fake=np.int64(10_000), real_split="test", dtype="float64", seed=0,
                             resize=(28, 28), params={"method": "eigh"})
    assert set(protocol) == set(PROTOCOL_FIELDS) and protocol["extractor_sha256"] is None
    record = MetricRecord("kid", np.float32(0.25), protocol, {"std": np.float64(0.125)})
    data = json.loads(json.dumps(record.to_dict()))
    assert data["value"] == 0.25 and data["protocol"]["n_fake"] == 10_000
    assert data["protocol"]["resize"] == [28, 28]
    assert MetricRecord.from_dict(data) == record
    assert record.flat("eval/") == {"eval/kid": 0.25, "eval/kid_std": 0.125}


def test_protocol_versions_and_validation():
    versions = package_versions()
    assert set(versions) == {"torch", "torchvision", "numpy", "scipy", "torchmetrics", "gan_bench"}
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert base_protocol()["versions"] == versions
    with pytest.raises(ValueError, match="unknown protocol field.*n_sample"):
        base_protocol(n_sample=5)
    with pytest.raises(ValueError, match="finite"):
        MetricRecord("fid", float("nan"), {})
    with pytest.raises(ValueError, match="non-empty"):
        MetricRecord("", 1.0, {})
