"""Metrics: hand-computed values on tiny tensors, masks, alignment, pair sampling."""
from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthkit import losses, metrics
from depthkit.metrics import (
    EIGEN_CROP_480x640,
    depth_metrics,
    eigen_crop_mask,
    masked_median,
    normalized_mse,
    ordinal_accuracy,
    predicted_relation,
    ratio_relation,
    sample_pairs,
    whdr,
)

from helpers import GRID, t  # tests/helpers.py: shared with the metric (loss) tests


# ----- ordinal accuracy and WHDR ---------------------------------------------------------------


def test_ordinal_accuracy_hand_value_with_padding():
    pairs = torch.tensor([[[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 1], [9, 9, 9, 9]]])
    relation = torch.tensor([[1, 1, -1, 1]])  # right (3 > 0), wrong (0 < 1), wrong (2 > 1), padding
    mask = torch.tensor([[True, True, True, False]])
    assert ordinal_accuracy(GRID, pairs, relation, mask) == pytest.approx(1 / 3)


def test_ordinal_accuracy_one_pair_per_image():
    pred = torch.cat([GRID, -GRID])
    pairs, relation = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]]), torch.tensor([1, 1])
    assert ordinal_accuracy(pred, pairs, relation) == pytest.approx(0.5)


def test_ordinal_accuracy_rejects_all_padding():
    with pytest.raises(ValueError, match="no valid pairs"):
        ordinal_accuracy(GRID, torch.zeros(1, 1, 4, dtype=torch.long), torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.bool))


def test_predicted_relation_rescales_to_one_two():
    # GRID rescaled per image: [[1, 4/3], [5/3, 2]]
    pairs = torch.tensor([[[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 0]]])
    # ratios: 2 / (5/3) = 1.2, 2 / 1 = 2, (5/3) / 2 = 0.83, (4/3) / (5/3) = 0.8
    assert predicted_relation(GRID, pairs, delta=0.1, rescale=True).tolist() == [[1, 1, -1, -1]]
    assert predicted_relation(GRID, pairs, delta=0.25, rescale=True).tolist() == [[0, 1, 0, 0]]


def test_whdr_rescaled_hand_value():
    pairs = torch.tensor([[[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 1, 1]]])
    relation = torch.tensor([[1, 0, 0]])
    # delta 0.25 predicts [0, +1, 0]: wrong, wrong, right
    assert whdr(GRID, pairs, relation, delta=0.25, rescale=True) == pytest.approx(2 / 3)
    # delta 0.1 predicts [+1, +1, -1]: right, wrong, wrong
    assert whdr(GRID, pairs, relation, delta=0.1, rescale=True) == pytest.approx(2 / 3)
    assert whdr(GRID, pairs, torch.tensor([[0, 1, 0]]), delta=0.25, rescale=True) == 0.0


def test_whdr_raw_positive_depth_and_its_guard():
    depth = t([[1.0, 1.05], [2.0, 4.0]])
    pairs = torch.tensor([[[0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0]]])  # ratios 1.05, 2, 0.5
    assert predicted_relation(depth, pairs, delta=0.1).tolist() == [[0, 1, -1]]
    assert whdr(depth, pairs, torch.tensor([[0, 1, -1]]), delta=0.1) == 0.0
    with pytest.raises(ValueError, match=r"needs positive predicted depth, but 3 of 3 pairs"):
        whdr(depth - 2, pairs, torch.tensor([[0, 1, -1]]), delta=0.1)


def test_whdr_ratio_test_on_the_raw_prediction_zoran_chen():
    # Zoran et al. 2015 / Chen et al. 2016: A farther iff z_A / z_B > 1 + delta (strict), on the
    # prediction as is. [100, 105, 110]: raw ratio 105/100 = 1.05 is "equal" at delta 0.1;
    # rescaled onto [1, 2] (not the published metric) it would read 1.5 / 1 -> "farther".
    pred = t([[100.0, 105.0, 110.0, 2.0, 2.5]])
    pairs = torch.tensor([[[0, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 2], [0, 4, 0, 3], [0, 3, 0, 4]]])
    # ratios: 1.05, 1.1 (== 1 + delta: not more), 1/1.1, 2.5/2 = 1.25 (> 1.1), 0.8
    assert predicted_relation(pred, pairs, delta=0.1).tolist() == [[0, 0, 0, 1, -1]]
    # exactly on the threshold is "equal": 2.5 / 2.0 == 1.25
    assert predicted_relation(pred, pairs[:, 3:], delta=0.25).tolist() == [[0, 0]]
    assert whdr(pred, pairs, torch.tensor([[0, 0, 0, 1, -1]]), delta=0.1) == 0.0
    assert whdr(pred, pairs, torch.tensor([[1, 1, -1, 1, -1]]), delta=0.1) == pytest.approx(3 / 5)
    # ground truth from the same ratio test (sample_pairs) scores a WKDR of 0 against itself
    depth = torch.rand(2, 1, 12, 12) * 4 + 0.5
    p, r = sample_pairs(depth, 64, delta=0.02, seed=1)
    assert whdr(depth, p, r, delta=0.02) == 0.0
    assert torch.equal(ratio_relation(torch.tensor([2.5]), torch.tensor([2.0]), 0.25), torch.tensor([0]))


