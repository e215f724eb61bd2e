"""Downloads for Colab and laptops: resume, size and checksum checks, a clear offline failure.

Tests and default commands never download; ``python -m depthkit download nyu|diw`` does.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from depthkit.data.network import reach, with_retries
from depthkit.config import data_dir
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
DOWNLOAD_ATTEMPTS = 3  # tries per file when the connection stalls or drops (each resumes from the .part file)
RETRY_PAUSE_S = 2.0  # pause before the second try, doubled before each further one
DEFAULT_FOLDERS = {"nyu": "real", "diw": "real/diw", "diw_train_val": "real/diw"}  # in data_dir()


def download(name: str, root: PathLike | None = None, timeout: float = 10.0) -> Path:
    """Download (resumably, retrying a stalled or dropped connection) and unpack ``"nyu"``, ``"diw"`` or ``"diw_train_val"`` into ``root``.

    ``root`` receives the dataset's files: by default ``data/real`` for NYU (the ``.mat`` file)
    and ``data/real/diw`` for DIW (``DIW_test.csv``, ``DIW_test/``). Returns the ``.mat`` path
    for NYU and the folder for DIW. Fails within seconds, saying what to fetch by hand, offline.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DOWNLOADS)}.")
    root = Path(root) if root is not None else data_dir() / DEFAULT_FOLDERS[name]
    for item in DOWNLOADS[name]:
        dest = root / item["file"]
        if not item["extract"]:
            _fetch_with_retries(item, dest, timeout)
            continue
        unpacked = root / f".{item['file']}.extracted"  # marker: skip it next time
        if not unpacked.is_file():
            _fetch_with_retries(item, dest, timeout)
            _extract(dest, root)
            unpacked.touch()
    first = DOWNLOADS[name][0]
    return root if first["extract"] else root / first["file"]


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
    """:func:`_fetch`, tried again (resuming from the ``.part`` file) after a timeout or a dropped connection.

    At most :data:`DOWNLOAD_ATTEMPTS` tries, the pause doubling from :data:`RETRY_PAUSE_S`: the retry
    policy of the weight downloads (:func:`depthkit.data.network.with_retries`).
    """
    return with_retries(lambda: _fetch(item, dest, timeout), item["file"], attempts=DOWNLOAD_ATTEMPTS,
                                pause=RETRY_PAUSE_S)


def _fetch(item: dict, dest: Path, timeout: float) -> Path:
    """Download ``item['url']`` to ``dest`` through ``dest.part`` (HTTP Range resume), then verify."""
    size, part = item.get("size"), dest.with_name(dest.name + ".part")
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is None or have < size:
        headers = {"User-Agent": "depthkit"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            reach(item["url"], timeout)  # offline: fails in seconds, DNS included
            response = urllib.request.urlopen(urllib.request.Request(item["url"], headers=headers),
                                              timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part is already complete
                response = None
            else:
                raise ConnectionError(f"{item['url']}: HTTP {e.code} {e.reason}. "
                                      f"{_manual_hint(item, dest)}") from e
        except (urllib.error.URLError, OSError) as e:  # offline, refused, DNS, timeout
            reason = getattr(e, "reason", e)
            raise ConnectionError(f"cannot reach {item['url']} ({reason}): no network? "
                                  f"{_manual_hint(item, dest)}") from e
        if response is not None:
            _stream(response, part, have, dest.name, item)
    got = part.stat().st_size
    if size is not None and got != size:
        raise RuntimeError(f"{part}: {got:,} bytes, expected {size:,}. Run download() again to "
                           f"resume, or delete the .part file to start over.")
    if item.get("sha256") and _sha256(part) != item["sha256"]:
        part.unlink()
        raise RuntimeError(f"{dest}: SHA-256 mismatch (corrupt download); the partial file was "
                           f"deleted, run download() again.")
    os.replace(part, dest)
    return dest


def _stream(response, part: Path, have: int, label: str, item: dict) -> None:
    """Append the response body to ``part`` with a progress bar (restart if Range was ignored)."""
    with response:
        status = getattr(response, "status", None) or response.getcode()
        if have and status != 206:  # the server sent the whole file: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else item.get("size")
        try:
            with open(part, "ab" if have else "wb") as f, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=label) as bar:
                read = getattr(response, "read1", response.read)  # read1: what has arrived, kept if the next read stalls
                while chunk := read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        except OSError as e:  # connection dropped or stalled for `timeout` seconds
            raise ConnectionError(f"{item['url']}: download interrupted ({e}); run download() "
                                  f"again to resume from {part}.") from e


def _sha256(path: Path) -> str:
    """SHA-256 of a file, with a progress bar (the NYU file takes a few seconds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"checking {path.name}") as bar:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _extract(archive: Path, folder: Path) -> None:
    """Unpack a tar archive into ``folder``; CSVs found in a subfolder are also copied to ``folder``."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
    top = folder.resolve()
    with tarfile.open(archive) as tar:  # one streaming pass: fine for gzip and 70k members
        for member in tqdm(tar, desc=f"unpacking {archive.name}", unit="file"):
            if member.issym() or member.islnk() or not (top / member.name).resolve().is_relative_to(top):
                raise ValueError(f"{archive}: unsafe member {member.name!r}; not extracting it.")
            tar.extract(member, folder, **safe)
    for csv in folder.glob("*/*.csv"):  # e.g. DIW_Annotations/DIW_test.csv -> diw/DIW_test.csv
        if not (folder / csv.name).exists():
            shutil.copy2(csv, folder / csv.name)

