"""Checks for the notebooks' implement-it exercises (02–05), against an answer key the capstone cannot change.

Each ``check_*(fn, hidden=False)`` runs the student's function on its cases (random inputs and the
edge cases that matter: masked pixels, an image without a valid pixel, r = 0 pairs, exact ties,
flipped images, a batch of one) and compares with the answer key: what depthkit's own
implementation returned on the same cases, computed once (:data:`SPECS`' references, in float64)
and stored in ``answer_key.json`` (``python -m depthkit.course.answer_key --write``;
``tests/test_exercises.py`` checks that the library still reproduces it). 04.1 has no stored
key: what it expects follows from the model's structure (the parameters under ``model.encoder``),
so it holds whatever torchvision or smp version builds the models. ``hidden=True`` runs a second,
different set of cases (the nbgrader hidden tests) and prints its own PASS line.

The student's function runs with depthkit out of reach (:func:`depthkit.course.checks.call`): an
answer that calls ``losses.normalized_mse``, ``metrics.whdr``, ``data.loader.augment``,
``train.learning_rate``, ``models.freeze_encoder`` or any other depthkit function (building blocks
such as ``tensors.normalize_depth`` and ``depthkit.course`` included) is refused in one line. Only
04.1 may use one piece of depthkit: the ``model.encoder`` property its docstring names.

The checks follow the courses that teach this way: CS231n compares a student's layer with a
reference at once; Otter-Grader's ``grader.check("q1")`` answers in the notebook.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from depthkit.course.checks import (Case, ExerciseError, call, changed_inputs, clone_args, close, expected_answers,
                                    integers, passed, run_cases, uniform)

__all__ = ["check_normalized_mse", "check_ranking_loss", "check_whdr", "check_combine_maps", "check_align_scale_shift",
           "check_paired_band", "check_set_encoder_trainable", "check_train_steps", "check_hflip_batch", "check_cosine_lr",
           "CHECKS", "SPECS"]


@dataclass(frozen=True)
class Spec:
    """An exercise's title, its cases (visible or hidden) and the reference that wrote its answer key."""

    title: str
    cases: Callable[[bool], list[Case]]
    reference: Callable[[Case], Any] | None  # a case -> depthkit's answer as JSON data (None: 04.1, no stored key)


# --------------------------------------------------------------------------------------------
# 02.1 · normalized MSE
# --------------------------------------------------------------------------------------------


def _nmse_inputs(b: int, h: int, w: int, seed: int, holes: float = 0.0, flat: int | None = None,
                 uneven: bool = False, empty: int | None = None, flat_depth: int | None = None) -> Callable[[], tuple]:
    def make() -> tuple:
        depth = uniform(seed, (b, 1, h, w), 0.5, 10.0)
        pred = uniform(seed + 1, (b, 1, h, w), -2.0, 2.0)
        draw = uniform(seed + 2, (b, h * w))  # the same number of holes in every image: round(holes * H * W)
        mask = (draw.argsort(dim=1).argsort(dim=1) >= round(holes * h * w)).reshape(b, 1, h, w)
        if uneven:  # image 0 keeps only a few pixels, the others all of theirs
            mask[1:] = True
            mask[0] = False
            mask[0, 0, :2, :3] = True
        if empty is not None:
            mask[empty] = False
        depth = torch.where(mask, depth, torch.zeros_like(depth))  # Kinect-style holes: depth 0 ...
        pred = torch.where(mask, pred, torch.full_like(pred, 50.0))  # ... where the prediction is wild
        if flat is not None:
            pred[flat] = 3.0
        if flat_depth is not None:
            depth[flat_depth] = torch.where(mask[flat_depth], 2.5, 0.0)
        return pred, depth, mask

    return make


def _nmse_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("2 images, 7 x 3, every pixel valid", _nmse_inputs(2, 7, 3, 200)),
            Case("half the pixels are holes", _nmse_inputs(3, 6, 6, 210, holes=0.5)),
            Case("a flat (constant) depth map in image 1", _nmse_inputs(2, 5, 6, 220, flat_depth=1, holes=0.1)),
            Case("the first image without a valid pixel", _nmse_inputs(2, 4, 4, 230, empty=0)),
            Case("batch of one with holes", _nmse_inputs(1, 6, 5, 240, holes=0.3)),
            Case("gradient, with an image without a valid pixel (no NaN)",
                 _nmse_inputs(3, 4, 4, 250, holes=0.2, empty=2), grad=True),
        ]
    return [
        Case("3 images, every pixel valid (each normalised on its own)", _nmse_inputs(3, 5, 6, 100)),
        Case("batch of one", _nmse_inputs(1, 4, 4, 110)),
        Case("masked pixels (holes with wild predictions)", _nmse_inputs(2, 6, 6, 120, holes=0.3)),
        Case("images with different numbers of valid pixels (a mean per image, then over images)",
             _nmse_inputs(3, 6, 8, 130, uneven=True)),
        Case("a flat (constant) prediction in image 0", _nmse_inputs(2, 5, 5, 140, flat=0)),
        Case("an image without a valid pixel (left out of the mean)", _nmse_inputs(3, 4, 5, 150, holes=0.2, empty=1)),
        Case("non-square images (H != W)", _nmse_inputs(2, 3, 7, 160, holes=0.2)),
        Case("the gradient with respect to pred (a training loss)", _nmse_inputs(2, 4, 5, 170, holes=0.25), grad=True),
    ]


def _loss_answer(loss: Callable[..., Tensor]) -> Callable[[Case], Any]:
    """The key of a loss exercise: depthkit's value in float64, and for a gradient case the gradient too."""
    def answer(case: Case) -> Any:
        pred, *rest = case.args()
        pred = pred.double().requires_grad_(case.grad)
        value = loss(pred, *(r.double() if r.is_floating_point() else r for r in rest))
        if not case.grad:
            return float(value)
        value.backward()
        return {"value": float(value.detach()), "grad": pred.grad.tolist()}

    return answer


def _reference_nmse(pred: Tensor, depth: Tensor, mask: Tensor) -> Tensor:
    from depthkit import losses

    return losses.normalized_mse(pred, depth, mask)


def _loss_problem(want: Any, got: Any) -> str | None:
    """A training loss comes back as a 0-dim float tensor matching the key."""
    if not isinstance(got, Tensor):
        return f"expected a 0-dim tensor (a training loss keeps its gradient), got {type(got).__name__}"
    if got.dim() != 0 or not got.is_floating_point():
        return f"expected a 0-dim float tensor, got shape {tuple(got.shape)} of {got.dtype}"
    return close(want, got)


