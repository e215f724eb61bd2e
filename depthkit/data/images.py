"""Images: load any picture as RGB, resize images and depth maps, rescale DIW point pairs.

Conventions used everywhere in depthkit: depth is "larger = farther"; coordinates are 0-based
``(row, col)``; a pair is ``(ya, xa, yb, xb)``; a size is ``(height, width)``.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Protocol, Sequence, Union

import numpy as np
from PIL import Image, ImageOps

PathLike = Union[str, os.PathLike]



class PointPair(Protocol):
    """Anything with 0-based ``ya, xa, yb, xb`` (a :class:`depthkit.data.diw.DIWPair`; no import of it needed)."""

    ya: int
    xa: int
    yb: int
    xb: int

EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how a camera held the picture (1: as stored)


def load_rgb(path: PathLike | bytes | io.BufferedIOBase, exif_transpose: bool = True) -> np.ndarray:
    """Load any image (grayscale, palette, CMYK, RGBA, 16-bit) as ``(H, W, 3)`` uint8 RGB, from a path, bytes or a file.

    ``exif_transpose`` (default) turns the pixels upright as a phone's EXIF orientation says, which
    is right for a student's own photo; ``False`` keeps the stored pixels (see :func:`load_stored_rgb`).
    """
    return _decode(path, exif_transpose)[0]


def load_stored_rgb(path: PathLike) -> tuple[np.ndarray, int]:
    """The stored pixels of an image as RGB (no EXIF transpose) and its EXIF orientation tag (1 when absent).

    DIW's annotators (2016 browsers) and Chen et al.'s Torch loader saw the stored pixels, so the
    points of a DIW CSV refer to them: turning an orientation-3 image upright would put A where B is.
    """
    return _decode(path, False)


def _decode(path: PathLike | bytes | io.BufferedIOBase, exif_transpose: bool) -> tuple[np.ndarray, int]:
    """Decode ``path`` to RGB (upright per EXIF when ``exif_transpose``) and return its EXIF orientation."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        path = io.BytesIO(bytes(path))
    source = path if hasattr(path, "read") else Path(path)
    path = getattr(source, "name", "<uploaded image>") if hasattr(source, "read") else source
    try:
        with Image.open(source) as im:
            orientation = int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
            if exif_transpose:
                im = ImageOps.exif_transpose(im)  # phones store portrait photos sideways + EXIF
            return _to_rgb(im), orientation
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such image.") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:  # SyntaxError: PIL's word for a corrupt header
        raise ValueError(f"{path}: cannot read the image ({e}).") from e


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert an open PIL image to ``(H, W, 3)`` uint8 RGB (alpha composited onto white)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float gray: stretch to 8 bits
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def rescale_pair(pair: PointPair | Sequence[int], size_orig: tuple[int, int],
                 size_new: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map 0-based ``(ya, xa, yb, xb)`` from ``size_orig`` to ``size_new`` (both ``(H, W)``).

    Each coordinate becomes ``floor(p / size_orig * size_new)``, clamped inside the image. When A
    and B land on the same pixel, B moves one pixel further in its original direction from A.
    """
    if hasattr(pair, "ya"):  # a PointPair (DIWPair)
        pair = (pair.ya, pair.xa, pair.yb, pair.xb)
    ya, xa, yb, xb = (int(p) for p in pair)
    (h0, w0), (h1, w1) = size_orig, size_new
    if h1 * w1 < 2:
        raise ValueError(f"size_new={size_new}: an image needs at least two pixels to hold a pair.")

    def scale(p: int, n0: int, n1: int) -> int:
        return min(max(math.floor(p / n0 * n1), 0), n1 - 1)

    a = (scale(ya, h0, h1), scale(xa, w0, w1))
    b = (scale(yb, h0, h1), scale(xb, w0, w1))
    if a == b:  # collapsed onto one pixel: pull them apart again
        a, b = _nudge(a, (int(np.sign(yb - ya)), int(np.sign(xb - xa))), (h1, w1))
    return a[0], a[1], b[0], b[1]


def _nudge(p: tuple[int, int], direction: tuple[int, int], size: tuple[int, int]
           ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Split A = B = ``p``: move B one pixel along ``direction`` (A -> B originally); at the border
    move A the other way instead; failing both, put B on the first neighbour inside the image."""
    def inside(q: tuple[int, int]) -> bool:
        return 0 <= q[0] < size[0] and 0 <= q[1] < size[1]

    dy, dx = direction
    if (dy, dx) != (0, 0):
        if inside(b := (p[0] + dy, p[1] + dx)):
            return p, b
        if inside(a := (p[0] - dy, p[1] - dx)):
            return a, p
    for oy, ox in [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)]:
        if inside(b := (p[0] + oy, p[1] + ox)):
            return p, b
    raise AssertionError("unreachable: an image of >= 2 pixels has a neighbour")


# ----------------------------------------------------------------------------------------------
# Resizing
# ----------------------------------------------------------------------------------------------

def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """``200`` -> ``(200, 200)``; ``(h, w)`` unchanged."""
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to ``size`` (int = square; squashes, no crop) with PIL bilinear."""
    h, w = _hw(size)
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def resize_depth(depth: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Area-resize depth averaging only valid pixels (> 0, finite); 0 where none is valid."""
    h, w = _hw(size)
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    filled = np.where(valid, depth, 0).astype(np.float32)

    def area(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a).resize((w, h), Image.BOX))

    total, weight = area(filled), area(valid.astype(np.float32))
    out = np.zeros((h, w), np.float32)
    ok = weight > 1e-6
    out[ok] = total[ok] / weight[ok]
    return out

