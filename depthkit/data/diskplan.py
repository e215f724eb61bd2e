"""The disk a run needs, before it starts: each step's bytes against the free space of the disk it writes to.

A ``report`` run writes, in order: the downloads (NYU's ``.mat``, the DIW archives) and the unpacked DIW
images under ``DEPTHKIT_DATA/real``, the caches under ``DEPTHKIT_DATA/cache``, the checkpoints under
``DEPTHKIT_RUNS`` and the results under ``DEPTHKIT_FIGURES``. :func:`disk_plan` says how many bytes each
step still has to write (a finished download, unpacked folder, current cache or finished run needs
nothing more) and groups the steps by the file system each folder lives on (``st_dev``), against that
file system's free space: two folders on one disk share its free space, folders on two disks do not.
:func:`format_plan` prints it as a short table; :func:`check_plan` refuses, in one line, a run that
cannot fit. ``reproduce --profile report`` and ``python -m depthkit plan`` call them.

Sizes are computed, not guessed, where the code or a publisher fixes them: the NYU file's published
size, the cache layouts of :mod:`depthkit.data.cache` (what their writer reserves) and the checkpoints'
parameters (weights and Adam's two moments, 4 bytes each). DIW's archives have no published size: until
one is on disk, its size is an estimate, marked ``~`` in the table.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from depthkit.config import Profile, data_dir, figures_dir, repo_root, runs_dir
from depthkit.data import cache
from depthkit.data.downloads import DOWNLOADS
from depthkit.files import _human_bytes, hdf5_need

# Parameters of each model (depthkit.models.count_parameters; tests/test_diskplan.py checks them against
# the built models). The core below the models cannot build one just to count it.
PARAMETERS = {"unetpp": 48_457_617, "lraspp": 3_221_560, "unetpp_mnv2": 3_250_281, "segformer_b0": 3_714_401}
CHECKPOINT_MARGIN = 2**20  # buffers (batch-norm statistics), scaler, history and the pickle's own bytes
CHECKPOINT_FILES = 2  # best.pt and last.pt; the next one is written beside them, then renamed over the old
NYU_FRAMES = 1449  # frames in nyu_depth_v2_labeled.mat
DIW_TEST_IMAGES = 74_441  # records of DIW_test.csv (MiDaS's paper; DESIGN.md)
DIW_TRAIN_VAL_IMAGES = 420_000  # ESTIMATE: DIW's ~495k images less DIW_test (no count is published per file)
DIW_IMAGE_BYTES = 100_000  # ESTIMATE: one DIW JPEG thumbnail; the archive's real size replaces it once on disk
ANNOTATIONS_BYTES = 100 * 10**6  # ESTIMATE: DIW_Annotations_splitted.tar.gz and its three CSVs
PATH_BYTES = 40  # bytes per cached image path besides its text (its 16-byte slot and the heap's overhead)
RESULTS_BYTES = 20 * 10**6  # ESTIMATE: figures/ after a report run (PNGs, results and per-image JSON)
SYNTHETIC_JPEG_BYTES = 30_000  # ESTIMATE: one synthetic DIW-layout JPEG
DIW_PARTS = {"report": ("DIW_test",), "chen": ("DIW_test", "DIW_train", "DIW_val")}  # = pipeline.DIW_PARTS


@dataclass(frozen=True)
class Step:
    """One thing a run writes: its folder, the bytes it still needs, and those already on disk."""

    name: str
    folder: Path
    need: int  # bytes still to write (0: done)
    have: int = 0  # bytes of it already on disk
    estimate: bool = False  # ``need`` rests on an unpublished size
    root: str = "DEPTHKIT_DATA"  # the variable that moves its folder: DEPTHKIT_DATA, DEPTHKIT_RUNS or DEPTHKIT_FIGURES


@dataclass
class FileSystem:
    """The steps that write to one file system (one ``st_dev``), and its free space."""

    device: int
    mount: Path
    free: int
    steps: list = field(default_factory=list)

    @property
    def need(self) -> int:
        """Bytes the steps on this file system still write."""
        return sum(s.need for s in self.steps)

    @property
    def fits(self) -> bool:
        """True when the steps fit in the free space."""
        return self.need <= self.free


@dataclass
class DiskPlan:
    """A profile's steps, grouped by file system."""

    profile: str
    filesystems: list

    @property
    def fits(self) -> bool:
        """True when every file system has room for its steps."""
        return all(fs.fits for fs in self.filesystems)


