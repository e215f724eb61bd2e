"""Issue #27: a disk that is full, from the first byte on. Every writer on the prepare/train/reproduce
paths ends on a full disk with one ``OSError`` line that names the file, says the disk is full and how
much the file needs, and leaves no temporary file; a later run with room writes what a clean run writes.

HDF5 writers are the hard case: once a write has failed inside HDF5, its clean-up can crash the
process (a segfault, status -11), so the tests run every writer in a child process and fail on any
status but its own. Real limits only: RLIMIT_FSIZE in the child (the kernel's EFBIG, errno 27, where
a full disk gives ENOSPC), lowered to each point of a file's size (the first byte, just past the
header, part-way, 90 %, all but the last 64 bytes) and raised again between points; and, where the
tests run as root, a real small tmpfs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from depthkit.data import prepare_diw, prepare_nyu
from depthkit.synthetic.writers import write_nyu_mat

# Preamble of every child: ``at_limit(limit, call)`` runs ``call()`` with every file the process writes
# capped at ``limit`` bytes (the soft limit; the hard one stays, so the cap is lifted again after) and
# returns the line the CLI prints for the OSError it raised, or None. Records go to stdout (a pipe: never capped).
CHILD = """
import contextlib, io, json, os, resource, signal, sys
from pathlib import Path
from depthkit.cli import describe_os_error  # the text python -m depthkit prints
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # CPython's default: a write past the cap fails with EFBIG
ARGS = json.loads(sys.argv[1])
HARD = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

def at_limit(limit, call):
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, HARD))
    try:
        call()
    except OSError as err:
        return describe_os_error(err)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (HARD, HARD))
    return None

def files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())

def report(**fields):
    print(json.dumps(fields), flush=True)
"""

# The one line's fixed parts (depthkit.files.disk_full_error), for a file-size limit
NEEDS = re.compile(r"it needs about ([\d,.]+) (bytes|KB|MB|GB)")
UNITS = {"bytes": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}


def points(size: int, header: int = 1024) -> dict[str, int]:
    """The caps a writer is tried at, for a file of ``size`` bytes whose header takes ``header`` bytes."""
    return {"the first byte": 0, "just past the header": header, "part-way": size // 2, "90 %": size * 9 // 10,
            "all but the last 64 bytes": size - 64}


def run_child(code: str, args: dict, env: dict, timeout: float = 300) -> list[dict]:
    """Run ``CHILD + code`` in a fresh interpreter; its records, after checking that it ended by itself (status 0)."""
    done = subprocess.run([sys.executable, "-c", CHILD + code, json.dumps(args, default=str)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (f"the child ended with status {done.returncode} (-11: a segfault, HDF5's "
                                  f"clean-up after a failed write): {done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def assert_disk_full_line(text: str | None, path: Path, size: int) -> None:
    """``text`` is the one line for ``path`` on a capped disk: names it, says why and how much it needs (>= ``size``)."""
    assert text is not None, f"{path}: the write succeeded under a cap smaller than the file"
    assert "\n" not in text and text.startswith(f"{path} could not be written: "), text
    assert "the file is larger than this process may write (ulimit -f)" in text, text
    assert "nothing was left behind" in text and "errno" not in text and "h5py" not in text, text
    found = NEEDS.search(text)
    assert found, f"the line does not say how much {path.name} needs: {text}"
    need = float(found[1].replace(",", "")) * UNITS[found[2]]
    assert need >= size - 0.05 * UNITS[found[2]], f"{path.name} needs {size:,} bytes, the line says {found[0]}"


def assert_every_point_failed_cleanly(records: list[dict], path: Path, size: int, before: list[str]) -> None:
    """Each record: the one line, and the folder's files as they were before (no temporary file, nothing half-written)."""
    assert len(records) == len(points(size)), records
    for record in records:
        assert_disk_full_line(record["error"], path, size)
        assert record["left"] == before, f"{record['point']}: left behind {set(record['left']) - set(before)}"


