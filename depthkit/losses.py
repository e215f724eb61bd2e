"""Training losses: the report's normalized MSE, Chen et al.'s ranking loss, MiDaS's SSI loss.

Shapes: predictions and depth maps are ``[B, 1, H, W]`` (``[B, H, W]`` is accepted too);
masks have the same shape, ``True`` = valid pixel. Point pairs are long tensors ``[B, P, 4]``
holding 0-based ``(ya, xa, yb, xb)``; relations are ``[B, P]`` in {-1, 0, +1}.

Sign convention (docs/design.md, Conventions; used everywhere): depth-like values are *larger = farther*.
``relation = +1`` means point A is farther than B (DIW's ``>``), ``-1`` means A is closer
(``<``), ``0`` means "about equal". A pair is ordered correctly when ``sign(z_A - z_B) == r``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


# --------------------------------------------------------------------------------------------
# Shape helpers.
# --------------------------------------------------------------------------------------------


def as_b1hw(x: torch.Tensor, what: str = "tensor") -> torch.Tensor:
    """View ``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]`` as ``[B, 1, H, W]``."""
    if x.dim() == 2:
        return x[None, None]
    if x.dim() == 3:
        return x[:, None]
    if x.dim() == 4 and x.shape[1] == 1:
        return x
    raise ValueError(f"{what} must be [H, W], [B, H, W] or [B, 1, H, W], got shape {tuple(x.shape)}")


def valid_mask(target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean ``[B, 1, H, W]``: the given mask (default: all pixels) and a finite target."""
    target = as_b1hw(target, "depth")
    valid = torch.isfinite(target)
    if mask is not None:
        valid = valid & as_b1hw(mask, "mask").bool()
    return valid


