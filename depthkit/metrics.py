"""Evaluation: ordinal accuracy and WHDR on point pairs, standard NYU depth metrics, normalized MSE.

Same shapes and sign convention as :mod:`depthkit.losses`: depth-like values are larger =
farther, ``relation = +1`` means A is farther than B, pairs are 0-based ``(ya, xa, yb, xb)``.
Every function here runs without gradients and returns plain Python floats (or a per-image
tensor where asked).
"""
from __future__ import annotations

import warnings

import torch

from depthkit.losses import (
    EPS,
    _as_pairs,
    align_scale_shift,
    as_b1hw,
    masked_mean,
    normalize_depth,
    normalized_mse_per_image,
    pair_values,
    valid_mask,
)

# The Eigen et al. (2014) evaluation crop of NYU Depth V2, in the 480 x 640 frame: rows 45..470,
# columns 41..600 (the border where the Kinect depth was filled in / does not overlap the RGB).
EIGEN_CROP_480x640 = (45, 471, 41, 601)  # top, bottom, left, right (bottom/right exclusive)


# --------------------------------------------------------------------------------------------
# Pair metrics (DIW, and NYU pairs from sample_pairs).
# --------------------------------------------------------------------------------------------


def _checked_pairs(pred, pairs, relation, mask):
    """Validated pairs, the gathered ``z_A - z_B`` per pair, and the pair mask."""
    pairs, relation, mask = _as_pairs(pairs, relation, mask)
    if not mask.any():
        raise ValueError("no valid pairs to score (the pair mask is all False)")
    z_a, z_b = pair_values(pred, pairs.masked_fill(~mask[..., None], 0))
    return z_a, z_b, relation, mask


@torch.no_grad()
def ordinal_accuracy(
    pred: torch.Tensor, pairs: torch.Tensor, relation: torch.Tensor, mask: torch.Tensor | None = None
) -> float:
    """Fraction of pairs ordered correctly, ``sign(z_A - z_B) == r``: the report's DIW figure.

    Meant for DIW, whose pairs are never "equal"; an ``r = 0`` pair only counts as correct on
    an exact tie, so score such pairs with :func:`whdr`.
    """
    z_a, z_b, relation, mask = _checked_pairs(pred, pairs, relation, mask)
    correct = torch.sign(z_a - z_b) == relation.to(z_a.dtype).sign()
    return float(correct[mask].float().mean())


@torch.no_grad()
def predicted_relation(
    pred: torch.Tensor, pairs: torch.Tensor, delta: float = 0.1, rescale: bool = True
) -> torch.Tensor:
    """``[B, P]`` in {-1, 0, +1}: the ratio test of Zoran et al. on the prediction.

    ``+1`` if ``z_A / z_B > 1 + delta``, ``-1`` if ``z_B / z_A > 1 + delta``, else ``0`` ("equal").
    The ratio test needs positive, depth-like values. Our networks predict *relative* depth of
    any sign and offset, so with ``rescale=True`` each image's prediction is first mapped
    linearly onto [1, 2] (its minimum -> 1, its maximum -> 2; order is kept). ``delta`` then
    reads as "a difference of about delta to 2 delta of the image's predicted depth range".
    With ``rescale=False`` the raw values are used and must be positive (e.g. metric depth).
    """
    if pairs.dim() == 2:
        pairs = pairs[:, None]
    z = normalize_depth(pred) + 1.0 if rescale else as_b1hw(pred, "pred")
    z_a, z_b = pair_values(z, pairs)
    if not rescale and ((z_a <= 0).any() or (z_b <= 0).any()):
        raise ValueError("the ratio test needs positive predictions: use rescale=True for relative depth")
    ratio = z_a / z_b
    rel = torch.zeros_like(ratio, dtype=torch.long)
    rel[ratio > 1 + delta] = 1
    rel[ratio < 1 / (1 + delta)] = -1
    return rel


@torch.no_grad()
def whdr(
    pred: torch.Tensor,
    pairs: torch.Tensor,
    relation: torch.Tensor,
    delta: float = 0.1,
    mask: torch.Tensor | None = None,
    rescale: bool = True,
) -> float:
    """Weighted Human Disagreement Rate (Zoran et al. WKDR, Chen et al. WHDR), all weights 1.

    The fraction of pairs whose predicted relation (ratio test with threshold ``1 + delta``,
    see :func:`predicted_relation`) differs from the ground-truth ``relation``. Lower is better.
    On DIW, which has no equal pairs, Chen et al.'s WHDR is ``whdr(..., delta=0)`` =
    ``1 - ordinal_accuracy`` (up to exact ties).
    """
    pairs, relation, mask = _as_pairs(pairs, relation, mask)
    if not mask.any():
        raise ValueError("no valid pairs to score (the pair mask is all False)")
    pairs = pairs.masked_fill(~mask[..., None], 0)
    wrong = predicted_relation(pred, pairs, delta=delta, rescale=rescale) != relation.long()
    return float(wrong[mask].float().mean())


