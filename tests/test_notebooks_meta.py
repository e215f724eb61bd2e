"""Fast checks on the notebooks that do not execute them (nbval does that, under the smoke profile).

Every notebook is a jupytext pair: ``notebooks/NN_name.py`` (py:percent, the source people edit) and
``notebooks/NN_name.ipynb`` (the same cells plus the saved outputs of a demo run).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["00_setup", "01_data_exploration", "02_losses_and_metrics", "03_lraspp", "04_unetpp",
            "05_diw_finetuning", "06_comparison", "07_your_own_image", "08_depth_cues", "09_after_the_report"]
COLAB_CELL = (NB_DIR / "colab_cell.txt").read_text(encoding="utf-8").rstrip("\n")  # the one copy edited by hand
REPO_URL = re.search(r'^REPO_URL = os\.environ\.get\("DEPTHKIT_REPO", "(https://github\.com/[^"]+)"\)$',
                     COLAB_CELL, re.M).group(1)
CHECK = "# NBVAL_CHECK_OUTPUT"
# what a machine path looks like in an output: a home, work or temp folder, a Colab checkout, a Windows drive
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/tmp/|/home/|/root/|/Users/|/content/|/private/|/var/folders/|[A-Z]:\\)")


def _read(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4)


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def is_checked(cell) -> bool:
    """True for code cells nbval compares (``# NBVAL_CHECK_OUTPUT`` on their first line)."""
    return cell.cell_type == "code" and cell.source.startswith(CHECK)


def test_the_numbered_notebooks_exist_as_pairs():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == EXPECTED
    assert sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py")) == EXPECTED
    assert not (NB_DIR / "build_notebooks.py").exists()  # no generator: the .py files are the sources


def test_jupytext_pairs_ipynb_with_py_percent():
    config = (NB_DIR / "jupytext.toml").read_text(encoding="utf-8")
    assert re.search(r'^formats\s*=\s*"ipynb,py:percent"\s*$', config, re.M)


@pytest.mark.parametrize("stem", EXPECTED)
def test_py_source_and_ipynb_have_the_same_cells(stem):
    """Run `jupytext --sync notebooks/[0-9][0-9]_*.py` after editing either file of a pair."""
    text = (NB_DIR / f"{stem}.py").read_text(encoding="utf-8")
    assert "format_name: percent" in text.split("# ---", 2)[1], f"{stem}.py is not in py:percent format"
    source = jupytext.reads(text, fmt="py:percent")
    stored = _read(stem)
    assert [(c.cell_type, c.source) for c in source.cells] == [(c.cell_type, c.source) for c in stored.cells], \
        f"{stem}.py and {stem}.ipynb differ: run jupytext --sync notebooks/{stem}.py"


@pytest.mark.parametrize("stem", EXPECTED)
def test_valid_nbformat_and_python3_kernel(stem):
    nb = _read(stem)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["language"] == "python"


@pytest.mark.parametrize("stem", EXPECTED)
def test_first_code_cell_is_the_shared_colab_cell(stem):
    first = _code_cells(_read(stem))[0]
    assert first.source == COLAB_CELL, f"{stem}: the first code cell must be notebooks/colab_cell.txt, verbatim"
    assert '"google.colab" in sys.modules' in first.source


def test_the_repository_url_is_written_once_in_the_colab_cell():
    assert COLAB_CELL.count("github.com") == 1
    assert REPO_URL.startswith("https://github.com/") and len(REPO_URL.split("/")) == 5


@pytest.mark.parametrize("stem", EXPECTED)
def test_title_cell_renders_with_its_colab_badge(stem):
    """The title is a markdown heading (not an indented code block) followed by an "Open in Colab" badge."""
    title = _read(stem).cells[0]
    assert title.cell_type == "markdown"
    assert title.source.startswith(f"# {stem[:2]} · ")
    repo = REPO_URL.split("github.com/")[1]
    badge = f"(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{stem}.ipynb)"
    assert badge in title.source


@pytest.mark.parametrize("stem", EXPECTED)
def test_markdown_is_not_indented_into_code_blocks(stem):
    """Four leading spaces turn markdown into a grey code block: none outside fenced code."""
    for cell in _read(stem).cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced:
                assert not line.startswith("    "), f"{stem}: cell {cell.get('id')} has an indented line: {line!r}"


def test_profile_cell_is_shared():
    """The second code cell (profile, device, TAG) is the same in every notebook."""
    cells = {stem: _code_cells(_read(stem))[1].source for stem in EXPECTED}
    assert len(set(cells.values())) == 1, "the profile cells differ: " + ", ".join(cells)
    assert "PROFILE = get_profile()" in cells[EXPECTED[0]] and "TAG = " in cells[EXPECTED[0]]


def test_colab_cell_lets_the_user_set_the_repository_and_explains_a_failed_clone():
    assert 'os.environ.get("DEPTHKIT_REPO"' in COLAB_CELL
    clone = next(line for line in COLAB_CELL.splitlines() if '"git", "clone"' in line)
    assert "REPO_URL" in clone and "check=True" not in clone  # a failed clone is explained, not a CalledProcessError
    failure = COLAB_CELL[COLAB_CELL.index("if clone.returncode != 0:"):COLAB_CELL.index("os.chdir(REPO_DIR)")]
    # one short message, no traceback (tests/test_colab.py runs this branch in IPython)
    assert "DEPTHKIT_REPO" in failure and "_render_traceback_" in failure and "SystemExit" not in failure


def test_colab_cell_pins_segmentation_models_pytorch_to_the_tested_range():
    from importlib.metadata import version

    pin = re.search(r'^SMP = "segmentation-models-pytorch>=([\d.]+),<([\d.]+)"', COLAB_CELL, re.M)
    assert pin, "the Colab cell installs segmentation-models-pytorch from a pinned range"
    tested = tuple(int(x) for x in version("segmentation-models-pytorch").split(".")[:2])
    low, high = (tuple(int(x) for x in v.split(".")[:2]) for v in pin.groups())
    assert low <= tested < high, f"the venv's tested smp {tested} is outside the Colab pin {pin.group(0)}"


def test_colab_cell_never_upgrades_colab_packages():
    cell = COLAB_CELL
    assert "--no-deps" in cell and "-U" not in cell.split() and "--upgrade" not in cell
    for pkg in ("torch", "torchvision", "ipywidgets", "matplotlib", "h5py"):
        assert f"install {pkg}" not in cell and f'"{pkg}"' not in cell


@pytest.mark.parametrize("stem", EXPECTED)
def test_no_saved_errors(stem):
    for cell in _code_cells(_read(stem)):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{stem}: saved error in cell {cell.get('id')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text, f"{stem}: saved traceback in cell {cell.get('id')}"


def _output_text(out) -> str:
    if out.output_type == "stream":
        return out.text
    data = out.get("data", {})
    return "\n".join(str(data[k]) for k in ("text/plain", "text/markdown", "text/html") if k in data)


@pytest.mark.parametrize("stem", EXPECTED)
def test_no_machine_paths_in_saved_outputs(stem):
    for cell in _code_cells(_read(stem)):
        for out in cell.get("outputs", []):
            hit = MACHINE_PATH.search(_output_text(out))
            assert not hit, f"{stem}: cell {cell.get('id')} shows a machine path: ...{_output_text(out)[hit.start():hit.start() + 60]}"


@pytest.mark.parametrize("stem", EXPECTED)
def test_cells_do_not_print_absolute_paths(stem):
    """``PreparedData.describe()`` shows an absolute folder when the data lives outside the checkout."""
    for cell in _code_cells(_read(stem)):
        assert ".describe()" not in cell.source, f"{stem}: cell {cell.get('id')} prints prepared.describe()"
        assert "print(f\"best checkpoint: {run" not in cell.source


@pytest.mark.parametrize("stem", EXPECTED)
def test_mentions_and_uses_the_profile(stem):
    nb = _read(stem)
    text = "\n".join(c.source for c in nb.cells)
    assert "get_profile()" in text
    assert "profile" in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()


@pytest.mark.parametrize("stem", EXPECTED)
def test_checked_cells_store_their_expected_output(stem):
    """nbval compares a checked cell with its stored outputs, so those must be there (and be text)."""
    for cell in _code_cells(_read(stem)):
        if is_checked(cell):
            assert cell.outputs, f"{stem}: checked cell {cell.id} has no stored output (run the notebook)"
            assert cell.execution_count is not None, f"{stem}: nbval skips cell {cell.id}: outputs without a count"
            for out in cell.outputs:
                assert out.output_type == "stream" and out.name == "stdout", f"{stem}: cell {cell.id}"
                assert "it/s" not in out.text and "\r" not in out.text  # no progress bars in checked cells


@pytest.mark.parametrize("stem", EXPECTED)
def test_figures_name_their_data(stem):
    """Every cell that draws with depthkit.viz or matplotlib passes the TAG (data, profile, device) or says what it shows."""
    for cell in _code_cells(_read(stem)):
        src = cell.source
        draws = any(k in src for k in ("viz.show_", "viz.plot_", "viz.table_figure", "plt.subplots"))
        if draws:
            generator = "render_scene" in src or "syn.render(" in src  # a picture straight from the generator
            assert "TAG" in src or "no data" in src or "no model" in src or generator, \
                f"{stem}: cell {cell.id} draws a figure without naming its data"


@pytest.mark.parametrize("stem", EXPECTED)
def test_markdown_does_not_hard_code_profile_numbers(stem):
    """Split fractions and epochs differ between profiles: cells print them from the profile instead."""
    for cell in _read(stem).cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"\b\d{2}/\d{2}/\d{2}\b", cell.source), f"{stem}: cell {cell.get('id')}"
            assert "same recipe" not in cell.source.lower(), f"{stem}: cell {cell.get('id')}"


def test_download_cell_is_off_by_default():
    src = "\n".join(c.source for c in _code_cells(_read("00_setup")))
    assert "DOWNLOAD = False" in src and "if DOWNLOAD:" in src


def test_notebooks_never_train_outside_train_stage():
    """Training goes through depthkit.reproduce.train_stage, which reuses finished checkpoints."""
    for stem in EXPECTED:
        src = "\n".join(c.source for c in _code_cells(_read(stem)))
        assert "fit(" not in src.replace("train_stage(", ""), stem


@pytest.mark.parametrize("stem", EXPECTED)
def test_cell_ids_are_unique(stem):
    ids = [c.get("id") for c in _read(stem).cells]
    assert all(ids) and len(set(ids)) == len(ids), stem


RESULT_NOTEBOOKS = ["03_lraspp", "04_unetpp", "05_diw_finetuning", "06_comparison", "07_your_own_image", "08_depth_cues",
                    "09_after_the_report"]


@pytest.mark.parametrize("stem", RESULT_NOTEBOOKS)
def test_results_are_followed_by_a_what_we_got_cell_filled_from_the_code(stem):
    """After a result, a "What we got" heading and a code cell that writes its interpretation from the objects.

    The text comes from a builder in :mod:`depthkit.course.narrative` (tested there: every claim gated by
    the noise), so the cell ends in one call, ``Markdown(narrative.<builder>(...))``.
    """
    cells = _read(stem).cells
    heads = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.strip() == "### What we got"]
    assert heads, f"{stem}: no 'What we got' cell"
    for i in heads:
        nxt = cells[i + 1]
        assert nxt.cell_type == "code" and "Markdown(narrative." in nxt.source, f"{stem}: cell {nxt.id}"


