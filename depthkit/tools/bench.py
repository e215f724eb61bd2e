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

import mmap
import os
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
from depthkit.device import autocast_dtype, device_name, fits_on_device, pick_device, to_device
from depthkit.evaluate import predict
from depthkit.files import reserve_file
from depthkit.models import build_model
from depthkit.stages import get_stage
from depthkit.tools.memory import PeakMemory, tree_anon_bytes
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
    name = device_name(device) + ("" if device.type == "cuda" else f", {torch.get_num_threads()} threads")
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


DATA_SPLITS = ("random", "diw")  # what bench_data reads: a cache of random rows, or a DIW split as fit streams it


def drop_page_cache(array: np.ndarray) -> None:
    """Evict a memory-mapped file from this process's mapping and from the page cache (a cold read follows).

    ``madvise(MADV_DONTNEED)`` unmaps the pages here, ``fsync`` writes any still dirty, then
    ``posix_fadvise(POSIX_FADV_DONTNEED)`` drops them from the page cache (pages another process maps
    stay: workers end with their pass).
    """
    base = array
    while not isinstance(base, np.memmap) and getattr(base, "base", None) is not None:
        base = base.base
    mapping = getattr(base, "_mmap", None)
    if mapping is not None and hasattr(mapping, "madvise"):
        mapping.madvise(mmap.MADV_DONTNEED)
    if getattr(base, "filename", None) and hasattr(os, "posix_fadvise"):
        fd = os.open(base.filename, os.O_RDONLY)
        try:
            os.fsync(fd)  # pages still to be written (a cache just prepared) cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def diw_train_split(folder: Path, images: int, size: int) -> DepthData:
    """The ``report`` profile's DIW train split, as ``fit`` streams it, over ``images`` records written in DIW's layout.

    The records and JPEGs are the rehearsal's (:func:`depthkit.tools.rehearse.write_rehearsal_data`,
    250-500 pixels a side), the cache is written by :func:`depthkit.data.prepare_diw` and the split
    (80 % of the records, memory-mapped rows) is cut by :func:`depthkit.pipeline.load_point_pair_splits`.
    """
    from depthkit.data import prepare_diw
    from depthkit.pipeline import PreparedData, load_point_pair_splits
    from depthkit.tools.rehearse import write_rehearsal_data

    paths = write_rehearsal_data(folder, diw_images=images, nyu_frames=1, distinct=min(images, 300))
    cache = prepare_diw(paths["diw_csv"], folder / "cache", size=size)
    prepared = PreparedData("real", folder, paths["nyu"], folder / "nyu_splits.json", None, {"DIW_test": cache})
    return load_point_pair_splits(get_profile("report").replace(size=size), prepared)["train"]


def _passes(data: DepthData, batch: int, workers: int, epochs: int, cold: bool, augmented: bool) -> tuple[float, float]:
    """Images/s of ``epochs`` shuffled passes over ``data`` and the peak anonymous memory of the process tree (bytes)."""
    generator, seconds = torch.Generator().manual_seed(0), 0.0
    with PeakMemory(interval=0.05) as memory:
        for epoch in range(epochs):
            if cold:
                drop_page_cache(data.images.array)
            t0 = time.perf_counter()
            for b in batches(data, batch, shuffle=True, seed=epoch, num_workers=workers):
                if augmented:
                    augment(dict(b, images=b["images"].float() / 255), generator)
            seconds += time.perf_counter() - t0
    return len(data) * epochs / seconds, memory.peak_bytes or 0


