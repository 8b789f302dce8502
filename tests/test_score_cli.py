"""`gan-bench score`: npz and PNG inputs agree, --json parses, every bad input is one line and
exit code 2. Runs `main()` in-process (MNIST replaced by random images, private cache), plus
two subprocess calls for the real console behaviour."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from gan_bench import cli
from gan_bench.metrics import real_features
from gan_bench.metrics.samples_io import load_samples

TINY = ["--n-real", "60", "--param", "kid.subset_size=20", "--param", "kid.subsets=5"]


@pytest.fixture(autouse=True)
def tiny_mnist(monkeypatch, tmp_cache):
    """MNIST replaced by 300/200 random images (stacked_mnist stacks them too); private cache."""
    from gan_bench.data.mnist import MNIST

    g = np.random.default_rng(0)
    arrays = {"train_x": g.integers(0, 256, (300, 1, 28, 28), dtype=np.uint8),
              "train_y": g.integers(0, 10, 300).astype(np.int64),
              "test_x": g.integers(0, 256, (200, 1, 28, 28), dtype=np.uint8),
              "test_y": g.integers(0, 10, 200).astype(np.int64)}
    monkeypatch.setattr(MNIST, "_arrays", lambda data_dir: (arrays, "synthetic test arrays"))
    real_features.clear_memo()
    yield
    real_features.clear_memo()


def score(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `gan-bench score ARGS` run through cli.main()."""
    monkeypatch.setattr(sys, "argv", ["gan-bench", "score", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _images(n: int = 40, c: int = 1, size: int = 28, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, c, size, size), dtype=np.uint8)


def _png_folder(folder, images: np.ndarray, mode: str | None = None):
    from PIL import Image

    folder.mkdir()
    for i, img in enumerate(images):
        arr = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        Image.fromarray(arr).convert(mode or ("L" if img.shape[0] == 1 else "RGB")).save(
            folder / f"{i:05d}.png")
    return folder


def test_npz_and_png_folder_give_the_same_numbers(tmp_path, monkeypatch, capsys):
    images = _images()
    np.savez(tmp_path / "fake.npz", x=images[:, 0])  # (N, H, W) gets its channel axis
    _png_folder(tmp_path / "pngs", images)
    metrics = "fid@random_tiny,kid@random_tiny,is_mnist,modes,prdc@random_tiny"
    results = []
    for fake in (tmp_path / "fake.npz", tmp_path / "pngs"):
        code, out, err = score(monkeypatch, capsys, "--dataset", "mnist", "--fake", str(fake),
                               "--metrics", metrics, "--json", *TINY)
        assert code == 0, err
        results.append({r["metric"]: (r["value"], r["extra"]) for r in json.loads(out)})
    assert results[0] == results[1]
    assert set(results[0]) == {"fid@random_tiny", "kid@random_tiny", "is_mnist",
                               "classes_covered", "kl_to_uniform", "confident_share",
                               "coverage@random_tiny", "precision@random_tiny", "recall@random_tiny", "density@random_tiny"}


def test_rgb_pngs_for_stacked_mnist_and_the_table(tmp_path, monkeypatch, capsys):
    images = _images(12, c=3)
    np.savez(tmp_path / "fake.npz", images=images)
    _png_folder(tmp_path / "pngs", images)
    args = ["--dataset", "stacked_mnist", "--metrics", "modes,fid@random_tiny", "--n-real", "50",
            "--param", "modes.n_samples=12"]
    outs = [score(monkeypatch, capsys, *args, "--fake", str(tmp_path / f), "--json")
            for f in ("fake.npz", "pngs")]
    assert outs[0][0] == outs[1][0] == 0 and json.loads(outs[0][1]) == json.loads(outs[1][1])
    code, out, _ = score(monkeypatch, capsys, *args, "--fake", str(tmp_path / "pngs"))
    assert code == 0
    for text in ("modes_covered", "fid@random_tiny", "protocol", "n_samples", "versions:"):
        assert text in out


def test_json_records_carry_their_protocol(tmp_path, monkeypatch, capsys):
    from gan_bench.data import load_dataset

    np.savez(tmp_path / "pts.npz", load_dataset("ring8", "train", n=2500, seed=1).data.numpy())
    code, out, err = score(monkeypatch, capsys, "--dataset", "ring8", "--fake",
                           str(tmp_path / "pts.npz"), "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["metric"] for r in records] == ["fid_points", "modes_captured", "high_quality_share",
                                             "kl_to_uniform"]
    assert records[1]["value"] == 8 and records[0]["protocol"]["n_real"] == 2500
    assert records[0]["protocol"]["real_split"] == "test" and records[0]["protocol"]["versions"]


def test_png_reading_keeps_pixels_and_order(tmp_path):
    grey, rgb = _images(3, c=1), _images(3, c=3)
    np.testing.assert_array_equal(load_samples(_png_folder(tmp_path / "grey", grey)), grey)
    np.testing.assert_array_equal(load_samples(_png_folder(tmp_path / "rgb", rgb)), rgb)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit grey pixels and holds one empty row: what a
    decompression bomb looks like to a reader before it decodes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b""))


