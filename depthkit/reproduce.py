"""The whole report in one call: data, NYU training, DIW fine-tuning, evaluation, figures, table.

``python -m depthkit reproduce [--profile P]`` runs :func:`reproduce`. It writes the report's
figures under stable names in ``figures/`` and ``figures/results.md``: the report's comparison
table with the report's numbers beside ours, the standard metrics, and a statement of the data,
profile, device and wall time that produced them. Every table names the protocol of its numbers.
Under torchrun every process trains (DistributedDataParallel); rank 0 alone evaluates and writes.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from depthkit import distributed, viz
from depthkit.checkpoints import save_json
from depthkit.config import Profile, figures_dir
from depthkit.data.diskplan import check_plan, disk_plan, format_plan
from depthkit.data.loader import DepthData
from depthkit.device import pick_device
from depthkit.evaluate import (ConstantModel, evaluate, evaluate_baseline, mean_depth_baseline, nyu_eigen_metrics,
                               per_image_scores, predict_depth)
from depthkit.files import atomic_write_bytes
from depthkit.fingerprint import REGENERATE, code_fingerprint
from depthkit.models import UNKNOWN_WEIGHTS, count_parameters, weights_kind, weights_label
from depthkit.pipeline import PreparedData, load_stage_data, nyu_frames, prepare_data
from depthkit.runs import retire_stale_run, run_dir
from depthkit.train import check_initial_weights, data_fingerprint, train_stage

REPORT_MODELS = ("lraspp", "unetpp")
# The course report's own numbers (docs/design.md), printed beside ours.
REPORT_RESULTS = {
    "lraspp": {"label": "LR-ASPP MobileNetV3-Large", "params_m": 3.2, "nyu_mse": 0.058, "diw_acc": 58.4},
    "unetpp": {"label": "U-Net++ resnext50_32x4d", "params_m": 48.0, "nyu_mse": 0.032, "diw_acc": 65.32},
}
# Verified zero-shot anchors, from the MiDaS README (github.com/isl-org/MiDaS): DIW WHDR of models
# trained on far more data (a mix of datasets) and never trained on DIW. Chen et al.'s own
# NYU->DIW figures are not printed: which row of their table is which could not be verified.
ZERO_SHOT_DIW_WHDR = {"MiDaS v2.1 Large": 12.95, "DPT-Large": 10.82}

PROTOCOLS = {
    "nmse": "the report's: per-image min–max normalization of prediction and ground truth, then MSE over "
            "valid pixels, at {size}×{size}, mean over test images",
    "diw": "one annotated pair per image; correct when sign(z_A − z_B) of the raw output equals the annotation, "
           "ties wrong (Chen et al.'s test script); accuracy = 1 − WHDR (ordinal threshold τ = 0, every weight 1)",
    "resized": "at the prepared {size}×{size}, no Eigen crop, per-image least-squares scale-and-shift alignment, "
               "valid depth 1e-3…10 m, per image then the mean. Not comparable with published tables",
    "eigen": "Eigen crop, per-image least-squares aligned: not comparable with published supervised tables "
             "(those score metric depth, unaligned) nor with zero-shot tables (those align in disparity). The crop and "
             "formulas of Eigen et al. 2014 (BTS/AdaBins compute_errors): prediction upsampled to the 640×480 frame, "
             "Eigen crop rows 45:471, columns 41:601, valid depth 1e-3…10 m, per-image least-squares scale-and-shift "
             "alignment in depth (our models predict relative depth), per image then the mean",
}
# What the report's models started from (docs/design.md): its caption beside ours.
REPORT_WEIGHTS = ("pretrained: ImageNet (U-Net++'s resnext50_32x4d encoder), COCO-VOC (torchvision "
                  "LRASPP_MobileNet_V3_Large_Weights)")
STANDARD_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f} %" if pct else f"{x:.4f}"


def _epochs_text(epochs: dict) -> str:
    """``{"lraspp": {"nyu": (0, 30), "diw": (0, 5)}}`` as "LR-ASPP: NYU 30, DIW 5"."""
    parts = []
    for model, stages in epochs.items():
        text = []
        for stage, (frozen, full) in stages.items():
            text.append(f"{stage.upper()} {frozen} frozen + {full}" if frozen else f"{stage.upper()} {full}")
        parts.append(f"{REPORT_RESULTS.get(model, {}).get('label', model)}: {', '.join(text)}")
    return "; ".join(parts)


def _seed_spread_of(results: dict, folder: Path) -> dict | None:
    """``seed_spread.json`` beside ``results.json`` when it was measured on the same code and profile; else None."""
    spread = read_figures_json(SEED_SPREAD_FILE, folder)
    same = (spread or {}).get("fingerprint", {}).get("fingerprint") == (results.get("fingerprint") or {}).get("fingerprint")
    return spread if spread and same else None


def _seed_cell(spread: dict | None, model: str, key: str, percent: bool = False) -> str:
    """`` · seeds 0.031 ± 0.002 (5)``: the mean ± sample sd of ``key`` over the measured seeds; "" when not measured."""
    entry = ((spread or {}).get("models", {}).get(model) or {}).get(key)
    if not entry or entry.get("n", 0) < 2:
        return ""
    scale, unit = (100, " %") if percent else (1, "")
    return f" · seeds {scale * entry['mean']:.{1 if percent else 4}f} ± {scale * entry['std']:.{1 if percent else 4}f}{unit} ({entry['n']})"


def write_results_md(path: Path, results: dict) -> Path:
    """Write ``results.md``: the report's table beside ours, the standard metrics, the provenance and protocols."""
    p, lines = results["provenance"], []
    size = p["size"]
    lines += [f"# Results — {p['profile']} profile, {p['source_kind']} data, {p['device'].split(' ')[0]}", "",
              f"- **Data:** {p['data']}",
              f"- **Profile:** `{p['profile']}`: image size {size}×{size}, batch {p['batch_size']}, "
              f"DIW protocol `{p['diw_protocol']}`",
              f"- **Epochs:** {_epochs_text(p['epochs'])}",
              "- **Weights** (where each model's training started):",
              *(f"  - {r['label']}: {results_weights(results, n)}" for n, r in results["models"].items()),
              f"- **Device:** {p['device']}; torch {p['torch']}; training {p['training_time_s'] / 60:.1f} min "
              f"(sum over epochs), this run's wall time {p['wall_time_s'] / 60:.1f} min",
              f"- **Splits:** NYU train/val/test {p['nyu_sizes']}; DIW train/val/test {p['diw_sizes']}"]
    if results.get("fingerprint"):
        lines.append(f"- **Code fingerprint:** `{results['fingerprint']['fingerprint']}` (profile, generator version, "
                     f"source on the training and evaluation path; `tests/test_freshness.py` compares it with the "
                     f"code, `{REGENERATE}` regenerates)")
    lines.append("")
    if p.get("max_steps"):
        lines += [f"> A **rehearsal**: every stage stopped after {p['max_steps']} steps and every evaluation after "
                  f"{p['max_steps']} batches. These numbers measure nothing but speed and memory.", ""]
    if p["source_kind"] == "synthetic":
        lines += ["> These numbers come from the embedded **synthetic** depth-cue scenes, not from NYU Depth V2 or "
                  "DIW. They show that the pipeline learns; they are **not comparable** with the report's numbers "
                  "(real data), which are printed beside them for orientation only.", ""]
    spread = _seed_spread_of(results, path.parent)
    seeds_note = ("; in each of our cells, this run and then the mean ± sd over the training seeds of `make seeds` "
                  "(`seed_spread.json`, same code: sample standard deviation, number of seeds in brackets)" if spread else
                  "; one training seed (the seed-to-seed spread of this code is not measured: `make seeds`)")
    lines += ["## The report's comparison table, and ours", "",
              f"Ours: {p['source_kind']} data, `{p['profile']}` profile{seeds_note}.", "",
              f"| model | parameters | NYU test MSE, normalized — report (real data) | ours ({p['source_kind']}) | "
              f"DIW test accuracy — report (real data) | ours after NYU only | ours after DIW fine-tuning |",
              "|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        rep = REPORT_RESULTS.get(name, {})
        lines.append(f"| {r['label']} | {r['params_m']:.2f} M | {_fmt(rep.get('nyu_mse'))} "
                     f"| {_fmt(r['nyu']['normalized_mse'])}{_seed_cell(spread, name, 'nyu.normalized_mse')} "
                     f"| {rep.get('diw_acc', '–')}{' %' if 'diw_acc' in rep else ''} "
                     f"| {_fmt(r['diw_after_nyu']['ordinal_accuracy'], True)}{_seed_cell(spread, name, 'diw_after_nyu.ordinal_accuracy', True)} "
                     f"| {_fmt(r['diw']['ordinal_accuracy'], True)}{_seed_cell(spread, name, 'diw.ordinal_accuracy', True)} |")
    b = results["baseline"]
    lines.append(f"| trivial baseline (training-set mean depth map) | 0 | – | {_fmt(b['nyu']['normalized_mse'])} | – "
                 f"| {_fmt(b['diw']['ordinal_accuracy'], True)} | – |")
    lines += ["", f"Weights — ours: {_weights_text(results)}. The report's: {REPORT_WEIGHTS}."]
    if any(weights_kind(results_weights(results, n)) != "pretrained" for n in results["models"]):
        lines.append("A model of ours that did not start from pretrained weights differs from the report's "
                     "by design, not only by chance.")
    lines += ["", f"- NYU test MSE protocol: {PROTOCOLS['nmse'].format(size=size)}.",
              f"- DIW accuracy protocol: {PROTOCOLS['diw']}.",
              "- Zero-shot anchors (DIW WHDR, MiDaS README; models trained on far more data, never on DIW): "
              + ", ".join(f"{k} {v} %" for k, v in ZERO_SHOT_DIW_WHDR.items()) + ".", ""]
    titles = {"eigen": "Eigen crop, per-image least-squares aligned: not a published-table number",
              "resized": "prepared size, per-image least-squares aligned: ours only"}
    for protocol in ("eigen", "resized"):
        rows = [(r["label"], r.get(f"nyu_{protocol}")) for r in results["models"].values() if r.get(f"nyu_{protocol}")]
        if not rows:
            continue
        lines += [f"## Standard NYU metrics, protocol `{protocol}` (test split; {titles[protocol]})", "",
                  f"Protocol: {PROTOCOLS[protocol].format(size=size)}.", "",
                  "| model | AbsRel ↓ | SqRel ↓ | RMSE (m) ↓ | RMSE log ↓ | log10 ↓ | δ<1.25 ↑ | δ<1.25² ↑ | δ<1.25³ ↑ |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, m in rows:
            lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in STANDARD_KEYS) + " |")
        lines.append("")
    lines += ["## DIW WHDR (ordinal threshold τ = 0, Chen et al.'s DIW protocol; lower is better)", "",
              "| model | WHDR after NYU only | WHDR after DIW fine-tuning |", "|---|---|---|"]
    for r in results["models"].values():
        lines.append(f"| {r['label']} | {_fmt(r['diw_after_nyu']['whdr'], True)} | {_fmt(r['diw']['whdr'], True)} |")
    if results.get("checks"):
        lines += ["", "## Against the trivial baseline (same synthetic data, same protocols)", "",
                  "| model | NYU normalized MSE below the baseline's | DIW accuracy above the baseline's |", "|---|---|---|"]
        for name, t in results["checks"].items():
            lines.append(f"| {results['models'][name]['label']} | {100 * t['nmse_improvement']:.1f} % "
                         f"| {100 * t['acc_gain']:+.1f} points |")
    lines += ["", "Figures in this folder were written by the same run: " + ", ".join(f"`{f}`" for f in results["figures"]), ""]
    atomic_write_bytes(path, "\n".join(lines).encode("utf-8"))
    return path


