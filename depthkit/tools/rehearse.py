"""A full-size rehearsal of the ``report`` profile on files written in the real layouts.

``python -m depthkit rehearse [--diw-images N] [--steps S] [--device D] [--keep DIR]`` writes a
1,449-frame 640x480 MATLAB v7.3 NYU file and a ``DIW_test.csv`` of N records (default 74,441, the
size of the real DIW_test) over JPEGs of 250-500 pixels a side into a temporary data folder, then
runs the whole ``report`` reproduction on them (caches, both models on NYU then DIW, evaluation,
results) with every stage capped at S optimizer steps and S evaluation batches. It prints what a
real run will cost: cache preparation speed, seconds per training step, peak memory of the whole
process tree, and the size of the caches on disk.

The pictures are the embedded synthetic scenes; only a few hundred distinct DIW images are drawn,
and the N records point at hard links to them (distinct names, the real count of files). As in the
real release, a sprinkling of records is bad (:data:`FAULTS`, one every :data:`FAULT_EVERY` records:
truncated and missing JPEGs, A == B, a point off its image, a coordinate written ``118.0``) and some
images carry an EXIF orientation; the summary says how many were skipped, and the rejects file is
part of the output.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from PIL import Image

from depthkit.config import get_profile, repo_root
from depthkit.files import atomic_write_bytes, environment
from depthkit.tools.memory import PeakMemory
from depthkit.synthetic import available_cores, render_scene, scene_rng, write_nyu_mat

DIW_TEST_IMAGES = 74_441  # images in the published DIW_test partition (MiDaS's paper; Chen et al.)
AUTHORS_PREFIX = "/home/wfchen/DIW/DIW_test"  # an absolute path of the authors' machine, re-rooted on read
# What the real release holds now and then: one record in FAULT_EVERY is the next of these, in turn.
FAULTS = ("truncated", "missing", "identical", "off the image", "decimal", "exif 3", "exif 6")
FAULT_EVERY = 500
SKIPPED_FAULTS = {"truncated", "missing", "identical"}  # the others are read (clamped, 118.0 = 118, stored pixels)


def write_rehearsal_data(root: Path, diw_images: int = DIW_TEST_IMAGES, nyu_frames: int = 1449,
                         distinct: int = 300, seed: int = 0) -> dict[str, Path]:
    """Write NYU and DIW files in the real layouts under ``root`` (as ``DEPTHKIT_DATA`` expects them)."""
    real, diw = root / "real", root / "real" / "diw"
    (diw / "DIW_test").mkdir(parents=True, exist_ok=True)
    shutil.copy(repo_root() / "data" / "nyu_splits.json", root / "nyu_splits.json")
    write_nyu_mat(real / "nyu_depth_v2_labeled.mat", nyu_frames, seed, (480, 640), available_cores())
    originals, annotations = root / "distinct", []
    originals.mkdir(exist_ok=True)
    for k in range(min(distinct, diw_images)):
        rng = scene_rng(seed, 3, k)
        h, w = (int(v) for v in rng.integers(250, 501, size=2))
        scene = render_scene(rng, h, w)
        buffer = io.BytesIO()
        Image.fromarray(scene["image"]).save(buffer, format="JPEG", quality=90)
        atomic_write_bytes(originals / f"{k}.jpg", buffer.getvalue())
        annotations.append(_random_pair(scene["depth"], rng))
    lines = []
    for i in range(diw_images):
        k = i % len(annotations)
        name = f"rehearsal_{i:06d}.thumb"
        target = diw / "DIW_test" / name
        fault = FAULTS[(i // FAULT_EVERY) % len(FAULTS)] if i % FAULT_EVERY == FAULT_EVERY - 1 else None
        annotation = _faulty_annotation(annotations[k], fault)
        if fault in ("truncated", "exif 3", "exif 6"):  # a file of its own: never a hard link to a good one
            data = (originals / f"{k}.jpg").read_bytes()
            target.unlink(missing_ok=True)
            atomic_write_bytes(target, data[: len(data) // 2] if fault == "truncated" else _with_orientation(data, int(fault[-1])))
        elif fault == "missing":
            target.unlink(missing_ok=True)
        elif not target.exists():
            os.link(originals / f"{k}.jpg", target)
        lines += [f"{AUTHORS_PREFIX}/{name}", annotation]
    atomic_write_bytes(diw / "DIW_test.csv", ("\n".join(lines) + "\n").encode())
    return {"nyu": real / "nyu_depth_v2_labeled.mat", "diw_csv": diw / "DIW_test.csv"}


def _faulty_annotation(line: str, fault: str | None) -> str:
    """An annotation line with ``fault`` written into it (A == B, a point off the image, ``118.0``)."""
    ya, xa, yb, xb, rel, w, h = line.split(",")
    if fault == "identical":
        return ",".join((ya, xa, ya, xa, rel, w, h))
    if fault == "off the image":
        return ",".join((str(int(h) + 3), xa, yb, xb, rel, w, h))
    if fault == "decimal":
        return ",".join((f"{ya}.0", xa, yb, xb, rel, w, h))
    return line


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The same JPEG pixels with an EXIF orientation tag (the pixels stay as stored)."""
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _random_pair(depth: np.ndarray, rng: np.random.Generator) -> str:
    """A DIW annotation line (1-based ``y_A,x_A,y_B,x_B,rel,width,height``) for two random points."""
    h, w = depth.shape
    while True:
        ya, yb = rng.integers(0, h, size=2)
        xa, xb = rng.integers(0, w, size=2)
        if depth[ya, xa] != depth[yb, xb]:
            rel = ">" if depth[ya, xa] > depth[yb, xb] else "<"
            return f"{ya + 1},{xa + 1},{yb + 1},{xb + 1},{rel},{w},{h}"