@torch.no_grad()
def sample_pairs(
    depth: torch.Tensor,
    n: int,
    delta: float = 0.1,
    mask: torch.Tensor | None = None,
    equal_fraction: float | None = None,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``n`` point pairs per image from dense depth, labelled with the ratio test (NYU-style).

    Points are drawn uniformly among valid pixels (``depth > 0``, finite, and ``mask``); A != B.
    ``relation`` is +1 if ``d_A / d_B > 1 + delta`` (A farther), -1 if ``d_B / d_A > 1 + delta``,
    else 0 (equal). ``equal_fraction`` (e.g. 0.5) asks for that share of equal pairs, as far as
    the image has them; by default the shares are whatever uniform sampling gives.
    ``depth [H, W]`` returns ``pairs [n, 4]`` (long, ``(ya, xa, yb, xb)``) and ``relation [n]``;
    ``[B, H, W]`` or ``[B, 1, H, W]`` returns ``[B, n, 4]`` and ``[B, n]``. Seeded: same
    ``seed`` (or ``generator`` state), same pairs.
    """
    single = depth.dim() == 2
    depth = as_b1hw(torch.as_tensor(depth), "depth").float()
    valid = valid_mask(depth, mask) & (depth > 0)
    if generator is None:
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
    results = [
        _sample_image(depth[b, 0], valid[b, 0], n, delta, equal_fraction, generator, b)
        for b in range(depth.shape[0])
    ]
    pairs = torch.stack([p for p, _ in results])
    relation = torch.stack([r for _, r in results])
    return (pairs[0], relation[0]) if single else (pairs, relation)


def _ratio_relation(d_a: torch.Tensor, d_b: torch.Tensor, delta: float) -> torch.Tensor:
    """+1 / -1 / 0 from the ratio test on positive depths."""
    rel = torch.zeros(d_a.shape, dtype=torch.long)
    rel[d_a > (1 + delta) * d_b] = 1
    rel[d_b > (1 + delta) * d_a] = -1
    return rel


def _sample_image(depth, valid, n, delta, equal_fraction, generator, index):
    """Pairs and relations for one ``[H, W]`` depth map (see :func:`sample_pairs`)."""
    h, w = depth.shape
    points = valid.flatten().nonzero().squeeze(1).cpu()
    if len(points) < 2:
        raise ValueError(f"image {index} has {len(points)} valid depth pixel(s): need at least 2 to sample pairs")
    draws = n if equal_fraction is None else 20 * n  # candidates to choose the equal share from
    a = torch.randint(len(points), (draws,), generator=generator)
    # B is drawn among the other points: shift by 1..len-1 so that A != B always
    b = (a + torch.randint(1, len(points), (draws,), generator=generator)) % len(points)
    a, b = points[a], points[b]
    flat = depth.flatten().cpu()
    rel = _ratio_relation(flat[a], flat[b], delta)
    if equal_fraction is not None:
        order = _pick_equal_share(rel == 0, n, equal_fraction)
        a, b, rel = a[order], b[order], rel[order]
    pairs = torch.stack([a // w, a % w, b // w, b % w], dim=1)
    return pairs, rel


def _pick_equal_share(is_equal: torch.Tensor, n: int, fraction: float) -> torch.Tensor:
    """Indices of ``n`` candidates, about ``fraction`` of them equal pairs (as many as exist)."""
    equal, unequal = is_equal.nonzero().squeeze(1), (~is_equal).nonzero().squeeze(1)
    n_equal = min(round(n * fraction), len(equal))
    n_unequal = min(n - n_equal, len(unequal))
    n_equal = n - n_unequal  # fill up from the other group when one runs short
    chosen = torch.cat([equal[:n_equal], unequal[:n_unequal]])
    return chosen.sort().values  # keep the random draw order, not "all equal pairs first"


# --------------------------------------------------------------------------------------------
# Dense metrics (NYU).
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def normalized_mse(
    pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> float | torch.Tensor:
    """The report's "NYU test MSE": min-max normalized MSE per image; ``"mean"`` over images or ``"none"``.

    ``reduction="none"`` returns the ``[B]`` per-image values (NaN for an image without valid
    pixels), so a dataset mean can be taken over all images of all batches.
    """
    per_image = normalized_mse_per_image(pred.detach(), depth, mask)
    if reduction == "none":
        return per_image
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    keep = ~torch.isnan(per_image)
    if not keep.any():
        raise ValueError("no image has a valid depth pixel")
    return float(per_image[keep].mean())


def eigen_crop_mask(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[H, W]`` bool: the Eigen NYU evaluation crop, scaled from 480 x 640 to ``height x width``."""
    top, bottom, left, right = EIGEN_CROP_480x640
    crop = torch.zeros(height, width, dtype=torch.bool, device=device)
    rows = slice(round(top * height / 480), round(bottom * height / 480))
    cols = slice(round(left * width / 640), round(right * width / 640))
    crop[rows, cols] = True
    return crop


def _align(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, align: str | None) -> torch.Tensor:
    """Bring a relative prediction to the scale of ``gt`` per image: median ratio, least squares, or not."""
    if align is None:
        return pred
    if align == "lstsq":
        return align_scale_shift(pred, gt, valid)
    if align != "median":
        raise ValueError(f"align must be 'median', 'lstsq' or None, got {align!r}")
    nan = torch.full_like(pred, float("nan"))
    med_pred = torch.where(valid, pred, nan).flatten(1).nanmedian(dim=1).values.view(-1, 1, 1, 1)
    med_gt = torch.where(valid, gt, nan).flatten(1).nanmedian(dim=1).values.view(-1, 1, 1, 1)
    positive = med_pred > EPS
    if not positive.all():
        warnings.warn(
            "median alignment needs positive predictions, but some images have a median <= 0: "
            "those are aligned by least squares instead (pass align='lstsq' to do that for all)",
            stacklevel=3,
        )
    return torch.where(positive, pred * med_gt / med_pred.clamp_min(EPS), align_scale_shift(pred, gt, valid))


@torch.no_grad()
def depth_metrics(
    pred: torch.Tensor,
    gt: torch.Tensor,
    mask: torch.Tensor | None = None,
    align: str | None = "median",
    eigen_crop: bool = False,
    min_depth: float = 1e-3,
    max_depth: float = 10.0,
) -> dict[str, float]:
    """Standard NYU metrics: abs_rel, sq_rel, rmse, rmse_log, log10, delta1..3 (mean over images).

    Valid pixels: ``min_depth < gt < max_depth`` (metres), finite, inside ``mask`` and, with
    ``eigen_crop``, inside the Eigen crop scaled to the image size. Our models predict relative
    depth, so each image is first aligned to ``gt``: ``"median"`` scales by median(gt)/median(pred),
    ``"lstsq"`` fits scale and shift, ``None`` uses the prediction as metres. The aligned
    prediction is clamped to ``[min_depth, max_depth]`` before logs and ratios.
    """
    pred, gt = as_b1hw(pred.detach(), "pred").float(), as_b1hw(gt, "gt").float()
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must have the same shape")
    valid = valid_mask(gt, mask) & (gt > min_depth) & (gt < max_depth)
    if eigen_crop:
        valid = valid & eigen_crop_mask(*gt.shape[-2:], device=gt.device)
    has_pixels = valid.flatten(1).any(dim=1)
    if not has_pixels.any():
        raise ValueError(f"no valid ground-truth pixel (need {min_depth} < depth < {max_depth} m)")
    pred, gt, valid = pred[has_pixels], gt[has_pixels], valid[has_pixels]

    gt = torch.where(valid, gt, torch.ones_like(gt))  # keep logs and ratios finite off the mask
    pred = _align(pred, gt, valid, align).clamp(min_depth, max_depth)
    ratio = torch.maximum(pred / gt, gt / pred)
    per_image = {
        "abs_rel": masked_mean((pred - gt).abs() / gt, valid),
        "sq_rel": masked_mean((pred - gt) ** 2 / gt, valid),
        "rmse": masked_mean((pred - gt) ** 2, valid).sqrt(),
        "rmse_log": masked_mean((pred.log() - gt.log()) ** 2, valid).sqrt(),
        "log10": masked_mean((pred.log10() - gt.log10()).abs(), valid),
        "delta1": masked_mean((ratio < 1.25).float(), valid),
        "delta2": masked_mean((ratio < 1.25**2).float(), valid),
        "delta3": masked_mean((ratio < 1.25**3).float(), valid),
    }
    return {name: float(values.mean()) for name, values in per_image.items()}


__all__ = [
    "ordinal_accuracy",
    "predicted_relation",
    "whdr",
    "sample_pairs",
    "normalized_mse",
    "eigen_crop_mask",
    "depth_metrics",
]