def check_pairs(
    pairs: torch.Tensor, relation: torch.Tensor, mask: torch.Tensor | None = None, check_values: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate pairs for a pair loss or metric: ``(pairs [B, P, 4] long, relation [B, P], mask [B, P])``.

    Accepts one pair per image (``pairs [B, 4]``, ``relation [B]``) as well as ``[B, P, 4]``,
    ``[B, P]``. ``mask`` (default: all True) marks real pairs; padded pairs may hold anything.
    Raises ``ValueError`` for wrong shapes or a relation outside {-1, 0, +1} on a real pair
    (``check_values=False`` skips the value check, which reads from the device: the training loop
    validates its pairs once, when the data is loaded). Shared by :func:`ranking_loss` and every pair metric in :mod:`depthkit.metrics`.
    """
    if pairs.dim() == 2:  # DIW: exactly one pair per image
        pairs = pairs[:, None]
        relation = relation.reshape(-1, 1)
        mask = None if mask is None else mask.reshape(-1, 1)
    if pairs.dim() != 3 or pairs.shape[-1] != 4:
        raise ValueError(f"pairs must be [B, P, 4] (ya, xa, yb, xb), got shape {tuple(pairs.shape)}")
    if relation.shape != pairs.shape[:2]:
        raise ValueError(f"relation must be [B, P] = {tuple(pairs.shape[:2])}, got {tuple(relation.shape)}")
    if mask is None:
        mask = torch.ones(pairs.shape[:2], dtype=torch.bool, device=pairs.device)
    elif mask.shape != pairs.shape[:2]:
        raise ValueError(f"pair mask must be [B, P] = {tuple(pairs.shape[:2])}, got {tuple(mask.shape)}")
    bad = mask & ~((relation == -1) | (relation == 0) | (relation == 1)) if check_values else None
    if check_values and bad.any():
        b, p = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"relation[{b}, {p}] = {relation[b, p].item()}: expected -1, 0 or +1")
    return pairs.long(), relation, mask.bool()


_as_pairs = check_pairs  # the old private name, kept for code written against it


# --------------------------------------------------------------------------------------------
# Per-image normalization and alignment.
# --------------------------------------------------------------------------------------------


def normalize_depth(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image min-max normalization to [0, 1] over valid pixels; constant maps -> 0, invalid -> 0."""
    x = as_b1hw(x)
    valid = valid_mask(x, mask)
    flat, vflat = x.flatten(1), valid.flatten(1)
    lo = torch.where(vflat, flat, torch.full_like(flat, float("inf"))).amin(dim=1)
    hi = torch.where(vflat, flat, torch.full_like(flat, float("-inf"))).amax(dim=1)
    has_any = vflat.any(dim=1)
    lo = torch.where(has_any, lo, torch.zeros_like(lo)).view(-1, 1, 1, 1)
    span = torch.where(has_any, hi, torch.zeros_like(hi)).view(-1, 1, 1, 1) - lo
    # clamp_min keeps the unused branch finite, so constant maps give 0 and no NaN gradients
    scaled = (x - lo) / span.clamp_min(EPS)
    out = torch.where(span > EPS, scaled, torch.zeros_like(x))
    return torch.where(valid, out, torch.zeros_like(x))


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the valid pixels of each image: ``[B, ...]`` -> ``[B]`` (NaN if none)."""
    values = torch.where(valid, values, torch.zeros_like(values))
    count = valid.flatten(1).sum(dim=1)
    return values.flatten(1).sum(dim=1) / count  # 0/0 = NaN marks images without valid pixels


def align_scale_shift(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per image, the ``s * pred + t`` closest to ``target`` in least squares over valid pixels."""
    pred, target = as_b1hw(pred), as_b1hw(target)
    target = torch.where(valid, target, torch.zeros_like(target))  # no NaN from invalid pixels
    mean_p = masked_mean(pred, valid).nan_to_num(0.0).view(-1, 1, 1, 1)
    mean_t = masked_mean(target, valid).nan_to_num(0.0).view(-1, 1, 1, 1)
    dp, dt = pred - mean_p, target - mean_t
    cov = masked_mean(dp * dt, valid).nan_to_num(0.0).view(-1, 1, 1, 1)
    var = masked_mean(dp * dp, valid).nan_to_num(0.0).view(-1, 1, 1, 1)
    scale = torch.where(var > EPS, cov / var.clamp_min(EPS), torch.zeros_like(var))  # flat pred: s = 0
    return scale * dp + mean_t  # = s * pred + (mean_t - s * mean_p)


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


# --------------------------------------------------------------------------------------------
# Pair loss (DIW).
# --------------------------------------------------------------------------------------------


def pair_values(pred: torch.Tensor, pairs: torch.Tensor, check: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather ``z_A, z_B`` (each ``[B, P]``) from ``pred [B, 1, H, W]`` at ``pairs [B, P, 4]``.

    ``check=False`` skips the bounds check (a host-device synchronisation) for pairs validated earlier.
    """
    pred = as_b1hw(pred, "pred")
    if pairs.dim() != 3 or pairs.shape[-1] != 4 or pairs.shape[0] != pred.shape[0]:
        raise ValueError(f"pairs must be [B={pred.shape[0]}, P, 4], got shape {tuple(pairs.shape)}")
    h, w = pred.shape[-2:]
    pairs = pairs.long()
    ys, xs = pairs[..., 0::2], pairs[..., 1::2]  # (ya, yb) and (xa, xb)
    outside = ((ys < 0) | (ys >= h) | (xs < 0) | (xs >= w)) if check else None
    if check and outside.any():
        b, p, _ = (int(i) for i in outside.nonzero()[0])
        raise ValueError(
            f"pairs[{b}, {p}] = {pairs[b, p].tolist()} lies outside the {h}x{w} prediction "
            "(expected 0-based (ya, xa, yb, xb))"
        )
    flat = pred.flatten(1)  # [B, H*W]; pixel (y, x) sits at index y * W + x
    index = ys * w + xs  # [B, P, 2]: the A and B pixel of every pair
    z_a = flat.gather(1, index[..., 0])
    z_b = flat.gather(1, index[..., 1])
    return z_a, z_b


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
