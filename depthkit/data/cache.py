"""The on-disk caches: every image resized once, written row by row, read a batch at a time.

:func:`prepare_nyu` and :func:`prepare_diw` write an HDF5 file per source and size
(``data/cache/<kind>_<hash>_<size>.h5``) with uncompressed, contiguous datasets: ``images``
``(N, S, S, 3)`` uint8, and ``depths`` ``(N, S, S)`` float32 metres (NYU) or ``pairs`` ``(N, 4)`` and
``relation`` ``(N,)`` (DIW). Rows are written as they are decoded, so preparing never holds the
partition in memory. Its whole size is reserved on disk before HDF5 writes into it (a full disk is
one clean error, never a failed write inside HDF5: see ``depthkit.files.hdf5_writer``). The file is
renamed into place only when complete: closed, read back against the CRC-32 of every dataset
computed while writing, and only a verified file carries the current ``cache_version``; any other
file in its place is rebuilt, with a one-line notice. :func:`load_nyu_cache`
and :func:`load_diw_cache` memory-map the image rows, so opening a cache of 74,441 images costs
nothing until a batch is read.
"""
from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import json
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np
from tqdm.auto import tqdm

from depthkit.config import data_dir
from depthkit.data.diw import DIWPair, _read_diw
from depthkit.data.images import PathLike, load_rgb, rescale_pair, resize_depth, resize_image
from depthkit.data.nyu import _as_indices, _nyu_datasets, _open_nyu, _read_nyu, read_blocks
from depthkit.files import atomic_write, free_space, hdf5_need, hdf5_writer

CACHE_VERSION = 2  # bump when the cache layout changes: old caches are then rebuilt (2: verified after writing)
VERIFY_ROWS = 256  # rows read at a time when a written cache is checked against its checksums

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
    """True when ``path`` is a complete, verified cache written for ``fingerprint``.

    A cache of other sources or options is replaced silently; one that is incomplete, damaged or
    written by an older depthkit (no checksums) is replaced with a one-line notice.
    """
    if not path.is_file():
        return False
    problem = _cache_problem(path)
    if problem is None:
        with h5py.File(path, "r") as f:
            return f.attrs.get("fingerprint") == fingerprint
    warnings.warn(f"{path}: {problem}; rebuilding it.", stacklevel=3)
    return False


def _cache_problem(path: Path) -> str | None:
    """What makes ``path`` no complete cache of this version (None when nothing does), without reading its rows."""
    try:
        with h5py.File(path, "r") as f:
            version, rows = f.attrs.get("cache_version"), f.attrs.get("rows")
            if version != CACHE_VERSION or "checksums" not in f.attrs or "fingerprint" not in f.attrs:
                return f"incomplete, or written by an older depthkit (cache version {version}, now {CACHE_VERSION})"
            short = [k for k in json.loads(f.attrs["checksums"]) if k not in f or f[k].shape[0] != rows]
            end = max((f[k].id.get_offset() or 0) + f[k].id.get_storage_size() for k in f)
    except (OSError, KeyError, ValueError) as err:  # not HDF5, truncated metadata
        return f"damaged ({type(err).__name__}: {' '.join(str(err).split())[:120]})"
    if short:
        return f"damaged (datasets {', '.join(short)} do not hold {rows} rows)"
    if path.stat().st_size < end:
        return f"damaged (truncated: {path.stat().st_size:,} bytes where its datasets end at {end:,})"
    return None


class _Checksums(dict):
    """CRC-32 of each dataset's bytes in row order, computed from the arrays as they are written."""

    def put(self, ds: h5py.Dataset, start: int, rows: np.ndarray) -> None:
        """Write ``rows`` into ``ds`` from row ``start`` on (the next rows in order) and add them to its checksum."""
        rows = np.ascontiguousarray(rows, dtype=ds.dtype)
        ds[start:start + len(rows)] = rows
        self[ds.name.lstrip("/")] = zlib.crc32(rows, self.get(ds.name.lstrip("/"), 0))

    def create(self, h5: h5py.File, name: str, data: np.ndarray) -> None:
        """A whole (small) dataset, checksummed."""
        self.put(h5.create_dataset(name, data.shape, data.dtype), 0, data)


def _verify(tmp: Path, path: Path, rows: int, sums: dict[str, int]) -> None:
    """Read the closed file ``tmp`` back; raise ``OSError`` when a dataset is short or differs from what was written."""
    with h5py.File(tmp, "r") as f:
        for name, expected in sums.items():
            ds, crc = f[name], 0
            if ds.shape[0] != rows:
                raise OSError(errno.EIO, f"{path}: dataset {name} holds {ds.shape[0]} rows after writing, not {rows}")
            for start in range(0, rows, VERIFY_ROWS):
                crc = zlib.crc32(np.ascontiguousarray(ds[start:start + VERIFY_ROWS]), crc)
            if crc != expected:
                raise OSError(errno.EIO, f"{path}: dataset {name} does not read back as written (CRC-32 "
                                         f"{crc:08x}, written {expected:08x}): the disk may be full or failing; "
                                         f"{free_space(path.parent)} free on the disk of {path.parent}")


