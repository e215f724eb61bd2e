"""Throughput and memory of ``fit``'s own training step, on whatever device is present.

``python -m depthkit bench [--model M] [--size S] [--batch B] [--steps N] [--workers W]`` prints
two tables. The model table runs :func:`depthkit.train.train_one_epoch`, the step ``fit`` runs
(augmentation, the stage's loss, bf16 on compute capability >= 8 or fp16 with a scaler before,
none on a CPU; channels_last on CUDA), for every model on the data of both stages, in the layout
of the stage's loader (``Stage.loader``) and placed where ``fit`` places it:

* ``nyu`` (depth maps): images with depth maps in memory, on the GPU when they fit
  (:func:`depthkit.device.fits_on_device`);
* ``diw`` (point pairs): images with a point pair each, streamed from a memory-mapped cache on disk
  (DIW at report scale on a Colab T4), through a DataLoader with ``--workers`` processes.

Each row is timed over ``steps`` steps after ``WARMUP`` steps, synchronised at both ends only (as
``fit`` runs). Columns: training images/s; "data wait", the share of that time the loop waited
for its batches; the achieved TFLOP/s (the FLOPs of one step: 3 x the forward pass's, counted by
``torch.utils.flop_counter``, see :func:`train_step_flops`) and its share of the device's measured matmul rate (bf16/fp16 on a
GPU, fp32 on a CPU); inference images/s; peak memory (GPU: allocated by torch; CPU: anonymous
memory of the process tree); on CUDA, the host synchronisations torch reports
(``torch.cuda.set_sync_debug_mode``), measured per step and per epoch: the timed epoch of N steps
and an epoch of one step are counted, the difference over N - 1 is per step, the rest per epoch.
A GPU run should print 0 syncs per step and 2 per epoch (the first step's timing and the
epoch's mean loss); a CPU prints n/a. The data row times batch assembly from a cache alone. Random
images stand in for data: the numbers measure the machine and the code, not a dataset.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from depthkit.config import get_profile
from depthkit.data.loader import DepthData, Rows, augment, batches
from depthkit.device import autocast_dtype, fits_on_device, pick_device, to_device
from depthkit.evaluate import predict
from depthkit.files import reserve_file
from depthkit.models import build_model
from depthkit.stages import get_stage
from depthkit.tools.memory import PeakMemory
from depthkit.train import build_optimizer, train_one_epoch

WARMUP = 2  # untimed steps first: cuDNN autotuning, allocator growth, first-call overheads


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int | None = None, repeats: int = 10) -> float:
    """The device's measured dense matmul rate in TFLOP/s (n x n by n x n): the yardstick for a model's rate."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def random_split(stage: str, n: int, size: int, folder: Path | None = None) -> DepthData:
    """``n`` random images in the layout of ``stage``'s loader: depth maps in memory, or pairs with images in ``folder``."""
    g = torch.Generator().manual_seed(0)
    if get_stage(stage).loader == "depth_maps":
        return DepthData(images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                         depths=torch.rand(n, 1, size, size, generator=g) * 9 + 1)
    if folder is None:
        raise ValueError(f"the {stage} stage streams its images from disk: random_split needs a folder for them")
    path, rng = folder / "images.u8", np.random.default_rng(0)
    reserve_file(path, n * size * size * 3)  # a memory map that meets a full disk ends the process (SIGBUS)
    array = np.memmap(path, dtype=np.uint8, mode="r+", shape=(n, size, size, 3))
    for start in range(0, n, 256):  # a chunk at a time: memory does not grow with n
        array[start:start + 256] = rng.integers(0, 256, size=array[start:start + 256].shape, dtype=np.uint8)
    array.flush()
    images = Rows(np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size, 3)))
    relation = torch.randint(0, 2, (n, 1), generator=g) * 2 - 1
    return DepthData(images=images, pairs=torch.randint(0, size, (n, 1, 4), generator=g), relation=relation)


@contextmanager
def cuda_sync_warnings(device: torch.device) -> Iterator[list[str]]:
    """On CUDA, collect every host synchronisation torch reports (``set_sync_debug_mode("warn")``); empty elsewhere.

    The list is filled when the block ends.
    """
    found: list[str] = []
    if device.type != "cuda":
        yield found
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield found
        finally:
            torch.cuda.set_sync_debug_mode("default")
            found.extend(str(w.message) for w in caught if "synchroniz" in str(w.message).lower())


