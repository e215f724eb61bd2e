"""The harness of the notebooks' checks: cases, the answer key, one-line verdicts, the reference out of reach.

A check runs the student's function on :class:`Case` arguments (fresh copies for each run) and
compares what comes back with the *answer key*: the outputs of depthkit's own implementation on
the same cases, computed once and stored in ``answer_key.json`` beside this file (written by
``python -m depthkit.course.answer_key --write``). So a capstone that edits the library (noise in
``augment``, a warm-up in the schedule, another loss) changes nothing a check expects. The case
inputs come from Python's ``random`` (whose ``random()`` stream Python guarantees across versions),
never from torch's generators, so the key holds on Colab as here.

The verdict is one ``PASS`` line or an :class:`ExerciseError` whose message is one line: the
exercise, the case, what was expected and what came back. In Jupyter it shows as that line, without
a traceback (``_render_traceback_``), and stops "Run all" at the first exercise that is not right
yet. A stub (``raise NotImplementedError(...)``, what ``python -m depthkit student`` leaves in the
student copies) gives :class:`NotImplementedYet` with the stub's own message.

The student's function runs under a call tracer (``sys.setprofile``): a call into any of depthkit's
own code (the reference, its building blocks, ``depthkit.course`` itself) is refused with one line
naming what was called, however it was reached (an alias, ``functools.partial``, the function
passed in as the answer). Code objects are compared, not module attributes, so an alias is no way
round it. Messages hold numbers, case and function names, never the reference's code.
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

KEY_FILE = Path(__file__).with_name("answer_key.json")
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # .../depthkit/


class ExerciseError(AssertionError):
    """A check's verdict on a wrong answer: one line naming the case, expected and got."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"\x1b[31m✗ {self}\x1b[0m"]


class NotImplementedYet(ExerciseError):
    """The function under check still raises ``NotImplementedError`` (the student copy's stub)."""


@dataclass
class Case:
    """One input of a check: its name (said in the message), a builder of fresh arguments, and its kind."""

    name: str
    args: Callable[[], tuple]
    grad: bool = False  # a loss's gradient case: pred requires grad, the key holds the value and the gradient


# --------------------------------------------------------------------------------------------
# Inputs that are the same on every machine and every torch version
# --------------------------------------------------------------------------------------------


def uniform(seed: int, shape: tuple[int, ...], lo: float = 0.0, hi: float = 1.0) -> Tensor:
    """A float32 tensor of uniform draws in [lo, hi) from ``random.Random(seed).random()`` (stable across versions)."""
    rng = random.Random(seed)
    values = [lo + (hi - lo) * rng.random() for _ in range(math.prod(shape))]
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def integers(seed: int, shape: tuple[int, ...], high: int) -> Tensor:
    """A long tensor of uniform integers in [0, high), drawn as :func:`uniform` draws."""
    rng = random.Random(seed)
    return torch.tensor([int(rng.random() * high) for _ in range(math.prod(shape))], dtype=torch.long).reshape(shape)


# --------------------------------------------------------------------------------------------
# The answer key
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def stored_key() -> dict:
    """The answer key as stored in ``answer_key.json`` (read once per process)."""
    return json.loads(KEY_FILE.read_text(encoding="utf-8"))


def expected_answers(number: str, hidden: bool, n: int) -> list:
    """The stored answers to the ``n`` (hidden) cases of exercise ``number``; one-line error if the key lacks them."""
    try:
        entry = stored_key().get("exercises", {}).get(number, {})
    except (OSError, ValueError) as err:  # e.g. a wheel built without the package data
        raise RuntimeError(f"{KEY_FILE}: cannot read the answer key ({err}); install depthkit with "
                           "`pip install -e .` from its checkout") from None
    answers = entry.get("hidden" if hidden else "cases")
    if not isinstance(answers, list) or len(answers) != n:
        raise RuntimeError(f"{KEY_FILE}: no answers for the {n} {'hidden ' if hidden else ''}cases of exercise "
                           f"{number}; write the key with: python -m depthkit.course.answer_key --write")
    return answers


