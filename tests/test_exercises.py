"""The implement-it exercises: each check passes the notebook's solution, fails the wrong answers students
write (naming the case), reports a stub in one line, never shows the reference's code; the capstone check
compares with a noise band. (Student copies, nbgrader's release: tests/test_nbgrader.py.)
"""
from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import jupytext
import pytest
import torch
import torch.nn.functional as F

from depthkit.course import capstone
from depthkit.course import exercises as ex
from depthkit.course.checks import ExerciseError, NotImplementedYet
from depthkit.course.student import BEGIN, stub_source

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXERCISE_NOTEBOOKS = {"02.1": "02_losses_and_metrics", "02.2": "02_losses_and_metrics", "02.3": "02_losses_and_metrics",
                      "03.1": "03_lraspp", "04.1": "04_unetpp", "05.1": "05_diw_finetuning", "05.2": "05_diw_finetuning"}
FUNCTIONS = {"02.1": "normalized_mse", "02.2": "ranking_loss", "02.3": "whdr", "03.1": "combine_maps",
             "04.1": "set_encoder_trainable", "05.1": "hflip_batch", "05.2": "cosine_lr"}


def exercise_cell(number: str) -> str:
    """The source of the notebook cell holding exercise ``number`` (from the .py source of the pair)."""
    nb = jupytext.read(NB_DIR / f"{EXERCISE_NOTEBOOKS[number]}.py")
    for cell in nb.cells:
        if cell.cell_type == "code" and f"# Exercise {number}" in cell.source:
            return cell.source
    raise AssertionError(f"no cell '# Exercise {number}' in {EXERCISE_NOTEBOOKS[number]}")


def solution(number: str):
    """The worked solution of exercise ``number``, as committed in its notebook."""
    scope: dict = {}
    exec(compile(exercise_cell(number), f"<exercise {number}>", "exec"), scope)
    return scope[FUNCTIONS[number]]


def verdict(check, fn) -> str:
    """The one-line message of a failing check (the test fails if the check passes)."""
    with pytest.raises(ExerciseError) as info:
        check(fn)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_there_are_at_least_six_exercises_in_02_to_05():
    assert len(ex.CHECKS) >= 6
    assert {n[:2] for n in ex.CHECKS} >= {"02", "03", "04", "05"}


@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_each_check_passes_the_notebook_solution(number, capsys):
    ex.CHECKS[number](solution(number))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("PASS") and f"Exercise {number}" in out[0]


@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_a_stub_is_reported_in_one_line_with_its_own_message(number):
    stub_cell = stub_source(exercise_cell(number))
    assert BEGIN not in stub_cell and "NotImplementedError" in stub_cell
    scope: dict = {}
    exec(stub_cell, scope)
    with pytest.raises(NotImplementedYet) as info:
        ex.CHECKS[number](scope[FUNCTIONS[number]])
    assert re.fullmatch(rf"Exercise {number} \(.+\): not implemented yet \(replace this line .+\)", str(info.value)), \
        str(info.value)
    assert info.value._render_traceback_() and len(info.value._render_traceback_()) == 1  # Jupyter: one line


def test_a_crash_in_the_student_function_is_one_line_naming_the_case():
    def crashes(pred, depth, mask):
        return pred[:, 5]  # IndexError deep in the student's code

    message = verdict(ex.check_normalized_mse, crashes)
    assert "case 'random maps, every pixel valid'" in message and "IndexError" in message


# ---- planted wrong answers, of the kinds students write ------------------------------------------------


def _gather(pred, pairs, one_based=False, swap=False):
    image = torch.arange(pred.shape[0])[:, None]
    p = pairs - 1 if one_based else pairs
    ya, xa, yb, xb = (p[..., i] for i in ((1, 0, 3, 2) if swap else (0, 1, 2, 3)))
    return pred[image, 0, ya, xa], pred[image, 0, yb, xb]


def _unit(x, mask):
    lo = torch.where(mask, x, torch.full_like(x, math.inf)).amin(dim=(1, 2, 3), keepdim=True)
    hi = torch.where(mask, x, torch.full_like(x, -math.inf)).amax(dim=(1, 2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))


def nmse_mask_ignored(pred, depth, mask):  # min-max over every pixel, holes included
    return nmse_mean_over_all_pixels(pred, depth, torch.ones_like(mask))