def test_notebook_07_uses_colabs_uploader_and_keeps_widget_state_small():
    nb = _read("07_your_own_image")
    src = "\n".join(c.source for c in _code_cells(nb))
    assert "files.upload()" in src and "if IN_COLAB:" in src
    assert "widgets.interact(" not in src  # interact saves every drawn figure into the widget state
    state = json.dumps(nb.metadata.get("widgets", {}))
    assert len(state) < 40_000 and "image/png" not in state, f"widget state of {len(state)} characters"


@pytest.mark.parametrize("stem", EXPECTED)
def test_saved_output_widgets_hold_no_pictures(stem):
    """Catches: ``make notebooks`` without its ``depthkit.course.widget_state`` step (interact and Output areas save
    every drawn figure a second time into the notebook's metadata)."""
    from depthkit.course.widget_state import OUTPUT_MODEL

    state = _read(stem).metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    full = [k for k, m in state.get("state", {}).items()
            if m.get("model_name") == OUTPUT_MODEL and m.get("state", {}).get("outputs")]
    assert not full, f"{stem}: Output widgets {full} keep their outputs: run python -m depthkit.course.widget_state"


def test_widget_state_trim_empties_outputs_only(tmp_path):
    """Catches: a trim that drops other widgets' state, writes a notebook nbformat cannot read, or fails on
    a broken file without naming it."""
    from depthkit.course.widget_state import main, trim_file

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    picture = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
        "state": {"out": {"model_name": "OutputModel", "model_module": "@jupyter-widgets/output",
                          "model_module_version": "1.0.0", "state": {"outputs": [picture], "layout": "IPY_MODEL_x"}},
                  "slider": {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
                             "model_module_version": "2.0.0", "state": {"value": 3, "max": 9}}}}}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert trim_file(path) == 1 and trim_file(path) == 0  # the second pass finds nothing to do
    state = nbformat.read(path, as_version=4).metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state["out"]["state"] == {"outputs": [], "layout": "IPY_MODEL_x"}
    assert state["slider"]["state"] == {"value": 3, "max": 9}
    (tmp_path / "broken.ipynb").write_text("{ not json", encoding="utf-8")
    assert main([str(tmp_path / "broken.ipynb")]) == 1
    with pytest.raises(ValueError, match="broken.ipynb: not a readable notebook"):
        trim_file(tmp_path / "broken.ipynb")


