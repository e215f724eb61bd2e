"""The Colab set-up cell's side of depthkit: the address it clones, and the Google Drive layout it reattaches.

The address is written in ``notebooks/colab_cell.txt`` (the default of ``DEPTHKIT_REPO``), in every
notebook's copy of that cell and title badge, and in the READMEs; :func:`publish_url` rewrites all of
them at once (``python -m depthkit publish-url https://github.com/you/depthkit``).

The Drive layout (:func:`use_drive`) fits a free 15 GB Drive: downloads, unpacked images and caches
(~27 GB for ``report``) on the runtime's own disk, checkpoints and results (~3 GB) on Drive, so a
reconnect resumes training from ``last.pt`` and only the data is fetched and cached again. Each Colab
notebook runs on its own runtime, with its own disk: the set-up cell of every notebook calls
:func:`reattach_drive`, which mounts Drive again and restores the folders that ``use_drive`` saved.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from depthkit.config import real_data_present
from depthkit.files import atomic_write_bytes

CELL = Path("notebooks") / "colab_cell.txt"
URL_LINE = re.compile(r'^REPO_URL = os\.environ\.get\("DEPTHKIT_REPO", "https://github\.com/([^"]+)"\)$', re.M)
# GitHub's rules: an owner of letters, digits and single inner hyphens (<= 39); a name of letters, digits, . _ -
SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\.+$)[A-Za-z0-9._-]{1,100}")


def parse_github_url(url: str) -> str:
    """``https://github.com/you/depthkit`` (a trailing ``/`` or ``.git`` allowed) -> ``you/depthkit``."""
    match = re.fullmatch(r"https://github\.com/(.+?)(?:\.git)?/?", url.strip())
    if not match or not SLUG.fullmatch(match.group(1)):
        raise ValueError(f"{url!r} is not a GitHub repository address; expected https://github.com/OWNER/NAME")
    return match.group(1)


