"""Evaluation: ordinal accuracy and WHDR/WKDR on point pairs, standard NYU depth metrics, normalized MSE.

Same shapes and sign convention as :mod:`depthkit.losses`: depth-like values are larger =
farther, ``relation = +1`` means A is farther than B, pairs are 0-based ``(ya, xa, yb, xb)``,
predictions are ``[B, 1, H, W]``. Every function here runs without gradients and returns plain
Python floats, or per-image tensors where asked (``reduction="none"``, :func:`pair_errors_per_image`):
those read nothing back from the device, so a mean over a whole split can be summed on the GPU
and read once (:func:`depthkit.evaluate.evaluate`).

Non-finite predictions are an error, not a number: every metric that scores a prediction
(:func:`ordinal_accuracy`, :func:`whdr`, :func:`predicted_relation`, :func:`normalized_mse`,
:func:`depth_metrics`) raises ``ValueError("prediction has N non-finite values (NaN/inf) of M
...")`` when any predicted value, masked or not, is NaN or infinite, instead of silently
returning NaN. (Non-finite *ground truth* is different: it marks invalid pixels and is skipped.)

Pair metrics, precisely (docs/design.md, "Ordinal metrics"):

* ``ordinal_accuracy`` and ``whdr(..., delta=0)``: the predicted relation is the sign of the raw
  difference ``z_A - z_B`` (taken in float64), as in Chen et al.'s DIW test script; an exact tie
  predicts "equal", which is wrong for every ordered (``r = +-1``) pair.
* ``whdr(..., delta>0)``: WKDR with the ratio test of Zoran et al. on the predicted depth as is.
  The notebooks call this ordinal threshold tau (``delta`` here, after Zoran et al.), to keep it
  apart from the delta < 1.25 threshold accuracies of :func:`depth_metrics`.
* :func:`position_rule_accuracy`: the trivial prior "the lower point in the image is closer",
  scored on the same pairs, to print beside every ordinal score.

Depth metrics come in two protocols, neither of them a published-table protocol, because our
models predict relative depth and every image is aligned to the ground truth first:
``"eigen"`` (Eigen crop at 640 x 480, per-image least-squares aligned: not comparable with
published supervised tables, which are metric and unaligned, nor with zero-shot tables, which
align in disparity) and ``"resized"`` (at the training resolution, no crop, also aligned).
The protocol *key* ``"eigen"`` names the crop, not a comparability.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from depthkit import losses  # the normalized-MSE metric is the report's loss, without its gradient
from depthkit.tensors import EPS, align_scale_shift, as_b1hw, check_pairs, masked_mean, normalize_depth, pair_values, valid_mask

# The Eigen et al. (2014) evaluation crop of NYU Depth V2, in the 480 x 640 frame: rows 45..470,
# columns 41..600 (the border where the Kinect depth does not overlap the RGB). Published supervised
# tables score the 654 official test images inside it, metric and unaligned; depth_metrics aligns.
EIGEN_CROP_480x640 = (45, 471, 41, 601)  # top, bottom, left, right (bottom/right exclusive)
NYU_FRAME = (480, 640)  # height, width of an NYU Depth V2 frame

PROTOCOLS = ("resized", "eigen")


def check_finite(pred: torch.Tensor, what: str = "prediction") -> None:
    """Raise ``ValueError`` naming how many values of ``pred`` are NaN or infinite (if any are)."""
    bad = int((~torch.isfinite(pred)).sum())
    if bad:
        raise ValueError(
            f"{what} has {bad} non-finite values (NaN/inf) of {pred.numel()}: "
            "the model diverged or was fed invalid input; metrics refuse to turn it into NaN"
        )


# --------------------------------------------------------------------------------------------
# Pair metrics (DIW, and NYU pairs from sample_pairs).
# --------------------------------------------------------------------------------------------


def ratio_relation(d_a: torch.Tensor, d_b: torch.Tensor, delta: float) -> torch.Tensor:
    """The ratio test of Zoran et al.: +1 if ``d_A / d_B > 1 + delta``, -1 if ``d_B / d_A > 1 + delta``, else 0.

    Computed as ``d_A > (1 + delta) * d_B`` in float64 (no division, no float32 rounding).
    Needs positive values for ``delta > 0``; with ``delta = 0`` it is ``sign(d_A - d_B)`` for
    values of any sign. Returns a long tensor shaped like ``d_a``.
    """
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    d_a, d_b = d_a.double(), d_b.double()
    rel = torch.zeros(d_a.shape, dtype=torch.long, device=d_a.device)
    rel[d_a > (1 + delta) * d_b] = 1
    rel[d_b > (1 + delta) * d_a] = -1
    return rel


def _relations(
    pred: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor, delta: float, rescale: bool, check: bool = True
) -> torch.Tensor:
    """Predicted relation ``[B, P]`` of already-checked pairs; padded pairs (``~mask``) read pixel (0, 0).

    ``check=False`` skips the finiteness and bounds checks (each reads a value back from the device).
    """
    pred = as_b1hw(pred.detach(), "pred")
    if check:
        check_finite(pred)
    pairs = pairs.masked_fill(~mask[..., None], 0)
    if delta > 0 and rescale:
        pred = normalize_depth(pred.double()) + 1.0  # onto [1, 2], in float64: no new ties
    z_a, z_b = pair_values(pred, pairs, check=check)
    if delta > 0 and not rescale:
        bad = int(((z_a <= 0) | (z_b <= 0))[mask].sum())
        if bad:
            raise ValueError(
                f"the ratio test (delta={delta} > 0) needs positive predicted depth, but {bad} of "
                f"{int(mask.sum())} pairs touch a value <= 0: pass depth (e.g. exp of a log-depth "
                "output, or an aligned prediction), use delta=0, or rescale=True (not the published protocol)"
            )
    return ratio_relation(z_a, z_b, delta)


@torch.no_grad()
def ordinal_accuracy(
    pred: torch.Tensor, pairs: torch.Tensor, relation: torch.Tensor, mask: torch.Tensor | None = None
) -> float:
    """Fraction of pairs with ``sign(z_A - z_B) == r`` on the raw output: the report's DIW figure.

    The difference is taken in float64 on the raw prediction (no rescaling), so values that
    differ in the last float32 bit are still ordered. Exact ties count wrong for ordered pairs,
    as in Chen et al.'s DIW test script. Meant for DIW, whose pairs are never "equal"; an
    ``r = 0`` pair only counts as correct on an exact tie, so score such pairs with :func:`whdr`.
    """
    pairs, relation, mask = check_pairs(pairs, relation, mask)
    if not mask.any():
        raise ValueError("no valid pairs to score (the pair mask is all False)")
    correct = _relations(pred, pairs, mask, 0.0, False) == relation.long()
    return float(correct[mask].double().mean())


@torch.no_grad()
def pair_errors_per_image(
    pred: torch.Tensor, pairs: torch.Tensor, relation: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B]`` float64: each image's share of pairs whose raw ``sign(z_A - z_B)`` is not ``r`` (NaN: no pair).

    The per-image form of ``whdr(..., delta=0)`` (Chen et al.'s DIW WHDR; ``1 -`` it is the
    ordinal accuracy), for a mean accumulated on the device: no check reads a value back, so the
    pairs must have been validated (:func:`check_pairs`, as when a split is loaded) and the
    caller checks the prediction for NaN/inf (as :func:`depthkit.evaluate.evaluate` does, once).
    """
    pairs, relation, mask = check_pairs(pairs, relation, mask, check_values=False)
    wrong = (_relations(pred, pairs, mask, 0.0, False, check=False) != relation.long()).double()
    wrong = torch.where(mask, wrong, torch.zeros_like(wrong))
    return wrong.sum(dim=1) / mask.sum(dim=1)  # 0/0 = NaN marks an image without pairs


