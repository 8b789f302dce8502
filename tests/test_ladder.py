"""The calibration ladder: damage functions on known answers, the rungs on the real MNIST (order
and class coverage of damaged digits), the per-protocol cache, `gan-bench score --ladder`, and the
confident-share record."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from gan_bench import cli, ladder
from gan_bench.metrics import real_features
from gan_bench.metrics.mode_coverage import confident_share


# ----------------------------------------------------------------------------- damage, known answers
def test_pixel_noise_has_the_stated_sigma_and_stays_uint8():
    x = torch.full((200, 1, 28, 28), 128, dtype=torch.uint8)  # mid-grey: no clipping at sigma 25
    y = ladder.pixel_noise(x, 25.0, seed=0)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    resid = y.float() - 128
    assert resid.std().item() == pytest.approx(25.0, rel=0.02)
    assert resid.mean().item() == pytest.approx(0.0, abs=0.3)
    assert torch.equal(y, ladder.pixel_noise(x, 25.0, seed=0))  # seeded


def test_gaussian_blur_keeps_constants_and_spreads_a_point_by_sigma():
    flat = torch.full((2, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(ladder.gaussian_blur(flat, 2.0), flat)  # replicated edges: constant stays
    point = torch.zeros((1, 1, 29, 29), dtype=torch.uint8)
    point[0, 0, 14, 14] = 255
    out = ladder.gaussian_blur(point, 1.0).double()[0, 0]
    total = out.sum().item()
    assert total == pytest.approx(255.0, rel=0.05)  # mass kept (up to uint8 rounding)
    r = torch.arange(29, dtype=torch.float64) - 14
    var_x = (out.sum(0) * r ** 2).sum().item() / total
    assert var_x == pytest.approx(1.0, rel=0.15)  # second moment = sigma^2


def test_pick_draws_only_the_wanted_labels_and_repeats_only_when_short():
    labels = torch.tensor([0, 1, 1, 2, 3, 1, 4, 5])
    idx = ladder._pick(labels, 3, lambda lab: lab == 1)
    assert sorted(idx.tolist()) == [1, 2, 5]
    many = ladder._pick(labels, 10, lambda lab: lab == 1)
    assert len(many) == 10 and set(many.tolist()) <= {1, 2, 5}
    assert set(ladder._pick(labels, 4, lambda lab: lab <= 2).tolist()) <= {0, 1, 2, 3, 5}


def test_confident_share_known_answers():
    logits = np.array([[10.0, 0.0], [0.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
    # max probabilities: 0.99995, 0.5, 0.9526, 0.5
    assert confident_share(logits) == pytest.approx(0.5)
    assert confident_share(logits, 0.96) == pytest.approx(0.25)
    assert confident_share(logits, 0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        confident_share(logits, 0.0)
    with pytest.raises(ValueError, match="finite"):
        confident_share(np.array([[np.nan, 1.0]]))


# ----------------------------------------------------------------------------- the rungs, real MNIST
@pytest.fixture
def private_ladder_cache(mnist_arrays, monkeypatch, tmp_cache):
    """The real MNIST through a private cache (ladder entries and real features both)."""
    from gan_bench.data.mnist import MNIST

    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (mnist_arrays, "real MNIST (test)"))
    real_features.clear_memo()
    yield tmp_cache
    real_features.clear_memo()


def test_rungs_on_real_mnist_are_ordered_and_count_classes_as_stated(mnist_arrays, private_ladder_cache):
    rows = ladder.ladder_rows("mnist", n_fake=500, n_real=1000)
    assert [r["label"] for r in rows] == [
        "real train (seeded subset)", "real test split itself", "pixel noise sigma 25",
        "blur sigma 1 px", "digits 0-4 only", "pixel noise sigma 64", "blur sigma 2 px",
        "one class (digit 1)", "uniform noise"]
    v = {r["label"]: r["values"] for r in rows}
    fid = {k: x["fid_mnist"] for k, x in v.items()}
    # damage makes FID worse, more damage more so; uniform noise is the floor
    assert fid["real train (seeded subset)"] < 0.2 * fid["pixel noise sigma 25"]
    assert fid["pixel noise sigma 25"] < fid["pixel noise sigma 64"] < fid["uniform noise"]
    assert fid["blur sigma 1 px"] < fid["blur sigma 2 px"]
    assert fid["one class (digit 1)"] > fid["digits 0-4 only"]
    assert max(fid.values()) == fid["uniform noise"]
    # classes covered: dropped classes show; real digits nearly all confident
    assert v["real train (seeded subset)"]["classes_covered"] == 10
    assert v["digits 0-4 only"]["classes_covered"] in (5, 6)  # 1% share: a stray 6th possible
    assert v["one class (digit 1)"]["classes_covered"] in (1, 2)
    assert 0.95 <= v["real train (seeded subset)"]["confident_share"] <= 1.0
    assert 0.5 <= v["pixel noise sigma 25"]["confident_share"] <= 0.95
    # every rung scored on one protocol, the one asked for
    protos = {(r["protocol"]["n_fake"], r["protocol"]["n_real"], r["protocol"]["real_split"]) for r in rows}
    assert protos == {(500, 1000, "test")}


def test_ladder_is_cached_per_protocol(mnist_arrays, private_ladder_cache, monkeypatch):
    first = ladder.ladder_rows("mnist", n_fake=200, n_real=300)
    files = list((private_ladder_cache / "ladder").glob("*.json"))
    assert len(files) == 1
    with monkeypatch.context() as m:
        m.setattr(ladder, "damaged_sets", lambda *a, **k: pytest.fail("recomputed"))
        assert ladder.ladder_rows("mnist", n_fake=200, n_real=300) == first
    files[0].write_text("{not json")  # a damaged cache entry is recomputed, never trusted
    assert ladder.ladder_rows("mnist", n_fake=200, n_real=300)[0]["values"] == pytest.approx(
        first[0]["values"])
    ladder.ladder_rows("mnist", n_fake=200, n_real=400)  # another protocol: another entry
    assert len(list((private_ladder_cache / "ladder").glob("*.json"))) == 2


def test_ladder_refuses_datasets_without_a_ladder():
    from gan_bench.errors import UserInputError

    with pytest.raises(UserInputError, match="ladder: defined for mnist"):
        ladder.ladder_rows("ring8", n_fake=10, n_real=10)
    assert ladder.ladder_markdown("ring8", n_fake=10, n_real=10) == []


def test_score_cli_prints_the_ladder_on_the_same_protocol(mnist_arrays, private_ladder_cache,
                                                         tmp_path, monkeypatch, capsys):
    fake = tmp_path / "fake.npz"
    np.savez(fake, x=mnist_arrays["train_x"][:300])
    args = ["gan-bench", "score", "--dataset", "mnist", "--fake", str(fake), "--n-real", "400",
            "--metrics", "fid_mnist,modes", "--ladder"]
    monkeypatch.setattr(sys, "argv", args)
    cli.main()
    text = capsys.readouterr().out
    assert "calibration ladder (same protocol)" in text
    assert "| one class (digit 1) |" in text and "n_fake 300, n_real 400" in text
    monkeypatch.setattr(sys, "argv", args + ["--json"])
    cli.main()
    doc = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in doc["records"]} >= {"fid_mnist", "confident_share"}
    assert len(doc["ladder"]) == len(ladder.RUNGS)
