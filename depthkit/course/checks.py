"""The harness of the notebooks' checks: cases, one-line verdicts, and the errors Jupyter shows without a traceback.

A check runs the student's function and a reference on the same :class:`Case` arguments (fresh
copies for each side) and either prints one ``PASS`` line or raises :class:`ExerciseError` whose
message is one line: the exercise, the case, what was expected and what came back. In Jupyter that
error shows as its one line, without a traceback (``_render_traceback_``), and stops "Run all" at
the first exercise that is not right yet. A stub (``raise NotImplementedError(...)``, what
``python -m depthkit student`` leaves in the student copies) gives :class:`NotImplementedYet`
with the stub's own message. Messages hold numbers and case names, never the reference's code.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor


class ExerciseError(AssertionError):
    """A check's verdict on a wrong answer: one line naming the case, expected and got."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"\x1b[31m✗ {self}\x1b[0m"]


class NotImplementedYet(ExerciseError):
    """The function under check still raises ``NotImplementedError`` (the student copy's stub)."""


@dataclass
class Case:
    """One input of a check: its name (said in the message) and a builder of fresh arguments."""

    name: str
    args: Callable[[], tuple]


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


def clone_args(args: tuple) -> tuple:
    """Deep copies of the arguments, so neither side sees the other's in-place edits."""
    return tuple(copy.deepcopy(a) for a in args)


def call(title: str, case: Case, fn: Callable, args: tuple) -> Any:
    """Run the student's function on one case; a stub or a crash becomes a one-line ExerciseError."""
    try:
        return fn(*args)
    except NotImplementedError as err:
        raise NotImplementedYet(f"{title}: not implemented yet ({err or 'NotImplementedError'})") from None
    except Exception as err:  # the student's bug, named in one line
        text = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise ExerciseError(f"{title}: FAIL on case '{case.name}': your function raised "
                            f"{type(err).__name__}{': ' + text if text else ''}") from None


def close(expected: Any, got: Any, rtol: float = 1e-4, atol: float = 1e-6) -> str | None:
    """``None`` if ``got`` matches ``expected`` (a number or a tensor), else "expected ..., got ..."."""
    if isinstance(expected, Tensor) and expected.numel() > 1:
        if not isinstance(got, Tensor):
            return f"expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        e, g = expected.detach().double(), got.detach().double()
        bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            at = tuple(int(i) for i in bad.nonzero()[0])
            return f"at index {list(at)} expected {e[at].item():.6g}, got {g[at].item():.6g}"
        return None
    try:
        g = torch.as_tensor(got.detach() if isinstance(got, Tensor) else got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"expected a number, got {type(got).__name__}"
    if g.numel() != 1:
        return f"expected one number, got a tensor of shape {tuple(g.shape)}"
    e, g = float(expected), float(g.reshape(()))
    if math.isnan(g) and not math.isnan(e):
        return f"expected {e:.6g}, got nan"
    if not math.isclose(g, e, rel_tol=rtol, abs_tol=atol):
        return f"expected {e:.6g}, got {g:.6g}"
    return None


def run_cases(title: str, fn: Callable, cases: list[Case], reference: Callable,
         compare: Callable[[Any, Any], str | None] = close, say_pass: bool = True) -> None:
    """Every case through ``reference`` and ``fn``; the first mismatch raises, else one PASS line."""
    if not callable(fn):
        raise ExerciseError(f"{title}: expected a function, got {type(fn).__name__}")
    for case in cases:
        args = case.args()
        expected = reference(*clone_args(args))
        mine = clone_args(args)
        got = call(title, case, fn, mine)
        problem = compare(expected, got)
        if problem is None:
            problem = changed_inputs(args, mine)
        if problem is not None:
            raise ExerciseError(f"{title}: FAIL on case '{case.name}': {problem}")
    if say_pass:
        print(f"PASS  {title}: all {len(cases)} cases")


def changed_inputs(before: tuple, after: tuple) -> str | None:
    """A message if the student's function edited one of its tensor arguments in place."""
    def tensors(x):
        if isinstance(x, Tensor):
            return [x]
        if isinstance(x, dict):
            return [v for v in x.values() if isinstance(v, Tensor)]
        return []

    for a, b in zip(before, after):
        for ta, tb in zip(tensors(a), tensors(b)):
            if ta.shape != tb.shape or not torch.equal(ta.detach(), tb.detach()):
                return "your function changed its input in place (return new tensors instead)"
    return None


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