def assert_same_hdf5(a: Path, b: Path, paths_by_name: bool = False) -> None:
    """Two HDF5 files hold the same datasets (same dtype, shape, bytes) and the same attributes, recursively.

    ``paths_by_name``: the image paths of a DIW cache are compared by file name (the data folders differ).
    """
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        assert sorted(names_a) == sorted(names_b)
        for obj_a, obj_b in [(fa, fb)] + [(fa[n], fb[n]) for n in names_a]:
            assert dict(obj_a.attrs).keys() == dict(obj_b.attrs).keys(), obj_a.name
            for key, value in obj_a.attrs.items():
                np.testing.assert_array_equal(value, obj_b.attrs[key], err_msg=f"{obj_a.name} attribute {key}")
            if isinstance(obj_a, h5py.Dataset):
                assert obj_a.dtype == obj_b.dtype and obj_a.shape == obj_b.shape, obj_a.name
                if paths_by_name and obj_a.name == "/paths":
                    assert [Path(p).name for p in obj_a.asstr()[()]] == [Path(p).name for p in obj_b.asstr()[()]]
                else:
                    np.testing.assert_array_equal(obj_a[()], obj_b[()], err_msg=obj_a.name)


# --------------------------------------------------------------------------------------------
# 1. Each writer, called as the library calls it
# --------------------------------------------------------------------------------------------
MAT_CHILD = """
from depthkit.synthetic.writers import write_nyu_mat
if ARGS["without_fallocate"]:  # as on macOS: the free space and the limit are checked instead
    del os.posix_fallocate
target = Path(ARGS["target"])
for point, limit in ARGS["points"].items():
    report(point=point, error=at_limit(limit, lambda: write_nyu_mat(target, 2, 0, (32, 48), 1)),
           left=files(target.parent))
write_nyu_mat(target, 2, 0, (32, 48), 1)  # with room
"""


@pytest.mark.parametrize("without_fallocate", [False, True], ids=["posix_fallocate", "no_posix_fallocate"])
def test_the_synthetic_nyu_mat_on_a_full_disk(without_fallocate, tmp_path, cli_env):
    """Catches: HDF5 meeting the full disk while writing the MATLAB-v7.3 .mat (``make_synthetic``, and
    ``rehearse``'s report-scale file): a crash at the first byte, or a file renamed into place
    incomplete. At every point the previous .mat stays as it was, and a later run writes the very
    bytes a clean run writes. Also where ``os.posix_fallocate`` is missing (macOS)."""
    clean = tmp_path / "clean" / "nyu.mat"
    clean.parent.mkdir()
    write_nyu_mat(clean, 2, 0, (32, 48), 1)
    target = tmp_path / "data" / "nyu.mat"
    target.parent.mkdir()
    write_nyu_mat(target, 1, 0, (32, 48), 1)  # an earlier, smaller dataset: kept until the new one is complete
    previous = target.read_bytes()
    size = clean.stat().st_size
    records = run_child(MAT_CHILD, {"target": target, "points": points(size), "without_fallocate": without_fallocate},
                        cli_env)
    assert_every_point_failed_cleanly(records, target, size, ["nyu.mat"])
    assert target.read_bytes() == clean.read_bytes() != previous


CACHE_CHILD = """
from depthkit.data import prepare_diw, prepare_nyu
source, cache_dir = Path(ARGS["source"]), Path(ARGS["cache_dir"])
if ARGS["kind"] == "nyu":
    prepare = lambda: prepare_nyu(source, cache_dir, size=16)
else:
    prepare = lambda: prepare_diw(source, cache_dir, size=16, image_root=source.parent, workers=1)
for point, limit in ARGS["points"].items():
    report(point=point, error=at_limit(limit, prepare), left=files(cache_dir))
report(point="with room", path=str(prepare()))
"""


