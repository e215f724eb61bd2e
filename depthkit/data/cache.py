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
import csv
import errno
import io
import hashlib
import json
import math
import os
import sys
import warnings
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np
from tqdm.auto import tqdm

from depthkit.config import data_dir
from depthkit.data.diw import DIWPair, DIWReject, _read_diw
from depthkit.data.images import PathLike, load_stored_rgb, rescale_pair, resize_depth, resize_image
from depthkit.data.nyu import _as_indices, _nyu_datasets, _open_nyu, _read_nyu, read_blocks
from depthkit.files import (atomic_write, atomic_write_bytes, disk_full_error, free_space, hdf5_need, hdf5_writer,
                            space_errno)

CACHE_VERSION = 3  # bump when the cache layout changes: old caches are then rebuilt (2: verified after writing;
# 3: DIW holds stored pixels, no EXIF transpose, skips bad records; its image rows may have room beyond ``rows``)
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
            short = [k for k in json.loads(f.attrs["checksums"]) if k not in f or f[k].shape[0] < rows]
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
            if ds.shape[0] < rows:
                raise OSError(errno.EIO, f"{path}: dataset {name} holds {ds.shape[0]} rows after writing, not {rows}")
            for start in range(0, rows, VERIFY_ROWS):
                crc = zlib.crc32(np.ascontiguousarray(ds[start:min(start + VERIFY_ROWS, rows)]), crc)
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


def _load_chunk(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]], int]:
    """Worker: a chunk's stored pixels resized to ``size``, their original ``(H, W)``, the failures, the EXIF-tagged count.

    No EXIF transpose (see :func:`load_stored_rgb`). A missing, unreadable or truncated image is a
    failure ``(position in the chunk, reason)``, not an exception: the caller skips its record.
    """
    images, hw, failed, oriented = [], [], [], 0
    for k, path in enumerate(paths):
        try:
            rgb, orientation = load_stored_rgb(path)
        except (ValueError, FileNotFoundError) as err:
            text = str(err)
            failed.append((k, text[len(path) + 2:] if text.startswith(f"{path}: ") else text))
            continue
        oriented += orientation != 1
        images.append(resize_image(rgb, size))
        hw.append(rgb.shape[:2])
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return stacked, np.array(hw, np.int64).reshape(-1, 2), failed, oriented


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


# Above this share of rejected records a DIW preparation stops: a wrong folder or a broken download, not bad luck.
MAX_REJECT_FRACTION = 0.01
SAVE_PROGRESS_EVERY = 1024  # records decoded between two saves of a preparation's progress (what a resume keeps)


def prepare_diw(csv_path: PathLike, cache_dir: PathLike | None = None, size: int = 200,
                image_root: PathLike | None = None, workers: int | None = None,
                limit: int | None = None, max_reject_fraction: float = MAX_REJECT_FRACTION) -> Path:
    """Resize DIW images to ``size`` x ``size`` (all cores) and rescale their pairs into a cache.

    ``workers``: processes to use (default: all cores; ``1`` runs serially). ``limit``: keep only
    the first ``limit`` records of the CSV. Images are decoded in chunks and written as they
    arrive, so memory does not grow with the number of images. The cache is rebuilt when the CSV,
    ``size``, ``image_root`` or ``limit`` change (edits to the image files themselves are not noticed).

    The pixels are the stored ones (no EXIF transpose: the annotators saw those); images carrying an
    EXIF orientation are counted. A record that cannot be used (see :mod:`depthkit.data.diw`: a
    missing, unreadable or truncated image, A == B, a non-integer coordinate; points off the image
    are clamped, as Chen et al.'s loader does) is skipped and listed with its CSV line and reason in
    ``<cache>.rejects.csv`` beside the cache; one line sums it up at the end. More than
    ``max_reject_fraction`` of the records rejected stops the preparation with one line. A
    preparation killed part-way resumes from the rows it had saved (``<cache>.partial`` and its
    ``.json`` progress, checked against their CRC-32 first); only a complete, verified file is
    ever renamed to the cache's name.
    """
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root is not None else csv_path.parent
    selection = {"image_root": str(root.resolve()), "limit": limit}
    out = _cache_path("diw", csv_path, size, selection, cache_dir)
    fingerprint = _digest("diw", CACHE_VERSION, _source_id(csv_path), size, selection)
    if _cache_is_current(out, fingerprint):
        return out
    rejects: list[DIWReject] = []
    clamped: list[int] = []
    records = _read_diw(csv_path, root, check_images=True, limit=limit, rejects=rejects, clamped=clamped)
    total = len(records) + len(rejects)
    _check_rejects(csv_path, out, total, rejects, max_reject_fraction)
    if not records:
        raise ValueError(f"{csv_path}: none of its {total:,} records can be used; see {_write_rejects(out, rejects)}.")
    row_bytes = size * size * 3
    need = hdf5_need(len(records) * (row_bytes + 8 * 4 + 1 + 8 * 2 + 8) + sum(40 + len(str(r.image)) for r in records))
    n_workers = workers or (_cpu_count() if len(records) >= 256 else 1)  # small sets: processes cost more
    try:
        progress = _resume(out, fingerprint, len(records), size)
        _decode_rows(csv_path, out, records, size, n_workers, progress, rejects, total, max_reject_fraction)
        failed = {index for index, _ in progress["failed"]}
        kept = [r for i, r in enumerate(records) if i not in failed]
        if not kept:
            _abandon(out)
            raise ValueError(f"{csv_path}: none of its {total:,} records could be prepared; see "
                             f"{_write_rejects(out, _decode_rejects(records, progress['failed']) + rejects)}.")
        all_rejects = sorted(rejects + _decode_rejects(records, progress["failed"]), key=lambda r: r.line)
        summary = _summary(csv_path, total, len(kept), all_rejects, len(clamped), progress["oriented"], out)
        _finish(out, fingerprint, csv_path, size, kept, progress, all_rejects, summary)
    except OSError as err:  # a full disk: one line naming the cache; nothing is left to be mistaken for progress
        if not space_errno(err):
            raise
        _abandon(out)
        raise disk_full_error(out, err, need) from None
    tqdm.write(summary, file=sys.stderr)  # beside the progress bars; stdout stays the command's own output
    if progress["mismatched"]:
        warnings.warn(f"{csv_path}: {progress['mismatched']} image(s) differ in size from the CSV's "
                      f"width x height; their pairs were rescaled from the CSV's size.")
    return out