def reproduce(profile: Profile, models: tuple[str, ...] = REPORT_MODELS, out: str | Path | None = None,
              device: str | None = None, progress: bool = True, max_steps: int | None = None) -> dict:
    """Run the whole report under ``profile`` and write figures, ``results.md`` and ``results.json`` into ``out``.

    The steps: prepare the data; score the trivial baseline; per model, train on NYU, score, fine-tune
    on DIW, score; then the figures, the tables and the provenance. ``max_steps`` caps every stage at
    that many optimizer steps and every evaluation at that many batches (the rehearsal); its numbers
    then mean nothing but speed and memory. Under torchrun every rank trains; rank 0 evaluates and
    writes, and the others return ``{}``.
    """
    t0 = time.perf_counter()
    fingerprint = code_fingerprint(profile)  # what determines the numbers, before anything runs
    out = Path(out) if out is not None else figures_dir()
    device = distributed.init_distributed(device) or pick_device(device or profile.device)
    check_initial_weights(profile, models)  # pretrained weights that cannot be had stop the run here, in one line
    if profile.data == "real" and distributed.is_main():  # real data: hours of work; refuse now if the disks are too small
        print(format_plan(plan := disk_plan(profile, models, out)), flush=True)
        check_plan(plan)
    prepared, nyu, diw = _prepare(profile)
    tag = f"{prepared.source} data · {profile.name} profile · {device.type}"
    ev = dict(device=device, max_batches=max_steps, num_workers=profile.num_workers)
    main = distributed.is_main()
    results: dict = {"models": {}, "checks": {}, "baseline": _baseline(nyu, diw, ev) if main else {}}
    figures = _sample_figures(nyu, diw, tag) if main else {}
    scores: dict = {}
    for name in models:
        r, histories, figs, per_image = _one_model(profile, name, prepared, nyu, diw, device, ev, tag, progress, max_steps)
        results.setdefault("histories", {}).update(histories)
        if main:
            results["models"][name], scores[name] = r, per_image
            figures.update(figs)
    if not main:
        distributed.cleanup()
        return {}
    results["checks"] = _against_baseline(results) if prepared.source == "synthetic" else {}
    results["fingerprint"] = fingerprint
    figures["training_curves.png"] = viz.plot_histories(results["histories"], f"Training curves ({tag})")
    figures["comparison_table.png"] = _comparison_table(results, prepared.source, tag)
    out.mkdir(parents=True, exist_ok=True)
    for fname, fig in figures.items():
        viz.save_figure(fig, out / fname)
    results["figures"] = sorted(figures) + ["results.md", "results.json", PER_IMAGE_FILE]
    results["provenance"] = _provenance(profile, prepared, models, nyu, diw, device, max_steps, results["histories"], t0)
    write_results_md(out / "results.md", results)
    save_json(out / PER_IMAGE_FILE, {"fingerprint": fingerprint, "protocols": PER_IMAGE_PROTOCOLS, "models": scores})
    save_json(out / "results.json", results)
    distributed.cleanup()
    return results