def test_whdr_non_positive_prediction_with_delta_raises_but_padding_is_ignored():
    pred = t([[-1.0, 2.0, 3.0]])
    pairs = torch.tensor([[[0, 2, 0, 1], [0, 0, 0, 1]]])
    relation = torch.tensor([[1, -1]])
    with pytest.raises(ValueError, match=r"1 of 2 pairs touch a value <= 0"):
        whdr(pred, pairs, relation, delta=0.1)
    mask = torch.tensor([[True, False]])  # the padded pair may sit on any pixel
    assert whdr(pred, pairs, relation, delta=0.1, mask=mask) == 0.0
    # delta = 0 is the sign of the difference: defined for any sign
    assert whdr(pred, pairs, relation, delta=0.0) == 0.0
    with pytest.raises(ValueError, match="delta must be >= 0"):
        whdr(pred, pairs, relation, delta=-0.1)


def test_whdr_signature_names_its_delta():
    delta = inspect.signature(whdr).parameters["delta"]
    assert delta.kind is inspect.Parameter.KEYWORD_ONLY and delta.default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        whdr(GRID, torch.tensor([[[1, 1, 0, 0]]]), torch.tensor([[1]]))  # no silent default threshold


def test_near_ties_at_large_magnitude_are_ordered_from_the_raw_difference():
    # float32 1000.0001 is 1000.00006: 6e-8 relative above 1000. The image also spans 0..2000, so
    # any per-image rescaling in float32 (onto [0, 1] or [1, 2]) would merge the two into a tie.
    pred = t([[0.0, 1000.0, 1000.0001, 2000.0]])
    assert pred[0, 0, 0, 2] > pred[0, 0, 0, 1]
    pairs = torch.tensor([[[0, 2, 0, 1], [0, 1, 0, 2]]])
    relation = torch.tensor([[1, -1]])
    assert ordinal_accuracy(pred, pairs, relation) == 1.0
    assert whdr(pred, pairs, relation, delta=0.0) == 0.0
    assert whdr(pred, pairs, relation, delta=0.0, rescale=True) == 0.0  # rescale never applies at delta 0
    assert predicted_relation(pred, pairs, delta=0.0).tolist() == [[1, -1]]
    assert whdr(pred, pairs, -relation, delta=0.0) == 1.0
    # the same in a batch of DIW-style single pairs, one per image
    batch = pred.expand(2, -1, -1, -1)
    assert ordinal_accuracy(batch, pairs[0], relation[0]) == 1.0


def test_exact_ties_count_wrong_for_ordered_pairs():
    pred = t([[5.0, 5.0, 7.0]])
    pairs = torch.tensor([[[0, 0, 0, 1], [0, 1, 0, 0], [0, 2, 0, 0]]])  # tie, tie, A farther
    assert ordinal_accuracy(pred, pairs, torch.tensor([[1, -1, 1]])) == pytest.approx(1 / 3)
    assert whdr(pred, pairs, torch.tensor([[1, -1, 1]]), delta=0.0) == pytest.approx(2 / 3)
    assert whdr(pred, pairs, torch.tensor([[0, 0, 1]]), delta=0.0) == 0.0  # "equal" is right on a tie


def test_whdr_with_delta_zero_is_one_minus_accuracy_on_diw_style_pairs():
    torch.manual_seed(0)
    pred = torch.randn(4, 1, 16, 16)
    pairs = torch.randint(0, 16, (4, 20, 4))
    relation = torch.where(torch.rand(4, 20) > 0.5, 1, -1)
    same = (pairs[..., :2] == pairs[..., 2:]).all(-1)
    mask = ~same  # a point paired with itself would be a tie
    assert whdr(pred, pairs, relation, delta=0.0, mask=mask) == pytest.approx(
        1 - ordinal_accuracy(pred, pairs, relation, mask), abs=1e-6
    )