# --------------------------------------------------------------------------------------------
# Running the student's function with depthkit's own code out of reach
# --------------------------------------------------------------------------------------------


class OutOfReach:
    """A profile hook: notes the first call into depthkit's code (other than ``allow``) while it is installed.

    Importing a depthkit module (its ``<module>`` code and whatever that runs) is not a call.
    """

    def __init__(self, allow: Iterable[CodeType] = ()) -> None:
        self.allow = frozenset(allow)
        self.called: CodeType | None = None
        self._importing: list[FrameType] = []
        self._ours: dict[str, bool] = {}

    def is_depthkit(self, filename: str) -> bool:
        """Whether code compiled from ``filename`` is part of the depthkit package."""
        if filename not in self._ours:
            self._ours[filename] = os.path.abspath(filename).startswith(PACKAGE_DIR)
        return self._ours[filename]

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if self.called is None and code not in self.allow and self.is_depthkit(code.co_filename):
                if code.co_name == "<module>":
                    self._importing.append(frame)
                elif not self._importing:
                    self.called = code
        elif event == "return" and self._importing and frame is self._importing[-1]:
            self._importing.pop()


def code_name(code: CodeType) -> str:
    """``depthkit.losses.normalized_mse``: the module and qualified name of a code object."""
    path = os.path.abspath(code.co_filename)
    module = next((name for name, m in list(sys.modules.items())
                   if getattr(m, "__file__", None) and os.path.abspath(m.__file__) == path), None)
    if module is None:
        module = "depthkit." + os.path.relpath(path, PACKAGE_DIR)[:-3].replace(os.sep, ".")
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def restore_profiler(previous: Any) -> None:
    """Put back the profiler that ran before the check (a function, or cProfile's profiler, which re-enables itself)."""
    if previous is None or callable(previous):
        sys.setprofile(previous)
    elif callable(getattr(previous, "enable", None)):  # cProfile (IPython's %prun) before Python 3.12
        previous.enable()
    else:
        sys.setprofile(None)


def call(title: str, case: Case, fn: Callable, args: tuple, allow: Iterable[CodeType] = ()) -> Any:
    """Run the student's function on one case, depthkit out of reach; a stub, a crash or a call into depthkit raises one line."""
    tracer, previous = OutOfReach(allow), sys.getprofile()
    result, failure = None, None
    sys.setprofile(tracer)
    try:
        result = fn(*args)
    except Exception as err:  # judged below, once the tracer is off
        failure = err
    finally:
        switched_off = sys.getprofile() is not tracer
        sys.setprofile(None)  # first, so that putting the old one back is not traced
        restore_profiler(previous)
    if tracer.called is not None:
        raise ExerciseError(f"{title}: your function calls {code_name(tracer.called)}, depthkit's own code: "
                            "write the exercise without depthkit's functions (it is checked against them)")
    if switched_off:
        raise ExerciseError(f"{title}: your function switched off the check's call tracer (sys.setprofile)")
    if isinstance(failure, NotImplementedError):
        raise NotImplementedYet(f"{title}: not implemented yet ({failure or 'NotImplementedError'})") from None
    if failure is not None:  # the student's bug, named in one line
        text = str(failure).strip().splitlines()[0][:160] if str(failure).strip() else ""
        raise ExerciseError(f"{title}: FAIL on case '{case.name}': your function raised "
                            f"{type(failure).__name__}{': ' + text if text else ''}") from None
    return result


# --------------------------------------------------------------------------------------------
# Comparing, and the loop over the cases
# --------------------------------------------------------------------------------------------


def short(x: Any) -> str:
    """A short text of a value for a one-line message (numbers rounded, tensors summarised)."""
    if isinstance(x, Tensor):
        if x.numel() == 1:
            return f"{x.item():.6g}" if x.is_floating_point() else str(x.item())
        if x.numel() <= 8:
            return str([round(v, 6) if isinstance(v, float) else v for v in x.flatten().tolist()])
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)[:80]


def apart(expected: float, got: float) -> tuple[str, str]:
    """The two numbers with as many digits as it takes to tell them apart (6 at least)."""
    for digits in (6, 9, 12, 17):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            break
    return e, g


