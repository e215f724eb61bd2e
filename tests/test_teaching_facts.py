"""The facts about the field that the notebooks and the library state (issue #34, section 1), and the position rule.

Each test holds one corrected fact to the text the reader sees: the notebook sources (``notebooks/NN_*.py``),
the docstrings and help strings, and the labels that the code prints (``results.md``, ``evaluate``). Where a
sentence states a number, the number must come from the code (printed by a cell), not from the prose.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest
import torch

from depthkit import metrics
from depthkit.cli import build_parser
from depthkit.config import repo_root
from depthkit.reproduce import PROTOCOLS, write_results_md

NOTEBOOKS = repo_root() / "notebooks"
CORRECTED = "not comparable with published supervised tables"


def source(stem: str) -> str:
    """A notebook's jupytext source, as committed (the ``.py`` file is the one that is edited)."""
    return (NOTEBOOKS / f"{stem}.py").read_text(encoding="utf-8")


def cells(stem: str, kind: str) -> list[str]:
    """The sources of a notebook's markdown or code cells."""
    return [c.source for c in jupytext.reads(source(stem), fmt="py:percent").cells if c.cell_type == kind]


def section(stem: str, heading: str) -> str:
    """The markdown of one section: from its heading to the next ``## `` heading (code cells included)."""
    text = source(stem)
    start = text.index(heading)
    end = text.find("\n# ## ", start + len(heading))
    return text[start:end if end > 0 else None]


# ----- NYU holes: raw vs in-painted ------------------------------------------------------------

@pytest.mark.parametrize("stem", ["01_data_exploration", "02_losses_and_metrics"])
def test_depths_is_taught_as_in_painted_not_as_holes(stem):
    """Catches: "0 = no measurement" as what NYU's depth holds, or "training masks the holes" of `depths`."""
    text = source(stem)
    assert "0 = no measurement" not in text and "Training does exactly that" not in text, stem
    assert "in-painted" in text, stem


def test_01_names_both_depth_maps_and_prints_the_hole_shares():
    text = section("01_data_exploration", "## 2. NYU samples")
    assert "`rawDepths`" in text and "`depths`" in text and "fill_depth_colorization" in text
    assert "rawDepths" in text and "extract_official_train_test_set_from_mat.py" in text  # what BTS scores
    code = "\n".join(cells("01_data_exploration", "code"))
    assert "(raw_depth == 0).mean()" in code and '(nyu["train"].depths == 0)' in code  # both shares printed


# ----- the sign pitfall's source -----------------------------------------------------------------

def test_02_says_the_paper_and_its_code_disagree():
    text = section("02_losses_and_metrics", "## 3. The sign pitfall")
    assert "DataLoader_DIW.lua" in text and "read the code" in text and "Chen et al.'s own paper" in text
    assert "report's printed" not in source("02_losses_and_metrics")  # the printed convention is the paper's


# ----- WHDR vs WKDR, and the two thresholds ------------------------------------------------------

def test_02_attributes_whdr_to_bell_and_explains_the_weighting():
    text = section("02_losses_and_metrics", "## 4. Scoring pairs")
    assert "called **WHDR** by Chen" not in text and "called WHDR by Chen" not in text
    assert "Bell" in text and "confidence" in text and "Chen et al. report WKDR on NYU and WHDR on DIW" in text
    assert "confidence * wrong" in text  # the weighting is computed, not only described


def test_whdr_docstring_names_bell_and_the_weights():
    doc = metrics.whdr.__doc__
    assert "called Weighted Human Disagreement Rate by Chen" not in doc
    assert "Bell" in doc and "confidence" in doc and "WKDR on NYU" in doc


def test_the_ordinal_threshold_is_tau_where_it_is_printed():
    """Catches: δ for both the ratio test of section 4 and the δ < 1.25 accuracies of section 5."""
    s4 = section("02_losses_and_metrics", "## 4. Scoring pairs")
    assert 'f"τ = {tau' in s4 and "δ =" not in s4 and "δ" not in s4.replace("the δ of section 5", "")
    assert "δ<1.25" in section("02_losses_and_metrics", "## 5. The standard depth metrics")
    assert "τ = 0" in PROTOCOLS["diw"] and "δ = 0" not in PROTOCOLS["diw"]