# ----- sample_pairs ------------------------------------------------------------------------------


def test_sample_pairs_shapes_labels_and_seed():
    torch.manual_seed(0)
    depth = torch.rand(32, 40) * 5 + 0.5
    pairs, relation = sample_pairs(depth, 200, delta=0.1, seed=3)
    assert pairs.shape == (200, 4) and pairs.dtype == torch.long and relation.shape == (200,)
    assert (pairs[:, 0] < 32).all() and (pairs[:, 1] < 40).all() and (pairs >= 0).all()
    assert ((pairs[:, :2] != pairs[:, 2:]).any(dim=1)).all()  # A != B
    d_a, d_b = depth[pairs[:, 0], pairs[:, 1]], depth[pairs[:, 2], pairs[:, 3]]
    expected = torch.where(d_a > 1.1 * d_b, 1, torch.where(d_b > 1.1 * d_a, -1, 0))
    assert torch.equal(relation, expected)
    assert set(relation.tolist()) == {-1, 0, 1}  # equal pairs included
    again, _ = sample_pairs(depth, 200, delta=0.1, seed=3)
    other, _ = sample_pairs(depth, 200, delta=0.1, seed=4)
    assert torch.equal(pairs, again) and not torch.equal(pairs, other)


def test_sample_pairs_avoids_holes_and_masked_pixels():
    depth = torch.zeros(10, 10)
    depth[2:5, 3:6] = torch.arange(1.0, 10.0).view(3, 3)
    mask = torch.ones(10, 10, dtype=torch.bool)
    mask[2, 3] = False
    pairs, _ = sample_pairs(depth, 100, mask=mask, seed=0)
    for ys, xs in ((pairs[:, 0], pairs[:, 1]), (pairs[:, 2], pairs[:, 3])):
        assert (depth[ys, xs] > 0).all() and mask[ys, xs].all()


def test_sample_pairs_equal_fraction_and_batch():
    torch.manual_seed(1)
    depth = torch.rand(3, 1, 24, 24) * 3 + 1
    pairs, relation = sample_pairs(depth, 50, equal_fraction=0.5, seed=0)
    assert pairs.shape == (3, 50, 4) and relation.shape == (3, 50)
    assert ((relation == 0).sum(dim=1) == 25).all()
    # the labels agree with WHDR's ratio test: ground truth scores a WHDR of 0 against them
    assert whdr(depth, pairs, relation, delta=0.1, rescale=False) == 0.0


def test_sample_pairs_needs_two_valid_pixels():
    depth = torch.zeros(2, 5, 5)
    depth[0, 1, 1], depth[0, 2, 2], depth[1, 3, 3] = 1.0, 2.0, 1.0
    with pytest.raises(ValueError, match="image 1 has 1 valid"):
        sample_pairs(depth, 4)


# ----- non-finite predictions ------------------------------------------------------------------


def _with_non_finite(b: int = 1) -> torch.Tensor:
    pred = torch.rand(b, 1, 64, 64) + 1
    pred[0, 0, 0, 0], pred[0, 0, 5, 7], pred[-1, 0, 63, 63] = float("nan"), float("inf"), float("-inf")
    return pred


@pytest.mark.parametrize(
    "score",
    [
        lambda p: ordinal_accuracy(p, torch.tensor([[[1, 1, 2, 2]]]), torch.tensor([[1]])),
        lambda p: whdr(p, torch.tensor([[[1, 1, 2, 2]]]), torch.tensor([[1]]), delta=0.0),
        lambda p: whdr(p, torch.tensor([[[1, 1, 2, 2]]]), torch.tensor([[1]]), delta=0.1),
        lambda p: predicted_relation(p, torch.tensor([[[1, 1, 2, 2]]]), delta=0.1),
        lambda p: normalized_mse(p, torch.rand(1, 1, 64, 64) + 1),
        lambda p: normalized_mse(p, torch.rand(1, 1, 64, 64) + 1, reduction="none"),
        lambda p: depth_metrics(p, torch.rand(1, 1, 64, 64) + 1),
        lambda p: depth_metrics(p, torch.rand(1, 1, 64, 64) + 1, align="lstsq"),
        lambda p: depth_metrics(p, torch.rand(1, 1, 480, 640) + 1, protocol="eigen"),
    ],
    ids=["ordinal_accuracy", "whdr0", "whdr", "predicted_relation", "nmse", "nmse_none",
         "depth_metrics", "depth_metrics_lstsq", "depth_metrics_eigen"],
)
def test_every_metric_rejects_non_finite_predictions(score):
    # the non-finite values sit away from the scored pair and outside the Eigen crop: still an error
    with pytest.raises(ValueError, match=r"prediction has 3 non-finite values \(NaN/inf\) of 4096"):
        score(_with_non_finite())


