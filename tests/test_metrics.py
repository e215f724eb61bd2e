"""Metrics: hand-computed values on tiny tensors, masks, alignment, pair sampling."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from depthkit import losses
from depthkit.metrics import (
    depth_metrics,
    eigen_crop_mask,
    normalized_mse,
    ordinal_accuracy,
    predicted_relation,
    sample_pairs,
    whdr,
)

# value 0 at (0, 0), 1 at (0, 1), 2 at (1, 0), 3 at (1, 1)
GRID = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])


def t(rows) -> torch.Tensor:
    """A [1, 1, H, W] tensor from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


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
    assert predicted_relation(GRID, pairs, delta=0.1).tolist() == [[1, 1, -1, -1]]
    assert predicted_relation(GRID, pairs, delta=0.25).tolist() == [[0, 1, 0, 0]]


def test_whdr_hand_value():
    pairs = torch.tensor([[[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 1, 1]]])
    relation = torch.tensor([[1, 0, 0]])
    # delta 0.25 predicts [0, +1, 0]: wrong, wrong, right
    assert whdr(GRID, pairs, relation, delta=0.25) == pytest.approx(2 / 3)
    # delta 0.1 predicts [+1, +1, -1]: right, wrong, wrong
    assert whdr(GRID, pairs, relation, delta=0.1) == pytest.approx(2 / 3)
    assert whdr(GRID, pairs, torch.tensor([[0, 1, 0]]), delta=0.25) == 0.0


def test_whdr_raw_positive_depth_and_its_guard():
    depth = t([[1.0, 1.05], [2.0, 4.0]])
    pairs = torch.tensor([[[0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0]]])  # ratios 1.05, 2, 0.5
    assert predicted_relation(depth, pairs, delta=0.1, rescale=False).tolist() == [[0, 1, -1]]
    assert whdr(depth, pairs, torch.tensor([[0, 1, -1]]), rescale=False) == 0.0
    with pytest.raises(ValueError, match="positive"):
        whdr(depth - 2, pairs, torch.tensor([[0, 1, -1]]), rescale=False)


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


# ----- normalized_mse as a metric ---------------------------------------------------------------


def test_normalized_mse_metric_mean_and_per_image():
    pred = torch.cat([t([[0.0, 1.0], [2.0, 3.0]]), t([[5.0, 6.0], [7.0, 8.0]])]).requires_grad_(True)
    depth = torch.cat([t([[0.0, 2.0], [1.0, 3.0]]), t([[1.0, 2.0], [3.0, 4.0]])])
    assert normalized_mse(pred, depth) == pytest.approx(1 / 36)
    per_image = normalized_mse(pred, depth, reduction="none")
    assert per_image.shape == (2,) and not per_image.requires_grad
    assert per_image.tolist() == pytest.approx([1 / 18, 0.0])
    assert normalized_mse(pred, depth) == pytest.approx(losses.normalized_mse(pred, depth).item())


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


def test_depth_metrics_valid_range_mask_and_clamp():
    # 0 (hole) and 12 m (beyond 10 m) are not scored; the masked pixel neither
    gt = t([[0.0, 2.0, 12.0], [4.0, 2.0, 3.0]])
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
