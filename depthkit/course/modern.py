"""Notebook 09, after the report: SIlog training, an opt-in pretrained modern model, MiDaS's alignment in disparity.

* :func:`silog_hooks`: the NYU stage trained on Eigen et al.'s SIlog loss (:func:`depthkit.losses.silog_loss`)
  through :func:`depthkit.train.train_stage`, the network's last layer read as log depth.

Nothing here downloads unless asked: :func:`try_pretrained` with ``enabled=False`` (the notebook's
default, and what the tests and CI run) returns at once. Asked, it first checks the local Hugging Face
cache and, when the weights are not there, whether the hub answers within a few seconds
(:func:`require_pretrained`); offline it refuses with one line instead of waiting on retries.

* Depth Anything V2 (Yang et al., NeurIPS 2024), the Small model (~25 M parameters) through Hugging
  Face ``transformers`` (preinstalled on Colab; ``pip install transformers`` elsewhere). Like MiDaS it
  predicts *relative inverse depth* (disparity-like: larger = closer) up to an unknown scale and shift.
* :func:`align_disparity`: MiDaS's evaluation alignment (Ranftl et al., "Towards Robust Monocular Depth
  Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer", TPAMI 2020): per image, the
  least-squares scale and shift that bring the prediction closest to the *inverse* of the measured depth,
  then back to depth, to be scored in metres.
"""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from depthkit import losses
from depthkit.models import ExpDepth, WeightsUnavailableError, _can_reach, _download, _hf_offline
from depthkit.tensors import align_scale_shift, as_b1hw
from depthkit.train import Hooks

DEPTH_ANYTHING = "depth-anything/Depth-Anything-V2-Small-hf"  # the Hugging Face repository (transformers format)
DEPTH_ANYTHING_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
MIN_DISPARITY = 1e-6  # an aligned disparity at or below 0 is "infinitely far": clamped before inverting


def _silog_batch_loss(pred: torch.Tensor, batch: dict[str, torch.Tensor], lam: float) -> torch.Tensor:
    """Eigen et al.'s SIlog loss on a NYU batch (holes, depth 0, masked)."""
    return losses.silog_loss(pred, batch["depths"], batch["depths"] > 0, lam)


def silog_hooks(lam: float = losses.SILOG_LAMBDA) -> Hooks:
    """Train the NYU stage on Eigen et al.'s SIlog loss instead of the normalized MSE.

    The network's last layer becomes log depth (:class:`depthkit.models.ExpDepth` exponentiates it),
    and :func:`depthkit.losses.silog_loss` with ``lam`` replaces the stage's loss (``Hooks.loss``);
    validation, and so the pick of ``best.pt``, stays the stage's normalized MSE of the (exponentiated)
    output. The checkpoint records both, so such a run is never resumed as a normalized-MSE run, nor
    the other way round; :func:`depthkit.course.plugin.load_model` rebuilds the wrapper from the record.
    """
    record = {"builtin": "silog", "lam": lam, "hooks": ["loss", "model"],
              "loss": f"depthkit.losses.silog_loss(lam={lam:g})", "model": "depthkit.models.ExpDepth"}
    return Hooks(loss=functools.partial(_silog_batch_loss, lam=lam), model=ExpDepth, record=record)


@dataclass
class PretrainedDepth:
    """A loaded pretrained relative-depth model and its image processor."""

    model: nn.Module
    processor: object
    repo: str
    device: torch.device

    @torch.no_grad()
    def disparity(self, photo: np.ndarray) -> torch.Tensor:
        """Relative inverse depth ``[H, W]`` (larger = closer, no unit) of an RGB uint8 ``[H, W, 3]`` photo, at its size."""
        inputs = self.processor(images=photo, return_tensors="pt").to(self.device)
        out = self.model(**inputs).predicted_depth  # [1, h, w] at the processor's size
        return F.interpolate(out[:, None].float(), size=photo.shape[:2], mode="bilinear", align_corners=False)[0, 0].cpu()