def nmse_mean_over_all_pixels(pred, depth, mask):  # the mean over all pixels instead of the valid ones
    return (((_unit(pred, mask) - _unit(depth, mask)) ** 2) * mask).mean(dim=(1, 2, 3)).mean()


def nmse_pooled(pred, depth, mask):  # one mean over every valid pixel of the batch, not per image
    return (((_unit(pred, mask) - _unit(depth, mask)) ** 2) * mask).sum() / mask.sum()


def nmse_flat_gives_nan(pred, depth, mask):  # no care for a constant map: 0 / 0
    def unit(x):
        lo = torch.where(mask, x, torch.full_like(x, math.inf)).amin(dim=(1, 2, 3), keepdim=True)
        hi = torch.where(mask, x, torch.full_like(x, -math.inf)).amax(dim=(1, 2, 3), keepdim=True)
        return (x - lo) / (hi - lo)
    return ((((unit(pred) - unit(depth)) ** 2) * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))).mean()


@pytest.mark.parametrize("wrong, case", [
    (nmse_mask_ignored, "masked pixels"),
    (nmse_mean_over_all_pixels, "masked pixels"),
    (nmse_pooled, "images with different numbers of valid pixels"),
    (nmse_flat_gives_nan, "a flat (constant) prediction"),
])
def test_normalized_mse_check_catches(wrong, case):
    assert f"case '{case}" in verdict(ex.check_normalized_mse, wrong)


def _ranking(sign=1, r0_ordinal=False, one_based=False, swap=False, naive=False, detach=False):
    def loss(pred, pairs, relation):
        z_a, z_b = _gather(pred, pairs, one_based, swap)
        diff = z_a - z_b
        r = relation.to(diff.dtype) * sign
        ordinal = torch.log(1 + torch.exp(-r * diff)) if naive else F.softplus(-r * diff)
        per_pair = ordinal if r0_ordinal else torch.where(relation == 0, diff**2, ordinal)
        out = per_pair.mean()
        return out.detach() if detach else out
    return loss


@pytest.mark.parametrize("wrong, case", [
    (_ranking(sign=-1), "one pair, r = +1 (A farther)"),  # the report's printed convention
    (_ranking(r0_ordinal=True), "r = 0 pairs (equal)"),
    (_ranking(one_based=True), "one pair, r = +1"),
    (_ranking(swap=True), ""),  # x and y swapped: caught by the first case whose pixels differ
    (_ranking(naive=True), "large depth differences"),
    (_ranking(detach=True), "gradient with respect to pred"),
])
def test_ranking_loss_check_catches(wrong, case):
    assert f"case '{case}" in verdict(ex.check_ranking_loss, wrong)


def _whdr(mode):
    def metric(pred, pairs, relation, delta):
        z_a, z_b = (z.double() for z in _gather(pred, pairs))
        predicted = torch.zeros_like(relation)
        if mode == "difference":  # a threshold on z_A - z_B instead of the ratio
            predicted[z_a - z_b > delta] = 1
            predicted[z_b - z_a > delta] = -1
        elif mode == "ties right":  # >= : an exact tie counted as ordered
            predicted[z_a >= (1 + delta) * z_b] = 1
            predicted[(z_b > (1 + delta) * z_a)] = -1
        elif mode == "no equal":  # the sign only, whatever delta
            predicted = torch.sign(z_a - z_b).long()
        return (predicted != relation).double().mean().item()
    return metric


@pytest.mark.parametrize("mode, case", [("difference", "delta = 0.1, random"), ("ties right", "delta = 0, exact ties"),
                                        ("no equal", "delta = 0.1, random")])
def test_whdr_check_catches(mode, case):
    assert f"case '{case}" in verdict(ex.check_whdr, _whdr(mode))


def test_whdr_check_has_a_case_that_only_the_ratio_test_passes():
    """A difference threshold that happens to agree on small depths still fails on far points with a ratio near 1."""
    from depthkit import metrics

    def difference_on_far_points(pred, pairs, relation, delta):
        if pred.max() > 9:  # only the far-points case goes through the planted difference test
            return _whdr("difference")(pred, pairs, relation, delta)
        return metrics.whdr(pred, pairs, relation, delta=delta)

    assert "case 'delta = 0.1, ratios near 1 on far points" in verdict(ex.check_whdr, difference_on_far_points)


