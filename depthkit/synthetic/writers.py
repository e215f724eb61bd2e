"""Writers: the synthetic dataset in the real NYU and DIW file layouts (``make_synthetic``).

``make_synthetic`` writes a whole dataset in the layouts of the real files (every picture drawn by
``render_scene``, every DIW pair by ``sample_pair``), so that ``depthkit.data`` reads it with the
very code it uses for the real data:

* ``root/nyu_depth_v2_labeled.mat`` - MATLAB v7.3 = HDF5: ``images`` (N, 3, 640, 480) uint8 and
  ``depths`` (N, 640, 480) float32 metres, stored transposed as MATLAB does; ``root/splits.json``;
* ``root/diw/DIW_test/<name>.thumb`` JPEGs and ``root/diw/DIW_test.csv``: per image, its path and
  one line ``y_A,x_A,y_B,x_B,<relation>,width,height`` (1-based; ``>`` = A is farther).

A call with the same arguments as the last one finds ``root/manifest.json`` and returns at once.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from depthkit.files import atomic_write, atomic_write_bytes, hdf5_need, hdf5_writer
from depthkit.synthetic.pairs import diw_flags, diw_image_size, position_prior, sample_pair
from depthkit.synthetic.rendering import render_scene
from depthkit.synthetic.scenes import scene_rng

GENERATOR_VERSION = 4  # bump when the pictures, pairs or partitions change: make_synthetic then regenerates
MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: depthkit.synthetic HDF5 schema 1.00 ."
DIW_IMAGE_DIR = "/synthetic/DIW"  # the "authors' machine" prefix written into the CSV


def available_cores() -> int:
    """Number of CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _parallel(fn: Callable[[int], object], n: int, workers: int) -> Iterator[object]:
    """fn(0), ..., fn(n - 1) in order, computed by ``workers`` threads (numpy releases the GIL)."""
    if workers <= 1:
        yield from (fn(i) for i in range(n))
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(fn, i) for i in range(min(n, 2 * workers))]
        for i in range(n):
            result = pending.pop(0).result()
            if i + len(pending) + 1 < n:
                pending.append(pool.submit(fn, i + len(pending) + 1))
            yield result