@pytest.mark.parametrize("kind", ["nyu", "diw"])
def test_a_cache_on_a_full_disk(kind, smoke_prepared, tmp_path, cli_env):
    """Catches: a cache whose first write fails inside HDF5 (status -11 at the first byte, h5py's
    message, a ``.tmp`` left), or one whose reservation is too small to say what it needs. A later
    run with room builds a cache equal, dataset by dataset and attribute by attribute, to a clean one."""
    source = smoke_prepared.nyu_mat if kind == "nyu" else smoke_prepared.root / "diw" / "DIW_test.csv"
    if kind == "nyu":
        clean = prepare_nyu(source, tmp_path / "clean", size=16)
    else:
        clean = prepare_diw(source, tmp_path / "clean", size=16, image_root=source.parent, workers=1)
    cache_dir = tmp_path / "cache"
    size = clean.stat().st_size
    records = run_child(CACHE_CHILD, {"kind": kind, "source": source, "cache_dir": cache_dir,
                                      "points": points(size)}, cli_env)
    assert_every_point_failed_cleanly(records[:-1], cache_dir / clean.name, size, [])
    assert records[-1]["path"] == str(cache_dir / clean.name)
    assert_same_hdf5(cache_dir / clean.name, clean)
    assert sorted(p.name for p in cache_dir.iterdir()) == [clean.name]


BENCH_CHILD = """
from depthkit.tools.bench import random_split
folder = Path(ARGS["folder"])
for point, limit in ARGS["points"].items():
    report(point=point, error=at_limit(limit, lambda: random_split("diw", 8, 32, folder)), left=files(folder))
report(point="with room", images=list(random_split("diw", 8, 32, folder).images.shape))  # (N, C, H, W)
"""


def test_the_benchmarks_streamed_split_on_a_full_disk(tmp_path, cli_env):
    """Catches: ``bench``'s ``random_split`` filling a memory map whose file the disk has no room
    for (on a full disk the kernel kills the process with SIGBUS; past ``ulimit -f`` numpy raises
    a bare ``[Errno 27] File too large``): the space is reserved first, the one line names the file."""
    folder = tmp_path / "bench"
    folder.mkdir()
    size = 8 * 32 * 32 * 3
    records = run_child(BENCH_CHILD, {"folder": folder, "points": points(size)}, cli_env)
    assert_every_point_failed_cleanly(records[:-1], folder / "images.u8", size, [])
    assert records[-1]["images"] == [8, 3, 32, 32]


PYTHON_WRITERS_CHILD = """
import torch
import numpy as np
import matplotlib
matplotlib.use("Agg")
from matplotlib import pyplot as plt
from depthkit.checkpoints import save_checkpoint, save_json
from depthkit.files import atomic_write_bytes
from depthkit.reproduce import write_results_md
from depthkit.viz import save_figure

results = json.loads(Path(ARGS["results"]).read_text())

def figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.imshow(np.random.default_rng(0).random((40, 60)))
    return fig

WRITERS = {  # name -> (file name, write(path))
    "atomic_write_bytes": ("DIW_test.csv", lambda p: atomic_write_bytes(p, b"/synthetic/DIW/x.thumb\\n1,2,3,4,>,64,48\\n" * 200)),
    "save_json": ("history.json", lambda p: save_json(p, {"epoch": list(range(400)), "loss": [0.5] * 400})),
    "write_results_md": ("results.md", lambda p: write_results_md(p, results)),
    "save_figure": ("nyu_samples.png", lambda p: save_figure(figure(), p)),
    "save_checkpoint": ("last.pt", lambda p: save_checkpoint(p, {"model": {"w": torch.zeros(20_000)}, "epoch": 1})),
}
for name, (file_name, write) in WRITERS.items():
    folder = Path(ARGS["folder"]) / name
    folder.mkdir()
    write(folder / file_name)  # with room: its size
    size = (folder / file_name).stat().st_size
    (folder / file_name).unlink()
    caps = {"the first byte": 0, "just past the header": min(64, size // 4), "part-way": size // 2,
            "90 %": size * 9 // 10, "all but the last 64 bytes": size - 64}
    for point, limit in caps.items():
        report(writer=name, path=str(folder / file_name), size=size, point=point,
               error=at_limit(limit, lambda: write(folder / file_name)), left=files(folder))
"""


