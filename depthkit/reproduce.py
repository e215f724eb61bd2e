"""The whole report in one call: data, NYU training, DIW fine-tuning, evaluation, figures, table.

``python -m depthkit reproduce [--profile P]`` runs :func:`reproduce`. It writes the report's
figures under stable names in ``figures/`` and ``figures/results.md``: the report's comparison
table with the report's numbers beside ours, the standard metrics, and a statement of the data,
profile, device and wall time that produced them. Every table names the protocol of its numbers.
Under torchrun every process trains (DistributedDataParallel); rank 0 alone evaluates and writes.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from depthkit import distributed, metrics, viz
from depthkit.config import Profile, figures_dir
from depthkit.data import read_nyu_mat
from depthkit.data.loader import DepthData
from depthkit.files import atomic_write
from depthkit.fingerprint import REGENERATE, code_fingerprint
from depthkit.models import count_parameters
from depthkit.pipeline import PreparedData, load_stage_data, nyu_frames, prepare_data
from depthkit.runs import retire_stale_run
from depthkit.train import (evaluate, evaluate_baseline, mean_depth_baseline, pick_device, predict, run_dir,
                            save_json, train_stage)

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
           "ties wrong (Chen et al.'s test script); accuracy = 1 − WHDR (δ = 0)",
    "resized": "at the prepared {size}×{size}, no Eigen crop, per-image least-squares scale-and-shift alignment, "
               "valid depth 1e-3…10 m, per image then the mean. Not comparable with published tables",
    "eigen": "the published protocol (Eigen et al. 2014; BTS/AdaBins compute_errors): prediction upsampled to the "
             "640×480 frame, Eigen crop rows 45:471, columns 41:601, valid depth 1e-3…10 m, per-image least-squares "
             "scale-and-shift alignment (our models predict relative depth), per image then the mean",
}
STANDARD_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")


@torch.no_grad()
def predict_depth(model: torch.nn.Module, data: DepthData, n: int | None = 4, batch_size: int = 32) -> torch.Tensor:
    """Predictions ``[n, 1, H, W]`` (CPU) for the first ``n`` images of ``data`` (all with ``n=None``)."""
    device = next(model.parameters()).device
    model.eval()
    images = data.images[:n] if n is not None else data.images
    return torch.cat([predict(model, images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def nyu_eigen_metrics(model: torch.nn.Module, test: DepthData, mat_path: Path, frames, batch_size: int = 8,
                      max_batches: int | None = None) -> dict[str, float]:
    """Standard NYU metrics under the published protocol: ground truth read at 640×480 from the ``.mat``, a batch at a time."""
    device = next(model.parameters()).device
    model.eval()
    sums, count = {}, 0
    for b, start in enumerate(range(0, len(test), batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        _, depth = read_nyu_mat(mat_path, frames[start:start + batch_size])
        pred = predict(model, test.images[start:start + batch_size].to(device)).cpu()
        values = metrics.depth_metrics(pred, torch.from_numpy(depth)[:, None], align="lstsq", protocol="eigen")
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(pred)
        count += len(pred)
    return {key: value / count for key, value in sums.items()}


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


def write_results_md(path: Path, results: dict) -> Path:
    """Write ``results.md``: the report's table beside ours, the standard metrics, the provenance and protocols."""
    p, lines = results["provenance"], []
    size = p["size"]
    lines += [f"# Results — {p['profile']} profile, {p['source_kind']} data, {p['device'].split(' ')[0]}", "",
              f"- **Data:** {p['data']}",
              f"- **Profile:** `{p['profile']}`: image size {size}×{size}, batch {p['batch_size']}, "
              f"DIW protocol `{p['diw_protocol']}`",
              f"- **Epochs:** {_epochs_text(p['epochs'])}",
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
    lines += ["## The report's comparison table, and ours", "",
              f"| model | parameters | NYU test MSE, normalized — report (real data) | ours ({p['source_kind']}) | "
              f"DIW test accuracy — report (real data) | ours after NYU only | ours after DIW fine-tuning |",
              "|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        rep = REPORT_RESULTS.get(name, {})
        lines.append(f"| {r['label']} | {r['params_m']:.2f} M | {_fmt(rep.get('nyu_mse'))} | {_fmt(r['nyu']['normalized_mse'])} "
                     f"| {rep.get('diw_acc', '–')}{' %' if 'diw_acc' in rep else ''} | {_fmt(r['diw_after_nyu']['ordinal_accuracy'], True)} "
                     f"| {_fmt(r['diw']['ordinal_accuracy'], True)} |")
    b = results["baseline"]
    lines.append(f"| trivial baseline (training-set mean depth map) | 0 | – | {_fmt(b['nyu']['normalized_mse'])} | – "
                 f"| {_fmt(b['diw']['ordinal_accuracy'], True)} | – |")
    lines += ["", f"- NYU test MSE protocol: {PROTOCOLS['nmse'].format(size=size)}.",
              f"- DIW accuracy protocol: {PROTOCOLS['diw']}.",
              "- Zero-shot anchors (DIW WHDR, MiDaS README; models trained on far more data, never on DIW): "
              + ", ".join(f"{k} {v} %" for k, v in ZERO_SHOT_DIW_WHDR.items()) + ".", ""]
    for protocol in ("eigen", "resized"):
        rows = [(r["label"], r.get(f"nyu_{protocol}")) for r in results["models"].values() if r.get(f"nyu_{protocol}")]
        if not rows:
            continue
        lines += [f"## Standard NYU metrics, protocol `{protocol}` (test split)", "",
                  f"Protocol: {PROTOCOLS[protocol].format(size=size)}.", "",
                  "| model | AbsRel ↓ | SqRel ↓ | RMSE (m) ↓ | RMSE log ↓ | log10 ↓ | δ<1.25 ↑ | δ<1.25² ↑ | δ<1.25³ ↑ |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, m in rows:
            lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in STANDARD_KEYS) + " |")
        lines.append("")
    lines += ["## DIW WHDR (δ = 0, Chen et al.'s DIW protocol; lower is better)", "",
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
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines), encoding="utf-8"))
    return path