# ----- MiDaS: positive scale, disparity ----------------------------------------------------------

def test_02_teaches_midas_robust_alignment_in_disparity():
    text = section("02_losses_and_metrics", "## 6. The scale-and-shift-invariant loss")
    assert "which is what MiDaS wants" not in text and "up to any linear map" not in text.replace("up to *any* linear map", "")
    assert "**disparity**" in text and "**median**" in text and "**mean absolute deviation**" in text
    assert "def median_mad" in text  # and the alignment is run, beside the least-squares one


# ----- "eigen": a per-image aligned table, not a published one -----------------------------------

def test_metrics_docstrings_no_longer_claim_the_published_protocol():
    for doc in (metrics.__doc__, metrics.depth_metrics.__doc__):
        assert "comparable with\npapers" not in doc and "comparable with papers" not in doc
        assert "the published NYU protocol" not in doc
    assert "not comparable with published supervised NYU tables" in " ".join(metrics.depth_metrics.__doc__.split())


def test_no_notebook_calls_our_table_comparable_with_papers():
    for path in sorted(NOTEBOOKS.glob("0*.py")):
        assert "comparable with papers" not in path.read_text(encoding="utf-8"), path.name


def test_results_md_labels_the_eigen_table_honestly(tmp_path):
    """The writer's own output, from the committed results.json: heading and protocol line both say it."""
    results = json.loads((repo_root() / "figures" / "results.json").read_text(encoding="utf-8"))
    assert any(m.get("nyu_eigen") for m in results["models"].values()), "results.json has no eigen table to label"
    text = write_results_md(tmp_path / "results.md", results).read_text(encoding="utf-8")
    heading = next(line for line in text.splitlines() if line.startswith("## Standard NYU metrics, protocol `eigen`"))
    assert "not a published-table number" in heading, heading
    assert "the published protocol" not in text and CORRECTED in text
    assert "DIW WHDR (ordinal threshold τ = 0" in text


