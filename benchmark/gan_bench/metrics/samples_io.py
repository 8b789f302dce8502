"""Reading generated samples for `gan-bench score`: an .npz file or a folder of PNGs.

- .npz: one array, key `x`, `images` or `arr_0`, or the only array in the file. uint8 images
  (N, H, W) or (N, C, H, W) in [0, 255], or float points (N, 2) for ring8/grid25. Read with
  allow_pickle=False: an .npz can never run code. The array's header is read first: one whose
  shape needs more bytes than the file holds, or more than half the machine's memory, is
  refused before anything is allocated.
- folder: every *.png in it (not below it), in sorted name order (the order matters for the
  IS splits and for the first-n_samples rule of mode counting: zero-pad the numbers). 8-bit grey
  ("L") gives (N, 1, H, W), RGB gives (N, 3, H, W); all must share one size and mode.

Images are returned as read (dtype checks and the comparison with the dataset's shape are the
Evaluator's); 3-D arrays get the channel axis. Every problem is a UserInputError naming it.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from gan_bench.errors import UserInputError

__all__ = ["load_samples", "load_npz", "load_png_folder", "NPZ_KEYS"]

NPZ_KEYS = ("x", "images", "arr_0")  # tried in this order, then the only array


def load_samples(path: str | Path) -> np.ndarray:
    """Samples from an .npz file or a PNG folder: (N, C, H, W) images or (N, 2) points."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_png_folder(path)
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not an .npz file or a folder of PNGs")
    return load_npz(path)


def _check_header(path: Path, key: str) -> None:
    """Refuse a member whose header claims more than the file holds or memory can take (numpy
    would allocate the claimed shape first: a forged header is a MemoryError)."""
    from gan_bench.preflight import memory_problem

    with zipfile.ZipFile(path) as zf:
        if f"{key}.npy" not in zf.namelist():
            return  # not an array: load_npz says so
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    nbytes = math.prod(shape) * dtype.itemsize
    what = f"{path}: array {key!r} is {' x '.join(map(str, shape))} {dtype}"
    if nbytes > info.file_size:
        raise UserInputError(f"{what} by its header ({nbytes} bytes), but the file holds "
                             f"{info.file_size}: truncated or forged")
    problem = memory_problem(nbytes)
    if problem is not None:
        raise UserInputError(f"{what}: {problem}; score fewer samples")


def load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            key = next((k for k in NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise UserInputError(f"{path}: {len(names)} arrays ({', '.join(names) or 'none'}); "
                                     f"name the samples one of {', '.join(NPZ_KEYS)}")
            _check_header(path, key)
            arr = z[key]
        if not isinstance(arr, np.ndarray):  # a zip member that is not a .npy array
            raise ValueError(f"member {key!r} is not a numpy array")
    except UserInputError:
        raise
    except MemoryError:
        raise UserInputError(f"{path}: array {key!r} does not fit in memory; score fewer "
                             "samples") from None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise UserInputError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim not in (2, 4):
        raise UserInputError(f"{path}: array {key!r} has shape {arr.shape}; expected images "
                             "(N, H, W) or (N, C, H, W), or points (N, 2)")
    return arr


def _read_png(path: Path) -> np.ndarray:
    """One PNG as uint8 (C, H, W), C 1 (grey) or 3 (RGB). PIL is always there: torchvision
    depends on pillow (its datasets import PIL), so no second decoder is kept."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # PIL only warns up to 2x its pixel limit: refuse too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode, arr = img.mode, np.asarray(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(size[1]):,} pixels" if size else "too many pixels"
        raise UserInputError(f"{path}: {pixels}, more than PIL's limit of "
                             f"{Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?); save each "
                             "sample as its own small PNG") from None
    except OSError as exc:
        raise UserInputError(f"{path}: not a readable PNG ({exc})") from None
    if mode not in ("L", "RGB"):
        raise UserInputError(f"{path}: PNG mode {mode!r}; save 8-bit grey (L) or RGB")
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_png_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise UserInputError(f"{folder}: no .png files in the folder")
    images = [_read_png(p) for p in files]
    for path, img in zip(files, images):
        if img.shape != images[0].shape:
            raise UserInputError(f"{path}: {img.shape} (C, H, W) differs from {files[0].name} "
                                 f"{images[0].shape}")
    return np.stack(images)
