"""The capstone of notebook 06: a student's checkpoint scored on the held-out test split, against the committed run.

``python -m depthkit evaluate CHECKPOINT --data nyu --compare`` calls :func:`check_capstone`. The verdict is
one line: the checkpoint's test score beside the committed model's, the gain, and three things that
decide what the gain means:

* **the paired noise band**: both are scored on the same test images, so the band is
  :data:`~depthkit.evaluate.NOISE_Z` standard errors of the mean of the per-image *differences*
  (the committed run's per-image scores are stored in ``figures/per_image_scores.json``);
* **what one seed cannot say**: the committed recipe's seed-to-seed spread
  (``figures/seed_spread.json``, :mod:`depthkit.tools.seeds`): two runs of the *same* recipe differ by
  about ``NOISE_Z * sqrt(2) * sd`` across seeds, so a gain inside that may be the seed;
* **fairness**: every difference between the checkpoint's configuration and the committed run's
  (profile, image size, batch size, learning rate, epochs, schedule, weight decay, training images,
  the scoring profile) is named, and so is the plugin that made the checkpoint (:mod:`depthkit.course.plugin`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from depthkit.checkpoints import load_checkpoint
from depthkit.config import figures_dir, get_profile
from depthkit.course.plugin import describe, load_model
from depthkit.device import pick_device
from depthkit.evaluate import MIN_IMAGES, NOISE_Z, as_array, mean, per_image_scores, standard_error
from depthkit.pipeline import load_stage_data
from depthkit.reproduce import PER_IMAGE_FILE, SEED_SPREAD_FILE, read_figures_json
from depthkit.stages import get_stage
from depthkit.train import data_fingerprint

__all__ = ["score_checkpoint", "judge_capstone", "capstone_report", "check_capstone", "fairness_notes"]


def score_checkpoint(checkpoint: str | Path, profile: str | None = None, device: str | None = None) -> dict:
    """The checkpoint's stage metric on every held-out test image, their mean, and what it was trained with."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (train one with python -m depthkit train ...)")
    state = load_checkpoint(path)
    stage = get_stage(state.get("stage", "nyu"))
    prof = get_profile(profile)  # as python -m depthkit evaluate: --profile, else $DEPTHKIT_PROFILE, else the default
    dev = pick_device(device or prof.device)
    splits = load_stage_data(prof, stage.name)
    values = per_image_scores(load_model(path, device=dev), splits["test"], stage, prof.batch_size * 2, dev)[stage.val_key]
    config = {k: v for k, v in (state.get("config") or {}).items() if k != "plugin"}
    plugin = (state.get("config") or {}).get("plugin")
    return {"checkpoint": str(path), "model": state.get("model_name"), "stage": stage.name, "metric": stage.val_key,
            "higher_is_better": stage.higher_is_better, "values": values.tolist(), "score": mean(values),
            "n_test": int(np.isfinite(values).sum()), "profile": prof.name, "config": config,
            "training_data": state.get("fingerprint"), "scoring_data": data_fingerprint(splits),
            "plugin": {k: v for k, v in plugin.items() if k != "source"} if plugin else None}


def fairness_notes(scored: dict, provenance: dict, model: str) -> list[str]:
    """Every difference between the checkpoint's training and the committed run's, one phrase each."""
    config, stage, notes = scored.get("config", {}), scored["stage"], []
    trained = config.get("name")
    if provenance.get("profile") and trained and trained != provenance["profile"]:
        notes.append(f"trained under the {trained} profile, the committed run under {provenance['profile']}")
    if trained and trained != scored["profile"]:
        notes.append(f"trained under {trained} but scored under {scored['profile']}")
    if provenance.get("profile") and provenance["profile"] != scored["profile"]:
        notes.append(f"scored under {scored['profile']}, the committed run under {provenance['profile']}: other test images")
    epochs = (provenance.get("epochs", {}).get(model, {}) or {}).get(stage)
    wanted = {"size": provenance.get("size"), "batch_size": provenance.get("batch_size"),
              "lr": (provenance.get("lr") or {}).get(stage), "lr_schedule": provenance.get("lr_schedule"),
              "weight_decay": provenance.get("weight_decay"),
              "epochs": sum(epochs) if epochs is not None else None}
    have = dict(config, epochs=config.get("frozen_epochs", 0) + config.get("epochs", 0)) if config else {}
    for key, committed in wanted.items():
        if committed is not None and key in have and have[key] != committed:
            notes.append(f"{key.replace('_', ' ')} {have[key]} (committed {committed})")
    committed_data = (provenance.get("training_data") or {}).get(stage)
    if committed_data and scored.get("training_data") and scored["training_data"] != committed_data:
        notes.append("trained on other images than the committed run")
    return notes


