"""The real NYU file is gzip-compressed HDF5 with chunked datasets: depthkit reads whole chunks along the frame axis.

A chunk is decompressed whole by every read that touches it; reads of 16 frames over chunks of 7
decompress the chunks they cut twice, and over chunks of 64 frames four times each. These tests
write real gzip-chunked files with h5py (no mock of the file or of h5py) and check the blocks
:func:`depthkit.data.nyu.read_blocks` returns, the blocks ``prepare_nyu`` reads, and that the
prepared cache is the one a frame-by-frame read gives.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from depthkit.data import cache as dk_cache
from depthkit.data import load_nyu_cache, prepare_nyu, read_nyu_mat
from depthkit.data.images import resize_depth, resize_image
from depthkit.data.nyu import READ_FRAMES, frames_per_chunk, read_blocks, read_window

W, H = 40, 30  # MATLAB order: h5py sees (N, 3, W, H)


def write_mat(path, n: int, image_chunk: int | None, depth_chunk: int | None = None) -> None:
    """An NYU-layout HDF5 file of ``n`` frames, gzip-compressed in chunks of that many frames (None: contiguous)."""
    rng = np.random.default_rng(0)
    depth_chunk = image_chunk if depth_chunk is None else depth_chunk
    with h5py.File(path, "w") as f:
        kw = lambda c, shape: {"chunks": (c, *shape), "compression": "gzip",  # noqa: E731
                               "maxshape": (None, *shape)} if c else {}  # maxshape: a chunk may span more frames than n
        f.create_dataset("images", data=rng.integers(0, 256, (n, 3, W, H), dtype=np.uint8), **kw(image_chunk, (3, W, H)))
        f.create_dataset("depths", data=rng.uniform(0.5, 9, (n, W, H)).astype(np.float32), **kw(depth_chunk, (W, H)))


def frame_bytes() -> int:
    return W * H * (3 + 4)


def check_cover(blocks: list[tuple[int, int]], n: int) -> None:
    """The blocks are consecutive and cover positions 0..n-1 once each."""
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(blocks, blocks[1:]))


def chunks_read(blocks, idx, per_chunk: int) -> list[int]:
    """Chunk numbers each block touches, all blocks together (a chunk listed twice is decompressed twice)."""
    return [c for a, b in blocks for c in sorted({int(i) // per_chunk for i in idx[a:b]})]


@pytest.mark.parametrize("n", [50, 49, 7, 1])
def test_blocks_are_whole_chunks_of_the_frame_axis(tmp_path, n):
    """Catches: a read step that is not a multiple of the file's chunks (each cut chunk decompressed twice)."""
    write_mat(tmp_path / "a.mat", n, image_chunk=7)
    with h5py.File(tmp_path / "a.mat", "r") as f:
        ds = (f["images"], f["depths"])
        assert frames_per_chunk(ds) == 7 and read_window(ds) == 21  # the fewest whole chunks holding 16 frames
        idx = np.arange(n)
        blocks = read_blocks(ds, idx)
        check_cover(blocks, n)
        assert all(a % 7 == 0 and (b % 7 == 0 or b == n) for a, b in blocks), blocks
        touched = chunks_read(blocks, idx, 7)
        assert len(touched) == len(set(touched)) == -(-n // 7)  # every chunk read by one block only


def test_the_chunks_of_both_datasets_are_respected_together(tmp_path):
    write_mat(tmp_path / "a.mat", 60, image_chunk=4, depth_chunk=6)
    with h5py.File(tmp_path / "a.mat", "r") as f:
        ds = (f["images"], f["depths"])
        assert frames_per_chunk(ds) == 12
        blocks = read_blocks(ds, np.arange(60))
        assert blocks == [(0, 24), (24, 48), (48, 60)]


def test_a_contiguous_file_is_read_sixteen_frames_at_a_time(tmp_path):
    write_mat(tmp_path / "a.mat", 40, image_chunk=None)
    with h5py.File(tmp_path / "a.mat", "r") as f:
        assert read_blocks((f["images"], f["depths"]), np.arange(40)) == [(0, 16), (16, 32), (32, 40)]


def test_memory_stays_bounded_when_one_chunk_spans_more_frames_than_a_read_may_hold(tmp_path):
    """A chunk over the byte cap: read in the fewest pieces that fit, none reaching into the next chunk."""
    write_mat(tmp_path / "a.mat", 50, image_chunk=20)
    cap = 6 * frame_bytes()  # six frames a read
    with h5py.File(tmp_path / "a.mat", "r") as f:
        ds = (f["images"], f["depths"])
        idx = np.arange(50)
        blocks = read_blocks(ds, idx, max_bytes=cap)
        check_cover(blocks, 50)
        assert all(b - a <= 6 for a, b in blocks)
        assert all(a // 20 == (b - 1) // 20 for a, b in blocks)  # inside one chunk
        per_chunk = [sum(1 for a, _ in blocks if a // 20 == c) for c in range(3)]
        assert per_chunk == [4, 4, 2]  # ceil(20 / 6) pieces, ceil(10 / 6) for the last, shorter chunk
        wide = read_blocks(ds, idx, max_bytes=64 * frame_bytes())  # under the cap: whole chunks again
        assert wide == [(0, 20), (20, 40), (40, 50)]


def test_unsorted_indices_are_read_in_their_order_a_window_at_a_time(tmp_path):
    write_mat(tmp_path / "a.mat", 50, image_chunk=7)
    with h5py.File(tmp_path / "a.mat", "r") as f:
        idx = np.array([3, 4, 30, 29, 2, 44, 45, 46])
        blocks = read_blocks((f["images"], f["depths"]), idx)
        assert blocks == [(0, 2), (2, 4), (4, 5), (5, 8)]  # windows of 21 frames: 0-20, 21-41, 0-20, 42-62


@pytest.mark.parametrize("indices", [None, [20, 3, 4, 5, 27, 13, 14]])
def test_prepare_nyu_reads_whole_chunks_and_caches_what_frame_by_frame_reads_give(tmp_path, monkeypatch, indices):
    """The real preparation over a gzip file with 7-frame chunks: every chunk read once, the same cache as one frame a read.

    Catches: prepare_nyu reading 16 frames a time again (blocks that cut chunks), and any block
    logic that drops, repeats or reorders a frame.
    """
    write_mat(tmp_path / "nyu.mat", 30, image_chunk=7)
    reads = []
    real = dk_cache._read_nyu
    monkeypatch.setattr(dk_cache, "_read_nyu", lambda im, de, idx: reads.append(np.array(idx)) or real(im, de, idx))
    path = prepare_nyu(tmp_path / "nyu.mat", tmp_path / "cache", size=16, indices=indices)
    frames = np.arange(30) if indices is None else np.array(indices)
    assert np.array_equal(np.concatenate(reads), frames)
    if indices is None:  # sorted frames: whole chunks, each chunk in one read
        assert all(r[0] % 7 == 0 and (r[-1] + 1 == 30 or (r[-1] + 1) % 7 == 0) for r in reads), reads
        assert [len(r) for r in reads] == [21, 9] and READ_FRAMES < 21
    cache = load_nyu_cache(path, mmap=False)
    for row, i in enumerate(frames):
        img, dep = read_nyu_mat(tmp_path / "nyu.mat", [int(i)])
        assert np.array_equal(cache["images"][row], resize_image(img[0], 16)), row
        assert np.array_equal(cache["depths"][row], resize_depth(dep[0], 16)), row