def test_notebook_08_evaluates_cue_removal_with_depthkit():
    src = "\n".join(c.source for c in _code_cells(_read("08_depth_cues")))
    for needle in ("cues_off=", "per_image_scores(", "DepthData(", "train_stage(", "viz.table_figure", "set(ylabel="):
        assert needle in src, needle


# ---- the notebooks as nbgrader assignments (tests/test_nbgrader.py runs nbgrader itself on them) -------------

MARKERS = {"### BEGIN SOLUTION": "solution", "### END SOLUTION": "solution",
           "### BEGIN HIDDEN TESTS": "grade", "### END HIDDEN TESTS": "grade"}
QUESTION = re.compile(r"^\*\*(\d+)\.\*\* \*(Explain|Try it[^*]*)\* \((\d+) points?\)\.", re.M)
RUBRIC = re.compile(r"^\*Rubric \((\d+) points?\):\* \S", re.M)
READING = re.compile(r"^\*\*Your reading\*\* \*Interpret\* \((\d+) points?\)\. Before you run the next cell", re.M)
READING_ROW = 'your reading of the result (before "What we got")'
READING_NOTEBOOKS = ["03_lraspp", "04_unetpp", "05_diw_finetuning", "06_comparison"]


def grading(cell) -> dict:
    """A cell's nbgrader metadata ({} for a cell nbgrader ignores)."""
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.mark.parametrize("stem", EXPECTED)
def test_nbgrader_markers_stand_only_in_cells_that_may_hold_them(stem):
    """Catches: prose naming a marker (nbgrader's "No end solution statement found"), a solution region in a
    cell without metadata ("Solution region detected in a non-solution cell"), hidden tests outside a test cell.
    nbgrader matches the marker text anywhere in a line of any cell, markdown included."""
    for cell in _read(stem).cells:
        for marker, kind in MARKERS.items():
            if marker.removeprefix("### ") in cell.source:
                assert grading(cell).get(kind) and cell.cell_type == "code", \
                    f"{stem}: cell {cell.id} holds {marker!r} but is no {kind} cell"
        assert "YOUR ANSWER HERE" not in cell.source and "BEGIN MARK SCHEME" not in cell.source, f"{stem}: cell {cell.id}"