@pytest.mark.parametrize("wrong, case", [
    (lambda maps, w, b: (maps * w[None, :, None, None]).sum(dim=1, keepdim=True), "21 maps, batch of 2"),  # no bias
    (lambda maps, w, b: maps.mean(dim=1, keepdim=True) + b, "21 maps, batch of 2"),  # weights ignored
    (lambda maps, w, b: (maps * w[None, :, None, None]).sum(dim=1) + b, "21 maps, batch of 2"),  # [B, H, W]
    (lambda maps, w, b: (maps[:, :21] * w[None, :21, None, None]).sum(1, keepdim=True) + b
     if maps.shape[1] == 21 else maps[:, :1] * 0, "3 maps instead of 21"),  # hard-coded 21 maps
])
def test_combine_maps_check_catches(wrong, case):
    message = verdict(ex.check_combine_maps, wrong)
    assert f"case '{case}" in message
    if "sum(dim=1) + b" in inspect.getsource(wrong):
        assert "expected shape (2, 1, 6, 6), got (2, 6, 6)" in message


def freeze_everything(model, trainable):
    model.requires_grad_(trainable)


def never_unfreezes(model, trainable):
    if not trainable:
        for p in model.encoder.parameters():
            p.requires_grad_(False)


def freezes_the_decoder(model, trainable):
    encoder = {id(p) for p in model.encoder.parameters()}
    for p in model.parameters():
        if id(p) not in encoder:
            p.requires_grad_(trainable)


def eval_instead(model, trainable):  # "freezing" by eval mode: requires_grad untouched
    model.encoder.train(trainable)


def reinitialises(model, trainable):
    for p in model.encoder.parameters():
        p.requires_grad_(trainable)
    torch.nn.init.zeros_(next(model.parameters()))


@pytest.mark.parametrize("wrong, case, says", [
    (freeze_everything, "LR-ASPP: freeze", "decoder/head"),
    (never_unfreezes, "LR-ASPP: freeze, then unfreeze", "requires_grad=True"),
    (freezes_the_decoder, "LR-ASPP: freeze", "(encoder)"),
    (eval_instead, "LR-ASPP: freeze", "requires_grad=False"),
    (reinitialises, "LR-ASPP: freeze", "changed the weights"),
])
def test_encoder_check_catches(wrong, case, says):
    message = verdict(ex.check_set_encoder_trainable, wrong)
    assert f"case '{case}'" in message and says in message


def _flip(pairs_flipped=True, off_by_one=False, use_height=False, flip_rows=False, in_place=False,
          drop_depth=False, negate=False):
    def fn(batch):
        out = batch if in_place else dict(batch)
        h, w = batch["images"].shape[-2:]
        size = h if use_height else w
        out["images"] = batch["images"].flip(-1)
        if "depths" in batch and not drop_depth:
            out["depths"] = batch["depths"].flip(-1)
        elif drop_depth:
            out.pop("depths", None)
        p = batch["pairs"] if in_place else batch["pairs"].clone()
        if pairs_flipped:
            cols = (0, 2) if flip_rows else (1, 3)
            for c in cols:
                p[..., c] = (size if off_by_one else size - 1) - p[..., c]
        out["pairs"] = p
        if negate:
            out["relation"] = -batch["relation"]
        return out
    return fn


@pytest.mark.parametrize("wrong, case", [
    (_flip(pairs_flipped=False), "batch of 3 with depth maps"),
    (_flip(off_by_one=True), "batch of 3 with depth maps"),
    (_flip(use_height=True), "non-square images"),
    (_flip(flip_rows=True), "batch of 3 with depth maps"),
    (_flip(in_place=True), "batch of 3 with depth maps"),
    (_flip(drop_depth=True), "batch of 3 with depth maps"),
    (_flip(negate=True), "batch of 3 with depth maps"),
])
def test_flip_check_catches(wrong, case):
    assert f"case '{case}" in verdict(ex.check_hflip_batch, wrong)


@pytest.mark.parametrize("wrong, case", [
    (lambda base, e, t: base * 0.5 * (1 + math.cos(math.pi * e / max(t, 1))), "halfway"),  # decays to 0
    (lambda base, e, t: base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (e + 1) / max(t, 1)))), "first epoch"),
    (lambda base, e, t: base * (1 - 0.95 * e / max(t, 1)), "last epoch"),  # linear
])
def test_cosine_lr_check_catches(wrong, case):
    assert f"case '{case}" in verdict(ex.check_cosine_lr, wrong)