def reproduce(profile: Profile, models: tuple[str, ...] = REPORT_MODELS, out: str | Path | None = None,
              device: str | None = None, progress: bool = True, max_steps: int | None = None) -> dict:
    """Run the whole report under ``profile`` and write figures + ``results.md`` into ``out``.

    ``max_steps`` caps every stage at that many optimizer steps and every evaluation at that many
    batches (the rehearsal); its numbers then mean nothing but speed and memory. Under torchrun
    every rank trains; rank 0 evaluates and writes, and the others return ``{}``.
    """
    t0 = time.perf_counter()
    fingerprint = code_fingerprint(profile)  # what determines the numbers, before anything runs
    out = Path(out) if out is not None else figures_dir()
    device = distributed.init_distributed(device) or pick_device(device or profile.device)
    main = distributed.is_main()
    if main:
        prepare_data(profile)  # rank 0 alone writes data and caches
    distributed.barrier()
    prepared: PreparedData = prepare_data(profile)
    nyu = load_stage_data(profile, "nyu", prepared)
    diw = load_stage_data(profile, "diw", prepared)
    tag = f"{prepared.source} data · {profile.name} profile · {device.type}"
    ev = dict(device=device, max_batches=max_steps, num_workers=profile.num_workers)
    results: dict = {"models": {}, "checks": {}}
    figures: dict = {}
    if main:
        figures["nyu_samples.png"] = viz.show_samples(nyu["test"].images, nyu["test"].depths,
                                                      f"NYU-layout test samples ({tag})")
        figures["diw_samples.png"] = viz.show_pairs(diw["test"].images, diw["test"].pairs, diw["test"].relation,
                                                    f"DIW-layout test samples with their point pair ({tag})")
        mean_map = mean_depth_baseline(nyu["train"])
        results["baseline"] = {"nyu": evaluate_baseline(nyu["train"], nyu["test"]),
                               "diw": evaluate(_ConstantModel(mean_map), diw["test"], "diw", **dict(ev, device="cpu"))}
    frames = nyu_frames(profile, prepared, "test")
    histories: dict[str, dict] = {}
    for name in models:
        for stage in ("nyu", "diw"):  # a finished run is reused only when trained by this code and profile
            retire_stale_run(run_dir(profile, name, stage), profile, strict=True)
        model, hist_nyu, _ = train_stage(profile, name, "nyu", nyu, device=device, progress=progress, max_steps=max_steps)
        if main:
            r = {"label": REPORT_RESULTS.get(name, {}).get("label", name), "params_m": count_parameters(model) / 1e6,
                 "nyu": evaluate(model, nyu["test"], "nyu", **ev),
                 "nyu_eigen": nyu_eigen_metrics(model, nyu["test"], prepared.nyu_mat, frames, max_batches=max_steps),
                 "diw_after_nyu": evaluate(model, diw["test"], "diw", **ev)}
            r["nyu_resized"] = {k: r["nyu"][k] for k in STANDARD_KEYS}
            pred_nyu = predict_depth(model, nyu["test"])
        model, hist_diw, _ = train_stage(profile, name, "diw", diw, init=run_dir(profile, name, "nyu") / "best.pt",
                                         device=device, progress=progress, max_steps=max_steps)
        histories[f"{name} NYU"], histories[f"{name} DIW"] = hist_nyu, hist_diw
        if not main:
            continue
        r["diw"] = evaluate(model, diw["test"], "diw", **ev)
        r["nyu_after_diw"] = evaluate(model, nyu["test"], "nyu", **ev)
        figures[f"predictions_after_nyu_{name}.png"] = viz.show_predictions(
            nyu["test"].images, {f"{name} after NYU": pred_nyu}, f"{r['label']} on NYU-layout test images ({tag})",
            depths=nyu["test"].depths)
        figures[f"predictions_after_diw_{name}.png"] = viz.show_predictions(
            diw["test"].images, {f"{name} after DIW": predict_depth(model, diw["test"])},
            f"{r['label']} on DIW-layout test images after fine-tuning ({tag})",
            pairs=diw["test"].pairs, relation=diw["test"].relation)
        results["models"][name] = r
        if prepared.source == "synthetic":
            base = results["baseline"]
            results["checks"][name] = {
                "nmse_improvement": 1 - r["nyu"]["normalized_mse"] / base["nyu"]["normalized_mse"],
                "acc_gain": r["diw"]["ordinal_accuracy"] - base["diw"]["ordinal_accuracy"]}
    if not main:
        distributed.cleanup()
        return {}
    results["histories"] = histories
    results["fingerprint"] = fingerprint
    figures["training_curves.png"] = viz.plot_histories(histories, f"Training curves ({tag})")
    header = ["model", "params", "NYU MSE report (real)", f"NYU MSE ours ({prepared.source})",
              "DIW acc. report (real)", f"DIW acc. ours ({prepared.source})"]
    rows = [[r["label"], f"{r['params_m']:.1f} M", REPORT_RESULTS.get(n, {}).get("nyu_mse", "–"), f"{r['nyu']['normalized_mse']:.4f}",
             f"{REPORT_RESULTS.get(n, {}).get('diw_acc', '–')} %", f"{100 * r['diw']['ordinal_accuracy']:.1f} %"]
            for n, r in results["models"].items()]
    note = "" if prepared.source != "synthetic" else " — synthetic numbers are not comparable with the report's"
    figures["comparison_table.png"] = viz.table_figure(header, rows, f"Report vs. this run ({tag}){note}")
    out.mkdir(parents=True, exist_ok=True)
    for fname, fig in figures.items():
        viz.save_figure(fig, out / fname)
    results["figures"] = sorted(figures) + ["results.md", "results.json"]
    results["provenance"] = {
        "profile": profile.name, "source_kind": prepared.source, "data": prepared.describe(), "size": profile.size,
        "batch_size": profile.batch_size, "diw_protocol": profile.diw_protocol, "max_steps": max_steps,
        "epochs": {m: {"nyu": profile.epochs(m, "nyu"), "diw": profile.epochs(m, "diw")} for m in models},
        "device": _device_name(device), "torch": torch.__version__, "python": platform.python_version(),
        "world_size": distributed.world_size(), "protocols": PROTOCOLS,
        "nyu_sizes": "/".join(str(len(nyu[k])) for k in ("train", "val", "test")),
        "diw_sizes": "/".join(str(len(diw[k])) for k in ("train", "val", "test")),
        "wall_time_s": time.perf_counter() - t0,
        # training may have happened earlier (notebooks 03-05): the epochs' own clocks say how long it took
        "training_time_s": sum(sum(h["seconds"]) for h in histories.values()),
    }
    write_results_md(out / "results.md", results)
    save_json(out / "results.json", results)
    distributed.cleanup()
    return results


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class _ConstantModel(torch.nn.Module):
    """A "model" that predicts the same depth map for every image (the trivial baseline)."""

    def __init__(self, depth_map: torch.Tensor):
        super().__init__()
        self.register_buffer("depth_map", depth_map.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depth_map.expand(x.shape[0], -1, -1, -1)