@pytest.mark.parametrize("stem", EXPECTED)
def test_implement_it_and_check_cells_carry_nbgrader_metadata(stem):
    """Every implement-it cell is a solution cell, every check cell an autograded, locked test cell with points and
    hidden cases that call the same check with ``hidden=True``; grade ids are unique and name the exercise."""
    cells, ids = _read(stem).cells, []
    for i, cell in enumerate(cells):
        meta = grading(cell)
        if meta:
            assert meta["schema_version"] == 3 and meta["task"] is False, f"{stem}: cell {cell.id}"
            ids.append(meta["grade_id"])
        exercise = re.match(r"# Exercise (\d\d)\.(\d)\b", cell.source)
        if cell.cell_type == "code" and exercise:
            number = "_".join(exercise.groups())
            assert meta == {"grade": False, "grade_id": f"ex_{number}", "locked": False, "schema_version": 3,
                            "solution": True, "task": False}, f"{stem}: cell {cell.id}"
            lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
            begin = lines.index("### BEGIN SOLUTION")
            assert lines[begin - 1].endswith('"""') and lines[-1] == "### END SOLUTION", \
                f"{stem}: exercise {number}: code outside the solution markers would reach the student copy"
            check = cells[i + 1]
            call = re.search(r"^(check_\w+)\((\w+)\)$", check.source, re.M)
            assert call, f"{stem}: no check call in the cell after exercise {number}"
            assert grading(check) == {"grade": True, "grade_id": f"check_{number}", "locked": True,
                                      "points": grading(check).get("points"), "schema_version": 3, "solution": False,
                                      "task": False} and grading(check)["points"] > 0, f"{stem}: cell {check.id}"
            hidden = check.source.split("### BEGIN HIDDEN TESTS\n")[1].split("### END HIDDEN TESTS")[0]
            assert hidden == f"{call.group(1)}({call.group(2)}, hidden=True)\n", f"{stem}: cell {check.id}"
    assert len(ids) == len(set(ids)), f"{stem}: grade ids used twice: {ids}"
    assert all(gid.endswith(tuple("0123456789")) and f"_{stem[:2]}_" in gid for gid in ids), ids


