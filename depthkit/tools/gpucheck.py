"""The CUDA path against its targets, in one table: ``make gpu-check`` (``python -m depthkit.tools.gpucheck [--quick]``).

For the day a GPU is lent: at most about 10 minutes on one GPU. It runs, on the best device present,

* **parity**: one fp32 training step (no augmentation, TF32 off) on the CPU and on the device from
  the same weights and batch: the loss within ``LOSS_RTOL`` (relative) and every gradient within
  ``GRAD_TOL`` of the model's largest gradient;
* **syncs**: ``torch.cuda.set_sync_debug_mode`` over a training epoch and an evaluation pass
  (per step and per batch, from an N-step and a 1-step run; target 0);
* **bench**: :func:`depthkit.tools.bench.bench` at the report's size, both models, both stages (data
  wait < 5 %; U-Net++ at >= 40 % of the device's matmul rate in the autocast dtype: bf16 from
  compute capability 8, fp16 on a T4, the row says which);
* **rehearsal**: :func:`depthkit.tools.rehearse.rehearse` at 74,441 DIW images with both report models,
  capped steps, with the peak anonymous host memory of the process tree (target <= 3 GB) and the
  peak GPU memory torch allocated.

It prints one table: each target, what was measured, the device it ran on (the GPU's name, or
``CPU: <model>``; parity names both sides), PASS/FAIL. On a machine without a GPU it
runs end to end and marks the rows that need one "no GPU"; ``--quick`` shrinks every part (LR-ASPP,
64x64, 2 steps) and skips the rehearsal (minutes even when tiny: the report profile at 200x200),
reporting the check's own peak host memory instead, so a test runs it on a CPU in seconds.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from depthkit.device import channels_last, device_name, fits_on_device, pick_device
from depthkit.evaluate import evaluate, predict
from depthkit.models import build_model
from depthkit.stages import get_stage
from depthkit.tools import bench as dk_bench
from depthkit.tools.memory import PeakMemory
from depthkit.tools.rehearse import DIW_TEST_IMAGES, rehearse
from depthkit.train import build_optimizer, train_one_epoch

LOSS_RTOL = 1e-4  # fp32, TF32 off: cuDNN and the CPU sum in other orders, nothing more
GRAD_TOL = 1e-3  # max |g_gpu - g_cpu| over the largest |g_cpu| of the model
DATA_WAIT_PCT = 5.0
UNETPP_MATMUL_PCT = 40.0
HOST_RAM_GB = 3.0


@dataclass(frozen=True)
class Size:
    """How big each part of the check is."""

    models: tuple[str, ...] = ("lraspp", "unetpp")
    size: int = 200  # the report's
    batch: int = 16
    steps: int = 20
    workers: int = 2
    rehearsal_steps: int | None = 10  # None: no rehearsal


FULL = Size()
QUICK = Size(models=("lraspp",), size=64, batch=4, steps=2, workers=0, rehearsal_steps=None)


def parity(device: torch.device, size: int = 64, batch: int = 4, model: str = "lraspp") -> dict:
    """Loss and gradient differences of one fp32 step, CPU (contiguous) against ``device`` (channels_last where fit uses it).

    Without a GPU the candidate is the CPU in channels_last, so the comparison still runs.
    """
    data, stage = dk_bench.random_split("nyu", batch, size), get_stage("nyu")
    target = device if device.type != "cpu" else torch.device("cpu")
    last = channels_last(target) or target.type == "cpu"
    allow = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        results = []
        for where, fmt in ((torch.device("cpu"), torch.contiguous_format),
                           (target, torch.channels_last if last else torch.contiguous_format)):
            torch.manual_seed(0)
            net = build_model(model).to(where, memory_format=fmt).train()
            b = {k: v.to(where) for k, v in data[list(range(batch))].items()}
            images = (b["images"].float() / 255).contiguous(memory_format=fmt)
            loss = stage.loss(predict(net, images, None, check_range=False), b)
            loss.backward()
            results.append((loss.detach().cpu().double(),
                            {n: p.grad.detach().cpu().double() for n, p in net.named_parameters() if p.grad is not None}))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = allow
    (l0, g0), (l1, g1) = results
    scale = max(float(g.abs().max()) for g in g0.values())  # per model: a bias before BatchNorm has ~0 gradient
    grad = max(float((g1[n] - g0[n]).abs().max()) for n in g0) / max(scale, 1e-12)
    return {"against": "GPU" if target.type == "cuda" else f"{target.type} channels_last",
            "loss_rel": float((l1 - l0).abs() / l0.abs().clamp_min(1e-12)), "grad_rel": grad}


def sync_counts(device: torch.device, size: int = 64, batch: int = 4, steps: int = 5, model: str = "lraspp") -> dict:
    """Host syncs torch reports per training step and per evaluation batch (slopes of an N-step and a 1-step run)."""
    from depthkit.config import get_profile

    if device.type != "cuda":
        return {"train_per_step": None, "eval_per_batch": None, "train_per_epoch": None, "eval_per_pass": None}
    data = dk_bench.random_split("nyu", batch * steps, size)
    data = data.to(device) if fits_on_device(data.nbytes, device) else data
    profile, stage = get_profile("report").replace(batch_size=batch), get_stage("nyu")
    torch.manual_seed(0)
    net = build_model(model).to(device, memory_format=torch.channels_last)
    optimizer = build_optimizer(net, 1e-4, 0.0, device)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    train_one_epoch(net, optimizer, scaler=scaler, stage=stage, data=data, profile=profile, epoch=0, device=device,
                    max_steps=2, progress=False)  # warm-up
    counts = {}
    for n in (steps, 1):
        with dk_bench.cuda_sync_warnings(device) as found:
            train_one_epoch(net, optimizer, scaler=scaler, stage=stage, data=data, profile=profile, epoch=1, device=device,
                            max_steps=n, progress=False)
        with dk_bench.cuda_sync_warnings(device) as seen:
            evaluate(net, data, stage, batch, device, max_batches=n)
        counts[n] = (len(found), len(seen))
    per_step = (counts[steps][0] - counts[1][0]) / max(steps - 1, 1)
    per_batch = (counts[steps][1] - counts[1][1]) / max(steps - 1, 1)
    return {"train_per_step": per_step, "eval_per_batch": per_batch,
            "train_per_epoch": counts[1][0] - per_step, "eval_per_pass": counts[1][1] - per_batch}


def gpucheck(quick: bool = False, device: str | None = None) -> dict:
    """Run every part of the check (see the module's docstring); returns the rows :func:`format_check` prints."""
    size = QUICK if quick else FULL
    device = pick_device(device or "auto")
    cuda = device.type == "cuda"
    with PeakMemory() as memory:
        par = parity(device, size=min(size.size, 64), batch=min(size.batch, 4))
        syncs = sync_counts(device, size=size.size, batch=size.batch, steps=max(size.steps // 2, 2))
        benched = dk_bench.bench(size.models, size=size.size, batch=size.batch, steps=size.steps, device=str(device),
                                 workers=size.workers)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    rehearsal = None if size.rehearsal_steps is None else rehearse(
        DIW_TEST_IMAGES, steps=size.rehearsal_steps, device=str(device), models=size.models)
    device_peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda and rehearsal else None
    if rehearsal is not None:
        host, what = rehearsal["peak_anon_gb"], f"rehearsal, {DIW_TEST_IMAGES:,} DIW images, {'+'.join(size.models)}"
    else:
        host, what = memory.peak_bytes and memory.peak_bytes / 1e9, "this check (--quick: no rehearsal)"
    rows = check_rows(device_name(device), cuda, par, syncs, benched, (what, host), device_peak)
    return {"device": benched["device_name"], "quick": quick, "rows": rows, "rehearsal": rehearsal,
            "bench": benched, "parity": par, "syncs": syncs}


def check_rows(name: str, cuda: bool, par: dict, syncs: dict, benched: dict, host: tuple[str, float | None],
               device_peak: float | None) -> list[dict]:
    """The table's rows from the parts' results, each naming the device it ran on (``name``; parity: both sides).

    ``cuda`` says whether the device is a GPU: without one the rows that need it say "no GPU". The
    U-Net++ matmul-share row holds on any GPU, in the autocast dtype the bench ran (bf16 from compute
    capability 8, fp16 on a T4), and says which.
    """
    cpu = device_name("cpu")
    both = f"{cpu} vs {name}" if cuda else cpu
    rows = [_row("CPU-vs-GPU parity of one fp32 step: loss", f"rel. diff <= {LOSS_RTOL:g}",
                 f"{par['loss_rel']:.1e} ({par['against']})", par["loss_rel"] <= LOSS_RTOL, cuda, both),
            _row("CPU-vs-GPU parity of one fp32 step: gradients", f"max diff <= {GRAD_TOL:g} x max |g|",
                 f"{par['grad_rel']:.1e} ({par['against']})", par["grad_rel"] <= GRAD_TOL, cuda, both),
            _row("host syncs per training step (set_sync_debug_mode)", "0", _num(syncs["train_per_step"]),
                 syncs["train_per_step"] == 0, cuda, name),
            _row("host syncs per evaluation batch", "0", _num(syncs["eval_per_batch"]), syncs["eval_per_batch"] == 0,
                 cuda, name)]
    dtype = benched["matmul_dtype"].replace("bfloat16", "bf16").replace("float16", "fp16").replace("float32", "fp32")
    for r in benched["rows"]:
        label = f"{r['model']} {r['stage']} ({r['data']})"
        rows.append(_row(f"bench {label}: data wait", f"< {DATA_WAIT_PCT:g} %", f"{r['data_wait_pct']:.1f} %",
                         r["data_wait_pct"] < DATA_WAIT_PCT, True, benched["device_name"]))
        rows.append(_row(f"bench {label}: host syncs per step", "0", _num(r["syncs_per_step"]),
                         r["syncs_per_step"] == 0, cuda, benched["device_name"]))
        if r["model"] == "unetpp":
            rows.append(_row(f"bench {label}: share of the {dtype} matmul rate ({r['precision']} autocast)",
                             f">= {UNETPP_MATMUL_PCT:g} % ({dtype})", f"{r['matmul_pct']:.0f} %",
                             r["matmul_pct"] >= UNETPP_MATMUL_PCT, cuda, benched["device_name"]))
    what, peak = host
    rows.append(_row(f"{what}: peak host RAM (PSS, process tree)",
                     f"<= {HOST_RAM_GB:g} GB", "n/a" if peak is None else f"{peak:.2f} GB",
                     peak is not None and peak <= HOST_RAM_GB, peak is not None, name))
    rows.append(_row("rehearsal: peak GPU memory allocated by torch", "(reported)",
                     "n/a" if device_peak is None else f"{device_peak:.2f} GiB", True, cuda, name))
    return rows


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _row(what: str, target: str, measured: str, ok: bool, applies: bool, device: str) -> dict:
    """One line of the table, run on ``device`` (its name); ``applies`` False marks a row that needs a GPU ("no GPU")."""
    return {"what": what, "target": target, "measured": measured, "device": device,
            "status": ("PASS" if ok else "FAIL") if applies else "no GPU"}


def format_check(result: dict) -> str:
    """The check as one plain-text table: what, target, measured, PASS/FAIL/no GPU."""
    width = max(len(r["what"]) for r in result["rows"])
    on = max(len(r["device"]) for r in result["rows"])
    lines = [f"gpu-check on {result['device']}{' (--quick)' if result['quick'] else ''}",
             f"{'check':<{width}}  {'target':<26} {'measured':<28} {'ran on':<{on}}  status", "-" * (width + on + 68)]
    lines += [f"{r['what']:<{width}}  {r['target']:<26} {r['measured']:<28} {r['device']:<{on}}  {r['status']}"
              for r in result["rows"]]
    failed = sum(r["status"] == "FAIL" for r in result["rows"])
    lines.append(f"{failed} FAIL, {sum(r['status'] == 'no GPU' for r in result['rows'])} need a GPU")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m depthkit.tools.gpucheck [--quick] [--device D]``; exit status 1 when a row fails."""
    parser = argparse.ArgumentParser(prog="python -m depthkit.tools.gpucheck", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds to a minute on a CPU")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: auto)")
    args = parser.parse_args(argv)
    result = gpucheck(quick=args.quick, device=args.device)
    print(format_check(result))
    return 1 if any(r["status"] == "FAIL" for r in result["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