def _decode_rejects(records: list[DIWPair], failed: list[list]) -> list[DIWReject]:
    """The records whose image failed to decode, as rejects (named by their image line)."""
    return [DIWReject(records[i].image_line, str(records[i].image), reason) for i, reason in failed]


def _rejects_path(out: Path) -> Path:
    """``<cache>.rejects.csv``: the records a DIW cache left out, beside it."""
    return out.with_name(out.stem + ".rejects.csv")


def _write_rejects(out: Path, rejects: list[DIWReject]) -> Path:
    """Write the rejects file (CSV: line, image, reason) atomically; return its path."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["line", "image", "reason"])
    writer.writerows([r.line, r.image, r.reason] for r in rejects)
    return atomic_write_bytes(_rejects_path(out), text.getvalue().encode())


def _check_rejects(csv_path: Path, out: Path, total: int, rejects: list[DIWReject], max_fraction: float,
                   so_far: bool = False) -> None:
    """Stop with one line (the rejects written first) when more than ``max_fraction`` of ``total`` records are rejected.

    ``so_far``: the images are still being decoded, and the rejects already exceed the share.
    """
    if len(rejects) <= max_fraction * total:
        return
    rejects = sorted(rejects, key=lambda r: r.line)
    path = _write_rejects(out, rejects)
    share = f"{100 * len(rejects) / total:.1f} %{' already' if so_far else ''}, more than {100 * max_fraction:g} %"
    raise ValueError(f"{csv_path}: {len(rejects):,} of {total:,} records rejected{' so far' if so_far else ''} "
                     f"({share}): a wrong image folder (--image-root) or a broken download, not bad luck. "
                     f"First: line {rejects[0].line}: {rejects[0].reason} All: {path}")


def _summary(csv_path: Path, total: int, kept: int, rejects: list[DIWReject], clamped: int, oriented: int,
             out: Path) -> str:
    """The one line a preparation ends with: records, prepared, skipped by reason, clamped, EXIF-tagged."""
    kinds: dict[str, int] = {}
    for r in rejects:
        kinds[_reject_kind(r.reason)] = kinds.get(_reject_kind(r.reason), 0) + 1
    why = ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    skipped = f"{len(rejects):,} skipped ({why}): see {_rejects_path(out)}" if rejects else "none skipped"
    return (f"{csv_path.name}: {total:,} records: {kept:,} prepared, {skipped}; {clamped:,} with a point clamped "
            f"onto its image; {oriented:,} images carry an EXIF orientation (their stored pixels are used, as annotated).")


def _reject_kind(reason: str) -> str:
    """A short name for a reject's reason, for the summary line."""
    for words, kind in (("not found", "missing image"), ("cannot read", "unreadable image"),
                        ("identical", "A == B"), ("not an integer", "non-integer coordinate")):
        if words in reason:
            return kind
    return "malformed line"