def train_step_flops(model: torch.nn.Module, data: DepthData, batch: int, device: torch.device) -> int:
    """FLOPs of one training step: 3 x the forward pass's convolution and matmul FLOPs, counted by torch.

    The backward pass costs about twice the forward (gradients of activations and of weights).
    It is not counted directly: ``torch.utils.flop_counter`` (torch 2.14) counts the backward of a
    grouped convolution ``groups`` times over (65x for a 64-channel depthwise 3x3, measured), and
    MobileNetV3 is mostly depthwise convolutions (the count's group handling: pytorch/pytorch#183405).
    """
    sample = next(batches(data, batch, device=device))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        predict(model, sample["images"], autocast_dtype(device))
    return 3 * counter.get_total_flops()


def bench_model(name: str, stage: str = "nyu", size: int = 224, batch: int = 8, steps: int = 5,
                device: str | torch.device | None = None, workers: int = 0,
                matmul: float | None = None) -> dict:
    """Train and inference images/s, data wait, achieved TFLOP/s and peak memory of ``fit``'s step for one model."""
    device = torch.device(device) if device is not None else pick_device()
    profile = get_profile("report").replace(size=size, batch_size=batch, num_workers=workers)
    st, amp = get_stage(stage), autocast_dtype(device)
    with tempfile.TemporaryDirectory(prefix="depthkit-bench-") as tmp:
        data = random_split(stage, batch * (steps + WARMUP), size, Path(tmp))
        resident = not data.on_disk and fits_on_device(data.nbytes, device)
        data = data.to(device) if resident else data
        torch.manual_seed(0)
        model = to_device(build_model(name), device)
        optimizer = build_optimizer(model, profile.budget(stage).lr, profile.weight_decay, device)
        scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
        flops = train_step_flops(model, data, batch, device)
        train_one_epoch(model, optimizer, scaler=scaler, stage=st, data=data, profile=profile, epoch=0, device=device,
                        max_steps=WARMUP, progress=False)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with PeakMemory() as memory:
            _sync(device)
            t0 = time.perf_counter()
            with cuda_sync_warnings(device) as syncs:
                stats = train_one_epoch(model, optimizer, scaler=scaler, stage=st, data=data, profile=profile, epoch=1, device=device, max_steps=steps,
                                        progress=False)
            _sync(device)
            seconds = time.perf_counter() - t0
            infer = _inference_img_s(model, data, batch, device, amp, steps)
            one_step: list[str] = []
            if device.type == "cuda":  # an epoch of one step: what an epoch costs beyond its steps
                with cuda_sync_warnings(device) as one_step:
                    train_one_epoch(model, optimizer, scaler=scaler, stage=st, data=data, profile=profile, epoch=2, device=device,
                                    max_steps=1, progress=False)
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else memory.peak_bytes
        data_on_disk = data.on_disk
        del data
    placement = "on GPU" if resident else "disk, {} workers".format(workers) if data_on_disk else "in memory"
    per_step = (len(syncs) - len(one_step)) / (stats["steps"] - 1) if stats["steps"] > 1 else None
    tflops = flops * stats["steps"] / seconds / 1e12
    return {"model": name, "stage": stage, "data": placement, "device": device.type,
            "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp], "size": size,
            "batch": batch, "steps": stats["steps"], "train_img_s": batch * stats["steps"] / seconds,
            "data_wait_pct": 100 * stats["data_seconds"] / seconds, "gflop_per_step": flops / 1e9,
            "tflops": tflops, "matmul_pct": None if not matmul else 100 * tflops / matmul,
            "infer_img_s": infer, "peak_mem_mb": None if peak is None else peak / 2**20,
            "syncs_per_step": per_step if device.type == "cuda" else None,
            "syncs_per_epoch": None if device.type != "cuda" or per_step is None else len(one_step) - per_step,
            "sync_messages": sorted(set(syncs))[:5]}