def test_every_python_writer_on_a_full_disk(tmp_path, cli_env):
    """Catches: a writer that reaches the disk without saying how much it needs (the text written by
    ``tmp.write_text`` inside ``atomic_write``, a figure saved by matplotlib straight into the
    temporary file) or that leaves its temporary file: the synthetic data's JPEGs, CSVs and JSON
    (``atomic_write_bytes``), ``history.json`` / ``results.json`` / ``per_image_scores.json``
    (``save_json``), ``results.md``, the figures (``save_figure``) and checkpoints."""
    records = run_child(PYTHON_WRITERS_CHILD, {"folder": tmp_path, "results": Path("figures/results.json").resolve()},
                        cli_env)
    writers = {r["writer"] for r in records}
    assert writers == {"atomic_write_bytes", "save_json", "write_results_md", "save_figure", "save_checkpoint"}
    for record in records:
        assert_disk_full_line(record["error"], Path(record["path"]), record["size"])
        assert record["left"] == [], f"{record['writer']} at {record['point']}: left {record['left']}"


# --------------------------------------------------------------------------------------------
# 2. depthkit.files: a failure HDF5 never sees, and a reservation that covers the file
# --------------------------------------------------------------------------------------------
PAST_RESERVATION_CHILD = """
import numpy as np
from depthkit.files import atomic_write, hdf5_writer
target = Path(ARGS["target"])

def write(tmp):  # reserves 8 KB for a 370 KB file: the writes past the reservation meet the cap
    with hdf5_writer(tmp, 8192) as f:
        f.create_dataset("rows", data=np.arange(40_000, dtype=np.int64))
        f.create_dataset("chunked", data=np.ones((10, 1000), np.float32), chunks=(1, 1000))
        f.attrs["complete"] = True

for point, limit in ARGS["points"].items():
    report(point=point, error=at_limit(limit, lambda: atomic_write(target, write, need=400_000)),
           left=files(target.parent))
atomic_write(target, write)
"""


def test_a_write_that_fails_past_the_reservation_never_reaches_hdf5(tmp_path, cli_env):
    """Catches: HDF5 writing the file itself (or through a file object whose writes raise), so that a
    failure the reservation did not prevent -- a file larger than reserved, a file system that
    cannot reserve, another writer -- reaches HDF5 and its clean-up crashes the process. Here
    8 KB are reserved for 370 KB: every point past them must end in the one line, with no crash."""
    target = tmp_path / "out" / "rows.h5"
    target.parent.mkdir()
    run_child(PAST_RESERVATION_CHILD, {"target": tmp_path / "clean.h5", "points": {}}, cli_env)
    size = (tmp_path / "clean.h5").stat().st_size
    caps = {"past the reservation": 8192 + 4096, "part-way": size // 2, "90 %": size * 9 // 10,
            "all but the last 64 bytes": size - 64}
    records = run_child(PAST_RESERVATION_CHILD, {"target": target, "points": caps}, cli_env)
    assert len(records) == len(caps)
    for record in records:
        assert_disk_full_line(record["error"], target, size)
        assert record["left"] == [], f"{record['point']}: left {record['left']}"
    with h5py.File(target, "r") as f:
        assert f.attrs["complete"] and np.array_equal(f["rows"][()], np.arange(40_000))
        assert np.array_equal(f["chunked"][()], np.ones((10, 1000), np.float32))


def _long_paths_csv(folder: Path, n: int, smoke_root: Path) -> Path:
    """A DIW CSV of ``n`` records with long image paths, all hard links to one synthetic JPEG."""
    image = next((smoke_root / "diw" / "DIW_test").glob("*.thumb"))
    with Image.open(image) as im:
        width, height = im.size
    (folder / "DIW_test").mkdir(parents=True)
    lines = []
    for i in range(n):
        name = f"a_long_file_name_as_real_datasets_have_them_{i:06d}.thumb"
        os.link(image, folder / "DIW_test" / name)
        lines += [f"/home/someone/datasets/depth_in_the_wild/DIW_test/{name}", f"1,2,3,4,>,{width},{height}"]
    csv = folder / "DIW_test.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


