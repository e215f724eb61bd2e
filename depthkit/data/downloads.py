"""Downloads for Colab and laptops: resume, length, size and checksum checks, archives that must unpack, a clear offline failure.

Tests and default commands never download; ``python -m depthkit download nyu|diw`` does.

A file counts as complete only when its marker ``.<name>.complete`` (JSON: URL, bytes, SHA-256, what
was checked, how many members were unpacked) says so and its size still matches; a file with no
marker counts only once it has the published size and checksum (a file saved by hand) or, for an
archive, once it unpacks to its end. The bytes received are checked against what the server
promised (Content-Length, or Content-Range on a resume) before the ``.part`` file is renamed into
place; a body cut short is resumed (206 with a matching Content-Range) or fetched again from zero
(a server that refuses ranges answers 200), a bounded number of times. An archive that does not
unpack is set aside as ``<name>.bad`` (removed where archives are deleted) and fetched again by
the next call; it unpacks into a staging folder, so a half-unpacked one never looks complete.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from depthkit.config import data_dir
from depthkit.data.network import IncompleteTransfer, reach, with_retries
from depthkit.files import atomic_write_bytes
from depthkit.data.images import PathLike
from depthkit.data.nyu import NYU_SIZE

NYU_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
DIW_PAGE = "http://www-personal.umich.edu/~wfchen/depth-in-the-wild/"
_DIW_HOST = "https://vl-lab.eecs.umich.edu/data/nips2016/"

# name -> files: url, file name in the dataset's folder, size in bytes and sha256 when published
# (None otherwise), whether it is a tar archive to unpack in that folder, and whether its address
# was confirmed. Chen et al.'s README (princeton-vl/relative_depth) fetches the annotations as
# DIW_Annotations_splitted.tar.gz from the vl-lab host: DIW_test.csv, DIW_train.csv, DIW_val.csv.
# The image archives are published on the project page; their direct address is a guess on the
# same host, tried first; when it fails the message says what to fetch from the page and where
# to put it. An archive dropped into the folder by hand is unpacked and used without a download.
DOWNLOADS: dict[str, list[dict]] = {
    "nyu": [
        {"url": NYU_URL, "file": "nyu_depth_v2_labeled.mat", "size": NYU_SIZE,
         "sha256": "2d724b0c0ab358aa1ce5df855e5bd14a2279ab7202efe22f32a30d612dcb86aa",
         "extract": False, "confirmed": True},
    ],
    "diw": [  # annotations (DIW_test/train/val.csv) + the test images the report used
        {"url": _DIW_HOST + "DIW_Annotations_splitted.tar.gz", "file": "DIW_Annotations_splitted.tar.gz",
         "size": None, "sha256": None, "extract": True, "confirmed": True},
        {"url": _DIW_HOST + "DIW_test.tar.gz", "file": "DIW_test.tar.gz",
         "size": None, "sha256": None, "extract": True, "confirmed": False},
    ],
    "diw_train_val": [  # only for Chen et al.'s protocol (train on DIW_train, validate on DIW_val): very large
        {"url": _DIW_HOST + "DIW_train_val.tar.gz", "file": "DIW_train_val.tar.gz",
         "size": None, "sha256": None, "extract": True, "confirmed": False},
    ],
}
DOWNLOAD_ATTEMPTS = 3  # tries per file when the connection stalls, drops or is cut short (each resumes from the .part file)
RETRY_PAUSE_S = 2.0  # pause before the second try, doubled before each further one
DEFAULT_FOLDERS = {"nyu": "real", "diw": "real/diw", "diw_train_val": "real/diw"}  # in data_dir()
MIRROR_ENV = "DEPTHKIT_MIRROR"  # a base URL serving the files under their names (a local copy, the tests' server)
# what a damaged or incomplete archive raises while it is read (FilterError is an unsafe member, not damage)
_BROKEN = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, tarfile.TarError)
_UNSAFE = getattr(tarfile, "FilterError", ())


class BadArchive(OSError):
    """An archive that does not unpack to its end (truncated, damaged, not an archive at all)."""


def on_colab() -> bool:
    """True on a Google Colab runtime (``google.colab`` imported, or ``COLAB_RELEASE_TAG`` set)."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def download(name: str, root: PathLike | None = None, timeout: float = 10.0,
             delete_archives: bool | None = None, mirror: str | None = None) -> Path:
    """Download (resumably, retrying a stalled, dropped or cut-short transfer) and unpack ``"nyu"``, ``"diw"`` or ``"diw_train_val"`` into ``root``.

    ``root`` receives the dataset's files: by default ``data/real`` for NYU (the ``.mat`` file)
    and ``data/real/diw`` for DIW (``DIW_test.csv``, ``DIW_test/``). Returns the ``.mat`` path
    for NYU and the folder for DIW. Fails within seconds, saying what to fetch by hand, offline.
    ``delete_archives`` removes each archive once it is unpacked and verified (default: on Colab
    only); ``mirror`` (default ``$DEPTHKIT_MIRROR``) is a base URL to fetch the files from instead.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DOWNLOADS)}.")
    root = Path(root) if root is not None else data_dir() / DEFAULT_FOLDERS[name]
    delete = on_colab() if delete_archives is None else delete_archives
    mirror = os.environ.get(MIRROR_ENV) if mirror is None else mirror
    for item in DOWNLOADS[name]:
        item = _mirrored(item, mirror)
        dest = root / item["file"]
        if item["extract"]:
            _get_and_unpack(item, dest, timeout, delete)
        elif _complete(item, dest) is None:
            _fetch_with_retries(item, dest, timeout)
    first = DOWNLOADS[name][0]
    return root if first["extract"] else root / first["file"]


def _mirrored(item: dict, mirror: str | None) -> dict:
    """``item`` fetched from ``mirror/<file>`` when a mirror is given."""
    if not mirror:
        return item
    return {**item, "url": f"{mirror.rstrip('/')}/{item['file']}", "confirmed": True}


def marker(dest: Path) -> Path:
    """Where the record of ``dest``'s completion lives: ``.<name>.complete`` beside it."""
    return dest.with_name(f".{dest.name}.complete")


