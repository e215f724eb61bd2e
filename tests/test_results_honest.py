"""Results that claim only what they show (issue #34, section 2), held to the code's own objects.

* ``results.md`` shows each of our numbers beside its mean ± sd over the training seeds of ``make seeds``,
  read from ``seed_spread.json`` of the same code, and says "one training seed" when there is none;
* every ordinal score the series prints (05, 06, 07, 08) stands beside the position rule "the lower point
  is closer" on the same pairs (:func:`depthkit.metrics.position_rule_accuracy`);
* the noise band is written out once, in 03, and every band is labelled "test sampling" or
  "test sampling + seeds".
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jupytext
import pytest

from depthkit.config import repo_root
from depthkit.reproduce import SEED_SPREAD_FILE, write_results_md

FIGURES = repo_root() / "figures"
NOTEBOOKS = repo_root() / "notebooks"


def source(stem: str) -> str:
    """A notebook's jupytext source as committed."""
    return (NOTEBOOKS / f"{stem}.py").read_text(encoding="utf-8")


def code_cells(stem: str) -> list[str]:
    """The sources of a notebook's code cells."""
    return [c.source for c in jupytext.reads(source(stem), fmt="py:percent").cells if c.cell_type == "code"]


@pytest.fixture
def figures_copy(tmp_path: Path) -> Path:
    """The committed results.json and seed_spread.json in a folder of their own."""
    for name in ("results.json", SEED_SPREAD_FILE):
        shutil.copy(FIGURES / name, tmp_path / name)
    return tmp_path


def test_results_md_shows_mean_and_sd_over_the_seeds(figures_copy: Path):
    results = json.loads((figures_copy / "results.json").read_text(encoding="utf-8"))
    spread = json.loads((figures_copy / SEED_SPREAD_FILE).read_text(encoding="utf-8"))
    text = write_results_md(figures_copy / "results.md", results).read_text(encoding="utf-8")
    table = text[text.index("## The report's comparison table"):].split("\n## ")[0]  # the first table only
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for name, model in results["models"].items():
        row = rows[model["label"]]
        for key, percent in (("nyu.normalized_mse", False), ("diw_after_nyu.ordinal_accuracy", True),
                             ("diw.ordinal_accuracy", True)):
            e = spread["models"][name][key]
            want = (f"seeds {100 * e['mean']:.1f} ± {100 * e['std']:.1f} % ({e['n']})" if percent else
                    f"seeds {e['mean']:.4f} ± {e['std']:.4f} ({e['n']})")
            assert want in row, (key, row)
    assert "mean ± sd over the training seeds" in text


def test_results_md_without_a_matching_spread_says_one_seed(figures_copy: Path):
    spread = json.loads((figures_copy / SEED_SPREAD_FILE).read_text(encoding="utf-8"))
    spread["fingerprint"] = {"fingerprint": "0" * 12}  # measured on other code: not shown beside these numbers
    (figures_copy / SEED_SPREAD_FILE).write_text(json.dumps(spread), encoding="utf-8")
    results = json.loads((figures_copy / "results.json").read_text(encoding="utf-8"))
    text = write_results_md(figures_copy / "results.md", results).read_text(encoding="utf-8")
    assert "· seeds" not in text and "one training seed" in text


@pytest.mark.parametrize("stem", ["05_diw_finetuning", "06_comparison", "07_your_own_image", "08_depth_cues"])
def test_every_ordinal_score_stands_beside_the_position_rule(stem: str):
    """Each notebook that prints an ordinal accuracy also prints the rule's, computed on its own pairs."""
    code = "\n".join(code_cells(stem))
    assert "ordinal_accuracy" in code or "share" in code, stem
    assert "metrics.position_rule_accuracy(" in code, f"{stem}: no position rule beside its ordinal score"


def test_the_noise_band_formula_is_written_once_in_03():
    """03 states the band and its seed-widened form once; the other notebooks refer to it instead of restating it."""
    md = [c.source for c in jupytext.reads(source("03_lraspp"), fmt="py:percent").cells if c.cell_type == "markdown"]
    text = "\n".join(md)
    assert "\\frac{s_d}{\\sqrt{n}}" in text and "s_A^2 + s_B^2" in text, "03 must write out both bands"
    assert "**test sampling**" in text and "**test sampling + seeds**" in text
    for path in sorted(NOTEBOOKS.glob("0[4-8]_*.py")):
        body = path.read_text(encoding="utf-8")
        assert "\\frac{s_d}" not in body, f"{path.name} restates the band's formula (03 has it)"
        assert "standard errors of the mean of the per-image differences" not in body, path.name


def test_no_markdown_states_a_time_the_code_does_not_print():
    """Times of steps and runs are printed from histories and run_times.json, never typed into the text."""
    pattern = re.compile(r"\b\d+(\.\d+)?\s*(s|min|seconds|minutes) (per|a) (step|epoch|run)\b")
    for path in sorted(NOTEBOOKS.glob("0[0-8]_*.py")):
        for cell in jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent").cells:
            if cell.cell_type == "markdown":
                assert not pattern.search(cell.source), f"{path.name}: {pattern.search(cell.source).group(0)!r}"


def test_06_prints_the_training_time_results_md_states():
    """06's total of the stage histories is the "training" minutes of the results it rewrote (one source)."""
    nb = json.loads((NOTEBOOKS / "06_comparison.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    found = re.search(r"all stages together: ([0-9.]+) min of training .*results.md's \"training\" line: ([0-9.]+) min", text)
    assert found, "06's saved outputs lack the training total (regenerate with `make notebooks`)"
    assert found.group(1) == found.group(2)
    results = json.loads((FIGURES / "results.json").read_text(encoding="utf-8"))
    assert f"{results['provenance']['training_time_s'] / 60:.1f}" == found.group(2)
    md = (FIGURES / "results.md").read_text(encoding="utf-8")
    assert f"training {found.group(2)} min (sum over epochs)" in md
