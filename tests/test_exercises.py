"""The implement-it exercises: each check passes the notebook's solution and correct answers written other ways,
fails the wrong answers students write (naming the real cause), refuses an answer that calls depthkit's own
implementation, compares with an answer key that a capstone edit of the library cannot move, reports a stub in
one line and never shows the reference's code; student copies are valid notebooks whose exercise cells stop at
the stub. (The capstone: tests/test_capstone.py; student copies, nbgrader's release: tests/test_nbgrader.py.)
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthkit.course import answer_key
from depthkit.course import exercises as ex
from depthkit.course.checks import KEY_FILE, ExerciseError, NotImplementedYet, stored_key
from depthkit.course.student import BEGIN, stub_source

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
EXERCISE_NOTEBOOKS = {"02.1": "02_losses_and_metrics", "02.2": "02_losses_and_metrics", "02.3": "02_losses_and_metrics",
                      "03.1": "03_lraspp", "03.2": "03_lraspp", "03.3": "03_lraspp", "04.1": "04_unetpp",
                      "04.2": "04_unetpp", "05.1": "05_diw_finetuning", "05.2": "05_diw_finetuning"}
FUNCTIONS = {"02.1": "normalized_mse", "02.2": "ranking_loss", "02.3": "whdr", "03.1": "combine_maps",
             "03.2": "align_scale_shift", "03.3": "paired_band", "04.1": "set_encoder_trainable",
             "04.2": "train_steps", "05.1": "hflip_batch", "05.2": "cosine_lr"}


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


def verdict(check, fn, hidden: bool = False) -> str:
    """The one-line message of a failing check (the test fails if the check passes)."""
    with pytest.raises(ExerciseError) as info:
        check(fn, hidden=hidden)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def passes(check, fn, capsys, hidden: bool = False) -> str:
    """The one PASS line of a check that passes ``fn``."""
    check(fn, hidden=hidden)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("PASS"), out
    return out[0]


def test_there_are_at_least_six_exercises_in_02_to_05():
    assert len(ex.CHECKS) >= 6
    assert {n[:2] for n in ex.CHECKS} >= {"02", "03", "04", "05"}


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_each_check_passes_the_notebook_solution(number, hidden, capsys):
    line = passes(ex.CHECKS[number], solution(number), capsys, hidden=hidden)
    assert f"Exercise {number}" in line and ("hidden tests" in line) == hidden


@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_every_check_takes_the_keyword_hidden(number):
    """nbgrader's hidden test cells call ``check_x(fn, hidden=True)``: the keyword, its default, the names."""
    parameter = inspect.signature(ex.CHECKS[number]).parameters["hidden"]
    assert parameter.default is False and ex.CHECKS[number].__name__ in ex.__all__


@pytest.mark.parametrize("number", sorted(n for n in ex.SPECS if ex.SPECS[n].reference is not None))
def test_hidden_cases_are_other_cases(number):
    spec = ex.SPECS[number]
    visible, hidden = spec.cases(False), spec.cases(True)
    assert len(hidden) >= 4 and not {c.name for c in visible} & {c.name for c in hidden}
    assert answer_key.inputs_digest(visible) != answer_key.inputs_digest(hidden)


@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_hidden_true_runs_the_hidden_cases(number, capsys):
    """A spy answer records what the check hands it: with hidden=True, the hidden cases' arguments, in order."""
    seen, fn = [], solution(number)

    def spy(*args):
        seen.append(tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args))
        return fn(*args)

    passes(ex.CHECKS[number], spy, capsys, hidden=True)
    if number == "04.1":
        assert [args[1] for args in seen] == [t for case in ex._ENCODER_CASES[True] for t in case[3]]
        return
    cases = ex.SPECS[number].cases(True)
    assert len(seen) == len(cases)
    for case, args in zip(cases, seen):
        want, got = case.args()[0], args[0]
        if number == "04.2":  # (model, batches, optimizer, loss_fn): the first batch's images
            want, got = case.args()[1][0], args[1][0]
        if isinstance(want, dict):
            want, got = want["images"], got["images"]
        assert torch.equal(torch.as_tensor(got).nan_to_num(-7.0), torch.as_tensor(want).nan_to_num(-7.0)), case.name  # 03.3: NaN


def test_hidden_cases_of_the_encoder_check_are_other_cases():
    visible, hidden = ex._ENCODER_CASES[False], ex._ENCODER_CASES[True]
    assert len(hidden) >= 4 and not {c[0] for c in visible} & {c[0] for c in hidden}


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
    assert "case '3 images, every pixel valid" in message and "IndexError" in message


@pytest.mark.parametrize("number", sorted(ex.CHECKS))
def test_each_check_runs_in_well_under_two_seconds(number, capsys):
    """They run in the notebooks: visible and hidden together, on this 2-core CPU (04.1 builds two models)."""
    import time

    fn = solution(number)
    ex.CHECKS[number](fn)  # first call: imports, the key read
    start = time.perf_counter()
    ex.CHECKS[number](fn)
    ex.CHECKS[number](fn, hidden=True)
    # both together; each takes under 0.5 s on this CPU unshared (04.1 builds two models; it took 3.7 s alone before)
    assert time.perf_counter() - start < 6.0


# ---- the reference is out of reach: an answer that calls depthkit is refused ---------------------------


