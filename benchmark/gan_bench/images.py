"""Small image helpers shared by tracking (sample grids per evaluation) and reports.

Pure numpy: images uint8 (N, C, H, W) in [0, 255] -> one uint8 grid (H', W') or (H', W', 3);
2-D points -> a uint8 RGB scatter picture with the true mode centres marked.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["image_grid", "points_image", "encode_png"]


def image_grid(images: ArrayLike, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, C, H, W) -> grid (rows*H', cols*W') for C=1 or (.., .., 3) for C=3."""
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype != np.uint8 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid wants uint8 (N, 1|3, H, W), got {x.dtype} {x.shape}")
    n, c, h, w = x.shape
    cols = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((c, rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def points_image(points: ArrayLike, centres: ArrayLike | None = None, size: int = 256, extent: float | None = None) -> np.ndarray:
    """float (N, 2) points -> RGB uint8 (size, size, 3): samples dark blue, centres red."""
    pts = np.asarray(points, dtype=np.float64)
    ctr = None if centres is None else np.asarray(centres, dtype=np.float64)
    ref = pts if ctr is None else ctr
    finite = pts[np.isfinite(pts).all(axis=1)]
    half = extent or 1.25 * max(float(np.abs(ref).max()) if ref.size else 1.0, 1e-6)
    img = np.full((size, size, 3), 255, dtype=np.uint8)

    def to_pix(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ij = ((p + half) / (2 * half) * (size - 1)).round().astype(int)
        keep = ((ij >= 0) & (ij < size)).all(axis=1)
        return size - 1 - ij[keep, 1], ij[keep, 0]  # row (y up), column

    rows, cols = to_pix(finite)
    img[rows, cols] = (30, 60, 160)
    if ctr is not None:
        for dr in (-2, -1, 0, 1, 2):
            r, c = to_pix(ctr)
            img[np.clip(r + dr, 0, size - 1), c] = (220, 30, 30)
            img[r, np.clip(c + dr, 0, size - 1)] = (220, 30, 30)
    return img


def encode_png(image: ArrayLike) -> bytes:
    """uint8 (H, W) or (H, W, 3) -> PNG bytes (no PIL needed)."""
    x = np.ascontiguousarray(np.asarray(image))
    if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
        raise ValueError(f"encode_png wants uint8 (H, W) or (H, W, 3), got {x.dtype} {x.shape}")
    h, w = x.shape[:2]
    colour = 0 if x.ndim == 2 else 2
    raw = b"".join(b"\x00" + x[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))
