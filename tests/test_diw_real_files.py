"""DIW preparation on files of the kinds the real release holds (#32): truncated, missing and EXIF-rotated
JPEGs, points off the image, A == B, ``118.0``; a preparation killed part-way; a wrong image folder.

Every file here is real bytes (JPEGs written by PIL, then cut or tagged), every kill a real SIGKILL.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from depthkit import data
from depthkit.data import cache as cache_module
from depthkit.data.images import EXIF_ORIENTATION

ROOT = Path(__file__).resolve().parents[1]


def jpeg_bytes(h: int, w: int, seed: int, orientation: int | None = None) -> bytes:
    """A real baseline JPEG of random pixels (with an EXIF orientation tag when given)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    if orientation is None:
        img.save(buffer, format="JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        img.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def write_release(root: Path, n: int, size: tuple[int, int] = (24, 32)) -> tuple[Path, list[str]]:
    """``root/DIW_test/img_NNNNNN.thumb`` (real JPEGs) and ``root/DIW_test.csv`` with authors' absolute paths."""
    (root / "DIW_test").mkdir(parents=True, exist_ok=True)
    h, w = size
    lines = []
    for i in range(n):
        (root / "DIW_test" / f"img_{i:06d}.thumb").write_bytes(jpeg_bytes(h, w, seed=i % 50))
        lines += [f"/home/wfchen/DIW/DIW_test/img_{i:06d}.thumb", f"{1 + i % (h - 1)},{1 + i % (w - 1)},{h},{w},{'<>'[i % 2]},{w},{h}"]
    return root / "DIW_test.csv", lines


def save(csv_path: Path, lines: list[str]) -> Path:
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


def read_rejects(cache: Path) -> list[dict]:
    with open(cache.with_name(cache.stem + ".rejects.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_bad_records_are_skipped_counted_and_listed(tmp_path, capsys):
    """Catches: one bad record making the whole preparation fail (the old ValueError at row 900),
    a reject not listed with its CSV line, the count of prepared rows off by the skipped ones, and
    a clamped point landing anywhere but the border."""
    csv_path, lines = write_release(tmp_path / "diw", 1000)
    image = tmp_path / "diw" / "DIW_test"
    whole = (image / "img_000900.thumb").read_bytes()
    (image / "img_000900.thumb").write_bytes(whole[: len(whole) // 2])  # truncated mid-scan (line 1801)
    (image / "img_000300.thumb").unlink()                                # missing (line 601)
    lines[2 * 500 + 1] = "5,6,5,6,>,32,24"                               # A == B (line 1002)
    lines[2 * 600 + 1] = "118.0,3,2,2,<,32,24"                           # integral decimal, off the image: clamped
    lines[2 * 700 + 1] = "3,2.5,2,2,<,32,24"                             # not an integer (line 1402)
    save(csv_path, lines)
    cache = data.prepare_diw(csv_path, tmp_path / "cache", size=16, workers=2)
    summary = capsys.readouterr().err
    assert "DIW_test.csv: 1,000 records: 996 prepared, 4 skipped" in summary, summary
    assert "1 unreadable image" in summary and "1 missing image" in summary and "1 A == B" in summary
    assert "1 with a point clamped" in summary and "0 images carry an EXIF orientation" in summary
    rejects = read_rejects(cache)
    assert [(r["line"], Path(r["image"]).name) for r in rejects] == [
        ("601", "img_000300.thumb"), ("1002", "img_000500.thumb"), ("1402", "img_000700.thumb"),
        ("1801", "img_000900.thumb")]
    assert "not found" in rejects[0]["reason"] and "truncated" in rejects[3]["reason"]
    c = data.load_diw_cache(cache)
    assert len(c["images"]) == len(c["pairs"]) == len(c["paths"]) == 996
    names = [Path(p).name for p in c["paths"]]
    assert "img_000900.thumb" not in names and "img_000300.thumb" not in names and "img_000500.thumb" not in names
    row = names.index("img_000600.thumb")  # 118.0 -> row 118, clamped to 24 (the height), i.e. the last row
    assert c["pairs"][row][0] == 15 and c["lines"][row] == 1202
    # each kept image's row is the one its record names (no shift after the skipped ones)
    k = names.index("img_000950.thumb")
    stored = np.asarray(Image.open(image / "img_000950.thumb").convert("RGB").resize((16, 16), Image.BILINEAR))
    np.testing.assert_array_equal(c["images"][k], stored)


def test_above_one_percent_of_rejects_stops_with_one_line(tmp_path):
    """Catches: a wrong folder or a broken download prepared as if nothing were wrong (3 % bad), or a
    stop that leaves a partial cache a later run could take for complete."""
    csv_path, lines = write_release(tmp_path / "diw", 200)
    for i in range(0, 200, 33):  # 7 of 200: 3.5 %
        path = tmp_path / "diw" / "DIW_test" / f"img_{i:06d}.thumb"
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError) as err:
        data.prepare_diw(save(csv_path, lines), tmp_path / "cache", size=8, workers=1)
    message = str(err.value)
    assert "\n" not in message and "4 of 200 records rejected so far (2.0 % already, more than 1 %)" in message
    assert "wrong image folder (--image-root) or a broken download" in message
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(left) == 1 and left[0].endswith(".rejects.csv"), left
    assert [r["line"] for r in read_rejects(tmp_path / "cache" / left[0].replace(".rejects.csv", ".h5"))] == ["1", "67", "133", "199"]


def test_a_wrong_image_folder_stops_before_decoding(tmp_path):
    """Every image missing (the CSV's folder has none): one line at once, naming --image-root."""
    csv_path, lines = write_release(tmp_path / "diw", 50)
    elsewhere = tmp_path / "annotations"
    elsewhere.mkdir()
    moved = save(elsewhere / "DIW_test.csv", lines)
    with pytest.raises(ValueError, match=r"50 of 50 records rejected .*--image-root.*First: line 1: image"):
        data.prepare_diw(moved, tmp_path / "cache", size=8, workers=1)
    assert data.prepare_diw(moved, tmp_path / "cache", size=8, workers=1, image_root=tmp_path / "diw").is_file()


def exif_image(path: Path, stored: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [3, 6])
def test_exif_rotated_images_keep_the_pixels_the_annotators_saw(tmp_path, capsys, orientation):
    """Catches: an EXIF transpose on the DIW path (orientation 3 turns A's white corner into B's black
    one; 6 turns the image sideways). The cached pixel under A must be the stored one under A."""
    root = tmp_path / "diw"
    (root / "DIW_test").mkdir(parents=True)
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:20, :30] = 255  # top-left quarter white, as stored on disk
    exif_image(root / "DIW_test" / "a.thumb", stored, orientation)
    csv_path = save(root / "DIW_test.csv", ["/x/DIW_test/a.thumb", "5,5,35,55,<,60,40"])  # A white, B black
    c = data.load_diw_cache(data.prepare_diw(csv_path, tmp_path / "cache", size=20, workers=1))
    ya, xa, yb, xb = c["pairs"][0]
    assert c["images"][0][ya, xa].min() > 200 and c["images"][0][yb, xb].max() < 60
    assert "1 images carry an EXIF orientation" in capsys.readouterr().err
    # notebook 07's path (a student's own photo) still turns it upright
    upright = data.load_rgb(root / "DIW_test" / "a.thumb")
    assert upright.shape[:2] == ((40, 60) if orientation == 3 else (60, 40))
    assert upright[5, 5].max() < 60  # orientation 3 and 6 both move the white quarter away from the top-left


KILLED = """
import sys
from depthkit.data import cache
cache.SAVE_PROGRESS_EVERY = 64
cache.prepare_diw(sys.argv[1], sys.argv[2], size=32, workers=1)
"""


def test_a_killed_preparation_resumes_from_its_saved_rows(tmp_path, capsys):
    """Catches: a kill that sends the next run back to zero, a partial file taken for a complete cache,
    and a resume that trusts rows that were altered after the kill."""
    csv_path, lines = write_release(tmp_path / "diw", 3000, size=(48, 64))
    save(csv_path, lines)
    cache_dir = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(csv_path), str(cache_dir)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and done < 640:
        for journal in cache_dir.glob("*.partial.json") if cache_dir.is_dir() else ():
            try:
                done = json.loads(journal.read_text())["done"]
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    [partial] = cache_dir.glob("*.h5.partial")
    done = json.loads(partial.with_name(partial.name + ".json").read_text())["done"]  # its last save before the kill
    assert 640 <= done < 3000, f"the child saved {done} records before the kill"
    cache = partial.with_name(partial.name.removesuffix(".partial"))
    assert not cache.exists()  # nothing under the cache's name
    with pytest.raises(FileNotFoundError):
        data.load_diw_cache(cache)
    resumed = data.prepare_diw(csv_path, cache_dir, size=32, workers=1)
    out = capsys.readouterr().err
    assert resumed == cache and f"resuming after {done:,} of 3,000 records" in out, out
    assert sorted(p.name for p in cache_dir.iterdir()) == [cache.name]  # partial and progress gone
    clean = data.load_diw_cache(data.prepare_diw(csv_path, tmp_path / "clean", size=32, workers=1))
    got = data.load_diw_cache(resumed)
    for key in ("images", "pairs", "relation", "lines"):
        np.testing.assert_array_equal(got[key], clean[key])


def test_a_resume_checks_the_saved_rows_first(tmp_path, capsys):
    """Rows altered after the kill (a flipped byte) are not resumed from: the preparation starts over."""
    csv_path, lines = write_release(tmp_path / "diw", 300)
    save(csv_path, lines)
    cache_dir = tmp_path / "cache"
    cache = data.prepare_diw(csv_path, cache_dir, size=16, workers=1)
    clean = data.load_diw_cache(cache)["images"].copy()
    # recreate a mid-way state: the finished file renamed back to a partial, progress saying 128 records done
    partial, journal = cache_module._partial_paths(cache)
    fingerprint = h5py.File(cache, "r").attrs["fingerprint"]
    os.replace(cache, partial)
    crc = cache_module._rows_crc(partial, 128)
    journal.write_text(json.dumps({"fingerprint": fingerprint, "n": 300, "size": 16, "done": 128, "rows": 128,
                                   "crc": crc, "failed": [], "oriented": 0, "mismatched": 0}))
    with h5py.File(partial, "r") as f:
        offset = f["images"].id.get_offset()
    with open(partial, "r+b") as f:  # damage row 7
        f.seek(offset + 7 * 16 * 16 * 3 + 5)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.warns(UserWarning, match="do not match the saved progress; starting over"):
        again = data.prepare_diw(csv_path, cache_dir, size=16, workers=1)
    assert "resuming" not in capsys.readouterr().err
    np.testing.assert_array_equal(data.load_diw_cache(again)["images"], clean)


def test_image_root_reaches_the_preparation_the_commands_run(tmp_path, monkeypatch):
    """``--image-root``: the CSVs in data/real/diw, the images on another disk; parsed as the CLI parses it,
    prepared by ``prepare_data`` (what prepare, train, evaluate and reproduce call). Catches: the flag dropped
    on its way (every image then missing: the 1 % stop)."""
    from depthkit import cli
    from depthkit.config import get_profile
    from depthkit.pipeline import prepare_data
    from depthkit.synthetic import write_nyu_mat

    data_root = tmp_path / "data"
    csv_path, lines = write_release(tmp_path / "elsewhere", 30)
    save(data_root / "real" / "diw" / "DIW_test.csv", lines) if (data_root / "real" / "diw").mkdir(parents=True) is None else None
    write_nyu_mat(data_root / "real" / "nyu_depth_v2_labeled.mat", 4, 0, (24, 32), 1)
    monkeypatch.setenv("DEPTHKIT_DATA", str(data_root))
    monkeypatch.setenv("DEPTHKIT_DIW_IMAGES", "")  # recorded: use_image_root's setting is undone after the test
    args = cli.build_parser().parse_args(["prepare", "--image-root", str(tmp_path / "elsewhere")])
    cli.use_image_root(args)
    profile = get_profile("smoke").replace(data="real", size=8, max_diw_images=None, diw_protocol="report")
    prepared = prepare_data(profile)
    c = data.load_diw_cache(prepared.diw_caches["DIW_test"])
    assert len(c["paths"]) == 30 and all(p.startswith(str(tmp_path / "elsewhere")) for p in c["paths"])
    with pytest.raises(FileNotFoundError, match="--image-root: no such folder"):
        cli.use_image_root(cli.build_parser().parse_args(["prepare", "--image-root", str(tmp_path / "nowhere")]))
