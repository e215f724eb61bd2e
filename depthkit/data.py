"""Datasets: read NYU Depth V2 and DIW, prepare them at a fixed size, and download them.

The two real datasets of the project, in the layouts their authors published:

* **NYU Depth V2 (labeled)** - ``nyu_depth_v2_labeled.mat``, a MATLAB v7.3 file, which is HDF5.
  Through h5py ``images`` is ``(N, 3, 640, 480)`` and ``depths`` ``(N, 640, 480)``: MATLAB stores
  arrays column-major, so every image appears transposed. :func:`read_nyu_mat` undoes that and
  returns ``(N, 480, 640, 3)`` RGB and ``(N, 480, 640)`` metres.
* **DIW (Depth in the Wild)** - a CSV with two lines per image: the image path, then
  ``y_A,x_A,y_B,x_B,relation,width,height`` with 1-based coordinates. ``>`` means point A is
  farther than point B. :func:`read_diw_csv` returns :class:`DIWPair` records with 0-based
  coordinates and ``relation`` = +1 (A farther) or -1 (A closer).

Training reads neither format directly: :func:`prepare_nyu` and :func:`prepare_diw` resize every
image once (200x200 by default, as the report did) into an HDF5 cache that
:func:`load_nyu_cache` / :func:`load_diw_cache` load in a second.

Conventions used everywhere in depthkit: depth is "larger = farther"; coordinates are 0-based
``(row, col)``; a pair is ``(ya, xa, yb, xb)``; a size is ``(height, width)``.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

import h5py
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from depthkit.config import data_dir, repo_root
from depthkit.files import atomic_write

PathLike = Union[str, os.PathLike]

__all__ = [
    "DIWPair", "read_nyu_mat", "nyu_split", "read_diw_csv", "load_rgb", "load_nyu_png_depth",
    "rescale_pair", "resize_image", "resize_depth", "prepare_nyu", "prepare_diw",
    "load_nyu_cache", "load_diw_cache", "download", "DOWNLOADS", "make_synthetic",
]

CACHE_VERSION = 1  # bump when the cache layout changes: old caches are then rebuilt

# ----------------------------------------------------------------------------------------------
# NYU Depth V2
# ----------------------------------------------------------------------------------------------

_MATLAB5_MAGIC = b"MATLAB 5.0 MAT-file"


def _check_hdf5(path: Path) -> None:
    """Raise a helpful error when ``path`` is missing or is not an HDF5 (MATLAB v7.3) file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file. Get the NYU Depth V2 labeled file with "
            f"depthkit.data.download('nyu') or see data/README.md.")
    if h5py.is_hdf5(path):
        return
    with open(path, "rb") as f:
        head = f.read(128)
    size = path.stat().st_size
    if head.startswith(_MATLAB5_MAGIC):
        cause = ("it is a MATLAB v5 .mat file; depthkit reads the MATLAB v7.3 (HDF5) file that NYU "
                 "publishes. Re-save it in MATLAB with save(..., '-v7.3') or download the original")
    elif head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        cause = "it is an HTML page (a failed download?); download it again"
    else:
        cause = (f"it has no HDF5 signature ({size:,} bytes; a truncated or corrupt download? "
                 f"the official file has {NYU_SIZE:,} bytes)")
    raise ValueError(f"{path}: not an HDF5 / MATLAB v7.3 file: {cause}.")


def _open_nyu(path: Path) -> h5py.File:
    """Open an NYU-layout .mat file read-only, turning low-level HDF5 errors into clear ones."""
    _check_hdf5(path)
    try:
        return h5py.File(path, "r")
    except OSError as e:  # e.g. "truncated file: eof = ..., stored_eof = ..."
        raise ValueError(f"{path}: cannot be opened as HDF5 ({e}); a truncated download? "
                         f"Delete it and download it again.") from e