@pytest.mark.slow
def test_each_writers_reservation_covers_its_file(monkeypatch, smoke_prepared, tmp_path):
    """Catches: a reservation smaller than the file it is for (the .mat's chunk index of ~64 bytes a
    chunk, the DIW cache's image paths: 110 KB for 1,000 long ones), which would let a write past it
    meet a full disk. The files are made large in exactly those parts; the space reserved for each
    (observed, not changed) must hold it."""
    from depthkit import files

    reserved: dict[str, int] = {}
    real = files.reserve_space

    def observe(fd: int, path: Path, size: int) -> None:
        reserved[Path(path).name] = size
        real(fd, path, size)

    monkeypatch.setattr(files, "reserve_space", observe)
    mat = tmp_path / "nyu.mat"
    write_nyu_mat(mat, 700, 0, (16, 16), 2)  # 1,400 chunks of 1.8 KB and less
    caches = [prepare_nyu(mat, tmp_path / "cache", size=16),
              prepare_diw(_long_paths_csv(tmp_path / "diw", 1000, smoke_prepared.root), tmp_path / "cache", size=8, workers=1)]
    for path in (mat, *caches):
        # a temporary file of atomic_write, or the DIW cache's resumable <name>.partial (its last reservation: the finish)
        temporary = [name for name in reserved if name.startswith(f".{path.name}.") or name == f"{path.name}.partial"]
        assert len(temporary) == 1, (path.name, reserved)
        assert path.stat().st_size <= reserved[temporary[0]], (path.name, path.stat().st_size, reserved)


# --------------------------------------------------------------------------------------------
# 3. Through the CLI: python -m depthkit prepare / train
# --------------------------------------------------------------------------------------------
LIMITED = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
if sys.argv[2] == "-c":
    exec(sys.argv[3])
else:
    sys.argv = ["depthkit"] + sys.argv[2:]
    runpy.run_module("depthkit", run_name="__main__")
"""


def run_limited(limit: int, args: list[str], env: dict) -> subprocess.CompletedProcess:
    """``python -m depthkit <args>`` (or ``-c <code>``) with every file it writes capped at ``limit`` bytes."""
    return subprocess.run([sys.executable, "-c", LIMITED, str(limit), *args], env=env, capture_output=True,
                          text=True, timeout=600)


def error_line(done: subprocess.CompletedProcess, command: str) -> str:
    """The one line a failed command printed last (progress bars may come before it), after checking status 1."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in re.split(r"[\r\n]+", done.stderr) if line.strip()]
    errors = [line for line in lines if f"depthkit {command}: error: " in line]
    assert len(errors) == 1 and errors[0] == lines[-1], done.stderr[-3000:]
    return lines[-1][lines[-1].index("depthkit "):]


@pytest.fixture
def data_env(cli_env, tmp_path) -> dict:
    """A CLI environment with an empty data folder (the official split only) and its own runs folder."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "nyu_splits.json").write_bytes((Path(cli_env["DEPTHKIT_DATA"]) / "nyu_splits.json").read_bytes())
    return dict(cli_env, DEPTHKIT_DATA=str(data), DEPTHKIT_RUNS=str(tmp_path / "runs"))


def with_synthetic(env: dict, smoke_prepared, caches: tuple[Path, ...] = ()) -> Path:
    """Give ``env``'s data folder the smoke profile's synthetic files (a link) and copies of ``caches``; its path."""
    data = Path(env["DEPTHKIT_DATA"])
    (data / "synthetic").symlink_to(smoke_prepared.root.parent, target_is_directory=True)
    for cache in caches:
        (data / "cache").mkdir(exist_ok=True)
        shutil.copy(cache, data / "cache" / cache.name)
    return data


CLI_CHILD = """
from depthkit.cli import main
data = Path(os.environ["DEPTHKIT_DATA"])
for point, limit in ARGS["points"].items():
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = []
        at_limit(limit, lambda: status.append(main(["prepare", "--profile", "smoke"])))
    report(point=point, status=status, stderr=stderr.getvalue(), left=files(data))