def _write(tmp_path, kind: str):  # one branch per kind of bad input
    p = tmp_path / "bad"
    if kind == "missing":
        return tmp_path / "nope.npz"
    if kind == "text":
        p.write_text("hello")
    elif kind == "empty_dir":
        p.mkdir()
    elif kind == "zip_not_npz":
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("a.txt", "hello")
    elif kind == "two_arrays":
        np.savez(p, a=_images(), b=_images())
    elif kind == "header_bomb":  # a .npy header claiming 1e11 images over 100 bytes of data
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": (10**11, 28, 28)})
        with zipfile.ZipFile(p.with_suffix(".npz"), "w") as zf:
            zf.writestr("x.npy", header.getvalue() + bytes(100))
    elif kind.startswith("array:"):
        arrays = {"1d": np.zeros(40, np.uint8), "5d": np.zeros((2, 1, 1, 28, 28), np.uint8),
                  "float": _images().astype(np.float32) / 255, "rgb": _images(c=3),
                  "32px": _images(size=32), "few5": _images(5), "few3": _images(3),
                  "few2": _images(2),
                  "points": np.zeros((40, 2), np.float32)}
        np.savez(p, x=arrays[kind[6:]])
    elif kind == "rgba_png":
        _png_folder(p, _images(2, c=3), mode="RGBA")
    elif kind == "bomb_png":  # issue 23: a 30000 x 30000 PNG header (PIL's DecompressionBombError)
        p.mkdir()
        (p / "bomb.png").write_bytes(_png_header(30000, 30000))
    elif kind == "mixed_png":
        _png_folder(p, _images(2))
        from PIL import Image

        Image.fromarray(np.zeros((32, 32), np.uint8)).save(p / "zz.png")
    npz = kind in ("two_arrays", "header_bomb") or kind.startswith("array:")
    return p.with_suffix(".npz") if npz else p


BAD = [  # (what, fake kind, extra args, message in the one line)
    ("missing file", "missing", [], "no such file or folder"),
    ("not npz", "text", [], "not an .npz file or a folder of PNGs"),
    ("folder without PNGs", "empty_dir", [], "no .png files"),
    ("zip that is not npz", "zip_not_npz", [], "not a readable .npz"),
    ("ambiguous npz", "two_arrays", [], "name the samples one of x, images, arr_0"),
    ("1-D array", "array:1d", [], r"expected images (N, H, W) or (N, C, H, W)"),
    ("5-D array", "array:5d", [], "expected images"),
    ("float images", "array:float", [], "must be uint8 0..255"),
    ("wrong channels", "array:rgb", [], "mnist images are (1, 28, 28)"),
    ("wrong size", "array:32px", [], "(1, 32, 32) (C, H, W) but mnist"),
    ("points for mnist", "array:points", [], "must be uint8 0..255"),
    ("too few for KID subset", "array:few5", ["--metrics", "kid@random_tiny", "--n-real", "60"],
     "kid@random_tiny needs at least 60 generated samples (subset_size=60)"),
    ("too few for IS splits", "array:few5", ["--metrics", "is_mnist"], "splits=10"),
    ("too few for PRDC k+1", "array:few3", ["--metrics", "prdc@random_tiny", "--n-real", "60"],
     "needs at least 4 generated samples"),
    ("unknown metric", "array:few5", ["--metrics", "fidd"], "unknown metric 'fidd'"),
    ("unavailable metric", "array:few5", ["--metrics", "inception_score"],
     "have no logits (pool3 only); use is_mnist"),
    ("unknown parameter", "array:few5", ["--metrics", "kid", "--param", "kid.size=3"],
     "unknown parameter(s) size"),
    ("malformed parameter", "array:few5", ["--param", "kid=3"], "METRIC.KEY=VALUE"),
    ("images for points", "array:few5", ["--dataset", "ring8"], "float 2-D points (N, 2)"),
    ("RGBA PNGs", "rgba_png", [], "PNG mode 'RGBA'"),
    ("PNGs of two sizes", "mixed_png", [], "differs from"),
    ("decompression bomb PNG", "bomb_png", [], "bomb.png: 900,000,000 pixels, more than PIL's limit"),
    ("unknown dataset", "array:few5", ["--dataset", "mnistt"], "unknown dataset 'mnistt'"),
    ("n_real over the split", "array:few5", ["--metrics", "fid_mnist", "--n-real", "201"],
     "n_real=201 but mnist/test has only 200 samples"),
    # issue 13
    ("header claims 1e11 images", "header_bomb", [],
     "array 'x' is 100000000000 x 28 x 28 uint8 by its header (78400000000000 bytes), but the "
     "file holds 228: truncated or forged"),
    ("unknown device", "array:few5", ["--device", "tpu"], "unknown device 'tpu' (use cpu"),
    ("FID on 2 samples", "array:few2", ["--metrics", "fid_mnist"],
     "fid_mnist needs at least 10 generated samples (below 10 samples an FID is its bias, not a "
     "distance); got 2"),
    ("FID on 2 real samples", "array:few5", ["--metrics", "fid@random_tiny", "--n-real", "2"],
     "fid@random_tiny needs at least 10 real samples"),
    ("parameter of a metric not requested", "array:few5",
     ["--metrics", "fid_mnist", "--param", "kid.subset_size=100"],
     "parameters for kid, which is not among the requested metrics (fid_mnist)"),
]