PER_IMAGE_FILE = "per_image_scores.json"  # beside results.json: each test image's score, for paired noise bands
SEED_SPREAD_FILE = "seed_spread.json"  # beside results.json: the seed-to-seed spread (python -m depthkit.tools.seeds)
_NYU_PER_IMAGE = "the NYU stage's metrics per test image (protocol `resized`; normalized_mse is the report's)"
_DIW_PER_IMAGE = "per test image, ordinal_accuracy 1 when its pair is ordered right (sign of z_A - z_B, ties wrong), else 0"
PER_IMAGE_PROTOCOLS = {"nyu": _NYU_PER_IMAGE + ", after NYU training", "nyu_after_diw": _NYU_PER_IMAGE + ", after DIW",
                       "diw": _DIW_PER_IMAGE + ", after DIW fine-tuning", "diw_after_nyu": _DIW_PER_IMAGE + ", after NYU only"}


def read_figures_json(name: str, folder: str | Path | None = None) -> dict | None:
    """A JSON file the reproduction keeps in ``figures/`` (results, per-image scores, seed spread); None if absent."""
    path = Path(folder if folder is not None else figures_dir()) / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); regenerate it with `{REGENERATE}`") from None


def results_weights(results: dict, name: str) -> str:
    """Where model ``name`` of a results.json started from; an older file without the field says so
    (from its NYU training history when that recorded it, else unknown)."""
    recorded = (results.get("models", {}).get(name) or {}).get("weights")
    if recorded:
        return recorded
    history = (results.get("histories") or {}).get(f"{name} NYU") or {}
    sources = history.get("weights_source") or [None]
    if sources[0] is None:
        return UNKNOWN_WEIGHTS
    return f"{weights_label(sources[0], name)} (not in the results; from the NYU training history)"


