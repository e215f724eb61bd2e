"""The GitHub address the Colab set-up cell clones and the notebooks' "Open in Colab" badges point at.

It is written in ``notebooks/colab_cell.txt`` (the default of ``DEPTHKIT_REPO``), in every notebook's
copy of that cell and title badge, and in the READMEs; :func:`publish_url` rewrites all of them at once
(``python -m depthkit publish-url https://github.com/you/depthkit``).
"""
from __future__ import annotations

import re
from pathlib import Path

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
