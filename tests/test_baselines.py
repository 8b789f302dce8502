"""Baselines: the MLP's BatchNorm G option, the `small` sizes, and a tiny `gan-bench baselines`
(two presets, a second each, on synthetic MNIST) that writes the report, its grids and the
results it re-renders from."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from torch import nn

from gan_bench import baselines as bl
from gan_bench import cli
from gan_bench.metrics import real_features
from gan_bench.models.base import ModelConfigError, build_models


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_mlp_generator_batch_norms_by_default_and_the_paper_variant_does_not(builtins_loaded):
    g, d = build_models("mlp", (1, 28, 28))
    assert _count(g, nn.BatchNorm1d) == 3 and _count(d, nn.BatchNorm1d) == 0
    g_plain, _ = build_models("mlp", (1, 28, 28), batch_norm_g=False)
    assert _count(g_plain, nn.BatchNorm1d) == 0
    widths = [m.out_features for m in g.modules() if isinstance(m, nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    g_toy, _ = build_models("toy_mlp", (2,))
    assert _count(g_toy, nn.BatchNorm1d) == 0  # the mixtures' nets keep their plain G
    assert _count(build_models("toy_mlp", (2,), batch_norm_g=True)[0], nn.BatchNorm1d) == 3


def test_batch_norm_g_is_checked(builtins_loaded):
    for arch in ("dcgan", "infogan"):
        with pytest.raises(ModelConfigError, match="always uses BatchNorm"):
            build_models(arch, (1, 28, 28), batch_norm_g=False)
        build_models(arch, (1, 28, 28), batch_norm_g=True)  # stating the default is fine
    with pytest.raises(ModelConfigError, match="batch_norm_g must be true, false or null"):
        build_models("mlp", (1, 28, 28), batch_norm_g="yes")


@pytest.mark.parametrize("arch, shape, expect", [
    ("dcgan", (1, 28, 28), 24), ("infogan", (1, 28, 28), 256), ("mlp", (1, 28, 28), 128),
    ("toy_mlp", (2,), 64)])
def test_small_size_sits_between_tiny_and_full(builtins_loaded, arch, shape, expect):
    sizes = {s: sum(p.numel() for p in build_models(arch, shape, size=s)[0].parameters())
             for s in ("tiny", "small", "full")}
    assert sizes["tiny"] < sizes["small"] < sizes["full"]
    g, _ = build_models(arch, shape, size="small")
    first = next(m for m in g.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d)))
    width = first.out_features if isinstance(first, nn.Linear) else first.out_channels
    assert width == (4 * expect if arch == "dcgan" else expect)
    x = g(g.sample_z(4))
    assert x.shape == (4, *shape)


def test_every_image_preset_is_a_baseline(builtins_loaded):
    names = bl.mnist_presets()
    assert {"gan", "ns_gan", "dcgan", "lsgan", "wgan", "wgan_gp", "sngan"} <= set(names)


@pytest.fixture
def tiny_mnist(monkeypatch, tmp_cache):
    from gan_bench.data.mnist import MNIST

    g = np.random.default_rng(0)
    arrays = {"train_x": g.integers(0, 256, (400, 1, 28, 28), dtype=np.uint8),
              "train_y": np.arange(400, dtype=np.int64) % 10,
              "test_x": g.integers(0, 256, (300, 1, 28, 28), dtype=np.uint8),
              "test_y": np.arange(300, dtype=np.int64) % 10}
    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (arrays, "synthetic test arrays"))
    real_features.clear_memo()
    yield
    real_features.clear_memo()


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["gan-bench", "baselines", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_tiny_baselines_write_the_report(tiny_mnist, tmp_path, monkeypatch, capsys):
    out = tmp_path / "baselines"
    code, text, err = _run(monkeypatch, capsys, "--presets", "ns_gan,dcgan", "--seconds", "1",
                           "--n", "120", "--out", str(out))
    assert code == 0, err
    assert "ns_gan:" in text and "dcgan:" in text
    saved = json.loads((out / "results.json").read_text())
    rows = {r["preset"]: r for r in saved["results"]}
    assert set(rows) == {"ns_gan", "dcgan"}
    for r in rows.values():
        assert r["iterations"] >= 1
        assert 1.0 <= r["seconds"] <= 30.0  # stopped by the budget, not by the 10^9 iterations
        assert r["final"]["fid_mnist"] > 0 and 1 <= r["final"]["classes_covered"] <= 10
        assert 0.0 <= r["final"]["confident_share"] <= 1.0
        secs = [p[0] for p in r["curve"]]
        assert secs == sorted(secs) and r["curve"][-1][2] == pytest.approx(r["final"]["fid_mnist"])
        assert r["protocol"]["n_fake"] == 120 and r["protocol"]["real_split"] == "test"
    assert rows["dcgan"]["settings"]["batch_size"] == 128  # the preset's own setting
    readme = (out / "README.md").read_text()
    assert "| `ns_gan` | mlp / non_saturating / none |" in readme
    assert "## Calibration ladder" in readme and "| uniform noise |" in readme
    assert "command: `gan-bench baselines --presets ns_gan,dcgan" in readme
    from PIL import Image

    with Image.open(out / "grids" / "dcgan.png") as im:
        assert im.size == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 digits of 28 px, 2 px padding
    before = readme
    code, _, err = _run(monkeypatch, capsys, "--render", "--n", "120", "--out", str(out))
    assert code == 0, err
    assert (out / "README.md").read_text() == before  # re-rendered from results.json alone


@pytest.mark.parametrize("args, message", [
    (["--presets", "nope"], "unknown MNIST preset(s) nope"),
    (["--seconds", "0"], "--seconds must be a positive number"),
    (["--dataset", "ring8"], "only mnist has a baseline protocol"),
])
def test_bad_baseline_requests_are_one_line_and_exit_2(tiny_mnist, tmp_path, monkeypatch, capsys,
                                                       args, message):
    code, _, err = _run(monkeypatch, capsys, *args, "--n", "50", "--out", str(tmp_path / "b"))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
