"""The notebooks are nbgrader assignments as committed: the real nbgrader flow, as an instructor runs it.

A course folder is built from ``notebooks/`` (``python -m depthkit student --course``); nbgrader's own
commands then run on it under the smoke profile: ``generate_assignment`` (every notebook), ``autograde``
of 02–05 for three kinds of submission, ``generate_feedback``. The submissions:

- ``key``: the committed notebooks themselves: every autograded point;
- ``blank``: the release, untouched: no autograded point;
- one per entry of :data:`PLANTED`: the release answered with the key's solutions except one planted
  wrong body: it loses exactly the points of the check cells it names, and nothing else.

Add a case to :data:`PLANTED` to grade one more kind of wrong answer (a body that wraps depthkit's own
function, say): it is submitted, autograded and checked with the others.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from depthkit.course.student import CODE_STUB

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
GRADED = ["02_losses_and_metrics", "03_lraspp", "04_unetpp", "05_diw_finetuning"]  # autograded under smoke
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


@dataclass(frozen=True)
class Planted:
    """A submission: the release answered with the key, except ``bodies`` (solution grade id -> the body written instead)."""

    student: str
    assignment: str
    bodies: dict[str, str]
    loses: frozenset[str]  # the autograded cells that must score 0; every other one scores full points
    why: str


# Exercise 02.1 normalised over all pixels, Kinect holes included (the mask only weighs the mean)
POOLED_NMSE = """def to_unit_range(x):
    lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-12)

error = (to_unit_range(pred) - to_unit_range(depth)) ** 2 * mask
return (error.sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))).mean()"""

# Exercises 02.2 and 02.3 answered by calling depthkit's own implementation (under another name, so patching
# the module's attribute would not see it): the checks refuse the call, so both lose their points.
WRAPPED_RANKING = """from depthkit.losses import ranking_loss as depthkit_ranking_loss

return depthkit_ranking_loss(pred, pairs, relation)"""
WRAPPED_WHDR = """from depthkit import metrics

return metrics.whdr(pred, pairs, relation, delta=delta)"""

PLANTED = [
    Planted("pools_the_holes", "02_losses_and_metrics", {"ex_02_1": POOLED_NMSE}, frozenset({"check_02_1"}),
            "02.1 min-max scales over every pixel, holes included"),
    Planted("wraps_depthkit", "02_losses_and_metrics", {"ex_02_2": WRAPPED_RANKING, "ex_02_3": WRAPPED_WHDR},
            frozenset({"check_02_2", "check_02_3"}), "02.2 and 02.3 call depthkit's own ranking loss and WHDR"),
]


def nbgrader_env() -> dict:
    """The environment of an instructor's shell: this checkout importable, nbgrader's folder (alembic) on PATH."""
    env = dict(os.environ, MPLBACKEND="Agg", DEPTHKIT_PROFILE="smoke")
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def nbgrader(course: Path, *args: str) -> float:
    """Run ``nbgrader ARGS`` in the course folder (the real command); its seconds. A failure shows nbgrader's log."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "[ERROR]" not in done.stderr, done.stderr[-3000:]
    return time.perf_counter() - start


def grading(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def fill_region(source: str, body: str) -> str:
    """``source`` with the lines between the solution markers replaced by ``body`` (indented like the markers)."""
    lines, out, inside = source.split("\n"), [], False
    for line in lines:
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + b if b else b for b in body.split("\n")]
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def answered(release: nbformat.NotebookNode, key: nbformat.NotebookNode, bodies: dict[str, str]) -> nbformat.NotebookNode:
    """A student's submission: the release with every solution cell answered as the key does, except ``bodies``."""
    solutions = {grading(c)["grade_id"]: c.source for c in key.cells if grading(c).get("solution")}
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        gid = grading(cell).get("grade_id")
        if grading(cell).get("solution"):
            source = solutions[gid]
            cell.source = fill_region(source, bodies[gid]) if gid in bodies else without_region(source, BEGIN, END, keep=True)
    return nb


