"""Losses: hand-computed values on tiny tensors, gradients, masks, padded pairs, constant maps."""
from __future__ import annotations

import math

import pytest
import torch

from depthkit import losses
from depthkit.losses import normalized_mse, ranking_loss, ssi_loss
from depthkit.tensors import align_scale_shift, check_pairs, normalize_depth, pair_values

from helpers import GRID, t  # tests/helpers.py: shared with the metric (loss) tests


# ----- normalize_depth -----------------------------------------------------------------------


def test_normalize_depth_min_max():
    out = normalize_depth(t([[1.0, 3.0], [2.0, 5.0]]))
    assert torch.allclose(out, t([[0.0, 0.5], [0.25, 1.0]]))


def test_normalize_depth_uses_valid_pixels_only():
    mask = t([[1, 1], [1, 0]]).bool()
    out = normalize_depth(t([[1.0, 3.0], [2.0, 99.0]]), mask)
    assert torch.allclose(out, t([[0.0, 1.0], [0.5, 0.0]]))  # the masked 99 neither counts nor shows


def test_normalize_depth_constant_map_is_zero_without_nan_gradient():
    x = torch.full((2, 1, 3, 3), 4.0, requires_grad=True)
    out = normalize_depth(x)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_normalize_depth_accepts_bhw_and_nan_holes():
    depth = torch.tensor([[[1.0, float("nan")], [3.0, 2.0]]])  # [B, H, W] with a NaN hole
    out = normalize_depth(depth)
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out, t([[0.0, 0.0], [1.0, 0.5]]))


# ----- normalized_mse ------------------------------------------------------------------------


def test_normalized_mse_hand_value():
    # pred -> [0, 1/3, 2/3, 1], depth -> [0, 2/3, 1/3, 1]: squared errors 0, 1/9, 1/9, 0
    pred, depth = t([[0.0, 1.0], [2.0, 3.0]]), t([[0.0, 2.0], [1.0, 3.0]])
    assert normalized_mse(pred, depth).item() == pytest.approx(1 / 18)


def test_normalized_mse_is_mean_over_images():
    pred = torch.cat([t([[0.0, 1.0], [2.0, 3.0]]), t([[5.0, 6.0], [7.0, 8.0]])])
    depth = torch.cat([t([[0.0, 2.0], [1.0, 3.0]]), t([[1.0, 2.0], [3.0, 4.0]])])
    assert normalized_mse(pred, depth).item() == pytest.approx((1 / 18 + 0.0) / 2)


def test_normalized_mse_ignores_invariant_scale_and_shift():
    torch.manual_seed(0)
    pred, depth = torch.randn(3, 1, 5, 6), torch.rand(3, 1, 5, 6) + 1
    assert normalized_mse(2.5 * pred + 7, 3 * depth).item() == pytest.approx(normalized_mse(pred, depth).item(), rel=1e-5)


def test_normalized_mse_mask_removes_pixels():
    # with (1, 1) masked: pred [0, 1, 2] -> [0, .5, 1]; depth [0, 2, 1] -> [0, 1, .5]
    pred, depth = t([[0.0, 1.0], [2.0, 3.0]]), t([[0.0, 2.0], [1.0, 0.0]])
    mask = depth > 0
    mask[..., 0, 0] = True
    assert normalized_mse(pred, depth, mask).item() == pytest.approx((0 + 0.25 + 0.25) / 3)


