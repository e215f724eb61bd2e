"""Writing files safely: a reader (or a crash) never sees half a file over a good one.

A full disk (or quota, or ``ulimit -f``) ends a write with one ``OSError`` naming the file and the
space it needs, and nothing left behind. HDF5 files need more: once a write has failed inside the
HDF5 library, closing or freeing the file can crash the process (measured: a segfault, status -11),
so HDF5 must never meet the full disk. :func:`hdf5_writer` reserves the file's whole size first
(``os.posix_fallocate``: a missing byte is a clean ``OSError`` before HDF5 writes anything), and
HDF5 writes through a Python file object that keeps any failed write to itself (so a failure
that still comes, past the reservation or on a file system that cannot reserve, is raised after a
clean close).

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


def _need_and_free(need: int | None, folder: Path) -> tuple[str, str]:
    """The bytes a file needs and the free space of ``folder``'s disk, in words; in bytes where the words would match."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ("" if not need else _human_bytes(need)), "an unknown amount"
    if need and _human_bytes(need) == _human_bytes(free):  # "needs 51.7 MB; 51.7 MB free" would say nothing
        return f"{need:,} bytes", f"{free:,} bytes"
    return ("" if not need else _human_bytes(need)), _human_bytes(free)


def disk_full_error(path: Path, err: BaseException, need: int | None = None) -> OSError:
    """The one error for a file that a full disk, a quota or a file-size limit kept from being written."""
    code = space_errno(err) or errno.ENOSPC
    need_text, free_text = _need_and_free(need, path.parent)
    needs = f"it needs about {need_text}; " if need else ""
    return OSError(code, f"{path} could not be written: {_NO_ROOM.get(code, 'the disk is full')} ({needs}"
                         f"{free_text} free on the disk of {path.parent}); nothing was left behind "
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
            raise disk_full_error(path, err, need) from err
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
        tmp.unlink(missing_ok=True)  # first: the free space the error reports is what the user has
        if space_errno(err):
            raise disk_full_error(path, err, need) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), need=len(data))


# Room for HDF5's metadata beyond the datasets' bytes, measured with h5py 3.16 / HDF5 2.0 (the test
# of hdf5_need checks each writer's real file against it): a file's superblock, object headers and
# attributes stay under 64 KB (a cache's, with its checksums and fingerprint: 6.5 KB); a chunked
# dataset's B-tree adds about 64 bytes per chunk (the NYU .mat: 185 KB for 2 x 1,449 chunks).
# What a file does not use of it is freed when the file is closed.
HDF5_MARGIN = 64 * 1024
HDF5_BYTES_PER_CHUNK = 128


def hdf5_need(data_bytes: int, chunks: int = 0) -> int:
    """The bytes to reserve for an HDF5 file whose datasets hold ``data_bytes`` in ``chunks`` chunks (0: contiguous)."""
    return data_bytes + HDF5_MARGIN + HDF5_BYTES_PER_CHUNK * chunks + data_bytes // 1024


def _check_space(path: Path, size: int) -> None:
    """Where space cannot be reserved: raise ENOSPC or EFBIG when ``size`` bytes do not fit (free space, ``ulimit -f``)."""
    try:
        import resource
    except ImportError:  # Windows: no file-size limit to check
        resource = None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1
    if resource and limit != resource.RLIM_INFINITY and size > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    if shutil.disk_usage(path.parent).free < size:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def reserve_space(fd: int, path: Path, size: int) -> None:
    """Claim ``size`` bytes of disk for the open file ``fd`` (``path``) before anything is written into it.

    ``os.posix_fallocate`` raises ENOSPC, EDQUOT or EFBIG (past ``ulimit -f``) at once when the
    space is not there, and writes within the reserved bytes cannot then find the disk full. A
    file system or platform that cannot reserve gets a check of the free space and the limit instead.
    """
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows
        _check_space(path, size)
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise OSError(err.errno, err.strerror, str(path)) from None
        _check_space(path, size)