def without_region(source: str, begin: str, end: str, keep: bool = False) -> str:
    """``source`` without the marker lines ``begin``/``end``, and without the lines between them unless ``keep``."""
    out, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif keep or not inside:
            out.append(line)
    return "\n".join(out)


def region_lines(source: str) -> list[str]:
    """The solution's own lines (between the markers, dedented to the markers' indent); the whole source if none."""
    lines = source.split("\n")
    if not any(line.strip() == BEGIN for line in lines):
        return lines
    start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    stop = next(i for i, line in enumerate(lines) if line.strip() == END)
    indent = len(lines[start]) - len(lines[start].lstrip())
    return [line[indent:] for line in lines[start + 1:stop]]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder built from notebooks/ (the command an instructor runs), and nbgrader's release of every notebook."""
    from depthkit.cli import main

    root = tmp_path_factory.mktemp("nbgrader") / "course"
    assert main(["student", "--course", str(root)]) == 0
    seconds = nbgrader(root, "generate_assignment", "*")
    print(f"nbgrader generate_assignment, every notebook: {seconds:.1f} s")
    return root


@pytest.fixture(scope="module")
def flow(course, smoke_prepared):
    """Submissions (key, blank, the planted ones), autograde of 02-05, feedback; the seconds of each step."""
    submissions = {"key": {a: nbformat.read(NB_DIR / f"{a}.ipynb", as_version=4) for a in GRADED}}
    submissions["blank"] = {a: nbformat.read(course / "release" / a / f"{a}.ipynb", as_version=4) for a in GRADED}
    for plant in PLANTED:
        submissions[plant.student] = {plant.assignment: answered(submissions["blank"][plant.assignment],
                                                                 submissions["key"][plant.assignment], plant.bodies)}
    for student, notebooks in submissions.items():
        for assignment, nb in notebooks.items():
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{assignment}.ipynb")
    seconds = {f"autograde {a}": nbgrader(course, "autograde", a) for a in GRADED}
    seconds["generate_feedback"] = nbgrader(course, "generate_feedback", "*")
    print("nbgrader flow, seconds:", {k: round(v, 1) for k, v in seconds.items()})
    return {"course": course, "seconds": seconds, "submissions": submissions}


def scores(course: Path, student: str, assignment: str, kind: str = "code") -> dict[str, tuple]:
    """Each autograded cell's (score, max score) in the gradebook; ``kind="markdown"``: each written answer's
    (score, max score, needs manual grading)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "depthkit") as gb:
        graded = gb.find_submission_notebook(assignment, assignment, student)
        if kind == "code":
            return {g.name: (g.score, g.max_score) for g in graded.grades if g.cell_type == "code"}
        return {g.name: (g.score, g.max_score, g.needs_manual_grade) for g in graded.grades if g.cell_type == "markdown"}


def declared_answers(assignment: str) -> dict[str, float]:
    """The written answers of a committed notebook and their points."""
    nb = nbformat.read(NB_DIR / f"{assignment}.ipynb", as_version=4)
    return {grading(c)["grade_id"]: float(grading(c)["points"]) for c in nb.cells
            if grading(c).get("grade") and c.cell_type == "markdown"}


def declared_points(assignment: str) -> dict[str, float]:
    """The autograded cells of a committed notebook and their points, from its metadata."""
    nb = nbformat.read(NB_DIR / f"{assignment}.ipynb", as_version=4)
    return {grading(c)["grade_id"]: float(grading(c)["points"]) for c in nb.cells
            if grading(c).get("grade") and c.cell_type == "code"}


@pytest.mark.slow  # nbgrader generate_assignment on every notebook: ~20 s
def test_the_release_holds_no_solution_no_hidden_test_and_no_answer(course):
    for path in sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")):
        key = nbformat.read(path, as_version=4)
        release = nbformat.read(course / "release" / path.stem / path.name, as_version=4)
        assert [c.get("id") for c in release.cells] == [c.get("id") for c in key.cells], path.name
        solution_lines = {line.strip() for c in key.cells if grading(c).get("solution") and c.cell_type == "code"
                          for line in region_lines(c.source) if len(line.strip()) > 12}
        hidden_lines = {line.strip() for c in key.cells if HIDDEN[0] in c.source
                        for line in c.source.split(HIDDEN[0])[1].split(HIDDEN[1])[0].splitlines() if line.strip()}
        for cell, solved in zip(release.cells, key.cells):
            text = cell.source
            for marker in (BEGIN, END, *HIDDEN, "*Rubric", "**Answer.**"):
                assert marker not in text, f"{path.name}: {marker!r} left in cell {cell.get('id')}"
            leaked = [line for line in text.splitlines() if line.strip() in solution_lines | hidden_lines]
            assert not leaked, f"{path.name}: the release shows {leaked}"
            if grading(solved).get("solution") and cell.cell_type == "markdown":
                assert text == "YOUR ANSWER HERE", path.name
            if grading(solved).get("solution") and cell.cell_type == "code":  # docstring, then the stub, nothing else
                after = [line.strip() for line in text.split('"""')[-1].splitlines() if line.strip()]
                assert after == CODE_STUB.splitlines(), f"{path.name}: cell {cell.get('id')} ends with {after}"
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
            if grading(solved).get("grade") and cell.cell_type == "code":  # the visible check stays as it was
                assert text == without_region(solved.source, *HIDDEN), f"{path.name}: cell {cell.get('id')}"
        assert "widgets" not in release.metadata, path.name  # the solved run's widget state stays behind


