"""Training losses: the report's normalized MSE, Chen et al.'s ranking loss, MiDaS's SSI loss, Eigen et al.'s SIlog.

Shapes: predictions and depth maps are ``[B, 1, H, W]`` (``[B, H, W]`` is accepted too);
masks have the same shape, ``True`` = valid pixel. Point pairs are long tensors ``[B, P, 4]``
holding 0-based ``(ya, xa, yb, xb)``; relations are ``[B, P]`` in {-1, 0, +1}.

The shape, mask, alignment and pair helpers live in :mod:`depthkit.tensors` (shared with the metrics).

Sign convention (docs/design.md, Conventions; used everywhere): depth-like values are *larger = farther*.
``relation = +1`` means point A is farther than B (DIW's ``>``), ``-1`` means A is closer
(``<``), ``0`` means "about equal". A pair is ordered correctly when ``sign(z_A - z_B) == r``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from depthkit.tensors import align_scale_shift, as_b1hw, check_pairs, masked_mean, normalize_depth, pair_values, valid_mask


# --------------------------------------------------------------------------------------------
# Dense losses (NYU).
# --------------------------------------------------------------------------------------------


def normalized_mse_per_image(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[B]``: MSE between min-max normalized prediction and depth over each image's valid pixels."""
    valid, pred = valid_mask(depth, mask), as_b1hw(pred, "prediction")
    error = (normalize_depth(pred, valid) - normalize_depth(depth, valid)) ** 2
    # normalize_depth skips non-finite pixels; a NaN/inf *prediction* on a valid pixel must stay NaN
    error = torch.where(torch.isfinite(pred), error, torch.full_like(error, float("nan")))
    return masked_mean(error, valid)