def _partial_paths(out: Path) -> tuple[Path, Path]:
    """A preparation in progress: ``<cache>.partial`` (the rows so far) and ``<cache>.partial.json`` (what they are)."""
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def _resume(out: Path, fingerprint: str, n: int, size: int) -> dict:
    """The progress of an earlier, interrupted preparation of ``out`` whose rows check out, or a fresh start."""
    partial, journal = _partial_paths(out)
    progress = None
    if partial.is_file() and journal.is_file():
        try:
            progress = json.loads(journal.read_text())
        except (OSError, ValueError):
            progress = None
        if progress is not None and (progress.get("fingerprint"), progress.get("n"), progress.get("size")) != (fingerprint, n, size):
            progress = None
        if progress is not None and _rows_crc(partial, progress["rows"]) != progress["crc"]:
            warnings.warn(f"{partial}: its rows do not match the saved progress; starting over.", stacklevel=3)
            progress = None
        if progress is not None and progress["done"]:
            tqdm.write(f"{out.name}: resuming after {progress['done']:,} of {n:,} records ({partial.name}).", file=sys.stderr)
    if progress is None:
        journal.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
        _start_partial(partial, n, size)
        progress = {"fingerprint": fingerprint, "n": n, "size": size, "done": 0, "rows": 0, "crc": 0,
                    "failed": [], "oriented": 0, "mismatched": 0}
        _save_progress(journal, progress)
    return progress