@torch.no_grad()
def predicted_relation(
    pred: torch.Tensor, pairs: torch.Tensor, *, delta: float, rescale: bool = False
) -> torch.Tensor:
    """``[B, P]`` in {-1, 0, +1}: the ratio test of Zoran et al. with threshold ``1 + delta`` on the prediction.

    ``+1`` if ``z_A / z_B > 1 + delta``, ``-1`` if ``z_B / z_A > 1 + delta``, else ``0`` ("equal").
    ``delta = 0``: the sign of the raw difference ``z_A - z_B`` (any sign of values allowed).
    ``delta > 0``: the ratio test on the prediction *as is*, which must then be positive,
    depth-like (e.g. metres); a non-positive value at a pair raises ``ValueError``.
    ``rescale=True`` (not the published protocol, for outputs of arbitrary sign) first maps
    each image linearly onto [1, 2] (min -> 1, max -> 2; in float64), so that ``delta`` reads as a
    share of the image's predicted range; it has no effect with ``delta = 0``.
    """
    no_relation = torch.zeros(pairs.shape[:-1], dtype=torch.long, device=pairs.device)
    pairs, _, mask = check_pairs(pairs, no_relation, check_values=False)  # [B, 4] -> [B, 1, 4], shapes checked
    return _relations(pred, pairs.long(), mask, delta, rescale)


