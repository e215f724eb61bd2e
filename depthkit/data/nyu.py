"""NYU Depth V2 (labeled): read the MATLAB v7.3 file and the official split.

``nyu_depth_v2_labeled.mat`` is HDF5. Through h5py ``images`` is ``(N, 3, 640, 480)`` and ``depths``
``(N, 640, 480)``: MATLAB stores arrays column-major, so every image appears transposed.
:func:`read_nyu_mat` undoes that and returns ``(N, 480, 640, 3)`` RGB and ``(N, 480, 640)`` metres.
The frame axis is h5py's first (MATLAB's last). The datasets are chunked and gzip-compressed: a
chunk is decompressed whole for any read that touches it, so :func:`read_blocks` reads whole
chunks along the frame axis, as the file says they are laid out (``Dataset.chunks``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np
from PIL import Image

from depthkit.config import data_dir, repo_root
from depthkit.data.images import PathLike

NYU_SIZE = 2_972_037_809  # bytes of the published nyu_depth_v2_labeled.mat
_MATLAB5_MAGIC = b"MATLAB 5.0 MAT-file"
READ_BYTES = 256 * 2**20  # one read of the .mat (images + depths) stays below this, whatever its chunks
READ_FRAMES = 16  # frames per read where the chunks allow it (few reads, small memory)


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


def frames_per_chunk(datasets: Sequence[h5py.Dataset]) -> int:
    """Frames one chunk spans along the frame axis (h5py's axis 0), common to all ``datasets``: the lcm of theirs.

    A contiguous (unchunked) dataset counts 1: any frame can be read alone.
    """
    return math.lcm(*(ds.chunks[0] if ds.chunks else 1 for ds in datasets))


def _frame_bytes(datasets: Sequence[h5py.Dataset]) -> int:
    """Bytes of one frame across ``datasets`` (every axis but the first)."""
    return sum(math.prod(ds.shape[1:]) * ds.dtype.itemsize for ds in datasets)


def read_window(datasets: Sequence[h5py.Dataset], max_bytes: int = READ_BYTES, frames: int = READ_FRAMES) -> int:
    """Frames per read: a whole number of chunks (the fewest that hold ``frames``), with one read under ``max_bytes``.

    When one chunk spans more frames than ``max_bytes`` holds, a read is capped at what fits
    (see :func:`read_blocks`).
    """
    per_chunk = frames_per_chunk(datasets)
    cap = max(1, max_bytes // max(_frame_bytes(datasets), 1))
    if per_chunk > cap:
        return cap
    return per_chunk * max(1, min(cap // per_chunk, math.ceil(frames / per_chunk)))


def read_blocks(datasets: Sequence[h5py.Dataset], idx: np.ndarray, max_bytes: int = READ_BYTES,
                frames: int = READ_FRAMES) -> list[tuple[int, int]]:
    """``(start, stop)`` positions into ``idx`` read together: the frames of one window of :func:`read_window` frames.

    Windows start where chunks do (multiples of the window along the frame axis), so over sorted
    indices every chunk is decompressed by one read only. A chunk that spans more frames than
    ``max_bytes`` holds is read in the fewest pieces that fit, none crossing into the next chunk:
    memory stays bounded, and such a chunk is decompressed once per piece. Unsorted indices are
    read in their order (a window they return to is read again); a block never exceeds a window.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return []
    window, per_chunk = read_window(datasets, max_bytes, frames), frames_per_chunk(datasets)
    if per_chunk > window:  # pieces of one chunk: (chunk, piece) numbers every window
        ids = idx // per_chunk * math.ceil(per_chunk / window) + idx % per_chunk // window
    else:
        ids = idx // window
    edges = np.concatenate([[0], np.flatnonzero(np.diff(ids)) + 1, [idx.size]])
    return [(int(s), int(min(s + window, e))) for a, e in zip(edges[:-1], edges[1:]) for s in range(a, e, window)]


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