def _cheats():
    """Answers that only call depthkit (the reference, an alias of it, a building block, depthkit.course): (number, fn, called)."""
    from depthkit import evaluate, losses, metrics, tensors, train
    from depthkit.course import checks
    from depthkit.data.loader import augment
    from depthkit.losses import normalized_mse as nm
    from depthkit.models import LRASPPDepth, encoder_parameters, freeze_encoder, unfreeze_encoder
    from depthkit.train import learning_rate as lr

    def head(maps, w, b):
        layer = LRASPPDepth(torch.nn.Identity(), in_maps=maps.shape[1]).combine
        return F.conv2d(maps, w.reshape(1, -1, 1, 1), b.reshape(1)) + 0 * layer.bias

    def loop_with_predict(model, batches, optimizer, loss_fn):  # the library's forward pass inside the loop
        out = []
        for batch in batches:
            loss = loss_fn(evaluate.predict(model, batch["images"], check_range=False), batch["depths"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            out.append(loss.item())
        return out

    def blocks(pred, depth, mask):  # depthkit's building blocks, put together
        error = (tensors.normalize_depth(pred, mask) - tensors.normalize_depth(depth, mask)) ** 2
        return tensors.masked_mean(error, mask).nanmean()

    return [
        ("02.1", lambda p, d, m: losses.normalized_mse(p, d, m), "depthkit.losses.normalized_mse"),
        ("02.1", lambda p, d, m: nm(p, d, m), "depthkit.losses.normalized_mse"),  # an alias
        ("02.1", losses.normalized_mse, "depthkit.losses.normalized_mse"),  # the reference passed in itself
        ("02.1", blocks, "depthkit.tensors.normalize_depth"),
        ("02.2", functools.partial(losses.ranking_loss, validate=False), "depthkit.losses.ranking_loss"),
        ("02.3", lambda p, q, r, d: metrics.whdr(p, q, r, delta=d), "depthkit.metrics.whdr"),
        ("03.1", head, "depthkit.models.LRASPPDepth.__init__"),
        ("03.2", tensors.align_scale_shift, "depthkit.tensors.align_scale_shift"),
        ("03.2", lambda p, d, m: metrics._align(p, d, m, "lstsq"), "depthkit.metrics._align"),
        ("03.3", lambda a, b: evaluate.noise_band(a, b), "depthkit.evaluate.noise_band"),
        ("03.3", lambda a, b: 2 * evaluate.standard_error(a - b), "depthkit.evaluate.standard_error"),
        ("04.2", loop_with_predict, "depthkit.evaluate.predict"),
        ("04.1", lambda m, t: (unfreeze_encoder if t else freeze_encoder)(m), "depthkit.models.freeze_encoder"),
        ("04.1", lambda m, t: [p.requires_grad_(t) for p in encoder_parameters(m)], "depthkit.models.encoder_parameters"),
        ("05.1", lambda batch: augment(batch, None, jitter=0.0), "depthkit.data.loader.augment"),
        ("05.2", lambda b, e, t: train.learning_rate(b, e, t, "cosine"), "depthkit.train.learning_rate"),
        ("05.2", lambda b, e, t: lr(b, e, t, "cosine"), "depthkit.train.learning_rate"),
        ("05.2", lambda b, e, t: checks.expected_answers("05.2", False, 7)[0], "depthkit.course.checks.expected_answers"),
    ]


@pytest.mark.parametrize("number, cheat, called", _cheats(), ids=lambda x: x if isinstance(x, str) else "")
def test_an_answer_that_calls_depthkit_is_refused_naming_what_it_called(number, cheat, called):
    for hidden in (False, True):
        message = verdict(ex.CHECKS[number], cheat, hidden=hidden)
        assert re.fullmatch(rf"Exercise {number} \(.+\): your function calls {re.escape(called)}, depthkit's own code: "
                            r"write the exercise without depthkit's functions \(it is checked against them\)", message), message


def test_switching_off_the_tracer_is_refused_and_a_profiler_in_place_is_kept():
    from depthkit import losses

    def sneaky(pred, depth, mask):
        sys.setprofile(None)
        return losses.normalized_mse(pred, depth, mask)

    def mine(frame, event, arg):
        return None

    sys.setprofile(mine)
    try:
        message = verdict(ex.check_normalized_mse, sneaky)
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(None)
    assert message.endswith("your function switched off the check's call tracer (sys.setprofile)")


def test_a_check_under_cprofile_keeps_the_profiler_running(capsys):
    """IPython's %prun: cProfile's profiler is on before the check and still on after it."""
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        ex.check_cosine_lr(solution("05.2"))
        after = sys.getprofile()
    finally:
        profiler.disable()
    assert after is profiler or sys.version_info >= (3, 12)  # 3.12's cProfile uses sys.monitoring instead
    assert capsys.readouterr().out.startswith("PASS")


def test_importing_a_depthkit_module_inside_the_answer_is_not_a_call(monkeypatch, capsys):
    """A module's import runs its code (``depthkit.cli`` calls its own ``at_least`` as it loads): not a call."""
    import importlib

    import depthkit
    import depthkit.cli

    cosine = solution("05.2")
    monkeypatch.setattr(depthkit, "cli", depthkit.cli)  # the module and the package's attribute are put back after
    monkeypatch.delitem(sys.modules, "depthkit.cli")  # the test, so other tests' `from depthkit import cli` is theirs

    def imports_first(base, epoch, total):
        importlib.import_module("depthkit.cli")
        return cosine(base, epoch, total)

    passes(ex.check_cosine_lr, imports_first, capsys)


# ---- the answer key: written from the library once, out of a capstone's reach ---------------------------


def test_the_library_reproduces_the_answer_key():
    """A real regression in a reference shows here (and in ``python -m depthkit.course.answer_key``)."""
    assert answer_key.differences(stored_key()) == []
    assert answer_key.main([]) == 0


def test_a_changed_key_or_changed_cases_are_told_apart():
    tampered = json.loads(KEY_FILE.read_text())
    tampered["exercises"]["05.2"]["cases"][1] *= 1.001
    tampered["exercises"]["02.3"]["inputs"] = "0" * 16
    found = answer_key.differences(tampered)
    assert len(found) == 2 and found[0].startswith("02.3: the cases changed") and found[1].startswith("05.2.cases[1]: stored")


def test_the_stored_key_is_small_and_in_the_writer_s_format():
    assert KEY_FILE.stat().st_size < 16_000
    assert json.loads(answer_key.key_text(stored_key())) == stored_key()


def test_the_case_inputs_do_not_come_from_torch_s_random_generators(monkeypatch):
    """torch's streams may change between versions (Colab's and ours): the cases draw from Python's ``random``."""
    def refuse(*args, **kwargs):
        raise AssertionError("a case drew from torch's random generator")

    digests = {n: answer_key.inputs_digest(s.cases(False) + s.cases(True)) for n, s in ex.SPECS.items() if s.reference}
    for name in ("rand", "randn", "randint", "randperm", "normal", "Generator", "manual_seed"):
        monkeypatch.setattr(torch, name, refuse)
    again = {n: answer_key.inputs_digest(s.cases(False) + s.cases(True)) for n, s in ex.SPECS.items() if s.reference}
    assert again == digests == {n: e["inputs"] for n, e in stored_key()["exercises"].items()}


@pytest.mark.parametrize("hidden", [False, True])
def test_the_encoder_expectation_is_what_freeze_encoder_does(hidden):
    """04.1 expects from the model's structure (the parameters under ``model.encoder``), not a stored list of
    names (those come from torchvision / smp): the library's own freeze / unfreeze agree with it."""
    from depthkit.models import build_model, freeze_encoder, unfreeze_encoder

    models = {name: build_model(name) for name in ("lraspp", "unetpp_mnv2")}
    for _, model_name, mode, sequence in ex._ENCODER_CASES[hidden]:
        model = models[model_name]
        ex._set_mode(model, mode)
        expected = ex.expected_trainable(model, sequence)
        assert sum(not v for v in ex.expected_trainable(model, [False]).values()) > 50  # the encoder is a real part
        for trainable in sequence:
            (unfreeze_encoder if trainable else freeze_encoder)(model)
        assert {n: p.requires_grad for n, p in model.named_parameters()} == expected


CAPSTONE_EDITS = [  # (file under depthkit/, text, replacement): what a capstone might do to the library
    ("data/loader.py", "    if jitter > 0:\n",
     '    out["images"] = (out["images"] + 0.02 * torch.rand(out["images"].shape, generator=generator)).clamp(0, 1)\n'
     "    if jitter > 0:\n"),
    ("train.py", '    if schedule == "cosine":\n',
     '    if schedule == "cosine" and epoch < 2:  # a warm-up\n        return base * (epoch + 1) / 3\n'
     '    if schedule == "cosine":\n'),
    ("losses.py", "    error = (normalize_depth(pred, valid) - normalize_depth(depth, valid)) ** 2\n",
     "    error = (normalize_depth(pred, valid) - normalize_depth(depth, valid)).abs()  # an L1 loss\n"),
    ("losses.py", "    ordinal = F.softplus(-r * diff)\n", "    ordinal = F.softplus(-r * diff + 0.5)  # a margin\n"),
    ("metrics.py", "    rel[d_a > (1 + delta) * d_b] = 1\n", "    rel[d_a >= (1 + delta) * d_b] = 1\n"),
    ("models.py", '        return self.combine(self.lraspp(x)["out"])\n',
     '        return torch.exp(self.combine(self.lraspp(x)["out"]))  # a log-depth head\n'),
    ("models.py", "    for p in encoder_parameters(model):\n        p.requires_grad_(False)\n",
     "    for p in encoder_parameters(model):\n        p.requires_grad_(False)\n"
     "    encoder_module(model).eval()  # BatchNorm statistics frozen too\n"),
]

RUN_CHECKS = """
import json, sys
import depthkit
from depthkit.course.exercises import CHECKS
from depthkit.course.answer_key import main
print("depthkit from", depthkit.__file__)
for number, (source, name) in json.load(open(sys.argv[1])).items():
    scope = {}
    exec(compile(source, "<exercise " + number + ">", "exec"), scope)
    for hidden in (False, True):
        CHECKS[number](scope[name], hidden=hidden)
print("key check exit", main([]))
"""


@pytest.mark.slow  # a fresh interpreter imports torch, torchvision and smp
def test_a_capstone_edit_of_the_library_fails_no_correct_answer_and_shows_in_the_key_check(tmp_path):
    """Noise in ``augment``, a warm-up in the schedule, other losses, a log-depth head, a freeze that also sets
    eval(): planted in a copy of the package, correct answers still pass every check, visible and hidden, and
    ``python -m depthkit.course.answer_key`` names every exercise whose reference moved."""
    copy = tmp_path / "depthkit"
    shutil.copytree(REPO / "depthkit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for file, text, replacement in CAPSTONE_EDITS:
        source = (copy / file).read_text()
        assert source.count(text) == 1, f"{file}: the planted edit no longer applies"
        (copy / file).write_text(source.replace(text, replacement))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({n: (exercise_cell(n), FUNCTIONS[n]) for n in ex.CHECKS}))
    (tmp_path / "run_checks.py").write_text(RUN_CHECKS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, str(tmp_path / "run_checks.py"), str(answers)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert out[0] == f"depthkit from {copy / '__init__.py'}"
    assert sum(line.startswith("PASS") for line in out) == 2 * len(ex.CHECKS), out
    moved = sorted(line.split(":")[0].split(".cases")[0] for line in out if re.match(r"\d\d\.\d", line))
    assert moved == ["02.1", "02.2", "02.3", "03.1", "05.1", "05.2"], out
    assert out[-1] == "key check exit 1"


def test_the_checks_expect_what_the_key_holds_not_what_the_live_library_returns(monkeypatch, capsys):
    """The same, in this process: the library's functions given other code (as an edited file would) change nothing."""
    from depthkit import losses, train
    from depthkit.data import loader

    def warm(base, epoch, total, schedule="constant"):
        return base * (epoch + 1) / 3 if epoch < 2 else base

    def noisy(batch, generator, jitter=0.2):
        return {**batch, "images": batch["images"] + 0.5}

    def other(pred, depth, mask=None, reduction="mean"):
        return (pred - depth).abs().mean()

    monkeypatch.setattr(train.learning_rate, "__code__", warm.__code__)
    monkeypatch.setattr(loader.augment, "__code__", noisy.__code__)
    monkeypatch.setattr(losses.normalized_mse, "__code__", other.__code__)
    assert train.learning_rate(1.0, 0, 10, "cosine") != 1.0  # the plant is live
    for number in ("02.1", "05.1", "05.2"):
        passes(ex.CHECKS[number], solution(number), capsys)
    assert len(answer_key.differences(stored_key())) == 3


# ---- correct answers written other ways pass -----------------------------------------------------------


def nmse_float64(pred, depth, mask):
    p, d = pred.double(), depth.double()
    big = torch.tensor(math.inf, dtype=torch.float64)

    def unit(x):
        lo = torch.where(mask, x, big).flatten(1).min(dim=1).values.view(-1, 1, 1, 1)
        hi = torch.where(mask, x, -big).flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
        return torch.where(hi > lo, (x - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi)), torch.zeros_like(x))

    n = mask.flatten(1).sum(1)
    per_image = (((unit(p) - unit(d)) ** 2) * mask).flatten(1).sum(1) / n.clamp_min(1)
    return (per_image * (n > 0)).sum() / (n > 0).sum()


def nmse_loop(pred, depth, mask):  # one image at a time, valid pixels picked out
    scores = []
    for p, d, m in zip(pred, depth, mask):
        p, d = p[m], d[m]
        if len(p) == 0:
            continue
        unit = [(x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else torch.zeros_like(x) for x in (p, d)]
        scores.append(((unit[0] - unit[1]) ** 2).mean())
    return torch.stack(scores).mean()


def ranking_float64(pred, pairs, relation):
    b = torch.arange(pred.shape[0]).view(-1, 1)
    diff = (pred[b, 0, pairs[..., 0], pairs[..., 1]] - pred[b, 0, pairs[..., 2], pairs[..., 3]]).double()
    r = relation.double()
    return torch.where(relation == 0, diff**2, -F.logsigmoid(r * diff)).mean()


def ranking_loop(pred, pairs, relation):
    terms = []
    for i in range(pairs.shape[0]):
        for (ya, xa, yb, xb), r in zip(pairs[i].tolist(), relation[i].tolist()):
            d = pred[i, 0, ya, xa] - pred[i, 0, yb, xb]
            terms.append(d * d if r == 0 else torch.clamp(-r * d, min=0) + torch.log1p(torch.exp(-torch.abs(d))))
    return torch.stack(terms).mean()


def whdr_float32_division(pred, pairs, relation, delta):  # the ratio itself, in float32, and a float32 mean
    b = torch.arange(pred.shape[0]).view(-1, 1)
    ratio = pred[b, 0, pairs[..., 0], pairs[..., 1]] / pred[b, 0, pairs[..., 2], pairs[..., 3]]
    predicted = (ratio > 1 + delta).long() - (1 / ratio > 1 + delta).long()
    return (predicted != relation).float().mean().item()


def whdr_loop(pred, pairs, relation, delta):
    wrong = total = 0
    for i in range(pairs.shape[0]):
        for (ya, xa, yb, xb), r in zip(pairs[i].tolist(), relation[i].tolist()):
            a, b = float(pred[i, 0, ya, xa]), float(pred[i, 0, yb, xb])
            guess = 1 if a > (1 + delta) * b else -1 if b > (1 + delta) * a else 0
            wrong, total = wrong + (guess != r), total + 1
    return wrong / total


def combine_loop(maps, weight, bias):
    out = torch.zeros_like(maps[:, :1], dtype=torch.float64) + float(bias)
    for c in range(maps.shape[1]):
        out = out + float(weight[c]) * maps[:, c : c + 1].double()
    return out


def encoder_whole_module(model, trainable):
    model.encoder.requires_grad_(trainable)


def encoder_by_identity(model, trainable):
    encoder = {id(p) for p in model.encoder.parameters()}
    for _, p in model.named_parameters():
        if id(p) in encoder:
            p.requires_grad = trainable


def flip_by_index(batch):
    w = batch["images"].shape[-1]
    columns = torch.arange(w - 1, -1, -1)
    out = {k: v for k, v in batch.items()}
    out["images"] = batch["images"][..., columns]
    if "depths" in batch:
        out["depths"] = batch["depths"][..., columns]
    ya, xa, yb, xb = batch["pairs"].unbind(-1)
    out["pairs"] = torch.stack([ya, w - 1 - xa, yb, w - 1 - xb], dim=-1)
    return out


def flip_with_torch_flip(batch):
    import copy

    out = copy.deepcopy(batch)
    for key in ("images", "depths"):
        if key in out:
            out[key] = torch.flip(out[key], dims=(3,))
    out["pairs"][..., [1, 3]] = out["images"].shape[3] - 1 - out["pairs"][..., [1, 3]]
    return out


def cosine_float32(base, epoch, total):
    t = torch.tensor(epoch / (total or 1), dtype=torch.float32)
    return (base * (0.05 + 0.95 * 0.5 * (1 + torch.cos(torch.pi * t)))).item()


def cosine_min_max(base, epoch, total):
    low = 0.05 * base
    return low + (base - low) * (1 + np.cos(np.pi * epoch / max(1, total))) / 2


def align_lstsq(pred, depth, mask):  # torch.linalg.lstsq on [p, 1] per image (minimum norm for a constant p)
    out = []
    for p, d, m in zip(pred, depth, mask):
        x = p[m].double()
        a = torch.stack([x, torch.ones_like(x)], dim=1)
        s, t = torch.linalg.lstsq(a, d[m].double()[:, None]).solution[:, 0]
        out.append(s * p.double() + t)
    return torch.stack(out)


def align_normal_equations(pred, depth, mask):  # the 2 x 2 normal equations, solved in closed form, float32
    m = mask.to(pred.dtype)
    n = m.sum(dim=(1, 2, 3), keepdim=True)
    sp, sd = (pred * m).sum(dim=(1, 2, 3), keepdim=True), (depth * m).sum(dim=(1, 2, 3), keepdim=True)
    spp, spd = (pred * pred * m).sum(dim=(1, 2, 3), keepdim=True), (pred * depth * m).sum(dim=(1, 2, 3), keepdim=True)
    det = n * spp - sp * sp
    flat = det <= 1e-6 * n * n
    s = torch.where(flat, torch.zeros_like(det), (n * spd - sp * sd) / torch.where(flat, torch.ones_like(det), det))
    t = (sd - s * sp) / n
    return s * pred + t


def band_numpy(a, b):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    return math.inf if len(d) < 10 else 2 * d.std(ddof=1) / math.sqrt(len(d))


def band_torch_float32(a, b):  # in float32, the sample variance written out, a 0-dim tensor returned
    d = a - b
    d = d[torch.isfinite(d)]
    n = d.numel()
    if n < 10:
        return torch.tensor(math.inf)
    return 2 * torch.sqrt(((d - d.mean()) ** 2).sum() / (n - 1) / n)


def loop_zero_grad_last(model, batches, optimizer, loss_fn):  # zero_grad after the step, detached 0-dim tensors kept
    model.train()
    optimizer.zero_grad(set_to_none=False)
    losses = []
    for batch in batches:
        loss = loss_fn(model(batch["images"]), batch["depths"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        losses.append(loss.detach())
    return losses


def loop_by_index(model, batches, optimizer, loss_fn):  # a model.zero_grad, an index loop, a tuple returned
    model.train(True)
    out = []
    for i in range(len(batches)):
        images, depths = batches[i]["images"], batches[i]["depths"]
        model.zero_grad()
        loss = loss_fn(model(images), depths)
        out.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
    return tuple(out)


VARIANTS = {
    "02.1": [nmse_float64, nmse_loop],
    "02.2": [ranking_float64, ranking_loop],
    "02.3": [whdr_float32_division, whdr_loop],
    "03.1": [lambda maps, w, b: torch.einsum("bchw,c->bhw", maps, w)[:, None] + b,
             lambda maps, w, b: F.conv2d(maps, w.view(1, -1, 1, 1), b.view(1)), combine_loop],
    "03.2": [align_lstsq, align_normal_equations],
    "03.3": [band_numpy, band_torch_float32],
    "04.1": [encoder_whole_module, encoder_by_identity],
    "04.2": [loop_zero_grad_last, loop_by_index],
    "05.1": [flip_by_index, flip_with_torch_flip],
    "05.2": [cosine_float32, cosine_min_max],
}


@pytest.mark.parametrize("number, variant", [(n, v) for n, vs in VARIANTS.items() for v in vs],
                         ids=lambda x: x if isinstance(x, str) else getattr(x, "__name__", "lambda"))
def test_a_correct_answer_written_another_way_passes(number, variant, capsys):
    passes(ex.CHECKS[number], variant, capsys)
    passes(ex.CHECKS[number], variant, capsys, hidden=True)


def test_a_float32_share_passes_although_it_is_not_the_float64_one():
    """02.3's old "expected 0.777778, got 0.777778": a float32 mean of 7 of 9 is 0.7777777910232544."""
    pred = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    pairs = torch.tensor([[[0, 0, 0, 1]] * 9])
    relation = torch.tensor([[1] * 7 + [-1] * 2])
    got = whdr_float32_division(pred, pairs, relation, 0.0)
    assert got != 7 / 9 and abs(got - 7 / 9) < 1e-7
    assert ex._share_problem(7 / 9, got) is None
    assert ex._share_problem(7 / 9, 6 / 9) == "expected 0.777778, got 0.666667"
    from depthkit.course.checks import close
    assert close(0.5, 0.50001, rtol=0, atol=1e-9) == "expected 0.5, got 0.50001"  # digits enough to tell apart


# ---- planted wrong answers, of the kinds students write ------------------------------------------------


def _gather(pred, pairs, one_based=False, swap=False, batch="own"):
    image = torch.arange(pred.shape[0])[:, None]
    p = pairs - 1 if one_based else pairs
    ya, xa, yb, xb = (p[..., i] for i in ((1, 0, 3, 2) if swap else (0, 1, 2, 3)))
    if batch == "all":  # no batch index: every image at every pair
        return pred[:, 0, ya, xa], pred[:, 0, yb, xb]
    if batch == "first":
        return pred[0, 0, ya, xa], pred[0, 0, yb, xb]
    return pred[image, 0, ya, xa], pred[image, 0, yb, xb]


def _unit(x, mask):
    lo = torch.where(mask, x, torch.full_like(x, math.inf)).amin(dim=(1, 2, 3), keepdim=True)
    hi = torch.where(mask, x, torch.full_like(x, -math.inf)).amax(dim=(1, 2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))


def _nmse(pred, depth, mask, unit=_unit, empty="drop", out="tensor"):
    count = mask.sum(dim=(1, 2, 3))
    error = (unit(pred, mask) - unit(depth, mask)) ** 2 * mask
    if empty == "nan":  # 0 / 0 for an image without a valid pixel, then the plain mean
        value = (error.sum(dim=(1, 2, 3)) / count).mean()
    elif empty == "zero":  # its 0 kept in the mean
        value = (error.sum(dim=(1, 2, 3)) / count.clamp_min(1)).mean()
    else:
        value = (error.sum(dim=(1, 2, 3)) / count.clamp_min(1))[count > 0].mean()
    return {"tensor": value, "item": value.item(), "numpy": value.detach().numpy().astype(np.float64)[()],
            "detach": value.detach(), "shape1": value.reshape(1)}[out]


def nmse_mask_ignored(pred, depth, mask):  # min-max over every pixel, holes included
    return _nmse(pred, depth, mask, unit=lambda x, m: _unit(x, torch.ones_like(m)))


def nmse_mean_over_all_pixels(pred, depth, mask):  # the mean over all pixels instead of the valid ones
    return (((_unit(pred, mask) - _unit(depth, mask)) ** 2) * mask).mean(dim=(1, 2, 3)).mean()


def nmse_pooled(pred, depth, mask):  # one mean over every valid pixel of the batch, not per image
    return (((_unit(pred, mask) - _unit(depth, mask)) ** 2) * mask).sum() / mask.sum()


def nmse_batch_min_max(pred, depth, mask):  # one min and max for the whole batch
    def unit(x, m):
        lo, hi = x[m].min(), x[m].max()
        return (x - lo) / (hi - lo)
    return _nmse(pred, depth, mask, unit=unit)


def nmse_flat_gives_nan(pred, depth, mask):  # no care for a constant map: 0 / 0
    def unit(x, m):
        lo = torch.where(m, x, torch.full_like(x, math.inf)).amin(dim=(1, 2, 3), keepdim=True)
        hi = torch.where(m, x, torch.full_like(x, -math.inf)).amax(dim=(1, 2, 3), keepdim=True)
        return (x - lo) / (hi - lo)
    return _nmse(pred, depth, mask, unit=unit)


@pytest.mark.parametrize("wrong, case, says", [
    (nmse_mask_ignored, "masked pixels", "expected"),
    (nmse_mean_over_all_pixels, "masked pixels", "expected"),
    (nmse_pooled, "images with different numbers of valid pixels", "expected"),
    (nmse_batch_min_max, "3 images, every pixel valid (each normalised on its own)", "expected"),
    (nmse_flat_gives_nan, "a flat (constant) prediction", "got nan"),
    (functools.partial(_nmse, empty="nan"), "an image without a valid pixel (left out of the mean)", "got nan"),
    (functools.partial(_nmse, empty="zero"), "an image without a valid pixel (left out of the mean)",
     "expected 0.288712, got 0.192474"),
    (functools.partial(_nmse, out="item"), "3 images", "expected a 0-dim tensor (a training loss keeps its gradient), got float"),
    (functools.partial(_nmse, out="numpy"), "3 images", "expected a 0-dim tensor (a training loss keeps its gradient), got float64"),
    (functools.partial(_nmse, out="shape1"), "3 images", "expected a 0-dim float tensor, got shape (1,)"),
    (functools.partial(_nmse, out="detach"), "the gradient with respect to pred", "the result has no gradient"),
])
def test_normalized_mse_check_catches(wrong, case, says):
    message = verdict(ex.check_normalized_mse, wrong)
    assert f"case '{case}" in message and says in message, message


def _ranking(sign=1, r0="square", one_based=False, swap=False, naive=False, out="mean", batch="own"):
    def loss(pred, pairs, relation):
        z_a, z_b = _gather(pred, pairs, one_based, swap, batch)
        diff = z_a - z_b
        r = relation.to(diff.dtype) * sign
        ordinal = torch.log(1 + torch.exp(-r * diff)) if naive else F.softplus(-r * diff)
        equal = {"square": diff**2, "ordinal": ordinal, "abs": diff.abs()}[r0]
        per_pair = torch.where(relation == 0, equal, ordinal)
        return {"mean": per_pair.mean(), "sum": per_pair.sum(), "detach": per_pair.mean().detach(),
                "item": per_pair.mean().item()}[out]
    return loss


@pytest.mark.parametrize("wrong, case", [
    (_ranking(sign=-1), "one pair, r = +1 (A farther)"),  # the report's printed convention
    (_ranking(r0="ordinal"), "one pair, r = 0 (equal): the squared difference"),
    (_ranking(r0="abs"), "one pair, r = 0 (equal): the squared difference"),
    (_ranking(one_based=True), "0-based (y, x): row 0 and column 0 are pixels too"),
    (_ranking(swap=True), "pairs hold (y, x): the row first, then the column"),
    (_ranking(out="sum"), "the mean over the pairs (4 pairs in one image)"),
    (_ranking(batch="all"), "each pair reads its own image (3 images, one pair each)"),
    (_ranking(batch="first"), "each pair reads its own image (3 images, one pair each)"),
    (_ranking(naive=True), "large depth differences"),
    (_ranking(out="detach"), "the gradient with respect to pred"),
    (_ranking(out="item"), "one pair, r = +1"),
])
def test_ranking_loss_check_catches_each_mistake_at_the_case_named_after_it(wrong, case):
    assert f"case '{case}" in verdict(ex.check_ranking_loss, wrong)


def test_the_one_pair_cases_are_off_the_diagonal_and_batch_blind():
    """Swapped x / y, a sum and a missing batch index pass the first cases, so the case that fails names them."""
    for case in ex._ranking_cases(False)[:5]:
        _, pairs, _ = case.args()
        assert pairs.shape[:2] == (1, 1) and (pairs[..., 0::2] != pairs[..., 1::2]).all(), case.name  # ya != xa, yb != xb


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
        elif mode in ("no equal", "tensor"):  # the sign only, whatever delta
            predicted = torch.sign(z_a - z_b).long() if mode == "no equal" else \
                (z_a > (1 + delta) * z_b).long() - (z_b > (1 + delta) * z_a).long()
        elif mode == "count":
            predicted = (z_a > (1 + delta) * z_b).long() - (z_b > (1 + delta) * z_a).long()
            return float((predicted != relation).sum())
        wrong = (predicted != relation).double().mean()
        return wrong if mode == "tensor" else wrong.item()
    return metric


@pytest.mark.parametrize("mode, case, says", [
    ("difference", "delta = 0.1: a ratio, not a difference", "expected 0, got 0.5"),
    ("ties right", "delta = 0: an exact tie is 'equal'", "expected 1, got"),
    ("no equal", "delta = 0.25, r = 0 pairs: 'equal' while the ratio stays within 1 + delta", "expected 0.4, got 0.8"),
    ("count", "delta = 0: the share of wrong pairs, not their number", "expected 0.833333, got 5"),
    ("tensor", "delta = 0: the share", "expected a Python float (a tensor's .item() is one), got Tensor"),
])
def test_whdr_check_catches(mode, case, says):
    message = verdict(ex.check_whdr, _whdr(mode))
    assert f"case '{case}" in message and says in message, message


@pytest.mark.parametrize("wrong, case, says", [
    (lambda maps, w, b: maps.mean(dim=1, keepdim=True) + b, "21 maps, batch of 2, bias 0", "expected"),  # weights ignored
    (lambda maps, w, b: (maps * w[None, :, None, None]).sum(dim=1) + b, "21 maps, batch of 2, bias 0",
     "expected shape (2, 1, 4, 4), got (2, 4, 4)"),  # [B, H, W]
    (lambda maps, w, b: (maps * w[None, :, None, None]).sum(dim=1, keepdim=True), "the bias, added once", "expected"),
    (lambda maps, w, b: (maps * w[None, :, None, None] + b).sum(dim=1, keepdim=True), "the bias, added once", "expected"),
    (lambda maps, w, b: (maps[:, :21] * w[None, :21, None, None]).sum(1, keepdim=True) + b
     if maps.shape[1] == 21 else maps[:, :1] * 0, "3 maps instead of 21", "expected"),  # hard-coded 21 maps
])
def test_combine_maps_check_catches(wrong, case, says):
    message = verdict(ex.check_combine_maps, wrong)
    assert f"case '{case}" in message and says in message, message


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


def freezes_and_sets_eval(model, trainable):  # also puts the encoder in eval(): the mode is not the exercise's
    model.encoder.requires_grad_(trainable)
    model.encoder.train(trainable)


def freezes_and_calls_train(model, trainable):
    model.encoder.requires_grad_(trainable)
    model.train()


def only_lraspp(model, trainable):
    model.lraspp.backbone.requires_grad_(trainable)


def reinitialises(model, trainable):
    for p in model.encoder.parameters():
        p.requires_grad_(trainable)
    torch.nn.init.zeros_(next(model.parameters()))


@pytest.mark.parametrize("wrong, case, says", [
    (freeze_everything, "LR-ASPP: freeze", "(decoder/head) should have requires_grad=True, got False"),
    (never_unfreezes, "LR-ASPP: freeze, then unfreeze", "requires_grad=True"),
    (freezes_the_decoder, "LR-ASPP: freeze", "(encoder) should have requires_grad=False"),
    (eval_instead, "LR-ASPP: freeze", "requires_grad=False"),
    (freezes_and_sets_eval, "LR-ASPP: freeze", "switched lraspp.backbone to eval() mode; the train/eval mode is not touched"),
    (freezes_and_calls_train, "LR-ASPP in eval() mode", "switched the model to train() mode"),
    (only_lraspp, "U-Net++ (MobileNetV2): freeze", "AttributeError"),
    (reinitialises, "LR-ASPP: freeze", "changed the weights"),
])
def test_encoder_check_catches(wrong, case, says):
    message = verdict(ex.check_set_encoder_trainable, wrong)
    assert f"case '{case}" in message and says in message, message


def _flip(pairs_flipped=True, off_by_one=False, use_height=False, flip_rows=False, in_place=False,
          drop_depth=False, negate=False, vertical=False):
    def fn(batch):
        out = batch if in_place else dict(batch)
        h, w = batch["images"].shape[-2:]
        size = h if use_height else w
        axis = -2 if vertical else -1
        out["images"] = batch["images"].flip(axis)
        if "depths" in batch and not drop_depth:
            out["depths"] = batch["depths"].flip(axis)
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


@pytest.mark.parametrize("wrong, case, says", [
    (_flip(pairs_flipped=False), "batch of 3 with depth maps", "'pairs'"),
    (_flip(off_by_one=True), "batch of 3 with depth maps", "'pairs'"),
    (_flip(use_height=True), "non-square images (4 x 9): the width, not the height", "'pairs'"),
    (_flip(flip_rows=True), "batch of 3 with depth maps", "'pairs'"),
    (_flip(vertical=True), "batch of 3 with depth maps", "'images'"),
    (_flip(in_place=True), "batch of 3 with depth maps", "changed its input in place"),
    (_flip(drop_depth=True), "batch of 3 with depth maps", "the result has no 'depths'"),
    (_flip(negate=True), "batch of 3 with depth maps", "'relation'"),
])
def test_flip_check_catches(wrong, case, says):
    message = verdict(ex.check_hflip_batch, wrong)
    assert f"case '{case}" in message and says in message, message


@pytest.mark.parametrize("wrong, case, says", [
    (lambda base, e, t: base * 0.5 * (1 + math.cos(math.pi * e / max(t, 1))), "the end", "expected 5e-05, got 0"),
    (lambda base, e, t: base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (e + 1) / max(t, 1)))), "first epoch", "expected"),
    (lambda base, e, t: base * (1 - 0.95 * e / max(t, 1)), "last epoch", "expected"),  # linear
    (lambda base, e, t: base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * e / max(t - 1, 1)))), "the end", "expected"),
    (lambda base, e, t: base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * e / t))), "total = 0 counts as 1",
     "ZeroDivisionError"),
])
def test_cosine_lr_check_catches(wrong, case, says):
    message = verdict(ex.check_cosine_lr, wrong)
    assert f"case '{case}" in message and says in message, message