@pytest.mark.slow  # the flow: a few minutes on a 2-core CPU
def test_autograde_gives_the_key_every_point_and_the_untouched_release_none(flow):
    for assignment in GRADED:
        points = declared_points(assignment)
        assert points, f"{assignment}: no autograded cell"
        key = scores(flow["course"], "key", assignment)
        assert key == {gid: (p, p) for gid, p in points.items()}, f"{assignment}: the key lost points: {key}"
        blank = scores(flow["course"], "blank", assignment)
        assert {gid: s for gid, (s, _) in blank.items()} == dict.fromkeys(points, 0.0), f"{assignment}: {blank}"
        answers = declared_answers(assignment)  # written answers: in the gradebook with their points, for a person
        key_answers = scores(flow["course"], "key", assignment, "markdown")
        assert {gid: (m, manual) for gid, (_, m, manual) in key_answers.items()} == \
            {gid: (p, True) for gid, p in answers.items()}, f"{assignment}: {key_answers}"
        blank_answers = scores(flow["course"], "blank", assignment, "markdown")  # "YOUR ANSWER HERE" scores 0 at once
        assert {gid: (s, manual) for gid, (s, _, manual) in blank_answers.items()} == dict.fromkeys(answers, (0.0, False))


@pytest.mark.slow
@pytest.mark.parametrize("plant", PLANTED, ids=[p.student for p in PLANTED])
def test_a_planted_mistake_loses_exactly_its_exercise(flow, plant):
    got = scores(flow["course"], plant.student, plant.assignment)
    expected = {gid: (0.0 if gid in plant.loses else p, p) for gid, p in declared_points(plant.assignment).items()}
    assert got == expected, f"{plant.why}: {got}"


@pytest.mark.slow
def test_generate_feedback_writes_each_students_feedback(flow):
    course = flow["course"]
    for student, notebooks in flow["submissions"].items():
        for assignment in notebooks:
            html = course / "feedback" / student / assignment / f"{assignment}.html"
            assert html.is_file(), html
            text = html.read_text(encoding="utf-8")
            autograded = sum(s for s, _ in scores(course, student, assignment).values())
            assert re.search(rf"Score: {autograded:g}(\.0)? / ", text), f"{html.name} of {student}: no score line"