# ----- normalized_mse as a metric ---------------------------------------------------------------


def test_normalized_mse_metric_mean_and_per_image():
    pred = torch.cat([t([[0.0, 1.0], [2.0, 3.0]]), t([[5.0, 6.0], [7.0, 8.0]])]).requires_grad_(True)
    depth = torch.cat([t([[0.0, 2.0], [1.0, 3.0]]), t([[1.0, 2.0], [3.0, 4.0]])])
    assert normalized_mse(pred, depth) == pytest.approx(1 / 36)
    per_image = normalized_mse(pred, depth, reduction="none")
    assert per_image.shape == (2,) and not per_image.requires_grad
    assert per_image.tolist() == pytest.approx([1 / 18, 0.0])
    assert normalized_mse(pred, depth) == pytest.approx(losses.normalized_mse(pred, depth).item())
    assert torch.equal(per_image, losses.normalized_mse(pred, depth, reduction="none").detach())


def test_normalized_mse_metric_skips_images_without_valid_pixels():
    pred, depth = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3) + 1
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[1] = False
    per_image = normalized_mse(pred, depth, mask, reduction="none")
    assert math.isnan(per_image[1].item())
    assert normalized_mse(pred, depth, mask) == pytest.approx(per_image[0].item())
    with pytest.raises(ValueError, match="reduction"):
        normalized_mse(pred, depth, reduction="sum")


# ----- depth_metrics ---------------------------------------------------------------------------


def test_depth_metrics_hand_values_without_alignment():
    gt, pred = t([[1.0, 2.0], [4.0, 8.0]]), t([[1.0, 2.0], [4.0, 6.0]])
    m = depth_metrics(pred, gt, align=None)
    assert m["abs_rel"] == pytest.approx((2 / 8) / 4)
    assert m["sq_rel"] == pytest.approx((4 / 8) / 4)
    assert m["rmse"] == pytest.approx(1.0)
    assert m["rmse_log"] == pytest.approx(abs(math.log(6 / 8)) / 2)
    assert m["log10"] == pytest.approx(abs(math.log10(6 / 8)) / 4)
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((0.75, 1.0, 1.0))  # ratio 4/3


def test_depth_metrics_median_and_lstsq_alignment():
    gt = t([[1.0, 2.0], [4.0, 8.0]])
    m = depth_metrics(0.5 * gt, gt, align="median")  # median ratio 2 restores gt exactly
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-6) and m["delta1"] == 1.0
    m = depth_metrics(0.5 * gt - 3.0, gt, align="lstsq")  # negative values: scale and shift needed
    assert m["rmse"] == pytest.approx(0.0, abs=1e-5) and m["delta1"] == 1.0
    with pytest.warns(UserWarning, match="median alignment needs positive"):
        m = depth_metrics(0.5 * gt - 3.0, gt, align="median")  # falls back to least squares
    assert m["rmse"] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="align"):
        depth_metrics(gt, gt, align="mean")


def test_masked_median_is_numpy_median():
    torch.manual_seed(3)
    x = torch.randn(3, 1, 6, 5)
    valid = torch.rand(3, 1, 6, 5) > 0.4
    valid[0] = False
    valid[0, 0, :2, :2] = True  # 4 values: an even count
    valid[1, 0, 0, :3] = False  # whatever the count, compare with numpy
    got = masked_median(x, valid)
    for b in range(3):
        assert got[b].item() == pytest.approx(float(np.median(x[b][valid[b]].numpy())), abs=1e-6)
    assert math.isnan(masked_median(x, torch.zeros_like(valid))[0].item())


