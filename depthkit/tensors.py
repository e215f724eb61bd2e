"""Tensor helpers shared by the losses and the metrics: shapes, valid pixels, per-image means, alignment, pairs.

Below both :mod:`depthkit.losses` and :mod:`depthkit.metrics` (each imports from here, neither from
the other for these), so a student reading a loss or a metric finds its building blocks in one place.

Shapes: predictions and depth maps are ``[B, 1, H, W]`` (``[B, H, W]`` and ``[H, W]`` are accepted
and viewed as such); masks have the same shape, ``True`` = valid pixel. Point pairs are long tensors
``[B, P, 4]`` holding 0-based ``(ya, xa, yb, xb)``; relations are ``[B, P]`` in {-1, 0, +1}
(+1: A is farther; depth-like values are larger = farther everywhere).
"""
from __future__ import annotations

import torch

EPS = 1e-8


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
    validates its pairs once, when the data is loaded). Shared by :func:`depthkit.losses.ranking_loss` and every pair metric in :mod:`depthkit.metrics`.
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
