"""Student copies of the notebooks: every worked solution replaced by a stub, the check cells kept.

``python -m depthkit student [--out student]`` (``make student``) reads ``notebooks/NN_name.ipynb``
and writes ``student/NN_name.ipynb``. It follows nbgrader's conventions: in a code cell, the lines
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are the solution; the student copy keeps the
``def`` line and the docstring above the markers and puts in their place one line,
``raise NotImplementedError("Exercise NN.K: ...")``, with the exercise number taken from the
cell's ``# Exercise NN.K`` comment. Every output is cleared. The check cell after each exercise is
kept as it is: run on the stub it reports "not implemented yet" with the stub's message.

Why not nbgrader itself: ``nbgrader generate_assignment`` needs a course directory layout
(``source/<assignment>/``), a gradebook database and cell metadata written by its notebook
extension, and it would be one more dependency (with its Jupyter server extension) for what is,
here, a 40-line text transformation on cells we write ourselves. The markers are nbgrader's, so a
course that does use nbgrader can still feed these notebooks to it (after tagging the cells).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISE = re.compile(r"#\s*Exercise\s+(\d\d\.\d+)")


def stub_source(source: str) -> str:
    """The cell ``source`` with each solution block replaced by a ``raise NotImplementedError`` stub.

    Raises ``ValueError`` naming the line for a BEGIN without an END (or the reverse).
    """
    found = EXERCISE.search(source)
    name = f"Exercise {found.group(1)}" if found else "Exercise"
    out, inside, begin_line = [], False, 0
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution (the one from line {begin_line})")
            inside, begin_line = True, number
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{name}: not written yet - replace this line with your code")')
        elif stripped == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"line {begin_line}: {BEGIN} has no {END}")
    return "\n".join(out)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions stubbed (code cells) and every output cleared."""
    nb = nbformat.from_dict(nb)  # a deep copy
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            try:
                cell.source = stub_source(cell.source)
            except ValueError as err:
                raise ValueError(f"cell {index} ({cell.get('id')}): {err}") from None
        cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)  # saved widget state belongs to the solved run
    return nb


def write_student_copies(out_dir: str | Path, notebooks_dir: str | Path | None = None) -> list[Path]:
    """Write a student copy of every ``NN_name.ipynb`` into ``out_dir``; returns the paths written."""
    from depthkit.config import repo_root
    from depthkit.files import atomic_write

    src = Path(notebooks_dir) if notebooks_dir is not None else repo_root() / "notebooks"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("[0-9][0-9]_*.ipynb")):
        try:
            nb = student_notebook(nbformat.read(path, as_version=4))
        except ValueError as err:
            raise ValueError(f"{path.name}: {err}") from None
        nbformat.validate(nb)
        target = out / path.name
        atomic_write(target, lambda tmp, nb=nb: nbformat.write(nb, str(tmp)))
        written.append(target)
    if not written:
        raise FileNotFoundError(f"{src}: no NN_name.ipynb notebooks to copy")
    return written
