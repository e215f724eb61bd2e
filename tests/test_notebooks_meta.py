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
            "05_diw_finetuning", "06_comparison", "07_your_own_image", "08_depth_cues"]
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


RESULT_NOTEBOOKS = ["03_lraspp", "04_unetpp", "05_diw_finetuning", "06_comparison", "07_your_own_image", "08_depth_cues"]


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