with contextlib.redirect_stdout(io.StringIO()):  # the statistics it prints
    status = main(["prepare", "--profile", "smoke"])
report(point="with room", status=status)
"""


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["nyu_mat", "nyu_cache", "diw_cache"])
def test_prepare_on_a_full_disk_is_one_line_with_status_1(writer, data_env, smoke_prepared):
    """Catches, through ``python -m depthkit prepare``: a segfault (status -11/139) once HDF5 meets
    the full disk, h5py's ``Can't decrement id ref count`` on stderr, a ``.tmp`` left, a line that
    does not say how much the file needs. The .mat (no data yet), the NYU cache (data, no cache),
    the DIW cache (the NYU cache in place) at every point; then a run with room writes what a clean
    run wrote (the .mat byte for byte, the caches dataset by dataset)."""
    if writer == "nyu_mat":
        target, clean, data = (Path(data_env["DEPTHKIT_DATA"]) / "synthetic" / "smoke" / smoke_prepared.nyu_mat.name,
                               smoke_prepared.nyu_mat, Path(data_env["DEPTHKIT_DATA"]))
    else:
        clean = smoke_prepared.nyu_cache if writer == "nyu_cache" else smoke_prepared.diw_caches["DIW_test"]
        data = with_synthetic(data_env, smoke_prepared, () if writer == "nyu_cache" else (smoke_prepared.nyu_cache,))
        target = data / "cache" / clean.name
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    if writer == "nyu_mat":  # a real process once: its exit status (the others: what main returns for it)
        done = run_limited(0, ["prepare", "--profile", "smoke"], data_env)
        assert_disk_full_line(error_line(done, "prepare").removeprefix("depthkit prepare: error: "), target,
                              clean.stat().st_size)
    records = run_child(CLI_CHILD, {"points": points(clean.stat().st_size)}, data_env, timeout=600)
    for record in records[:-1]:
        assert record["status"] == [1], record
        lines = record["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("depthkit prepare: error: "), record["stderr"][-3000:]
        assert_disk_full_line(lines[0].removeprefix("depthkit prepare: error: "), target, clean.stat().st_size)
        assert record["left"] == before, f"{record['point']}: left {set(record['left']) - set(before)}"
    assert records[-1]["status"] == 0
    if writer == "nyu_mat":  # a dataset of its own: the caches name its folder
        assert target.read_bytes() == clean.read_bytes()
    else:
        for cache in (smoke_prepared.nyu_cache, smoke_prepared.diw_caches["DIW_test"]):
            assert_same_hdf5(data / "cache" / cache.name, cache, paths_by_name=True)


@pytest.mark.slow
def test_train_on_a_full_runs_disk_is_one_line_with_status_1(data_env, smoke_prepared, tmp_path):
    """Catches, through ``python -m depthkit train``: a checkpoint that meets a full disk without the
    one line, or a ``.tmp`` left in the run folder. The data is in place; the cap is below the size
    of a checkpoint, so the first one fails after the first (one-step) epoch."""
    with_synthetic(data_env, smoke_prepared, (smoke_prepared.nyu_cache,))
    out = tmp_path / "run"
    done = run_limited(1_000_000, ["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out",
                                   str(out), "--epochs", "1", "--max-steps", "1"], data_env)
    line = error_line(done, "train")
    assert re.search(rf"error: {re.escape(str(out))}/(best|last)\.pt could not be written: ", line), line
    assert NEEDS.search(line) and "ulimit -f" in line, line
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


CHECKPOINT_CHILD = """
from pathlib import Path
import torch
from depthkit.checkpoints import save_checkpoint
path = Path(sys.argv[4])
try:
    save_checkpoint(path, {"model": {"w": torch.arange(200_000, dtype=torch.float32)}, "epoch": 2})
except OSError as err:
    print("OSError", err)