def _mean_over_images(per_image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the images that have valid pixels in ``valid`` (0 with a gradient path if none has).

    Images are chosen by their *depth* mask, not by their value: a NaN or inf *prediction* on a
    valid image makes the mean NaN, so a diverging run fails its training loss at once.
    Written without a data-dependent branch, so a training step never waits for the GPU here.
    """
    keep = valid.flatten(1).any(dim=1)
    kept = torch.where(keep, per_image, torch.zeros_like(per_image))
    return kept.sum() / keep.sum().clamp_min(1)


def normalized_mse(
    pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """The report's training loss: per-image min-max to [0, 1] of prediction and depth, MSE over valid pixels.

    ``mask`` (same shape as ``depth``) marks valid pixels; the default is every finite pixel.
    For Kinect depth with holes pass ``mask=depth > 0``. Returns a tensor with a gradient:
    ``reduction="mean"`` the mean over the images that have valid pixels (``0`` with a gradient
    path when none has, so a training step never breaks), ``"none"`` the ``[B]`` per-image
    values (NaN for an image without valid pixels).

    :func:`depthkit.metrics.normalized_mse` is the *metric* built on this function: it detaches,
    returns a Python float, rejects non-finite predictions and raises when no image is scorable.
    """
    per_image = normalized_mse_per_image(pred, depth, mask)
    if reduction == "none":
        return per_image
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return _mean_over_images(per_image, valid_mask(depth, mask))


def ssi_loss(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale-and-shift-invariant MSE, MiDaS's L_ssimse, against the [0, 1]-normalized depth.

    Ranftl et al., "Towards Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot
    Cross-dataset Transfer", TPAMI 2020 (MiDaS), eq. for L_ssimse: per image,
    ``1 / (2M) * sum_i (s * d_i + t - d*_i)^2`` over the ``M`` valid pixels, with ``s, t`` the
    least-squares scale and shift; the batch loss is the mean over images. We carry the same
    ``1 / (2M)``, so this is *half* the mean squared error of the aligned prediction.

    Per image, the target ``d*`` is min-max normalized (as in :func:`normalized_mse`) and ``s, t``
    are a differentiable closed form of ``pred``. MiDaS works on disparity; we keep depth (larger
    = farther). Because min-max normalization is one particular scale and shift,
    ``2 * ssi_loss <= normalized_mse`` always: the gap is what the alignment buys. ``s`` may come
    out negative, so this loss alone cannot tell near from far (``ssi_loss(-d, d) == 0``).
    """
    valid = valid_mask(depth, mask)
    target = normalize_depth(depth, valid)
    aligned = align_scale_shift(as_b1hw(pred), target, valid)
    return _mean_over_images(0.5 * masked_mean((aligned - target) ** 2, valid), valid)


SILOG_LAMBDA = 0.5  # the lambda Eigen et al. 2014 trained with (eq. 4, their training loss)


def silog_loss(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None,
               lam: float = SILOG_LAMBDA) -> torch.Tensor:
    """Eigen et al.'s scale-invariant log loss (SIlog), eq. 4, mean over images: mean(d^2) - lam * mean(d)^2.

    D. Eigen, C. Puhrsch, R. Fergus, "Depth Map Prediction from a Single Image using a Multi-Scale
    Deep Network", NIPS 2014, eq. 4: per image, ``1/n sum_i d_i^2 - lam/n^2 (sum_i d_i)^2`` with
    ``d_i = log y_i - log y*_i`` over the ``n`` valid pixels; they trained with ``lam = 0.5``.
    ``lam = 1`` is their scale-invariant error (eq. 3): it is the variance of ``d``, so multiplying
    the prediction (or the depth) by one constant per image changes nothing. ``lam = 0`` is the
    plain MSE of log depth. In between, the loss still penalises ``(1 - lam)`` of the squared mean
    log ratio: the network learns the scale of the scene too, only less strongly than its shape.

    **Log depth from depthkit's output convention.** ``pred`` is a depth-like map in metres (larger
    = farther), like every model output, and must be positive where ``depth`` is valid: the loss
    takes ``log(pred)``. A network trained with it predicts *log depth* in its last layer and
    exponentiates it (:class:`depthkit.models.ExpDepth`), so its output is positive by construction
    and ``log(pred)`` returns exactly what the layer computed. A non-positive prediction on a valid
    pixel makes the loss NaN (a training run then stops at once, as with the other losses).

    Valid pixels: ``mask`` (default: all) with a finite, positive ``depth`` (Kinect holes are 0).
    (BTS, Lee et al. 2019, and AdaBins, Bhat et al. 2021, train on a variant,
    ``10 * sqrt(mean(d^2) - 0.85 * mean(d)^2)``; not implemented here.)
    """
    pred, depth = as_b1hw(pred, "prediction"), as_b1hw(depth, "depth")
    valid = valid_mask(depth, mask) & (depth > 0)
    one = torch.ones_like(pred)
    # log only where valid: invalid pixels (holes, masked) give neither NaN values nor NaN gradients
    d = torch.log(torch.where(valid, pred, one)) - torch.log(torch.where(valid, depth.to(pred.dtype), one))
    # eq. 4 rewritten as var(d) + (1 - lam) mean(d)^2 (the same number): no cancellation of two large terms in fp32
    mean_d = masked_mean(d, valid).view(-1, 1, 1, 1)
    per_image = masked_mean((d - mean_d) ** 2, valid) + (1 - lam) * mean_d.flatten() ** 2
    return _mean_over_images(per_image, valid)


# --------------------------------------------------------------------------------------------
# Pair loss (DIW).
# --------------------------------------------------------------------------------------------


def ranking_loss(
    pred: torch.Tensor,
    pairs: torch.Tensor,
    relation: torch.Tensor,
    mask: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Chen et al.'s ranking loss, mean over pairs: log(1 + exp(-r (z_A - z_B))), or (z_A - z_B)^2 if r = 0.

    ``r = +1`` (A farther) is rewarded for ``z_A > z_B``: the loss falls as ``z_A`` rises.
    Padded pairs: pass ``mask [B, P]`` with ``False`` for "no pair" (their coordinates and
    relation are ignored). ``pairs [B, 4]`` with ``relation [B]`` (one pair per image) works too.
    ``validate=False`` skips the value checks (they wait for the GPU): for pairs checked on loading.
    """
    pairs, relation, mask = check_pairs(pairs, relation, mask, check_values=validate)
    pairs = pairs.masked_fill(~mask[..., None], 0)  # padded pairs may hold any coordinates
    z_a, z_b = pair_values(pred, pairs, check=validate)
    diff = z_a - z_b
    r = relation.to(diff.dtype)
    # softplus(x) = log(1 + exp(x)) computed without overflow for large |x|
    ordinal = F.softplus(-r * diff)
    equal = diff**2
    per_pair = torch.where(relation == 0, equal, ordinal)
    per_pair = torch.where(mask, per_pair, torch.zeros_like(per_pair))
    return per_pair.sum() / mask.sum().clamp_min(1)