def test_messages_never_show_the_reference_source():
    """Every failing message of the planted answers, against every line of the reference implementations."""
    from depthkit import data, losses, metrics, models, train

    references = [losses.normalized_mse, losses.normalized_mse_per_image, losses.normalize_depth,
                  losses.ranking_loss, losses.pair_values, metrics.whdr, metrics.ratio_relation, models.LRASPPDepth,
                  models.freeze_encoder, models.unfreeze_encoder, data.loader.augment, train.learning_rate]
    lines = {line.strip() for ref in references for line in inspect.getsource(ref).splitlines() if len(line.strip()) > 20}
    messages = [verdict(ex.check_normalized_mse, nmse_pooled), verdict(ex.check_ranking_loss, _ranking(sign=-1)),
                verdict(ex.check_whdr, _whdr("difference")), verdict(ex.check_hflip_batch, _flip(pairs_flipped=False)),
                verdict(ex.check_cosine_lr, lambda b, e, t: b), verdict(ex.check_set_encoder_trainable, freeze_everything),
                verdict(ex.check_combine_maps, lambda m, w, b: m.sum(1, keepdim=True))]
    for message in messages:
        assert not [line for line in lines if line in message], message
        assert "def " not in message and "return " not in message


# ---- the capstone ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_checkpoint(nyu_splits, smoke_profile, tmp_path_factory):
    from depthkit.train import train_stage

    out = tmp_path_factory.mktemp("capstone")
    train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=out, device="cpu", progress=False)
    return out / "best.pt"


def _results(path: Path, nmse: float, profile: str = "smoke", epochs=(0, 1)) -> Path:
    import json

    path.write_text(json.dumps({"models": {"lraspp": {"nyu": {"normalized_mse": nmse}}},
                                "provenance": {"profile": profile, "epochs": {"lraspp": {"nyu": list(epochs)}}}}))
    return path


@pytest.mark.slow  # trains LR-ASPP for one smoke epoch (shared by the capstone tests)
def test_capstone_scores_like_evaluate_and_judges_against_the_noise_band(smoke_checkpoint, nyu_splits, tmp_path, capsys):
    from depthkit.checkpoints import load_model
    from depthkit.evaluate import evaluate

    scored = capstone.score_checkpoint(smoke_checkpoint, profile="smoke")
    expected = evaluate(load_model(smoke_checkpoint), nyu_splits["test"], "nyu")["normalized_mse"]
    assert scored["score"] == pytest.approx(expected, rel=1e-6)  # the number `depthkit evaluate` prints
    assert scored["n_test"] == len(nyu_splits["test"]) and 0 < scored["band"] < 1
    score, band = scored["score"], scored["band"]
    beaten = capstone.judge_capstone(scored, _results(tmp_path / "a.json", score + 2 * band))
    assert beaten["gain"] == pytest.approx(2 * band) and "beats it by" in beaten["verdict"]
    missed = capstone.judge_capstone(scored, _results(tmp_path / "b.json", score - 2 * band))
    assert "misses it by" in missed["verdict"]
    within = capstone.judge_capstone(scored, _results(tmp_path / "c.json", score + band / 2))
    assert "within the noise band" in within["verdict"] and "beats" not in within["verdict"]
    other = capstone.judge_capstone(scored, _results(tmp_path / "d.json", score, profile="demo"))
    assert "from the demo profile and this is smoke: not comparable" in other["verdict"]
    longer = capstone.judge_capstone(scored, _results(tmp_path / "e.json", score, epochs=(0, 0)))
    assert scored["epochs"] == 1 and "1 epochs is over the committed budget of 0" in longer["verdict"]
    assert "over the committed budget" not in within["verdict"]
    capstone.check_capstone(smoke_checkpoint, profile="smoke", results=tmp_path / "missing.json")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("CAPSTONE") and "nothing to compare with" in out[0]
    assert f"{score:.4f}" in out[0] and not re.search(r"/tmp/|/home/|/work/", out[0])


@pytest.mark.slow
def test_evaluate_compare_prints_the_capstone_line(smoke_checkpoint, capsys):
    from depthkit.cli import main

    assert main(["evaluate", str(smoke_checkpoint), "--data", "nyu", "--profile", "smoke", "--compare"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("CAPSTONE") and "lraspp nyu test normalized_mse" in last