def _weights_text(results: dict) -> str:
    """``"LR-ASPP MobileNetV3-Large: random init; U-Net++ resnext50_32x4d: pretrained: ..."`` for captions."""
    return "; ".join(f"{r['label']}: {results_weights(results, n)}" for n, r in results["models"].items())


def _prepare(profile: Profile) -> tuple[PreparedData, dict[str, DepthData], dict[str, DepthData]]:
    """Rank 0 makes the data and caches (the others wait); every rank then loads both stages' splits."""
    if distributed.is_main():
        prepare_data(profile)
    distributed.barrier()
    prepared = prepare_data(profile)
    return prepared, load_stage_data(profile, "nyu", prepared), load_stage_data(profile, "diw", prepared)


def _baseline(nyu: dict[str, DepthData], diw: dict[str, DepthData], ev: dict) -> dict:
    """The trivial baseline (the NYU training set's mean depth map) on both test splits."""
    mean_map = mean_depth_baseline(nyu["train"])
    return {"nyu": evaluate_baseline(nyu["train"], nyu["test"]),
            "diw": evaluate(ConstantModel(mean_map), diw["test"], "diw", **dict(ev, device="cpu"))}


def _sample_figures(nyu: dict[str, DepthData], diw: dict[str, DepthData], tag: str) -> dict:
    """The data figures: NYU-layout test samples with their depth, DIW-layout ones with their pair."""
    return {"nyu_samples.png": viz.show_samples(nyu["test"].images, nyu["test"].depths, f"NYU-layout test samples ({tag})"),
            "diw_samples.png": viz.show_pairs(diw["test"].images, diw["test"].pairs, diw["test"].relation,
                                              f"DIW-layout test samples with their point pair ({tag})")}