def reserve_file(path: str | Path, size: int) -> Path:
    """Create ``path`` holding ``size`` zero bytes that are reserved on disk, for a memory map to fill.

    A write into a memory-mapped page that the disk has no room for kills the process (SIGBUS);
    reserved first, the map cannot meet a full disk. No room is the one ``OSError`` of
    :func:`atomic_write` (the file named, the bytes it needs), and no file is left.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise (disk_full_error(path, err, size) if space_errno(err) else err) from err
    try:
        reserve_space(fd, path, size)
    except OSError as err:
        path.unlink(missing_ok=True)
        raise (disk_full_error(path, err, size) if space_errno(err) else err) from err
    finally:
        os.close(fd)
    return path


class _KeptFailures:
    """The file object HDF5 writes through (h5py's ``fileobj`` driver): a failed write is kept, never passed to HDF5.

    HDF5 believes every write succeeded, so it flushes and closes cleanly; the first ``OSError``
    is in :attr:`error`, and nothing is written after it (the file is thrown away). Its end of
    file is the end of what was written, not the reserved size (HDF5 creates only an empty file).
    """

    def __init__(self, fd: int) -> None:
        self.fd, self.pos, self.end, self.error = fd, 0, 0, None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to ``offset`` from the start, the current position or the end of what was written."""
        self.pos = offset + {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.end}[whence]
        return self.pos

    def tell(self) -> int:
        """The current position."""
        return self.pos

    def read(self, size: int) -> bytes:
        """``size`` bytes from the current position (zeros past the end, as HDF5's own driver reads)."""
        try:
            os.lseek(self.fd, self.pos, os.SEEK_SET)
            data = os.read(self.fd, size)
        except OSError as err:  # kept too: HDF5 gets zeros, the caller this error after the close
            self.error, data = self.error or err, b""
        self.pos += size
        return data.ljust(size, b"\0")

    def write(self, data) -> int:
        """Write all of ``data`` at the current position, or keep the error and write nothing more."""
        view, done = memoryview(data).cast("B"), 0
        while self.error is None and done < len(view):
            try:
                os.lseek(self.fd, self.pos + done, os.SEEK_SET)
                written = os.write(self.fd, view[done:])
            except OSError as err:
                self.error = err
                break
            if written == 0:  # no progress, no error: treat as a full disk rather than loop
                self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += written
        self.pos += len(view)
        self.end = max(self.end, self.pos)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        """Cut the file at ``size`` (HDF5 does at close: the unused part of the reservation is freed)."""
        self.end = self.pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, self.end)
            except OSError as err:
                self.error = err
        return self.end

    def flush(self) -> None:
        """Nothing to flush: every write went to the file at once."""


@contextmanager
def hdf5_writer(path: Path, need: int, mode: str = "w", **kwargs) -> Iterator:
    """``h5py.File(path, mode, **kwargs)`` with ``need`` bytes reserved on disk first; closed on leaving.

    A full disk (quota, ``ulimit -f``) raises an ``OSError`` before HDF5 writes anything, or, if a
    write fails all the same (``need`` too small, a file system that cannot reserve), after HDF5
    has closed the file cleanly: never inside HDF5, whose clean-up after a failed write can crash
    the process. Give ``need`` with :func:`hdf5_need`; what is not used is freed at close.
    ``mode="r+"`` adds to an existing file: ``need`` bytes are reserved beyond its current end.
    """
    import h5py

    if mode not in ("w", "r+"):
        raise ValueError(f"hdf5_writer: mode must be 'w' or 'r+', got {mode!r}")
    flags = os.O_RDWR | getattr(os, "O_BINARY", 0) | (os.O_CREAT | os.O_TRUNC if mode == "w" else 0)
    fd = os.open(path, flags, 0o600)
    try:
        end = os.fstat(fd).st_size
        reserve_space(fd, path, end + need)
        sink = _KeptFailures(fd)
        sink.end = end
        try:
            with h5py.File(sink, mode, **kwargs) as f:
                yield f
        except Exception:
            if sink.error is not None:  # what failed after a lost write is a consequence of it
                raise OSError(sink.error.errno, sink.error.strerror, str(path)) from None
            raise
        if sink.error is not None:
            raise OSError(sink.error.errno, sink.error.strerror, str(path))
    finally:
        os.close(fd)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables (the ``DEPTHKIT_*`` folders, ``PATH``) for the block; processes started in it inherit them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