def nyu_cache_bytes(frames: int, size: int) -> int:
    """Bytes :func:`depthkit.data.cache.prepare_nyu` reserves: per frame its index, image (uint8) and depth (float32)."""
    return hdf5_need(frames * (8 + size * size * (3 + 4)))


def diw_cache_bytes(records: int, size: int, path_bytes: int) -> int:
    """Bytes :func:`depthkit.data.cache.prepare_diw` reserves: per record image, pair, relation, size, line; the paths."""
    return hdf5_need(records * (size * size * 3 + 8 * 4 + 1 + 8 * 2 + 8) + path_bytes)


def checkpoint_bytes(model: str) -> int:
    """One ``last.pt``/``best.pt``: weights and Adam's two moments at 4 bytes per parameter, plus a margin."""
    return PARAMETERS[model] * 4 * 3 + CHECKPOINT_MARGIN


def disk_plan(profile: Profile, models: tuple = ("lraspp", "unetpp"), out: str | Path | None = None) -> DiskPlan:
    """Each step of a run of ``profile`` and ``models``, its bytes still to write, grouped by file system."""
    steps = data_steps(profile) + cache_steps(profile) + run_steps(profile, models)
    steps.append(_results_step(Path(out) if out is not None else figures_dir()))
    return group_by_filesystem(profile.name, steps)


def group_by_filesystem(name: str, steps: list) -> DiskPlan:
    """The steps grouped by the file system of each folder (the nearest folder that exists), with its free space."""
    filesystems: dict[int, FileSystem] = {}
    for step in steps:
        where = existing_folder(step.folder)
        device = where.stat().st_dev
        if device not in filesystems:
            filesystems[device] = FileSystem(device, mount_point(where), shutil.disk_usage(where).free)
        filesystems[device].steps.append(step)
    return DiskPlan(name, list(filesystems.values()))


def existing_folder(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a folder not made yet will live on that one's disk)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if path.is_dir() else path.parent


def mount_point(path: Path) -> Path:
    """The top folder of the file system that holds ``path``."""
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def _file_step(name: str, path: Path, size: int, estimate: bool = False) -> Step:
    """A download to ``path``: done when the file is there; a ``.part`` file counts as its first bytes."""
    if path.is_file():
        return Step(name, path.parent, 0, path.stat().st_size)
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    return Step(name, path.parent, max(0, size - have), have, estimate and not have)


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when absent)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def _archive_steps(folder: Path, item: dict, images: int, unpacked: Path) -> list:
    """Download and unpack one DIW archive: done when its marker is there, or the images without the archive
    (put there by hand); an unpacking cut short needs the rest of the archive's size."""
    archive, label = folder / item["file"], item["file"].split(".")[0]
    have = _folder_bytes(unpacked)
    if (folder / f".{item['file']}.extracted").is_file() or (have and not archive.is_file()):
        return [Step(f"download {label}", folder, 0, archive.stat().st_size if archive.is_file() else 0),
                Step(f"unpack {label}", unpacked, 0, have)]
    size, estimate = (item["size"], False) if item.get("size") else (images * DIW_IMAGE_BYTES, True)
    download = _file_step(f"download {label}", archive, size, estimate)
    unpack_size = archive.stat().st_size if archive.is_file() else size  # JPEGs: the archive hardly compresses them
    return [download, Step(f"unpack {label}", unpacked, max(0, unpack_size - have), have,
                           estimate and not archive.is_file())]


def data_steps(profile: Profile) -> list:
    """The source files: the real downloads and unpacked images, or the synthetic scenes the generator writes."""
    if profile.data != "real":
        root = data_dir() / "synthetic" / profile.name
        if (root / "manifest.json").is_file():
            return [Step("synthetic scenes", root, 0, _folder_bytes(root))]
        size = profile.n_nyu * 480 * 640 * (3 + 4) + profile.n_diw * SYNTHETIC_JPEG_BYTES
        return [Step("synthetic scenes", root, size, 0, True)]
    real = data_dir() / "real"
    nyu = DOWNLOADS["nyu"][0]
    steps = [_file_step("download NYU .mat", real / nyu["file"], nyu["size"])]
    diw = real / "diw"
    annotations, images = DOWNLOADS["diw"]
    if not (diw / "DIW_test.csv").is_file():
        steps.append(Step("DIW annotations", diw, ANNOTATIONS_BYTES, 0, True))
    steps += _archive_steps(diw, images, DIW_TEST_IMAGES, diw / "DIW_test")
    if profile.diw_protocol == "chen":
        steps += _archive_steps(diw, DOWNLOADS["diw_train_val"][0], DIW_TRAIN_VAL_IMAGES, diw / "DIW_train_val")
    return steps


