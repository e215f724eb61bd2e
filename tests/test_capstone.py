"""The capstone (notebook 06): a checkpoint scored on the held-out test split and judged fairly against the committed run.

The committed side is written in the layouts reproduce and tools.seeds write (results.json,
per_image_scores.json, seed_spread.json); the checkpoint is a real smoke run scored by the real path.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from depthkit.course import capstone
from depthkit.evaluate import NOISE_Z
from depthkit.tools.compare import spread_summary


@pytest.fixture(scope="module")
def smoke_checkpoint(nyu_splits, smoke_profile, tmp_path_factory) -> Path:
    from depthkit.train import train_stage

    out = tmp_path_factory.mktemp("capstone")
    train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=out, device="cpu", progress=False)
    return out / "best.pt"


@pytest.fixture(scope="module")
def scored(smoke_checkpoint) -> dict:
    return capstone.score_checkpoint(smoke_checkpoint, profile="smoke")


def _committed(folder: Path, nmse: float, per_image: list | None = None, spread_sd: float | None = None,
               **provenance) -> Path:
    """A committed run of LR-ASPP on smoke NYU: results.json, and optionally per-image scores and a seed spread."""
    folder.mkdir(parents=True, exist_ok=True)
    prov = {"profile": "smoke", "size": 64, "batch_size": 4, "lr": {"nyu": 1e-3, "diw": 1e-4}, "lr_schedule": "constant",
            "weight_decay": 0.02, "epochs": {"lraspp": {"nyu": [0, 1]}}, **provenance}
    (folder / "results.json").write_text(json.dumps({"models": {"lraspp": {"nyu": {"normalized_mse": nmse}}},
                                                     "provenance": prov}))
    if per_image is not None:
        (folder / "per_image_scores.json").write_text(json.dumps(
            {"models": {"lraspp": {"nyu": {"normalized_mse": per_image}}}}))
    if spread_sd is not None:
        values = {"0": nmse, "1": nmse + spread_sd, "2": nmse - spread_sd}
        (folder / "seed_spread.json").write_text(json.dumps(
            {"profile": "smoke", "models": {"lraspp": {"nyu.normalized_mse": spread_summary(values)}}}))
    return folder / "results.json"


def _many(scored: dict, n: int = 40) -> dict:
    """``scored`` as if the test split held ``n`` images (smoke holds 5: too few for a band): the same per-image values, repeated."""
    values = (scored["values"] * math.ceil(n / len(scored["values"])))[:n]
    return dict(scored, values=values, score=float(np.mean(values)), n_test=n)


@pytest.mark.slow  # trains LR-ASPP for one smoke epoch (shared by the tests here)
def test_the_score_is_the_number_evaluate_prints(smoke_checkpoint, scored, nyu_splits):
    from depthkit.checkpoints import load_model
    from depthkit.evaluate import evaluate

    expected = evaluate(load_model(smoke_checkpoint), nyu_splits["test"], "nyu")["normalized_mse"]
    assert scored["score"] == pytest.approx(expected, rel=1e-9)
    assert scored["n_test"] == len(nyu_splits["test"]) == len(scored["values"])
    assert scored["plugin"] is None and scored["config"]["name"] == "smoke"


@pytest.mark.slow
def test_the_band_is_paired_on_the_same_test_images(scored, tmp_path):
    """Catches: an unpaired band (today's: 2 sqrt(2) sd / sqrt(n)), which is far wider when both models err on the same images."""
    mine = _many(scored)
    rng = np.random.default_rng(0)
    committed = (np.asarray(mine["values"]) * 1.02 + rng.normal(0, 1e-4, len(mine["values"]))).tolist()
    report = capstone.judge_capstone(mine, _committed(tmp_path, float(np.mean(committed)), committed))
    d = np.asarray(mine["values"]) - np.asarray(committed)
    assert report["band"] == pytest.approx(NOISE_Z * d.std(ddof=1) / math.sqrt(len(d)), rel=1e-9)
    assert report["band_kind"].startswith("paired")
    unpaired = NOISE_Z * math.sqrt(2) * np.std(mine["values"], ddof=1) / math.sqrt(len(d))
    assert report["band"] < unpaired / 5  # pairing is what lets an honest 2 % gain show
    assert "beats it by" in report["verdict"] and "beyond the noise band" in report["verdict"]


@pytest.mark.slow
def test_a_gain_inside_the_seed_spread_is_said_to_be_undecided_by_one_seed(scored, tmp_path):
    mine = _many(scored)
    committed = (np.asarray(mine["values"]) * 1.02).tolist()  # a clear paired gain of 2 %
    gain = float(np.mean(committed)) - mine["score"]
    wide = capstone.judge_capstone(mine, _committed(tmp_path / "wide", float(np.mean(committed)), committed,
                                                    spread_sd=gain))  # two seeds differ by up to 2 sqrt(2) gain
    assert "one seed cannot tell this from the seed" in wide["verdict"] and "3 seeds measured" in wide["verdict"]
    assert wide["seed_band"] == pytest.approx(NOISE_Z * math.sqrt(2) * gain, rel=1e-9)
    narrow = capstone.judge_capstone(mine, _committed(tmp_path / "narrow", float(np.mean(committed)), committed,
                                                      spread_sd=gain / 10))
    assert "also beyond the seed-to-seed spread" in narrow["verdict"]
    none = capstone.judge_capstone(mine, _committed(tmp_path / "none", float(np.mean(committed)), committed))
    assert "no seed-to-seed spread is measured for this profile" in none["verdict"]


@pytest.mark.slow
def test_every_difference_of_configuration_is_named(scored, tmp_path):
    """Catches: comparing only epochs and the scoring profile (a smoke checkpoint scored under demo got no note)."""
    same = capstone.judge_capstone(scored, _committed(tmp_path / "same", scored["score"]))
    assert "not a like-for-like" not in same["verdict"], same["verdict"]
    other = capstone.judge_capstone(dict(scored, profile="demo"), _committed(
        tmp_path / "other", scored["score"], size=96, batch_size=8, lr={"nyu": 5e-4}, epochs={"lraspp": {"nyu": [0, 7]}},
        training_data={"nyu": "0123+4567"}, profile="demo"))
    verdict = other["verdict"]
    for phrase in ("trained under the smoke profile, the committed run under demo", "trained under smoke but scored under demo",
                   "size 64 (committed 96)", "batch size 4 (committed 8)", "lr 0.001 (committed 0.0005)",
                   "epochs 1 (committed 7)", "trained on other images than the committed run"):
        assert phrase in verdict, (phrase, verdict)


@pytest.mark.slow
def test_check_capstone_prints_one_line_without_machine_paths(smoke_checkpoint, scored, tmp_path, capsys):
    capstone.check_capstone(smoke_checkpoint, profile="smoke", results=_committed(tmp_path, scored["score"] + 0.01))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("CAPSTONE") and f"{scored['score']:.4f}" in out[0]
    assert "no plugin (depthkit's own training)" in out[0] and "the noise cannot be estimated" in out[0]  # smoke: 5 images
    assert not re.search(r"/tmp/|/home/|/work/", out[0])
    capstone.check_capstone(smoke_checkpoint, profile="smoke", results=tmp_path / "missing" / "results.json")
    assert "no committed normalized_mse to compare with" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_compare_prints_the_capstone_line(smoke_checkpoint, capsys):
    from depthkit.cli import main

    assert main(["evaluate", str(smoke_checkpoint), "--data", "nyu", "--profile", "smoke", "--compare"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("CAPSTONE") and "lraspp nyu test normalized_mse" in last