@torch.no_grad()
def whdr(
    pred: torch.Tensor,
    pairs: torch.Tensor,
    relation: torch.Tensor,
    *,
    delta: float,
    mask: torch.Tensor | None = None,
    rescale: bool = False,
) -> float:
    """WHDR / WKDR at ratio threshold ``delta``: the share of pairs whose predicted relation is wrong.

    Two names for one disagreement rate, ``sum_i w_i [predicted_i != r_i] / sum_i w_i``:
    WHDR, the Weighted Human Disagreement Rate of Bell, Bala and Snavely ("Intrinsic images in
    the wild", SIGGRAPH 2014), whose weights ``w_i`` are the annotators' confidence in each human
    judgement; and WKDR, the Weighted Kinect Disagreement Rate of Zoran et al. ("Learning ordinal
    relationships for mid-level vision", ICCV 2015), with the judgement taken from Kinect depth.
    Chen et al. ("Single-image depth perception in the wild", NIPS 2016) report WKDR on NYU and
    WHDR on DIW (one judgement per image, no confidence). Here every weight is 1. Lower is better.
    ``delta`` is the ordinal threshold the notebooks call tau (not the delta < 1.25 accuracies).

    * Ground truth ``relation`` comes from the depth ratio: A farther (+1) when
      ``d_A / d_B > 1 + delta``, closer (-1) when ``d_B / d_A > 1 + delta``, else equal (0); for
      NYU use :func:`sample_pairs` with the *same* ``delta``; DIW's annotations are +-1.
    * The predicted relation is the same ratio test on the predicted depth, not rescaled
      (:func:`predicted_relation`). With ``delta > 0`` the prediction must be positive at every
      scored pair, else ``ValueError`` (the ratio test is undefined); ``rescale=True`` maps each
      image onto [1, 2] first, a convenience for relative depth that is *not* the published metric.
    * ``delta = 0`` is Chen et al.'s DIW WHDR: the sign of the raw ``z_A - z_B`` (float64), exact
      ties wrong for ordered pairs; then ``whdr == 1 - ordinal_accuracy``.

    ``delta`` is keyword-only and has no default: every caller states which threshold it scores.
    """
    pairs, relation, mask = check_pairs(pairs, relation, mask)
    if not mask.any():
        raise ValueError("no valid pairs to score (the pair mask is all False)")
    wrong = _relations(pred, pairs, mask, delta, rescale) != relation.long()
    return float(wrong[mask].double().mean())


def position_rule_relation(pairs: torch.Tensor) -> torch.Tensor:
    """``[B, P]`` long: the relation the rule "the lower point in the image is closer" predicts.

    A larger row ``y`` is lower in the image, so the rule says A is farther (+1) when ``ya < yb``,
    closer (-1) when ``ya > yb``, and "equal" (0) on one row. It is the sign of ``z_A - z_B`` for
    the depth map ``z = -row``: the height-in-the-image cue of a ground plane seen from above
    (points on a floor or the ground lie higher in the image the farther they are; Torralba and
    Oliva, "Depth estimation from image structure", IEEE TPAMI 2002), and the position shortcut
    that DIW's pair sampling guards against (Chen et al., NIPS 2016). ``pairs [B, 4]`` or
    ``[B, P, 4]``, 0-based ``(ya, xa, yb, xb)``.
    """
    pairs = pairs[:, None] if pairs.dim() == 2 else pairs
    if pairs.dim() != 3 or pairs.shape[-1] != 4:
        raise ValueError(f"pairs must be [B, P, 4] (ya, xa, yb, xb), got shape {tuple(pairs.shape)}")
    return torch.sign(pairs[..., 2].long() - pairs[..., 0].long())


