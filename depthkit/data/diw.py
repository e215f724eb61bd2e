"""DIW (Depth in the Wild, Chen et al. 2016): read the annotation CSV.

A CSV has two lines per image: the image path (an absolute path on the authors' machines, re-rooted
here), then ``y_A,x_A,y_B,x_B,relation,width,height`` with 1-based coordinates. ``>`` means point A
is farther than point B. :func:`read_diw_csv` returns :class:`DIWPair` records with 0-based
coordinates and ``relation`` = +1 (A farther) or -1 (A closer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from depthkit.data.images import PathLike

@dataclass(frozen=True)
class DIWPair:
    """One DIW annotation: an image and two 0-based points, ``relation`` +1 when A is farther."""

    image: Path
    ya: int
    xa: int
    yb: int
    xb: int
    relation: int  # +1: depth(A) > depth(B) (CSV ">"), -1: A closer ("<"), 0: equal ("=")
    width: int     # size of the image the coordinates refer to (from the CSV)
    height: int
    line: int      # 1-based line number of the annotation line in the CSV (for messages)


RELATIONS = {">": 1, "<": -1, "=": 0}
_DIW_FIELDS = ("y_A", "x_A", "y_B", "x_B", "relation", "width", "height")
_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]")


def _looks_like_path(line: str) -> bool:
    """An image line has a path separator or no comma; an annotation line is comma-separated."""
    return "/" in line or "\\" in line or "," not in line


def _image_candidates(raw: str, root: Path) -> list[Path]:
    """Where an image line may point: re-rooted by its trailing components under ``root``."""
    parts = [p for p in re.split(r"[\\/]+", raw) if p not in ("", ".")]
    absolute = raw.startswith(("/", "\\")) or bool(_WINDOWS_ABS.match(raw))
    candidates = []
    if not absolute:
        candidates.append(root.joinpath(*parts))
    if len(parts) >= 2:
        candidates.append(root / parts[-2] / parts[-1])  # e.g. root/DIW_test/<name>.thumb
    candidates.append(root / parts[-1])
    return list(dict.fromkeys(candidates))  # drop duplicates, keep order


def _parse_annotation(text: str, where: str) -> tuple[int, ...]:
    """Parse ``y_A,x_A,y_B,x_B,rel,width,height`` (1-based) into 0-based ints and a relation."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != len(_DIW_FIELDS):
        raise ValueError(f"{where}: expected {len(_DIW_FIELDS)} fields "
                         f"{','.join(_DIW_FIELDS)}, got {len(fields)}: {text!r}.")
    values = {}
    for name, field in zip(_DIW_FIELDS, fields):
        if name == "relation":
            if field not in RELATIONS:
                raise ValueError(f"{where}: unknown relation symbol {field!r}; expected '>' "
                                 f"(A farther), '<' (A closer) or '='.")
            values[name] = RELATIONS[field]
            continue
        try:
            values[name] = int(field)
        except ValueError:
            raise ValueError(f"{where}: {name}={field!r} is not an integer.") from None
    w, h = values["width"], values["height"]
    if w < 1 or h < 1:
        raise ValueError(f"{where}: image size width={w}, height={h} must be positive.")
    for point in ("A", "B"):
        y, x = values[f"y_{point}"], values[f"x_{point}"]
        if not (1 <= y <= h and 1 <= x <= w):
            raise ValueError(f"{where}: point {point} (y={y}, x={x}) is outside the {w}x{h} "
                             f"(width x height) image; coordinates are 1-based.")
    if (values["y_A"], values["x_A"]) == (values["y_B"], values["x_B"]):
        raise ValueError(f"{where}: points A and B are identical (y={values['y_A']}, "
                         f"x={values['x_A']}).")
    return (values["y_A"] - 1, values["x_A"] - 1, values["y_B"] - 1, values["x_B"] - 1,
            values["relation"], w, h)


def read_diw_csv(path: PathLike, image_root: PathLike | None = None,
                 check_images: bool = True) -> list[DIWPair]:
    """Read a DIW CSV (image line + annotation line per record) into 0-based :class:`DIWPair` s.

    Image lines written on the authors' machines (``/home/.../DIW_test/<name>.thumb``) are looked
    up under ``image_root`` (default: the CSV's folder) as ``DIW_test/<name>.thumb``, then
    ``<name>.thumb``; relative paths are taken relative to ``image_root`` first. With
    ``check_images=False`` nothing is looked up and the first candidate is returned.
    """
    return _read_diw(Path(path), image_root, check_images, limit=None)


def _decoded_lines(path: Path) -> list[tuple[int, str]]:
    """The CSV's lines, numbered from 1 and stripped of quotes; a line that is not UTF-8 is named."""
    lines = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text ({e.reason} at byte {e.start}); expected "
                                 f"a DIW CSV as published (UTF-8 / ASCII). Re-save it as UTF-8.") from None
            lines.append((n, text.strip().strip('"').strip()))
    return lines


def _read_diw(path: Path, image_root: PathLike | None, check_images: bool, limit: int | None
              ) -> list[DIWPair]:
    """:func:`read_diw_csv`, stopping after ``limit`` records (``None``: all)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DIW CSV. See data/README.md.")
    root = Path(image_root) if image_root is not None else path.parent
    numbered = [(n, line) for n, line in _decoded_lines(path) if line]  # blank lines carry no record
    if not numbered:
        raise ValueError(f"{path}: the DIW CSV holds no records (expected an image line and an "
                         f"annotation line per image).")
    pairs: list[DIWPair] = []
    i = 0
    while i < len(numbered) and (limit is None or len(pairs) < limit):
        n_img, image_line = numbered[i]
        if not _looks_like_path(image_line):
            raise ValueError(f"{path}:{n_img}: expected an image path, found {image_line!r} "
                             f"(an annotation line without an image line before it?).")
        if i + 1 == len(numbered):
            raise ValueError(f"{path}:{n_img}: image line {image_line!r} has no annotation line "
                             f"after it (end of file).")
        n_ann, annotation = numbered[i + 1]
        if _looks_like_path(annotation):
            raise ValueError(f"{path}:{n_img}: image line {image_line!r} has no annotation line "
                             f"after it (line {n_ann} is another image path).")
        ya, xa, yb, xb, rel, w, h = _parse_annotation(annotation, f"{path}:{n_ann}")
        candidates = _image_candidates(image_line, root)
        image = candidates[0]  # without checks: no file-system access at all
        if check_images:
            image = next((c for c in candidates if c.is_file()), None)
            if image is None:
                tried = ", ".join(str(c) for c in candidates)
                raise FileNotFoundError(f"{path}:{n_img}: image {image_line!r} not found; "
                                        f"tried {tried}.")
        pairs.append(DIWPair(image, ya, xa, yb, xb, rel, w, h, n_ann))
        i += 2
    return pairs

