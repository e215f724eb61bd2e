"""Issue #19: nothing silently wrong. Real faults on the paths users run: a size-limited disk while
caching and checkpointing (RLIMIT_FSIZE in a subprocess: the kernel's EFBIG on the real write
path), a real SIGINT and SIGKILL to ``python -m depthkit train``, a diverging run, and the checks
``fit`` wires in, tested through ``fit`` and the CLI."""
from __future__ import annotations

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
import torch

from depthkit import models
from depthkit.cli import main
from depthkit.data import load_diw_cache, load_nyu_cache, prepare_nyu
from depthkit.runs import ConfigChangedError

# A child that caps the size of every file it writes (no root needed) and then runs its script or
# ``python -m depthkit``. SIGXFSZ is ignored, so a write past the cap fails with EFBIG (errno 27) as
# on a full disk (ENOSPC, errno 28) instead of killing the process.
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


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with status 1 and said so in one line holding every fragment, without a traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_same_cache(a: dict, b: dict) -> None:
    """Two opened caches hold the same arrays (image paths compared by name: the data folders differ)."""
    assert a.keys() == b.keys()
    for key in a.keys() - {"fingerprint"}:
        if key == "paths":
            assert [Path(p).name for p in a[key]] == [Path(p).name for p in b[key]]
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
        else:
            assert a[key] == b[key], key


# --------------------------------------------------------------------------------------------
# 1. A full disk while caching and checkpointing
# --------------------------------------------------------------------------------------------
@pytest.fixture
def data_env(cli_env, smoke_prepared, tmp_path) -> dict:
    """A CLI environment whose data folder holds the smoke profile's synthetic files but no cache yet."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "nyu_splits.json").write_bytes((Path(cli_env["DEPTHKIT_DATA"]) / "nyu_splits.json").read_bytes())
    (data / "synthetic").symlink_to(smoke_prepared.root.parent, target_is_directory=True)
    return dict(cli_env, DEPTHKIT_DATA=str(data))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["rows", "close"])
def test_prepare_on_a_size_limited_disk_fails_in_one_line_and_the_next_run_builds_a_clean_cache(
        data_env, smoke_prepared, where):
    """Catches: an incomplete cache renamed into place, a temporary file left behind, h5py's own
    message (or a crash in its clean-up) instead of one line naming the file, the space it needs and
    the free space. ``rows``: the cap falls among the image rows; ``close``: just short of the
    whole file, where h5py reports the failure only when the file is flushed or closed."""
    cache_dir = Path(data_env["DEPTHKIT_DATA"]) / "cache"
    clean = {"nyu": smoke_prepared.nyu_cache, "diw": smoke_prepared.diw_caches["DIW_test"]}
    prepare = [sys.executable, "-m", "depthkit", "prepare", "--profile", "smoke"]
    for kind, other in (("nyu", None), ("diw", "nyu")):  # DIW: its cache fails while NYU's is in place
        if other is not None:
            (cache_dir / clean[kind].name).unlink()
        size = clean[kind].stat().st_size
        done = run_limited(size // 2 if where == "rows" else size - 64, prepare[3:], data_env)
        line = assert_one_line_error(done, f"depthkit prepare: error: {cache_dir / clean[kind].name} could not be "
                                           "written", "it needs about", "free on the disk of", "ulimit -f")
        assert "errno" not in line and "h5py" not in line
        left = sorted(p.name for p in cache_dir.iterdir())
        assert left == ([] if other is None else [clean[other].name]), f"left behind after the failure: {left}"
        done = subprocess.run(prepare, env=data_env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sorted(p.name for p in cache_dir.iterdir()) == sorted(p.name for p in clean.values())
        for name, load in (("nyu", load_nyu_cache), ("diw", load_diw_cache)):
            assert_same_cache(load(cache_dir / clean[name].name, mmap=False), load(clean[name], mmap=False))


def small_nyu(path: Path, n: int = 5) -> Path:
    """An NYU-layout .mat (HDF5) of ``n`` random 16x12 frames with depths of 1-5 m."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 255, (n, 3, 16, 12), dtype=np.uint8)
        f["depths"] = rng.uniform(1, 5, (n, 16, 12)).astype(np.float32)
    return path


def _drop_checksums(path: Path) -> None:
    """Make ``path`` look like a cache an older depthkit renamed into place: version 1, no checksums."""
    with h5py.File(path, "r+") as f:
        f.attrs["cache_version"] = 1
        del f.attrs["checksums"]


def _truncate(path: Path) -> None:
    """Cut the last quarter of ``path`` off, as a disk that filled up would."""
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size * 3 // 4)


def _zero_depths(path: Path) -> None:
    """A cache whose rows an interrupted write left as zeros, but which still says it is complete."""
    with h5py.File(path, "r+") as f:
        f.attrs["cache_version"] = 1
        f["depths"][2:] = 0


@pytest.mark.parametrize("damage, notice", [(_drop_checksums, "older depthkit"), (_truncate, "damaged"),
                                            (_zero_depths, "older depthkit")])
def test_a_cache_from_an_older_version_or_damaged_is_rebuilt_with_a_notice(tmp_path, damage, notice):
    """Catches: a cache accepted on its fingerprint alone -- one renamed into place by an older
    depthkit (which did not verify its rows) or cut short is rebuilt, with one warning naming it."""
    mat = small_nyu(tmp_path / "nyu_depth_v2_labeled.mat")
    cache = prepare_nyu(mat, cache_dir=tmp_path / "cache", size=8)
    good = load_nyu_cache(cache, mmap=False)
    damage(cache)
    with pytest.warns(UserWarning, match=rf"{cache.name}: .*{notice}.*; rebuilding it") as caught:
        assert prepare_nyu(mat, cache_dir=tmp_path / "cache", size=8) == cache
    assert len(caught) == 1
    assert_same_cache(load_nyu_cache(cache, mmap=False), good)
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


CHECKPOINT_CHILD = """
from pathlib import Path
import torch
from depthkit.train import save_checkpoint
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
    from depthkit.train import load_checkpoint, save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "model_name": "x", "stage": "nyu", "epoch": 1})
    before = path.read_bytes()
    done = run_limited(400_000, ["-c", CHECKPOINT_CHILD, str(path)], cli_env)  # the new one is ~800 KB
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("OSError") and f"{path} could not be written" in done.stdout, done.stdout
    assert "it needs about 80" in done.stdout and "unexpected pos" not in done.stdout, done.stdout
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
