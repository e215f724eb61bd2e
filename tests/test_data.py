"""Tests for depthkit.data: readers, cache and downloads. Small fake files only, never the network."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import threading
import time
import urllib.error
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from helpers import tar_gz  # tests/helpers.py: shared with the other download tests
from depthkit import data
from depthkit.config import repo_root
from depthkit.data import downloads as download_module
from depthkit.data import DIWPair

ASSETS = Path(__file__).parent / "assets" / "nyu_real_samples"
FRAMES = ("00000", "00050", "00100")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def write_mat(path: Path, images: np.ndarray, depths: np.ndarray) -> Path:
    """Write row-major ``images`` (N,H,W,3) and ``depths`` (N,H,W) the way MATLAB v7.3 stores them."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f["images"] = images.transpose(0, 3, 2, 1)  # -> (N, 3, W, H)
        f["depths"] = depths.transpose(0, 2, 1)     # -> (N, W, H)
    with open(path, "r+b") as f:  # the text header MATLAB puts in the user block
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5")
    return path


def fake_nyu(path: Path, n: int = 5, h: int = 24, w: int = 32, seed: int = 0) -> tuple:
    """A small NYU-layout file with random content; returns (path, images, depths)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 10.0, (n, h, w)).astype(np.float32)
    return write_mat(path, images, depths), images, depths


def touch_later(path: Path, seconds: float = 10.0) -> None:
    """Move a file's modification time forward (a changed source, whatever the clock resolution)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


