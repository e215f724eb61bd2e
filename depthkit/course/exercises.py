"""Checks for the notebooks' implement-it exercises (02–05): each against depthkit's own implementation.

Each ``check_*`` takes the student's function, runs it and the *reference* (:mod:`depthkit.losses`,
:mod:`depthkit.metrics`, :mod:`depthkit.models`, :func:`depthkit.data.loader.augment`,
:func:`depthkit.train.learning_rate`) on random inputs and on the edge cases that matter (masked
pixels, r = 0 pairs, exact ties, flipped images, a batch of one), through the harness of
:mod:`depthkit.course.checks`: one ``PASS`` line, or one line naming the first failing case.

The checks follow the courses that teach this way: CS231n compares a student's layer with a
reference at once; Otter-Grader's ``grader.check("q1")`` answers in the notebook.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import Tensor, nn

from depthkit.course.checks import Case, ExerciseError, call, close, run_cases, seeded

__all__ = ["check_normalized_mse", "check_ranking_loss", "check_whdr", "check_combine_maps",
           "check_set_encoder_trainable", "check_hflip_batch", "check_cosine_lr", "CHECKS"]


# --------------------------------------------------------------------------------------------
# 02 · losses and metrics
# --------------------------------------------------------------------------------------------


def _nmse_inputs(b: int, h: int, w: int, seed: int, holes: float = 0.0, flat: bool = False,
                 uneven: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        g = seeded(seed)
        depth = 0.5 + 9.5 * torch.rand(b, 1, h, w, generator=g)
        pred = torch.randn(b, 1, h, w, generator=g)
        mask = torch.rand(b, 1, h, w, generator=g) >= holes
        if uneven:  # image 0 keeps only a few pixels, the others all of theirs
            mask[1:] = True
            mask[0] = False
            mask[0, 0, :2, :3] = True
        depth = torch.where(mask, depth, torch.zeros_like(depth))  # Kinect-style holes: depth 0 ...
        pred = torch.where(mask, pred, torch.full_like(pred, 50.0))  # ... where the prediction is wild
        if flat:
            pred[0] = 3.0
        return pred, depth, mask

    return make


def check_normalized_mse(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 02.1: ``fn(pred, depth, mask)`` against :func:`depthkit.losses.normalized_mse`."""
    from depthkit import losses

    cases = [
        Case("random maps, every pixel valid", _nmse_inputs(3, 5, 6, 0)),
        Case("batch of one", _nmse_inputs(1, 4, 4, 1)),
        Case("masked pixels (holes with wild predictions)", _nmse_inputs(2, 6, 6, 2, holes=0.3)),
        Case("images with different numbers of valid pixels", _nmse_inputs(3, 6, 8, 3, uneven=True)),
        Case("a flat (constant) prediction in image 0", _nmse_inputs(2, 5, 5, 4, flat=True)),
        Case("non-square images (H != W)", _nmse_inputs(2, 3, 7, 5, holes=0.2)),
    ]
    run_cases("Exercise 02.1 (normalized MSE)", fn, cases, lambda p, d, m: losses.normalized_mse(p, d, m))