@pytest.mark.parametrize("what, kind, extra, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_exit_2(what, kind, extra, message, tmp_path, monkeypatch, capsys):
    fake = _write(tmp_path, kind)
    args = ["--fake", str(fake), *extra]
    if "--dataset" not in extra:
        args = ["--dataset", "mnist", *args]
    code, out, err = score(monkeypatch, capsys, *args)
    assert code == 2, (what, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err + out


def test_an_npz_larger_than_memory_is_refused_before_loading(tmp_path, monkeypatch, capsys):
    from gan_bench import preflight

    np.savez(tmp_path / "fake.npz", x=_images(40))
    monkeypatch.setattr(preflight, "machine_memory_bytes", lambda: 40_000)  # a 40 kB machine
    code, out, err = score(monkeypatch, capsys, "--dataset", "mnist", "--fake",
                           str(tmp_path / "fake.npz"))
    assert code == 2 and "Traceback" not in out + err
    assert err.strip().splitlines() == [
        f"error: {tmp_path / 'fake.npz'}: array 'x' is 40 x 1 x 28 x 28 uint8: 31.4 KB, more "
        "than 50% of this machine's memory (40 KB); score fewer samples"]


def test_protocol_lines_are_keyed_by_metric_and_extractor(tmp_path, monkeypatch, capsys, caplog):
    """Issue 13: fid@mnist_classifier,fid@random_tiny printed the first protocol line only."""
    from gan_bench.metrics import builtin

    monkeypatch.setattr(builtin, "_WARNED", set())  # warned once per process
    np.savez(tmp_path / "fake.npz", x=_images(40))
    code, out, err = score(monkeypatch, capsys, "--dataset", "mnist", "--fake",
                           str(tmp_path / "fake.npz"), "--metrics",
                           "fid@mnist_classifier,fid@random_tiny", *TINY[:2])
    assert code == 0, err
    protocol = out.split("protocol", 1)[1].splitlines()
    assert [line.split(" sha256=")[0] for line in protocol if line.startswith("  fid:")] == [
        "  fid: extractor=mnist_classifier", "  fid: extractor=random_tiny"]
    # 40 samples of 128-d features: a singular covariance, said out loud (16-d ones are fine)
    warned = [r.getMessage() for r in caplog.records if "singular covariance" in r.getMessage()]
    assert [m.split(" samples")[0] for m in warned] == [
        "fid@mnist_classifier: 40 generated", "fid@mnist_classifier: 60 real"], warned


def test_a_real_feature_manifest_holding_a_list_is_recomputed(tmp_path, monkeypatch, capsys,
                                                              tmp_cache):
    """Issue 13: a manifest holding `[]` was a traceback; a damaged entry is recomputed."""
    np.savez(tmp_path / "fake.npz", x=_images(40))
    args = ["--dataset", "mnist", "--fake", str(tmp_path / "fake.npz"), "--metrics",
            "fid@random_tiny", "--json", *TINY[:2]]
    code, out, err = score(monkeypatch, capsys, *args)
    assert code == 0, err
    (manifest,) = (tmp_cache / "real_features").glob("*.json")
    manifest.write_text("[]")
    real_features.clear_memo()
    again = score(monkeypatch, capsys, *args)
    assert again[0] == 0 and "Traceback" not in again[2], again[2]
    assert json.loads(again[1])[0]["value"] == json.loads(out)[0]["value"]
    assert isinstance(json.loads(manifest.read_text()), dict)  # rewritten


def _gan_bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gan_bench.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_console_score_help_and_a_bad_file(tmp_path):
    res = _gan_bench("score", "--help")
    assert res.returncode == 0
    for option in ("--dataset", "--fake", "--metrics", "--n-real", "--json", "--param"):
        assert option in res.stdout
    res = _gan_bench("score", "--dataset", "mnist", "--fake", str(tmp_path / "nope.npz"),
                     env={"GAN_BENCH_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "no such file or folder" in res.stderr


def test_list_metrics_marks_inception_score_unavailable(tmp_path):
    res = _gan_bench("list", "metrics", "--json", env={"GAN_BENCH_CACHE": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    entries = {e["name"]: e for e in json.loads(res.stdout)["metrics"]}
    assert entries["inception_score"]["available"] is False
    assert entries["inception_score"]["summary"].startswith("UNAVAILABLE")
    assert {"fid", "fid_inception", "fid_mnist", "fid_points", "is_mnist", "kid",
            "precision_recall", "density_coverage", "prdc", "modes"} <= set(entries)
    assert entries["fid_mnist"]["higher_is_better"] is False
    assert entries["is_mnist"]["higher_is_better"] is True
