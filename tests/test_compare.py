"""A reproduction says whether it reproduced: every number against the committed one, with a noise band.

The band is NOISE_Z * sqrt(2 sd_seed^2 + se_test^2) (depthkit.tools.compare). Tests build results files in
the real layouts (results.json, per_image_scores.json, seed_spread.json) and run the real comparison, in
the library and through ``python -m depthkit compare``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from depthkit.cli import main
from depthkit.evaluate import NOISE_Z
from depthkit.tools.compare import compare_results, format_comparison, spread_summary

N = 120  # test images
SD_SEED = 0.002  # the committed recipe's seed-to-seed spread of the NYU normalized MSE


def _files(folder: Path, nmse: float, per_image: np.ndarray, spread: bool = True, torch_version: str = "2.14.1") -> Path:
    """A results.json (+ per_image_scores.json, + seed_spread.json) in the layouts reproduce and tools.seeds write."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {"models": {"lraspp": {"nyu": {"normalized_mse": nmse}, "diw": {"ordinal_accuracy": 0.80}}},
               "fingerprint": {"fingerprint": "abc123"},
               "provenance": {"profile": "demo", "torch": torch_version, "device": "cpu (x86_64, 2 threads)"}}
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "per_image_scores.json").write_text(json.dumps(
        {"models": {"lraspp": {"nyu": {"normalized_mse": per_image.tolist()}}}}))
    if spread:
        values = {"0": 0.040, "1": 0.040 + SD_SEED, "2": 0.040 - SD_SEED}
        (folder / "seed_spread.json").write_text(json.dumps(
            {"fingerprint": {"fingerprint": "abc123"}, "profile": "demo",
             "models": {"lraspp": {"nyu.normalized_mse": spread_summary(values)}}}))
    return folder / "results.json"


@pytest.fixture
def committed(tmp_path) -> tuple[Path, np.ndarray]:
    scores = np.random.default_rng(0).gamma(4.0, 0.01, N)  # per-image normalized MSE, mean ~0.04
    return _files(tmp_path / "committed", float(scores.mean()), scores), scores


def _band(committed_scores: np.ndarray, run_scores: np.ndarray, sd: float = SD_SEED) -> float:
    d = run_scores - committed_scores
    se = d.std(ddof=1) / math.sqrt(len(d))
    return NOISE_Z * math.sqrt(2 * sd**2 + se**2)


def _run(tmp_path: Path, committed_scores: np.ndarray, shift: float, **kw) -> tuple[Path, np.ndarray]:
    noise = np.random.default_rng(1).normal(0, 0.002, N)
    base = committed_scores + noise
    run_scores = base - base.mean() + committed_scores.mean() + shift  # its mean moved by exactly `shift`
    return _files(tmp_path / "run", float(run_scores.mean()), run_scores, spread=False, **kw), run_scores


def _row(report: dict, metric: str = "nyu.normalized_mse") -> dict:
    return next(r for r in report["rows"] if r["metric"] == metric)


def _load(path: Path, name: str) -> dict:
    return json.loads((path.parent / name).read_text())


def test_a_number_moved_beyond_its_band_differs_and_one_within_it_does_not(committed, tmp_path):
    path, scores = committed
    for factor, verdict in ((1.5, "differs"), (0.5, "within noise")):
        probe, probe_scores = _run(tmp_path / str(factor), scores, 0.0)
        band = _band(scores, probe_scores)  # the band does not depend on the shift
        run_path, run_scores = _run(tmp_path / str(factor), scores, factor * band)
        report = compare_results(json.loads(run_path.read_text()), json.loads(path.read_text()),
                                 _load(path, "seed_spread.json"), _load(run_path, "per_image_scores.json"),
                                 _load(path, "per_image_scores.json"))
        row = _row(report)
        assert row["band"] == pytest.approx(band, rel=1e-9)
        assert row["difference"] == pytest.approx(factor * band, rel=1e-6)
        assert row["verdict"] == verdict, (factor, row)
        assert _row(report, "diw.ordinal_accuracy")["verdict"] == "within noise"  # the same number: identical
    text = format_comparison(report)
    assert "REPRODUCED: all 2 numbers within noise" in text


def test_the_seed_spread_widens_the_band_and_its_absence_is_said(committed, tmp_path):
    path, scores = committed
    run_path, run_scores = _run(tmp_path, scores, 0.004)
    args = (json.loads(run_path.read_text()), json.loads(path.read_text()))
    with_spread = compare_results(*args, _load(path, "seed_spread.json"), _load(run_path, "per_image_scores.json"),
                                  _load(path, "per_image_scores.json"))
    without = compare_results(*args, None, _load(run_path, "per_image_scores.json"), _load(path, "per_image_scores.json"))
    assert _row(without)["band"] == pytest.approx(_band(scores, run_scores, sd=0.0))  # the test-sampling term alone
    assert _row(with_spread)["band"] > _row(without)["band"]
    assert _row(with_spread)["verdict"] == "within noise" and _row(without)["verdict"] == "differs"
    assert any("no seed spread" in note and "test-sampling noise alone" in note for note in without["notes"])
    assert not with_spread["notes"]


def test_a_run_without_per_image_scores_uses_the_committed_spread_of_images(committed, tmp_path):
    path, scores = committed
    run_path, _ = _run(tmp_path, scores, 0.0)
    report = compare_results(json.loads(run_path.read_text()), json.loads(path.read_text()), None, None,
                             _load(path, "per_image_scores.json"))
    se = math.sqrt(2) * scores.std(ddof=1) / math.sqrt(N)
    assert _row(report)["test_se"] == pytest.approx(se)


def test_the_cli_says_differs_plainly_with_what_to_check(committed, tmp_path, capsys):
    path, scores = committed
    probe, probe_scores = _run(tmp_path / "probe", scores, 0.0)
    run_path, _ = _run(tmp_path, scores, 3 * _band(scores, probe_scores), torch_version="2.9.1")
    assert main(["compare", str(run_path), "--against", str(path.parent)]) == 3
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("DIFFERS"))
    assert "1 of 2 numbers lie beyond their band (lraspp nyu.normalized_mse)" in line
    assert "torch 2.9.1 on cpu" in line and "torch 2.14.1 on cpu" in line
    assert main(["compare", str(path), "--against", str(path.parent)]) == 0  # itself: identical
    assert "REPRODUCED" in capsys.readouterr().out


def test_a_missing_results_file_is_one_line_status_1(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing.json"), "--against", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nothing.json" in err and "no such results file" in err


@pytest.mark.slow  # two smoke reproductions (the second reuses the runs)
def test_reproduce_compares_itself_with_the_results_it_replaces(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["reproduce", "--profile", "smoke", "--models", "lraspp", "--out", str(out)]) == 0
    assert "no earlier smoke results" in capsys.readouterr().out
    assert main(["reproduce", "--profile", "smoke", "--models", "lraspp", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    table = text[text.index("This run against the results that were in"):]
    rows = [l for l in table.splitlines() if l.startswith("lraspp ")]
    assert len(rows) >= 20 and all(l.rstrip().endswith("within noise") for l in rows), rows  # deterministic here
    assert "REPRODUCED: all" in table