def _progress(iterable, total: int, desc: str):
    """tqdm.auto progress bar when tqdm is installed and the job is not tiny."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=total < 50, leave=False)


def write_nyu_mat(path: Path, n: int, seed: int, size: tuple[int, int], workers: int) -> None:
    """Render ``n`` scenes into a MATLAB-v7.3-layout .mat (HDF5): images (N,3,W,H), depths (N,W,H)."""
    height, width = size
    need = hdf5_need(512 + n * height * width * (3 + 4), chunks=2 * n)  # user block (MATLAB header), images, depths

    def write(tmp: Path) -> None:
        with hdf5_writer(tmp, need, userblock_size=512) as f:  # the space is reserved before HDF5 writes
            images = f.create_dataset("images", (n, 3, width, height), np.uint8, chunks=(1, 3, width, height))
            depths = f.create_dataset("depths", (n, width, height), np.float32, chunks=(1, width, height))
            images.attrs["MATLAB_class"] = np.bytes_("uint8")
            depths.attrs["MATLAB_class"] = np.bytes_("single")
            scenes = _parallel(lambda i: render_scene(scene_rng(seed, 0, i), height, width), n, workers)
            for i, scene in enumerate(_progress(scenes, n, "synthetic NYU")):
                images[i] = scene["image"].transpose(2, 1, 0)  # MATLAB is column-major: (3, W, H)
                depths[i] = scene["depth"].T
        with open(tmp, "r+b") as f:  # the 512-byte MATLAB header that real v7.3 files start with
            f.write(MATLAB_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")

    atomic_write(path, write, need=need)


def write_splits(path: Path, n: int, seed: int, test_fraction: float = 0.2) -> None:
    """A seeded ~80/20 train/test split in the format of data/nyu_splits.json (1-based indices)."""
    order = np.random.default_rng([seed, 99]).permutation(n) + 1
    n_test = 0 if n < 2 else max(1, round(test_fraction * n))
    splits = {
        "about": f"Seeded split (seed {seed}) of {n} synthetic scenes written by depthkit.synthetic, "
                 f"1-based indices into nyu_depth_v2_labeled.mat, like the official NYU split file.",
        "train": sorted(int(i) for i in order[n_test:]),
        "test": sorted(int(i) for i in order[:n_test]),
    }
    atomic_write_bytes(path, json.dumps(splits).encode())


def diw_record(seed: int, stream: int, index: int, flags: dict[str, bool], scale: float = 1.0,
               prior: np.ndarray | None = None) -> dict:
    """Render DIW-style image ``index`` of ``stream`` and pick its pair (``flags``: see ``sample_pair``).

    Returns {"image", "depth", "pair": (ya, xa, yb, xb) 0-based, "relation": ">" or "<"}.
    ``scale`` shrinks the image (tests; the dataset uses 1); the scene is the same either way.
    """
    rng = scene_rng(seed, stream, index)
    height, width = diw_image_size(rng)
    if scale != 1.0:
        height, width = max(16, round(height * scale)), max(16, round(width * scale))
    scene = render_scene(rng, height, width)
    pair = sample_pair(scene["depth"], rng, flags["lower_closer"], flags["a_farther"],
                       central_farther=flags.get("central_farther"), prior_agrees=flags.get("prior_agrees"),
                       prior=prior)
    ya, xa, yb, xb = pair
    relation = ">" if scene["depth"][ya, xa] > scene["depth"][yb, xb] else "<"
    return {"image": scene["image"], "depth": scene["depth"], "pair": pair, "relation": relation}


def write_diw(root: Path, partition: str, n: int, seed: int, stream: int, workers: int) -> Path:
    """Render ``n`` DIW-style JPEGs into ``root/<partition>/`` and write ``root/<partition>.csv``."""
    folder = root / partition
    folder.mkdir(parents=True, exist_ok=True)
    flags, prior = diw_flags(n, seed, stream), position_prior()

    def make_one(i: int) -> list[str]:
        """Render image i, pick its pair, write its JPEG; return its two CSV lines."""
        record = diw_record(seed, stream, i, flags[i], prior=prior)
        height, width = record["depth"].shape
        ya, xa, yb, xb = record["pair"]
        name = f"synth_{partition.split('_', 1)[1].replace('_', '')}_{i:06d}.thumb"
        buffer = io.BytesIO()
        Image.fromarray(record["image"]).save(buffer, format="JPEG", quality=90)
        atomic_write_bytes(folder / name, buffer.getvalue())
        return [f"{DIW_IMAGE_DIR}/{partition}/{name}",
                f"{ya + 1},{xa + 1},{yb + 1},{xb + 1},{record['relation']},{width},{height}"]

    lines = [line for pair in _progress(_parallel(make_one, n, workers), n, f"synthetic {partition}") for line in pair]
    remove_partition(root, partition, keep={Path(line).name for line in lines[::2]})  # an earlier, larger set
    csv_path = root / f"{partition}.csv"
    atomic_write_bytes(csv_path, ("\n".join(lines) + "\n").encode())
    return csv_path


def remove_partition(root: Path, partition: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Delete the synthetic images of ``root/<partition>/`` (all but ``keep``); the CSV too if nothing is kept."""
    for image in (root / partition).glob("synth_*.thumb"):
        if image.name not in keep:
            image.unlink()
    if not keep:
        (root / f"{partition}.csv").unlink(missing_ok=True)


def _manifest_files(root: Path, paths: list[Path]) -> dict[str, int]:
    """Relative path -> size in bytes of every file the dataset consists of."""
    return {str(p.relative_to(root)): p.stat().st_size for p in paths}