def bench_data(size: int = 200, batch: int = 16, images: int = 4096, workers: int | tuple[int, ...] = 0,
               epochs: int = 2, split: str = "random") -> dict:
    """Images/s and peak memory of the data path: random-order batches read from a memory-mapped cache, as ``fit`` reads DIW.

    ``split="random"``: a temporary cache of ``images`` random ``size`` x ``size`` images, read once
    (a warm page cache), then ``epochs`` shuffled passes timed: the read and collation alone
    ("assembly"), and with the uint8 -> float conversion and the flip/jitter augmentation on the CPU.
    ``split="diw"``: the DIW train split of ``images`` records (:func:`diw_train_split`), passes
    timed warm (page cache filled) and cold (the cache file evicted before each pass: a cache
    larger than the runtime's free RAM, 8.9 GB on a 12.7 GB Colab). One row per worker count;
    peak memory is the anonymous memory (PSS) of the process tree, workers included.
    """
    if split not in DATA_SPLITS:
        raise ValueError(f"unknown data split {split!r}: expected one of {', '.join(DATA_SPLITS)}")
    counts = (workers,) if isinstance(workers, int) else tuple(workers)
    modes = {"random": (("assembly", False, False), ("with augmentation", False, True)),
             "diw": (("warm", False, False), ("cold", True, False))}[split]
    rows = []
    with tempfile.TemporaryDirectory(prefix="depthkit-bench-") as tmp:
        data = random_split("diw", images, size, Path(tmp)) if split == "random" else \
            diw_train_split(Path(tmp), images, size)
        int(data.images.array.sum(dtype=np.uint64))  # warm the page cache
        base = tree_anon_bytes()
        for n in counts:
            row = {"workers": n, "baseline_mb": base / 2**20}
            for mode, cold, augmented in modes:
                rate, peak = _passes(data, batch, n, epochs, cold, augmented)
                row[f"{mode} img/s"], row[f"{mode} peak_mb"] = rate, peak / 2**20
            rows.append(row)
        cache_mb = data.images.array.nbytes / 2**20
        rows_in_split = len(data)
        del data
    return {"split": split, "size": size, "batch": batch, "images": rows_in_split, "cache_mb": cache_mb,
            "epochs": epochs, "threads": torch.get_num_threads(), "device": device_name("cpu"), "rows": rows}


def format_data_table(result: dict) -> str:
    """The data rows of the benchmark as plain text: one line per worker count."""
    what = ("random cached images" if result["split"] == "random"
            else "DIW train-split rows (cache written by prepare_diw)")
    modes = [k.removesuffix(" img/s") for k in result["rows"][0] if k.endswith(" img/s")]
    lines = [f"data path on {result['device']}, {result['threads']} threads: {result['images']} {what} at "
             f"{result['size']}x{result['size']} ({result['cache_mb']:.0f} MB), random order, batch {result['batch']}, "
             f"{result['epochs']} passes each",
             f"{'workers':>7} " + " ".join(f"{m + ' img/s':>24} {'peak MB':>8}" for m in modes) + f" {'idle MB':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['workers']:>7} " + " ".join(f"{r[m + ' img/s']:>24.0f} {r[m + ' peak_mb']:>8.0f}"
                                                      for m in modes) + f" {r['baseline_mb']:>8.0f}")
    lines.append("img/s: batches as fit's loop receives them (read + collate; 'with augmentation' adds the uint8->float "
                 "and flip/jitter on the CPU; 'cold': the cache evicted from the page cache before each pass); peak MB: "
                 "anonymous memory (PSS) of the process tree, workers included; idle MB: the same before the passes")
    return "\n".join(lines)


T4_FP16_TFLOPS = 65.0  # NVIDIA T4 datasheet: peak fp16 tensor-core rate (dense)
T4_FP32_TFLOPS = 8.1  # NVIDIA T4 datasheet: peak fp32 rate
T4_UTILIZATION = (0.10, 0.15, 0.25)  # assumed share of the fp16 peak a training step reaches: low, likely, high


def forward_flops(name: str, size: int, batch: int = 2) -> float:
    """Forward FLOPs of model ``name`` per image at ``size`` x ``size`` (convolutions and matmuls, ``torch.utils.flop_counter``)."""
    model = build_model(name).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        predict(model, torch.zeros(batch, 3, size, size), None, check_range=False)
    return counter.get_total_flops() / batch


def report_split_sizes(profile_name: str = "report") -> dict[str, dict[str, int]]:
    """Images in the train, val and test splits of each stage under a profile's real-data protocol (report: DIW_test split)."""
    from depthkit.data import nyu_split
    from depthkit.pipeline import split_train_val
    from depthkit.tools.rehearse import DIW_TEST_IMAGES

    profile = get_profile(profile_name)
    nyu_train, nyu_test = len(nyu_split("train")), len(nyu_split("test"))
    tr, va = split_train_val(nyu_train, profile.val_fraction, profile.seed)
    f_train, f_val, _ = profile.diw_fractions
    d_train, d_val = int(DIW_TEST_IMAGES * f_train), max(1, int(DIW_TEST_IMAGES * f_val))
    return {"nyu": {"train": len(tr), "val": len(va), "test": nyu_test},
            "diw": {"train": d_train, "val": d_val, "test": DIW_TEST_IMAGES - d_train - d_val}}


