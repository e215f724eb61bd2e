"""Throughput and memory: the plain fp32 loop beside the fast path, on whatever device is present.

``python -m depthkit bench [--model M] [--size S] [--batch B]`` prints two tables. The model table
times a bare optimizer step (forward, normalized-MSE loss, backward, Adam), synchronised after every
step so each step is timed alone: "fp32" keeps the data on the CPU (each batch gathered and copied
to the device) in fp32 and NCHW; "fast" keeps the data on the device (uint8) and uses bf16/fp16
autocast and channels_last (autocast is CUDA-only, so on a CPU the two differ only in memory
format). It is not ``fit``: ``python -m depthkit rehearse`` times ``fit`` itself at report scale.
The data row times the path ``fit`` uses for splits on disk: random-order batches from a
memory-mapped cache. Random images stand in for data: the numbers measure the machine and the
code, not a dataset.
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import torch

from depthkit import losses
from depthkit.models import build_model
from depthkit.data.loader import DepthData, Rows, augment, batches
from depthkit.train import autocast_dtype, pick_device, predict


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_model(name: str, size: int = 224, batch: int = 8, steps: int = 5, warmup: int = 2,
                fast: bool = False, device: str | torch.device | None = None) -> dict:
    """Train and inference images/s, data-wait share and peak memory of one model in one mode."""
    device = torch.device(device) if device is not None else pick_device()
    torch.manual_seed(0)
    n = batch * (steps + warmup)
    data = DepthData(images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
                     depths=torch.rand(n, 1, size, size) * 9 + 1)
    amp = autocast_dtype(device) if fast else None
    model = build_model(name).to(device)
    if fast and device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)
        data = data.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    wait = total = 0.0
    it = batches(data, batch, device=device)
    for step in range(steps + warmup):
        _sync(device)
        t0 = time.perf_counter()
        b = next(it)
        _sync(device)
        t1 = time.perf_counter()
        pred = predict(model, b["images"], amp)
        loss = losses.normalized_mse(pred, b["depths"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        if step >= warmup:
            wait += t1 - t0
            total += time.perf_counter() - t0
    model.eval()
    x = data.images[:batch].to(device)
    with torch.no_grad():
        for _ in range(warmup):
            predict(model, x, amp)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            predict(model, x, amp)
        _sync(device)
        infer = time.perf_counter() - t0
    return {"model": name, "mode": "fast" if fast else "fp32", "device": device.type, "size": size, "batch": batch,
            "train_img_s": batch * steps / total, "infer_img_s": batch * steps / infer,
            "data_wait_pct": 100 * wait / total, "peak_mem_mb": _peak_memory_mb(device)}


def bench(models: tuple[str, ...] = ("lraspp", "unetpp"), size: int = 224, batch: int = 8, steps: int = 5,
          device: str | None = None) -> list[dict]:
    """Both modes for every model; returns rows for :func:`format_table`."""
    rows = []
    for name in models:
        for fast in (False, True):
            rows.append(bench_model(name, size=size, batch=batch, steps=steps, fast=fast, device=device))
    return rows


def format_table(rows: list[dict]) -> str:
    """The benchmark as a plain-text table, with the fast/plain speed-up per model."""
    head = f"{'model':<10} {'mode':<5} {'device':<6} {'size':>5} {'batch':>5} {'train img/s':>12} {'infer img/s':>12} {'data wait':>10} {'peak MB':>9} {'speed-up':>9}"
    lines = [head, "-" * len(head)]
    plain = {r["model"]: r["train_img_s"] for r in rows if r["mode"] == "fp32"}
    for r in rows:
        speedup = f"{r['train_img_s'] / plain[r['model']]:.2f}x" if r["model"] in plain else ""
        lines.append(f"{r['model']:<10} {r['mode']:<5} {r['device']:<6} {r['size']:>5} {r['batch']:>5} "
                     f"{r['train_img_s']:>12.2f} {r['infer_img_s']:>12.2f} {r['data_wait_pct']:>9.1f}% "
                     f"{r['peak_mem_mb']:>9.0f} {speedup:>9}")
    return "\n".join(lines)


def bench_data(size: int = 200, batch: int = 16, images: int = 4096, workers: int = 0, epochs: int = 2) -> dict:
    """Images/s of the data path: random-order batches read from a memory-mapped cache, as ``fit`` reads DIW.

    A temporary cache of ``images`` random ``size`` x ``size`` images is written and read once
    (a warm page cache), then ``epochs`` shuffled passes are timed: the read and collation alone
    ("assembly"), and with the uint8 -> float conversion and the flip/jitter augmentation on the CPU.
    """
    with tempfile.TemporaryDirectory(prefix="depthkit-bench-") as tmp:
        path = Path(tmp) / "images.u8"
        array = np.memmap(path, dtype=np.uint8, mode="w+", shape=(images, size, size, 3))
        rng = np.random.default_rng(0)
        for start in range(0, images, 256):
            array[start:start + 256] = rng.integers(0, 256, size=array[start:start + 256].shape, dtype=np.uint8)
        array.flush()
        array = np.memmap(path, dtype=np.uint8, mode="r", shape=(images, size, size, 3))
        int(array.sum(dtype=np.uint64))  # warm the page cache
        pairs = torch.zeros(images, 1, 4, dtype=torch.long)
        data = DepthData(images=Rows(array), pairs=pairs, relation=torch.ones(images, 1, dtype=torch.long))
        timings = {}
        for mode in ("assembly", "with augmentation"):
            generator = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            for epoch in range(epochs):
                for b in batches(data, batch, shuffle=True, seed=epoch, num_workers=workers):
                    if mode != "assembly":
                        augment(dict(b, images=b["images"].float() / 255), generator)
            timings[mode] = images * epochs / (time.perf_counter() - t0)
        del array, data
    return {"size": size, "batch": batch, "images": images, "workers": workers,
            "threads": torch.get_num_threads(), **{f"{k} img/s": v for k, v in timings.items()}}


def format_data_table(row: dict) -> str:
    """The data row of the benchmark as plain text."""
    return (f"data path: {row['images']} cached images at {row['size']}x{row['size']}, random order, batch "
            f"{row['batch']}, {row['workers']} workers, {row['threads']} threads\n"
            f"  batch assembly (read + collate):        {row['assembly img/s']:>8.0f} images/s\n"
            f"  plus uint8->float and flip/jitter (CPU): {row['with augmentation img/s']:>8.0f} images/s")