@pytest.mark.slow
def test_make_student_is_nbgraders_release_cell_by_cell(course, tmp_path):
    from depthkit.course.student import write_student_copies

    written = write_student_copies(tmp_path)
    assert [p.name for p in written] == sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    for path in written:
        mine = nbformat.read(path, as_version=4)
        theirs = nbformat.read(course / "release" / path.stem / path.name, as_version=4)
        nbformat.validate(mine)
        assert mine.metadata == theirs.metadata, path.name
        assert len(mine.cells) == len(theirs.cells), path.name
        for a, b in zip(mine.cells, theirs.cells):
            assert (a.cell_type, a.source, a.metadata) == (b.cell_type, b.source, b.metadata), f"{path.name}: {a.get('id')}"


@pytest.mark.slow
def test_the_release_of_02_runs_up_to_its_first_check_and_stops_there_in_one_line(course, smoke_prepared, monkeypatch):
    """Executed as a student runs it: no error before the first check cell, which stops at the stub in one line."""
    from nbclient import NotebookClient

    for key, value in nbgrader_env().items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(course / "release" / GRADED[0] / f"{GRADED[0]}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if grading(c).get("grade") and c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(NB_DIR)}}).execute()
    errors = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert [i for i, _ in errors] == [first], [(i, o.ename, o.evalue) for i, o in errors]
    error = errors[0][1]
    assert error.ename == "NotImplementedYet" and "Exercise 02.1" in error.evalue and "not implemented yet" in error.evalue
    assert len(error.traceback) == 1  # one line, no traceback into depthkit


@pytest.mark.slow
def test_nbgrader_refuses_a_solution_outside_a_solution_cell_and_the_message_names_it(tmp_path):
    """Catches: an implement-it cell whose metadata line was lost (nbgrader's "Solution region detected in a
    non-solution cell"), reported in one line naming the notebook and the cell."""
    from depthkit.course.student import write_student_copies

    nb = nbformat.read(NB_DIR / "02_losses_and_metrics.ipynb", as_version=4)
    cell = next(c for c in nb.cells if grading(c).get("grade_id") == "ex_02_1")
    del cell.metadata["nbgrader"]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "02_losses_and_metrics.ipynb")
    with pytest.raises(ValueError, match=r"02_losses_and_metrics.ipynb: nbgrader generate_assignment failed: "
                                         r"Solution region detected in a non-solution cell.*# Exercise 02.1"):
        write_student_copies(tmp_path / "student", notebooks_dir=tmp_path / "notebooks")


def test_the_course_folder_holds_the_committed_notebooks_and_keeps_a_courses_own_config(tmp_path, capsys):
    """Catches: a course folder whose source differs from the committed notebooks (other than the saved widget
    state), and a second run that overwrites the settings an instructor gave nbgrader_config.py."""
    from depthkit.cli import main
    from depthkit.course.student import CONFIG

    assert main(["student", "--course", str(tmp_path)]) == 0
    committed = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert f"{len(committed)} assignments in source/" in capsys.readouterr().out
    assert (tmp_path / "nbgrader_config.py").read_text(encoding="utf-8") == CONFIG
    for path in sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")):
        source = nbformat.read(tmp_path / "source" / path.stem / path.name, as_version=4)
        committed = nbformat.read(path, as_version=4)
        assert source.cells == committed.cells and "widgets" not in source.metadata, path.name
    (tmp_path / "nbgrader_config.py").write_text(CONFIG + "c.Execute.timeout = 60\n", encoding="utf-8")
    assert main(["student", "--course", str(tmp_path)]) == 0
    assert (tmp_path / "nbgrader_config.py").read_text(encoding="utf-8").endswith("c.Execute.timeout = 60\n")


def test_make_test_installs_the_nbgrader_these_tests_ran():
    from importlib.metadata import version

    pinned = re.search(r"^nbgrader==([\d.]+)$", (ROOT / "requirements-grading.txt").read_text(), re.M).group(1)
    assert version("nbgrader") == pinned
    assert "-r requirements-grading.txt" in (ROOT / "Makefile").read_text()