def check_loss(title: str, fn: Callable, cases: list[Case], expected: list, hidden: bool) -> None:
    """A loss exercise: each value case, then each gradient case (value, grad kept, gradient against the key)."""
    values = [(c, e) for c, e in zip(cases, expected) if not c.grad]
    run_cases(title, fn, [c for c, _ in values], [e for _, e in values], _loss_problem, say_pass=False)
    for case, want in zip(cases, expected):
        if not case.grad:
            continue
        args = case.args()
        mine = clone_args(args)
        mine[0].requires_grad_(True)
        out = call(title, case, fn, mine)
        problem = _loss_problem(want["value"], out)
        if problem is None and not out.requires_grad:
            problem = "the result has no gradient (return a tensor built from pred, no .item(), detach or numpy)"
        if problem is None:
            try:
                out.backward()
                problem = close(want["grad"], mine[0].grad) if mine[0].grad is not None \
                    else "no gradient reached pred"
            except RuntimeError as err:
                problem = f"backward() failed: {str(err).splitlines()[0][:120]}"
        if problem is not None:
            raise ExerciseError(f"{title}: FAIL on case '{case.name}': {problem}")
    passed(title, len(cases), hidden, " (values and the gradient)")


def check_normalized_mse(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 02.1: ``fn(pred, depth, mask)``, the report's normalized MSE: value, 0-dim tensor, gradient."""
    cases = _nmse_cases(hidden)
    check_loss("Exercise 02.1 (normalized MSE)", fn, cases, expected_answers("02.1", hidden, len(cases)), hidden)


# --------------------------------------------------------------------------------------------
# 02.2 · ranking loss, 02.3 · WHDR: pairs of points
# --------------------------------------------------------------------------------------------


def _pred(kind: str, seed: int, b: int, h: int, w: int | None = None, lo: float = -2.0, hi: float = 2.0) -> Tensor:
    """``[B, 1, H, W]`` predictions: ``random``; ``symmetric`` (pred[y, x] = pred[x, y]); ``shift``
    (pred[y, x] = f(x - y): a 1-based reading of the same diagonal gives the same value); ``even`` (both)."""
    w = w or h
    if kind == "random":
        return uniform(seed, (b, 1, h, w), lo, hi)
    if kind == "symmetric":
        m = uniform(seed, (b, 1, h, h), lo, hi)
        return (m + m.transpose(-1, -2)) / 2
    f = uniform(seed, (b, 2 * h - 1), lo, hi)
    if kind == "even":
        f = (f + f.flip(-1)) / 2
    diagonal = torch.arange(h)[None, :] - torch.arange(h)[:, None] + h - 1  # [y, x] -> x - y + h - 1
    return f[:, diagonal][:, None]


def _one_pair(kind: str, seed: int, a: tuple[int, int], b: tuple[int, int], r: int, n: int = 5) -> Callable[[], tuple]:
    return lambda: (_pred(kind, seed, 1, n), torch.tensor([[[*a, *b]]]), torch.tensor([[r]]))


def _pair_inputs(b: int, p: int, h: int, w: int, seed: int, relations=(-1, 0, 1), lo: float = -2.0, hi: float = 2.0,
                 border: bool = False, ties: bool = False, shared: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        pred = _pred("random", seed, b, h, w, lo, hi)
        ys, xs = integers(seed + 1, (b, p, 2), h), integers(seed + 2, (b, p, 2), w)
        if border:  # the first pair joins the last row and column with the first
            ys[:, 0] = torch.tensor([h - 1, 0])
            xs[:, 0] = torch.tensor([w - 1, 0])
        pairs = torch.stack([ys[..., 0], xs[..., 0], ys[..., 1], xs[..., 1]], dim=-1)
        if shared:  # pair 1 starts where pair 0 starts: one pixel feeds two pairs
            pairs[:, 1, :2] = pairs[:, 0, :2]
        relation = torch.tensor(relations)[integers(seed + 3, (b, p), len(relations))]
        if ties:  # B's pixel takes A's value exactly
            image = torch.arange(b)[:, None].expand(b, p)
            pred[image, 0, pairs[..., 2], pairs[..., 3]] = pred[image, 0, pairs[..., 0], pairs[..., 1]]
        return pred, pairs, relation

    return make


def _ranking_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("one pair in each of 2 images, r = +1 and -1", _pair_inputs(2, 1, 4, 6, 400, relations=(-1, 1))),
            Case("r = 0 pairs only (3 images, 3 pairs each)", _pair_inputs(3, 3, 5, 5, 401, relations=(0,))),
            Case("pairs whose two points hold the same value", _pair_inputs(2, 4, 4, 4, 402, ties=True)),
            Case("6 x 4 images, 6 pairs each, border points", _pair_inputs(2, 6, 6, 4, 403, border=True)),
            Case("large differences on r = 0 pairs (squared)", _pair_inputs(2, 3, 5, 5, 404, relations=(0, 1), lo=-50, hi=50)),
            Case("gradient, a pixel shared by two pairs, r = 0 included", _pair_inputs(2, 4, 5, 5, 405, shared=True), grad=True),
        ]
    return [
        Case("one pair, r = +1 (A farther)", _one_pair("even", 300, (1, 3), (3, 2), 1)),
        Case("one pair, r = -1 (A closer)", _one_pair("even", 301, (2, 4), (4, 1), -1)),
        Case("one pair, r = 0 (equal): the squared difference", _one_pair("even", 302, (3, 1), (1, 2), 0)),
        Case("0-based (y, x): row 0 and column 0 are pixels too", _one_pair("symmetric", 303, (0, 3), (4, 0), 1)),
        Case("pairs hold (y, x): the row first, then the column", _one_pair("shift", 304, (1, 4), (3, 2), -1)),
        Case("the mean over the pairs (4 pairs in one image)", _pair_inputs(1, 4, 5, 5, 305)),
        Case("each pair reads its own image (3 images, one pair each)", _pair_inputs(3, 1, 5, 5, 306)),
        Case("r = 0 pairs among ordered ones (3 images, 5 pairs each)", _pair_inputs(3, 5, 6, 6, 307)),
        Case("points on the first and last row and column, non-square (5 x 9)", _pair_inputs(2, 4, 5, 9, 308, border=True)),
        Case("large depth differences (|z_A - z_B| up to ~300)",
             _pair_inputs(2, 4, 6, 6, 309, relations=(-1, 1), lo=-150, hi=150)),
        Case("the gradient with respect to pred (2 images, 4 pairs each)", _pair_inputs(2, 4, 5, 5, 310), grad=True),
    ]


def _reference_ranking(pred: Tensor, pairs: Tensor, relation: Tensor) -> Tensor:
    from depthkit import losses

    return losses.ranking_loss(pred, pairs, relation)


def check_ranking_loss(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 02.2: ``fn(pred, pairs, relation)``, Chen et al.'s ranking loss: value, 0-dim tensor, gradient."""
    cases = _ranking_cases(hidden)
    check_loss("Exercise 02.2 (ranking loss)", fn, cases, expected_answers("02.2", hidden, len(cases)), hidden)


def _with_delta(make: Callable[[], tuple], delta: float, positive: bool = True) -> Callable[[], tuple]:
    def build() -> tuple:
        pred, pairs, relation = make()
        return (pred.abs() + 0.5 if positive else pred), pairs, relation, delta
    return build


def _fixed(values: list[float], pairs: list[list[int]], relation: list[int], delta: float) -> Callable[[], tuple]:
    """One image of one row holding ``values``; pairs as (ya, xa, yb, xb)."""
    return lambda: (torch.tensor([[values]]).unsqueeze(0), torch.tensor([pairs]), torch.tensor([relation]), delta)


def _agreeing(make: Callable[[], tuple], delta: float, flip: bool) -> Callable[[], tuple]:
    """Relations that the ratio test on pred itself gives (``flip``: their opposite, every pair wrong)."""
    def build() -> tuple:
        pred, pairs, _, _ = _with_delta(make, delta)()
        image = torch.arange(pred.shape[0])[:, None]
        z_a, z_b = pred[image, 0, pairs[..., 0], pairs[..., 1]].double(), pred[image, 0, pairs[..., 2], pairs[..., 3]].double()
        relation = (z_a > (1 + delta) * z_b).long() - (z_b > (1 + delta) * z_a).long()
        if flip:
            relation = torch.where(relation == 0, torch.ones_like(relation), -relation)
        return pred, pairs, relation, delta
    return build


def _whdr_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("delta = 0.05, 2 images, 8 pairs each", _with_delta(_pair_inputs(2, 8, 5, 5, 600), 0.05)),
            Case("delta = 0.1, no pair wrong (WHDR 0)", _agreeing(_pair_inputs(2, 5, 4, 4, 601), 0.1, flip=False)),
            Case("delta = 0.1, every pair wrong (WHDR 1)", _agreeing(_pair_inputs(2, 5, 4, 4, 602), 0.1, flip=True)),
            Case("delta = 0.5, 5 x 3 images", _with_delta(_pair_inputs(3, 4, 5, 3, 603), 0.5)),
            Case("delta = 0, exact ties on r = 0 pairs (right)",
                 _with_delta(_pair_inputs(2, 4, 4, 4, 604, relations=(0,), ties=True), 0.0)),
        ]
    return [
        Case("delta = 0: the share of wrong pairs, not their number (6 ordered pairs)",
             _with_delta(_pair_inputs(1, 6, 4, 4, 500, relations=(-1, 1)), 0.0)),
        Case("delta = 0.25, r = 0 pairs: 'equal' while the ratio stays within 1 + delta",
             _fixed([1.0, 1.1, 0.95, 2.0, 1.5], [[0, 1, 0, 0], [0, 2, 0, 1], [0, 3, 0, 0], [0, 0, 0, 4], [0, 4, 0, 3]],
                    [0, 0, 1, 0, 0], 0.25)),
        Case("delta = 0.1: a ratio, not a difference (far points, ratio 1.05)",
             _fixed([10.0, 10.5, 20.0, 30.0], [[0, 1, 0, 0], [0, 0, 0, 1], [0, 3, 0, 2], [0, 2, 0, 0]], [0, 0, 1, 1], 0.1)),
        Case("delta = 0: an exact tie is 'equal', so wrong for r = +1 or -1",
             _with_delta(_pair_inputs(2, 5, 5, 5, 501, relations=(-1, 1), ties=True), 0.0)),
        Case("delta = 0.1, random positive depths (3 images, 6 pairs each)", _with_delta(_pair_inputs(3, 6, 6, 6, 502), 0.1)),
        Case("batch of one, one pair", _with_delta(_pair_inputs(1, 1, 4, 4, 503, relations=(-1, 1)), 0.1)),
        Case("delta = 0.02, non-square (4 x 9), border points", _with_delta(_pair_inputs(2, 4, 4, 9, 504, border=True), 0.02)),
    ]


def _whdr_answer(case: Case) -> float:
    from depthkit import metrics

    pred, pairs, relation, delta = case.args()
    return metrics.whdr(pred.double(), pairs, relation, delta=delta)


def _share_problem(want: float, got: Any) -> str | None:
    """A Python float (a share of pairs: float32 arithmetic is fine), equal to the key's."""
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        hint = " (a tensor's .item() is one)" if isinstance(got, Tensor) else ""
        return f"expected a Python float{hint}, got {type(got).__name__}"
    return close(want, float(got), rtol=0, atol=1e-6)


def check_whdr(fn: Callable[[Tensor, Tensor, Tensor, float], float], hidden: bool = False) -> None:
    """Exercise 02.3: ``fn(pred, pairs, relation, delta)``, WHDR with the ratio test, a float (float32 work is fine)."""
    cases = _whdr_cases(hidden)
    run_cases("Exercise 02.3 (WHDR at delta)", fn, cases, expected_answers("02.3", hidden, len(cases)),
              _share_problem, hidden=hidden)


# --------------------------------------------------------------------------------------------
# 03.1 · the 21 -> 1 head
# --------------------------------------------------------------------------------------------


class _MapsAsOutput(nn.Module):
    """Stands in for LR-ASPP inside :class:`depthkit.models.LRASPPDepth`: its input *is* the maps."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": x}


def _combine_answer(case: Case) -> list:
    """depthkit's LR-ASPP head with the case's 1x1 weights, on the case's maps, in float64."""
    from depthkit.models import LRASPPDepth

    maps, weight, bias = (t.double() for t in case.args())
    head = LRASPPDepth(_MapsAsOutput(), in_maps=maps.shape[1]).double()
    with torch.no_grad():
        head.combine.weight.copy_(weight.reshape(1, -1, 1, 1))
        head.combine.bias.copy_(bias.reshape(1))
        return head(maps).tolist()


def _maps(b: int, c: int, h: int, w: int, seed: int, bias: float | None = None, zero_weights: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        maps, weight = uniform(seed, (b, c, h, w), -2.0, 2.0), uniform(seed + 1, (c,), -1.0, 1.0)
        b0 = uniform(seed + 2, (), -1.0, 1.0) if bias is None else torch.tensor(bias)
        return maps, torch.zeros(c) if zero_weights else weight, b0
    return make


def _combine_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("a single map (C = 1)", _maps(2, 1, 3, 3, 700)),
            Case("21 maps, 3 x 2, a negative bias", _maps(2, 21, 3, 2, 701, bias=-1.3)),
            Case("batch of 3, 7 maps", _maps(3, 7, 2, 2, 702)),
            Case("40 maps", _maps(1, 40, 3, 4, 703)),
        ]
    return [
        Case("21 maps, batch of 2, bias 0", _maps(2, 21, 4, 4, 800, bias=0.0)),
        Case("the bias, added once after the sum (bias 0.7)", _maps(2, 21, 3, 3, 801, bias=0.7)),
        Case("batch of one", _maps(1, 21, 3, 5, 802)),
        Case("non-square maps (2 x 5)", _maps(2, 21, 2, 5, 803)),
        Case("3 maps instead of 21 (any number of maps)", _maps(2, 3, 3, 3, 804)),
        Case("all weights zero (only the bias is left)", _maps(2, 21, 2, 2, 805, zero_weights=True)),
    ]


def check_combine_maps(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 03.1: ``fn(maps [B, C, H, W], weight [C], bias)`` -> ``[B, 1, H, W]``, LR-ASPP's 1x1 head."""
    cases = _combine_cases(hidden)
    run_cases("Exercise 03.1 (the 21 -> 1 head)", fn, cases, expected_answers("03.1", hidden, len(cases)), hidden=hidden)


# --------------------------------------------------------------------------------------------
# 03.2 · the closed-form scale-and-shift alignment behind every "aligned" figure and metric
# --------------------------------------------------------------------------------------------


def _align_inputs(b: int, h: int, w: int, seed: int, holes: float = 0.0, flat: int | None = None,
                  uneven: bool = False, exact: bool = False, negative: bool = False) -> Callable[[], tuple]:
    """``(pred, depth, mask)``: 02.1's inputs (holes are depth 0 with wild predictions), or a prediction that is
    an exact scale and shift of the depth (``exact``), or one that runs the other way (``negative``: larger = nearer)."""
    base = _nmse_inputs(b, h, w, seed, holes=holes, flat=flat, uneven=uneven)

    def make() -> tuple:
        pred, depth, mask = base()
        if exact or negative:
            noise = uniform(seed + 5, (b, 1, h, w), -0.3, 0.3)
            shaped = (depth - 4.0) / 2.5 if exact else -0.4 * depth + 1.0 + noise
            pred = torch.where(mask, shaped, torch.full_like(pred, 50.0))
        return pred, depth, mask

    return make


def _align_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("2 images, 5 x 4, every pixel valid", _align_inputs(2, 5, 4, 1200)),
            Case("40 % holes", _align_inputs(3, 6, 5, 1210, holes=0.4)),
            Case("a constant prediction in image 0, with holes", _align_inputs(2, 5, 5, 1220, flat=0, holes=0.2)),
            Case("batch of one, prediction running the other way", _align_inputs(1, 6, 6, 1230, negative=True)),
            Case("an exact fit with holes", _align_inputs(2, 4, 7, 1240, exact=True, holes=0.3)),
        ]
    return [
        Case("3 images, every pixel valid (a scale and a shift per image)", _align_inputs(3, 5, 6, 1100)),
        Case("batch of one", _align_inputs(1, 4, 5, 1110)),
        Case("masked pixels (holes: depth 0, wild predictions; fit on the valid pixels only)",
             _align_inputs(2, 6, 6, 1120, holes=0.3)),
        Case("a shift is needed, not only a scale (an exact scale and shift of the depth)", _align_inputs(2, 5, 5, 1130, exact=True)),
        Case("a prediction that runs the other way (larger = nearer): a negative scale", _align_inputs(2, 5, 5, 1140, negative=True)),
        Case("a constant prediction in image 1 (scale 0: the mean depth of its valid pixels)", _align_inputs(2, 5, 5, 1150, flat=1)),
        Case("images with different numbers of valid pixels, non-square (6 x 8)", _align_inputs(3, 6, 8, 1160, uneven=True)),
    ]


def _align_answer(case: Case) -> list:
    """The key of an alignment case: each image's scale and shift ``[s, t]``, read back from depthkit's aligned map.

    The library returns ``s * pred + t`` (float64 here); two pixels of different prediction give ``s`` and ``t``
    (a constant prediction: ``s = 0``), and every other pixel must agree (else the reference is no scale and shift).
    """
    from depthkit.tensors import align_scale_shift

    pred, depth, mask = case.args()
    pred = pred.double()
    aligned = align_scale_shift(pred, depth.double(), mask)
    answer = []
    for p, a in zip(pred.flatten(1), aligned.flatten(1)):
        i, j = int(p.argmin()), int(p.argmax())
        scale = float((a[j] - a[i]) / (p[j] - p[i])) if p[j] > p[i] else 0.0
        shift = float(a[i] - scale * p[i])
        if (a - (scale * p + shift)).abs().max() > 1e-9 * (1 + a.abs().max()):
            raise ValueError("the reference's aligned map is no scale and shift of the prediction")
        answer.append([scale, shift])
    return answer


def _align_problem(pred: Tensor, want: list, got: Any) -> str | None:
    """The student's aligned map against ``s * pred + t`` with the key's scale and shift of each image."""
    st = torch.tensor(want, dtype=torch.float64)
    expected = st[:, 0].view(-1, 1, 1, 1) * pred.double() + st[:, 1].view(-1, 1, 1, 1)
    return close(expected.tolist(), got, rtol=1e-4, atol=1e-5)


def check_align_scale_shift(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 03.2: ``fn(pred, depth, mask)`` -> ``s * pred + t`` per image, least squares over the valid pixels."""
    cases = _align_cases(hidden)
    run_cases("Exercise 03.2 (scale-and-shift alignment)", fn, cases, expected_answers("03.2", hidden, len(cases)),
              lambda args, want, got: _align_problem(args[0], want, got), hidden=hidden, with_inputs=True)


# --------------------------------------------------------------------------------------------
# 03.3 · the paired noise band of a difference of two means on the same images
# --------------------------------------------------------------------------------------------


def _band_inputs(n: int, seed: int, nan_a: tuple[int, ...] = (), nan_b: tuple[int, ...] = (), inf_b: tuple[int, ...] = (),
                 correlated: bool = True, shift: float = 0.0) -> Callable[[], tuple]:
    """Per-image scores ``a``, ``b`` ``[n]`` (float32 tensors): ``correlated``, b follows a image by image (the
    paired band is much narrower than the unpaired one); NaN / inf at the images named (not scored)."""
    def make() -> tuple:
        a = uniform(seed, (n,), 0.02, 0.3)
        b = (a + uniform(seed + 1, (n,), -0.03, 0.03) + shift) if correlated else uniform(seed + 1, (n,), 0.02, 0.3)
        for i in nan_a:
            a[i] = math.nan
        for i in nan_b:
            b[i] = math.nan
        for i in inf_b:
            b[i] = math.inf
        return a, b
    return make


def _band_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("25 images, b follows a", _band_inputs(25, 1400)),
            Case("16 images, independent scores", _band_inputs(16, 1410, correlated=False)),
            Case("NaN in a and in b at different images (both left out)", _band_inputs(20, 1420, nan_a=(3,), nan_b=(11, 12))),
            Case("9 images: below 10 scored images, no band (inf)", _band_inputs(9, 1430)),
            Case("an inf score in b (not scored, left out)", _band_inputs(14, 1440, inf_b=(0,))),
        ]
    return [
        Case("30 images, b follows a image by image (paired: the per-image differences)", _band_inputs(30, 1300)),
        Case("12 images, b a constant 0.05 above a plus noise", _band_inputs(12, 1310, shift=0.05)),
        Case("40 images, independent scores", _band_inputs(40, 1320, correlated=False)),
        Case("10 images: the sample standard deviation (n - 1), 10 scored images are enough",
             _band_inputs(10, 1330)),
        Case("an image not scored in a (NaN): that image is left out of both", _band_inputs(15, 1340, nan_a=(4,))),
        Case("NaN at 12 of 20 images: 8 scored images are fewer than 10, no band (inf)",
             _band_inputs(20, 1350, nan_b=tuple(range(0, 20, 2)) + (1, 3))),
    ]


def _band_answer(case: Case) -> float:
    from depthkit.evaluate import noise_band

    return noise_band(*case.args())


def check_paired_band(fn: Callable[[Tensor, Tensor], float], hidden: bool = False) -> None:
    """Exercise 03.3: ``fn(a, b)``, the noise band of ``mean(a) - mean(b)`` on the same images (NOISE_Z paired standard errors)."""
    cases = _band_cases(hidden)
    run_cases("Exercise 03.3 (paired noise band)", fn, cases, expected_answers("03.3", hidden, len(cases)),
              lambda e, g: close(e, g, rtol=1e-4, atol=1e-7), hidden=hidden)


# --------------------------------------------------------------------------------------------
# 04 · freezing the encoder: expected from the model's structure, not from a stored list
# --------------------------------------------------------------------------------------------

_ENCODER_CASES = {
    False: [
        ("LR-ASPP: freeze", "lraspp", "train", [False]),
        ("LR-ASPP: freeze, then unfreeze", "lraspp", "train", [False, True]),
        ("U-Net++ (MobileNetV2): freeze", "unetpp_mnv2", "train", [False]),
        ("U-Net++ (MobileNetV2): freeze twice, unfreeze, freeze", "unetpp_mnv2", "train", [False, False, True, False]),
        ("LR-ASPP: unfreeze a model that was never frozen", "lraspp", "train", [True]),
        ("LR-ASPP in eval() mode: freeze, then unfreeze (the mode is not touched)", "lraspp", "eval", [False, True]),
    ],
    True: [
        ("U-Net++ (MobileNetV2) in eval() mode: freeze", "unetpp_mnv2", "eval", [False]),
        ("LR-ASPP: unfreeze, freeze, freeze", "lraspp", "train", [True, False, False]),
        ("U-Net++ (MobileNetV2): freeze, then unfreeze twice", "unetpp_mnv2", "train", [False, True, True]),
        ("LR-ASPP in train() mode, its encoder alone in eval(): freeze", "lraspp", "mixed", [False]),
    ],
}


def encoder_allowance() -> frozenset:
    """The depthkit code 04.1's answer may run: the ``encoder`` property of depthkit's models (their public structure)."""
    from depthkit.models import LRASPPDepth, PadToMultiple

    return frozenset(cls.encoder.fget.__code__ for cls in (LRASPPDepth, PadToMultiple))


def expected_trainable(model: nn.Module, sequence: list[bool]) -> dict[str, bool]:
    """``requires_grad`` of each parameter after ``sequence`` on a fully trainable model: the encoder's follow it."""
    encoder = {id(p) for p in model.encoder.parameters()}
    return {name: (sequence[-1] if id(p) in encoder else True) for name, p in model.named_parameters()}


def _set_mode(model: nn.Module, mode: str) -> None:
    model.requires_grad_(True)
    model.train(mode != "eval")
    if mode == "mixed":
        model.encoder.eval()


def _weights(model: nn.Module) -> dict[str, tuple]:
    """Each weight's and buffer's identity, storage and in-place version counter: a change shows, copying nothing."""
    return {k: (id(v), v.data_ptr(), v._version) for k, v in model.state_dict(keep_vars=True).items()}


def _encoder_problem(model: nn.Module, expected: dict[str, bool], modes: dict[str, bool],
                     weights: dict[str, tuple]) -> str | None:
    """What the student's function changed that it should not have, or left as it should not have."""
    encoder = {id(p) for p in model.encoder.parameters()}
    for name, p in model.named_parameters():
        if p.requires_grad != expected.get(name):
            part = "encoder" if id(p) in encoder else "decoder/head"
            return f"parameter {name} ({part}) should have requires_grad={expected.get(name)}, got {p.requires_grad}"
    for name, m in model.named_modules():
        if m.training != modes.get(name, m.training):
            return (f"your function switched {name or 'the model'} to {'train' if m.training else 'eval'}() mode; "
                    "the train/eval mode is not touched (freezing changes requires_grad only)")
    changed = [k for k, v in _weights(model).items() if v != weights.get(k)]
    if changed:
        return f"your function changed the weights ({changed[0]}); freezing only switches requires_grad"
    return None


def check_set_encoder_trainable(fn: Callable[[nn.Module, bool], None], hidden: bool = False) -> None:
    """Exercise 04.1: ``fn(model, trainable)`` switches ``requires_grad`` of the parameters under ``model.encoder``, nothing else."""
    from depthkit.models import build_model

    title = "Exercise 04.1 (freeze / unfreeze the encoder)"
    if not callable(fn):
        raise ExerciseError(f"{title}: expected a function, got {type(fn).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models = {name: build_model(name) for name in ("lraspp", "unetpp_mnv2")}
    allow = encoder_allowance()
    for case_name, model_name, mode, sequence in _ENCODER_CASES[hidden]:
        model = models[model_name]
        _set_mode(model, mode)
        weights = _weights(model)
        modes = {name: m.training for name, m in model.named_modules()}
        expected = expected_trainable(model, sequence)
        for trainable in sequence:
            call(title, Case(case_name, lambda: ()), fn, (model, trainable), allow)
        problem = _encoder_problem(model, expected, modes, weights)
        if problem is not None:
            raise ExerciseError(f"{title}: FAIL on case '{case_name}': {problem}")
    passed(title, len(_ENCODER_CASES[hidden]), hidden)


# --------------------------------------------------------------------------------------------
# 04.2 · the training loop itself, against the library's train_one_epoch on the same model and batches
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """A training case: a tiny model's size and seed, the batches, the optimizer and the mode the model comes in."""

    steps: int
    batch: int
    size: tuple[int, int]
    seed: int
    optimizer: tuple[str, dict]
    mode: str = "train"  # "eval": the model comes in eval() mode (the loop switches it to train(), as the library's)
    width: int = 4


def _tiny_model(run: _Run, dtype: torch.dtype) -> nn.Module:
    """conv 3x3 -> BatchNorm -> ReLU -> conv 1x1, weights from ``uniform`` (torch's generators untouched).

    Only torch's own modules: a model class of depthkit's would be depthkit code the answer may not call.
    BatchNorm behaves differently in train() and eval() mode (batch statistics, running statistics). The first
    convolution has no bias (BatchNorm removes it): its gradient would be zero but for rounding, and Adam's
    normalised step would turn that rounding into full-size steps that no float32 answer could match.
    """
    c = run.width
    model = nn.Sequential(torch.nn.utils.skip_init(nn.Conv2d, 3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                          torch.nn.utils.skip_init(nn.Conv2d, c, 1, 1))
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            lo, hi = (0.5, 1.5) if name == "1.weight" else (-0.5, 0.5)
            p.copy_(uniform(run.seed + 50 + k, tuple(p.shape), lo, hi))
    model.to(dtype)
    model.train(run.mode != "eval")
    return model


def _training_inputs(run: _Run) -> Callable[..., tuple]:
    """``(model, batches, optimizer spec, loss_fn)``; the batches are dicts of ``images`` (model inputs) and ``depths``."""
    def make(dtype: torch.dtype = torch.float32) -> tuple:
        h, w = run.size
        batches = [{"images": uniform(run.seed + 2 * i, (run.batch, 3, h, w), -2.0, 2.0).to(dtype),
                    "depths": uniform(run.seed + 2 * i + 1, (run.batch, 1, h, w), 0.5, 3.0).to(dtype)}
                   for i in range(run.steps)]
        return _tiny_model(run, dtype), batches, run.optimizer, nn.MSELoss()
    return make


_ADAM = ("Adam", {"lr": 1e-2, "weight_decay": 0.02})  # the report's optimizer (Adam, weight decay 0.02), a larger rate
_SGD = ("SGD", {"lr": 0.05, "momentum": 0.9})


def _loop_cases(hidden: bool) -> list[Case]:
    runs = {
        False: [
            ("3 steps, Adam, the model in train() mode", _Run(3, 4, (6, 6), 1500, _ADAM)),
            ("the gradients of one step only (zero them each step): 4 steps of SGD with momentum", _Run(4, 3, (5, 5), 1510, _SGD)),
            ("the model comes in eval() mode: the loop trains it in train() mode", _Run(3, 4, (6, 6), 1520, _ADAM, mode="eval")),
            ("batch of one", _Run(3, 1, (6, 7), 1530, _ADAM)),
            ("one step: the loss before the update", _Run(1, 4, (5, 6), 1540, _ADAM)),
        ],
        True: [
            ("5 steps of Adam, 8 channels", _Run(5, 2, (4, 4), 1600, _ADAM, width=8)),
            ("SGD with momentum, eval() mode given", _Run(3, 3, (5, 4), 1610, _SGD, mode="eval")),
            ("Adam without weight decay, batch of one", _Run(4, 1, (5, 5), 1620, ("Adam", {"lr": 5e-3}))),
            ("plain SGD, 2 steps", _Run(2, 4, (6, 5), 1630, ("SGD", {"lr": 0.1}))),
        ],
    }
    return [Case(name, _training_inputs(run)) for name, run in runs[hidden]]


def _optimizer(model: nn.Module, spec: tuple[str, dict]) -> torch.optim.Optimizer:
    name, settings = spec
    return getattr(torch.optim, name)(model.parameters(), **settings)


def _weight_summary(model: nn.Module) -> dict[str, float]:
    """Each floating weight and buffer of the model as one number: its dot product with fixed coefficients."""
    out = {}
    for k, (name, v) in enumerate(model.state_dict().items()):
        if v.is_floating_point():
            coefficients = uniform(9000 + k, tuple(v.shape), -1.0, 1.0).double()
            out[name] = float((v.detach().double().cpu() * coefficients).sum())
    return out


def _loop_answer(case: Case) -> dict:
    """depthkit's own loop, :func:`depthkit.train.train_one_epoch`, made plain, on the case in float64.

    Plain: no gradient scaling (a disabled GradScaler, as on a CPU), the stage's loss replaced by the case's
    ``loss_fn`` on the depths, and its augmentation hook handing it the case's batches in order (no flip, no
    jitter, no shuffle; the images un-normalised, so that the loop's own ImageNet normalisation gives them back).
    """
    import dataclasses

    from depthkit.config import get_profile
    from depthkit.data.loader import DepthData
    from depthkit.models import imagenet_stats
    from depthkit.stages import get_stage
    from depthkit.train import Hooks, train_one_epoch

    model, batches, spec, loss_fn = case.args(torch.float64)
    n, (b, _, h, w) = len(batches), batches[0]["images"].shape
    mean, std = imagenet_stats(torch.device("cpu"), torch.float64)
    feed = iter([{"images": x["images"] * std + mean, "depths": x["depths"]} for x in batches])
    stage = dataclasses.replace(get_stage("nyu"), loss=lambda pred, batch: loss_fn(pred, batch["depths"]))
    data = DepthData(torch.zeros(n * b, 3, h, w, dtype=torch.uint8), torch.zeros(n * b, 1, h, w))
    out = train_one_epoch(model, _optimizer(model, spec), scaler=torch.amp.GradScaler("cpu", enabled=False), stage=stage,
                          data=data, profile=get_profile("smoke").replace(batch_size=b, num_workers=0), epoch=0,
                          device=torch.device("cpu"), progress=False, hooks=Hooks(augment=lambda batch, gen: next(feed)))
    if out["steps"] != n:
        raise ValueError(f"train_one_epoch took {out['steps']} steps, not the case's {n}")
    return {"losses": out["step_losses"], "weights": _weight_summary(model)}


def _loop_problem(want: dict, got: Any, model: nn.Module) -> str | None:
    """The student's losses against the library's, step by step, then the weights the steps left."""
    n = len(want["losses"])
    if isinstance(got, Tensor) or not isinstance(got, (list, tuple)) or len(got) != n:
        what = f"a list of {len(got)}" if isinstance(got, (list, tuple)) else type(got).__name__
        return f"expected a list of {n} losses (one float per step), got {what}"
    for step, (e, g) in enumerate(zip(want["losses"], got)):
        if isinstance(g, Tensor) and g.numel() == 1:
            g = g.detach().item()
        if isinstance(g, bool) or not isinstance(g, numbers.Real):
            return f"step {step}: expected the loss as a float (loss.item()), got {type(g).__name__}"
        problem = close(e, float(g), rtol=1e-4, atol=1e-7)
        if problem:
            return f"the loss of step {step} (of {n}): {problem}"
    mine = _weight_summary(model)
    for name, e in want["weights"].items():
        if close(e, mine.get(name, math.nan), rtol=1e-3, atol=1e-5):
            return (f"the losses match, but the weights after the steps do not: '{name}' differs from the library's "
                    f"loop (a weighted sum of it: {close(e, mine.get(name, math.nan), rtol=1e-3, atol=1e-5)})")
    return None


def check_train_steps(fn: Callable[[nn.Module, list, torch.optim.Optimizer, Callable], list], hidden: bool = False) -> None:
    """Exercise 04.2: ``fn(model, batches, optimizer, loss_fn)``: one optimizer step per batch, each step's loss returned.

    Compared with depthkit's own loop, ``train_one_epoch``, run plain on the same model and batches (the key):
    the loss of every step, then the weights (and BatchNorm statistics) the steps leave; the batches must come
    back untouched.
    """
    title = "Exercise 04.2 (the training loop)"
    if not callable(fn):
        raise ExerciseError(f"{title}: expected a function, got {type(fn).__name__}")
    cases = _loop_cases(hidden)
    for case, want in zip(cases, expected_answers("04.2", hidden, len(cases))):
        model, batches, spec, loss_fn = case.args()
        fresh = case.args()[1]
        got = call(title, case, fn, (model, batches, _optimizer(model, spec), loss_fn))
        problem = changed_inputs((fresh,), (batches,)) or _loop_problem(want, got, model)
        if problem is not None:
            raise ExerciseError(f"{title}: FAIL on case '{case.name}': {problem}")
    passed(title, len(cases), hidden, " (the loss of every step and the weights after them)")


# --------------------------------------------------------------------------------------------
# 05 · the horizontal flip of a DIW batch, the fine-tuning learning rate
# --------------------------------------------------------------------------------------------


def _flip_inputs(b: int, p: int, h: int, w: int, seed: int, depths: bool = True,
                 border: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        _, pairs, relation = _pair_inputs(b, p, h, w, seed, relations=(-1, 1), border=border)()
        batch = {"images": uniform(seed + 10, (b, 3, h, w)), "pairs": pairs, "relation": relation}
        if depths:
            batch["depths"] = uniform(seed + 11, (b, 1, h, w), 0.5, 10.0)
        return (batch,)

    return make


def _flip_cases(hidden: bool) -> list[Case]:
    if hidden:
        return [
            Case("batch of 2, 3 x 3 images, 5 pairs each", _flip_inputs(2, 5, 3, 3, 900)),
            Case("images one pixel wide (the flip keeps them)", _flip_inputs(2, 2, 4, 1, 901)),
            Case("DIW batch of 5, 7 x 4 images", _flip_inputs(5, 1, 7, 4, 902, depths=False)),
            Case("9 x 2 images, border points", _flip_inputs(2, 3, 9, 2, 903, border=True)),
        ]
    return [
        Case("batch of 3 with depth maps, 4 pairs per image", _flip_inputs(3, 4, 6, 6, 40)),
        Case("DIW batch: no depth maps, one pair per image", _flip_inputs(4, 1, 6, 6, 41, depths=False)),
        Case("batch of one", _flip_inputs(1, 2, 5, 5, 42)),
        Case("points on the first and last column", _flip_inputs(2, 3, 6, 6, 43, border=True)),
        Case("non-square images (4 x 9): the width, not the height", _flip_inputs(2, 3, 4, 9, 44, border=True)),
    ]


def _flipped_by_augment(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every image of ``batch`` flipped by :func:`depthkit.data.loader.augment` (no colour jitter).

    ``augment`` flips each image with probability 1/2: it runs with successive seeds until every
    image has come out changed once, and those rows are collected.
    """
    from depthkit.data.loader import augment

    out = {k: v.clone() for k, v in batch.items()}
    done = torch.zeros(len(batch["images"]), dtype=torch.bool)
    for seed in range(200):
        aug = augment(batch, torch.Generator().manual_seed(seed), jitter=0.0)
        flipped = ~(aug["pairs"] == batch["pairs"]).flatten(1).all(dim=1) | \
            ~(aug["images"] == batch["images"]).flatten(1).all(dim=1)
        new = flipped & ~done
        for k in out:
            out[k][new] = aug[k][new]
        done |= flipped
        if done.all():
            return out
    if batch["images"].shape[-1] == 1:  # one pixel wide: a flip changes nothing
        return augment(batch, torch.Generator().manual_seed(0), jitter=0.0)
    raise ValueError("augment never flipped some image of the batch")


def _source_columns(before: Tensor, after: Tensor) -> list[int]:
    """For each column of ``after``, the column of ``before`` it holds (ValueError if it is none)."""
    columns = []
    for j in range(after.shape[-1]):
        found = [i for i in range(before.shape[-1]) if torch.equal(after[..., j], before[..., i])]
        if not found:
            raise ValueError(f"column {j} of the reference's output is no column of its input")
        columns.append(found[0])
    return columns


def _flip_answer(case: Case) -> dict:
    """The key of a flip case: which input column each output column holds, and the pairs and relations."""
    (batch,) = case.args()
    out = _flipped_by_augment(batch)
    columns = _source_columns(batch["images"], out["images"])
    if "depths" in batch and not torch.equal(out["depths"], batch["depths"][..., columns]):
        raise ValueError("the reference's depth maps do not follow its images")
    return {"columns": columns, "pairs": out["pairs"].tolist(), "relation": out["relation"].tolist()}


def _compare_batches(batch: dict[str, Tensor], want: dict, got: Any) -> str | None:
    """The student's flipped batch against the key: images and depths by column, pairs and relations exactly."""
    if not isinstance(got, dict):
        return f"expected a dict of tensors, got {type(got).__name__}"
    missing = [k for k in batch if k not in got]
    if missing:
        return f"the result has no '{missing[0]}' (keep every key of the batch)"
    expected = {k: batch[k][..., want["columns"]] for k in ("images", "depths") if k in batch}
    expected.update(pairs=torch.tensor(want["pairs"]), relation=torch.tensor(want["relation"]))
    for key, e in expected.items():
        g = got[key]
        if not isinstance(g, Tensor) or tuple(g.shape) != tuple(e.shape):
            return f"'{key}': expected shape {tuple(e.shape)}, got {tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__}"
        if key in ("pairs", "relation"):
            bad = g.long() != e.long()
            if bad.any():
                at = tuple(int(i) for i in bad.nonzero()[0][:2])
                return f"'{key}'{list(at)}: expected {e[at].tolist()}, got {g[at].tolist()}"
        else:
            problem = close(e.tolist(), g, rtol=0, atol=1e-6)
            if problem:
                return f"'{key}' {problem}"
    return None


def check_hflip_batch(fn: Callable[[dict], dict], hidden: bool = False) -> None:
    """Exercise 05.1: ``fn(batch)`` flips every image left-right with its depth and pairs, as ``augment`` does."""
    cases = _flip_cases(hidden)
    run_cases("Exercise 05.1 (horizontal flip of a batch)", fn, cases, expected_answers("05.1", hidden, len(cases)),
              lambda args, want, got: _compare_batches(args[0], want, got), hidden=hidden, with_inputs=True)


def _cosine_cases(hidden: bool) -> list[Case]:
    def args(base: float, epoch: int, total: int) -> Callable[[], tuple]:
        return lambda: (base, epoch, total)

    if hidden:
        return [
            Case("epoch 1 of 3", args(1e-2, 1, 3)),
            Case("epoch 2 of 2 (the end)", args(5e-4, 2, 2)),
            Case("epoch 7 of 20, base 1", args(1.0, 7, 20)),
            Case("epoch 1 of 0 (total = 0 counts as 1: the end)", args(1e-3, 1, 0)),
        ]
    return [
        Case("first epoch (epoch 0 of 10): base itself", args(1e-4, 0, 10)),
        Case("the end (epoch 10 of 10): 5 % of base", args(1e-3, 10, 10)),
        Case("halfway (epoch 5 of 10)", args(1e-4, 5, 10)),
        Case("last epoch (epoch 9 of 10): a cosine, not a straight line", args(1e-4, 9, 10)),
        Case("a run of one epoch", args(1e-3, 0, 1)),
        Case("epoch 3 of 7", args(2e-4, 3, 7)),
        Case("total = 0 counts as 1 (epoch 0 of 0)", args(3e-4, 0, 0)),
    ]


def _cosine_answer(case: Case) -> float:
    from depthkit.train import learning_rate

    return learning_rate(*case.args(), "cosine")


def check_cosine_lr(fn: Callable[[float, int, int], float], hidden: bool = False) -> None:
    """Exercise 05.2: ``fn(base, epoch, total)``, the cosine schedule down towards 5 % of ``base``."""
    cases = _cosine_cases(hidden)
    run_cases("Exercise 05.2 (cosine learning rate)", fn, cases, expected_answers("05.2", hidden, len(cases)),
              lambda e, g: close(e, g, rtol=1e-5, atol=0), hidden=hidden)


SPECS: dict[str, Spec] = {
    "02.1": Spec("Exercise 02.1 (normalized MSE)", _nmse_cases, _loss_answer(_reference_nmse)),
    "02.2": Spec("Exercise 02.2 (ranking loss)", _ranking_cases, _loss_answer(_reference_ranking)),
    "02.3": Spec("Exercise 02.3 (WHDR at delta)", _whdr_cases, _whdr_answer),
    "03.1": Spec("Exercise 03.1 (the 21 -> 1 head)", _combine_cases, _combine_answer),
    "03.2": Spec("Exercise 03.2 (scale-and-shift alignment)", _align_cases, _align_answer),
    "03.3": Spec("Exercise 03.3 (paired noise band)", _band_cases, _band_answer),
    "04.1": Spec("Exercise 04.1 (freeze / unfreeze the encoder)", lambda hidden: [], None),
    "04.2": Spec("Exercise 04.2 (the training loop)", _loop_cases, _loop_answer),
    "05.1": Spec("Exercise 05.1 (horizontal flip of a batch)", _flip_cases, _flip_answer),
    "05.2": Spec("Exercise 05.2 (cosine learning rate)", _cosine_cases, _cosine_answer),
}

CHECKS: dict[str, Callable] = {
    "02.1": check_normalized_mse, "02.2": check_ranking_loss, "02.3": check_whdr, "03.1": check_combine_maps,
    "03.2": check_align_scale_shift, "03.3": check_paired_band, "04.1": check_set_encoder_trainable,
    "04.2": check_train_steps, "05.1": check_hflip_batch, "05.2": check_cosine_lr,
}
