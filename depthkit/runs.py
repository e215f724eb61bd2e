"""Run folders that stay sound: one writer at a time, writable before the work starts, resumed only as configured.

* :func:`run_dir` - where a profile's run of one model and stage lives: ``runs/<profile>/<model>_<stage>``.
* :func:`lock_run_folder` - a second process training into the same folder is refused at once,
  with the pid that holds it; a lock left by a dead process does not block (the kernel releases
  ``flock`` locks when their process dies).
* :func:`check_writable` - fail in a second, not after an epoch, when a folder cannot be written.
* :func:`compare_config` / :func:`check_resume_config` - resuming ``last.pt`` under another
  configuration is refused with the list of differences; more epochs are allowed and recorded.
* :func:`check_has_valid_depth` - a split with no usable target fails before training, by name.
* :func:`retire_stale_run` - a run trained by other code (:mod:`depthkit.fingerprint`) is moved
  aside and started afresh, with one line that says what changed; never resumed into a mix.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from depthkit import distributed
from depthkit.config import Profile, repo_root, runs_dir
from depthkit.files import space_errno
from depthkit.fingerprint import code_fingerprint, describe_changes

LOCK_NAME = ".lock"
# Configuration keys that may change between a run and its resumption: they do not change the result
# (device, worker processes), or they are the record of earlier extensions. A run's epochs are its
# resolved ``frozen_epochs`` and ``epochs`` (:func:`depthkit.train.run_config`), compared as such.
RESUMABLE_KEYS = frozenset({"device", "num_workers", "epochs_extended",
                            "weights_source"})  # weights_source: the saved one is kept

_held: dict[str, int] = {}  # run folders locked by this process -> nesting depth
_held_lock = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


def display_path(path: str | Path) -> str:
    """``path`` as it reads in a committed file: relative to the checkout, or under ``$DEPTHKIT_RUNS``; else as is."""
    path = Path(path).resolve()
    for root, label in ((repo_root(), ""), (runs_dir().resolve(), "$DEPTHKIT_RUNS/")):
        if path.is_relative_to(root):
            return label + path.relative_to(root).as_posix()
    return str(path)


def run_dir(profile: Profile, model_name: str, stage: str) -> Path:
    """Where a profile's run of one model and stage keeps its checkpoints: ``runs/<profile>/<model>_<stage>``.

    A run with a training seed of its own (``Profile.train_seed``) lives in ``runs/<profile>-seed<N>/``.
    """
    folder = profile.name if profile.train_seed is None else f"{profile.name}-seed{profile.train_seed}"
    return runs_dir() / folder / f"{model_name}_{stage}"


class RunFolderLockedError(RuntimeError):
    """Another live process is writing into the run folder."""


class ConfigChangedError(ValueError):
    """``last.pt`` was written under another configuration than the one asked for now."""


# --------------------------------------------------------------------------------------------
# One writer per run folder
# --------------------------------------------------------------------------------------------
def _lock_holder(lock_file: Path) -> str:
    """The pid written into ``lock_file`` by its holder, in words."""
    try:
        pid = lock_file.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def _try_flock(fd: int, folder: Path) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without waiting: True when taken, False when held elsewhere."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as err:  # e.g. a network or FUSE file system without locks
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        warnings.warn(f"{folder}: cannot lock the run folder ({err.strerror}); make sure no other "
                      f"process trains into it at the same time.", stacklevel=4)
        return True


@contextlib.contextmanager
def lock_run_folder(path: str | Path) -> Iterator[Path]:
    """Hold ``path/.lock`` (``fcntl.flock``, our pid inside) for the block; refuse when a live process holds it."""
    folder = Path(path)
    key = str(folder.resolve())
    with _held_lock:
        if key in _held:  # re-entrant within one process (the CLI and fit may both lock)
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield folder
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / LOCK_NAME
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_flock(fd, folder):
            raise RunFolderLockedError(
                f"{folder} is in use by {_lock_holder(lock_file)} (it holds {lock_file}): wait for that run to "
                f"finish or stop it, or train into another folder with --out")
        try:  # our pid, for the message of a process refused; the flock alone is the lock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as err:  # a full disk: the lock holds all the same, the writers after it say so in one line
            if space_errno(err) is None:
                raise
        with _held_lock:
            _held[key] = 1
        try:
            yield folder
        finally:
            with _held_lock:
                _held.pop(key, None)
    finally:
        os.close(fd)  # closing the descriptor releases the lock; the file stays (deleting it would race)


def guard_run_folder(func: F) -> F:
    """Decorator for ``fit``-like functions: check that ``out_dir`` is writable, then hold its lock during the call.

    Under torchrun only rank 0 writes, so only rank 0 takes the lock.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out_dir = signature.bind(*args, **kwargs).arguments["out_dir"]
        check_writable(out_dir)
        with lock_run_folder(out_dir) if distributed.is_main() else contextlib.nullcontext():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Writable folders
