"""Where the numbers are computed: the device, the seeds, mixed precision and memory layout.

* :func:`pick_device` - CUDA, then Apple MPS, then the CPU (``"auto"``), or the device named;
* :func:`seed_everything` - Python, NumPy and torch seeded at once, so a run repeats on one device;
* :func:`autocast_dtype` / :func:`autocast` - bf16 on GPUs that have it natively (compute
  capability >= 8), fp16 before (T4), full precision off CUDA;
* :func:`channels_last` / :func:`to_device` - channels_last memory on CUDA (Tensor Core convolutions);
* :func:`cudnn_benchmark` / :func:`configure_backends` - cuDNN's autotuner on CUDA, where every batch
  has the same size (fit's inputs are all ``size`` x ``size``), set once as the model reaches the device;
* :func:`device_name` - what a measurement ran on: the GPU's name, or ``CPU: <model>``;
* :func:`fits_on_device` - whether a training split may be copied to the GPU once, instead of
  streaming through pinned memory.
"""
from __future__ import annotations

import itertools
import os
import platform
import random
from contextlib import nullcontext
from typing import ContextManager

import numpy as np
import torch
from torch import nn

GPU_RESIDENT_SHARE = 0.25  # a split goes GPU-resident when it needs at most this share of free GPU memory
RESIDENT_ENV = "DEPTHKIT_RESIDENT"  # "1": the training split goes device-resident on any device (CPU rehearsals, tests)


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run repeats on the same device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision of the fast path: bf16 on compute capability >= 8 (A100, H100, ...), fp16 before (T4); None off CUDA.

    ``torch.cuda.is_bf16_supported()`` is True on a T4 too, through slow emulation: ask the
    hardware's compute capability instead.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """``torch.autocast`` on ``device`` in ``dtype``, or a context that does nothing when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def channels_last(device: torch.device) -> bool:
    """Whether models and inputs use channels_last memory on ``device`` (CUDA: Tensor Core convolutions)."""
    return device.type == "cuda"


def cudnn_benchmark(device: torch.device) -> bool:
    """Whether cuDNN autotunes its convolution algorithms on ``device``: on CUDA only.

    fit's inputs have one size (``size`` x ``size``, a fixed batch but the last), so the first
    step's search over algorithms pays for itself; the flag means nothing on a CPU or MPS.
    """
    return device.type == "cuda"


def configure_backends(device: torch.device) -> None:
    """Set the backend flags training on ``device`` wants (``cudnn.benchmark`` on CUDA); elsewhere touch nothing."""
    if cudnn_benchmark(device):
        torch.backends.cudnn.benchmark = True


def to_device(model: nn.Module, device: str | torch.device) -> nn.Module:
    """Move ``model`` to ``device``, in channels_last memory where :func:`channels_last` says so.

    This is where a model reaches its device, so the backends are configured here too (:func:`configure_backends`).
    """
    device = torch.device(device)
    configure_backends(device)
    return model.to(device, memory_format=torch.channels_last if channels_last(device) else torch.preserve_format)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere)."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device: str | torch.device) -> str:
    """What ran on ``device``, in words: the GPU's name (``Tesla T4``), ``Apple MPS``, or ``CPU: <model>``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU: {cpu_model()}"


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer, for a model without parameters); the CPU for neither."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def fits_on_device(nbytes: int, device: torch.device, share: float = GPU_RESIDENT_SHARE) -> bool:
    """True when ``nbytes`` of data can live on the GPU ``device`` using at most ``share`` of its free memory.

    ``DEPTHKIT_RESIDENT=1`` forces residency on any device (the CPU path of a GPU-resident split).
    """
    if os.environ.get(RESIDENT_ENV) == "1":
        return True
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= share * free