def _questions(stem: str) -> list[tuple]:
    """(question cell, answer cell) for every written question of the notebook."""
    cells = _read(stem).cells
    return [(c, cells[i + 1]) for i, c in enumerate(cells) if c.cell_type == "markdown" and QUESTION.match(c.source)]


@pytest.mark.parametrize("stem", EXPECTED)
def test_every_written_question_has_an_answer_cell_with_its_points_and_a_rubric(stem):
    """Catches: a question without an answer cell, points said in the question that differ from the ones graded,
    a rubric whose points differ, an answer cell nbgrader would not grade by hand."""
    for number, (question, answer) in enumerate(_questions(stem), 1):
        said = QUESTION.match(question.source)
        assert int(said.group(1)) == number, f"{stem}: question {said.group(1)} out of order"
        meta = grading(answer)
        assert answer.cell_type == "markdown" and meta == {
            "grade": True, "grade_id": f"answer_{stem[:2]}_{number}", "locked": False, "points": int(said.group(3)),
            "schema_version": 3, "solution": True, "task": False}, f"{stem}: the cell after question {number}"
        assert answer.source.startswith("**Answer.** "), f"{stem}: answer {number}"
        rubric = RUBRIC.findall(answer.source)
        assert rubric == [said.group(3)], f"{stem}: answer {number} needs one rubric line of {said.group(3)} points"
    markdown_answers = [c for c in _read(stem).cells if c.cell_type == "markdown" and grading(c)]
    assert len(markdown_answers) == len(_questions(stem)) + len(_readings(stem)), f"{stem}: an answer cell without its question"


def _readings(stem: str) -> list[tuple]:
    """(reading cell, answer cell, index of the answer cell): the student's interpretation of a result."""
    cells = _read(stem).cells
    return [(c, cells[i + 1], i + 1) for i, c in enumerate(cells) if c.cell_type == "markdown" and READING.match(c.source)]


@pytest.mark.parametrize("stem", EXPECTED)
def test_the_student_reads_the_main_result_before_what_we_got(stem):
    """In 03-06 the student writes an interpretation of the main result before the generated "What we got" cell:
    a hand-graded answer cell with its points and a one-line rubric, just before the first "What we got" heading.
    Catches: a reading placed after depthkit's own (the student would copy it), one without its answer cell or
    points, an answer cell nbgrader would not grade by hand."""
    cells, readings = _read(stem).cells, _readings(stem)
    if stem not in READING_NOTEBOOKS:
        assert not readings, stem
        return
    assert len(readings) == 1, f"{stem}: {len(readings)} readings"
    question, answer, at = readings[0]
    heads = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.strip() == "### What we got"]
    assert heads[0] == at + 1, f"{stem}: the reading's answer cell must stand just before the first 'What we got'"
    points = int(READING.match(question.source).group(1))
    assert answer.cell_type == "markdown" and grading(answer) == {
        "grade": True, "grade_id": f"reading_{stem[:2]}_1", "locked": False, "points": points,
        "schema_version": 3, "solution": True, "task": False}, f"{stem}: {grading(answer)}"
    assert answer.source.startswith("**Answer.** ") and RUBRIC.findall(answer.source) == [str(points)], stem


def test_the_written_questions_of_01_to_09_all_have_answers():
    counts = {stem: len(_questions(stem)) for stem in EXPECTED}
    assert counts["00_setup"] == 0 and all(counts[s] >= 3 for s in EXPECTED[1:]), counts
    assert sum(counts.values()) >= 30, counts