def _inference_img_s(model: torch.nn.Module, data: DepthData, batch: int, device: torch.device,
                     amp: torch.dtype | None, steps: int) -> float:
    """Images/s of ``predict`` on one batch already on the device, in eval mode."""
    model.eval()
    x = data.images[:batch].to(device)
    with torch.no_grad():
        predict(model, x, amp)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            predict(model, x, amp)
        _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def bench(models: tuple[str, ...] = ("lraspp", "unetpp"), size: int = 224, batch: int = 8, steps: int = 5,
          device: str | None = None, workers: int = 0) -> dict:
    """Both stages for every model, with the device's matmul rate; returns what :func:`format_table` prints."""
    device = torch.device(device) if device is not None else pick_device()
    dtype = autocast_dtype(device) or torch.float32
    matmul = matmul_tflops(device, dtype)
    rows = [bench_model(name, stage, size=size, batch=batch, steps=steps, device=device, workers=workers,
                        matmul=matmul) for name in models for stage in ("nyu", "diw")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {"device_name": name, "matmul_dtype": str(dtype).removeprefix("torch."), "matmul_tflops": matmul,
            "rows": rows}


def format_table(result: dict) -> str:
    """The model benchmark as a plain-text table, headed by the device and its matmul rate."""
    lines = [f"fit's training step (train_one_epoch) on {result['device_name']}; measured {result['matmul_dtype']} "
             f"matmul rate {result['matmul_tflops']:.2f} TFLOP/s; random images"]
    head = (f"{'model':<8} {'stage':<5} {'data':<17} {'prec':<4} {'size':>4} {'batch':>5} {'train img/s':>11} "
            f"{'data wait':>9} {'TFLOP/s':>8} {'of matmul':>9} {'infer img/s':>11} {'peak MB':>8} {'syncs/step':>10} "
            f"{'/epoch':>6}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        pct = "n/a" if r["matmul_pct"] is None else f"{r['matmul_pct']:.0f}%"
        peak = "n/a" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"
        per_step = "n/a" if r["syncs_per_step"] is None else f"{r['syncs_per_step']:.2f}"
        per_epoch = "n/a" if r["syncs_per_epoch"] is None else f"{r['syncs_per_epoch']:.1f}"
        lines.append(f"{r['model']:<8} {r['stage']:<5} {r['data']:<17} {r['precision']:<4} {r['size']:>4} "
                     f"{r['batch']:>5} {r['train_img_s']:>11.2f} {r['data_wait_pct']:>8.1f}% {r['tflops']:>8.3f} "
                     f"{pct:>9} {r['infer_img_s']:>11.2f} {peak:>8} {per_step:>10} {per_epoch:>6}")
    lines.append("data wait: the share of the timed steps the loop spent waiting for its next batch; peak: GPU memory "
                 "allocated by torch, or on a CPU the anonymous memory of the process tree (MB); syncs: host "
                 "synchronisations torch reported (CUDA only), per step (timed epoch minus a one-step epoch, over the "
                 "steps between) and per epoch; a GPU should show 0 per step and 2 per epoch")
    return "\n".join(lines)


def bench_data(size: int = 200, batch: int = 16, images: int = 4096, workers: int = 0, epochs: int = 2) -> dict:
    """Images/s of the data path: random-order batches read from a memory-mapped cache, as ``fit`` reads DIW.

    A temporary cache of ``images`` random ``size`` x ``size`` images is written and read once
    (a warm page cache), then ``epochs`` shuffled passes are timed: the read and collation alone
    ("assembly"), and with the uint8 -> float conversion and the flip/jitter augmentation on the CPU.
    """
    with tempfile.TemporaryDirectory(prefix="depthkit-bench-") as tmp:
        data = random_split("diw", images, size, Path(tmp))
        int(data.images.array.sum(dtype=np.uint64))  # warm the page cache
        timings = {}
        for mode in ("assembly", "with augmentation"):
            generator = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            for epoch in range(epochs):
                for b in batches(data, batch, shuffle=True, seed=epoch, num_workers=workers):
                    if mode != "assembly":
                        augment(dict(b, images=b["images"].float() / 255), generator)
            timings[mode] = images * epochs / (time.perf_counter() - t0)
        del data
    return {"size": size, "batch": batch, "images": images, "workers": workers,
            "threads": torch.get_num_threads(), **{f"{k} img/s": v for k, v in timings.items()}}


def format_data_table(row: dict) -> str:
    """The data row of the benchmark as plain text."""
    return (f"data path: {row['images']} cached images at {row['size']}x{row['size']}, random order, batch "
            f"{row['batch']}, {row['workers']} workers, {row['threads']} threads\n"
            f"  batch assembly (read + collate):        {row['assembly img/s']:>8.0f} images/s\n"
            f"  plus uint8->float and flip/jitter (CPU): {row['with augmentation img/s']:>8.0f} images/s")
