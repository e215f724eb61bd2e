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
from pathlib import Path
from typing import Callable

STALE_TMP_AGE_S = 3600.0  # a temporary file untouched this long belongs to no live writer
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
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


def _free_space(folder: Path) -> str:
    """The free space of the disk holding ``folder``, in words."""
    try:
        return _human_bytes(shutil.disk_usage(folder).free)
    except OSError:
        return "an unknown amount"


def _is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT, or torch's own writer failing (it reports a full disk as a RuntimeError)."""
    if isinstance(err, OSError):
        return err.errno in _DISK_FULL
    return isinstance(err, RuntimeError) and "write failed" in str(err)


def _disk_full_error(path: Path, err: BaseException) -> OSError:
    """The one error for a file that a full disk (or quota) kept from being written."""
    code = err.errno if isinstance(err, OSError) and err.errno else errno.ENOSPC
    return OSError(code, f"{path} could not be written: the disk is full or over quota "
                         f"({_free_space(path.parent)} free on the disk of {path.parent}); the previous "
                         f"{path.name} is unchanged. Free some space (old runs, caches) and run the command again")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on one file system, so ``path`` holds either the old or the new
    content, never a mix; if ``write`` fails, the temporary file is removed and ``path`` is untouched.
    A full disk is reported as an ``OSError`` naming ``path`` and the free space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{host_tag()}-{os.getpid()}-", suffix=".tmp",
                                    dir=path.parent)
    except OSError as err:
        if err.errno in _DISK_FULL:
            raise _disk_full_error(path, err) from err
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
        if _is_disk_full(err):
            raise _disk_full_error(path, err) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