def hub_endpoint() -> tuple[str, int]:
    """``(host, port)`` of the Hugging Face hub this process would download from (``HF_ENDPOINT``)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def is_cached(repo: str = DEPTH_ANYTHING, files: tuple[str, ...] = DEPTH_ANYTHING_FILES) -> bool:
    """True when every file of ``repo`` that loading needs is in the local Hugging Face cache (no request)."""
    from huggingface_hub import try_to_load_from_cache

    return all(isinstance(try_to_load_from_cache(repo, name), str) for name in files)


def _cache_folder(repo: str) -> str:
    """Where the Hugging Face cache keeps ``repo``."""
    from huggingface_hub import constants

    return os.path.join(constants.HF_HUB_CACHE, f"models--{repo.replace('/', '--')}")


def require_pretrained(repo: str = DEPTH_ANYTHING, timeout: float | None = None) -> None:
    """Raise :class:`~depthkit.models.WeightsUnavailableError` (one line) unless ``repo`` is cached or the hub answers.

    ``HF_HUB_OFFLINE=1`` with nothing cached refuses without a probe; otherwise the probe waits at
    most ``timeout`` s (default :data:`depthkit.models.PROBE_TIMEOUT_S`).
    """
    from huggingface_hub import constants

    if is_cached(repo):
        return
    host, port = hub_endpoint()
    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    elif not _can_reach(host, port, timeout):
        why = f"{host}:{port} cannot be reached (offline?)"
    else:
        return
    raise WeightsUnavailableError(
        f"the pretrained model {repo} is not in the local cache ({_cache_folder(repo)}) and {why}: run this on a "
        f"machine with internet access (e.g. Colab), or copy that folder here from one that has it.",
        reason=f"{host} unreachable and {repo} not cached")


def load_depth_anything(repo: str = DEPTH_ANYTHING, device: str | torch.device = "cpu",
                        timeout: float | None = None) -> PretrainedDepth:
    """Depth Anything V2 Small from the cache or the hub (transformers); refuses in seconds when neither can serve it."""
    require_pretrained(repo, timeout)
    try:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    except ImportError:
        raise WeightsUnavailableError("the Hugging Face transformers package is not installed: pip install transformers "
                                      "(Colab has it)", reason="transformers not installed") from None
    with _hf_offline() if is_cached(repo) else contextlib.nullcontext():  # cached: no request at all
        processor = _download(lambda: AutoImageProcessor.from_pretrained(repo), f"the image processor of {repo}")
        model = _download(lambda: AutoModelForDepthEstimation.from_pretrained(repo), f"the weights of {repo}")
    device = torch.device(device)
    return PretrainedDepth(model.to(device).eval(), processor, repo, device)


def try_pretrained(enabled: bool, repo: str = DEPTH_ANYTHING, device: str | torch.device = "cpu",
                   timeout: float | None = None) -> tuple[PretrainedDepth | None, str]:
    """``(model, one line)``: the loaded model when ``enabled`` and it can be had; else None and why (nothing downloaded)."""
    if not enabled:
        return None, f"skipped: the pretrained model ({repo}) is opt-in (set USE_PRETRAINED = True, with internet access)"
    try:
        model = load_depth_anything(repo, device, timeout)
    except WeightsUnavailableError as err:
        return None, f"skipped: {err}"
    return model, f"loaded {repo} ({sum(p.numel() for p in model.model.parameters()) / 1e6:.1f} M parameters)"


def align_disparity(disparity: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Depth in metres from a relative disparity map: MiDaS's least-squares scale and shift fitted in disparity.

    Per image, ``s * disparity + t`` is fitted to ``1 / depth`` over the valid pixels (``mask`` and
    ``depth > 0``), then inverted (aligned disparities at or below 0 count as very far). The result,
    ``[B, 1, H, W]``, is scored unaligned (:func:`depthkit.metrics.depth_metrics` with ``align=None``).
    """
    disparity, depth = as_b1hw(disparity, "disparity").float(), as_b1hw(depth, "depth").float()
    valid = depth > 0
    if mask is not None:
        valid = valid & as_b1hw(mask, "mask").bool()
    target = torch.where(valid, 1 / depth.clamp_min(MIN_DISPARITY), torch.zeros_like(depth))
    return 1 / align_scale_shift(disparity, target, valid).clamp_min(MIN_DISPARITY)