def _write_atomically(path: Path, fill: Callable[[h5py.File, _Checksums], None], fingerprint: str,
                      rows: int, data_bytes: int) -> Path:
    """Write an HDF5 cache of ``rows`` rows through ``fill`` into a temp file beside ``path``, verify it, rename it.

    ``fill(h5, sums)`` writes every dataset, ``data_bytes`` in all, row-wise ones through ``sums``
    (checksummed). The file's space is reserved before HDF5 writes into it (:func:`hdf5_writer`);
    once closed, it is read back and compared with the checksums. Any failure removes the
    temporary file and raises one ``OSError`` that names ``path``, the bytes needed and the free space.
    """
    need = hdf5_need(data_bytes)

    def write(tmp: Path) -> None:
        sums = _Checksums()
        with hdf5_writer(tmp, need) as f:
            f.attrs.update(cache_version=CACHE_VERSION, rows=rows)
            fill(f, sums)
            f.attrs["checksums"] = json.dumps(sums, sort_keys=True)
            f.attrs["fingerprint"] = fingerprint  # last: only a complete file carries it
        _verify(tmp, path, rows, sums)

    return atomic_write(path, write, need=need)


def prepare_nyu(mat_path: PathLike, cache_dir: PathLike | None = None, size: int = 200,
                indices: Iterable[int] | None = None) -> Path:
    """Resize NYU images/depths to ``size`` x ``size`` into a cached HDF5 file; return its path.

    Images are squashed to a square with bilinear filtering (as the report did); depths are
    area-averaged over valid pixels only (see :func:`resize_depth`). Rows are read and written in
    whole chunks of the .mat (:func:`depthkit.data.nyu.read_blocks`). The cache lives in ``cache_dir`` (default ``data/cache``) and is reused until the
    source file, ``size`` or ``indices`` change.
    """
    mat_path = Path(mat_path)
    with _open_nyu(mat_path) as f:
        images, depths = _nyu_datasets(f, mat_path)
        idx = _as_indices(indices, images.shape[0], mat_path)
        if idx.size == 0:
            raise ValueError(f"{mat_path}: no frames to prepare (the file holds {images.shape[0]} "
                             f"images{'' if indices is None else ', and the selection is empty'}).")
        selection = None if indices is None else idx.tolist()
        out = _cache_path("nyu", mat_path, size, selection, cache_dir)
        fingerprint = _digest("nyu", CACHE_VERSION, _source_id(mat_path), size, selection)
        if _cache_is_current(out, fingerprint):
            return out

        def fill(h5: h5py.File, sums: _Checksums) -> None:
            h5.attrs.update(source=str(mat_path.resolve()), size=size)
            sums.create(h5, "indices", np.asarray(idx, np.int64))
            img_ds = h5.create_dataset("images", (len(idx), size, size, 3), np.uint8)
            dep_ds = h5.create_dataset("depths", (len(idx), size, size), np.float32)
            with tqdm(total=len(idx), desc=f"NYU -> {size}x{size}", unit="img") as bar:
                for start, stop in read_blocks((images, depths), idx):  # whole chunks of the .mat
                    img, dep = _read_nyu(images, depths, idx[start:stop])
                    sums.put(img_ds, start, np.stack([resize_image(a, size) for a in img]))
                    sums.put(dep_ds, start, np.stack([resize_depth(d, size) for d in dep]))
                    bar.update(len(img))

        return _write_atomically(out, fill, fingerprint, len(idx), len(idx) * (8 + size * size * (3 + 4)))