def clone_args(args: tuple) -> tuple:
    """Deep copies of the arguments, so the student's in-place edits can be seen and undone."""
    return tuple(copy.deepcopy(a) for a in args)


def close(expected: Any, got: Any, rtol: float = 1e-4, atol: float = 1e-6) -> str | None:
    """``None`` if ``got`` matches ``expected`` (a number, or nested lists for a tensor), else "expected ..., got ...".

    The default tolerance is float32 work with room to spare (a float32 answer is a right answer).
    """
    if isinstance(expected, list):
        want = torch.tensor(expected, dtype=torch.float64)
        if not isinstance(got, Tensor):
            return f"expected a tensor of shape {tuple(want.shape)}, got {type(got).__name__}"
        if tuple(got.shape) != tuple(want.shape):
            return f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
        g = got.detach().double().cpu()
        bad = ~torch.isclose(g, want, rtol=rtol, atol=atol)
        if bad.any():
            at = tuple(int(i) for i in bad.nonzero()[0])
            e, gs = apart(want[at].item(), g[at].item())
            return f"at index {list(at)} expected {e}, got {gs}"
        return None
    try:
        g = torch.as_tensor(got.detach() if isinstance(got, Tensor) else got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"expected a number, got {type(got).__name__}"
    if g.numel() != 1:
        return f"expected one number, got a tensor of shape {tuple(g.shape)}"
    e, g = float(expected), float(g.reshape(()))
    if not math.isclose(g, e, rel_tol=rtol, abs_tol=atol):  # a NaN is never close
        return "expected {}, got {}".format(*apart(e, g))
    return None


def changed_inputs(before: tuple, after: tuple) -> str | None:
    """A message if the student's function edited one of its tensor arguments in place.

    ``before`` are the arguments as built, ``after`` the copies the student's function received; tensors
    are compared wherever they stand (an argument, a dict's values, a list of batches).
    """
    def tensors(x):
        if isinstance(x, Tensor):
            return [x]
        if isinstance(x, dict):
            return [t for v in x.values() for t in tensors(v)]
        if isinstance(x, (list, tuple)):
            return [t for v in x for t in tensors(v)]
        return []

    def same(x: Tensor, y: Tensor) -> bool:  # NaN where NaN was (a score not computed) is unchanged
        x, y = x.detach(), y.detach()
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        return torch.equal(x, y) or (x.is_floating_point() and bool(torch.isclose(x, y, rtol=0, atol=0, equal_nan=True).all()))

    for a, b in zip(before, after):
        ta, tb = tensors(a), tensors(b)
        if len(ta) != len(tb) or not all(same(x, y) for x, y in zip(ta, tb)):
            return "your function changed its input in place (return new tensors instead)"
    return None


def passed(title: str, n: int, hidden: bool, what: str = "") -> None:
    """Print the one PASS line of a check (``hidden``: of its hidden tests)."""
    print(f"PASS  {title}{', hidden tests' if hidden else ''}: all {n} cases{what}")


def run_cases(title: str, fn: Callable, cases: list[Case], expected: list,
              compare: Callable[..., str | None] = close, hidden: bool = False, say_pass: bool = True,
              with_inputs: bool = False) -> None:
    """Every case through ``fn`` against its stored answer; the first mismatch raises, else one PASS line.

    ``with_inputs``: ``compare(args, want, got)`` also sees the case's inputs (a flip or an alignment is judged
    against them); otherwise ``compare(want, got)``.
    """
    if not callable(fn):
        raise ExerciseError(f"{title}: expected a function, got {type(fn).__name__}")
    for case, want in zip(cases, expected):
        args = case.args()
        mine = clone_args(args)
        got = call(title, case, fn, mine)
        problem = changed_inputs(args, mine) or (compare(args, want, got) if with_inputs else compare(want, got))
        if problem is not None:
            raise ExerciseError(f"{title}: FAIL on case '{case.name}': {problem}")
    if say_pass:
        passed(title, len(cases), hidden)
