"""The answer key of the notebooks' checks: depthkit's own outputs on every case, computed once and stored.

    python -m depthkit.course.answer_key            # does the library still give the stored key? (exit 1 if not)
    python -m depthkit.course.answer_key --write    # compute the key from the library and store it

The checks (:mod:`depthkit.course.exercises`) compare a student's answer with ``answer_key.json``,
never with the live library, so a capstone that edits ``augment``, the learning-rate schedule or a
loss does not move what a correct answer must return. The key holds, per exercise, the answers of
the visible and of the hidden cases (floats to 12 significant digits; the references run in
float64 on the cases' float32 inputs) and a digest of the inputs, so that the check above tells
"the cases changed: write the key again" from "the library no longer gives the key".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from typing import Any

from torch import Tensor, nn

from depthkit.course.checks import KEY_FILE, Case
from depthkit.course.exercises import SPECS
from depthkit.files import atomic_write_bytes

FORMAT = 1
DIGITS = 12


def inputs_digest(cases: list[Case]) -> str:
    """A short digest of every case's name and arguments (dtype, shape and bytes of each tensor).

    A list of batches is walked, a model (04.2) counts by its class names and its weights and buffers.
    """
    h = hashlib.sha256()

    def add(part: Any) -> None:
        if isinstance(part, Tensor):
            h.update(f"{part.dtype}{tuple(part.shape)}".encode() + part.detach().contiguous().numpy().tobytes())
        elif isinstance(part, nn.Module):
            h.update(" ".join(type(m).__name__ for m in part.modules()).encode() + str(part.training).encode())
            for name, value in part.state_dict().items():
                h.update(name.encode())
                add(value)
        elif isinstance(part, list):
            for p in part:
                for q in (p.values() if isinstance(p, dict) else [p]):
                    add(q)
        else:
            h.update(repr(part).encode())

    for case in cases:
        h.update(case.name.encode())
        for arg in case.args():
            for part in (arg.values() if isinstance(arg, dict) else [arg]):
                add(part)
    return h.hexdigest()[:16]


def rounded(x: Any) -> Any:
    """``x`` with every float rounded to :data:`DIGITS` significant digits (lists and dicts walked)."""
    if isinstance(x, float):
        return float(f"{x:.{DIGITS}g}")
    if isinstance(x, list):
        return [rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    return x


def compute_entry(number: str) -> dict:
    """Exercise ``number``'s key from the live library: the inputs' digest and the answers, visible and hidden."""
    spec = SPECS[number]
    entry: dict = {"inputs": inputs_digest(spec.cases(False) + spec.cases(True))}
    for part, hidden in (("cases", False), ("hidden", True)):
        entry[part] = [rounded(spec.reference(case)) for case in spec.cases(hidden)]
    return entry


def compute_key() -> dict:
    """The whole key, from the live library (the exercises whose expectation is stored: all but 04.1)."""
    return {"format": FORMAT, "exercises": {n: compute_entry(n) for n, s in SPECS.items() if s.reference is not None}}


def first_difference(stored: Any, computed: Any, where: str = "", rel: float = 1e-9) -> str | None:
    """Where ``computed`` first departs from ``stored`` (floats within ``rel``, everything else exactly), or None."""
    if isinstance(stored, float) or isinstance(computed, float):
        ok = isinstance(stored, (int, float)) and isinstance(computed, (int, float)) and \
            math.isclose(stored, computed, rel_tol=rel, abs_tol=1e-12)
        return None if ok else f"{where}: stored {stored!r}, the library gives {computed!r}"
    if isinstance(stored, list) and isinstance(computed, list) and len(stored) == len(computed):
        return next((d for i, (s, c) in enumerate(zip(stored, computed))
                     if (d := first_difference(s, c, f"{where}[{i}]", rel))), None)
    if isinstance(stored, dict) and isinstance(computed, dict) and stored.keys() == computed.keys():
        return next((d for k in stored if (d := first_difference(stored[k], computed[k], f"{where}.{k}", rel))), None)
    return None if stored == computed else f"{where}: stored {str(stored)[:60]}, the library gives {str(computed)[:60]}"


def differences(stored: dict) -> list[str]:
    """One line per exercise whose stored key the live library no longer reproduces (empty: all agree)."""
    found = []
    for number, spec in SPECS.items():
        if spec.reference is None:
            continue
        entry = stored.get("exercises", {}).get(number)
        try:
            computed = compute_entry(number)
        except Exception as err:  # e.g. augment no longer a pure flip: the reference cannot be read back
            found.append(f"{number}: the library's reference fails on the cases: {type(err).__name__}: {err}")
            continue
        if entry is None:
            found.append(f"{number}: not in the stored key")
        elif entry.get("inputs") != computed["inputs"]:
            found.append(f"{number}: the cases changed since the key was written (write it again)")
        elif (diff := first_difference(entry, computed, number)) is not None:
            found.append(diff)
    return found


def key_text(key: dict) -> str:
    """The key as JSON with one line per case (small diffs when a case changes)."""
    lines = ["{", f' "format": {key["format"]},', ' "exercises": {']
    numbers = list(key["exercises"])
    for i, number in enumerate(numbers):
        entry = key["exercises"][number]
        lines += [f'  "{number}": {{', f'   "inputs": "{entry["inputs"]}",']
        for part in ("cases", "hidden"):
            answers = [json.dumps(a, separators=(",", ":")) for a in entry[part]]
            lines += [f'   "{part}": ['] + [f"    {a}," for a in answers[:-1]] + [f"    {answers[-1]}"]
            lines.append("   ]," if part == "cases" else "   ]")
        lines.append("  }," if i < len(numbers) - 1 else "  }")
    return "\n".join(lines + [" }", "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Check the stored key against the library (default) or write it (``--write``)."""
    parser = argparse.ArgumentParser(prog="python -m depthkit.course.answer_key", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"compute the key from the library and write {KEY_FILE.name}")
    args = parser.parse_args(argv)
    if args.write:
        key = compute_key()
        atomic_write_bytes(KEY_FILE, key_text(key).encode())
        print(f"wrote {KEY_FILE} ({KEY_FILE.stat().st_size} bytes, {len(key['exercises'])} exercises)")
        return 0
    try:
        stored = json.loads(KEY_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"{KEY_FILE}: cannot read the key ({err}); write it with --write", file=sys.stderr)
        return 1
    found = differences(stored)
    for line in found:
        print(line)
    if not found:
        print(f"{KEY_FILE.name}: the library reproduces the stored key of every exercise")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