def test_depth_metrics_median_alignment_uses_the_true_median_on_an_even_count():
    # 4 valid pixels: median(pred) = (2 + 4) / 2 = 3 (torch.median would say 2),
    # median(gt) = (3 + 5) / 2 = 4 (torch: 3), so the scale is 4/3 (not 3/2).
    pred, gt = t([[1.0, 2.0], [4.0, 10.0]]), t([[1.0, 3.0], [5.0, 6.0]])
    p, g = pred.flatten().numpy(), gt.flatten().numpy()
    aligned = np.clip(p * np.median(g) / np.median(p), 1e-3, 10.0)
    m = depth_metrics(pred, gt, align="median")
    assert m["abs_rel"] == pytest.approx(float(np.mean(np.abs(aligned - g) / g)), rel=1e-5)
    assert m["rmse"] == pytest.approx(float(np.sqrt(np.mean((aligned - g) ** 2))), rel=1e-5)


def test_depth_metrics_valid_range_mask_and_clamp():
    # 0 (hole) and 10 m (the valid range is open, min < gt < max, as in BTS) are not scored;
    # the masked pixel neither
    gt = t([[0.0, 2.0, 10.0], [4.0, 2.0, 3.0]])
    pred = t([[50.0, 2.0, 50.0], [4.0, 1.0, 50.0]])
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[..., 1, 2] = False
    m = depth_metrics(pred, gt, mask, align=None)
    assert m["abs_rel"] == pytest.approx((0 + 0 + 0.5) / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a negative prediction is clamped, no log of a negative
        m = depth_metrics(t([[-1.0, 2.0]]), t([[1.0, 2.0]]), align=None)
    assert m["abs_rel"] == pytest.approx((1 - 1e-3) / 2)
    assert all(math.isfinite(v) for v in m.values())


def test_depth_metrics_mean_over_images_and_shapes():
    gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]], [[2.0, 0.0], [0.0, 0.0]]])  # [B, H, W]
    pred = torch.tensor([[[1.0, 2.0], [4.0, 6.0]], [[3.0, 9.0], [9.0, 9.0]]])
    m = depth_metrics(pred, gt, align=None)
    assert m["abs_rel"] == pytest.approx(((2 / 8) / 4 + 0.5) / 2)  # per image, then the mean
    with pytest.raises(ValueError, match="same shape"):
        depth_metrics(pred[:, :1], gt, align=None)
    with pytest.raises(ValueError, match="no valid ground-truth"):
        depth_metrics(pred, torch.zeros_like(gt))


def test_eigen_crop_mask_and_use():
    crop = eigen_crop_mask(480, 640)
    assert crop.sum() == 426 * 560 and crop[45, 41] and not crop[44, 41] and not crop[45, 601]
    small = eigen_crop_mask(200, 200)
    assert small[19:196, 13:188].all() and small.sum() == 177 * 175
    gt = torch.full((1, 1, 200, 200), 2.0)
    pred = gt.clone()
    pred[..., :10, :] = 9.0  # errors only in the cropped-away border
    assert depth_metrics(pred, gt, align=None, eigen_crop=True)["abs_rel"] == 0.0
    assert depth_metrics(pred, gt, align=None)["abs_rel"] > 0.0


# ----- the published NYU protocol (Eigen crop at 480 x 640) ------------------------------------


def test_eigen_protocol_scores_exactly_the_eigen_crop():
    top, bottom, left, right = EIGEN_CROP_480x640
    assert (top, bottom, left, right) == (45, 471, 41, 601)
    gt = torch.full((1, 1, 480, 640), 2.0)
    # wrong values on the four lines just outside the crop: not scored by the published protocol
    gt[..., top - 1, :] = gt[..., bottom, :] = 5.0
    gt[..., :, left - 1] = gt[..., :, right] = 5.0
    pred = torch.full((1, 1, 480, 640), 2.0)
    m = depth_metrics(pred, gt, align=None, protocol="eigen")
    assert m["abs_rel"] == 0.0 and m["rmse"] == 0.0 and m["delta1"] == 1.0
    assert depth_metrics(pred, gt, align=None, protocol="resized")["abs_rel"] > 0.0  # no crop there
    # one wrong pixel on the crop's first row and one on its last column are scored
    gt[..., top, left + 3] = gt[..., top + 7, right - 1] = 5.0
    n = (bottom - top) * (right - left)
    m = depth_metrics(pred, gt, align=None, protocol="eigen")
    assert m["abs_rel"] == pytest.approx(2 * (3 / 5) / n, rel=1e-5)
    assert m["rmse"] == pytest.approx(math.sqrt(2 * 9 / n), rel=1e-5)