def _align(pred, depth, mask, mode="right"):
    """The closed form (covariance over variance) with the planted mistakes of ``mode``."""
    p, d = (pred, depth) if mode != "depth to pred" else (depth, pred)
    m = torch.ones_like(mask) if mode == "no mask" else mask
    w = m.to(pred.dtype)
    n = w.sum(dim=(1, 2, 3), keepdim=True)
    mp, md = (p * w).sum(dim=(1, 2, 3), keepdim=True) / n, (d * w).sum(dim=(1, 2, 3), keepdim=True) / n
    cov = ((p - mp) * (d - md) * w).sum(dim=(1, 2, 3), keepdim=True)
    var = ((p - mp) ** 2 * w).sum(dim=(1, 2, 3), keepdim=True)
    if mode == "scale only":  # s * pred, no shift: s = sum(p d) / sum(p p)
        return (p * d * w).sum(dim=(1, 2, 3), keepdim=True) / (p * p * w).sum(dim=(1, 2, 3), keepdim=True) * p
    if mode == "flat gives nan":
        return cov / var * (p - mp) + md
    s = torch.where(var > 1e-9, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    if mode == "depth to pred":  # fitted depth -> pred (s * depth + t ~ pred), then inverted to map pred to depth
        return (pred - (md - s * mp)) / s
    if mode == "aligned depth":  # the depth brought to the prediction, returned instead of the prediction
        return cov / ((d - md) ** 2 * w).sum(dim=(1, 2, 3), keepdim=True) * (d - md) + mp
    return s * (p - mp) + md


@pytest.mark.parametrize("mode, case, says", [
    ("no mask", "masked pixels (holes: depth 0, wild predictions; fit on the valid pixels only)", "expected"),
    ("scale only", "3 images, every pixel valid", "expected"),
    ("depth to pred", "3 images, every pixel valid", "expected"),
    ("aligned depth", "3 images, every pixel valid", "expected"),
    ("flat gives nan", "a constant prediction in image 1 (scale 0: the mean depth of its valid pixels)", "got nan"),
])
def test_align_check_catches(mode, case, says):
    message = verdict(ex.check_align_scale_shift, functools.partial(_align, mode=mode))
    assert f"case '{case}" in message and says in message, message


def test_the_planted_alignment_is_right_when_nothing_is_planted(capsys):
    passes(ex.check_align_scale_shift, _align, capsys)
    passes(ex.check_align_scale_shift, _align, capsys, hidden=True)


def _band(a, b, paired=True, ddof=1, root=True, finite=True, z=2.0, minimum=10):
    a, b = a.double(), b.double()
    if paired:
        d = a - b
        d = d[torch.isfinite(d)] if finite else d
        if len(d) < minimum:
            return math.inf
        se = d.std(correction=ddof) / (math.sqrt(len(d)) if root else 1)
    else:  # two independent standard errors, each over its own finite values
        a, b = a[torch.isfinite(a)], b[torch.isfinite(b)]
        if min(len(a), len(b)) < minimum:
            return math.inf
        se = torch.sqrt(a.var() / len(a) + b.var() / len(b))
    return z * float(se)


@pytest.mark.parametrize("wrong, case, says", [
    (functools.partial(_band, paired=False), "30 images, b follows a image by image", "expected 0.00632613, got 0.0444"),
    (functools.partial(_band, ddof=0), "30 images, b follows a image by image", "expected 0.00632613, got 0.00621"),
    (functools.partial(_band, root=False), "30 images, b follows a image by image", "expected 0.00632613, got 0.0346"),
    (functools.partial(_band, finite=False), "an image not scored in a (NaN): that image is left out of both", "got nan"),
    (functools.partial(_band, z=1.0), "30 images, b follows a image by image", "expected 0.00632613, got 0.00316"),
    (functools.partial(_band, minimum=2), "NaN at 12 of 20 images: 8 scored images are fewer than 10, no band (inf)",
     "expected inf, got 0.00"),
])
def test_paired_band_check_catches(wrong, case, says):
    message = verdict(ex.check_paired_band, wrong)
    assert f"case '{case}" in message and says in message, message


def test_the_planted_band_is_right_when_nothing_is_planted(capsys):
    passes(ex.check_paired_band, _band, capsys)
    passes(ex.check_paired_band, _band, capsys, hidden=True)


def _loop(zero_grad=True, order="backward, step", train=True, record="item", eval_mode=False):
    def train_steps(model, batches, optimizer, loss_fn):
        if train:
            model.train()
        if eval_mode:  # "no dropout or batch statistics while training": the model left in eval()
            model.eval()
        out = []
        for batch in batches:
            if zero_grad:
                optimizer.zero_grad()
            loss = loss_fn(model(batch["images"]), batch["depths"])
            if order == "backward, step":
                loss.backward()
                optimizer.step()
            elif order == "step, backward":
                optimizer.step()
                loss.backward()
            elif order == "item only":  # the loss read with .item() and stepped on without a backward
                optimizer.step()
            out.append(loss.item())
        if record == "running mean":  # the mean so far at each step, as a progress bar shows it
            out = [sum(out[:i + 1]) / (i + 1) for i in range(len(out))]
        elif record == "mean":
            return sum(out) / len(out)
        return out
    return train_steps


@pytest.mark.parametrize("wrong, case, says", [
    (_loop(zero_grad=False), "3 steps, Adam, the model in train() mode", "the loss of step 2 (of 3): expected 3.7285, got 3.73"),
    (_loop(order="step, backward"), "3 steps, Adam", "the loss of step 1 (of 3): expected 4.16207, got 4.27"),
    (_loop(order="item only"), "3 steps, Adam", "the loss of step 1 (of 3): expected 4.16207, got 4.27"),
    (_loop(train=False), "the model comes in eval() mode: the loop trains it in train() mode",
     "the loss of step 0 (of 3): expected 3.43665, got 3.349"),
    (_loop(eval_mode=True), "3 steps, Adam", "the loss of step 0 (of 3)"),
    (_loop(record="running mean"), "3 steps, Adam", "the loss of step 1 (of 3): expected 4.16207, got 4.31"),
    (_loop(record="mean"), "3 steps, Adam", "expected a list of 3 losses (one float per step), got float"),
])
def test_training_loop_check_catches(wrong, case, says):
    message = verdict(ex.check_train_steps, wrong)
    assert f"case '{case}" in message and says in message, message


def test_the_planted_loop_is_right_when_nothing_is_planted(capsys):
    passes(ex.check_train_steps, _loop(), capsys)
    passes(ex.check_train_steps, _loop(), capsys, hidden=True)


def test_the_training_loop_check_compares_the_weights_too(capsys):
    """Catches: a loop whose losses are right but whose last step is lost (the weights it leaves are not the library's)."""
    def forgets_the_last_step(model, batches, optimizer, loss_fn):
        model.train()
        out = []
        for i, batch in enumerate(batches):
            optimizer.zero_grad()
            loss = loss_fn(model(batch["images"]), batch["depths"])
            loss.backward()
            if i < len(batches) - 1:
                optimizer.step()
            out.append(loss.item())
        return out

    message = verdict(ex.check_train_steps, forgets_the_last_step)
    assert "case '3 steps, Adam" in message and "the losses match, but the weights after the steps do not" in message, message


def test_the_training_loop_key_is_the_library_s_own_loop():
    """The key of 04.2 is train_one_epoch's: its step losses, and the loss of its first step is the plain forward's."""
    case = ex._loop_cases(False)[0]
    model, batches, _, loss_fn = case.args(torch.float64)
    with torch.no_grad():
        first = float(loss_fn(model.train()(batches[0]["images"]), batches[0]["depths"]))
    assert math.isclose(stored_key()["exercises"]["04.2"]["cases"][0]["losses"][0], first, rel_tol=1e-6)


# ---- an answer that edits its inputs in place is refused, although what it returns is right ------------


def _in_place(number):
    """(an answer that edits an input in place and returns the right value, the same answer without the edit)."""
    def nmse(pred, depth, mask, edit):
        if edit:
            depth[~mask] = depth[mask].mean()  # "fill the holes": the min-max over valid pixels does not see it
        return _nmse(pred, depth, mask)

    def combine(maps, weight, bias, edit):
        scaled = maps.mul_(weight[None, :, None, None]) if edit else maps * weight[None, :, None, None]
        return scaled.sum(dim=1, keepdim=True) + bias

    def align(pred, depth, mask, edit):
        if not edit:
            return _align(pred, depth, mask)
        w = mask.to(pred.dtype)
        n = w.sum(dim=(1, 2, 3), keepdim=True)
        md = (depth * w).sum(dim=(1, 2, 3), keepdim=True) / n
        pred.sub_((pred * w).sum(dim=(1, 2, 3), keepdim=True) / n)  # centred in place
        cov, var = (pred * (depth - md) * w).sum(dim=(1, 2, 3), keepdim=True), (pred ** 2 * w).sum(dim=(1, 2, 3), keepdim=True)
        return torch.where(var > 1e-9, cov / var.clamp_min(1e-12), torch.zeros_like(var)) * pred + md

    def band(a, b, edit):
        d = a.sub_(b) if edit else a - b
        return _band(d, torch.zeros_like(d))

    def loop(model, batches, optimizer, loss_fn, edit):
        model.train()
        out = []
        for batch in batches:
            if edit:  # a flip "augmentation" written into the caller's batch (refused for the edit, before its losses)
                batch["images"][:] = batch["images"].flip(-1)
                batch["depths"][:] = batch["depths"].flip(-1)
            optimizer.zero_grad()
            loss = loss_fn(model(batch["images"]), batch["depths"])
            loss.backward()
            optimizer.step()
            out.append(loss.item())
        return out

    def flip(batch, edit):
        out = dict(batch)
        w = batch["images"].shape[-1]
        for key in ("images", "depths"):
            if key in batch:
                if edit:
                    batch[key][:] = batch[key].flip(-1)  # flipped where it lies: the caller's batch is changed
                    out[key] = batch[key]
                else:
                    out[key] = batch[key].flip(-1)
        pairs = batch["pairs"].clone()
        pairs[..., [1, 3]] = w - 1 - pairs[..., [1, 3]]
        out["pairs"] = pairs
        return out

    fn = {"02.1": nmse, "03.1": combine, "03.2": align, "03.3": band, "04.2": loop, "05.1": flip}[number]
    return functools.partial(fn, edit=True), functools.partial(fn, edit=False)


@pytest.mark.parametrize("number", ["02.1", "03.1", "03.2", "03.3", "04.2", "05.1"])
def test_an_answer_that_edits_its_inputs_in_place_is_refused_in_one_line(number, capsys):
    """Catches: a check that no longer compares its inputs after the answer ran (``changed_inputs`` switched off):
    each of these answers returns the right value (04.2: the augmentation aside), and only the edit of its input is
    wrong; the edit is named before any value is compared."""
    edits, clean = _in_place(number)
    passes(ex.CHECKS[number], clean, capsys)
    for hidden in (False, True):
        message = verdict(ex.CHECKS[number], edits, hidden=hidden)
        assert re.fullmatch(rf"Exercise {number} \(.+\): FAIL on case '.+': your function changed its input in place "
                            r"\(return new tensors instead\)", message), message


def test_changed_inputs_sees_nan_lists_and_dicts():
    from depthkit.course.checks import changed_inputs

    a = torch.tensor([1.0, math.nan])
    assert changed_inputs((a,), (a.clone(),)) is None  # a NaN where a NaN was is no change
    b = [{"images": torch.zeros(2)}, {"images": torch.ones(2)}]
    c = [{"images": torch.zeros(2)}, {"images": torch.tensor([1.0, 2.0])}]
    assert changed_inputs((b,), (c,)) == "your function changed its input in place (return new tensors instead)"
    assert changed_inputs(({"x": torch.ones(1)},), ({"x": torch.ones(1).double()},)) is not None


def test_every_exercise_has_three_planted_mistakes_and_two_other_correct_answers():
    """The rule this file keeps (issue #26): counted from the tables above."""
    mistakes = {"02.1": test_normalized_mse_check_catches, "02.2": test_ranking_loss_check_catches_each_mistake_at_the_case_named_after_it,
                "02.3": test_whdr_check_catches, "03.1": test_combine_maps_check_catches,
                "03.2": test_align_check_catches, "03.3": test_paired_band_check_catches,
                "04.1": test_encoder_check_catches, "04.2": test_training_loop_check_catches,
                "05.1": test_flip_check_catches, "05.2": test_cosine_lr_check_catches}
    assert set(mistakes) == set(ex.CHECKS) == set(VARIANTS)
    for number, test in mistakes.items():
        marks = [m for m in test.pytestmark if m.name == "parametrize"]
        assert len(marks[0].args[1]) >= 3, number
        assert len(VARIANTS[number]) >= 2, number


def test_messages_never_show_the_reference_source():
    """Every failing message of the planted answers, against every line of the reference implementations."""
    from depthkit import data, evaluate, losses, metrics, models, tensors, train

    references = [losses.normalized_mse, losses.normalized_mse_per_image, tensors.normalize_depth, tensors.masked_mean,
                  losses.ranking_loss, tensors.pair_values, metrics.whdr, metrics.ratio_relation, models.LRASPPDepth,
                  models.freeze_encoder, models.unfreeze_encoder, data.loader.augment, train.learning_rate,
                  tensors.align_scale_shift, evaluate.noise_band, evaluate.standard_error, train.train_one_epoch]
    lines = {line.strip() for ref in references for line in inspect.getsource(ref).splitlines() if len(line.strip()) > 20}
    messages = [verdict(ex.check_normalized_mse, nmse_pooled), verdict(ex.check_ranking_loss, _ranking(sign=-1)),
                verdict(ex.check_whdr, _whdr("difference")), verdict(ex.check_hflip_batch, _flip(pairs_flipped=False)),
                verdict(ex.check_cosine_lr, lambda b, e, t: b), verdict(ex.check_set_encoder_trainable, freeze_everything),
                verdict(ex.check_combine_maps, lambda m, w, b: m.sum(1, keepdim=True)),
                verdict(ex.check_align_scale_shift, functools.partial(_align, mode="scale only")),
                verdict(ex.check_paired_band, functools.partial(_band, paired=False)),
                verdict(ex.check_train_steps, _loop(zero_grad=False)),
                verdict(ex.check_normalized_mse, lambda p, d, m: losses.normalized_mse(p, d, m))]
    for message in messages:
        assert not [line for line in lines if line in message], message
        assert "def " not in message and "return " not in message