def _one_model(profile: Profile, name: str, prepared: PreparedData, nyu: dict[str, DepthData],
               diw: dict[str, DepthData], device: torch.device, ev: dict, tag: str, progress: bool,
               max_steps: int | None) -> tuple[dict, dict, dict, dict]:
    """Train one model on NYU then DIW and score it: ``(results row, histories, figures, per-image test scores)``.

    A finished run is reused only when trained by this code and profile. Off rank 0 the row,
    figures and scores are empty.
    """
    for stage in ("nyu", "diw"):
        retire_stale_run(run_dir(profile, name, stage), profile, strict=True)
    model, hist_nyu, _ = train_stage(profile, name, "nyu", nyu, device=device, progress=progress, max_steps=max_steps)
    if distributed.is_main():
        r = {"label": REPORT_RESULTS.get(name, {}).get("label", name), "params_m": count_parameters(model) / 1e6,
             "weights": model.weights_label,  # where its training started: pretrained (which) or random init
             "nyu": evaluate(model, nyu["test"], "nyu", **ev),
             "nyu_eigen": nyu_eigen_metrics(model, nyu["test"], prepared.nyu_mat, nyu_frames(profile, prepared, "test"),
                                            max_batches=max_steps),
             "diw_after_nyu": evaluate(model, diw["test"], "diw", **ev)}
        r["nyu_resized"] = {k: r["nyu"][k] for k in STANDARD_KEYS}
        pred_nyu = predict_depth(model, nyu["test"])
        scores = {"nyu": per_image_scores(model, nyu["test"], "nyu"),
                  "diw_after_nyu": per_image_scores(model, diw["test"], "diw")}
    model, hist_diw, _ = train_stage(profile, name, "diw", diw, init=run_dir(profile, name, "nyu") / "best.pt",
                                     device=device, progress=progress, max_steps=max_steps)
    histories = {f"{name} NYU": hist_nyu, f"{name} DIW": hist_diw}
    if not distributed.is_main():
        return {}, histories, {}, {}
    r["diw"] = evaluate(model, diw["test"], "diw", **ev)
    r["nyu_after_diw"] = evaluate(model, nyu["test"], "nyu", **ev)
    figures = {f"predictions_after_nyu_{name}.png": viz.show_predictions(
                   nyu["test"].images, {f"{name} after NYU": pred_nyu}, f"{r['label']} on NYU-layout test images ({tag})",
                   depths=nyu["test"].depths),
               f"predictions_after_diw_{name}.png": viz.show_predictions(
                   diw["test"].images, {f"{name} after DIW": predict_depth(model, diw["test"])},
                   f"{r['label']} on DIW-layout test images after fine-tuning ({tag})",
                   pairs=diw["test"].pairs, relation=diw["test"].relation)}
    scores.update(diw=per_image_scores(model, diw["test"], "diw"), nyu_after_diw=per_image_scores(model, nyu["test"], "nyu"))
    return r, histories, figures, {block: {k: v.tolist() for k, v in values.items()} for block, values in scores.items()}