def _pair_inputs(b: int, p: int, h: int, w: int, seed: int, relations=(-1, 0, 1), scale: float = 1.0,
                 border: bool = False, positive: bool = False, ties: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        g = seeded(seed)
        pred = scale * torch.randn(b, 1, h, w, generator=g)
        if positive:
            pred = 0.5 + 4.5 * torch.rand(b, 1, h, w, generator=g)
        ys = torch.randint(0, h, (b, p, 2), generator=g)
        xs = torch.randint(0, w, (b, p, 2), generator=g)
        if border:  # points on the last row / column and on the first
            ys[:, 0] = torch.tensor([h - 1, 0])
            xs[:, 0] = torch.tensor([w - 1, 0])
        pairs = torch.stack([ys[..., 0], xs[..., 0], ys[..., 1], xs[..., 1]], dim=-1)
        choice = torch.tensor(relations)
        relation = choice[torch.randint(0, len(choice), (b, p), generator=g)]
        if ties:  # B's pixel takes A's value exactly
            bi = torch.arange(b)[:, None].expand(b, p)
            pred = pred.clone()
            pred[bi, 0, pairs[..., 2], pairs[..., 3]] = pred[bi, 0, pairs[..., 0], pairs[..., 1]]
        return pred, pairs, relation

    return make


def check_ranking_loss(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 02.2: ``fn(pred, pairs, relation)`` against :func:`depthkit.losses.ranking_loss` (value and gradient)."""
    from depthkit import losses

    cases = [
        Case("one pair, r = +1 (A farther)", _pair_inputs(1, 1, 4, 4, 10, relations=(1,))),
        Case("one pair, r = -1 (A closer)", _pair_inputs(1, 1, 4, 4, 11, relations=(-1,))),
        Case("r = 0 pairs (equal)", _pair_inputs(2, 3, 4, 4, 12, relations=(0,))),
        Case("mixed relations, 5 pairs in each of 3 images", _pair_inputs(3, 5, 6, 6, 13)),
        Case("points on the first and last row and column, non-square", _pair_inputs(2, 4, 5, 9, 14, border=True)),
        Case("large depth differences (|z_A - z_B| up to ~300)", _pair_inputs(2, 4, 6, 6, 15, relations=(-1, 1), scale=100.0)),
    ]
    run_cases("Exercise 02.2 (ranking loss)", fn, cases, losses.ranking_loss, say_pass=False)
    # the loss must train: its gradient with respect to the prediction matches the reference's
    case = Case("gradient with respect to pred", _pair_inputs(2, 4, 5, 5, 16))
    pred, pairs, relation = case.args()
    ref_pred = pred.clone().requires_grad_(True)
    losses.ranking_loss(ref_pred, pairs, relation).backward()
    mine = pred.clone().requires_grad_(True)
    out = call("Exercise 02.2 (ranking loss)", case, fn, (mine, pairs.clone(), relation.clone()))
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise ExerciseError("Exercise 02.2 (ranking loss): FAIL on case 'gradient with respect to pred': "
                            "the result has no gradient (return a tensor built from pred, no .item() or detach)")
    try:
        out.backward()
    except RuntimeError as err:
        raise ExerciseError(f"Exercise 02.2 (ranking loss): FAIL on case 'gradient with respect to pred': backward() "
                            f"failed: {str(err).splitlines()[0][:120]}") from None
    problem = close(ref_pred.grad, mine.grad)
    if problem:
        raise ExerciseError(f"Exercise 02.2 (ranking loss): FAIL on case 'gradient with respect to pred': {problem}")
    print(f"PASS  Exercise 02.2 (ranking loss): all {len(cases) + 1} cases (values and the gradient)")


def check_whdr(fn: Callable[[Tensor, Tensor, Tensor, float], float], hidden: bool = False) -> None:
    """Exercise 02.3: ``fn(pred, pairs, relation, delta)`` against :func:`depthkit.metrics.whdr` (the ratio test)."""
    from depthkit import metrics

    def with_delta(make, delta):
        return lambda: (*make(), delta)

    def near_ratio():  # z_A / z_B = 1.05 on far points: "equal" at delta 0.1 although z_A - z_B = 0.5 > 0.1
        pred = torch.tensor([[[[10.0, 10.5, 20.0, 30.0]]]])
        pairs = torch.tensor([[[0, 1, 0, 0], [0, 0, 0, 1], [0, 3, 0, 2], [0, 2, 0, 0]]])
        relation = torch.tensor([[0, 0, 1, 1]])
        return pred, pairs, relation, 0.1

    cases = [
        Case("delta = 0.1, random positive depths", with_delta(_pair_inputs(3, 6, 6, 6, 20, positive=True), 0.1)),
        Case("delta = 0.1, ratios near 1 on far points (a ratio, not a difference)", near_ratio),
        Case("delta = 0, exact ties (wrong for r = +-1, right for r = 0)",
             with_delta(_pair_inputs(2, 5, 5, 5, 21, positive=True, ties=True), 0.0)),
        Case("delta = 0.25, r = 0 pairs", with_delta(_pair_inputs(2, 6, 5, 5, 22, relations=(0,), positive=True), 0.25)),
        Case("batch of one, one pair", with_delta(_pair_inputs(1, 1, 4, 4, 23, positive=True), 0.1)),
        Case("delta = 0.02, non-square, border points", with_delta(_pair_inputs(2, 4, 4, 9, 24, positive=True, border=True), 0.02)),
    ]
    run_cases("Exercise 02.3 (WHDR at delta)", fn, cases,
         lambda pred, pairs, relation, delta: metrics.whdr(pred, pairs, relation, delta=delta),
         lambda e, g: close(e, g, rtol=0, atol=1e-9))


# --------------------------------------------------------------------------------------------
# 03 · the 21 -> 1 head
# --------------------------------------------------------------------------------------------


class _MapsAsOutput(nn.Module):
    """Stands in for LR-ASPP inside :class:`depthkit.models.LRASPPDepth`: its input *is* the maps."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": x}


def _combine_reference(maps: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """depthkit's LR-ASPP head with the given 1x1 weights, applied to ``maps``."""
    from depthkit.models import LRASPPDepth

    head = LRASPPDepth(_MapsAsOutput(), in_maps=maps.shape[1])
    with torch.no_grad():
        head.combine.weight.copy_(weight.reshape(1, -1, 1, 1))
        head.combine.bias.copy_(torch.as_tensor(bias).reshape(1))
        return head(maps)


def check_combine_maps(fn: Callable[[Tensor, Tensor, Tensor], Tensor], hidden: bool = False) -> None:
    """Exercise 03.1: ``fn(maps [B, C, H, W], weight [C], bias)`` -> ``[B, 1, H, W]``, LR-ASPP's 1x1 head."""
    def inputs(b, c, h, w, seed, zero_weights=False):
        def make():
            g = seeded(seed)
            maps, weight, bias = torch.randn(b, c, h, w, generator=g), torch.randn(c, generator=g), torch.randn((), generator=g)
            return maps, torch.zeros(c) if zero_weights else weight, bias
        return make

    cases = [
        Case("21 maps, batch of 2", inputs(2, 21, 6, 6, 30)),
        Case("batch of one", inputs(1, 21, 4, 4, 31)),
        Case("non-square maps (5 x 7)", inputs(2, 21, 5, 7, 32)),
        Case("3 maps instead of 21", inputs(2, 3, 4, 4, 33)),
        Case("all weights zero (only the bias is left)", inputs(2, 21, 3, 3, 34, zero_weights=True)),
    ]
    run_cases("Exercise 03.1 (the 21 -> 1 head)", fn, cases, _combine_reference)


# --------------------------------------------------------------------------------------------
# 04 · freezing the encoder
# --------------------------------------------------------------------------------------------


def _trainable(model: nn.Module) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def check_set_encoder_trainable(fn: Callable[[nn.Module, bool], None], hidden: bool = False) -> None:
    """Exercise 04.1: ``fn(model, trainable)`` sets ``requires_grad`` as :func:`depthkit.models.freeze_encoder` / ``unfreeze_encoder``."""
    from depthkit.models import build_model, freeze_encoder, unfreeze_encoder

    title = "Exercise 04.1 (freeze / unfreeze the encoder)"
    torch.manual_seed(0)
    built = {name: build_model(name) for name in ("lraspp", "unetpp_mnv2")}
    steps = {
        "LR-ASPP: freeze": ("lraspp", [False]),
        "LR-ASPP: freeze, then unfreeze": ("lraspp", [False, True]),
        "U-Net++ (MobileNetV2): freeze": ("unetpp_mnv2", [False]),
        "U-Net++ (MobileNetV2): freeze twice, unfreeze, freeze": ("unetpp_mnv2", [False, False, True, False]),
        "LR-ASPP: unfreeze a model that was never frozen": ("lraspp", [True]),
    }
    for case_name, (model_name, sequence) in steps.items():
        reference, mine = copy.deepcopy(built[model_name]), copy.deepcopy(built[model_name])
        before = {k: v.clone() for k, v in mine.state_dict().items()}
        for trainable in sequence:
            (unfreeze_encoder if trainable else freeze_encoder)(reference)
            call(title, Case(case_name, lambda: ()), fn, (mine, trainable))
        expected, got = _trainable(reference), _trainable(mine)
        for name, want in expected.items():
            if got.get(name) != want:
                part = "encoder" if name.startswith(("lraspp.backbone", "net.encoder")) else "decoder/head"
                raise ExerciseError(f"{title}: FAIL on case '{case_name}': parameter {name} ({part}) should have "
                                    f"requires_grad={want}, got {got.get(name)}")
        changed = [k for k, v in mine.state_dict().items() if not torch.equal(v, before[k])]
        if changed:
            raise ExerciseError(f"{title}: FAIL on case '{case_name}': your function changed the weights "
                                f"({changed[0]}); freezing only switches requires_grad")
    print(f"PASS  {title}: all {len(steps)} cases")


# --------------------------------------------------------------------------------------------
# 05 · the horizontal flip of a DIW batch, the fine-tuning learning rate
# --------------------------------------------------------------------------------------------


def _flip_reference(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every image of ``batch`` flipped by :func:`depthkit.data.loader.augment` (no colour jitter).

    ``augment`` flips each image with probability 1/2: it runs with successive seeds until every
    image has come out flipped once (told by its image differing from the input), and the flipped
    rows are collected.
    """
    from depthkit.data.loader import augment

    n = len(batch["images"])
    out = {k: v.clone() for k, v in batch.items()}
    done = torch.zeros(n, dtype=torch.bool)
    for seed in range(200):
        aug = augment(batch, seeded(seed), jitter=0.0)
        flipped = ~(aug["images"] == batch["images"]).flatten(1).all(dim=1)
        new = flipped & ~done
        for k in out:
            out[k][new] = aug[k][new]
        done |= flipped
        if done.all():
            return out
    raise RuntimeError("augment never flipped some image of the batch")  # pragma: no cover


def _flip_inputs(b: int, p: int, h: int, w: int, seed: int, depths: bool = True,
                 border: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        pred, pairs, relation = _pair_inputs(b, p, h, w, seed, relations=(-1, 1), border=border)()
        g = seeded(seed + 1000)
        batch = {"images": torch.rand(b, 3, h, w, generator=g), "pairs": pairs, "relation": relation}
        if depths:
            batch["depths"] = 0.5 + 9.5 * torch.rand(b, 1, h, w, generator=g)
        return (batch,)

    return make


def _compare_batches(expected: dict[str, Tensor], got: Any) -> str | None:
    if not isinstance(got, dict):
        return f"expected a dict of tensors, got {type(got).__name__}"
    missing = [k for k in expected if k not in got]
    if missing:
        return f"the result has no '{missing[0]}' (keep every key of the batch)"
    for key in ("images", "depths", "pairs", "relation"):
        if key not in expected:
            continue
        e, g = expected[key], got[key]
        if not isinstance(g, Tensor) or tuple(g.shape) != tuple(e.shape):
            return f"'{key}': expected shape {tuple(e.shape)}, got {tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__}"
        if key in ("pairs", "relation"):
            bad = (g.long() != e.long())
            if bad.any():
                at = tuple(int(i) for i in bad.nonzero()[0][:2]) if key == "pairs" else tuple(int(i) for i in bad.nonzero()[0])
                return f"'{key}'{list(at)}: expected {e[at].tolist()}, got {g[at].tolist()}"
        else:
            problem = close(e, g, rtol=0, atol=1e-6)
            if problem:
                return f"'{key}' {problem}"
    return None


def check_hflip_batch(fn: Callable[[dict], dict], hidden: bool = False) -> None:
    """Exercise 05.1: ``fn(batch)`` flips every image left-right with its depth and pairs, as ``augment`` does."""
    cases = [
        Case("batch of 3 with depth maps, 4 pairs per image", _flip_inputs(3, 4, 6, 6, 40)),
        Case("DIW batch: no depth maps, one pair per image", _flip_inputs(4, 1, 6, 6, 41, depths=False)),
        Case("batch of one", _flip_inputs(1, 2, 5, 5, 42)),
        Case("points on the first and last column", _flip_inputs(2, 3, 6, 6, 43, border=True)),
        Case("non-square images (H != W)", _flip_inputs(2, 3, 4, 9, 44, border=True)),
    ]
    run_cases("Exercise 05.1 (horizontal flip of a batch)", fn, cases, _flip_reference, _compare_batches)


def check_cosine_lr(fn: Callable[[float, int, int], float], hidden: bool = False) -> None:
    """Exercise 05.2: ``fn(base, epoch, total)`` against :func:`depthkit.train.learning_rate` with ``"cosine"``."""
    from depthkit.train import learning_rate

    def args(base, epoch, total):
        return lambda: (base, epoch, total)

    cases = [
        Case("first epoch (epoch 0 of 10)", args(1e-4, 0, 10)),
        Case("halfway (epoch 5 of 10)", args(1e-4, 5, 10)),
        Case("last epoch (epoch 9 of 10)", args(1e-4, 9, 10)),
        Case("the end (epoch 10 of 10)", args(1e-3, 10, 10)),
        Case("a run of one epoch", args(1e-3, 0, 1)),
        Case("epoch 3 of 7", args(2e-4, 3, 7)),
    ]
    run_cases("Exercise 05.2 (cosine learning rate)", fn, cases,
         lambda base, epoch, total: learning_rate(base, epoch, total, "cosine"),
         lambda e, g: close(e, g, rtol=1e-6, atol=0))


CHECKS: dict[str, Callable] = {
    "02.1": check_normalized_mse, "02.2": check_ranking_loss, "02.3": check_whdr, "03.1": check_combine_maps,
    "04.1": check_set_encoder_trainable, "05.1": check_hflip_batch, "05.2": check_cosine_lr,
}
