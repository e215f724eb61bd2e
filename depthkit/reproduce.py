"""The whole report in one call: data, NYU training, DIW fine-tuning, evaluation, figures, table.

``python -m depthkit reproduce [--profile P]`` runs :func:`reproduce`. It writes the report's
figures under stable names in ``figures/`` and ``figures/results.md``: the report's comparison
table with the report's numbers beside ours, the standard metrics, and a statement of the data,
profile, device and wall time that produced them.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from depthkit import viz
from depthkit.config import Profile, figures_dir
from depthkit.files import atomic_write
from depthkit.models import count_parameters
from depthkit.pipeline import PreparedData, load_stage_data, prepare_data
from depthkit.data.loader import DepthData
from depthkit.train import (evaluate, evaluate_baseline, mean_depth_baseline, pick_device, predict, run_dir,
                            train_stage)

REPORT_MODELS = ("lraspp", "unetpp")
# The course report's own numbers (DESIGN.md), printed beside ours.
REPORT_RESULTS = {
    "lraspp": {"label": "LR-ASPP MobileNetV3-Large", "params_m": 3.2, "nyu_mse": 0.058, "diw_acc": 58.4},
    "unetpp": {"label": "U-Net++ resnext50_32x4d", "params_m": 48.0, "nyu_mse": 0.032, "diw_acc": 65.32},
}
CHEN_2016_DIW_ACC = 77.9  # Chen et al. (NIPS 2016), NYU->DIW hourglass: WHDR 22.14 %


@torch.no_grad()
def predict_depth(model: torch.nn.Module, data: DepthData, n: int | None = 4, batch_size: int = 32) -> torch.Tensor:
    """Predictions ``[n, 1, H, W]`` (CPU) for the first ``n`` images of ``data`` (all with ``n=None``)."""
    device = next(model.parameters()).device
    model.eval()
    images = data.images[:n] if n is not None else data.images
    return torch.cat([predict(model, images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f} %" if pct else f"{x:.4f}"


def write_results_md(path: Path, results: dict) -> Path:
    """Write ``results.md``: the report's table beside ours, the standard metrics, the provenance."""
    p, lines = results["provenance"], []
    lines += [f"# Results — {p['profile']} profile, {p['source_kind']} data", "",
              f"- **Data:** {p['data']}",
              f"- **Profile:** `{p['profile']}` (image size {p['size']}×{p['size']}, batch {p['batch_size']}, "
              f"epochs {p['epochs']}, DIW protocol `{p['diw_protocol']}`)",
              f"- **Device:** {p['device']}; torch {p['torch']}; training {p['training_time_s'] / 60:.1f} min "
              f"(sum over epochs), this run's wall time {p['wall_time_s'] / 60:.1f} min",
              f"- **Splits:** NYU train/val/test {p['nyu_sizes']}; DIW train/val/test {p['diw_sizes']}", ""]
    if p["source_kind"] == "synthetic":
        lines += ["> These numbers come from the embedded **synthetic** depth-cue scenes, not from NYU Depth V2 or "
                  "DIW. They show that the pipeline learns; they are not comparable with the report's numbers, "
                  "which are printed beside them for orientation only.", ""]
    lines += ["## The report's comparison table, and ours", "",
              "| model | parameters | NYU test MSE (normalized) — report | ours | DIW test accuracy — report | "
              "ours after NYU only | ours after DIW fine-tuning |",
              "|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        rep = REPORT_RESULTS.get(name, {})
        lines.append(f"| {r['label']} | {r['params_m']:.2f} M | {_fmt(rep.get('nyu_mse'))} | {_fmt(r['nyu']['normalized_mse'])} "
                     f"| {rep.get('diw_acc', '–')}{' %' if 'diw_acc' in rep else ''} | {_fmt(r['diw_after_nyu']['ordinal_accuracy'], True)} "
                     f"| {_fmt(r['diw']['ordinal_accuracy'], True)} |")
    b = results["baseline"]
    lines.append(f"| trivial baseline (training-set mean depth map) | 0 | – | {_fmt(b['nyu']['normalized_mse'])} | – "
                 f"| {_fmt(b['diw']['ordinal_accuracy'], True)} | – |")
    lines += ["", f"Anchor: Chen et al. (NIPS 2016) report {CHEN_2016_DIW_ACC} % DIW accuracy (WHDR 22.14 %) for their "
              "NYU→DIW hourglass network, trained on DIW_train_val and tested on DIW_test.", "",
              "## Standard NYU metrics (test split, per-image least-squares scale-and-shift alignment)", "",
              "| model | AbsRel ↓ | SqRel ↓ | RMSE (m) ↓ | RMSE log ↓ | log10 ↓ | δ<1.25 ↑ | δ<1.25² ↑ | δ<1.25³ ↑ | DIW WHDR ↓ |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        m = r["nyu"]
        lines.append(f"| {r['label']} | {m['abs_rel']:.3f} | {m['sq_rel']:.3f} | {m['rmse']:.3f} | {m['rmse_log']:.3f} "
                     f"| {m['log10']:.3f} | {m['delta1']:.3f} | {m['delta2']:.3f} | {m['delta3']:.3f} | {_fmt(r['diw']['whdr'], True)} |")
    if results.get("targets"):
        lines += ["", "## Demo targets (issue: beat the mean-depth baseline by ≥ 25 % in normalized MSE, ≥ 70 % DIW accuracy)", "",
                  "| model | NYU normalized MSE vs baseline | met? | DIW accuracy | met? |", "|---|---|---|---|---|"]
        for name, t in results["targets"].items():
            lines.append(f"| {name} | {100 * t['nmse_improvement']:.1f} % lower | {'yes' if t['nmse_ok'] else 'no'} "
                         f"| {_fmt(t['diw_accuracy'], True)} | {'yes' if t['acc_ok'] else 'no'} |")
    lines += ["", "Figures in this folder were written by the same run: " + ", ".join(f"`{f}`" for f in results["figures"]), ""]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines), encoding="utf-8"))
    return path