def current_slug(root: str | Path) -> str:
    """The ``owner/name`` that ``notebooks/colab_cell.txt`` under ``root`` clones by default."""
    cell = Path(root) / CELL
    match = URL_LINE.search(cell.read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{cell}: no line REPO_URL = os.environ.get(\"DEPTHKIT_REPO\", \"https://github.com/...\")")
    return match.group(1)


def address_pattern(slug: str) -> re.Pattern:
    """The clone address ``github.com/OWNER/NAME`` (``.git`` may follow) and the badge's ``colab.research.google.com/github/OWNER/NAME``."""
    return re.compile(r"(github\.com/|colab\.research\.google\.com/github/)" + re.escape(slug) + r"(?![\w-])(?!\.(?!git\b))")


def address_files(root: Path) -> list[Path]:
    """The files that carry the address: the cell, the notebook pairs, the two READMEs."""
    folder = root / "notebooks"
    # each .ipynb before its .py: jupytext treats a text file older than its .ipynb as outdated
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb")) + sorted(folder.glob("[0-9][0-9]_*.py"))
    return [p for p in [root / CELL, *notebooks, root / "notebooks" / "README.md", root / "README.md"] if p.is_file()]


def publish_url(url: str, root: str | Path) -> list[Path]:
    """Point the Colab cell, its copies, the badges and the READMEs under ``root`` at ``url``; return the files changed.

    Every new text is computed before the first one is written, and each is written atomically.
    """
    root = Path(root)
    new, old = parse_github_url(url), current_slug(root)
    pattern = address_pattern(old)
    changed = {}
    for path in address_files(root):
        text = path.read_text(encoding="utf-8")
        rewritten = pattern.sub(lambda m: m.group(1) + new, text)
        if rewritten != text:
            changed[path] = rewritten
    for path, text in changed.items():
        atomic_write_bytes(path, text.encode("utf-8"))
    return list(changed)


CONTENT = Path("/content")  # a Colab runtime's own disk: gone after a disconnect
SETTINGS = "depthkit_settings.json"  # the folders use_drive chose: on the runtime's disk (a restarted session) and in MyDrive
FOLDERS = ("DEPTHKIT_DATA", "DEPTHKIT_RUNS", "DEPTHKIT_FIGURES")


def my_drive() -> Path:
    """Where Colab mounts the user's Drive."""
    return CONTENT / "drive" / "MyDrive"


def drive_layout(drive_folder: str | Path) -> dict[str, str]:
    """The layout that fits a free Drive: data (downloads, unpacked images, caches) on the runtime's disk,
    checkpoints (``DEPTHKIT_RUNS``) and results (``DEPTHKIT_FIGURES``) in ``drive_folder``."""
    drive_folder = Path(drive_folder)
    return {"DEPTHKIT_DATA": str(CONTENT / "depthkit-data"), "DEPTHKIT_RUNS": str(drive_folder / "runs"),
            "DEPTHKIT_FIGURES": str(drive_folder / "figures")}


def _mount() -> None:
    """Mount Drive unless it is mounted (Colab asks the user for permission the first time on each runtime)."""
    if not my_drive().is_dir():
        from google.colab import drive

        drive.mount(str(CONTENT / "drive"))


def _apply(folders: dict[str, str]) -> dict[str, str]:
    """Set the folders' variables (read by depthkit at every call, inherited by ``!python``) and make the folders."""
    for variable in FOLDERS:
        os.environ[variable] = folders[variable]
        Path(folders[variable]).mkdir(parents=True, exist_ok=True)
    where = "" if real_data_present() else (" (no real data on this runtime's disk yet: `!python -m depthkit "
                                            "download nyu` and `download diw` before a report run)")
    print(f"Drive: checkpoints in {folders['DEPTHKIT_RUNS']}, results in {folders['DEPTHKIT_FIGURES']}; "
          f"downloads and caches on this runtime's disk in {folders['DEPTHKIT_DATA']}{where}")
    return folders


def use_drive(drive_folder: str | Path | None = None) -> dict[str, str]:
    """Mount Drive, point the folders at :func:`drive_layout` and save them for the other notebooks; return them."""
    _mount()
    folders = drive_layout(drive_folder if drive_folder is not None else my_drive() / "depthkit")
    text = json.dumps({"use_drive": True, "folders": folders}, indent=2).encode()
    for path in (CONTENT / SETTINGS, my_drive() / SETTINGS):
        atomic_write_bytes(path, text)
    return _apply(folders)


def _saved(path: Path) -> dict[str, str] | None:
    """The folders saved in ``path`` (None when absent or unreadable)."""
    try:
        folders = json.loads(path.read_text(encoding="utf-8"))["folders"]
        return {variable: str(folders[variable]) for variable in FOLDERS}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reattach_drive(use: bool) -> dict[str, str]:
    """The set-up cell's call: restore the folders :func:`use_drive` saved, and mount Drive for them.

    After a restarted session the runtime's own copy is found (no switch needed); on a new runtime
    (another notebook, a reconnect) ``use`` (the cell's ``USE_DRIVE``) mounts Drive and reads the copy
    there, or sets up the default layout. Without either, nothing happens. Returns the folders set.
    """
    folders = _saved(CONTENT / SETTINGS)
    if folders is None and not use:
        return {}
    _mount()
    if folders is None:
        folders = _saved(my_drive() / SETTINGS)
        if folders is None:
            return use_drive()
        atomic_write_bytes(CONTENT / SETTINGS, (my_drive() / SETTINGS).read_bytes())
    return _apply(folders)


def uploaded_file(upload, uploaded: dict) -> tuple[str, bytes] | None:
    """``(name, bytes)`` of the photo chosen in ``07``: Colab's picker (``uploaded``) or an ipywidgets 7/8 ``FileUpload``; None if none."""
    if uploaded:  # Colab: {name: bytes}
        return next(iter(uploaded.items()))
    value = upload.value
    if not value:
        return None
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        name, item = next(iter(value.items()))
    else:  # ipywidgets 8: ({"name": ..., "content": memoryview, ...},)
        item = value[0]
        name = item["name"]
    return name, bytes(item["content"])