def _start_partial(partial: Path, n: int, size: int) -> None:
    """Create ``partial`` with room for ``n`` image rows, reserved on disk and allocated (contiguous) at once."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    with hdf5_writer(partial, hdf5_need(n * size * size * 3)) as f:
        f.attrs["cache_version"] = CACHE_VERSION  # no rows, no checksums, no fingerprint: never taken for a cache
        images = f.create_dataset("images", (n, size, size, 3), np.uint8)
        images[n - 1] = 0  # the first write allocates the whole contiguous dataset


def _images_offset(partial: Path) -> int:
    """Byte offset of the (contiguous) image rows inside ``partial``."""
    with h5py.File(partial, "r") as f:
        return int(f["images"].id.get_offset())


def _rows_crc(partial: Path, rows: int) -> int | None:
    """CRC-32 of the first ``rows`` image rows of ``partial`` (None when it cannot be read)."""
    try:
        with h5py.File(partial, "r") as f:
            ds = f["images"]
            if ds.shape[0] < rows or ds.id.get_offset() is None:
                return None
            crc = 0
            for start in range(0, rows, VERIFY_ROWS):
                crc = zlib.crc32(np.ascontiguousarray(ds[start:min(start + VERIFY_ROWS, rows)]), crc)
            return crc
    except (OSError, KeyError, ValueError):
        return None


def _save_progress(journal: Path, progress: dict) -> None:
    """Replace the progress file atomically (a kill leaves the old one or the new one, never a mix)."""
    atomic_write_bytes(journal, json.dumps(progress).encode())


def _decode_rows(csv_path: Path, out: Path, records: list[DIWPair], size: int, workers: int, progress: dict,
                 rejects: list[DIWReject], total: int, max_fraction: float) -> None:
    """Decode the records after ``progress["done"]`` into the partial file's rows, saving progress as it goes."""
    partial, journal = _partial_paths(out)
    row_bytes, done = size * size * 3, progress["done"]
    chunk = max(1, min(64, math.ceil((len(records) - done) / (4 * workers))))  # small sets: keep all cores busy
    starts = range(done, len(records), chunk)
    jobs = [([str(r.image) for r in records[s:s + chunk]], size) for s in starts]
    offset, saved = _images_offset(partial), done
    fd = os.open(partial, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        with tqdm(total=len(records), initial=done, desc=f"DIW -> {size}x{size}", unit="img") as bar:
            for start, (images, hw, failed, oriented) in zip(starts, _in_order(_load_chunk, jobs, workers)):
                ok = [k for k in range(min(chunk, len(records) - start)) if k not in {f for f, _ in failed}]
                _pwrite_all(fd, partial, np.ascontiguousarray(images).tobytes(), offset + progress["rows"] * row_bytes)
                progress["crc"] = zlib.crc32(np.ascontiguousarray(images), progress["crc"])
                progress["rows"] += len(images)
                progress["failed"] += [[start + k, reason] for k, reason in failed]
                progress["oriented"] += oriented
                progress["mismatched"] += sum((h, w) != (records[start + k].height, records[start + k].width)
                                              for k, (h, w) in zip(ok, hw))
                progress["done"] = start + chunk if start + chunk < len(records) else len(records)
                bar.update(progress["done"] - bar.n)
                if failed and len(rejects) + len(progress["failed"]) > max_fraction * total:
                    _abandon(out)
                    _check_rejects(csv_path, out, total, rejects + _decode_rejects(records, progress["failed"]),
                                   max_fraction, so_far=True)
                if progress["done"] - saved >= SAVE_PROGRESS_EVERY or progress["done"] == len(records):
                    _save_progress(journal, progress)
                    saved = progress["done"]
    finally:
        os.close(fd)


def _pwrite_all(fd: int, path: Path, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (space reserved beforehand); a failure names ``path``."""
    view, done = memoryview(data), 0
    try:
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
    except OSError as err:
        raise (disk_full_error(path, err, len(data)) if space_errno(err) else err) from err


def _abandon(out: Path) -> None:
    """Remove an interrupted preparation's files (its images are not to be resumed from)."""
    for path in _partial_paths(out):
        path.unlink(missing_ok=True)


def _finish(out: Path, fingerprint: str, csv_path: Path, size: int, kept: list[DIWPair], progress: dict,
            rejects: list[DIWReject], summary: str) -> None:
    """Add the kept records' pairs and the checksums to the partial file, verify it, and rename it to ``out``."""
    partial, journal = _partial_paths(out)
    paths = [str(r.image) for r in kept]
    rows = len(kept)
    small = rows * (8 * 4 + 1 + 8 * 2 + 8) + sum(40 + len(p.encode()) for p in paths)
    with hdf5_writer(partial, hdf5_need(small), mode="r+") as h5:
        for name in ("pairs", "relation", "orig_hw", "lines", "paths"):  # left by a kill during an earlier finish
            if name in h5:
                del h5[name]
        sums = _Checksums(images=progress["crc"])
        h5.attrs.update(source=str(csv_path.resolve()), size=size)
        sums.create(h5, "pairs", np.array([rescale_pair(r, (r.height, r.width), (size, size)) for r in kept],
                                          np.int64).reshape(-1, 4))
        sums.create(h5, "relation", np.array([r.relation for r in kept], np.int8))
        sums.create(h5, "orig_hw", np.array([(r.height, r.width) for r in kept], np.int64).reshape(-1, 2))
        sums.create(h5, "lines", np.array([r.line for r in kept], np.int64))
        h5.create_dataset("paths", data=paths, dtype=h5py.string_dtype())
        h5.attrs.update(rows=rows, records=rows + len(rejects), rejected=len(rejects), size_mismatches=progress["mismatched"],
                        exif_oriented=progress["oriented"], summary=summary)
        h5.attrs["checksums"] = json.dumps(sums, sort_keys=True)
        h5.attrs["fingerprint"] = fingerprint  # last: only a complete file carries it
    try:
        _verify(partial, out, rows, sums)
    except OSError:  # the rows do not read back as written: nothing of this file is to be resumed from
        _abandon(out)
        raise
    if rejects:  # before the cache: a complete cache always has its list of what it left out
        _write_rejects(out, rejects)
    else:
        _rejects_path(out).unlink(missing_ok=True)
    os.replace(partial, out)
    journal.unlink(missing_ok=True)


def _cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _read_array(ds: h5py.Dataset, path: Path, mmap: bool, rows: int | None = None) -> np.ndarray:
    """Read a cache dataset's first ``rows`` rows (default: all), or memory-map them (contiguous, uncompressed) when ``mmap``."""
    rows = ds.shape[0] if rows is None else rows
    offset = ds.id.get_offset() if mmap else None
    if offset is None:
        return ds[:rows]
    return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=(rows,) + ds.shape[1:])


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
    with f:  # the image dataset may hold room for more rows than were kept (records skipped while decoding)
        return {"images": _read_array(f["images"], path, mmap, int(f.attrs["rows"])),
                "pairs": f["pairs"][()].astype(np.int64),
                "relation": f["relation"][()].astype(np.int8),
                "orig_hw": f["orig_hw"][()].astype(np.int64),
                "paths": [str(p) for p in f["paths"].asstr()[()]],
                "lines": f["lines"][()].astype(np.int64),
                "fingerprint": str(f.attrs["fingerprint"])}