def save_jpeg(path: Path, h: int, w: int, seed: int = 0, mode: str = "RGB") -> Path:
    """A random JPEG (any extension, e.g. DIW's ``.thumb``)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG")
    return path


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def diw_dir(tmp_path: Path) -> Path:
    """``diw/DIW_test/{a,b}.thumb`` and ``diw/c.thumb`` (to test the name-only fallback)."""
    root = tmp_path / "diw"
    save_jpeg(root / "DIW_test" / "a.thumb", 30, 40, seed=1)
    save_jpeg(root / "DIW_test" / "b.thumb", 50, 20, seed=2)
    save_jpeg(root / "c.thumb", 25, 25, seed=3)
    return root


# ----------------------------------------------------------------------------------------------
# NYU reader
# ----------------------------------------------------------------------------------------------

def test_nyu_orientation_marker(tmp_path):
    """The trap: MATLAB order shows up transposed; a marker must come back where it was drawn."""
    images = np.zeros((2, 480, 640, 3), np.uint8)
    depths = np.full((2, 480, 640), 2.0, np.float32)
    images[1, 0:20, 0:40, 0] = 255          # a red block in the top-left corner, wider than tall
    depths[1, 10, 300] = 7.5                # a distinctive depth at row 10, col 300
    path = write_mat(tmp_path / "nyu.mat", images, depths)
    with h5py.File(path, "r") as f:         # the file really is in MATLAB's axis order
        assert f["images"].shape == (2, 3, 640, 480) and f["depths"].shape == (2, 640, 480)

    img, dep = data.read_nyu_mat(path, indices=[1])
    assert img.shape == (1, 480, 640, 3) and img.dtype == np.uint8
    assert dep.shape == (1, 480, 640) and dep.dtype == np.float32
    assert img[0, 5, 30, 0] == 255 and img[0, 30, 5, 0] == 0  # not mirrored on the diagonal
    assert img[0, 5, 30, 1] == 0                              # channels in RGB order
    assert dep[0, 10, 300] == 7.5 and dep[0, 300, 10] == 2.0
    assert np.argwhere(dep[0] == 7.5).tolist() == [[10, 300]]


def test_nyu_indices_order_duplicates_and_all(tmp_path):
    path, images, depths = fake_nyu(tmp_path / "nyu.mat", n=5)
    img, dep = data.read_nyu_mat(path, indices=[3, 0, 3, 4])
    np.testing.assert_array_equal(img, images[[3, 0, 3, 4]])
    np.testing.assert_array_equal(dep, depths[[3, 0, 3, 4]])
    img, dep = data.read_nyu_mat(path)
    np.testing.assert_array_equal(img, images)
    np.testing.assert_array_equal(dep, depths)
    img, dep = data.read_nyu_mat(path, indices=[])
    assert img.shape == (0, 24, 32, 3) and dep.shape == (0, 24, 32)


def test_nyu_reads_only_requested_images(tmp_path, monkeypatch):
    """Lazy: reading 2 of 40 images asks h5py for those 2 rows, never the whole dataset."""
    path, images, _ = fake_nyu(tmp_path / "nyu.mat", n=40, h=8, w=8)
    requested = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        requested.append((self.name, key))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    img, _ = data.read_nyu_mat(path, indices=[17, 5])
    np.testing.assert_array_equal(img, images[[17, 5]])
    rows = {name: key for name, key in requested}
    assert rows["/images"] == [5, 17] and rows["/depths"] == [5, 17]


def test_nyu_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.mat"):
        data.read_nyu_mat(tmp_path / "nowhere.mat")


@pytest.mark.parametrize("content, cause", [
    (b"MATLAB 5.0 MAT-file, Platform: PCWIN64, Created on: Tue" + b" " * 80 + b"\x00" * 200,
     "MATLAB v5"),
    (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
    (b"\x00\x01garbage", "truncated or corrupt"),
    (b"", "truncated or corrupt"),
])
def test_nyu_not_hdf5(tmp_path, content, cause):
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=cause) as err:
        data.read_nyu_mat(path)
    assert "nyu_depth_v2_labeled.mat" in str(err.value)


def test_nyu_truncated_download(tmp_path):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=4)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated") as err:
        data.read_nyu_mat(path)
    assert "nyu.mat" in str(err.value)


@pytest.mark.parametrize("datasets, message", [
    ({"depths": np.zeros((2, 8, 6), np.float32)}, "missing dataset.*images"),
    ({"images": np.zeros((2, 3, 8, 6), np.uint8)}, "missing dataset.*depths"),
    ({"images": np.zeros((2, 6, 8, 3), np.uint8), "depths": np.zeros((2, 8, 6), np.float32)},
     r"'images' has shape \(2, 6, 8, 3\)"),
    ({"images": np.zeros((2, 3, 8, 6), np.uint8), "depths": np.zeros((2, 6, 8), np.float32)},
     r"'depths' has shape \(2, 6, 8\)"),
    ({"images": np.zeros((2, 3, 8, 6), np.float32), "depths": np.zeros((2, 8, 6), np.float32)},
     "'images' has dtype float32; expected uint8"),
    ({"images": np.zeros((2, 3, 8, 6), np.uint8), "depths": np.zeros((2, 8, 6), np.uint16)},
     "'depths' has dtype uint16"),
])
def test_nyu_bad_layout(tmp_path, datasets, message):
    path = tmp_path / "bad.mat"
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    with pytest.raises(ValueError, match=message) as err:
        data.read_nyu_mat(path)
    assert "bad.mat" in str(err.value)


@pytest.mark.parametrize("index", [5, 17, -1])
def test_nyu_index_out_of_range(tmp_path, index):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=5)
    with pytest.raises(ValueError, match=rf"index {index} is out of range.*0\.\.4"):
        data.read_nyu_mat(path, indices=[0, index])


def test_nyu_split_official():
    train, test = data.nyu_split("train"), data.nyu_split("test")
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(train) == 795 and len(test) == 654
    assert set(train).isdisjoint(test) and len(set(train) | set(test)) == 1449
    assert min(train.min(), test.min()) == 0 and max(train.max(), test.max()) == 1448
    raw = json.loads((Path(repo_root()) / "data" / "nyu_splits.json").read_text())
    np.testing.assert_array_equal(train, np.array(raw["train"]) - 1)  # 1-based file, 0-based API
    assert "about" in raw  # the provenance line stays in the file


def test_nyu_split_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'val'.*test, train"):
        data.nyu_split("val")
    custom = tmp_path / "splits.json"
    custom.write_text(json.dumps({"about": "x", "train": [1, 3], "test": [2]}))
    np.testing.assert_array_equal(data.nyu_split("train", custom), [0, 2])
    custom.write_text(json.dumps({"train": [0, 1]}))
    with pytest.raises(ValueError, match="1-based"):
        data.nyu_split("train", custom)
    with pytest.raises(FileNotFoundError):
        data.nyu_split("train", tmp_path / "missing.json")


def test_nyu_split_falls_back_to_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTHKIT_DATA", str(tmp_path))  # a data dir without the split file
    assert len(data.nyu_split("test")) == 654


# ----------------------------------------------------------------------------------------------
# Real NYU frames (16-bit PNG depth in mm)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frame", FRAMES)
def test_real_nyu_png_depth(frame):
    depth = data.load_nyu_png_depth(ASSETS / "depth" / f"sync_depth_{frame}.png")
    raw = np.asarray(Image.open(ASSETS / "depth" / f"sync_depth_{frame}.png"))
    assert depth.shape == (480, 640) and depth.dtype == np.float32
    np.testing.assert_allclose(depth, raw / 1000.0, rtol=1e-6)
    holes = depth == 0
    assert 0.2 < holes.mean() < 0.4  # Kinect holes stay 0 (invalid)
    valid = depth[~holes]
    assert 0.3 < valid.min() and valid.max() < 10.0
    rgb = data.load_rgb(ASSETS / "rgb" / f"rgb_{frame}.jpg")
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8

    small = data.resize_depth(depth, 200)  # holes do not pull averages toward 0
    assert small.shape == (200, 200)
    kept = small[small > 0]
    assert kept.min() >= valid.min() - 1e-5 and kept.max() <= valid.max() + 1e-5
    assert (small == 0).mean() < holes.mean()


def test_png_depth_errors(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "eight_bit.png")
    with pytest.raises(ValueError, match="16-bit"):
        data.load_nyu_png_depth(tmp_path / "eight_bit.png")
    with pytest.raises(FileNotFoundError):
        data.load_nyu_png_depth(tmp_path / "none.png")
    assert data.load_nyu_png_depth(ASSETS / "depth" / "sync_depth_00000.png", scale=1.0).max() == 6625


# ----------------------------------------------------------------------------------------------
# DIW reader
# ----------------------------------------------------------------------------------------------

def test_diw_parse_and_reroot(diw_dir):
    csv = write_csv(diw_dir / "DIW_test.csv", [
        "/home/wfchen/data/DIW/DIW_test/a.thumb",      # absolute: re-rooted as DIW_test/<name>
        "10,20,5,40,>,40,30",
        "",                                             # blank lines are ignored
        "/somewhere/else/c.thumb",                      # absolute, only <root>/<name> exists
        "1,1,25,25,<,25,25",
        "DIW_test/b.thumb",                             # relative to the CSV's folder
        "50,20,1,1,=,20,50",
        r"C:\Users\someone\DIW\DIW_test\b.thumb",      # a Windows path from another machine
        " 3 , 4 , 5 , 6 , > , 20 , 50 ",
    ])
    pairs = data.read_diw_csv(csv)
    assert [p.image for p in pairs] == [diw_dir / "DIW_test" / "a.thumb", diw_dir / "c.thumb",
                                        diw_dir / "DIW_test" / "b.thumb",
                                        diw_dir / "DIW_test" / "b.thumb"]
    assert pairs[0] == DIWPair(diw_dir / "DIW_test" / "a.thumb", 9, 19, 4, 39, 1, 40, 30, 2)
    assert (pairs[1].relation, pairs[1].line) == (-1, 5)
    assert (pairs[2].ya, pairs[2].xa, pairs[2].yb, pairs[2].xb) == (49, 19, 0, 0)
    assert (pairs[2].relation, pairs[2].width, pairs[2].height, pairs[2].line) == (0, 20, 50, 7)
    assert (pairs[3].ya, pairs[3].xa, pairs[3].line) == (2, 3, 9)


def test_diw_image_root_and_dot_paths(diw_dir, tmp_path):
    elsewhere = tmp_path / "annotations"
    elsewhere.mkdir()
    csv = write_csv(elsewhere / "DIW_test.csv", ["./DIW_test/a.thumb", "1,1,2,2,>,40,30"])
    [pair] = data.read_diw_csv(csv, image_root=diw_dir)
    assert pair.image == diw_dir / "DIW_test" / "a.thumb"


def test_diw_missing_image(diw_dir):
    csv = write_csv(diw_dir / "DIW_test.csv", [
        "/x/DIW_test/a.thumb", "1,1,2,2,>,40,30",
        "/x/DIW_test/missing.thumb", "1,1,2,2,>,40,30",
    ])
    with pytest.raises(FileNotFoundError, match=r"DIW_test\.csv:3: image .*missing\.thumb"):
        data.read_diw_csv(csv)
    pairs = data.read_diw_csv(csv, check_images=False)  # no file-system checks at all
    assert pairs[1].image == diw_dir / "DIW_test" / "missing.thumb"


@pytest.mark.parametrize("lines, line_no, message", [
    (["a.thumb", "1,2,3,4,?,40,30"], 2, "unknown relation symbol '\\?'"),
    (["a.thumb", "1,2.5,3,4,>,40,30"], 2, "x_A='2.5' is not an integer"),
    (["a.thumb", "1,2,3,x,>,40,30"], 2, "x_B='x' is not an integer"),
    (["a.thumb", "3,4,3,4,>,40,30"], 2, "identical"),
    (["a.thumb", "31,40,30,41,>,40,30"], 2, "identical .* after clamping"),
    (["a.thumb", "1,2,3,4,>,40"], 2, "expected 7 fields"),
    (["a.thumb", "1,2,3,4,>,40,30,1"], 2, "expected 7 fields"),
    (["a.thumb", "1,2,3,4,>,0,30"], 2, "must be positive"),
    (["a.thumb", "1,2,3,4,>,40,30", "a.thumb"], 3, "no annotation line after it \\(end of file\\)"),
    (["a.thumb", "DIW_test/b.thumb", "1,2,3,4,>,40,30"], 1, "no annotation line after it"),
    (["1,2,3,4,>,40,30"], 1, "expected an image path"),
])
def test_diw_bad_lines(tmp_path, lines, line_no, message):
    csv = write_csv(tmp_path / "DIW_bad.csv", lines)
    with pytest.raises(ValueError, match=message) as err:
        data.read_diw_csv(csv, check_images=False)
    assert f"DIW_bad.csv:{line_no}:" in str(err.value)


def test_diw_points_off_the_image_are_clamped_and_integral_decimals_read(tmp_path):
    """As Chen et al.'s loader: a point past the border lands on it; ``118.0`` is 118 (``2.5`` stays an error above)."""
    csv = write_csv(tmp_path / "DIW_test.csv", ["a.thumb", "31,2,3,41,>,40,30", "a.thumb", "0,0,5.0,7.0,<,40,30"])
    first, second = data.read_diw_csv(csv, check_images=False)
    assert (first.ya, first.xa, first.yb, first.xb) == (29, 1, 2, 39)  # y=31 -> 30 (height), x=41 -> 40 (width)
    assert (second.ya, second.xa, second.yb, second.xb) == (0, 0, 4, 6)