@torch.no_grad()
def position_rule_accuracy(pairs: torch.Tensor, relation: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """The share of pairs that "the lower point is closer" orders right: the floor an ordinal score must clear.

    Scored exactly as :func:`ordinal_accuracy` scores a prediction (:func:`position_rule_relation`
    against ``relation``; a same-row pair, the rule's tie, counts wrong for an ordered pair), so it
    can be printed beside every ordinal score, on the same pairs. A model that only learned this
    rule scores it without looking at the picture.
    """
    pairs, relation, mask = check_pairs(pairs, relation, mask)
    if not mask.any():
        raise ValueError("no valid pairs to score (the pair mask is all False)")
    correct = position_rule_relation(pairs) == relation.long()
    return float(correct[mask].double().mean())


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
    rel = ratio_relation(flat[a], flat[b], delta)
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
    """The report's "NYU test MSE" as a metric: a float (``"mean"`` over images) or the ``[B]`` values (``"none"``).

    The number is :func:`depthkit.losses.normalized_mse` (the training loss, which returns a
    tensor with a gradient), computed here without gradients, with two differences: a
    non-finite prediction raises ``ValueError``, and ``"mean"`` raises when no image has a valid
    pixel (the loss returns 0 then). ``reduction="none"`` returns the detached ``[B]`` per-image
    values (NaN for an image without valid pixels), so a dataset mean can be taken over all
    images of all batches.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    pred = pred.detach()
    check_finite(pred)
    per_image = losses.normalized_mse(pred, depth, mask, reduction="none")
    if reduction == "none":
        return per_image
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


def masked_median(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``[B]``: each image's median over valid values, as ``numpy.median`` (even count: mean of the middle two).

    ``torch.median`` returns the *lower* of the two middle values instead. NaN for an image
    without valid values. ``x`` must be finite where ``valid``.
    """
    flat = torch.where(valid, x, torch.full_like(x, float("inf"))).flatten(1).double()
    count = valid.flatten(1).sum(dim=1)
    ordered = flat.sort(dim=1).values  # the valid values first, the +inf fill after them
    lo = ((count - 1) // 2).clamp_min(0)
    hi = (count // 2).clamp_max(flat.shape[1] - 1)
    middle = 0.5 * (ordered.gather(1, lo[:, None]) + ordered.gather(1, hi[:, None])).squeeze(1)
    return torch.where(count > 0, middle, torch.full_like(middle, float("nan"))).to(x.dtype)


def _align(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, align: str | None,
           warn: bool = True) -> torch.Tensor:
    """Bring a relative prediction to the scale of ``gt`` per image: median ratio, least squares, or not."""
    if align is None:
        return pred
    if align == "lstsq":
        return align_scale_shift(pred, gt, valid)
    if align != "median":
        raise ValueError(f"align must be 'median', 'lstsq' or None, got {align!r}")
    med_pred = masked_median(pred, valid).view(-1, 1, 1, 1)
    med_gt = masked_median(gt, valid).view(-1, 1, 1, 1)
    positive = med_pred > EPS
    if warn and not (positive | med_pred.isnan()).all():  # (NaN: no valid pixel) reads a value back
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
    protocol: str = "resized",
    reduction: str = "mean",
) -> dict[str, float] | dict[str, torch.Tensor]:
    """Standard NYU metrics: abs_rel, sq_rel, rmse, rmse_log, log10, delta1..3, computed per image then the mean.

    ``protocol="resized"`` (default, what training reports): ``pred`` and ``gt`` at the same
    (training) resolution, no crop unless ``eigen_crop`` (the crop scaled to the image size).
    Not comparable with published numbers: label them as such.

    ``protocol="eigen"``: the Eigen crop and formulas of Eigen et al. (NIPS 2014; BTS/AdaBins
    ``compute_errors``) with each image aligned to ``gt`` first (below): **not comparable with
    published supervised NYU tables** (metric, unaligned) nor with zero-shot ones (aligned in
    disparity). ``gt`` is the full 480 x 640 frame; ``pred`` (any size) is upsampled bilinearly
    (``align_corners=False``) to it; pixels inside the crop (:data:`EIGEN_CROP_480x640`) are scored.

    Both: valid pixels are ``min_depth < gt < max_depth`` (metres, 1e-3 and 10 m by default),
    finite, inside ``mask``. Our models predict relative depth, so each image is first aligned to
    ``gt`` over its valid pixels: ``"median"`` scales by median(gt) / median(pred) (true medians,
    as numpy), ``"lstsq"`` fits scale and shift, ``None`` takes the prediction as metres. The
    aligned prediction is clipped to ``[min_depth, max_depth]`` before errors are taken.
    A non-finite prediction raises ``ValueError``.

    ``reduction="mean"`` returns floats, the mean over the images with a valid pixel (none: a
    ``ValueError``). ``reduction="none"`` returns the ``[B]`` per-image tensors (NaN for an image
    without a valid pixel) and reads nothing back from the device, so it checks neither for a
    valid pixel nor for NaN/inf in ``pred``: a caller that accumulates a mean on the device
    checks the prediction itself (as :func:`depthkit.evaluate.evaluate` does, once per split).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    pred, gt = as_b1hw(pred.detach(), "pred").float(), as_b1hw(gt, "gt").float()
    if reduction == "mean":
        check_finite(pred)
    if protocol == "eigen":
        if tuple(gt.shape[-2:]) != NYU_FRAME:
            raise ValueError(
                f"protocol='eigen' needs the full {NYU_FRAME[0]}x{NYU_FRAME[1]} ground truth, got "
                f"{tuple(gt.shape[-2:])}: use protocol='resized' for depth at another size"
            )
        if pred.shape[0] != gt.shape[0]:
            raise ValueError(f"pred has {pred.shape[0]} images and gt {gt.shape[0]}")
        if pred.shape[-2:] != gt.shape[-2:]:
            pred = F.interpolate(pred, size=NYU_FRAME, mode="bilinear", align_corners=False)
        eigen_crop = True  # at 480 x 640, eigen_crop_mask is exactly EIGEN_CROP_480x640
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must have the same shape")
    valid = valid_mask(gt, mask) & (gt > min_depth) & (gt < max_depth)
    if eigen_crop:
        valid = valid & eigen_crop_mask(*gt.shape[-2:], device=gt.device)

    gt = torch.where(valid, gt, torch.ones_like(gt))  # keep logs and ratios finite off the mask
    pred = _align(pred, gt, valid, align, warn=reduction == "mean").clamp(min_depth, max_depth)
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
    }  # masked_mean: NaN for an image without a valid pixel
    if reduction == "none":
        return per_image
    has_pixels = valid.flatten(1).any(dim=1)
    if not has_pixels.any():
        raise ValueError(f"no valid ground-truth pixel (need {min_depth} < depth < {max_depth} m)")
    return {name: float(values[has_pixels].mean()) for name, values in per_image.items()}


@torch.no_grad()
def depth_correlation(pred: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """``[B]`` float64: per image, the Pearson correlation of predicted and true depth over the valid (> 0) pixels.

    NaN for an image with fewer than 3 valid pixels or a flat prediction. Positive: the map grows
    with the true depth (larger = farther), negative: it is reversed.
    """
    p, d = as_b1hw(pred, "pred").double().cpu().flatten(1), as_b1hw(depth, "depth").double().cpu().flatten(1)
    out = []
    for pi, di in zip(p, d):
        valid = torch.isfinite(di) & (di > 0)
        x, y = pi[valid] - pi[valid].mean(), di[valid] - di[valid].mean()
        denom = float(x.norm() * y.norm())
        out.append(float((x * y).sum()) / denom if valid.sum() > 2 and denom > 0 else float("nan"))
    return torch.tensor(out, dtype=torch.float64)


__all__ = [
    "EIGEN_CROP_480x640",
    "PROTOCOLS",
    "check_finite",
    "ratio_relation",
    "masked_median",
    "ordinal_accuracy",
    "predicted_relation",
    "pair_errors_per_image",
    "whdr",
    "position_rule_relation",
    "position_rule_accuracy",
    "sample_pairs",
    "normalized_mse",
    "eigen_crop_mask",
    "depth_metrics",
    "depth_correlation",
]
