"""DIW (Depth in the Wild, Chen et al. 2016): read the annotation CSV.

A CSV has two lines per image: the image path (an absolute path on the authors' machines, re-rooted
here), then ``y_A,x_A,y_B,x_B,relation,width,height`` with 1-based coordinates. ``>`` means point A
is farther than point B. :func:`read_diw_csv` returns :class:`DIWPair` records with 0-based
coordinates and ``relation`` = +1 (A farther) or -1 (A closer).

The published release is read as Chen et al.'s own Torch loader reads it: a point outside its
image is **clamped** onto the image's border (their loader clamps rather than refusing the record),
and a coordinate written as an integral decimal (``118.0``) is that integer. A record that cannot
be used is **rejected**: its image is missing (or, when prepared, unreadable or truncated), a
coordinate is not an integer (``118.5``, ``x``), its relation symbol is unknown, its line does not
hold the seven fields, its size is not positive, or A and B are the same pixel (after clamping).
``read_diw_csv`` raises on the first rejected record; given a ``rejects`` list, it appends a
:class:`DIWReject` (CSV line, image, reason) for each and goes on (what ``prepare_diw`` does).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field as _field
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
    image_line: int = _field(default=0, compare=False)  # 1-based line of its image line (0: not known)


@dataclass(frozen=True)
class DIWReject:
    """A record left out: the 1-based CSV line it starts on, its image line and why."""

    line: int
    image: str
    reason: str


class _Rejected(ValueError):
    """A record that cannot be used: ``"<csv>:<line>: <reason>"``, and how many lines the record took."""

    def __init__(self, csv: Path, line: int, reason: str, used: int = 2) -> None:
        super().__init__(f"{csv}:{line}: {reason}")
        self.line, self.reason, self.used = line, reason, used


class _Missing(_Rejected):
    """A record whose image is not there."""


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


def _integer(field: str) -> int | None:
    """``"118"`` or ``"118.0"`` -> 118; anything else (``"118.5"``, ``"x"``) -> None."""
    try:
        return int(field)
    except ValueError:
        try:
            value = float(field)
        except ValueError:
            return None
        return int(value) if value.is_integer() else None


def _parse_annotation(text: str, csv: Path, line: int) -> tuple[tuple[int, ...], bool]:
    """Parse ``y_A,x_A,y_B,x_B,rel,width,height`` (1-based) into 0-based ints and a relation.

    Returns the values and whether a point was clamped onto the image; raises :class:`_Rejected`.
    """
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != len(_DIW_FIELDS):
        raise _Rejected(csv, line, f"expected {len(_DIW_FIELDS)} fields "
                        f"{','.join(_DIW_FIELDS)}, got {len(fields)}: {text!r}.")
    values = {}
    for name, field in zip(_DIW_FIELDS, fields):
        if name == "relation":
            if field not in RELATIONS:
                raise _Rejected(csv, line, f"unknown relation symbol {field!r}; expected '>' "
                                f"(A farther), '<' (A closer) or '='.")
            values[name] = RELATIONS[field]
            continue
        values[name] = _integer(field)
        if values[name] is None:
            raise _Rejected(csv, line, f"{name}={field!r} is not an integer.")
    w, h = values["width"], values["height"]
    if w < 1 or h < 1:
        raise _Rejected(csv, line, f"image size width={w}, height={h} must be positive.")
    clamped = False
    for point in ("A", "B"):  # Chen et al.'s loader: a point off the image is moved onto its border
        y, x = values[f"y_{point}"], values[f"x_{point}"]
        values[f"y_{point}"], values[f"x_{point}"] = min(max(y, 1), h), min(max(x, 1), w)
        clamped |= (values[f"y_{point}"], values[f"x_{point}"]) != (y, x)
    if (values["y_A"], values["x_A"]) == (values["y_B"], values["x_B"]):
        raise _Rejected(csv, line, f"points A and B are identical (y={values['y_A']}, "
                        f"x={values['x_A']}{', after clamping onto the image' if clamped else ''}).")
    return (values["y_A"] - 1, values["x_A"] - 1, values["y_B"] - 1, values["x_B"] - 1,
            values["relation"], w, h), clamped


def read_diw_csv(path: PathLike, image_root: PathLike | None = None,
                 check_images: bool = True, rejects: list[DIWReject] | None = None) -> list[DIWPair]:
    """Read a DIW CSV (image line + annotation line per record) into 0-based :class:`DIWPair` s.

    Image lines written on the authors' machines (``/home/.../DIW_test/<name>.thumb``) are looked
    up under ``image_root`` (default: the CSV's folder) as ``DIW_test/<name>.thumb``, then
    ``<name>.thumb``; relative paths are taken relative to ``image_root`` first. With
    ``check_images=False`` nothing is looked up and the first candidate is returned. Points off
    their image are clamped onto it (see the module's docstring). Without ``rejects`` the first
    unusable record raises an error naming its line; with a list, each is appended to it and skipped.
    """
    return _read_diw(Path(path), image_root, check_images, limit=None, rejects=rejects)


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


def _read_diw(path: Path, image_root: PathLike | None, check_images: bool, limit: int | None,
              rejects: list[DIWReject] | None = None, clamped: list[int] | None = None) -> list[DIWPair]:
    """:func:`read_diw_csv`, stopping after ``limit`` records, kept or rejected (``None``: all).

    ``clamped``, when given, receives the CSV line of every record whose points were clamped.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DIW CSV. See data/README.md.")
    root = Path(image_root) if image_root is not None else path.parent
    numbered = [(n, line) for n, line in _decoded_lines(path) if line]  # blank lines carry no record
    if not numbered:
        raise ValueError(f"{path}: the DIW CSV holds no records (expected an image line and an "
                         f"annotation line per image).")
    pairs: list[DIWPair] = []
    i = 0
    while i < len(numbered) and (limit is None or len(pairs) + len(rejects or ()) < limit):
        try:
            pair, is_clamped, used = _read_record(path, numbered, i, root, check_images)
        except _Rejected as reject:
            if rejects is None:
                raise (FileNotFoundError if isinstance(reject, _Missing) else ValueError)(str(reject)) from None
            image_line = numbered[i][1]
            rejects.append(DIWReject(reject.line, image_line if _looks_like_path(image_line) else "", reject.reason))
            i += reject.used
            continue
        pairs.append(pair)
        if is_clamped and clamped is not None:
            clamped.append(pair.line)
        i += used
    return pairs


def _read_record(path: Path, numbered: list[tuple[int, str]], i: int, root: Path, check_images: bool
                 ) -> tuple[DIWPair, bool, int]:
    """The record starting at ``numbered[i]``: the pair, whether it was clamped, and the lines it used."""
    n_img, image_line = numbered[i]
    if not _looks_like_path(image_line):
        raise _Rejected(path, n_img, f"expected an image path, found {image_line!r} "
                                     f"(an annotation line without an image line before it?).", 1)
    if i + 1 == len(numbered):
        raise _Rejected(path, n_img, f"image line {image_line!r} has no annotation line "
                                     f"after it (end of file).", 1)
    n_ann, annotation = numbered[i + 1]
    if _looks_like_path(annotation):
        raise _Rejected(path, n_img, f"image line {image_line!r} has no annotation line "
                                     f"after it (line {n_ann} is another image path).", 1)
    (ya, xa, yb, xb, rel, w, h), clamped = _parse_annotation(annotation, path, n_ann)
    candidates = _image_candidates(image_line, root)
    image = candidates[0]  # without checks: no file-system access at all
    if check_images:
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            tried = ", ".join(str(c) for c in candidates)
            raise _Missing(path, n_img, f"image {image_line!r} not found; tried {tried}.")
    return DIWPair(image, ya, xa, yb, xb, rel, w, h, n_ann, n_img), clamped, 2
