"""Evaluation: one loop over a split's predictions, the per-image scores built on it, their means and their noise.

* :func:`predictions` - **the** loop: the model's fp32 predictions batch by batch, in eval mode,
  without gradients. Everything below is built on it.
* :func:`per_image` - each batch's per-image values of the stage's metrics (:mod:`depthkit.stages`).
* :func:`evaluate` - their mean over a split, summed on the device and read once (what training
  validates with and what ``python -m depthkit evaluate`` prints); ``protocol="eigen"`` scores NYU
  on the Eigen crop of the original frames, aligned per image (:func:`nyu_eigen_metrics`).
* :func:`per_image_scores` - the same values per image, as arrays (the notebooks' noise bands,
  the capstone, the reproduction's stored per-image scores).
* baselines: :func:`mean_depth_baseline` (the training set's mean depth map) scored through the same
  loop as a :class:`ConstantModel`.
* statistics: :func:`mean`, :func:`standard_error` and :func:`noise_band` of per-image values; a
  difference counts when it exceeds :data:`NOISE_Z` standard errors (:func:`is_clear`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from depthkit import distributed, metrics
from depthkit.data.nyu import read_nyu_mat
from depthkit.data.loader import DepthData, batches
from depthkit.device import autocast, channels_last, model_device
from depthkit.models import normalize_images
from depthkit.stages import Stage, get_stage

EVAL_PROTOCOLS = ("resized", "eigen")  # where NYU depth is scored: at the prepared size, or on the Eigen crop (aligned)
NOISE_Z = 2.0  # a difference counts when it exceeds this many standard errors (about 95 %)
MIN_IMAGES = 10  # below this many images a standard error is not estimated (inf: nothing is called a difference)
Values = Sequence[float] | np.ndarray | Tensor


# --------------------------------------------------------------------------------------------
# Predictions: the one loop over a split
# --------------------------------------------------------------------------------------------
def predict(model: nn.Module, images: Tensor, amp: torch.dtype | None = None, check_range: bool = True) -> Tensor:
    """Run ``model`` on uint8 or [0, 1] float images ``[B, 3, H, W]``; returns float32 ``[B, 1, H, W]``."""
    x = normalize_images(images, check_range)
    if channels_last(images.device):
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(images.device, amp):
        out = model(x)
    return out.float()


@torch.no_grad()
def predictions(model: nn.Module, data: DepthData, batch_size: int = 16, device: str | torch.device | None = None,
                max_batches: int | None = None, num_workers: int = 0,
                indices: Sequence[int] | None = None) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    """``(prediction [B, 1, H, W] fp32, batch)`` for each batch of ``data`` in order, the model in eval mode.

    fp32 keeps near-ties apart that bf16 would round into exact ties (counted wrong). ``indices``
    restricts the loop to those images (a rank's shard, the first few for a figure); the model's
    train/eval mode is restored when the loop ends.
    """
    device = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    try:
        for i, batch in enumerate(batches(data, batch_size, device=device, num_workers=num_workers, indices=indices)):
            if max_batches is not None and i >= max_batches:
                break
            yield predict(model, batch["images"]), batch
    finally:
        model.train(was_training)


def per_image(model: nn.Module, data: DepthData, stage: str | Stage, **loop) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
    """For each batch: the stage's metrics per image (name -> ``[B]`` on the device, NaN = not scored), and
    how many predicted values were NaN/inf. ``loop``: the arguments of :func:`predictions`."""
    stage = get_stage(stage) if isinstance(stage, str) else stage
    for pred, batch in predictions(model, data, **loop):
        yield stage.metrics(pred, batch), (~torch.isfinite(pred)).sum()


def _check_finite(nonfinite: int, data: DepthData, stage: Stage) -> None:
    if nonfinite:
        raise ValueError(f"the model's predictions on {data.name or stage.name} hold {nonfinite} non-finite "
                         f"values (NaN/inf): the model diverged or was fed invalid input")


# --------------------------------------------------------------------------------------------
# Means over a split, and the values per image
# --------------------------------------------------------------------------------------------
def evaluate(model: nn.Module, data: DepthData, stage: str | Stage, batch_size: int = 16,
             device: str | torch.device | None = None, max_batches: int | None = None,
             num_workers: int = 0, across_ranks: bool = False, protocol: str = "resized",
             mat_path: str | Path | None = None, frames: np.ndarray | None = None) -> dict[str, float]:
    """The stage's metrics of ``model`` on ``data``, the mean over scored images, computed in fp32.

    ``protocol="eigen"`` (NYU only) scores against the original 640×480 frames of ``mat_path``
    (``frames``: their positions in the file, :func:`depthkit.pipeline.nyu_frames`) under the
    Eigen crop of the 640×480 frames, per-image least-squares aligned (:func:`nyu_eigen_metrics`;
    not comparable with published supervised tables, which are metric and unaligned). Otherwise (``"resized"``): NYU, the report's
    normalized MSE and :func:`depthkit.metrics.depth_metrics` after per-image least-squares
    scale-and-shift alignment (at the prepared size, no Eigen crop); DIW, ordinal accuracy (the
    report's) and WHDR (Chen et al., delta = 0). Per-image values are summed on the device and
    read back once, at the end (no batch waits for the GPU); a NaN/inf prediction anywhere raises
    then. ``across_ranks`` (under torchrun): each rank scores its shard and the sums are added.
    """
    stage = get_stage(stage) if isinstance(stage, str) else stage
    if protocol not in EVAL_PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}: expected one of {', '.join(EVAL_PROTOCOLS)}")
    if protocol == "eigen":
        if stage.name != "nyu" or mat_path is None or frames is None:
            raise ValueError(f"the eigen protocol scores NYU depth against the original 640x480 frames: it needs "
                             f"the nyu stage, the .mat file and the frames' positions in it (got stage {stage.name})")
        return nyu_eigen_metrics(model, data, Path(mat_path), frames, batch_size, max_batches)
    keys, totals = None, None  # totals [3, K]: per metric the sum and the count of scored images, then NaN/inf seen
    shard = distributed.shard(len(data)) if across_ranks else None
    for values, nonfinite in per_image(model, data, stage, batch_size=batch_size, device=device,
                                       max_batches=max_batches, num_workers=num_workers, indices=shard):
        keys = keys or sorted(values)
        scores = torch.stack([values[k].double() for k in keys])  # [K, B]
        step = torch.stack([scores.nan_to_num(0.0).sum(1), (~scores.isnan()).sum(1).double(),
                            nonfinite.double().expand(len(keys))])
        totals = step if totals is None else totals + step  # stays on the device: no read per batch
    if totals is None:
        raise ValueError(f"cannot evaluate on an empty dataset ({data.name or stage.name}) or an empty shard "
                         f"of it (rank {distributed.rank()} of {distributed.world_size()})")
    if shard is not None:  # add every rank's sums (same keys on every rank: the stage's metrics)
        totals = distributed.all_reduce_sum(totals)
    sums, counts, nonfinite = totals.tolist()  # the one read of the whole evaluation
    _check_finite(int(nonfinite[0]), data, stage)
    if not all(counts):
        raise ValueError(f"no image of {data.name or stage.name} could be scored: "
                         f"{', '.join(k for k, c in zip(keys, counts) if not c)} had no valid depth pixel or pair")
    return {key: total / count for key, total, count in zip(keys, sums, counts)}


def per_image_scores(model: nn.Module, data: DepthData, stage: str | Stage, batch_size: int = 16,
                     device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """The stage's metrics of ``model`` on every image of ``data`` (NaN: not scored), as float64 arrays.

    The values whose means :func:`evaluate` prints; a NaN/inf prediction raises as there.
    """
    stage = get_stage(stage) if isinstance(stage, str) else stage
    parts: dict[str, list[Tensor]] = {}
    nonfinite = 0
    for values, bad in per_image(model, data, stage, batch_size=batch_size, device=device):
        for key, value in values.items():
            parts.setdefault(key, []).append(value.double().cpu())
        nonfinite += int(bad)
    _check_finite(nonfinite, data, stage)
    return {key: torch.cat(chunks).numpy() for key, chunks in parts.items()}


def nyu_eigen_metrics(model: nn.Module, test: DepthData, mat_path: Path, frames, batch_size: int = 8,
                      max_batches: int | None = None) -> dict[str, float]:
    """NYU metrics on the Eigen crop, per-image least-squares aligned (not the published, unaligned protocol): ground truth read at 640×480 from the ``.mat``, a batch at a time.

    ``frames[i]`` is the position in ``mat_path`` of ``test``'s image ``i``. Each batch's metrics
    are :func:`depthkit.metrics.depth_metrics` with ``protocol="eigen"`` (upsampled to the frame,
    Eigen crop, per-image least-squares alignment); the result is the mean over images.
    """
    sums, count = {}, 0
    for b, (pred, _) in enumerate(predictions(model, test, batch_size, max_batches=max_batches)):
        start = b * batch_size
        _, depth = read_nyu_mat(mat_path, frames[start:start + len(pred)])
        values = metrics.depth_metrics(pred.cpu(), torch.from_numpy(depth)[:, None], align="lstsq", protocol="eigen")
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(pred)
        count += len(pred)
    return {key: value / count for key, value in sums.items()}


def predict_depth(model: nn.Module, data: DepthData, n: int | None = 4, batch_size: int = 32) -> Tensor:
    """Predictions ``[n, 1, H, W]`` (CPU) for the first ``n`` images of ``data`` (all with ``n=None``)."""
    first = range(len(data) if n is None else min(n, len(data)))
    return torch.cat([pred.cpu() for pred, _ in predictions(model, data, batch_size, indices=first)])


# --------------------------------------------------------------------------------------------
# The trivial baseline: the training set's mean depth map
# --------------------------------------------------------------------------------------------
class ConstantModel(nn.Module):
    """A "model" that predicts the same depth map for every image (the trivial baseline)."""

    def __init__(self, depth_map: Tensor):
        super().__init__()
        self.register_buffer("depth_map", depth_map.float())

    def forward(self, x: Tensor) -> Tensor:
        """The depth map, once per image of ``x``."""
        return self.depth_map.expand(x.shape[0], -1, -1, -1)


def mean_depth_baseline(train: DepthData, batch_size: int = 64) -> Tensor:
    """The trivial baseline: the training set's mean depth map ``[1, 1, S, S]`` (valid pixels only)."""
    total = weight = 0
    for batch in batches(train, batch_size):
        d = batch["depths"].float()
        total = total + d.clamp_min(0).sum(0, keepdim=True)
        weight = weight + (d > 0).float().sum(0, keepdim=True)
    return total / weight.clamp_min(1)


def evaluate_baseline(train: DepthData, test: DepthData, batch_size: int = 64) -> dict[str, float]:
    """Normalized MSE of predicting the training-set mean depth map for every test image (the NYU stage's loop)."""
    scores = evaluate(ConstantModel(mean_depth_baseline(train)), test, "nyu", batch_size, device="cpu")
    return {"normalized_mse": scores["normalized_mse"]}


def baseline_per_image(train: DepthData, test: DepthData, batch_size: int = 64) -> np.ndarray:
    """Normalized MSE of the training-set mean depth map on every image of ``test`` (NaN: no valid pixel)."""
    return per_image_scores(ConstantModel(mean_depth_baseline(train)), test, "nyu", batch_size, "cpu")["normalized_mse"]


# --------------------------------------------------------------------------------------------
# Statistics of per-image values: the mean and its noise
# --------------------------------------------------------------------------------------------
def as_array(values: Values) -> np.ndarray:
    """Per-image values (a list, an array or a tensor on any device) as a flat float64 NumPy array."""
    a = values.detach().double().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, float)
    return a.reshape(-1)


def mean(values: Values) -> float:
    """The mean over the scored (finite) images."""
    a = as_array(values)
    return float(a[np.isfinite(a)].mean())


def standard_error(values: Values) -> float:
    """Standard error of the mean of the finite per-image values (sample std / sqrt(n)); inf below MIN_IMAGES values."""
    a = as_array(values)
    a = a[np.isfinite(a)]
    return float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) >= MIN_IMAGES else math.inf


def noise_band(a: Values, b: Values) -> float:
    """Half-width of the noise band of ``mean(a) - mean(b)`` on the same images: NOISE_Z paired standard errors."""
    a, b = as_array(a), as_array(b)
    if a.shape != b.shape:
        raise ValueError(f"a paired comparison needs the same images: got {a.size} and {b.size} values")
    return NOISE_Z * standard_error(a - b)


def is_clear(difference: float, band: float) -> bool:
    """Whether a difference lies outside its noise band (the one gate of every claim the notebooks make)."""
    return abs(difference) > band
