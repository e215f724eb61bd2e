"""Writing files safely: a reader (or a crash) never sees half a file over a good one.

Temporary files are named ``.<name>.<host>-<pid>-<random>.tmp`` beside their target. A process
killed while writing leaves one behind; the next process that writes into the same folder removes
the temporary files of writers that are gone (same host, process no longer alive) and any older
than :data:`STALE_TMP_AGE_S`.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

STALE_TMP_AGE_S = 3600.0  # a temporary file untouched this long belongs to no live writer
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}  # EFBIG: over `ulimit -f`
_NO_ROOM = {errno.ENOSPC: "the disk is full", getattr(errno, "EDQUOT", errno.ENOSPC): "the disk quota is used up",
            errno.EFBIG: "the file is larger than this process may write (ulimit -f)"}
# mkstemp's 8 random characters, after "<host>-<pid>-" (none in files of older depthkit versions)
_TMP_NAME = re.compile(r"^\..+\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-)?[a-z0-9_]{8}\.tmp$")
_swept: set[str] = set()  # folders already cleaned of stale temporary files by this process
_sweep_lock = threading.Lock()


def host_tag() -> str:
    """Six hex digits naming this machine in temporary-file names (pids mean nothing on another host)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (a reused pid counts as alive: the safe side)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def is_stale_tmp(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_write` whose writer is gone."""
    match = _TMP_NAME.match(path.name)
    if match is None:
        return False
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:  # already gone
        return False
    if age > STALE_TMP_AGE_S:
        return True
    return match["host"] == host_tag() and not pid_alive(int(match["pid"]))


def remove_stale_tmp(folder: str | Path) -> list[Path]:
    """Delete the stale temporary files of :func:`atomic_write` in ``folder``; return what was removed."""
    removed = []
    try:
        entries = [Path(e.path) for e in os.scandir(folder) if e.name.endswith(".tmp") and e.name.startswith(".")]
    except OSError:
        return removed
    for path in entries:
        if is_stale_tmp(path):
            try:
                path.unlink()
                removed.append(path)
            except OSError:  # another process removed it first, or we may not: leave it
                pass
    return removed


def _sweep_once(folder: Path) -> None:
    """Remove stale temporary files in ``folder`` the first time this process writes there."""
    key = str(folder.resolve())
    with _sweep_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_tmp(folder)


def _human_bytes(n: int) -> str:
    """``1234567`` -> ``'1.2 MB'``."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def free_space(folder: Path) -> str:
    """The free space of the disk holding ``folder``, in words."""
    try:
        return _human_bytes(shutil.disk_usage(folder).free)
    except OSError:
        return "an unknown amount"


def space_errno(err: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EFBIG when ``err`` says a write found no room, else None.

    Besides ``OSError``, h5py reports failed writes as ``RuntimeError``s whose text holds
    ``errno = 28`` (often only at flush or close), and ``torch.save`` on a full disk as
    ``RuntimeError: [enforce fail at inline_container.cc:...] . unexpected pos N vs M``.
    """
    if isinstance(err, OSError) and err.errno in _DISK_FULL:
        return err.errno
    if isinstance(err, (OSError, RuntimeError)):
        found = re.search(r"errno = (\d+)", str(err))
        if found and int(found[1]) in _DISK_FULL:
            return int(found[1])
        if isinstance(err, RuntimeError) and re.search(r"unexpected pos \d+ vs \d+|write failed", str(err)):
            return errno.ENOSPC
    return None


def _disk_full_error(path: Path, err: BaseException, need: int | None = None) -> OSError:
    """The one error for a file that a full disk, a quota or a file-size limit kept from being written."""
    code = space_errno(err) or errno.ENOSPC
    needs = f"it needs about {_human_bytes(need)}; " if need else ""
    return OSError(code, f"{path} could not be written: {_NO_ROOM.get(code, 'the disk is full')} ({needs}"
                         f"{free_space(path.parent)} free on the disk of {path.parent}); nothing was left behind "
                         f"and any previous {path.name} is unchanged. "
                         f"{'Raise the limit' if code == errno.EFBIG else 'Free some space (old runs, caches)'} "
                         f"and run the command again")


def atomic_write(path: str | Path, write: Callable[[Path], None], need: int | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on one file system, so ``path`` holds either the old or the new
    content, never a mix; if ``write`` fails, the temporary file is removed and ``path`` is untouched.
    A full disk (or quota, or file-size limit) is reported as one ``OSError`` naming ``path``,
    the space the file needs (``need`` bytes, when given) and the free space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{host_tag()}-{os.getpid()}-", suffix=".tmp",
                                    dir=path.parent)
    except OSError as err:
        if err.errno in _DISK_FULL:
            raise _disk_full_error(path, err, need) from err
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes private files; give the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if space_errno(err):
            raise _disk_full_error(path, err, need) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), need=len(data))


def _close_quietly(f) -> None:
    """Close an h5py file after a failure; a failed close is retried once (h5py then lets go of the file)."""
    for _ in range(2):
        try:
            f.close()
            return
        except Exception:  # the first error is the one that matters
            pass


@contextmanager
def hdf5_writer(path: Path, **kwargs) -> Iterator:
    """``h5py.File(path, "w")`` that is flushed and closed explicitly, so that every write error raises here.

    h5py reports some failed writes (a full disk) only when the file is flushed or closed, and
    inside a destructor it prints and swallows them; closing explicitly, also after an error,
    keeps them from passing unnoticed and the interpreter from crashing in h5py's clean-up.
    """
    import h5py

    f = h5py.File(path, "w", **kwargs)
    try:
        yield f
        f.flush()
    except BaseException:
        _close_quietly(f)
        raise
    try:
        f.close()
    except BaseException:
        _close_quietly(f)
        raise