"""


def test_a_checkpoint_that_does_not_fit_names_the_file_and_its_size_and_keeps_the_old_one(tmp_path, cli_env):
    """Catches: ``torch.save`` writing the file itself (on a full disk torch reports ``unexpected
    pos N vs M``, not the space needed) -- the error must name the file and the bytes it needs, and
    the previous checkpoint must stay as it was."""
    from depthkit.checkpoints import load_checkpoint, save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": __import__("torch").zeros(3)}, "model_name": "x", "stage": "nyu",
                           "epoch": 1})
    before = path.read_bytes()
    done = run_limited(400_000, ["-c", CHECKPOINT_CHILD, str(path)], cli_env)  # the new one is ~800 KB
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("OSError") and f"{path} could not be written" in done.stdout, done.stdout
    assert "it needs about 80" in done.stdout and "unexpected pos" not in done.stdout, done.stdout
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# --------------------------------------------------------------------------------------------
# 4. A real full disk: a small tmpfs (root only)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size)``: a fresh tmpfs of ``size`` (``"64k"``, ``"1m"``, ...), unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("a real tmpfs needs root to mount; the RLIMIT_FSIZE tests above cover the same writers")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_up(path: Path) -> None:
    """Write ``path`` until the disk holding it has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def tmpfs_env(cli_env: dict, folder: Path) -> dict:
    """A CLI environment whose data and runs folders are on ``folder``."""
    (folder / "nyu_splits.json").write_bytes((Path(cli_env["DEPTHKIT_DATA"]) / "nyu_splits.json").read_bytes())
    return dict(cli_env, DEPTHKIT_DATA=str(folder), DEPTHKIT_RUNS=str(folder / "runs"))


def new_files(folder: Path, before: set[str]) -> set[str]:
    """Files under ``folder`` that were not in ``before`` (a run folder's ``.lock`` is kept by design)."""
    now = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    return now - before


def real_disk_args(command: str) -> list[str]:
    """``python -m depthkit`` arguments of ``command`` on the smoke profile (train: one LR-ASPP epoch on NYU)."""
    return [command, "--profile", "smoke"] + (["--model", "lraspp", "--stage", "nyu", "--epochs", "1"]
                                              if command == "train" else [])


def assert_mat_did_not_fit(line: str, folder: Path) -> None:
    """``line`` says the smoke .mat (52 MB) did not fit on ``folder``'s disk and what it needs."""
    assert f"{folder}/synthetic/smoke/nyu_depth_v2_labeled.mat could not be written: the disk is full" in line, line
    assert NEEDS.search(line), line


@pytest.mark.slow
@pytest.mark.parametrize("command", ["prepare", "train"])
def test_prepare_and_train_on_a_real_disk_full_to_the_last_byte(command, tmpfs, cli_env):
    """Catches, on a real tmpfs (data and runs folders) without one free byte: the segfault after
    h5py's ``errno = 28`` message, a ``.tmp`` left behind, a line that does not name the file (the
    run folder's lock meets the full disk first)."""
    folder = tmpfs("64k")
    env = tmpfs_env(cli_env, folder)
    fill_up(folder / "filler")
    assert shutil.disk_usage(folder).free == 0
    before = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "-m", "depthkit", *real_disk_args(command)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert_mat_did_not_fit(error_line(done, command), folder)
    assert not new_files(folder, before), new_files(folder, before)


REAL_DISK_CHILD = """
from depthkit.cli import main
for folder, command, args in ARGS["runs"]:
    os.environ.update(DEPTHKIT_DATA=folder, DEPTHKIT_RUNS=folder + "/runs")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(args)  # what python -m depthkit exits with
    report(folder=folder, command=command, status=status, stderr=stderr.getvalue(), files=files(folder))
"""


