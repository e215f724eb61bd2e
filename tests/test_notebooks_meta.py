"""Fast checks on the notebooks that do not execute them (nbval does that, under the smoke profile)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["00_setup", "01_data_exploration", "02_losses_and_metrics", "03_lraspp", "04_unetpp",
            "05_diw_finetuning", "06_comparison", "07_your_own_image"]


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _builder()


def _read(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4)


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_numbered_notebooks_exist():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == EXPECTED
    assert list(BUILDER.NOTEBOOKS) == EXPECTED


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
    assert first.source == BUILDER.COLAB_CELL
    assert '"google.colab" in sys.modules' in first.source
    assert BUILDER.REPO_URL in first.source


def test_colab_cell_never_upgrades_colab_packages():
    cell = BUILDER.COLAB_CELL
    assert "--no-deps" in cell and "-U" not in cell.split() and "--upgrade" not in cell
    for pkg in ("torch", "torchvision", "ipywidgets", "matplotlib", "h5py"):
        assert f"install {pkg}" not in cell and f'"{pkg}"' not in cell


@pytest.mark.parametrize("stem", EXPECTED)
def test_sources_match_the_generator(stem):
    built = [(c.cell_type, c.source) for c in BUILDER.build(stem).cells]
    stored = [(c.cell_type, c.source) for c in _read(stem).cells]
    assert stored == built, f"{stem}.ipynb differs from notebooks/build_notebooks.py: rerun it"


@pytest.mark.parametrize("stem", EXPECTED)
def test_no_saved_errors(stem):
    for cell in _code_cells(_read(stem)):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{stem}: saved error in cell {cell.get('id')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text, f"{stem}: saved traceback in cell {cell.get('id')}"


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
        if BUILDER.is_checked(cell):
            assert cell.outputs, f"{stem}: checked cell {cell.id} has no stored output (run build_notebooks.py --execute)"
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
            assert "TAG" in src or "no data" in src or "no model" in src or "render_scene" in src, \
                f"{stem}: cell {cell.id} draws a figure without naming its data"


def test_download_cell_is_off_by_default():
    src = "\n".join(c.source for c in _code_cells(_read("00_setup")))
    assert "DOWNLOAD = False" in src and "if DOWNLOAD:" in src


def test_notebooks_never_train_outside_train_stage():
    """Training goes through depthkit.reproduce.train_stage, which reuses finished checkpoints."""
    for stem in EXPECTED:
        src = "\n".join(c.source for c in _code_cells(_read(stem)))
        assert "fit(" not in src.replace("train_stage(", ""), stem


def test_notebook_json_has_stable_cell_ids():
    for stem in EXPECTED:
        ids = [c["id"] for c in json.loads((NB_DIR / f"{stem}.ipynb").read_text())["cells"]]
        assert ids == [f"c{i:02d}" for i in range(len(ids))], stem