def test_normalized_mse_constant_prediction():
    # pred -> all 0; depth -> [0, 1/3, 2/3, 1]: mean of squares = (0 + 1 + 4 + 9) / 9 / 4
    pred = torch.full((1, 1, 2, 2), 0.3, requires_grad=True)
    loss = normalized_mse(pred, t([[0.0, 1.0], [2.0, 3.0]]))
    assert loss.item() == pytest.approx(14 / 36)
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_normalized_mse_constant_maps_and_empty_masks_give_no_nan():
    pred = torch.ones(2, 1, 3, 3, requires_grad=True)
    assert normalized_mse(pred, torch.ones(2, 1, 3, 3)).item() == 0.0
    loss = normalized_mse(pred, torch.rand(2, 1, 3, 3), torch.zeros(2, 1, 3, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_normalized_mse_reduction_none_is_per_image_with_gradient():
    pred = torch.cat([t([[0.0, 1.0], [2.0, 3.0]]), t([[5.0, 6.0], [7.0, 8.0]])]).requires_grad_(True)
    depth = torch.cat([t([[0.0, 2.0], [1.0, 3.0]]), t([[1.0, 2.0], [3.0, 4.0]])])
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[1] = False  # the second image has no valid pixel: NaN per image, skipped by the mean
    per_image = normalized_mse(pred, depth, mask, reduction="none")
    assert per_image.shape == (2,) and per_image.requires_grad
    assert per_image[0].item() == pytest.approx(1 / 18) and math.isnan(per_image[1].item())
    assert normalized_mse(pred, depth, mask).item() == pytest.approx(1 / 18)
    with pytest.raises(ValueError, match="reduction"):
        normalized_mse(pred, depth, reduction="sum")


@pytest.mark.parametrize("loss", [normalized_mse, losses.ssi_loss])
def test_a_non_finite_prediction_makes_the_loss_non_finite(loss):
    """Catches: a NaN or inf prediction skipped like a depth hole, which gave a finite training loss
    and hid a diverging NYU run. Images without valid depth are still left out of the mean."""
    torch.manual_seed(0)
    depth = torch.rand(3, 1, 6, 6) + 0.5
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[2] = False  # image 2 has no valid depth: whatever is predicted there does not count
    for bad in (float("nan"), float("inf")):
        pred = torch.rand(3, 1, 6, 6)
        pred[0, 0, 2, 3] = bad
        assert not torch.isfinite(loss(pred, depth, mask)), bad
        pred = torch.rand(3, 1, 6, 6)
        clean = loss(pred, depth, mask)
        pred[2] = bad
        assert loss(pred, depth, mask).item() == pytest.approx(clean.item())
    assert normalized_mse(torch.full((3, 1, 6, 6), float("nan")), depth, mask, reduction="none")[:2].isnan().all()


def test_normalized_mse_gradient_flows():
    pred = torch.randn(2, 1, 4, 4, requires_grad=True)
    normalized_mse(pred, torch.rand(2, 1, 4, 4)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


# ----- ssi_loss --------------------------------------------------------------------------------


def test_ssi_loss_hand_value():
    # target [0, 1/3, 2/3, 1]; best fit of pred [0, 0, 1, 1] is 2/3 * pred + 1/6 = [1/6, 1/6, 5/6, 5/6]
    # residuals +-1/6, squared 1/36 each: MiDaS's 1/(2M) * sum = 1/(2*4) * 4/36 = 1/72
    loss = ssi_loss(t([[0.0, 0.0], [1.0, 1.0]]), t([[0.0, 1.0], [2.0, 3.0]]))
    assert loss.item() == pytest.approx(1 / 72, rel=1e-5)


def test_ssi_loss_matches_midas_half_mean_square_worked_example():
    # Image 1: depth [1, 2, 4] -> min-max target d* = [0, 1/3, 1] (mean 4/9); pred d = [0, 1, 2] (mean 1).
    #   least squares: s = cov / var = (1/3) / (2/3) = 1/2, t = 4/9 - 1/2 * 1 = -1/18
    #   s * d + t = [-1/18, 8/18, 17/18]; d* = [0, 6/18, 18/18]; residuals [-1, 2, -1] / 18
    #   L_ssimse = 1/(2M) * sum r^2 = 1/(2 * 3) * 6/324 = 1/324   (MiDaS, Ranftl et al. TPAMI 2020)
    # Image 2: an exact affine copy of its depth, with a masked garbage pixel: loss 0.
    # The batch loss is the mean over images: (1/324 + 0) / 2 = 1/648.
    pred = torch.tensor([[[[0.0, 1.0, 2.0]]], [[[3.0, 5.0, 99.0]]]])
    depth = torch.tensor([[[[1.0, 2.0, 4.0]]], [[[1.0, 2.0, 0.0]]]])
    mask = depth > 0
    assert ssi_loss(pred[:1], depth[:1]).item() == pytest.approx(1 / 324, rel=1e-5)
    assert ssi_loss(pred, depth, mask).item() == pytest.approx(1 / 648, rel=1e-5)
    # the same number from first principles, with M counted explicitly
    aligned = 0.5 * pred[0].flatten() - 1 / 18
    target = torch.tensor([0.0, 1 / 3, 1.0])
    assert ((aligned - target) ** 2).sum().item() / (2 * 3) == pytest.approx(1 / 324, rel=1e-5)


def test_ssi_loss_zero_for_any_affine_copy():
    torch.manual_seed(1)
    depth = torch.rand(2, 1, 6, 6) + 0.5
    assert ssi_loss(3 * depth - 2, depth).item() == pytest.approx(0.0, abs=1e-10)
    assert ssi_loss(-depth, depth).item() == pytest.approx(0.0, abs=1e-10)  # the sign is not fixed


def test_ssi_loss_constant_prediction_is_target_variance_without_nan():
    pred = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss = ssi_loss(pred, t([[0.0, 1.0], [2.0, 3.0]]))
    assert loss.item() == pytest.approx(5 / 72)  # half the variance of [0, 1/3, 2/3, 1]
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_ssi_loss_never_exceeds_half_normalized_mse():
    # min-max normalization is one candidate scale and shift; SSI carries MiDaS's 1/2
    torch.manual_seed(2)
    for _ in range(5):
        pred, depth = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
        assert 2 * ssi_loss(pred, depth).item() <= normalized_mse(pred, depth).item() + 1e-7


def test_ssi_loss_mask():
    # masked pixel (1, 1) holds garbage; the rest is an exact affine copy
    pred, depth = t([[0.0, 1.0], [2.0, 50.0]]), t([[1.0, 2.0], [3.0, 0.0]])
    assert ssi_loss(pred, depth, depth > 0).item() == pytest.approx(0.0, abs=1e-10)


def test_align_scale_shift_hand_value():
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    aligned = align_scale_shift(t([[0.0, 0.0], [1.0, 1.0]]), t([[0.0, 1.0], [2.0, 3.0]]), valid)
    assert torch.allclose(aligned, t([[0.5, 0.5], [2.5, 2.5]]))  # s = 2, t = 0.5


# ----- pair_values / ranking_loss -------------------------------------------------------------


def test_pair_values_gathers_per_image():
    pred = torch.cat([GRID, GRID + 10])
    pairs = torch.tensor([[[0, 0, 1, 1], [1, 0, 0, 1]], [[0, 1, 1, 0], [1, 1, 1, 1]]])
    z_a, z_b = pair_values(pred, pairs)
    assert torch.equal(z_a, torch.tensor([[0.0, 2.0], [11.0, 13.0]]))
    assert torch.equal(z_b, torch.tensor([[3.0, 1.0], [12.0, 13.0]]))


def test_pair_values_rejects_points_outside_the_image():
    with pytest.raises(ValueError, match=r"pairs\[0, 1\].*outside the 2x2"):
        pair_values(GRID, torch.tensor([[[0, 0, 1, 1], [0, 2, 1, 1]]]))


def test_ranking_loss_hand_value():
    pairs = torch.tensor([[[0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]]])
    relation = torch.tensor([[1, 1, 0]])
    # A=0, B=3, r=+1: log(1+e^3); A=3, B=0, r=+1: log(1+e^-3); A=1, B=2, r=0: (1-2)^2
    expected = (math.log1p(math.exp(3)) + math.log1p(math.exp(-3)) + 1.0) / 3
    assert ranking_loss(GRID, pairs, relation).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_loss_sign_convention():
    pairs = torch.tensor([[[1, 1, 0, 0]]])  # A holds 3, B holds 0: A is farther in the prediction
    farther = ranking_loss(GRID, pairs, torch.tensor([[1]])).item()
    closer = ranking_loss(GRID, pairs, torch.tensor([[-1]])).item()
    assert farther == pytest.approx(math.log1p(math.exp(-3)))
    assert closer == pytest.approx(math.log1p(math.exp(3)))


def test_ranking_loss_gradient_direction():
    pairs = torch.tensor([[[0, 0, 1, 1]]])
    for r, sign in ((1, -1.0), (-1, 1.0)):
        pred = GRID.clone().requires_grad_(True)
        ranking_loss(pred, pairs, torch.tensor([[r]])).backward()
        # r = +1 (A farther): raising z_A lowers the loss, so d loss / d z_A < 0 and d / d z_B > 0
        assert torch.sign(pred.grad[0, 0, 0, 0]) == sign
        assert torch.sign(pred.grad[0, 0, 1, 1]) == -sign
    pred = GRID.clone().requires_grad_(True)
    ranking_loss(pred, torch.tensor([[[1, 1, 0, 0]]]), torch.tensor([[0]])).backward()
    assert pred.grad[0, 0, 1, 1] == pytest.approx(6.0)  # d/dz_A (z_A - z_B)^2 = 2 * 3: pulls A down
    assert pred.grad[0, 0, 0, 0] == pytest.approx(-6.0)


def test_ranking_loss_sign_is_pinned():
    # A = (0, 1) holds 2.0, B = (0, 0) holds 1.0: the prediction says "A farther"
    pred = t([[1.0, 2.0]])
    pairs = torch.tensor([[[0, 1, 0, 0]]])
    agree = ranking_loss(pred, pairs, torch.tensor([[1]])).item()  # annotation: A farther
    disagree = ranking_loss(pred, pairs, torch.tensor([[-1]])).item()
    assert agree < disagree
    for r in (1, -1):  # one gradient step moves z_A - z_B in the annotated direction
        z = pred.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([z], lr=1.0)
        ranking_loss(z, pairs, torch.tensor([[r]])).backward()
        optimizer.step()
        gap_after = (z[0, 0, 0, 1] - z[0, 0, 0, 0]).item()
        assert (gap_after - 1.0) * r > 0, (r, gap_after)


def test_ranking_loss_equal_pairs_zero_when_equal():
    pred = torch.zeros(1, 1, 3, 3)
    pairs = torch.tensor([[[0, 0, 2, 2], [1, 1, 0, 2]]])
    assert ranking_loss(pred, pairs, torch.zeros(1, 2, dtype=torch.long)).item() == 0.0


def test_ranking_loss_padded_pairs_are_ignored():
    pairs = torch.tensor([[[0, 0, 1, 1], [99, -5, 7, 7]], [[1, 0, 0, 1], [0, 0, 0, 0]]])
    relation = torch.tensor([[1, 5], [-1, 0]])  # padding may hold any relation value too
    mask = torch.tensor([[True, False], [True, False]])
    pred = torch.cat([GRID, GRID])
    expected = (math.log1p(math.exp(3)) + math.log1p(math.exp(1))) / 2  # diff -3, r=+1; diff +1, r=-1
    assert ranking_loss(pred, pairs, relation, mask).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_loss_one_pair_per_image_shapes():
    pred = torch.cat([GRID, GRID])
    pairs, relation = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]), torch.tensor([1, -1])
    expected = (math.log1p(math.exp(3)) + math.log1p(math.exp(-3))) / 2
    assert ranking_loss(pred, pairs, relation).item() == pytest.approx(expected, rel=1e-6)
    assert ranking_loss(pred, pairs[:, None], relation[:, None]).item() == pytest.approx(expected, rel=1e-6)


def test_ranking_loss_is_stable_for_large_differences():
    pred = t([[0.0, 1000.0]]).requires_grad_(True)
    loss = ranking_loss(pred, torch.tensor([[[0, 1, 0, 0]]]), torch.tensor([[-1]]))  # badly wrong
    assert loss.item() == pytest.approx(1000.0)
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_check_pairs_shapes():
    pairs, relation, mask = check_pairs(torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]]), torch.tensor([1, -1]))
    assert pairs.shape == (2, 1, 4) and pairs.dtype == torch.long
    assert relation.shape == (2, 1) and mask.dtype == torch.bool and mask.all()
    with pytest.raises(ValueError, match=r"pairs must be \[B, P, 4\]"):
        check_pairs(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="pair mask"):
        check_pairs(torch.zeros(1, 2, 4, dtype=torch.long), torch.zeros(1, 2), torch.ones(1, 3, dtype=torch.bool))


def test_ranking_loss_rejects_bad_relation():
    with pytest.raises(ValueError, match=r"relation\[0, 0\] = 2"):
        ranking_loss(GRID, torch.tensor([[[0, 0, 1, 1]]]), torch.tensor([[2]]))
