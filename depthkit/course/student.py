"""Student copies and nbgrader course folders: the committed notebooks are nbgrader assignments as they stand.

Every cell that grading needs carries nbgrader's metadata (schema 3), written on its ``# %%`` line in
the ``.py`` of each jupytext pair:

- an implement-it cell is a *solution* cell (``ex_NN_K``): its worked solution stands between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
- the check cell under it is an *autograded test* cell (``check_NN_K``, points, locked): it passes
  when it raises nothing, and its extra cases between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS`` run when grading but are not in the student copy;
- a written answer is a markdown *solution* cell graded by hand (``answer_NN_K``, points): it holds the
  instructor's answer and a one-line rubric, and the student copy shows "YOUR ANSWER HERE".

There is one way to make a student copy, nbgrader's own: ``python -m depthkit student`` (``make
student``) builds a course folder in a temporary directory (:func:`make_course`) and runs nbgrader's
``generate_assignment`` on every notebook in it (:func:`release`, in-process), then copies the
released notebooks to ``student/``. So ``make student`` and an instructor's ``nbgrader
generate_assignment`` give the same notebooks, cell by cell (``tests/test_nbgrader.py`` holds them
equal), and nbgrader's own checks (a solution region outside a solution cell, a marker without its
end, a grade id used twice) stop both. ``python -m depthkit student --course DIR`` writes the course
folder itself, for an instructor (``docs/teaching.md``).
"""
from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import nbformat

from depthkit.files import atomic_write, environment

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
COURSE_ID = "depthkit"
# What stands in a student copy where a solution stood: nbgrader's stub, with a message the check cell repeats
# ("Exercise 02.1 (normalized MSE): not implemented yet (replace ...)") instead of an empty NotImplementedError().
CODE_STUB = '# YOUR CODE HERE\nraise NotImplementedError("replace this line and the comment above with your code")'
# nbgrader_config.py of a course folder. nbgrader executes a submission cell by cell with a time limit;
# 30 s (its default) is less than a training cell takes under `demo`, so the limit is an hour per cell.
CONFIG = f'''# nbgrader's configuration for the depthkit notebooks (written by python -m depthkit student --course).
c = get_config()
c.CourseDirectory.course_id = "{COURSE_ID}"
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.Execute.timeout = 3600  # seconds per cell: training cells take minutes under the demo profile
'''