def _sources(profile: Profile) -> tuple[Path, Path, Path]:
    """The NYU ``.mat``, the DIW folder and the cache folder that ``pipeline.prepare_data`` uses."""
    root = data_dir() / ("real" if profile.data == "real" else f"synthetic/{profile.name}")
    return root / "nyu_depth_v2_labeled.mat", root / "diw", data_dir() / "cache"


def _current(path: Path, fingerprint: str) -> bool:
    """True when ``path`` is a complete cache of ``fingerprint`` (what ``prepare`` would reuse), without a notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cache._cache_is_current(path, fingerprint)


def _cache_step(name: str, path: Path | None, fingerprint: str | None, need: int, estimate: bool) -> Step:
    """A cache: done when current; otherwise its whole size (a stale file is replaced only once the new one is complete)."""
    if path is not None and fingerprint is not None and _current(path, fingerprint):
        return Step(name, path.parent, 0, path.stat().st_size)
    return Step(name, path.parent if path is not None else data_dir() / "cache", need, 0, estimate)


def _diw_records(csv: Path, part: str, profile: Profile) -> tuple[int, int, bool]:
    """``(records, bytes of their cached paths, estimated?)`` of a DIW CSV: counted when it is on disk."""
    if profile.data != "real":
        count, text, estimate = profile.n_diw, 60, False
    elif csv.is_file():
        with open(csv, encoding="utf-8", errors="replace") as f:
            lines = [line for line in f if line.strip()]
        count, estimate = len(lines) // 2, False
        text = max((len(os.path.basename(line.strip())) for line in lines[::2]), default=60)
    else:
        count = DIW_TEST_IMAGES if part == "DIW_test" else DIW_TRAIN_VAL_IMAGES // (10 if part == "DIW_val" else 1)
        text, estimate = 60, True
    if profile.max_diw_images is not None:
        count = min(count, profile.max_diw_images)
    folder = len(str((csv.parent / part).resolve())) + 1
    return count, count * (PATH_BYTES + folder + text), estimate


def _nyu_frames(mat: Path, profile: Profile) -> int:
    """Frames in the NYU ``.mat``: read from the file when it is there (a damaged one: the published count)."""
    try:
        with h5py.File(mat, "r") as f:
            return int(f["images"].shape[0])
    except (OSError, KeyError, IndexError):  # absent, not HDF5, no images: prepare says what is wrong
        return NYU_FRAMES if profile.data == "real" else profile.n_nyu


def cache_steps(profile: Profile) -> list:
    """The NYU cache and one DIW cache per partition, at the profile's size."""
    mat, diw, folder = _sources(profile)
    frames = _nyu_frames(mat, profile)
    source = cache._source_id(mat) if mat.is_file() else None
    steps = [_cache_step(f"cache NYU {profile.size}x{profile.size}", cache._cache_path("nyu", mat, profile.size, None, folder),
                         source and cache._digest("nyu", cache.CACHE_VERSION, source, profile.size, None),
                         nyu_cache_bytes(frames, profile.size), False)]
    for part in DIW_PARTS[profile.diw_protocol]:
        csv = diw / f"{part}.csv"
        records, path_bytes, estimate = _diw_records(csv, part, profile)
        selection = {"image_root": str(diw.resolve()), "limit": profile.max_diw_images}
        path = cache._cache_path("diw", csv, profile.size, selection, folder)
        fingerprint = (cache._digest("diw", cache.CACHE_VERSION, cache._source_id(csv), profile.size, selection)
                       if csv.is_file() else None)
        steps.append(_cache_step(f"cache {part} {profile.size}x{profile.size}", path, fingerprint,
                                 diw_cache_bytes(records, profile.size, path_bytes), estimate))
    return steps


def _finished(folder: Path, epochs: int) -> bool:
    """True when the run folder's history holds ``epochs`` epochs (``train`` then returns at once)."""
    try:
        return len(json.loads((folder / "history.json").read_text(encoding="utf-8"))["epoch"]) >= epochs
    except (OSError, ValueError, KeyError, TypeError):
        return False