def reproduce(profile: Profile, models: tuple[str, ...] = REPORT_MODELS, out: str | Path | None = None,
              device: str | None = None, progress: bool = True, max_steps: int | None = None) -> dict:
    """Run the whole report under ``profile`` and write figures + ``results.md`` into ``out``.

    ``max_steps`` caps every stage at that many optimizer steps and every evaluation at that many
    batches (the rehearsal); its numbers then mean nothing but speed and memory.
    """
    t0 = time.perf_counter()
    out = Path(out) if out is not None else figures_dir()
    device = pick_device(device or profile.device)
    prepared: PreparedData = prepare_data(profile)
    nyu = load_stage_data(profile, "nyu", prepared)
    diw = load_stage_data(profile, "diw", prepared)
    tag = f"{prepared.source} data · {profile.name} profile · {device.type}"
    figures = {
        "nyu_samples.png": viz.show_samples(nyu["test"].images, nyu["test"].depths, f"NYU-layout test samples ({tag})"),
        "diw_samples.png": viz.show_pairs(diw["test"].images, diw["test"].pairs, diw["test"].relation,
                                          f"DIW-layout test samples with their point pair ({tag})"),
    }
    mean_map = mean_depth_baseline(nyu["train"])
    ev = dict(device=device, max_batches=max_steps, num_workers=profile.num_workers)
    baseline_diw = evaluate(_ConstantModel(mean_map), diw["test"], "diw", **dict(ev, device="cpu"))
    results = {"models": {}, "baseline": {"nyu": evaluate_baseline(nyu["train"], nyu["test"]), "diw": baseline_diw},
               "targets": {}}
    histories: dict[str, dict] = {}
    for name in models:
        model, hist_nyu, _ = train_stage(profile, name, "nyu", nyu, device=device, progress=progress, max_steps=max_steps)
        r = {"label": REPORT_RESULTS.get(name, {}).get("label", name), "params_m": count_parameters(model) / 1e6,
             "nyu": evaluate(model, nyu["test"], "nyu", **ev),
             "diw_after_nyu": evaluate(model, diw["test"], "diw", **ev)}
        pred_nyu = predict_depth(model, nyu["test"])
        model, hist_diw, _ = train_stage(profile, name, "diw", diw, init=run_dir(profile, name, "nyu") / "best.pt",
                                         device=device, progress=progress, max_steps=max_steps)
        r["diw"] = evaluate(model, diw["test"], "diw", **ev)
        r["nyu_after_diw"] = evaluate(model, nyu["test"], "nyu", **ev)
        figures[f"predictions_after_nyu_{name}.png"] = viz.show_predictions(
            nyu["test"].images, {f"{name} after NYU": pred_nyu}, f"{r['label']} on NYU-layout test images ({tag})",
            depths=nyu["test"].depths)
        figures[f"predictions_after_diw_{name}.png"] = viz.show_predictions(
            diw["test"].images, {f"{name} after DIW": predict_depth(model, diw["test"])},
            f"{r['label']} on DIW-layout test images after fine-tuning ({tag})",
            pairs=diw["test"].pairs, relation=diw["test"].relation)
        histories[f"{name} NYU"], histories[f"{name} DIW"] = hist_nyu, hist_diw
        results["models"][name] = r
        gain = 1 - r["nyu"]["normalized_mse"] / results["baseline"]["nyu"]["normalized_mse"]
        results["targets"][name] = {"nmse_improvement": gain, "nmse_ok": gain >= 0.25,
                                    "diw_accuracy": r["diw"]["ordinal_accuracy"], "acc_ok": r["diw"]["ordinal_accuracy"] >= 0.70}
    results["histories"] = histories
    figures["training_curves.png"] = viz.plot_histories(histories, f"Training curves ({tag})")
    header = ["model", "params", "NYU MSE report", "NYU MSE ours", "DIW acc. report", "DIW acc. ours"]
    rows = [[r["label"], f"{r['params_m']:.1f} M", REPORT_RESULTS.get(n, {}).get("nyu_mse", "–"), f"{r['nyu']['normalized_mse']:.4f}",
             f"{REPORT_RESULTS.get(n, {}).get('diw_acc', '–')} %", f"{100 * r['diw']['ordinal_accuracy']:.1f} %"]
            for n, r in results["models"].items()]
    figures["comparison_table.png"] = viz.table_figure(header, rows, f"Report vs. this run ({tag})")
    out.mkdir(parents=True, exist_ok=True)
    for fname, fig in figures.items():
        viz.save_figure(fig, out / fname)
    results["figures"] = sorted(figures) + ["results.md", "results.json"]
    results["provenance"] = {
        "profile": profile.name, "source_kind": prepared.source, "data": prepared.describe(), "size": profile.size,
        "batch_size": profile.batch_size, "diw_protocol": profile.diw_protocol,
        "epochs": {m: {"nyu": profile.epochs(m, "nyu"), "diw": profile.epochs(m, "diw")} for m in models},
        "device": _device_name(device), "torch": torch.__version__, "python": platform.python_version(),
        "nyu_sizes": "/".join(str(len(nyu[k])) for k in ("train", "val", "test")),
        "diw_sizes": "/".join(str(len(diw[k])) for k in ("train", "val", "test")),
        "wall_time_s": time.perf_counter() - t0,
        # training may have happened earlier (notebooks 03-05): the epochs' own clocks say how long it took
        "training_time_s": sum(sum(h["seconds"]) for h in histories.values()),
    }
    if prepared.source != "synthetic":
        results["targets"] = {}
    write_results_md(out / "results.md", results)
    from depthkit.train import save_json

    save_json(out / "results.json", results)
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