def notebook_paths(notebooks_dir: str | Path | None = None, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb``, in order; ``only`` picks stems or two-digit prefixes."""
    from depthkit.config import repo_root

    folder = Path(notebooks_dir) if notebooks_dir is not None else repo_root() / "notebooks"
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(o in (p.stem, p.stem[:2]) for p in found)]
        if unknown:
            raise ValueError(f"{folder}: no notebook {', '.join(unknown)} (expected e.g. 02 or 02_losses_and_metrics)")
        found = [p for p in found if p.stem in only or p.stem[:2] in only]
    if not found:
        raise FileNotFoundError(f"{folder}: no NN_name.ipynb notebooks")
    return found


def make_course(root: str | Path, notebooks_dir: str | Path | None = None, only: list[str] | None = None,
                keep_widgets: bool = False) -> list[str]:
    """An nbgrader course folder at ``root``: ``nbgrader_config.py`` and ``source/NN_name/NN_name.ipynb``.

    One assignment per notebook, named after it. The notebooks are copied as committed, less their
    saved widget state (it belongs to the solved run) unless ``keep_widgets``; an existing
    ``nbgrader_config.py`` is kept (a course's own settings). Returns the assignment names.
    """
    from depthkit.files import atomic_write_bytes

    root = Path(root)
    names = []
    for path in notebook_paths(notebooks_dir, only):
        nb = nbformat.read(path, as_version=4)
        if not keep_widgets:
            nb.metadata.pop("widgets", None)
        target = root / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp, nb=nb: nbformat.write(nb, str(tmp)))
        names.append(path.stem)
    if not (root / "nbgrader_config.py").exists():
        atomic_write_bytes(root / "nbgrader_config.py", CONFIG.encode("utf-8"))
    return names



def scripts_on_path() -> AbstractContextManager[None]:
    """This interpreter's scripts folder first on PATH: nbgrader's gradebook runs the ``alembic`` command."""
    return environment(PATH=sysconfig.get_path("scripts") + os.pathsep + os.environ.get("PATH", ""))


def nbgrader_api(root: Path, keep_outputs: bool = False):
    """nbgrader's own API on the course folder ``root``, configured by its ``nbgrader_config.py``.

    ``keep_outputs`` switches off nbgrader's ``ClearOutput`` step (the book shows the committed outputs).
    """
    try:
        from nbgrader.apps import NbGraderAPI
        from traitlets.config.loader import PyFileConfigLoader
    except ImportError:
        raise RuntimeError("nbgrader is not installed: pip install nbgrader==0.9.6 "
                           "(make test and make student install it)") from None
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    if keep_outputs:
        config.ClearOutput.enabled = False
    return NbGraderAPI(config=config)


def release(root: str | Path, names: list[str], keep_outputs: bool = False) -> list[Path]:
    """Run nbgrader's ``generate_assignment`` on each assignment of the course folder ``root``.

    Returns the released notebooks (``release/NN_name/NN_name.ipynb``). A notebook that nbgrader
    refuses raises ``ValueError`` naming it and nbgrader's reason. ``keep_outputs``: see :func:`nbgrader_api`.
    """
    root = Path(root)
    api = nbgrader_api(root, keep_outputs)
    written = []
    with scripts_on_path():
        for name in names:
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise ValueError(f"{name}.ipynb: nbgrader generate_assignment failed: {nbgrader_reason(result)}")
            written.append(root / "release" / name / f"{name}.ipynb")
    return written


def nbgrader_reason(result: dict) -> str:
    """nbgrader's first error line of an API result (and the first line of the cell it names), else the traceback's last."""
    lines = [line for line in (result.get("log", "") + "\n" + result.get("error", "")).splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.startswith("[ERROR]")), None)
    if at is None:
        return lines[-1][:300] if lines else "no reason given"
    reason = lines[at].removeprefix("[ERROR] ").strip()
    if reason.endswith("Cell contents are:") and at + 1 < len(lines):
        reason = reason.removesuffix("Cell contents are:").rstrip(" .;:") + f" (the cell that starts {lines[at + 1].strip()[:80]!r})"
    return reason[:400]


def stub_source(source: str) -> str:
    """A code cell's ``source`` as the student copy holds it: each solution region replaced by nbgrader's stub."""
    try:
        from nbgrader.preprocessors import ClearSolutions
    except ImportError:
        raise RuntimeError("nbgrader is not installed: pip install nbgrader==0.9.6") from None
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": "cell", "locked": False, "schema_version": 3,
                                 "solution": True, "task": False}
    try:
        cell, _ = ClearSolutions(code_stub={"python": CODE_STUB}).preprocess_cell(cell, {"language": "python"}, 0)
    except RuntimeError as err:  # nbgrader's own words: "no end solution statement found", ...
        raise ValueError(f"nbgrader cannot stub this cell: {err}") from None
    return cell.source


def write_student_copies(out_dir: str | Path, notebooks_dir: str | Path | None = None,
                         only: list[str] | None = None, keep_outputs: bool = False) -> list[Path]:
    """Student copies of the notebooks in ``out_dir``: nbgrader's release of each, built in a temporary course.

    ``keep_outputs`` (the book, ``depthkit.course.site``): the committed outputs and widget state stay,
    except the outputs of the graded cells (:func:`clear_graded_outputs`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="depthkit-course-") as tmp:
        names = make_course(tmp, notebooks_dir, only, keep_widgets=keep_outputs)
        for released in release(tmp, names, keep_outputs):
            target = out / released.name
            if keep_outputs:
                nb = clear_graded_outputs(nbformat.read(released, as_version=4))
                atomic_write(target, lambda tmp_path, nb=nb: nbformat.write(nb, str(tmp_path)))
            else:
                shutil.copyfile(released, target)
            written.append(target)
    return written


def clear_graded_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without the outputs of its nbgrader solution and check cells (in place; returned).

    They come from the key: a check cell prints what its hidden tests found, and a solution's output
    is the worked solution's, not the stub's the page shows.
    """
    for cell in nb.cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (grading.get("solution") or grading.get("grade")):
            cell.outputs, cell.execution_count = [], None
    return nb