def _against_baseline(results: dict) -> dict:
    """Per model, how far it beats the trivial baseline on the same synthetic data."""
    base = results["baseline"]
    return {name: {"nmse_improvement": 1 - r["nyu"]["normalized_mse"] / base["nyu"]["normalized_mse"],
                   "acc_gain": r["diw"]["ordinal_accuracy"] - base["diw"]["ordinal_accuracy"]}
            for name, r in results["models"].items()}


def _comparison_table(results: dict, source: str, tag: str):
    """The report's comparison table beside ours, as a figure."""
    header = ["model", "params", "NYU MSE report (real)", f"NYU MSE ours ({source})",
              "DIW acc. report (real)", f"DIW acc. ours ({source})"]
    rows = [[r["label"], f"{r['params_m']:.1f} M", REPORT_RESULTS.get(n, {}).get("nyu_mse", "–"),
             f"{r['nyu']['normalized_mse']:.4f}", f"{REPORT_RESULTS.get(n, {}).get('diw_acc', '–')} %",
             f"{100 * r['diw']['ordinal_accuracy']:.1f} %"] for n, r in results["models"].items()]
    note = "" if source != "synthetic" else " — synthetic numbers are not comparable with the report's"
    caption = [f"weights of ours, {r['label']}: {results_weights(results, n)}" for n, r in results["models"].items()]
    return viz.table_figure(header, rows, f"Report vs. this run ({tag}){note}",
                            caption=caption + [f"weights of the report's: {REPORT_WEIGHTS}"])


def _provenance(profile: Profile, prepared: PreparedData, models: tuple[str, ...], nyu: dict, diw: dict,
                device: torch.device, max_steps: int | None, histories: dict, t0: float) -> dict:
    """What produced the numbers: profile, data, budgets, device and versions, split sizes, times."""
    return {
        "profile": profile.name, "source_kind": prepared.source, "data": prepared.describe(), "size": profile.size,
        "batch_size": profile.batch_size, "diw_protocol": profile.diw_protocol, "max_steps": max_steps,
        "seed": profile.seed, "training_seed": profile.training_seed, "lr_schedule": profile.lr_schedule,
        "lr": {stage: profile.budget(stage).lr for stage in ("nyu", "diw")}, "weight_decay": profile.weight_decay,
        "training_data": {"nyu": data_fingerprint(nyu), "diw": data_fingerprint(diw)},  # the splits' identities
        "epochs": {m: {"nyu": profile.epochs(m, "nyu"), "diw": profile.epochs(m, "diw")} for m in models},
        "device": _device_name(device), "torch": torch.__version__, "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "world_size": distributed.world_size(), "protocols": PROTOCOLS,
        "nyu_sizes": "/".join(str(len(nyu[k])) for k in ("train", "val", "test")),
        "diw_sizes": "/".join(str(len(diw[k])) for k in ("train", "val", "test")),
        "wall_time_s": time.perf_counter() - t0,
        # training may have happened earlier (notebooks 03-05): the epochs' own clocks say how long it took
        "training_time_s": sum(sum(h["seconds"]) for h in histories.values()),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