def report_flops(models: tuple[str, ...] = ("lraspp", "unetpp"), profile_name: str = "report") -> dict:
    """The FLOPs of a profile's whole run per model and stage, and its time on a T4 at assumed utilizations (an estimate).

    Training: 3 x the forward FLOPs per image (the backward costs about twice the forward; see
    :func:`train_step_flops`) x batch x steps per epoch (``fit`` drops a last partial batch) x
    epochs, frozen-encoder epochs counted as full ones (an upper bound); evaluation: one forward
    pass over the validation split every epoch and over the test split once.
    """
    profile, sizes = get_profile(profile_name), report_split_sizes(profile_name)
    rows = []
    for name in models:
        fwd = forward_flops(name, profile.size)
        for stage in ("nyu", "diw"):
            frozen, full = profile.epochs(name, stage)
            n = sizes[stage]
            steps = n["train"] // profile.batch_size if n["train"] > profile.batch_size else 1
            train = 3 * fwd * profile.batch_size * steps * (frozen + full)
            evaluation = fwd * (n["val"] * (frozen + full) + n["test"])
            rate = T4_UTILIZATION[1] * T4_FP16_TFLOPS * 1e12  # the likely rate
            rows.append({"model": name, "stage": stage, "gflop_fwd": fwd / 1e9, "steps_per_epoch": steps,
                         "epochs": frozen + full, "train_pflop": train / 1e15, "eval_pflop": evaluation / 1e15,
                         "t4_train_img_s": rate / (3 * fwd), "t4_hours": (train + evaluation) / rate / 3600})
    total = sum(r["train_pflop"] + r["eval_pflop"] for r in rows) * 1e15
    hours = {u: total / (u * T4_FP16_TFLOPS * 1e12) / 3600 for u in T4_UTILIZATION}
    return {"profile": profile_name, "size": profile.size, "batch": profile.batch_size, "splits": sizes,
            "rows": rows, "total_pflop": total / 1e15, "t4_hours": hours,
            "t4_fp32_peak_hours": total / (T4_FP32_TFLOPS * 1e12) / 3600}


def format_flops_table(result: dict) -> str:
    """The FLOPs of the profile's run and the T4 estimate as plain text."""
    lines = [f"{result['profile']} profile at {result['size']}x{result['size']}, batch {result['batch']}; "
             f"splits (train/val/test): " + ", ".join(f"{k} {v['train']}/{v['val']}/{v['test']}"
                                                      for k, v in result["splits"].items()),
             f"{'model':<8} {'stage':<5} {'GFLOP fwd/img':>13} {'steps/epoch':>11} {'epochs':>6} "
             f"{'train PFLOP':>11} {'eval PFLOP':>10} {'T4 train img/s*':>15} {'T4 hours*':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['model']:<8} {r['stage']:<5} {r['gflop_fwd']:>13.3f} {r['steps_per_epoch']:>11} "
                     f"{r['epochs']:>6} {r['train_pflop']:>11.2f} {r['eval_pflop']:>10.3f} "
                     f"{r['t4_train_img_s']:>15.0f} {r['t4_hours']:>9.2f}")
    lines.append(f"total {result['total_pflop']:.1f} PFLOP. ESTIMATE on a T4 (fp16 autocast, peak {T4_FP16_TFLOPS:g} "
                 f"TFLOP/s): " + ", ".join(f"{h:.1f} h at {u:.0%} of peak" for u, h in result["t4_hours"].items())
                 + f"; at the fp32 peak ({T4_FP32_TFLOPS:g} TFLOP/s, 100 %): {result['t4_fp32_peak_hours']:.1f} h. "
                 f"*: at {T4_UTILIZATION[1]:.0%} of the fp16 peak, FLOPs alone (no per-step overheads)")
    return "\n".join(lines)