def _dataset_files(root: Path) -> list[Path]:
    """Every file of a written dataset, listed from its CSVs (images) plus the fixed files."""
    paths = [root / "nyu_depth_v2_labeled.mat", root / "splits.json"]
    for csv_path in sorted((root / "diw").glob("DIW_*.csv")):
        paths.append(csv_path)
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
        partition = csv_path.stem
        paths += [root / "diw" / partition / Path(row[0]).name for row in rows[::2]]
    return paths


def _manifest_matches(root: Path, arguments: dict) -> bool:
    """True when ``root/manifest.json`` records ``arguments`` and every listed file is intact."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("arguments") != arguments:
        return False
    for rel, size in manifest.get("files", {}).items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return bool(manifest.get("files"))


def make_synthetic(root: str | os.PathLike, n_nyu: int = 64, n_diw: int = 64, seed: int = 0,
                   size: tuple[int, int] = (480, 640), n_diw_train_val: int = 0,
                   workers: int | None = None) -> dict[str, Path]:
    """Write a synthetic NYU-layout .mat + split file and DIW-layout JPEGs + CSV under ``root``.

    Returns {"nyu": .mat, "nyu_splits": splits.json, "diw_csv": DIW_test.csv, "diw_root": diw folder}
    (plus "diw_train_csv" and "diw_val_csv", 90/10 of ``n_diw_train_val``, when it is > 0). A second call with the same arguments
    finds ``root/manifest.json`` and returns at once. ``size`` is (height, width) of the NYU scenes;
    ``workers`` threads render in parallel (default: all CPU cores).
    """
    if n_nyu < 1 or n_diw < 1 or n_diw_train_val < 0:
        raise ValueError(f"make_synthetic needs n_nyu >= 1, n_diw >= 1 and n_diw_train_val >= 0, "
                         f"got {n_nyu}, {n_diw}, {n_diw_train_val}")
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"make_synthetic: size must be (height, width) of at least 16 pixels, got {size!r}")
    root = Path(root)
    diw = root / "diw"
    paths = {"nyu": root / "nyu_depth_v2_labeled.mat", "nyu_splits": root / "splits.json",
             "diw_csv": diw / "DIW_test.csv", "diw_root": diw}
    if n_diw_train_val:  # Chen et al.'s published split: DIW_train.csv and DIW_val.csv
        paths["diw_train_csv"], paths["diw_val_csv"] = diw / "DIW_train.csv", diw / "DIW_val.csv"
    arguments = {"version": GENERATOR_VERSION, "n_nyu": n_nyu, "n_diw": n_diw, "seed": seed,
                 "size": [int(s) for s in size], "n_diw_train_val": n_diw_train_val}
    if _manifest_matches(root, arguments):
        return paths

    workers = workers or available_cores()
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").unlink(missing_ok=True)  # an interrupted run must not look finished
    start = time.perf_counter()
    write_nyu_mat(paths["nyu"], n_nyu, seed, tuple(size), workers)
    write_splits(paths["nyu_splits"], n_nyu, seed)
    write_diw(diw, "DIW_test", n_diw, seed, stream=1, workers=workers)
    n_val = max(1, n_diw_train_val // 10) if n_diw_train_val else 0
    for partition, n, stream in (("DIW_train", n_diw_train_val - n_val, 2), ("DIW_val", n_val, 4)):
        if n > 0:
            write_diw(diw, partition, n, seed, stream=stream, workers=workers)
        else:
            remove_partition(diw, partition)
    remove_partition(diw, "DIW_train_val")  # the layout of generator version 2
    manifest = {"arguments": arguments, "seconds": round(time.perf_counter() - start, 1),
                "files": _manifest_files(root, _dataset_files(root))}
    atomic_write_bytes(root / "manifest.json", json.dumps(manifest, indent=1).encode())
    return paths