def _load_resized(path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Load one image as RGB resized to ``size`` x ``size``; also return its original ``(H, W)``."""
    rgb = load_rgb(path)
    return resize_image(rgb, size), rgb.shape[:2]


def _load_chunk(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Worker: a chunk of images resized to ``size`` and their original ``(H, W)``."""
    loaded = [_load_resized(p, size) for p in paths]
    images = np.stack([im for im, _ in loaded]) if loaded else np.zeros((0, size, size, 3), np.uint8)
    return images, np.array([hw for _, hw in loaded], np.int64).reshape(-1, 2)


def _in_order(fn: Callable, jobs: list, workers: int) -> Iterator:
    """``map(fn, jobs)`` over ``workers`` processes, in order, with at most ``2 * workers`` jobs in flight.

    ``Executor.map`` submits every job at once and keeps finished results until they are consumed;
    this window keeps the memory of a 74,441-image preparation flat.
    """
    if workers <= 1 or len(jobs) <= 1:
        yield from (fn(*job) for job in jobs)
        return
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs))) as pool:
        pending: list[concurrent.futures.Future] = []
        for job in jobs:
            pending.append(pool.submit(fn, *job))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def prepare_diw(csv_path: PathLike, cache_dir: PathLike | None = None, size: int = 200,
                image_root: PathLike | None = None, workers: int | None = None,
                limit: int | None = None) -> Path:
    """Resize DIW images to ``size`` x ``size`` (all cores) and rescale their pairs into a cache.

    ``workers``: processes to use (default: all cores; ``1`` runs serially). ``limit``: keep only
    the first ``limit`` records of the CSV. Images are decoded in chunks and written as they
    arrive, so memory does not grow with the number of images. The cache is rebuilt when the CSV,
    ``size``, ``image_root`` or ``limit`` change (edits to the image files themselves are not noticed).
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

    def fill(h5: h5py.File, sums: _Checksums) -> None:
        h5.attrs.update(source=str(csv_path.resolve()), size=size)
        sums.create(h5, "pairs", np.array([rescale_pair(r, (r.height, r.width), (size, size)) for r in records],
                                          np.int64).reshape(-1, 4))
        sums.create(h5, "relation", np.array([r.relation for r in records], np.int8))
        sums.create(h5, "orig_hw", np.array([(r.height, r.width) for r in records], np.int64).reshape(-1, 2))
        sums.create(h5, "lines", np.array([r.line for r in records], np.int64))
        h5.create_dataset("paths", data=paths, dtype=h5py.string_dtype())
        img_ds = h5.create_dataset("images", (n, size, size, 3), np.uint8)
        # workers=None: all cores, except for small sets where starting processes costs more
        n_workers = workers or (_cpu_count() if n >= 256 else 1)
        chunk = max(1, min(64, math.ceil(n / (4 * n_workers))))  # small sets: keep all cores busy
        starts = range(0, n, chunk)
        jobs = [(paths[s:s + chunk], size) for s in starts]
        with tqdm(total=n, desc=f"DIW -> {size}x{size}", unit="img") as bar:
            mismatched = _store_chunks(_in_order(_load_chunk, jobs, n_workers), starts, img_ds, records, bar, sums)
        h5.attrs["size_mismatches"] = mismatched
        if mismatched:
            warnings.warn(f"{csv_path}: {mismatched} image(s) differ in size from the CSV's "
                          f"width x height; their pairs were rescaled from the CSV's size.")

    # per record: image, pairs, relation, orig_hw, lines; a path is 16 bytes in its dataset, its text in the heap
    paths_bytes = sum(40 + len(p.encode()) for p in paths)
    return _write_atomically(out, fill, fingerprint, n, n * (size * size * 3 + 8 * 4 + 1 + 8 * 2 + 8) + paths_bytes)


def _cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _store_chunks(results: Iterable[tuple[np.ndarray, np.ndarray]], starts: range,
                  img_ds: h5py.Dataset, records: list[DIWPair], bar: tqdm, sums: _Checksums) -> int:
    """Write worker results in order (checksummed); count images whose real size differs from the CSV's."""
    mismatched = 0
    for start, (images, hw) in zip(starts, results):
        sums.put(img_ds, start, images)
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


def load_nyu_cache(path: PathLike, mmap: bool = True) -> dict:
    """Open a :func:`prepare_nyu` cache: ``images`` (N,S,S,3) uint8, ``depths`` (N,S,S), ``indices``, ``fingerprint``.

    With ``mmap`` (the default) ``images`` and ``depths`` are memory-mapped: rows are read from
    disk (or the page cache) only when indexed. ``mmap=False`` reads everything into memory.
    """
    path, f = _open_cache(path, "nyu", ("images", "depths", "indices"))
    with f:
        return {"images": _read_array(f["images"], path, mmap),
                "depths": _read_array(f["depths"], path, mmap),
                "indices": f["indices"][()].astype(np.int64),
                "fingerprint": str(f.attrs["fingerprint"])}


def load_diw_cache(path: PathLike, mmap: bool = True) -> dict:
    """Open a :func:`prepare_diw` cache: ``images`` (memory-mapped), ``pairs``, ``relation``, ``orig_hw``, ``paths``."""
    path, f = _open_cache(path, "diw", ("images", "pairs", "relation", "orig_hw", "paths"))
    with f:
        return {"images": _read_array(f["images"], path, mmap),
                "pairs": f["pairs"][()].astype(np.int64),
                "relation": f["relation"][()].astype(np.int8),
                "orig_hw": f["orig_hw"][()].astype(np.int64),
                "paths": [str(p) for p in f["paths"].asstr()[()]],
                "lines": f["lines"][()].astype(np.int64),
                "fingerprint": str(f.attrs["fingerprint"])}