def test_diw_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="DIW_test.csv"):
        data.read_diw_csv(tmp_path / "DIW_test.csv")


# ----------------------------------------------------------------------------------------------
# Images in any mode -> RGB
# ----------------------------------------------------------------------------------------------

def test_load_rgb_modes(tmp_path):
    gray = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5, "L")
    gray.save(tmp_path / "gray.png")
    palette = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).convert("P")
    palette.save(tmp_path / "palette.png")
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    transparent.save(tmp_path / "palette_t.png", transparency=0)
    Image.new("CMYK", (8, 6), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", "JPEG")
    Image.new("RGBA", (8, 6), (10, 20, 30, 255)).save(tmp_path / "rgba.png")
    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(tmp_path / "clear.png")
    Image.new("LA", (8, 6), (100, 255)).save(tmp_path / "la.png")
    Image.new("1", (8, 6), 1).save(tmp_path / "bw.png")
    Image.fromarray(np.full((6, 8), 65535, np.uint16)).save(tmp_path / "gray16.png")

    loaded = {p.stem: data.load_rgb(p) for p in sorted(tmp_path.iterdir())}
    for name, rgb in loaded.items():
        assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8, name
    g = loaded["gray"]
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    np.testing.assert_array_equal(g[..., 0], np.asarray(gray))
    assert (loaded["cmyk"] > 250).all()                      # CMYK (0,0,0,0) is white
    assert loaded["rgba"][0, 0].tolist() == [10, 20, 30]
    assert loaded["clear"][0, 0].tolist() == [255, 255, 255]  # fully transparent: white background
    assert loaded["la"][0, 0].tolist() == [100, 100, 100]
    assert loaded["bw"][0, 0].tolist() == [255, 255, 255]
    assert loaded["gray16"][0, 0].tolist() == [255, 255, 255]
    assert loaded["palette_t"].shape == (6, 8, 3)


def test_load_rgb_errors(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        data.load_rgb(tmp_path / "broken.jpg")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        data.load_rgb(tmp_path / "nope.jpg")


# ----------------------------------------------------------------------------------------------
# Rescaling coordinates and resizing
# ----------------------------------------------------------------------------------------------

def test_rescale_floor_and_clamp():
    assert data.rescale_pair((0, 0, 479, 639), (480, 640), (200, 200)) == (0, 0, 199, 199)
    assert data.rescale_pair((240, 320, 100, 7), (480, 640), (200, 200)) == (100, 100, 41, 2)
    pair = DIWPair(Path("x"), 9, 19, 4, 39, 1, 40, 30, 2)  # 40 wide, 30 high
    assert data.rescale_pair(pair, (30, 40), (10, 10)) == (3, 4, 1, 9)


def test_rescale_nudges_collapsed_points():
    # B is right of A; both fall on pixel (41, 31): B moves one pixel right
    assert data.rescale_pair((100, 100, 100, 101), (480, 640), (200, 200)) == (41, 31, 41, 32)
    # B is below-left of A: B moves down-left
    assert data.rescale_pair((96, 101, 97, 100), (480, 640), (200, 200)) == (40, 31, 41, 30)
    # at the right border B cannot move right: A moves left instead, order kept
    assert data.rescale_pair((479, 638, 479, 639), (480, 640), (200, 200)) == (199, 198, 199, 199)
    assert data.rescale_pair((0, 1, 0, 0), (480, 640), (200, 200)) == (0, 1, 0, 0)


def test_rescale_always_distinct_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(500):
        h0, w0 = rng.integers(2, 400, 2)
        h1, w1 = rng.integers(1, 6, 2)
        if h1 * w1 < 2:
            continue
        ya, yb = rng.integers(0, h0, 2)
        xa, xb = rng.integers(0, w0, 2)
        if (ya, xa) == (yb, xb):
            continue
        out = data.rescale_pair((ya, xa, yb, xb), (h0, w0), (h1, w1))
        assert out == data.rescale_pair((ya, xa, yb, xb), (h0, w0), (h1, w1))  # deterministic
        assert (out[0], out[1]) != (out[2], out[3])
        assert 0 <= min(out) and max(out[0], out[2]) < h1 and max(out[1], out[3]) < w1
    with pytest.raises(ValueError, match="at least two pixels"):
        data.rescale_pair((0, 0, 1, 1), (5, 5), (1, 1))


def test_resize_depth_ignores_holes():
    depth = np.array([[2, 0, 0, 0],
                      [0, 4, 0, 0],
                      [1, 1, 5, np.nan],
                      [1, 1, 5, 5]], np.float32)
    small = data.resize_depth(depth, 2)
    np.testing.assert_allclose(small, [[3, 0], [1, 5]], rtol=1e-6)
    assert small.dtype == np.float32
    assert data.resize_depth(np.ones((6, 9), np.float32), (3, 4)).shape == (3, 4)


def test_resize_image_squashes():
    image = np.full((30, 60, 3), 77, np.uint8)
    out = data.resize_image(image, 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8 and (out == 77).all()


# ----------------------------------------------------------------------------------------------
# NYU cache
# ----------------------------------------------------------------------------------------------

def test_prepare_nyu_content(tmp_path):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=5)
    cache = data.prepare_nyu(path, cache_dir=tmp_path / "cache", size=16)
    assert cache.parent == tmp_path / "cache" and cache.name.startswith("nyu_")
    assert cache.name.endswith("_16.h5")
    c = data.load_nyu_cache(cache)
    assert c["images"].shape == (5, 16, 16, 3) and c["images"].dtype == np.uint8
    assert c["depths"].shape == (5, 16, 16) and c["depths"].dtype == np.float32
    np.testing.assert_array_equal(c["indices"], np.arange(5))
    img, dep = data.read_nyu_mat(path, [3])
    np.testing.assert_array_equal(c["images"][3], data.resize_image(img[0], 16))
    np.testing.assert_array_equal(c["depths"][3], data.resize_depth(dep[0], 16))

    mapped = data.load_nyu_cache(cache, mmap=True)
    assert isinstance(mapped["images"], np.memmap)
    np.testing.assert_array_equal(mapped["images"], c["images"])
    np.testing.assert_array_equal(mapped["depths"], c["depths"])


def test_prepare_nyu_indices_get_their_own_file(tmp_path):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=5)
    full = data.prepare_nyu(path, cache_dir=tmp_path, size=8)
    part = data.prepare_nyu(path, cache_dir=tmp_path, size=8, indices=[4, 1])
    assert part != full and full.is_file()
    c, everything = data.load_nyu_cache(part), data.load_nyu_cache(full)
    np.testing.assert_array_equal(c["indices"], [4, 1])
    np.testing.assert_array_equal(c["images"], everything["images"][[4, 1]])
    with pytest.raises(ValueError, match="index 9 is out of range"):
        data.prepare_nyu(path, cache_dir=tmp_path, size=8, indices=[9])


def test_prepare_nyu_reuses_unchanged_cache(tmp_path, monkeypatch):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=3)
    cache = data.prepare_nyu(path, cache_dir=tmp_path, size=8)
    mtime = cache.stat().st_mtime_ns

    def must_not_write(*args, **kwargs):
        raise AssertionError("an unchanged cache was rebuilt")

    monkeypatch.setattr(data.cache, "_write_atomically", must_not_write)
    assert data.prepare_nyu(path, cache_dir=tmp_path, size=8) == cache
    assert cache.stat().st_mtime_ns == mtime