def _read_marker(dest: Path) -> dict | None:
    """The completion record of ``dest``, or None (none yet, or unreadable)."""
    try:
        record = json.loads(marker(dest).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_marker(dest: Path, record: dict) -> dict:
    """Write ``dest``'s completion record, atomically; return it."""
    atomic_write_bytes(marker(dest), (json.dumps(record, indent=1) + "\n").encode())
    return record


def _complete(item: dict, dest: Path) -> dict | None:
    """What made ``dest`` complete (its record), or None: the file's existence alone never counts."""
    record = _read_marker(dest)
    if record is not None and record.get("archive_deleted"):
        return record
    if not dest.is_file():
        return None
    size = dest.stat().st_size
    if record is not None and record.get("bytes") == size:
        return record
    if item.get("size") == size:  # saved by hand: the published size, and the checksum where published
        sha = _sha256(dest)
        if item.get("sha256") in (None, sha):
            checked = ["published size"] + (["published sha256"] if item.get("sha256") else [])
            return _write_marker(dest, {"url": None, "bytes": size, "sha256": sha, "checked": checked})
    return None


def _get_and_unpack(item: dict, dest: Path, timeout: float, delete: bool) -> None:
    """Fetch an archive unless it is here, unpack it (setting it aside if it does not unpack), record it; maybe delete it."""
    record = _complete(item, dest)
    if record is not None and record.get("unpacked") is not None:
        if delete:
            _delete_archive(dest, record)
        return
    if record is None and not dest.is_file():
        _fetch_with_retries(item, dest, timeout)
        record = _read_marker(dest)
    try:
        n = _extract(dest, dest.parent)
    except BadArchive as err:
        raise BadArchive(_set_aside(dest, err, remove=delete)) from err
    if record is None:  # dropped in by hand: unpacking it to its end is what checked it
        record = {"url": None, "bytes": dest.stat().st_size, "sha256": _sha256(dest), "checked": []}
    record = _write_marker(dest, {**record, "checked": record.get("checked", []) + ["unpacked to its end"],
                                  "unpacked": n})
    if delete:
        _delete_archive(dest, record)


def _delete_archive(dest: Path, record: dict) -> None:
    """Remove an unpacked, verified archive; its record (written first) keeps it counted as unpacked."""
    if not record.get("archive_deleted"):
        _write_marker(dest, {**record, "archive_deleted": True})
    dest.unlink(missing_ok=True)


def _set_aside(dest: Path, err: BadArchive, remove: bool) -> str:
    """Rename (or remove) an archive that does not unpack, forget it was complete; return the one line that says so."""
    marker(dest).unlink(missing_ok=True)
    if remove:
        dest.unlink(missing_ok=True)
        done = "it was deleted"
    else:
        os.replace(dest, dest.with_name(dest.name + ".bad"))
        done = f"it is set aside as {dest.name}.bad"
    return (f"{dest} does not unpack ({err}): an incomplete or damaged download; {done} and nothing of it "
            f"counts as unpacked. Run the same command again to fetch it again (or save a fresh copy "
            f"there by hand, see data/README.md)")


def _manual_hint(item: dict, dest: Path) -> str:
    """Tell the user what to fetch by hand and where to put it."""
    size = f" ({item['size']:,} bytes)" if item.get("size") else ""
    if item["extract"]:
        where = f"save it as {dest} (it is unpacked there on the next run of the same command)"
    else:
        where = f"save it as {dest}"
    source = item["url"] if item.get("confirmed", True) else (
        f"the DIW project page {DIW_PAGE} (its direct address is not published; {item['url']} was tried)")
    return f"Download {item['file']}{size} by hand from {source} and {where}; see data/README.md."


def _fetch_with_retries(item: dict, dest: Path, timeout: float) -> Path:
    """:func:`_fetch`, tried again (resuming from the ``.part`` file) after a timeout, a dropped connection or a body cut short.

    At most :data:`DOWNLOAD_ATTEMPTS` tries, the pause doubling from :data:`RETRY_PAUSE_S`: the retry
    policy of the weight downloads (:func:`depthkit.data.network.with_retries`).
    """
    try:
        return with_retries(lambda: _fetch(item, dest, timeout), item["file"], attempts=DOWNLOAD_ATTEMPTS,
                            pause=RETRY_PAUSE_S)
    except IncompleteTransfer as err:
        part = dest.with_name(dest.name + ".part")
        raise IncompleteTransfer(err.url, err.received, err.expected,
                                 f"{DOWNLOAD_ATTEMPTS} tries; {part} keeps what arrived: run the same command "
                                 f"again to resume. {_manual_hint(item, dest)}", what=err.what) from err


def _fetch(item: dict, dest: Path, timeout: float) -> Path:
    """Download ``item['url']`` to ``dest`` through ``dest.part`` (HTTP Range resume), check it, rename it into place, record it."""
    size, part = item.get("size"), dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    checked = []
    if size is None or have < size:
        response, have = _open(item, dest, have, timeout)
        if response is not None:
            promised = _stream(response, part, have, item)
            checked += ["Content-Length/Content-Range"] if promised is not None else []
    got = part.stat().st_size
    if size is not None and got != size:
        raise RuntimeError(f"{part}: {got:,} bytes, expected {size:,}. Run download() again to "
                           f"resume, or delete the .part file to start over.")
    sha = _sha256(part)
    if item.get("sha256") and sha != item["sha256"]:
        part.unlink()
        raise RuntimeError(f"{dest}: SHA-256 mismatch (corrupt download); the partial file was "
                           f"deleted, run download() again.")
    checked += (["published size"] if size is not None else []) + (["published sha256"] if item.get("sha256") else [])
    os.replace(part, dest)
    _write_marker(dest, {"url": item["url"], "bytes": got, "sha256": sha, "checked": checked})
    return dest


def _open(item: dict, dest: Path, have: int, timeout: float) -> tuple[object | None, int]:
    """The response for the rest of ``item['url']`` after ``have`` bytes, and ``have`` (0 when it starts over); None when nothing is left."""
    headers = {"User-Agent": "depthkit"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        reach(item["url"], timeout)  # offline: fails in seconds, DNS included
        return urllib.request.urlopen(urllib.request.Request(item["url"], headers=headers), timeout=timeout), have
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: complete if the server's size says so
            total = _int((re.fullmatch(r"bytes \*/(\d+)", e.headers.get("Content-Range", "")) or [None, None])[1])
            if have in (total, item.get("size")):
                return None, have
            dest.with_name(dest.name + ".part").unlink(missing_ok=True)  # of unknown length: start over
            return _open(item, dest, 0, timeout)
        raise ConnectionError(f"{item['url']}: HTTP {e.code} {e.reason}. {_manual_hint(item, dest)}") from e
    except (urllib.error.URLError, OSError) as e:  # offline, refused, DNS, timeout
        reason = getattr(e, "reason", e)
        raise ConnectionError(f"cannot reach {item['url']} ({reason}): no network? "
                              f"{_manual_hint(item, dest)}") from e


def _int(text: str | None) -> int | None:
    """``int(text)`` for a header of digits, else None."""
    return int(text) if text and text.isdigit() else None


def _promised(response, have: int, item: dict, part: Path) -> tuple[int, int | None]:
    """Where the body starts in the file (``have``, or 0 when the server sends it whole) and the file's full size the headers promise (None: unsaid).

    A 206 counts as a resume only with a Content-Range that starts at ``have``; any other range is
    not appended (the ``.part`` file is deleted and the next try starts from zero).
    """
    status = getattr(response, "status", None) or response.getcode()
    length = _int(response.headers.get("Content-Length"))
    if status != 206:  # 200 (a server that refuses ranges) or a file:// URL: the whole file
        return 0, length
    found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    start = int(found[1]) if found else None
    if start != have:
        part.unlink(missing_ok=True)
        got = response.headers.get("Content-Range")
        raise IncompleteTransfer(item["url"], 0, _int(found[3]) if found else None, "the next try starts from zero",
                                 what=f"a 206 answer with Content-Range {got!r} to a request for bytes {have}-: "
                                      f"not appended, the .part file was deleted")
    total = _int(found[3])
    return have, total if total is not None else (have + length if length is not None else None)


def _stream(response, part: Path, have: int, item: dict) -> int | None:
    """Append the response body to ``part`` with a progress bar; return the size the server promised (None: unsaid).

    Raises :class:`IncompleteTransfer` when the body ends before that size, and ``ConnectionError``
    when it stalls for the timeout or drops: both are retried, resuming from what arrived.
    """
    with response:
        have, promised = _promised(response, have, item, part)
        size = item.get("size")
        if size is not None and promised is not None and promised != size:
            raise RuntimeError(f"{item['url']}: the server offers {promised:,} bytes, expected {size:,} "
                               f"(the published size): not the published file; nothing more was written.")
        got = have
        with open(part, "ab" if have else "wb") as f, \
                tqdm(total=promised or size, initial=have, unit="B", unit_scale=True, desc=part.name[:-5]) as bar:
            read = getattr(response, "read1", response.read)  # read1: what has arrived, kept if the next read stalls
            while chunk := _read(read, item, got, promised, part):
                f.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if promised is not None and got != promised:  # http.client ends a short body without an error
        raise IncompleteTransfer(item["url"], got, promised, f"run the same command again to resume from {part}")
    return promised


def _read(read, item: dict, got: int, promised: int | None, part: Path) -> bytes:
    """One ``read(1 MiB)`` of the body; a stall, a drop or a chunked body cut short become retryable errors."""
    try:
        return read(1 << 20)
    except http.client.IncompleteRead as e:
        raise IncompleteTransfer(item["url"], got, promised or got + len(e.partial),
                                 f"run the same command again to resume from {part}") from e
    except OSError as e:  # connection dropped or stalled for `timeout` seconds
        of = f" of {promised:,}" if promised is not None else ""
        raise ConnectionError(f"{item['url']}: download interrupted ({e}) after {got:,}{of} bytes; run "
                              f"download() again to resume from {part}.") from e


def _sha256(path: Path) -> str:
    """SHA-256 of a file, with a progress bar (the NYU file takes a few seconds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"checking {path.name}") as bar:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _extract(archive: Path, folder: Path) -> int:
    """Unpack a tar archive into ``folder`` through a staging folder; return its number of members.

    CSVs found in a subfolder are also copied to ``folder``. Each top-level entry of the archive
    replaces the one of that name only once the whole archive has unpacked, so a damaged archive
    (:class:`BadArchive`) leaves nothing that looks unpacked.
    """
    staging = folder / f".{archive.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        n = _unpack(archive, staging)
        for csv in staging.glob("*/*.csv"):  # e.g. DIW_Annotations/DIW_test.csv -> diw/DIW_test.csv
            if not (staging / csv.name).exists():
                shutil.copy2(csv, staging / csv.name)
        for entry in sorted(staging.iterdir()):
            _replace(entry, folder / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return n


def _unpack(archive: Path, folder: Path) -> int:
    """Extract every member of ``archive`` into ``folder`` and read it to its end; :class:`BadArchive` if it is damaged."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
    top, n = folder.resolve(), 0
    try:
        with tarfile.open(archive) as tar:  # one streaming pass: fine for gzip and 70k members
            for member in tqdm(tar, desc=f"unpacking {archive.name}", unit="file"):
                if member.issym() or member.islnk() or not (top / member.name).resolve().is_relative_to(top):
                    raise ValueError(f"{archive}: unsafe member {member.name!r}; not extracting it.")
                tar.extract(member, folder, **safe)
                n += 1
            while tar.fileobj.read(1 << 20):  # to the end: gzip checks its CRC and length only there
                pass
    except _UNSAFE as err:
        raise ValueError(f"{archive}: unsafe member ({err}); not extracting it.") from err
    except _BROKEN as err:
        raise BadArchive(f"{type(err).__name__}: {err}, after {n:,} files") from err
    return n


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing a file or folder already there."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    os.replace(source, target)