def test_eigen_protocol_upsamples_bilinearly_and_averages_per_image():
    torch.manual_seed(4)
    pred = torch.rand(2, 1, 60, 80) * 3 + 1  # positive, not constant: the interpolation matters
    gt = torch.rand(2, 1, 480, 640) * 3 + 1
    gt[1, :, :240] = 0.0  # image 2 has half as many valid pixels: per image != pooled
    gt[0, 0, 100, 100] = 11.0  # beyond 10 m: not valid
    up = F.interpolate(pred, size=(480, 640), mode="bilinear", align_corners=False)
    top, bottom, left, right = EIGEN_CROP_480x640
    abs_rel, rmse = [], []
    for b in range(2):
        g, p = gt[b, 0, top:bottom, left:right].numpy(), up[b, 0, top:bottom, left:right].numpy()
        keep = (g > 1e-3) & (g < 10.0)
        g, p = g[keep].astype(np.float64), np.clip(p[keep], 1e-3, 10.0).astype(np.float64)
        abs_rel.append(np.mean(np.abs(p - g) / g))
        rmse.append(np.sqrt(np.mean((p - g) ** 2)))
    m = depth_metrics(pred, gt, align=None, protocol="eigen")
    assert m["abs_rel"] == pytest.approx(float(np.mean(abs_rel)), rel=1e-4)
    assert m["rmse"] == pytest.approx(float(np.mean(rmse)), rel=1e-4)


def test_eigen_protocol_clips_aligns_and_checks_its_frame():
    gt = torch.full((2, 1, 480, 640), 9.0)
    gt[1] = 2.0
    pred = torch.stack([torch.full((1, 120, 160), 20.0), torch.full((1, 120, 160), 4.0)])
    # image 1: 20 m clipped to 10 m -> abs_rel 1/9; image 2: 4 vs 2 -> 1; per image, then the mean
    m = depth_metrics(pred, gt, align=None, protocol="eigen")
    assert m["abs_rel"] == pytest.approx((1 / 9 + 1.0) / 2, rel=1e-5)
    assert depth_metrics(pred, gt, align="median", protocol="eigen")["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="480x640"):
        depth_metrics(pred, gt[..., :200, :200], protocol="eigen")
    with pytest.raises(ValueError, match="protocol"):
        depth_metrics(pred, gt, protocol="paper")
    assert metrics.PROTOCOLS == ("resized", "eigen")


def test_per_image_forms_average_to_the_float_metrics():
    """``depth_metrics(reduction="none")`` and ``pair_errors_per_image`` are the per-image terms of the float metrics."""
    from depthkit.metrics import pair_errors_per_image

    torch.manual_seed(0)
    pred, gt = torch.rand(5, 1, 16, 16) + 0.5, torch.rand(5, 1, 16, 16) * 5 + 1
    gt[2] = 0  # an image without a valid pixel: NaN in the per-image form, left out of the mean
    per_image = depth_metrics(pred, gt, gt > 0, align="lstsq", reduction="none")
    means = depth_metrics(pred, gt, gt > 0, align="lstsq")
    for key, values in per_image.items():
        assert values.shape == (5,) and torch.isnan(values[2]) and not torch.isnan(values[[0, 1, 3, 4]]).any()
        assert float(values.nanmean()) == pytest.approx(means[key], rel=1e-6), key
    pairs = torch.randint(0, 16, (5, 3, 4))
    relation = torch.tensor([[1, -1, 1]] * 5)
    mask = torch.ones(5, 3, dtype=torch.bool)
    mask[1, 1:] = False  # images with fewer pairs weigh each pair more: compare pair by pair on equal counts
    wrong = pair_errors_per_image(pred, pairs, relation)
    assert float(wrong.mean()) == pytest.approx(whdr(pred, pairs, relation, delta=0.0))
    assert float(1 - wrong.mean()) == pytest.approx(ordinal_accuracy(pred, pairs, relation))
    assert pair_errors_per_image(pred, pairs, relation, mask)[1] == float(whdr(pred[1:2], pairs[1:2, :1],
                                                                              relation[1:2, :1], delta=0.0))
    assert torch.isnan(pair_errors_per_image(pred, pairs, relation, torch.zeros(5, 3, dtype=torch.bool))).all()


def test_depth_metrics_names_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'none', got 'sum'"):
        depth_metrics(torch.rand(1, 1, 8, 8) + 1, torch.rand(1, 1, 8, 8) + 1, reduction="sum")