@pytest.mark.parametrize("stem", EXPECTED[1:])
def test_the_points_table_states_what_is_graded(stem):
    """The Exercises cell's table: written questions, each autograded exercise, the total; all from the metadata."""
    cells = _read(stem).cells
    table = next(c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    written = [grading(a)["points"] for _, a in _questions(stem)]
    read = [grading(a)["points"] for _, a, _ in _readings(stem)]
    checks = {grading(c)["grade_id"]: grading(c)["points"] for c in cells if grading(c).get("grade") and c.cell_type == "code"}
    rows = dict(re.findall(r"^\| (.+?) \| \**(\d+)\** \|", table, re.M))
    expected = {f"questions 1–{len(written)} (points beside each)": str(sum(written)),
                "**total**": str(sum(written) + sum(read) + sum(checks.values()))}
    if read:
        expected[READING_ROW] = str(sum(read))
    expected.update({f"Exercise {gid[6:8]}.{gid[9:]}": str(p) for gid, p in checks.items()})
    assert rows == expected, f"{stem}: the points table says {rows}, the cells {expected}"


@pytest.mark.parametrize("stem", EXPECTED)
def test_jupytext_pairs_carry_the_same_nbgrader_metadata(stem):
    """nbgrader reads the .ipynb; people edit the .py: the metadata on each `# %%` line must reach the .ipynb."""
    source = jupytext.reads((NB_DIR / f"{stem}.py").read_text(encoding="utf-8"), fmt="py:percent")
    assert [grading(c) for c in source.cells] == [grading(c) for c in _read(stem).cells], \
        f"{stem}: run jupytext --sync notebooks/{stem}.py"


@pytest.mark.parametrize("stem", EXPECTED)
def test_every_notebook_opens_with_its_goals_prerequisites_and_measured_times(stem):
    """After the title: 3-5 things the student can do after it, what it assumes, how long (the exercises an estimate);
    the run times are printed from notebooks/run_times.json by the cell after the profile cell, for this notebook."""
    cells = _read(stem).cells
    opening = cells[1].source
    assert cells[1].cell_type == "markdown" and opening.startswith("**After this notebook you can**"), stem
    goals = re.findall(r"^- \S", opening.split("**It assumes**")[0], re.M)
    assert 3 <= len(goals) <= 5, f"{stem}: {len(goals)} goals"
    assert "**It assumes** " in opening and "**How long.**" in opening and "(an estimate)" in opening, stem
    assert not re.search(r"\d+\s*(s|min|seconds|minutes)\b.*(smoke|demo)", opening), f"{stem}: a typed run time"
    timing = _code_cells(_read(stem))[2].source
    assert f'print(describe("{stem}"))' in timing and "from depthkit.course.runtimes import describe" in timing, stem


def test_the_points_in_docs_teaching_are_the_notebooks():
    """docs/teaching.md's table of points per notebook (and its totals row), and the README's counts, against the cells."""
    text = (NB_DIR.parent / "docs" / "teaching.md").read_text(encoding="utf-8")
    rows = {m[0]: m[1:] for m in re.findall(r"^\| `(\d\d_\w+)` \| (\d+) questions?, (\d+) \| (.+?) \| (\d+) \|$", text, re.M)}
    total_questions = total_written = total_auto = 0
    for stem in EXPECTED[1:]:
        cells = _read(stem).cells
        written = [grading(a)["points"] for _, a in _questions(stem)] + [grading(a)["points"] for _, a, _ in _readings(stem)]
        auto = {grading(c)["grade_id"]: grading(c)["points"] for c in cells if grading(c).get("grade") and c.cell_type == "code"}
        said = ", ".join(f"{g[6:8]}.{g[9:]}: {p}" for g, p in auto.items())
        assert stem in rows, f"docs/teaching.md: no row for {stem}"
        n, w, a, t = rows[stem]
        assert (int(n), int(w), int(t)) == (len(written), sum(written), sum(written) + sum(auto.values())), stem
        assert a.startswith(said or "–"), f"{stem}: docs say {a!r}, the cells {said!r}"
        total_questions, total_written, total_auto = total_questions + len(written), total_written + sum(written), total_auto + sum(auto.values())
    assert f"| **all** | **{total_questions} questions, {total_written}** | **{len(autograded_ids())} exercises, {total_auto}** | " \
           f"**{total_written + total_auto}** |" in text
    readme = " ".join((NB_DIR.parent / "README.md").read_text(encoding="utf-8").split())
    assert f"{total_questions} written questions" in readme and f"{len(autograded_ids())} implement-it exercises" in readme


def autograded_ids() -> list[str]:
    """Every autograded cell of the series."""
    return [grading(c)["grade_id"] for stem in EXPECTED for c in _read(stem).cells if grading(c).get("grade") and c.cell_type == "code"]