@pytest.mark.slow
def test_prepare_and_train_on_real_small_disks(tmpfs, cli_env):
    """Catches, on a real tmpfs of each size the issue tried (64 kB, 1 MB, 8 MB, 24 MB) holding the
    data and runs folders: ``prepare`` and ``train`` crashing (status -11) once HDF5 meets the
    full disk, a ``.tmp`` left, h5py's message. The CLI's ``main`` for each, in one process that
    must end by itself."""
    runs = []
    for size in ("64k", "1m", "8m", "24m"):
        folder = tmpfs(size)
        tmpfs_env(cli_env, folder)
        runs += [(str(folder), command, real_disk_args(command)) for command in ("prepare", "train")]
    records = run_child(REAL_DISK_CHILD, {"runs": runs}, cli_env, timeout=600)
    assert [(r["folder"], r["command"]) for r in records] == [run[:2] for run in runs]
    for record in records:
        lines = record["stderr"].strip().splitlines()
        assert record["status"] == 1 and len(lines) == 1, record
        assert lines[0].startswith(f"depthkit {record['command']}: error: "), lines
        assert_mat_did_not_fit(lines[0], Path(record["folder"]))
        assert [f for f in record["files"] if not f.endswith("/.lock")] == ["nyu_splits.json"], record["files"]


@pytest.mark.slow
def test_train_on_a_real_disk_that_fills_at_the_checkpoint(tmpfs, cli_env, smoke_prepared):
    """Catches: a full disk met by a checkpoint (39 MB for LR-ASPP with its optimizer) ending ``train``
    without the one line or with a ``.tmp`` left. 8 MB hold the caches this run builds, not a checkpoint."""
    folder = tmpfs("8m")
    env = tmpfs_env(cli_env, folder)
    with_synthetic(env, smoke_prepared)
    before = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "-m", "depthkit", "train", "--model", "lraspp", "--stage", "nyu",
                           "--profile", "smoke", "--epochs", "1", "--max-steps", "1"], env=env, capture_output=True,
                          text=True, timeout=600)
    line = error_line(done, "train")
    assert re.search(r"lraspp_nyu/(best|last)\.pt could not be written: the disk is full", line), line
    assert new_files(folder, before) == {f"cache/{smoke_prepared.nyu_cache.name}",
                                         f"cache/{smoke_prepared.diw_caches['DIW_test'].name}"}


def test_the_reserved_space_is_the_writers_own_while_another_fills_the_disk(tmpfs, cli_env):
    """Catches: a space check alone (``statvfs``), or a reservation that h5py's ``"w"`` mode throws
    away by truncating the file: another writer fills the disk after the check, and HDF5 meets the
    full disk (status -11 at close). The file reserved first is written whole though the disk is full."""
    folder = tmpfs("1m")
    code = """
import numpy as np
from depthkit.files import atomic_write, hdf5_need, hdf5_writer
folder = Path(ARGS["folder"])
rows = np.arange(60_000, dtype=np.int64)  # 480 KB

def write(tmp):
    with hdf5_writer(tmp, hdf5_need(rows.nbytes)) as f:
        fd = os.open(folder / "other_writer", os.O_WRONLY | os.O_CREAT)  # another writer takes every byte left
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        report(free_while_writing=os.statvfs(folder).f_bavail)
        f.create_dataset("rows", data=rows)

atomic_write(folder / "rows.h5", write)
report(done=True)
"""
    records = run_child(code, {"folder": folder}, cli_env)
    assert records == [{"free_while_writing": 0}, {"done": True}]
    with h5py.File(folder / "rows.h5", "r") as f:
        assert np.array_equal(f["rows"][()], np.arange(60_000))


def test_the_line_gives_bytes_where_the_need_and_the_free_space_would_read_alike(tmpfs):
    """Catches: "it needs about 1.0 MB; 1.0 MB free", which tells the user nothing: where the two
    round alike, both are printed in bytes. A real disk whose free space does not move (a tmpfs)."""
    import errno

    from depthkit.files import disk_full_error

    folder = tmpfs("1m")
    free = shutil.disk_usage(folder).free
    text = str(disk_full_error(folder / "a.h5", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), need=free + 100))
    assert f"(it needs about {free + 100:,} bytes; {free:,} bytes free on the disk of {folder})" in text, text
    text = str(disk_full_error(folder / "a.h5", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), need=3 * free))
    assert "(it needs about 3.1 MB; 1.0 MB free" in text, text