def _nyu_datasets(f: h5py.File, path: Path) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Return the validated ``images`` and ``depths`` datasets of an open NYU file."""
    missing = [k for k in ("images", "depths") if k not in f]
    if missing:
        raise ValueError(f"{path}: missing dataset(s) {missing}; found {sorted(f.keys())}. "
                         f"Expected the NYU Depth V2 labeled layout.")
    images, depths = f["images"], f["depths"]
    if not isinstance(images, h5py.Dataset) or not isinstance(depths, h5py.Dataset):
        raise ValueError(f"{path}: 'images' and 'depths' must be datasets, not groups.")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{path}: 'images' has shape {images.shape}; expected (N, 3, W, H) in "
                         f"MATLAB order, e.g. (1449, 3, 640, 480).")
    n, _, w, h = images.shape
    if depths.shape != (n, w, h):
        raise ValueError(f"{path}: 'depths' has shape {depths.shape}; expected {(n, w, h)} to match "
                         f"'images' {images.shape}.")
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: 'images' has dtype {images.dtype}; expected uint8.")
    if depths.dtype.kind != "f":
        raise ValueError(f"{path}: 'depths' has dtype {depths.dtype}; expected float32 metres.")
    return images, depths


def _as_indices(indices: Iterable[int] | None, n: int, path: Path) -> np.ndarray:
    """0-based int64 indices, checked against ``range(n)``."""
    if indices is None:
        return np.arange(n, dtype=np.int64)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu" and idx.size:
        raise ValueError(f"{path}: indices must be integers, got dtype {idx.dtype}.")
    idx = idx.astype(np.int64).ravel()
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ValueError(f"{path}: index {int(bad[0])} is out of range; valid indices are "
                         f"0..{n - 1} (0-based, the file holds {n} images).")
    return idx


def _read_rows(ds: h5py.Dataset, idx: np.ndarray) -> np.ndarray:
    """Read ``ds[idx]`` lazily: h5py wants sorted unique indices, so sort, read, restore order."""
    uniq, inverse = np.unique(idx, return_inverse=True)
    if uniq.size and uniq[-1] - uniq[0] + 1 == uniq.size:  # a contiguous run: one slice read
        rows = ds[int(uniq[0]):int(uniq[-1]) + 1]
    else:
        rows = ds[uniq.tolist()] if uniq.size else np.empty((0,) + ds.shape[1:], ds.dtype)
    return rows[inverse.ravel()]


def _read_nyu(images: h5py.Dataset, depths: h5py.Dataset, idx: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Read and re-orient ``idx`` from open NYU datasets (MATLAB order -> row-major)."""
    img = _read_rows(images, idx).transpose(0, 3, 2, 1)  # (k, 3, W, H) -> (k, H, W, 3)
    dep = _read_rows(depths, idx).transpose(0, 2, 1)     # (k, W, H)    -> (k, H, W)
    return np.ascontiguousarray(img), np.ascontiguousarray(dep, dtype=np.float32)