def test_prepare_nyu_rebuilds_on_change(tmp_path):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=3, seed=0)
    cache = data.prepare_nyu(path, cache_dir=tmp_path, size=8)
    before = data.load_nyu_cache(cache)["images"]

    fake_nyu(path, n=3, seed=1)  # new content at the same path
    touch_later(path)
    assert data.prepare_nyu(path, cache_dir=tmp_path, size=8) == cache
    after = data.load_nyu_cache(cache)["images"]
    assert not np.array_equal(before, after)

    bigger = data.prepare_nyu(path, cache_dir=tmp_path, size=12)  # another size: another file
    assert bigger != cache and data.load_nyu_cache(bigger)["images"].shape == (3, 12, 12, 3)


def test_prepare_nyu_crash_keeps_old_cache(tmp_path, monkeypatch):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=40, h=8, w=8)
    cache = data.prepare_nyu(path, cache_dir=tmp_path / "cache", size=4)
    old = data.load_nyu_cache(cache)
    old_bytes = cache.read_bytes()

    fake_nyu(path, n=40, h=8, w=8, seed=3)
    touch_later(path)
    calls = {"n": 0}
    real_resize = data.resize_depth

    def crash_midway(depth, size):
        calls["n"] += 1
        if calls["n"] > 20:  # the first chunk of 16 images is already written to the temp file
            raise RuntimeError("simulated crash")
        return real_resize(depth, size)

    monkeypatch.setattr(data.cache, "resize_depth", crash_midway)
    with pytest.raises(RuntimeError, match="simulated crash"):
        data.prepare_nyu(path, cache_dir=tmp_path / "cache", size=4)
    assert calls["n"] > 16
    assert cache.read_bytes() == old_bytes
    np.testing.assert_array_equal(data.load_nyu_cache(cache)["images"], old["images"])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cache.name]  # no temp file

    monkeypatch.setattr(data.cache, "resize_depth", real_resize)
    data.prepare_nyu(path, cache_dir=tmp_path / "cache", size=4)  # now it rebuilds
    assert not np.array_equal(data.load_nyu_cache(cache)["images"], old["images"])