def _data_folders(root: Path) -> AbstractContextManager[None]:
    """Point DEPTHKIT_DATA / _RUNS / _FIGURES into ``root`` for the duration."""
    return environment(DEPTHKIT_DATA=str(root), DEPTHKIT_RUNS=str(root / "runs"), DEPTHKIT_FIGURES=str(root / "figures"))


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file())


def rehearse(diw_images: int = DIW_TEST_IMAGES, steps: int = 3, device: str | None = None,
             keep: str | Path | None = None, models: tuple[str, ...] = ("lraspp", "unetpp")) -> dict:
    """Write report-scale files, run the ``report`` reproduction capped at ``steps`` per stage, measure it."""
    from depthkit.pipeline import prepare_data
    from depthkit.reproduce import reproduce

    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="depthkit-rehearsal-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        write_rehearsal_data(root, diw_images)
        t_write = time.perf_counter() - t0
        profile = get_profile("report").replace(pretrained=False, device=device or "auto")
        with _data_folders(root), PeakMemory() as memory:
            prepared = prepare_data(profile)
            results = reproduce(profile, models=models, out=root / "figures", device=device, progress=False,
                                max_steps=steps)
        h = results["histories"]
        row = {"diw_images": diw_images, "nyu_frames": 1449, "steps": steps, "device": results["provenance"]["device"],
               "write_s": t_write, "nyu_prep_img_s": 1449 / max(prepared.seconds["nyu"], 1e-9),
               "diw_prep_img_s": diw_images / max(prepared.seconds["DIW_test"], 1e-9),
               "prep_s": prepared.seconds,
               "s_per_step": {k: _seconds_per_step(v) for k, v in h.items()},
               "data_wait_pct": {k: _data_wait_pct(v) for k, v in h.items()},
               "peak_anon_gb": None if memory.peak_bytes is None else memory.peak_bytes / 1e9,
               "cache_gb": _folder_bytes(root / "cache") / 1e9, "wall_s": time.perf_counter() - t0,
               "batch_size": profile.batch_size, "size": profile.size, **_diw_preparation(prepared.diw_caches["DIW_test"])}
        (root / "rehearsal.json").write_text(json.dumps(row, indent=2))
        return row
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _diw_preparation(cache: Path) -> dict:
    """What the DIW preparation kept and skipped (from the cache's own record), and where its rejects file is."""
    import h5py

    with h5py.File(cache, "r") as f:
        counts = {k: int(f.attrs[k]) for k in ("records", "rows", "rejected", "exif_oriented")}
    rejects = cache.with_name(cache.stem + ".rejects.csv")
    return {"diw_records": counts["records"], "diw_prepared": counts["rows"], "diw_skipped": counts["rejected"],
            "diw_exif_oriented": counts["exif_oriented"], "rejects_file": str(rejects) if rejects.is_file() else None}


def _seconds_per_step(history: dict) -> float:
    """Seconds per training step after the first of each epoch (which carries one-off set-up)."""
    steps = sum(history["steps"]) - len(history["steps"])
    if steps <= 0:
        return sum(history["train_seconds"]) / max(sum(history["steps"]), 1)
    return (sum(history["train_seconds"]) - sum(history["first_step_seconds"])) / steps


def _data_wait_pct(history: dict) -> float:
    """Share of the training time the loop spent waiting for its batches, in percent."""
    return 100 * sum(history.get("data_seconds", [])) / max(sum(history["train_seconds"]), 1e-9)


def format_rehearsal(row: dict) -> str:
    """The rehearsal's measurements as a Markdown table."""
    lines = [f"Rehearsal of the `report` profile: {row['diw_images']:,} DIW images + {row['nyu_frames']:,} NYU frames "
             f"(synthetic pictures in the real file layouts), {row['size']}x{row['size']}, batch {row['batch_size']}, "
             f"{row['steps']} steps and {row['steps']} evaluation batches per stage, on {row['device']}.", "",
             "| measurement | value |", "|---|---|",
             f"| NYU cache preparation | {row['nyu_prep_img_s']:.0f} images/s ({row['prep_s']['nyu']:.0f} s) |",
             f"| DIW cache preparation | {row['diw_prep_img_s']:.0f} images/s ({row['prep_s']['DIW_test']:.0f} s) |"]
    if "diw_skipped" in row:
        lines.append(f"| DIW records: prepared / skipped (rejects file: `{Path(row['rejects_file'] or '-').name}`) / "
                     f"EXIF-tagged | {row['diw_prepared']:,} / {row['diw_skipped']:,} / {row['diw_exif_oriented']:,} |")
    for run, seconds in row["s_per_step"].items():
        lines.append(f"| {run}: seconds per training step (after the first) | {seconds:.2f} |")
    for run, pct in row.get("data_wait_pct", {}).items():
        lines.append(f"| {run}: waiting for data, share of training time | {pct:.1f} % |")
    peak = "n/a (not Linux)" if row["peak_anon_gb"] is None else f"{row['peak_anon_gb']:.2f} GB"
    lines += [f"| peak anonymous memory, whole process tree | {peak} |",
              f"| caches on disk (NYU + DIW) | {row['cache_gb']:.2f} GB |",
              f"| wall time (writing the files: {row['write_s']:.0f} s) | {row['wall_s'] / 60:.1f} min |"]
    return "\n".join(lines)