def read_nyu_mat(path: PathLike, indices: Iterable[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Read NYU images ``(N, H, W, 3)`` uint8 and depths ``(N, H, W)`` metres (lazy h5py reads).

    ``indices`` are 0-based positions in the file (default: all 1449 images, about 3 GB in memory:
    prefer a few indices, or :func:`prepare_nyu`). Only the requested images are read from disk.
    """
    path = Path(path)
    with _open_nyu(path) as f:
        images, depths = _nyu_datasets(f, path)
        idx = _as_indices(indices, images.shape[0], path)
        return _read_nyu(images, depths, idx)


def read_nyu_scene_types(path: PathLike, indices: Iterable[int] | None = None) -> list[str]:
    """The scene type of each image ("kitchen", "bedroom", ...) from the .mat's ``sceneTypes`` cell array."""
    path = Path(path)
    with _open_nyu(path) as f:
        if "sceneTypes" not in f:
            raise ValueError(f"{path}: no 'sceneTypes' dataset (expected the labeled NYU Depth V2 file)")
        refs = np.asarray(f["sceneTypes"]).reshape(-1)  # MATLAB cell array: one object reference per image
        idx = _as_indices(indices, len(refs), path)
        return ["".join(chr(int(c)) for c in np.asarray(f[refs[i]]).reshape(-1)) for i in idx]


def nyu_split(name: str, split_file: PathLike | None = None) -> np.ndarray:
    """0-based indices of the official NYU split ``name`` ("train": 795, "test": 654)."""
    if split_file is None:
        split_file = data_dir() / "nyu_splits.json"
        if not split_file.is_file():  # DEPTHKIT_DATA points elsewhere: use the checkout's copy
            split_file = repo_root() / "data" / "nyu_splits.json"
    split_file = Path(split_file)
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: no such split file.")
    splits = json.loads(split_file.read_text())
    names = sorted(k for k, v in splits.items() if isinstance(v, list))
    if name not in names:
        raise ValueError(f"{split_file}: unknown split {name!r}; valid names: {', '.join(names)}.")
    one_based = np.asarray(splits[name], dtype=np.int64)
    if one_based.size and one_based.min() < 1:
        raise ValueError(f"{split_file}: split {name!r} holds index {int(one_based.min())}; "
                         f"the file must be 1-based (MATLAB).")
    return one_based - 1


def load_nyu_png_depth(path: PathLike, scale: float = 1000.0) -> np.ndarray:
    """Read a 16-bit depth PNG (e.g. Kinect millimetres) as float32 metres; 0 stays 0 (= invalid)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such depth image.")
    with Image.open(path) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"{path}: mode {im.mode!r}; expected a 16-bit single-channel depth PNG.")
        raw = np.asarray(im)
    return (raw.astype(np.float32) / np.float32(scale)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# DIW
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DIWPair:
    """One DIW annotation: an image and two 0-based points, ``relation`` +1 when A is farther."""

    image: Path
    ya: int
    xa: int
    yb: int
    xb: int
    relation: int  # +1: depth(A) > depth(B) (CSV ">"), -1: A closer ("<"), 0: equal ("=")
    width: int     # size of the image the coordinates refer to (from the CSV)
    height: int
    line: int      # 1-based line number of the annotation line in the CSV (for messages)


RELATIONS = {">": 1, "<": -1, "=": 0}
_DIW_FIELDS = ("y_A", "x_A", "y_B", "x_B", "relation", "width", "height")
_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]")


def _looks_like_path(line: str) -> bool:
    """An image line has a path separator or no comma; an annotation line is comma-separated."""
    return "/" in line or "\\" in line or "," not in line


def _image_candidates(raw: str, root: Path) -> list[Path]:
    """Where an image line may point: re-rooted by its trailing components under ``root``."""
    parts = [p for p in re.split(r"[\\/]+", raw) if p not in ("", ".")]
    absolute = raw.startswith(("/", "\\")) or bool(_WINDOWS_ABS.match(raw))
    candidates = []
    if not absolute:
        candidates.append(root.joinpath(*parts))
    if len(parts) >= 2:
        candidates.append(root / parts[-2] / parts[-1])  # e.g. root/DIW_test/<name>.thumb
    candidates.append(root / parts[-1])
    return list(dict.fromkeys(candidates))  # drop duplicates, keep order


def _parse_annotation(text: str, where: str) -> tuple[int, ...]:
    """Parse ``y_A,x_A,y_B,x_B,rel,width,height`` (1-based) into 0-based ints and a relation."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != len(_DIW_FIELDS):
        raise ValueError(f"{where}: expected {len(_DIW_FIELDS)} fields "
                         f"{','.join(_DIW_FIELDS)}, got {len(fields)}: {text!r}.")
    values = {}
    for name, field in zip(_DIW_FIELDS, fields):
        if name == "relation":
            if field not in RELATIONS:
                raise ValueError(f"{where}: unknown relation symbol {field!r}; expected '>' "
                                 f"(A farther), '<' (A closer) or '='.")
            values[name] = RELATIONS[field]
            continue
        try:
            values[name] = int(field)
        except ValueError:
            raise ValueError(f"{where}: {name}={field!r} is not an integer.") from None
    w, h = values["width"], values["height"]
    if w < 1 or h < 1:
        raise ValueError(f"{where}: image size width={w}, height={h} must be positive.")
    for point in ("A", "B"):
        y, x = values[f"y_{point}"], values[f"x_{point}"]
        if not (1 <= y <= h and 1 <= x <= w):
            raise ValueError(f"{where}: point {point} (y={y}, x={x}) is outside the {w}x{h} "
                             f"(width x height) image; coordinates are 1-based.")
    if (values["y_A"], values["x_A"]) == (values["y_B"], values["x_B"]):
        raise ValueError(f"{where}: points A and B are identical (y={values['y_A']}, "
                         f"x={values['x_A']}).")
    return (values["y_A"] - 1, values["x_A"] - 1, values["y_B"] - 1, values["x_B"] - 1,
            values["relation"], w, h)


def read_diw_csv(path: PathLike, image_root: PathLike | None = None,
                 check_images: bool = True) -> list[DIWPair]:
    """Read a DIW CSV (image line + annotation line per record) into 0-based :class:`DIWPair` s.

    Image lines written on the authors' machines (``/home/.../DIW_test/<name>.thumb``) are looked
    up under ``image_root`` (default: the CSV's folder) as ``DIW_test/<name>.thumb``, then
    ``<name>.thumb``; relative paths are taken relative to ``image_root`` first. With
    ``check_images=False`` nothing is looked up and the first candidate is returned.
    """
    return _read_diw(Path(path), image_root, check_images, limit=None)


def _read_diw(path: Path, image_root: PathLike | None, check_images: bool, limit: int | None
              ) -> list[DIWPair]:
    """:func:`read_diw_csv`, stopping after ``limit`` records (``None``: all)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DIW CSV. See data/README.md.")
    root = Path(image_root) if image_root is not None else path.parent
    numbered = [(n, line.strip().strip('"').strip())
                for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1)]
    numbered = [(n, line) for n, line in numbered if line]  # blank lines carry no record
    pairs: list[DIWPair] = []
    i = 0
    while i < len(numbered) and (limit is None or len(pairs) < limit):
        n_img, image_line = numbered[i]
        if not _looks_like_path(image_line):
            raise ValueError(f"{path}:{n_img}: expected an image path, found {image_line!r} "
                             f"(an annotation line without an image line before it?).")
        if i + 1 == len(numbered):
            raise ValueError(f"{path}:{n_img}: image line {image_line!r} has no annotation line "
                             f"after it (end of file).")
        n_ann, annotation = numbered[i + 1]
        if _looks_like_path(annotation):
            raise ValueError(f"{path}:{n_img}: image line {image_line!r} has no annotation line "
                             f"after it (line {n_ann} is another image path).")
        ya, xa, yb, xb, rel, w, h = _parse_annotation(annotation, f"{path}:{n_ann}")
        candidates = _image_candidates(image_line, root)
        image = candidates[0]  # without checks: no file-system access at all
        if check_images:
            image = next((c for c in candidates if c.is_file()), None)
            if image is None:
                tried = ", ".join(str(c) for c in candidates)
                raise FileNotFoundError(f"{path}:{n_img}: image {image_line!r} not found; "
                                        f"tried {tried}.")
        pairs.append(DIWPair(image, ya, xa, yb, xb, rel, w, h, n_ann))
        i += 2
    return pairs


def load_rgb(path: PathLike | bytes | io.BufferedIOBase) -> np.ndarray:
    """Load any image (grayscale, palette, CMYK, RGBA, 16-bit) as ``(H, W, 3)`` uint8 RGB, from a path, bytes or a file."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        path = io.BytesIO(bytes(path))
    source = path if hasattr(path, "read") else Path(path)
    path = getattr(source, "name", "<uploaded image>") if hasattr(source, "read") else source
    try:
        with Image.open(source) as im:
            return _to_rgb(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such image.") from None
    except (OSError, Image.DecompressionBombError) as e:
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


def rescale_pair(pair: DIWPair | Sequence[int], size_orig: tuple[int, int],
                 size_new: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map 0-based ``(ya, xa, yb, xb)`` from ``size_orig`` to ``size_new`` (both ``(H, W)``).

    Each coordinate becomes ``floor(p / size_orig * size_new)``, clamped inside the image. When A
    and B land on the same pixel, B moves one pixel further in its original direction from A.
    """
    if isinstance(pair, DIWPair):
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


# ----------------------------------------------------------------------------------------------
# The on-disk cache
# ----------------------------------------------------------------------------------------------

def _digest(*items: object) -> str:
    """A short stable hash of JSON-able items."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


def _source_id(path: Path) -> dict:
    """What identifies a source file's content cheaply: path, size and modification time."""
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cache_path(kind: str, source: Path, size: int, selection: object, cache_dir: PathLike | None
                ) -> Path:
    """``<cache_dir>/<kind>_<hash of source path and selection>_<size>.h5``."""
    folder = Path(cache_dir) if cache_dir is not None else data_dir() / "cache"
    return folder / f"{kind}_{_digest(str(source.resolve()), selection)[:12]}_{size}.h5"


def _cache_is_current(path: Path, fingerprint: str) -> bool:
    """True when ``path`` is a complete cache written for ``fingerprint``."""
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("fingerprint") == fingerprint
    except OSError:  # unreadable: rebuild
        return False


def _write_atomically(path: Path, fill: Callable[[h5py.File], None], fingerprint: str) -> Path:
    """Write an HDF5 cache through ``fill`` into a temp file beside ``path``, then rename it."""
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["cache_version"] = CACHE_VERSION
            fill(f)
            f.attrs["fingerprint"] = fingerprint  # last: only a complete file carries it

    return atomic_write(path, write)


def prepare_nyu(mat_path: PathLike, cache_dir: PathLike | None = None, size: int = 200,
                indices: Iterable[int] | None = None) -> Path:
    """Resize NYU images/depths to ``size`` x ``size`` into a cached HDF5 file; return its path.

    Images are squashed to a square with bilinear filtering (as the report did); depths are
    area-averaged over valid pixels only (see :func:`resize_depth`). The cache lives in
    ``cache_dir`` (default ``data/cache``) and is reused until the source file, ``size`` or
    ``indices`` change.
    """
    mat_path = Path(mat_path)
    with _open_nyu(mat_path) as f:
        images, depths = _nyu_datasets(f, mat_path)
        idx = _as_indices(indices, images.shape[0], mat_path)
        selection = None if indices is None else idx.tolist()
        out = _cache_path("nyu", mat_path, size, selection, cache_dir)
        fingerprint = _digest("nyu", CACHE_VERSION, _source_id(mat_path), size, selection)
        if _cache_is_current(out, fingerprint):
            return out

        def fill(h5: h5py.File) -> None:
            h5.attrs.update(source=str(mat_path.resolve()), size=size)
            h5["indices"] = idx
            img_ds = h5.create_dataset("images", (len(idx), size, size, 3), np.uint8)
            dep_ds = h5.create_dataset("depths", (len(idx), size, size), np.float32)
            step = 16
            with tqdm(total=len(idx), desc=f"NYU -> {size}x{size}", unit="img") as bar:
                for start in range(0, len(idx), step):
                    img, dep = _read_nyu(images, depths, idx[start:start + step])
                    stop = start + len(img)
                    img_ds[start:stop] = np.stack([resize_image(a, size) for a in img])
                    dep_ds[start:stop] = np.stack([resize_depth(d, size) for d in dep])
                    bar.update(len(img))

        return _write_atomically(out, fill, fingerprint)


def _load_resized(path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Load one image as RGB resized to ``size`` x ``size``; also return its original ``(H, W)``."""
    rgb = load_rgb(path)
    return resize_image(rgb, size), rgb.shape[:2]


def _load_chunk(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Worker: a chunk of images resized to ``size`` and their original ``(H, W)``."""
    loaded = [_load_resized(p, size) for p in paths]
    images = np.stack([im for im, _ in loaded]) if loaded else np.zeros((0, size, size, 3), np.uint8)
    return images, np.array([hw for _, hw in loaded], np.int64).reshape(-1, 2)


def prepare_diw(csv_path: PathLike, cache_dir: PathLike | None = None, size: int = 200,
                image_root: PathLike | None = None, workers: int | None = None,
                limit: int | None = None) -> Path:
    """Resize DIW images to ``size`` x ``size`` (all cores) and rescale their pairs into a cache.

    ``workers``: processes to use (default: all cores; ``1`` runs serially). ``limit``: keep only
    the first ``limit`` records of the CSV. The cache is rebuilt when the CSV, ``size``,
    ``image_root`` or ``limit`` change (edits to the image files themselves are not noticed).
    """
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root is not None else csv_path.parent
    selection = {"image_root": str(root.resolve()), "limit": limit}
    out = _cache_path("diw", csv_path, size, selection, cache_dir)
    fingerprint = _digest("diw", CACHE_VERSION, _source_id(csv_path), size, selection)
    if _cache_is_current(out, fingerprint):
        return out
    records = _read_diw(csv_path, root, check_images=True, limit=limit)
    n = len(records)
    paths = [str(r.image) for r in records]
    pairs = np.array([rescale_pair(r, (r.height, r.width), (size, size)) for r in records],
                     np.int64).reshape(-1, 4)

    def fill(h5: h5py.File) -> None:
        h5.attrs.update(source=str(csv_path.resolve()), size=size)
        h5["pairs"] = pairs
        h5["relation"] = np.array([r.relation for r in records], np.int8)
        h5["orig_hw"] = np.array([(r.height, r.width) for r in records], np.int64).reshape(-1, 2)
        h5["lines"] = np.array([r.line for r in records], np.int64)
        h5.create_dataset("paths", data=paths, dtype=h5py.string_dtype())
        img_ds = h5.create_dataset("images", (n, size, size, 3), np.uint8)
        # workers=None: all cores, except for small sets where starting processes costs more
        n_workers = workers or (_cpu_count() if n >= 256 else 1)
        chunk = max(1, min(64, math.ceil(n / (4 * n_workers))))  # small sets: keep all cores busy
        starts = range(0, n, chunk)
        jobs = ([paths[s:s + chunk] for s in starts], [size] * len(starts))
        with tqdm(total=n, desc=f"DIW -> {size}x{size}", unit="img") as bar:
            if n_workers <= 1 or len(starts) <= 1:
                mismatched = _store_chunks(map(_load_chunk, *jobs), starts, img_ds, records, bar)
            else:
                with concurrent.futures.ProcessPoolExecutor(min(n_workers, len(starts))) as pool:
                    results = pool.map(_load_chunk, *jobs)
                    mismatched = _store_chunks(results, starts, img_ds, records, bar)
        h5.attrs["size_mismatches"] = mismatched
        if mismatched:
            warnings.warn(f"{csv_path}: {mismatched} image(s) differ in size from the CSV's "
                          f"width x height; their pairs were rescaled from the CSV's size.")

    return _write_atomically(out, fill, fingerprint)


def _cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _store_chunks(results: Iterable[tuple[np.ndarray, np.ndarray]], starts: range,
                  img_ds: h5py.Dataset, records: list[DIWPair], bar: tqdm) -> int:
    """Write worker results in order; count images whose real size differs from the CSV's."""
    mismatched = 0
    for start, (images, hw) in zip(starts, results):
        img_ds[start:start + len(images)] = images
        for r, (h, w) in zip(records[start:start + len(images)], hw):
            mismatched += (h, w) != (r.height, r.width)
        bar.update(len(images))
    return mismatched


def _read_array(ds: h5py.Dataset, path: Path, mmap: bool) -> np.ndarray:
    """Read a cache dataset, or memory-map it (contiguous, uncompressed) when ``mmap``."""
    offset = ds.id.get_offset() if mmap else None
    if offset is None:
        return ds[()]
    return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)


def _open_cache(path: PathLike, kind: str, keys: Sequence[str]) -> tuple[Path, h5py.File]:
    """Open a depthkit cache file and check its version and datasets."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such cache file; run prepare_{kind}() first.")
    f = h5py.File(path, "r")
    version = f.attrs.get("cache_version")
    missing = [k for k in keys if k not in f]
    if version != CACHE_VERSION or "fingerprint" not in f.attrs or missing:
        f.close()
        raise ValueError(f"{path}: not a complete depthkit {kind} cache of version {CACHE_VERSION} "
                         f"(version {version}, missing {missing}); delete it and prepare again.")
    return path, f


def load_nyu_cache(path: PathLike, mmap: bool = False) -> dict:
    """Load a :func:`prepare_nyu` cache: ``images`` (N,S,S,3) uint8, ``depths``, ``indices``."""
    path, f = _open_cache(path, "nyu", ("images", "depths", "indices"))
    with f:
        return {"images": _read_array(f["images"], path, mmap),
                "depths": _read_array(f["depths"], path, mmap),
                "indices": f["indices"][()].astype(np.int64)}


def load_diw_cache(path: PathLike, mmap: bool = False) -> dict:
    """Load a :func:`prepare_diw` cache: ``images``, ``pairs``, ``relation``, ``orig_hw``, ``paths``."""
    path, f = _open_cache(path, "diw", ("images", "pairs", "relation", "orig_hw", "paths"))
    with f:
        return {"images": _read_array(f["images"], path, mmap),
                "pairs": f["pairs"][()].astype(np.int64),
                "relation": f["relation"][()].astype(np.int8),
                "orig_hw": f["orig_hw"][()].astype(np.int64),
                "paths": [str(p) for p in f["paths"].asstr()[()]],
                "lines": f["lines"][()].astype(np.int64)}


# ----------------------------------------------------------------------------------------------
# Downloads (for Colab and laptops; tests and default commands never download)
# ----------------------------------------------------------------------------------------------

NYU_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
NYU_SIZE = 2_972_037_809
DIW_PAGE = "http://www-personal.umich.edu/~wfchen/depth-in-the-wild/"
_DIW_HOST = "https://vl-lab.eecs.umich.edu/data/nips2016/"

# name -> files: url, file name in the dataset's folder, size in bytes and sha256 when published
# (None otherwise), and whether it is a tar archive to unpack in that folder.
DOWNLOADS: dict[str, list[dict]] = {
    "nyu": [
        {"url": NYU_URL, "file": "nyu_depth_v2_labeled.mat", "size": NYU_SIZE,
         "sha256": "2d724b0c0ab358aa1ce5df855e5bd14a2279ab7202efe22f32a30d612dcb86aa",
         "extract": False},
    ],
    "diw": [  # annotations (DIW_test.csv, DIW_train_val.csv) + the test images the report used
        {"url": _DIW_HOST + "DIW_Annotations.tar.gz", "file": "DIW_Annotations.tar.gz",
         "size": None, "sha256": None, "extract": True},
        {"url": _DIW_HOST + "DIW_test.tar.gz", "file": "DIW_test.tar.gz",
         "size": None, "sha256": None, "extract": True},
    ],
    "diw_train_val": [  # only for Chen et al.'s protocol (train on DIW_train_val): very large
        {"url": _DIW_HOST + "DIW_train_val.tar.gz", "file": "DIW_train_val.tar.gz",
         "size": None, "sha256": None, "extract": True},
    ],
}
DEFAULT_FOLDERS = {"nyu": "real", "diw": "real/diw", "diw_train_val": "real/diw"}  # in data_dir()


def download(name: str, root: PathLike | None = None, timeout: float = 10.0) -> Path:
    """Download (resumably) and unpack ``"nyu"`` or ``"diw"`` into the folder ``root``.

    ``root`` receives the dataset's files: by default ``data/real`` for NYU (the ``.mat`` file)
    and ``data/real/diw`` for DIW (``DIW_test.csv``, ``DIW_test/``). Returns the ``.mat`` path
    for NYU and the folder for DIW. Fails within seconds, saying what to fetch by hand, offline.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DOWNLOADS)}.")
    root = Path(root) if root is not None else data_dir() / DEFAULT_FOLDERS[name]
    for item in DOWNLOADS[name]:
        dest = root / item["file"]
        if not item["extract"]:
            _fetch(item, dest, timeout)
            continue
        unpacked = root / f".{item['file']}.extracted"  # marker: skip it next time
        if not unpacked.is_file():
            _fetch(item, dest, timeout)
            _extract(dest, root)
            unpacked.touch()
    first = DOWNLOADS[name][0]
    return root if first["extract"] else root / first["file"]


def _manual_hint(item: dict, dest: Path) -> str:
    """Tell the user what to fetch by hand and where to put it."""
    size = f" ({item['size']:,} bytes)" if item.get("size") else ""
    where = f"unpack it in {dest.parent}" if item["extract"] else f"save it as {dest}"
    return (f"Download {item['url']}{size} by hand (project page for DIW: {DIW_PAGE}) and {where}; "
            f"see data/README.md.")


def _check_host(url: str, timeout: float) -> None:
    """Fail fast when the host name cannot be resolved (DNS can otherwise hang offline)."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:  # file:// and friends
        return
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    worker = threading.Thread(target=lookup, daemon=True)  # daemon: a hung lookup is abandoned
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise OSError(f"looking up {host} took more than {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _fetch(item: dict, dest: Path, timeout: float) -> Path:
    """Download ``item['url']`` to ``dest`` through ``dest.part`` (HTTP Range resume), then verify."""
    size, part = item.get("size"), dest.with_name(dest.name + ".part")
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is None or have < size:
        headers = {"User-Agent": "depthkit"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            _check_host(item["url"], timeout)
            response = urllib.request.urlopen(urllib.request.Request(item["url"], headers=headers),
                                              timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part is already complete
                response = None
            else:
                raise ConnectionError(f"{item['url']}: HTTP {e.code} {e.reason}. "
                                      f"{_manual_hint(item, dest)}") from e
        except (urllib.error.URLError, OSError) as e:  # offline, refused, DNS, timeout
            reason = getattr(e, "reason", e)
            raise ConnectionError(f"cannot reach {item['url']} ({reason}): no network? "
                                  f"{_manual_hint(item, dest)}") from e
        if response is not None:
            _stream(response, part, have, dest.name, item)
    got = part.stat().st_size
    if size is not None and got != size:
        raise RuntimeError(f"{part}: {got:,} bytes, expected {size:,}. Run download() again to "
                           f"resume, or delete the .part file to start over.")
    if item.get("sha256") and _sha256(part) != item["sha256"]:
        part.unlink()
        raise RuntimeError(f"{dest}: SHA-256 mismatch (corrupt download); the partial file was "
                           f"deleted, run download() again.")
    os.replace(part, dest)
    return dest


def _stream(response, part: Path, have: int, label: str, item: dict) -> None:
    """Append the response body to ``part`` with a progress bar (restart if Range was ignored)."""
    with response:
        status = getattr(response, "status", None) or response.getcode()
        if have and status != 206:  # the server sent the whole file: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else item.get("size")
        try:
            with open(part, "ab" if have else "wb") as f, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=label) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        except OSError as e:  # connection dropped or stalled for `timeout` seconds
            raise ConnectionError(f"{item['url']}: download interrupted ({e}); run download() "
                                  f"again to resume from {part}.") from e


def _sha256(path: Path) -> str:
    """SHA-256 of a file, with a progress bar (the NYU file takes a few seconds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"checking {path.name}") as bar:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _extract(archive: Path, folder: Path) -> None:
    """Unpack a tar archive into ``folder``; CSVs found in a subfolder are also copied to ``folder``."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
    top = folder.resolve()
    with tarfile.open(archive) as tar:  # one streaming pass: fine for gzip and 70k members
        for member in tqdm(tar, desc=f"unpacking {archive.name}", unit="file"):
            if member.issym() or member.islnk() or not (top / member.name).resolve().is_relative_to(top):
                raise ValueError(f"{archive}: unsafe member {member.name!r}; not extracting it.")
            tar.extract(member, folder, **safe)
    for csv in folder.glob("*/*.csv"):  # e.g. DIW_Annotations/DIW_test.csv -> diw/DIW_test.csv
        if not (folder / csv.name).exists():
            shutil.copy2(csv, folder / csv.name)


# ----------------------------------------------------------------------------------------------
# Synthetic data (the embedded default) lives in depthkit.synthetic
# ----------------------------------------------------------------------------------------------

def make_synthetic(*args, **kwargs) -> dict[str, Path]:
    """Write synthetic depth-cue scenes in the real NYU/DIW layouts (see depthkit.synthetic)."""
    from depthkit.synthetic import make_synthetic as _make_synthetic

    return _make_synthetic(*args, **kwargs)