def test_evaluate_protocol_help_says_aligned_not_published(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--help"])
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # argparse wraps after hyphens
    assert "the published protocol" not in text
    assert "per-image least-squares aligned" in text and CORRECTED in text
    assert CORRECTED in PROTOCOLS["eigen"]  # what `evaluate --protocol eigen` prints under its table


def test_02_has_a_section_on_reading_published_tables_with_numbers_from_the_code():
    text = section("02_losses_and_metrics", "### How to read a published table")
    for topic in ("**Metric or aligned.**", "**Depth or disparity.**", "**The Eigen crop and the test images.**",
                  "**Zero-shot protocols.**"):
        assert topic in text, topic
    prose = "\n".join(cells("02_losses_and_metrics", "markdown"))
    for number in ("654", "45:471", "41:601", "10 m"):  # printed by the cell from nyu_split / EIGEN_CROP_480x640
        assert number not in prose, f"{number!r} stated in prose: print it from the library instead"
    assert 'nyu_split("test"' in text and "metrics.EIGEN_CROP_480x640" in text


# ----- LR-ASPP's 21 maps ---------------------------------------------------------------------------

def test_03_calls_the_maps_feature_maps_and_ranks_them_by_their_contribution():
    text = section("03_lraspp", "## 4. Inside the 21 → 1 head")
    assert "The maps are class scores" not in text and '"class score' not in text  # random start: no classes
    assert "**21 feature maps**" in text and '"feature map value' in text  # the text and the colour bar
    assert "weights.abs() * spread" in text and "order = contribution.argsort" in text


# ----- the position rule ---------------------------------------------------------------------------

def _pairs(ya: list[int], yb: list[int]) -> torch.Tensor:
    """``[1, P, 4]`` pairs at column 0 with the given rows of A and B."""
    return torch.tensor([[[a, 0, b, 0] for a, b in zip(ya, yb)]])


def test_position_rule_says_the_lower_point_is_closer():
    """Catches a sign flip: A lower in the image (larger row) is closer, i.e. relation -1."""
    pairs = _pairs([9, 1, 5], [2, 8, 5])
    assert metrics.position_rule_relation(pairs).tolist() == [[-1, 1, 0]]
    lower_closer = torch.tensor([[-1, 1, 1]])  # the third pair is on one row: the rule cannot order it
    assert metrics.position_rule_accuracy(pairs, lower_closer) == pytest.approx(2 / 3)
    assert metrics.position_rule_accuracy(pairs, -lower_closer) == 0.0
    assert metrics.position_rule_accuracy(pairs, lower_closer, torch.tensor([[True, True, False]])) == 1.0


def test_position_rule_is_ordinal_accuracy_of_the_map_minus_row():
    """The same score, by the library's own ordinal accuracy of a map that grows upwards (larger = farther)."""
    g = torch.Generator().manual_seed(3)
    h, w = 12, 9
    ys, xs = torch.randint(0, h, (2, 4, 30), generator=g), torch.randint(0, w, (2, 4, 30), generator=g)
    pairs = torch.stack([ys[0], xs[0], ys[1], xs[1]], dim=-1)
    relation = torch.randint(0, 2, (4, 30), generator=g) * 2 - 1
    upward = (h - 1 - torch.arange(h, dtype=torch.float32))[:, None].expand(h, w)[None, None].repeat(4, 1, 1, 1)
    assert metrics.position_rule_accuracy(pairs, relation) == pytest.approx(
        metrics.ordinal_accuracy(upward, pairs, relation))


def test_position_rule_refuses_bad_pairs():
    with pytest.raises(ValueError, match="pairs must be"):
        metrics.position_rule_accuracy(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="no valid pairs"):
        metrics.position_rule_accuracy(_pairs([1], [2]), torch.tensor([[1]]), torch.tensor([[False]]))


def test_07_scores_the_rule_on_the_same_pairs_and_drops_the_pair_band():
    code = "\n".join(cells("07_your_own_image", "code"))
    assert "metrics.position_rule_accuracy(clear" in code and "rule=RULE" in code
    prose = "\n".join(cells("07_your_own_image", "markdown"))
    assert "position_rule_accuracy" in prose and "noise band), not the verdict" not in prose


def test_07_headline_on_the_bundled_photo_puts_the_rule_beside_the_share():
    """The clear pairs of 07 on the bundled Kinect frame, and the rule's share of them, from the library."""
    import numpy as np

    from depthkit.config import get_profile
    from depthkit.course import narrative
    from depthkit.data import load_nyu_png_depth, resize_depth

    size = get_profile("demo").size
    path = Path(repo_root(), "tests", "assets", "nyu_real_samples", "depth", "sync_depth_00000.png")
    kinect = resize_depth(load_nyu_png_depth(path), size)
    rng = np.random.default_rng(0)  # as 07's clear_pair
    ys, xs = rng.integers(2, size - 2, size=(2, 4000)), rng.integers(2, size - 2, size=(2, 4000))
    ka, kb = kinect[ys[0], xs[0]], kinect[ys[1], xs[1]]
    ok = (ka > 0) & (kb > 0) & (np.maximum(ka, kb) >= 1.25 * np.minimum(ka, kb))
    ok &= np.hypot(ys[0] - ys[1], xs[0] - xs[1]) >= size / 4
    clear = torch.from_numpy(np.stack([ys[0], xs[0], ys[1], xs[1]], axis=1)[ok])[None]
    rule = metrics.position_rule_accuracy(clear, torch.from_numpy(np.sign(ka - kb)[ok]).long()[None])
    assert rule > 0.6, rule  # the floor of this basement rises towards the horizon: the rule is far above a coin
    result = {"verdict": "A is closer than B", "truth": "A is closer than B", "ka": 2.5, "kb": 3.3}
    text = narrative.own_image(result, "photo", 0.5, 0.64, int(ok.sum()), get_profile("demo"), rule=rule)
    assert f"**{100 * rule:.0f} %**" in text and f"{int(ok.sum())} random clear pairs" in text
    assert "noise band ±" not in text
