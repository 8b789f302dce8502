"""The data-copying test C_T (Meehan et al. 2020; gan_bench/metrics/data_copying.py): known
answers, and the metric through the registry and the Evaluator.

Measured values behind the bounds (2-core CPU, one thread):
- Mann-Whitney: hand-computed U and Z (exact), U equal to scipy's on tied inputs.
- C_T on a hand-made 1-D partition: -0.2041 (exact, 1/3 * 0.6124 - 2/3 * 0.6124).
- Synthetic Gaussians (16-d, 2,000 train, 1,000 test, 1,000 fakes, k=10), seeds 0-7: training
  copies + 1e-3 noise -12.26 .. -12.19 (a cell whose fakes are all closer scores
  -sqrt(3mn/(m+n+1)), -12.2 at 100 + 100); fresh draws of the same Gaussian -0.20 .. 0.62; fresh
  draws + N(0, 1) noise 8.95 .. 9.49; half copies, half fresh -6.43 .. -5.93.
- Real MNIST, mnist_classifier features, the first 2,000 training digits as T, 600 random test
  digits as P_n (random: the test split's first 5,000 digits are the cleaner ones), k=10,
  permutation seeds 0-2: 600 training digits -10.32 .. -10.26, 600 other test digits
  -0.35 .. 0.08, those with noise sigma 0.3 7.76 .. 8.36, blurred 3x3 4.43 .. 5.18.
- ring8 through the Evaluator (identity, 100,000 training points, 2,500 test points, k=50),
  seeds 0-3: 2,500 training points -9.15 .. -9.00, 2,500 fresh mixture samples -0.13 .. 0.17.
- Random digits through random_tiny (n_train=300, k=4), seeds 0-3: training digits -7.43 ..
  -6.93; training digits beyond the first n_train (not in T) -0.75 .. 0.42.
C_T's scale grows with the samples per cell (~sqrt(n/2) per cell at the extremes), so each
bound holds for its sample sizes only.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_bench.errors import UserInputError
from gan_bench.metrics import real_features
from gan_bench.metrics.data_copying import (
    Cells,
    data_copying_ct,
    kmeans,
    mann_whitney_z,
    nearest_distances,
    nearest_neighbours,
    neighbour_grid,
    neighbour_grid_png,
)
from gan_bench.metrics.evaluator import Evaluator
from gan_bench.registry import METRICS, load_builtins

load_builtins()


@pytest.fixture(autouse=True)
def fresh_memo():
    real_features.clear_memo()
    yield
    real_features.clear_memo()


# ----------------------------------------------------------------------------- Mann-Whitney

def test_mann_whitney_z_hand_computed():
    # every fake farther than every test sample: U = mn = 4; Z = (4 - 2 + 1/2) / sqrt(20/12)
    z, u = mann_whitney_z([3.0, 4.0], [1.0, 2.0])
    assert u == 4.0 and z == pytest.approx(2.5 / math.sqrt(20 / 12), rel=1e-12)
    # one tie (2 vs 2) counts 1/2, the other pairs 0: U = 0.5, Z = (0.5 - 2 + 0.5) / sqrt(20/12)
    z, u = mann_whitney_z([1.0, 2.0], [2.0, 3.0])
    assert u == 0.5 and z == pytest.approx(-1.0 / math.sqrt(20 / 12), rel=1e-12)
    # copies: fakes at distance 0, m = 3, n = 2: U = 0, Z = (0 - 3 + 1/2) / sqrt(6 * 6 / 12)
    z, u = mann_whitney_z([0.0, 0.0, 0.0], [0.5, 0.7])
    assert u == 0.0 and z == pytest.approx(-2.5 / math.sqrt(3.0), rel=1e-12)


def test_mann_whitney_u_equals_scipy_with_ties():
    from scipy.stats import mannwhitneyu

    g = np.random.default_rng(0)
    for m, n in ((5, 7), (30, 12), (1, 9)):
        q, p = g.integers(0, 6, m).astype(float), g.integers(0, 6, n).astype(float)  # many ties
        z, u = mann_whitney_z(q, p)
        assert u == pytest.approx(float(mannwhitneyu(q, p).statistic), abs=1e-9)
        assert z == pytest.approx((u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12),
                                  abs=1e-12)
    with pytest.raises(ValueError, match="non-empty"):
        mann_whitney_z([], [1.0])


# ----------------------------------------------------------------------------- C_T, k-means

def test_ct_on_a_hand_made_partition():
    # cell 0: train {0}, test {1}, fakes {0.5, 2} -> U = 1, m=2, n=1: Z = 0.5 / sqrt(2*1*4/12)
    # cell 1: train {10}, test {11, 12}, fake {10} -> U = 0, m=1, n=2: Z = -0.5 / sqrt(8/12)
    train, test = np.array([[0.0], [10.0]]), np.array([[1.0], [11.0], [12.0]])
    fake = np.array([[0.5], [2.0], [10.0]])
    cells = Cells(torch.tensor([[0.0], [10.0]], dtype=torch.float64), torch.tensor([0, 1]), 1)
    z = 0.5 / math.sqrt(8 / 12)
    value, extras = data_copying_ct(train, test, fake, k=2, min_per_cell=1, cells=cells)
    assert value == pytest.approx(z / 3 - 2 * z / 3, rel=1e-12)  # test weights 1/3, 2/3
    assert extras["cells_used"] == 2 and extras["fake_share_used"] == 1.0
    assert (extras["z_min"], extras["z_max"]) == pytest.approx((-z, z), rel=1e-12)
    # min_per_cell=2 drops cell 1 (one fake): C_T is cell 0's Z, weights renormalised
    value, extras = data_copying_ct(train, test, fake, k=2, min_per_cell=2, cells=cells)
    assert value == pytest.approx(z, rel=1e-12)
    assert extras["cells_used"] == 1 and extras["fake_share_used"] == pytest.approx(2 / 3)
    assert extras["test_share_used"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no cell holds 5 generated samples"):
        data_copying_ct(train, test, fake, k=2, min_per_cell=5, cells=cells)
    # a third centre without training rows (k-means can leave one empty) is never scored
    empty = Cells(torch.tensor([[0.0], [10.0], [100.0]], dtype=torch.float64), torch.tensor([0, 1]), 1)
    far = np.array([[100.0], [101.0]])
    value, extras = data_copying_ct(train, np.concatenate([test, far]), np.concatenate([fake, far]),
                                    k=3, min_per_cell=1, cells=empty)
    assert (extras["cells_used"], extras["cells_unscorable"]) == (2, 1)
    assert value == pytest.approx(z / 3 - 2 * z / 3, rel=1e-12)


def test_kmeans_finds_separated_blobs_and_is_deterministic():
    g = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    x = np.concatenate([c + g.standard_normal((200, 2)) for c in centres])
    a, b = kmeans(x, 3, seed=4), kmeans(x, 3, seed=4)
    assert torch.equal(a.train_labels, b.train_labels) and torch.equal(a.centres, b.centres)
    blob = np.repeat(np.arange(3), 200)
    for i in range(3):  # one cell per blob, whatever the cell numbers
        assert len(set(a.train_labels[blob == i].tolist())) == 1
    found = np.sort(a.centres.numpy(), axis=0)
    np.testing.assert_allclose(found, np.sort(centres, axis=0), atol=0.3)
    with pytest.raises(ValueError, match="k=700"):
        kmeans(x, 700)


def _gauss(n: int, seed: int, d: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ct_on_gaussians_copies_fresh_and_noisy(seed):
    train, test = _gauss(2000, 100 + seed), _gauss(1000, 200 + seed)
    g = np.random.default_rng(300 + seed)
    copies = train[g.choice(2000, 1000, replace=False)] + 1e-3 * g.standard_normal((1000, 16))
    fresh = _gauss(1000, 400 + seed)
    noisy = _gauss(1000, 500 + seed) + g.standard_normal((1000, 16))
    cells = kmeans(train, 10, seed)
    ct = {name: data_copying_ct(train, test, f, k=10, min_per_cell=20, cells=cells)[0]
          for name, f in (("copies", copies), ("fresh", fresh), ("noisy", noisy),
                          ("half", np.concatenate([copies[:500], fresh[:500]])))}
    assert -13.0 < ct["copies"] < -11.0  # measured -12.26 .. -12.19
    assert -1.5 < ct["fresh"] < 1.5  # measured -0.20 .. 0.62 over 8 seeds
    assert 7.0 < ct["noisy"] < 11.5  # measured 8.95 .. 9.49; at most ~ +12.2 (all fakes farther)
    assert -8.0 < ct["half"] < -4.0  # measured -6.43 .. -5.93


def test_nearest_distances_and_neighbours():
    train = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [1.0, 0.0]])
    fake = np.array([[0.9, 0.0], [3.0, 4.0]])
    torch.testing.assert_close(nearest_distances(fake, train), torch.tensor([0.1, 0.0], dtype=torch.float64),
                               atol=1e-9, rtol=0)
    idx = nearest_neighbours(fake, train, k=3)
    assert idx.dtype == np.int64 and idx.tolist() == [[2, 3, 0], [1, 2, 3]]  # ties: lower index
    with pytest.raises(ValueError, match="k must be in"):
        nearest_neighbours(fake, train, k=5)


# ----------------------------------------------------------------------------- real MNIST

def _noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """uint8 digits + Gaussian noise of std sigma on the [0, 1] scale, clipped and rounded."""
    g = torch.Generator().manual_seed(seed)
    y = x.float() / 255 + sigma * torch.randn(x.shape, generator=g)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """uint8 digits through a 3x3 box filter (edges: mean of the pixels inside)."""
    y = F.avg_pool2d(x.float(), 3, stride=1, padding=1, count_include_pad=False)
    return y.round().to(torch.uint8)


@pytest.fixture(scope="module")
def mnist_rungs(mnist_arrays):
    """mnist_classifier features of 2,000 training digits (T), a random 600 of the test split
    (P_n) and of the fakes: 600 training digits, another 600 test digits, those with noise
    sigma 0.3 and blurred; ~4,400 images, ~8 s on one core."""
    from gan_bench.metrics import features

    ex = features.get_extractor("mnist_classifier", "cpu")
    train = torch.from_numpy(mnist_arrays["train_x"][:2000])
    perm = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))
    test = torch.from_numpy(mnist_arrays["test_x"])[perm[:1200]]
    p_n, other = test[:600], test[600:]
    chosen = torch.from_numpy(np.random.default_rng(0).choice(2000, 600, replace=False))
    fakes = {"train": train[chosen], "test": other, "noise_0.3": _noise(other, 0.3, 0),
             "blur": _blur(other)}

    def feat(x: torch.Tensor) -> np.ndarray:
        return features.extract(ex, x, batch_size=500).numpy()

    return {"train": feat(train), "test": feat(p_n), "images": train,
            "fakes": {name: feat(x) for name, x in fakes.items()}, "fake_images": fakes}


@pytest.mark.slow
def test_ct_on_mnist_rungs(mnist_rungs):
    r = mnist_rungs
    cells = kmeans(r["train"], 10, 0)
    ct = {name: data_copying_ct(r["train"], r["test"], f, k=10, min_per_cell=20, cells=cells)
          for name, f in r["fakes"].items()}
    values = {name: v for name, (v, _) in ct.items()}
    assert -11.5 < values["train"] < -8.5, values  # copying; measured -10.26 (seed 0)
    assert -1.5 < values["test"] < 1.5, values  # held-out digits; measured 0.04
    assert 6.0 < values["noise_0.3"] < 10.5, values  # underfitting; measured 8.12
    assert 2.5 < values["blur"] < 7.5, values  # underfitting; measured 4.43
    extras = ct["test"][1]
    assert extras["n_train"] == 2000 and extras["n_test"] == 600 and extras["n_fake"] == 600
    assert 8 <= extras["cells_used"] <= 10 and extras["cells_total"] == 10


@pytest.mark.slow
def test_neighbour_grid_on_mnist(mnist_rungs):
    r = mnist_rungs
    fake_images, fake_feats = r["fake_images"]["train"][:16], r["fakes"]["train"][:16]
    idx_f = nearest_neighbours(fake_feats, r["train"], k=5)
    idx_p = nearest_neighbours(fake_images.reshape(16, -1).double(),
                               r["images"].reshape(2000, -1).double(), k=5)
    # a training digit scored as a fake is its own nearest neighbour in both spaces
    own = np.random.default_rng(0).choice(2000, 600, replace=False)[:16]
    assert idx_f[:, 0].tolist() == own.tolist() and idx_p[:, 0].tolist() == own.tolist()
    png = neighbour_grid_png(fake_images, r["images"], idx_f, idx_p)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(png) < 500_000
    assert neighbour_grid(fake_images, r["images"], fake_feats, r["train"]) == png  # same bytes
    with pytest.raises(ValueError, match="neighbour indices"):
        neighbour_grid_png(fake_images, r["images"], idx_f[:3], idx_p)


# ----------------------------------------------------------------------------- the registry

def test_registered_and_listed(monkeypatch, capsys):
    from conftest import cli_main

    entry = METRICS.entry("data_copying")
    assert entry.meta["higher_is_better"] is True and entry.meta["uses_train"] is True
    assert entry.meta["records"] == ["data_copying"]
    code, out, _ = cli_main(monkeypatch, capsys, "list", "metrics", "--json")
    listed = {e["name"]: e for e in json.loads(out)["metrics"]}
    assert code == 0 and listed["data_copying"]["params"]["k"] == 50
    assert "Meehan" in listed["data_copying"]["summary"]


@pytest.mark.parametrize("params, real_split, match", [
    ({"k": 0}, "test", "data_copying: k must be an integer >= 1, got 0"),
    ({"min_per_cell": -1}, "test", "min_per_cell must be an integer >= 1"),
    ({"n_train": 10, "k": 50}, "test", "n_train=10 training samples cannot make k=50 cells"),
    ({"cells": 5}, "test", "unknown parameter(s) cells"),
    ({}, "train", "needs real_split 'test'"),
])
def test_bad_requests_are_one_line(params, real_split, match):
    with pytest.raises(UserInputError) as info:
        Evaluator("ring8", metrics=["data_copying"], real_split=real_split,
                  params={"data_copying": params} if params else None)
    assert match in str(info.value) and "\n" not in str(info.value)


def test_evaluator_on_ring8_copies_and_fresh_samples():
    from gan_bench.data import load_dataset

    ev = Evaluator("ring8", metrics=["data_copying"], n_real=None)
    assert ev.min_samples() == 20 and ev.higher_is_better("data_copying") is True
    train = ev.train_samples()
    copies = ev.evaluate(train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:2500]])
    fresh = ev.evaluate(load_dataset("ring8", "train", n=2500, seed=7).data)
    rec = copies["data_copying"]
    assert -10.5 < rec.value < -7.5  # copying; measured -9.15
    assert -1.5 < fresh["data_copying"].value < 1.5  # measured 0.04
    proto = rec.protocol
    assert (proto["metric"], proto["extractor"], proto["extractor_sha256"]) == ("data_copying", "identity", None)
    assert (proto["n_real"], proto["real_split"], proto["n_fake"], proto["seed"]) == (2500, "test", 2500, 0)
    params = proto["params"]
    assert (params["k"], params["min_per_cell"], params["n_train"]) == (50, 20, 100_000)
    assert params["train_split"] == "train" and len(params["train_data_sha256"]) == 64
    assert rec.extra["n_train"] == 100_000 and rec.extra["cells_total"] == 50
    assert ev.train_features("identity").key["split"] == "train"


def test_evaluator_on_digits_through_an_extractor(monkeypatch, tmp_cache):
    """The image path: features of the train split cached on disk next to the reals'."""
    from gan_bench.data.mnist import MNIST

    g = np.random.default_rng(0)
    arrays = {"train_x": g.integers(0, 256, (400, 1, 28, 28), dtype=np.uint8),
              "train_y": g.integers(0, 10, 400), "test_x": g.integers(0, 256, (200, 1, 28, 28), dtype=np.uint8),
              "test_y": g.integers(0, 10, 200)}
    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (arrays, "synthetic test arrays"))
    ev = Evaluator("mnist", metrics=["data_copying@random_tiny"], n_real=None,
                   params={"data_copying": {"k": 4, "n_train": 300}})
    rec = ev.evaluate(torch.from_numpy(arrays["train_x"][:100]))["data_copying@random_tiny"]
    assert -9.0 < rec.value < -5.0  # copies of T; measured -7.43
    beyond = ev.evaluate(torch.from_numpy(arrays["train_x"][300:]))["data_copying@random_tiny"]
    assert -1.5 < beyond.value < 1.5  # training digits outside T are not copies; measured -0.45
    assert len(rec.protocol["extractor_sha256"]) == 64 and rec.protocol["params"]["n_train"] == 300
    entry = ev.train_features("random_tiny", 300)
    assert entry.key["split"] == "train" and entry.key["n_real"] == 300
    assert len(list((tmp_cache / "real_features").glob("*.npz"))) == 2  # test split and train