def write_chunked_nyu(path: Path, frames: int, chunk_frames: int, shape: tuple[int, int] = (640, 480)) -> Path:
    """A gzip-compressed NYU-layout HDF5 file (MATLAB order) whose chunks span ``chunk_frames`` frames.

    Written a chunk at a time: a frame written alone into a chunk larger than HDF5's chunk cache
    would decompress and recompress the whole chunk each time.
    """
    import h5py

    w, h = shape
    rng = np.random.default_rng(0)
    ramp = (np.arange(w)[:, None] + np.arange(h)[None, :]).astype(np.float32)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (frames, 3, w, h), np.uint8, chunks=(chunk_frames, 3, w, h),
                                  compression="gzip")
        depths = f.create_dataset("depths", (frames, w, h), np.float32, chunks=(chunk_frames, w, h), compression="gzip")
        for start in range(0, frames, chunk_frames):  # smooth pictures with some noise, compressible as photographs are
            i = np.arange(start, min(start + chunk_frames, frames))[:, None, None]
            noise = rng.integers(0, 16, size=(len(i), 3, w, h), dtype=np.uint8)
            images[start:start + len(i)] = ((ramp + 37 * i) % 200).astype(np.uint8)[:, None] + noise
            depths[start:start + len(i)] = 1 + (ramp + i) % 9 + rng.random((len(i), w, h), dtype=np.float32) * 0.01
    return path


def bench_nyu_reads(frames: int = 96, chunk_frames: tuple[int, ...] = (7, 48), shape: tuple[int, int] = (640, 480),
                    repeats: int = 2, folder: Path | None = None) -> dict:
    """MB/s of reading a gzip-chunked NYU file whole: in :func:`depthkit.data.nyu.read_blocks` blocks and 16 frames at a time.

    One file per chunk layout (``chunk_frames`` frames per chunk; the real file's layout is read
    from it, these are what a v7.3 file may hold). A 16-frame read that cuts a chunk decompresses
    it again for the next read; chunk-aligned blocks decompress each chunk once.
    """
    import h5py

    from depthkit.data.nyu import _read_nyu, read_blocks

    rows = []
    with tempfile.TemporaryDirectory(prefix="depthkit-bench-") as tmp:
        for per_chunk in chunk_frames:
            path = write_chunked_nyu(Path(folder or tmp) / f"nyu_chunks{per_chunk}.mat", frames, per_chunk, shape)
            with h5py.File(path, "r") as f:
                images, depths = f["images"], f["depths"]
                idx = np.arange(frames)
                nbytes = frames * (images[0].nbytes + depths[0].nbytes)
                ways = {"16 frames a read": [(s, min(s + 16, frames)) for s in range(0, frames, 16)],
                        "read_blocks": read_blocks((images, depths), idx)}
                with open(path, "rb") as raw:  # the file in the page cache: the reads time decompression, not the disk
                    while raw.read(2**24):
                        pass
                for way, blocks in ways.items():
                    seconds = float("inf")
                    for _ in range(repeats):  # the best of a few: a shared machine's pauses are not the reads' cost
                        t0 = time.perf_counter()
                        for start, stop in blocks:
                            _read_nyu(images, depths, idx[start:stop])
                        seconds = min(seconds, time.perf_counter() - t0)
                    rows.append({"chunk_frames": per_chunk, "reads": way, "blocks": len(blocks),
                                 "mb_s": nbytes / 2**20 / seconds, "seconds": seconds})
            path.unlink()
    return {"frames": frames, "shape": shape, "rows": rows}


def format_nyu_reads(result: dict) -> str:
    """The NYU read benchmark as plain text."""
    w, h = result["shape"]
    lines = [f"reading {result['frames']} NYU frames ({w}x{h}, images + depths) from gzip-chunked HDF5",
             f"{'frames/chunk':>12} {'reads':<17} {'blocks':>6} {'MB/s':>8} {'seconds':>8}"]
    lines += [f"{r['chunk_frames']:>12} {r['reads']:<17} {r['blocks']:>6} {r['mb_s']:>8.0f} {r['seconds']:>8.2f}"
              for r in result["rows"]]
    return "\n".join(lines)