def _paired_band(values: list, committed: list | None) -> tuple[float, str]:
    """(band, how): NOISE_Z standard errors of the mean per-image difference, or of two means when unpaired."""
    a = as_array(values)
    if committed is not None and len(committed) == len(a):
        return NOISE_Z * standard_error(a - as_array(committed)), "paired, the same test images"
    other = standard_error(committed) if committed is not None else standard_error(a)
    return NOISE_Z * math.hypot(standard_error(a), other), "unpaired: the committed per-image scores are missing or differ"


def _seed_sd(spread: dict | None, model: str, stage: str, metric: str) -> tuple[float | None, int]:
    """(standard deviation over seeds, number of seeds) of the committed recipe's metric, or (None, 0)."""
    entry = ((spread or {}).get("models", {}).get(model, {}) or {}).get(f"{stage}.{metric}")
    if not entry or len(entry.get("values", {})) < 2:
        return None, 0
    return entry["std"], len(entry["values"])


def judge_capstone(scored: dict, results: str | Path | None = None) -> dict:
    """``scored`` (from :func:`score_checkpoint`) against the committed run: gain, bands, fairness, one-line verdict.

    ``results`` is the committed ``results.json`` (default ``figures/results.json``); the per-image
    scores and the seed spread are read from the same folder.
    """
    out = dict(scored)
    name, stage, metric, higher = out["model"], out["stage"], out["metric"], out["higher_is_better"]
    unit = (lambda x: f"{100 * x:.1f} points") if higher else (lambda x: f"{x:.4f}")
    shown = (lambda x: f"{100 * x:.1f} %") if higher else (lambda x: f"{x:.4f}")
    said = f"{name} {stage} test {metric} {shown(out['score'])} on {out['n_test']} images, {describe(out.get('plugin'))}"
    folder = Path(results).parent if results is not None else figures_dir()
    committed = read_figures_json(Path(results).name if results is not None else "results.json", folder)
    models = {m: r[stage][metric] for m, r in (committed or {}).get("models", {}).items() if metric in r.get(stage, {})}
    if not models:
        return {**out, "committed": None, "verdict": f"{said}; no committed {metric} to compare with in {folder.name}/"}
    target = name if name in models else (max if higher else min)(models, key=models.get)
    ref, prov = models[target], committed.get("provenance", {})
    gain = (out["score"] - ref) if higher else (ref - out["score"])  # > 0: the checkpoint is better
    per_image = ((read_figures_json(PER_IMAGE_FILE, folder) or {}).get("models", {}).get(target, {}).get(stage) or {})
    band, how = _paired_band(out["values"], per_image.get(metric))
    sd, seeds = _seed_sd(read_figures_json(SEED_SPREAD_FILE, folder), target, stage, metric)
    seed_band = NOISE_Z * math.sqrt(2) * sd if sd is not None else None
    notes = fairness_notes(out, prov, target)
    out.update(committed=ref, committed_model=target, committed_profile=prov.get("profile"), gain=gain, band=band,
               band_kind=how, seed_band=seed_band, notes=notes)
    if not math.isfinite(band):
        word = (f"{'ahead' if gain > 0 else 'behind'} by {unit(abs(gain))}, but with under {MIN_IMAGES} scored test "
                "images (here or in the committed scores) the noise cannot be estimated: no verdict")
    elif abs(gain) <= band:
        word = f"within the noise band of ±{unit(band)} ({how}): no measurable change"
    else:
        word = f"{'beats' if gain > 0 else 'misses'} it by {unit(abs(gain))}, beyond the noise band of ±{unit(band)} ({how})"
    if seed_band is None:
        word += "; no seed-to-seed spread is measured for this profile, so one seed of each cannot tell an idea from the seed"
    elif abs(gain) <= seed_band:
        word += (f"; but two seeds of the committed recipe differ by up to ±{unit(seed_band)} ({seeds} seeds measured): "
                 "one seed cannot tell this from the seed")
    else:
        word += f"; also beyond the seed-to-seed spread of ±{unit(seed_band)} ({seeds} seeds measured)"
    fair = " (not a like-for-like comparison: " + "; ".join(notes) + ")" if notes else ""
    out["verdict"] = f"{said} vs the committed {target} {shown(ref)}: {word}{fair}"
    return out


def capstone_report(checkpoint: str | Path, profile: str | None = None, results: str | Path | None = None,
                    device: str | None = None) -> dict:
    """Score ``checkpoint`` on the held-out test split and judge it against the committed run (:func:`judge_capstone`).

    The score is the checkpoint's stage metric (NYU: normalized MSE, lower is better; DIW: ordinal
    accuracy, higher is better), the mean over the test images: the number ``python -m depthkit
    evaluate CHECKPOINT --data STAGE`` prints.
    """
    return judge_capstone(score_checkpoint(checkpoint, profile=profile, device=device), results)


def check_capstone(checkpoint: str | Path, profile: str | None = None, results: str | Path | None = None,
                   device: str | None = None) -> dict:
    """Print one line: how far ``checkpoint`` beats or misses the committed numbers (see :func:`capstone_report`)."""
    report = capstone_report(checkpoint, profile=profile, results=results, device=device)
    print("CAPSTONE  " + report["verdict"])
    return report