def test_prepare_nyu_replaces_corrupt_cache(tmp_path):
    path, _, _ = fake_nyu(tmp_path / "nyu.mat", n=2)
    cache = data.prepare_nyu(path, cache_dir=tmp_path, size=8)
    cache.write_bytes(b"garbage")
    assert data.prepare_nyu(path, cache_dir=tmp_path, size=8) == cache
    assert data.load_nyu_cache(cache)["images"].shape == (2, 8, 8, 3)


def test_load_cache_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_nyu"):
        data.load_nyu_cache(tmp_path / "none.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="other.h5: not a complete depthkit nyu cache"):
        data.load_nyu_cache(tmp_path / "other.h5")
    with pytest.raises(ValueError, match="not a complete depthkit diw cache"):
        data.load_diw_cache(tmp_path / "other.h5")


# ----------------------------------------------------------------------------------------------
# DIW cache
# ----------------------------------------------------------------------------------------------

def make_diw_folder(root: Path, n: int = 12) -> Path:
    """``root/DIW_test/*.thumb`` in assorted sizes and modes + ``root/DIW_test.csv``."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        mode = ("RGB", "L", "CMYK")[i % 3]
        save_jpeg(root / "DIW_test" / f"img{i:03d}.thumb", h, w, seed=i, mode=mode)
        ya, yb = rng.integers(1, h + 1, 2)
        xa, xb = rng.integers(1, w + 1, 2)
        if (ya, xa) == (yb, xb):
            xb = xa % w + 1
        lines += [f"/home/someone/DIW/DIW_test/img{i:03d}.thumb",
                  f"{ya},{xa},{yb},{xb},{'><'[i % 2]},{w},{h}"]
    return write_csv(root / "DIW_test.csv", lines)


def test_prepare_diw_content_parallel_equals_serial(tmp_path):
    csv = make_diw_folder(tmp_path / "diw", n=12)
    serial = data.load_diw_cache(data.prepare_diw(csv, tmp_path / "c1", size=16, workers=1))
    cache = data.prepare_diw(csv, tmp_path / "c2", size=16, workers=2)
    c = data.load_diw_cache(cache)
    for key in ("images", "pairs", "relation", "orig_hw"):
        np.testing.assert_array_equal(c[key], serial[key])
    assert c["paths"] == serial["paths"]

    records = data.read_diw_csv(csv)
    assert c["images"].shape == (12, 16, 16, 3) and c["images"].dtype == np.uint8
    assert c["pairs"].dtype == np.int64 and c["relation"].dtype == np.int8
    assert c["paths"] == [str(r.image) for r in records]
    assert all(isinstance(p, str) for p in c["paths"])
    np.testing.assert_array_equal(c["relation"], [r.relation for r in records])
    np.testing.assert_array_equal(c["orig_hw"], [(r.height, r.width) for r in records])
    for r, p in zip(records, c["pairs"]):
        assert tuple(p) == data.rescale_pair(r, (r.height, r.width), (16, 16))
    np.testing.assert_array_equal(c["lines"], [r.line for r in records])
    for r, image in zip(records, c["images"]):
        np.testing.assert_array_equal(image, data.resize_image(data.load_rgb(r.image), 16))


def test_prepare_diw_limit_reuse_and_change(tmp_path, monkeypatch):
    csv = make_diw_folder(tmp_path / "diw", n=6)
    cache = data.prepare_diw(csv, tmp_path, size=8, workers=1, limit=4)
    assert len(data.load_diw_cache(cache)["paths"]) == 4
    mtime = cache.stat().st_mtime_ns
    assert data.prepare_diw(csv, tmp_path, size=8, workers=1, limit=4) == cache
    assert cache.stat().st_mtime_ns == mtime

    lines = csv.read_text().splitlines()
    write_csv(csv, lines[:2] + lines[4:])  # drop the second record
    touch_later(csv)
    assert data.prepare_diw(csv, tmp_path, size=8, workers=1, limit=4) == cache
    c = data.load_diw_cache(cache)
    assert c["paths"][1].endswith("img002.thumb")


def test_prepare_diw_refuses_a_set_with_too_many_missing_or_broken_images(tmp_path):
    """One bad image in three is far above 1 %: one line, the rejects listed, no cache left behind."""
    root = tmp_path / "diw"
    csv = make_diw_folder(root, n=3)
    (root / "DIW_test" / "img001.thumb").write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"1 of 3 records rejected .*line 3: cannot read the image") as err:
        data.prepare_diw(csv, tmp_path / "cache", size=8, workers=1)
    assert "wrong image folder" in str(err.value)
    assert not list((tmp_path / "cache").glob("*.h5*"))  # no cache, no partial file
    [rejects] = (tmp_path / "cache").glob("*.rejects.csv")
    assert "img001.thumb" in rejects.read_text()
    (root / "DIW_test" / "img001.thumb").unlink()
    with pytest.raises(ValueError, match=r"DIW_test\.csv: 1 of 3 records rejected .*line 3: image .*not found"):
        data.prepare_diw(csv, tmp_path / "cache", size=8, workers=1)


# ----------------------------------------------------------------------------------------------
# Downloads: a local HTTP server, never the network
# ----------------------------------------------------------------------------------------------

class _Server:
    """A local HTTP server for ``files`` (path -> bytes) that honours Range unless told not to."""

    def __init__(self, files: dict[str, bytes], honour_range: bool = True):
        self.files, self.honour_range, self.requests = files, honour_range, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(files, honour_range=True):
        servers.append(_Server(files, honour_range))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _entry(url, file="nyu_depth_v2_labeled.mat", payload=None, size="auto", extract=False):
    return {"url": url, "file": file, "extract": extract,
            "size": len(payload) if size == "auto" and payload is not None else
            (None if size == "auto" else size),
            "sha256": hashlib.sha256(payload).hexdigest() if payload is not None else None}


PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("honour_range", [True, False])
def test_download_resumes_partial_file(tmp_path, serve, monkeypatch, honour_range):
    server = serve({"/nyu.mat": PAYLOAD}, honour_range)
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(server.url + "/nyu.mat", payload=PAYLOAD)])
    (tmp_path / "nyu_depth_v2_labeled.mat.part").write_bytes(PAYLOAD[:100_000])
    out = data.download("nyu", tmp_path)
    assert out == tmp_path / "nyu_depth_v2_labeled.mat"
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "nyu_depth_v2_labeled.mat.part").exists()
    assert server.requests == [("/nyu.mat", "bytes=100000-")]
    assert data.download("nyu", tmp_path) == out and len(server.requests) == 1  # already there


def test_download_complete_part_file(tmp_path, serve, monkeypatch):
    server = serve({"/nyu.mat": PAYLOAD})
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(server.url + "/nyu.mat", payload=PAYLOAD,
                                                       size=None)])
    (tmp_path / "nyu_depth_v2_labeled.mat.part").write_bytes(PAYLOAD)  # server answers 416
    assert data.download("nyu", tmp_path).read_bytes() == PAYLOAD


def test_download_size_and_checksum_checks(tmp_path, serve, monkeypatch):
    server = serve({"/nyu.mat": PAYLOAD})
    entry = _entry(server.url + "/nyu.mat", payload=PAYLOAD, size=len(PAYLOAD) + 5)
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [entry])
    with pytest.raises(RuntimeError, match="offers 300,000 bytes, expected 300,005"):
        data.download("nyu", tmp_path)  # refused on the server's Content-Length, before any byte is written
    assert not list(tmp_path.iterdir())

    entry.update(size=len(PAYLOAD), sha256="0" * 64)
    with pytest.raises(RuntimeError, match="SHA-256 mismatch"):
        data.download("nyu", tmp_path)
    assert not list(tmp_path.iterdir())


def test_download_http_error(tmp_path, serve, monkeypatch):
    server = serve({})
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(server.url + "/gone.mat")])
    with pytest.raises(ConnectionError, match="HTTP 404.*by hand"):
        data.download("nyu", tmp_path)


def test_download_offline_dns_fails_fast(tmp_path, monkeypatch):
    """The real NYU entry, with name resolution failing as it does offline."""
    def no_dns(*args, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    with pytest.raises(ConnectionError) as err:
        data.download("nyu", tmp_path)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert data.NYU_URL in message and "2,972,037,809 bytes" in message
    assert str(tmp_path / "nyu_depth_v2_labeled.mat") in message and "by hand" in message


def test_download_dns_hang_is_bounded(tmp_path, monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(10)
        raise socket.gaierror(-3, "late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="took more than 0.5 s"):
        data.download("diw", tmp_path, timeout=0.5)
    release.set()
    assert time.monotonic() - start < 3


def test_download_urlerror_is_reported(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
    monkeypatch.setattr(download_module, "reach", lambda url, timeout=None: None)  # the probe passes
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry("http://127.0.0.1:9/nyu.mat", size=10)])
    with pytest.raises(ConnectionError, match="Network is unreachable.*no network\\?"):
        data.download("nyu", tmp_path)


def test_download_connection_refused_is_fast(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(f"http://127.0.0.1:{port}/nyu.mat")])
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot reach"):
        data.download("nyu", tmp_path, timeout=2)
    assert time.monotonic() - start < 3


def test_download_file_url(tmp_path, monkeypatch):
    source = tmp_path / "source.mat"
    source.write_bytes(PAYLOAD)
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(source.as_uri(), payload=PAYLOAD)])
    out = data.download("nyu", tmp_path / "real")
    assert out.read_bytes() == PAYLOAD


def test_download_diw_extracts_into_layout(tmp_path, serve, monkeypatch):
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(jpeg, "JPEG")
    csv = b"/home/wfchen/DIW/DIW_test/x.thumb\n5,6,7,8,>,40,30\n"
    server = serve({
        "/DIW_Annotations.tar.gz": tar_gz({"DIW_Annotations/DIW_test.csv": csv}),
        "/DIW_test.tar.gz": tar_gz({"DIW_test/x.thumb": jpeg.getvalue()}),
    })
    monkeypatch.setitem(data.DOWNLOADS, "diw", [
        _entry(server.url + "/DIW_Annotations.tar.gz", "DIW_Annotations.tar.gz", extract=True),
        _entry(server.url + "/DIW_test.tar.gz", "DIW_test.tar.gz", extract=True),
    ])
    out = data.download("diw", tmp_path / "diw")
    assert out == tmp_path / "diw"
    [pair] = data.read_diw_csv(out / "DIW_test.csv")
    assert pair.image == out / "DIW_test" / "x.thumb" and pair.relation == 1
    n_requests = len(server.requests)
    data.download("diw", tmp_path / "diw")  # already unpacked: nothing fetched again
    assert len(server.requests) == n_requests


def test_download_refuses_unsafe_archive(tmp_path, serve, monkeypatch):
    server = serve({"/evil.tar.gz": tar_gz({"../evil.txt": b"x"})})
    monkeypatch.setitem(data.DOWNLOADS, "diw", [
        _entry(server.url + "/evil.tar.gz", "evil.tar.gz", extract=True)])
    with pytest.raises(ValueError, match="unsafe member"):
        data.download("diw", tmp_path / "diw")
    assert not (tmp_path / "evil.txt").exists()


def test_download_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'kitti'.*nyu, diw"):
        data.download("kitti", tmp_path)


def test_download_table_is_complete():
    for name, items in data.DOWNLOADS.items():
        for item in items:
            assert set(item) == {"url", "file", "size", "sha256", "extract", "confirmed"}, name
            assert item["url"].startswith(("http://", "https://"))
    assert data.DOWNLOADS["nyu"][0]["size"] == 2_972_037_809
    assert set(data.DEFAULT_FOLDERS) == set(data.DOWNLOADS)


def test_download_default_folders(tmp_path, monkeypatch):
    """By default NYU lands in data/real, DIW in data/real/diw (what the pipeline looks for)."""
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    monkeypatch.setenv("DEPTHKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [_entry(source.as_uri(), payload=PAYLOAD)])
    assert data.download("nyu") == tmp_path / "data" / "real" / "nyu_depth_v2_labeled.mat"
    archive = tmp_path / "DIW_Annotations.tar.gz"
    archive.write_bytes(tar_gz({"DIW_Annotations/DIW_test.csv": b"a.thumb\n1,1,2,2,>,4,4\n"}))
    monkeypatch.setitem(data.DOWNLOADS, "diw", [
        _entry(archive.as_uri(), "DIW_Annotations.tar.gz", extract=True)])
    assert data.download("diw") == tmp_path / "data" / "real" / "diw"
    assert (tmp_path / "data" / "real" / "diw" / "DIW_test.csv").is_file()


# ----------------------------------------------------------------------------------------------
# The embedded synthetic data through the real readers (skipped until depthkit.synthetic exists)
# ----------------------------------------------------------------------------------------------

def test_synthetic_round_trip(tmp_path):
    pytest.importorskip("depthkit.synthetic")
    paths = data.make_synthetic(tmp_path / "syn", n_nyu=4, n_diw=6, seed=0)
    images, depths = data.read_nyu_mat(paths["nyu"])
    assert images.shape == (4, 480, 640, 3) and depths.shape == (4, 480, 640)
    assert (depths > 0).any()
    splits = json.loads(Path(paths["nyu_splits"]).read_text())
    train = data.nyu_split("train", paths["nyu_splits"])
    assert len(train) == len(splits["train"]) and train.min() >= 0
    nyu = data.load_nyu_cache(data.prepare_nyu(paths["nyu"], tmp_path / "cache", size=32))
    assert nyu["images"].shape == (4, 32, 32, 3)

    pairs = data.read_diw_csv(paths["diw_csv"])
    assert len(pairs) == 6 and {p.relation for p in pairs} <= {-1, 1}
    diw = data.load_diw_cache(data.prepare_diw(paths["diw_csv"], tmp_path / "cache", size=32,
                                               workers=1))
    assert diw["images"].shape == (6, 32, 32, 3)
    assert (diw["pairs"] >= 0).all() and (diw["pairs"] < 32).all()


def test_make_synthetic_is_reexported_lazily():
    """``depthkit.data`` must import without ``depthkit.synthetic`` (no import cycle)."""
    import subprocess
    import sys

    code = ("import sys, depthkit.data as d; assert 'depthkit.synthetic' not in sys.modules; "
            "assert callable(d.make_synthetic) and d.make_synthetic.__doc__")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- additions by the lead: scene types and in-memory images ------------------------------------
def test_read_nyu_scene_types_reads_the_matlab_cell_array(tmp_path):
    from depthkit.data import read_nyu_scene_types

    path = tmp_path / "scenes.mat"
    names = ["kitchen", "bedroom", "office"]
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        ref_list = []
        for i, name in enumerate(names):
            ds = refs.create_dataset(str(i), data=np.array([[ord(c)] for c in name], dtype=np.uint16))
            ref_list.append(ds.ref)
        f.create_dataset("sceneTypes", data=np.array([ref_list], dtype=h5py.ref_dtype))
    assert read_nyu_scene_types(path) == names
    assert read_nyu_scene_types(path, [2, 0]) == ["office", "kitchen"]
    with pytest.raises(ValueError, match="index 3 is out of range"):
        read_nyu_scene_types(path, [3])
    plain = tmp_path / "plain.mat"
    with h5py.File(plain, "w") as f:
        f.create_dataset("images", data=np.zeros((1, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="plain.mat.*sceneTypes"):
        read_nyu_scene_types(plain)


def test_load_rgb_accepts_bytes_and_files(tmp_path):
    from PIL import Image

    from depthkit.data import load_rgb

    path = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 7), 200, np.uint8), mode="L").save(path)
    from_bytes = load_rgb(path.read_bytes())
    with open(path, "rb") as f:
        from_file = load_rgb(f)
    assert from_bytes.shape == from_file.shape == (5, 7, 3)
    assert (from_bytes == 200).all() and np.array_equal(from_bytes, load_rgb(path))
    with pytest.raises(ValueError, match="uploaded image"):
        load_rgb(b"not an image")