# --------------------------------------------------------------------------------------------
def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and write and delete a file there; raise an ``OSError`` that says what to do."""
    folder = Path(folder)
    hint = ("fix its permissions, or choose another folder (--out, or the environment variables "
            "DEPTHKIT_RUNS / DEPTHKIT_DATA / DEPTHKIT_FIGURES)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise type(err)(f"cannot create the folder {folder} ({err.strerror or err}): {hint}") from err
    try:
        fd, name = tempfile.mkstemp(prefix=".depthkit-write-check-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise type(err)(f"cannot write in the folder {folder} ({err.strerror or err}): {hint}") from err
    return folder


# --------------------------------------------------------------------------------------------
# Resuming under the same configuration
# --------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Tuples as lists (a configuration read back from JSON has lists), recursively."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def compare_config(saved: dict, now: dict) -> list[str]:
    """The differences between a run's saved configuration and the one asked for now, one line each.

    Keys in :data:`RESUMABLE_KEYS` are ignored, and so is a key that only one side has (written by
    another depthkit version). More ``epochs`` than before is allowed: not a difference.
    """
    lines = []
    for key in sorted(set(saved) & set(now) - RESUMABLE_KEYS):
        before, after = _plain(saved[key]), _plain(now[key])
        if before == after:
            continue
        if key == "code_fingerprint":  # the profile's fields are compared one by one, as keys of their own
            changes = describe_changes(before, after, ignore_profile=True)
            if changes:
                lines.append(f"code: {', '.join(changes)}")
            continue
        if key == "epochs" and isinstance(before, int) and isinstance(after, int) and after > before:
            continue
        lines.append(f"{key}: {before!r} then, {after!r} now")
    return lines


def check_resume_config(saved: dict | None, now: dict, last: str | Path) -> dict:
    """Refuse to resume ``last`` under another configuration; return ``now``, with more epochs recorded.

    The returned dict is what the next checkpoint should store as its ``config``: when the run
    was extended, ``epochs_extended`` lists every extension as ``{"from": old, "to": new}``; the
    saved ``weights_source`` (where the run's first weights came from) is kept.
    """
    saved = saved or {}
    differences = compare_config(saved, now)
    if differences:
        raise ConfigChangedError(
            f"{last} was written under another configuration ({'; '.join(differences)}): resume with the "
            f"same settings, or delete {Path(last).parent} (or use another --out) to start a new run")
    config = dict(now, epochs_extended=list(saved.get("epochs_extended", [])))
    if "weights_source" in saved:  # the run's first weights: a resumed run continues from the saved ones
        config["weights_source"] = saved["weights_source"]
    before, after = saved.get("epochs"), now.get("epochs")
    if isinstance(before, int) and isinstance(after, int) and after > before:
        config["epochs_extended"].append({"from": before, "to": after})
    return config


# --------------------------------------------------------------------------------------------
# Data that can be learnt from
# --------------------------------------------------------------------------------------------
def check_has_valid_depth(data: Any, name: str, chunk: int = 64) -> None:
    """Raise ``ValueError`` naming ``name`` when ``data`` is empty or (with depths) has no valid depth pixel.

    ``data`` is a :class:`depthkit.data.loader.DepthData`; its depths are read ``chunk`` rows at a
    time and the check stops at the first valid pixel. A split without depths (DIW) needs rows only.
    """
    label = f"{name} ({data.name})" if getattr(data, "name", "") and data.name != name else name
    if len(data) == 0:
        raise ValueError(f"the split {label} holds no images: check the data files and the split "
                         f"(python -m depthkit prepare prints what was found)")
    depths = getattr(data, "depths", None)
    if depths is None:
        return
    for start in range(0, len(data), chunk):
        d = depths[start:start + chunk].float()
        if bool(((d > 0) & d.isfinite()).any()):
            return
    raise ValueError(f"the split {label} has no valid depth pixel in its {len(data)} images (every depth is 0, "
                     f"negative or not finite): its depth maps are missing or broken; check the source file "
                     f"and rebuild the cache (delete data/cache and run python -m depthkit prepare)")


# --------------------------------------------------------------------------------------------
# Runs trained by other code
# --------------------------------------------------------------------------------------------
STALE_TAG = ".stale-"  # a run moved aside lives in the sibling folder <name>.stale-<its fingerprint>


def trained_fingerprint(out_dir: str | Path) -> tuple[Path, dict | None] | None:
    """``(checkpoint, its code fingerprint or None)`` from ``out_dir``'s ``last.pt`` (else ``best.pt``); None without one.

    A file that cannot be read or is not a depthkit checkpoint gives None too: ``fit`` reports it.
    """
    import torch

    for name in ("last.pt", "best.pt"):
        path = Path(out_dir) / name
        if path.is_file():
            try:  # mmap: the weights are not read, only the small config
                state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
            except Exception:
                return None
            if not (isinstance(state, dict) and {"model", "model_name", "stage", "epoch"} <= set(state)):
                return None  # not a depthkit checkpoint: fit refuses it in its own words
            return path, (state.get("config") or {}).get("code_fingerprint")
    return None


def retire_stale_run(out_dir: str | Path, profile: Any, strict: bool = False) -> Path | None:
    """Move a run aside when its checkpoint was trained by other code; return where its files went (else None).

    The checkpoint's code fingerprint is compared with the working tree's. ``strict`` (``reproduce``)
    compares the profile's settings too, so a changed profile retrains from scratch; otherwise they
    are left to :func:`check_resume_config` (more epochs extend a run, other changes are refused).
    The files move to ``<out_dir>.stale-<old fingerprint>`` (nothing is deleted) and one line says
    why; a run of the same code is left alone, to be resumed or reused.
    """
    out_dir, aside = Path(out_dir), None
    if distributed.is_main() and out_dir.is_dir():
        with lock_run_folder(out_dir):  # not under a run that is training now
            found = trained_fingerprint(out_dir)
            if found is not None:
                _, old = found
                changes = describe_changes(old, code_fingerprint(profile), ignore_profile=not strict)
                if changes:
                    aside = _move_aside(out_dir, (old or {}).get("fingerprint", "unknown"))
                    shown = f"{out_dir.parent.name}/{out_dir.name}"  # no machine path in a notebook's output
                    print(f"run {shown}: trained by other code ({'; '.join(changes)}); moved to {aside.name}, "
                          f"retraining", flush=True)
    distributed.barrier()
    return aside


def _move_aside(out_dir: Path, tag: str) -> Path:
    """Move every file of ``out_dir`` but its lock into a new sibling folder ``<name>.stale-<tag>[-N]``."""
    aside, n = out_dir.with_name(f"{out_dir.name}{STALE_TAG}{tag}"), 1
    while aside.exists():
        n += 1
        aside = out_dir.with_name(f"{out_dir.name}{STALE_TAG}{tag}-{n}")
    aside.mkdir()
    for entry in out_dir.iterdir():
        if entry.name != LOCK_NAME:  # the lock stays: this process holds it
            os.replace(entry, aside / entry.name)
    return aside
