"""The capstone of notebook 06: a student's checkpoint scored on the held-out test split, against the committed run.

``python -m depthkit evaluate CHECKPOINT --data nyu --compare`` calls :func:`check_capstone`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from depthkit.checkpoints import load_checkpoint, load_model
from depthkit.config import figures_dir, get_profile
from depthkit.device import pick_device
from depthkit.evaluate import NOISE_Z, per_image_scores
from depthkit.pipeline import load_stage_data
from depthkit.stages import get_stage

__all__ = ["score_checkpoint", "judge_capstone", "capstone_report", "check_capstone"]


def score_checkpoint(checkpoint: str | Path, profile: str | None = None, device: str | None = None) -> dict:
    """The checkpoint's stage metric on the held-out test split, with its noise band (see :func:`capstone_report`)."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (train one with python -m depthkit train ...)")
    state = load_checkpoint(path)
    stage = get_stage(state.get("stage", "nyu"))
    config = state.get("config", {})
    prof = get_profile(profile)  # as python -m depthkit evaluate: --profile, else $DEPTHKIT_PROFILE, else the default
    dev = pick_device(device or prof.device)
    test = load_stage_data(prof, stage.name)["test"]
    scores = per_image_scores(load_model(path, device=dev), test, stage, prof.batch_size * 2, dev)[stage.val_key]
    values = torch.from_numpy(scores[~np.isnan(scores)])
    n = len(values)
    return {"checkpoint": str(path), "model": state.get("model_name"), "stage": stage.name, "metric": stage.val_key,
            "higher_is_better": stage.higher_is_better, "score": float(values.mean()), "n_test": n,
            "band": NOISE_Z * math.sqrt(2) * float(values.std()) / math.sqrt(n) if n > 1 else float("inf"),
            "profile": prof.name, "epochs": config.get("frozen_epochs", 0) + config.get("epochs", 0)}


def judge_capstone(scored: dict, results: str | Path | None = None) -> dict:
    """``scored`` (from :func:`score_checkpoint`) against the committed ``results.json``: gain and a one-line verdict."""
    out = dict(scored)
    name, stage, metric, higher = out["model"], out["stage"], out["metric"], out["higher_is_better"]
    score, n, band = out["score"], out["n_test"], out["band"]
    unit = (lambda x: f"{100 * x:.1f} points") if higher else (lambda x: f"{x:.4f}")
    shown = (lambda x: f"{100 * x:.1f} %") if higher else (lambda x: f"{x:.4f}")
    said = f"{name} {stage} test {metric} {shown(score)} on {n} images"
    results = Path(results) if results is not None else figures_dir() / "results.json"
    if not results.exists():
        return {**out, "committed": None,
                "verdict": f"{said} (noise band ±{unit(band)}); no committed {results.name}: nothing to compare with"}
    committed = json.loads(results.read_text(encoding="utf-8"))
    models = {m: r[stage][metric] for m, r in committed.get("models", {}).items() if metric in r.get(stage, {})}
    if not models:
        return {**out, "committed": None,
                "verdict": f"{said} (noise band ±{unit(band)}); {results.name} holds no {metric}: nothing to compare with"}
    target = name if name in models else (max if higher else min)(models, key=models.get)
    ref = models[target]
    gain = (score - ref) if higher else (ref - score)  # > 0: the checkpoint is better
    prov = committed.get("provenance", {})
    budget = prov.get("epochs", {}).get(target, {}).get(stage)  # (frozen, full) of the committed run
    ref_epochs = sum(budget) if budget is not None else None
    out.update(committed=ref, committed_model=target, committed_profile=prov.get("profile"),
               committed_epochs=ref_epochs, gain=gain)
    if abs(gain) <= band:
        word = f"within the noise band of ±{unit(band)}: no measurable change"
    else:
        word = f"{'beats' if gain > 0 else 'misses'} it by {unit(abs(gain))}, beyond the noise band of ±{unit(band)}"
    notes = []
    if prov.get("profile") and prov["profile"] != out["profile"]:
        notes.append(f"the committed numbers come from the {prov['profile']} profile and this is {out['profile']}: "
                     "not comparable, this only shows the mechanics")
    if ref_epochs is not None and out["epochs"] > ref_epochs:
        notes.append(f"{out['epochs']} epochs is over the committed budget of {ref_epochs}: not a fair comparison")
    out["verdict"] = f"{said} vs the committed {target} {shown(ref)}: {word}" + ("" if not notes else " (" + "; ".join(notes) + ")")
    return out


def capstone_report(checkpoint: str | Path, profile: str | None = None, results: str | Path | None = None,
                    device: str | None = None) -> dict:
    """Score ``checkpoint`` on the held-out test split and compare it with the committed ``results.json``.

    The score is the checkpoint's stage metric (NYU: normalized MSE, lower is better; DIW: ordinal
    accuracy, higher is better), the mean over the test images: the number ``python -m depthkit
    evaluate CHECKPOINT --data STAGE`` prints. The noise band is two standard errors of a
    difference of two such means: ``2 * sqrt(2) * sd / sqrt(n)``, with ``sd`` the spread of the
    per-image values over the ``n`` test images (for DIW's 0/1 values that is, up to a factor
    ``n / (n - 1)`` under the root, the binomial ``sqrt(2 p (1 - p) / n)`` notebooks 05 and 06 use). The committed run and the checkpoint are
    scored on the same images, so this band is on the safe side; with one seed per run it does
    not cover seed-to-seed spread. ``results`` defaults to ``figures/results.json``.
    """
    return judge_capstone(score_checkpoint(checkpoint, profile=profile, device=device), results)


def check_capstone(checkpoint: str | Path, profile: str | None = None, results: str | Path | None = None,
                   device: str | None = None) -> dict:
    """Print one line: how far ``checkpoint`` beats or misses the committed numbers (see :func:`capstone_report`)."""
    report = capstone_report(checkpoint, profile=profile, results=results, device=device)
    print("CAPSTONE  " + report["verdict"])
    return report