def run_steps(profile: Profile, models: tuple) -> list:
    """Per model and stage, its ``best.pt`` and ``last.pt`` (nothing for a finished run, less what is there), and
    the temporary file of the checkpoint being written (one at a time: the largest model still training)."""
    steps, temporary = [], 0
    tag = profile.name if profile.train_seed is None else f"{profile.name}-seed{profile.train_seed}"
    for model in models:
        for stage in ("nyu", "diw"):
            folder = runs_dir() / tag / f"{model}_{stage}"  # = depthkit.runs.run_dir
            have = sum(p.stat().st_size for p in folder.glob("*.pt")) if folder.is_dir() else 0
            done = _finished(folder, sum(profile.epochs(model, stage)))
            need = 0 if done else max(0, CHECKPOINT_FILES * checkpoint_bytes(model) - have)
            temporary = temporary if done else max(temporary, checkpoint_bytes(model))
            steps.append(Step(f"checkpoints {model} {stage.upper()}", folder, need, have, root="DEPTHKIT_RUNS"))
    if temporary:
        steps.append(Step("checkpoint being written", runs_dir() / tag, temporary, root="DEPTHKIT_RUNS"))
    return steps


def _results_step(out: Path) -> Step:
    """The figures, ``results.md`` and the JSON files (rewritten by every run)."""
    have = _folder_bytes(out)  # each file is rewritten beside the old one, then renamed over it
    return Step("results", out, max(RESULTS_BYTES - have, RESULTS_BYTES // 4), have, True, root="DEPTHKIT_FIGURES")


def _size(n: int, estimate: bool = False) -> str:
    """Bytes in words (GB with two decimals), ``~`` before an estimate."""
    return ("~" if estimate else "") + (f"{n / 1e9:.2f} GB" if n >= 10**9 else _human_bytes(n))


def show_folder(path: Path) -> str:
    """A folder as the table shows it: relative to the checkout, or under the variable that moved it there."""
    path = Path(os.path.abspath(path))
    for variable, root in (("DEPTHKIT_DATA", data_dir()), ("DEPTHKIT_RUNS", runs_dir()), ("DEPTHKIT_FIGURES", figures_dir())):
        root = Path(os.path.abspath(root))
        if path.is_relative_to(root) and variable in os.environ:
            return "$" + variable + ("/" + path.relative_to(root).as_posix() if path != root else "")
    checkout = Path(os.path.abspath(repo_root()))
    return path.relative_to(checkout).as_posix() if path.is_relative_to(checkout) else str(path)


def format_plan(plan: DiskPlan) -> str:
    """The plan as a short table: per file system its need and free space, then each step (``done`` when on disk)."""
    lines = [f"disk plan, profile {plan.profile} (~ = estimate: size not published):"]
    for fs in plan.filesystems:
        verdict = "fits" if fs.fits else "DOES NOT FIT"
        lines.append(f"{fs.mount}: needs {_size(fs.need)}, {_size(fs.free)} free: {verdict}")
        for s in fs.steps:
            state = _size(s.need, s.estimate) if s.need else f"done ({_size(s.have)} on disk)"
            lines.append(f"  {s.name:<24} {show_folder(s.folder):<34} {state}")
    return "\n".join(lines)


def check_plan(plan: DiskPlan) -> None:
    """Raise a one-line ``OSError`` (ENOSPC) naming the first file system whose steps do not fit, with the numbers."""
    for fs in plan.filesystems:
        if fs.fits:
            continue
        roots = {"DEPTHKIT_DATA": data_dir(), "DEPTHKIT_RUNS": runs_dir()}
        folders = " and ".join(dict.fromkeys(f"{s.root} ({roots.get(s.root, s.folder)})" for s in fs.steps if s.need))
        largest = sorted((s for s in fs.steps if s.need), key=lambda s: -s.need)[:3]
        raise OSError(errno.ENOSPC, f"not enough disk: {folders} on {fs.mount} needs {_size(fs.need)}, "
                                    f"{_size(fs.free)} free: " + ", ".join(f"{s.name} {_size(s.need, s.estimate)}"
                                                                         for s in largest)
                      + "; free some space or point DEPTHKIT_DATA / DEPTHKIT_RUNS / DEPTHKIT_FIGURES at a larger disk"
                        " (python -m depthkit plan shows each step)")
