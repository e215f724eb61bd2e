"""How long each notebook takes to "Run all", measured, not typed: ``notebooks/run_times.json``.

``python -m depthkit.course.runtimes --profile smoke`` executes every numbered notebook in order
(nbclient, the python3 kernel) and records the seconds of each under the profile and the kind of
device the profile runs on (``cpu`` or ``cuda``), with the machine, the date and how the folders
were set up:

- ``fresh`` (the default): temporary data, runs and figures folders, so each notebook's time holds
  the data it prepares and the models it trains after the notebooks before it (a student working
  through the series from a fresh clone). The committed ``figures/`` are never touched.
- ``--reuse``: the configured folders (``DEPTHKIT_DATA``, ``DEPTHKIT_RUNS``, ``DEPTHKIT_FIGURES``, or
  the checkout's), so finished checkpoints (e.g. of ``make reproduce``) are reused.

Each notebook's opening cell prints :func:`describe` of its own name, so the times it states are the
ones measured last. Numbers from a shared 2-core CPU vary by some 10-20 % from run to run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

FOLDER_VARIABLES = ("DEPTHKIT_DATA", "DEPTHKIT_RUNS", "DEPTHKIT_FIGURES")
PROFILES = ("smoke", "demo", "report")  # the order describe() names them in
KINDS = {"cpu": "CPU", "cuda": "GPU"}


def times_file() -> Path:
    """``notebooks/run_times.json`` of this checkout."""
    from depthkit.config import repo_root

    return repo_root() / "notebooks" / "run_times.json"


def load_times(path: str | Path | None = None) -> dict:
    """The measurements: ``{profile: {device kind: {"machine", "date", "folders", "seconds": {stem: s}}}}``.

    A missing file is no measurement (``{}``); a damaged one raises ``ValueError`` naming it.
    """
    path = Path(path) if path is not None else times_file()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a run-times file ({err}); measure again with "
                         "python -m depthkit.course.runtimes --profile smoke") from None


def format_seconds(seconds: float) -> str:
    """``9 s``, ``48 s``, ``3.2 min``, ``1.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe(stem: str, path: str | Path | None = None) -> str:
    """This notebook's measured "Run all" time per device kind and profile, from a fresh clone only, or "not measured yet".

    A time measured with finished checkpoints reused (``--reuse``) is not shown: it is not what a
    reader's first run takes.
    """
    times = load_times(path)
    lines = []
    for kind, label in KINDS.items():
        said = []
        for profile in PROFILES:
            entry = times.get(profile, {}).get(kind)
            if entry and stem in entry["seconds"] and entry["folders"] == "fresh":
                said.append(f"{profile} {format_seconds(entry['seconds'][stem])} ({entry['machine']}, {entry['date']}, "
                            "from a fresh clone)")
            elif entry and stem in entry["seconds"]:  # checkpoints reused: not what a student's first run takes
                said.append(f"{profile} not measured from a fresh clone yet")
            elif profile != "report":
                said.append(f"{profile} not measured yet")
        lines.append(f"  on a {label}: " + "; ".join(said))
    return 'How long "Run all" takes, measured (python -m depthkit.course.runtimes):\n' + "\n".join(lines)


def machine(kind: str) -> str:
    """The machine in a few words: ``2-core CPU (x86_64)`` or the GPU's name."""
    if kind == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()}-core CPU ({platform.machine()})"


def run_notebook(path: Path, timeout: int) -> float:
    """Execute ``path`` as "Run all" does (in its own folder, python3 kernel); the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except (CellExecutionError, CellTimeoutError) as err:
        last = next((c for c in reversed(nb.cells) if c.get("execution_count")), None)
        where = f"cell {last.get('id')}" if last is not None else "a cell"
        last_line = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip().splitlines()[-1])  # without the terminal colours
        raise ValueError(f"{path.name}: {where} failed, nothing recorded ({last_line[:160]})") from None
    return time.perf_counter() - start


def measure(profile: str, fresh: bool = True, only: list[str] | None = None, timeout: int = 3600) -> dict:
    """Run the notebooks under ``profile`` and return the record :func:`record` stores (nothing written)."""
    from depthkit.config import get_profile, repo_root
    from depthkit.files import environment
    from depthkit.course.student import notebook_paths
    from depthkit.device import pick_device

    if fresh and only:
        raise ValueError("fresh folders measure the whole series in order (a notebook alone would also train what "
                         "the ones before it train); to time some notebooks, pass --reuse")
    kind = pick_device(get_profile(profile).device).type
    paths = notebook_paths(only=only)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="depthkit-runtimes-") as tmp:
        folders = {}
        if fresh:
            for variable, name in zip(FOLDER_VARIABLES, ("data", "runs", "figures")):
                folders[variable] = str(Path(tmp, name))
                Path(tmp, name).mkdir()
            (Path(tmp, "data") / "nyu_splits.json").write_bytes((repo_root() / "data" / "nyu_splits.json").read_bytes())
        load = [round(os.getloadavg()[0], 1)]  # the machine's load before and after: a busy machine runs slower
        with environment(DEPTHKIT_PROFILE=profile, MPLBACKEND="Agg", **folders):
            for path in paths:
                seconds[path.stem] = round(run_notebook(path, timeout), 1)
                print(f"{path.stem}: {format_seconds(seconds[path.stem])}", flush=True)
        load.append(round(os.getloadavg()[0], 1))
    return {"kind": kind, "machine": machine(kind), "date": date.today().isoformat(),
            "folders": "fresh" if fresh else "reused", "load": load, "seconds": seconds}


def record(profile: str, measured: dict, path: str | Path | None = None) -> Path:
    """Merge one :func:`measure` result into the run-times file (other profiles and devices kept)."""
    from depthkit.files import atomic_write_bytes

    path = Path(path) if path is not None else times_file()
    times = load_times(path)
    entry = {k: v for k, v in measured.items() if k != "kind"}
    old = times.get(profile, {}).get(measured["kind"], {})
    if old.get("folders") == entry["folders"] and old.get("machine") == entry["machine"]:
        entry["seconds"] = {**old.get("seconds", {}), **entry["seconds"]}  # a partial run keeps the others' times
    times.setdefault(profile, {})[measured["kind"]] = entry
    text = json.dumps({p: times[p] for p in sorted(times, key=lambda p: (p not in PROFILES, p))}, indent=1)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """``python -m depthkit.course.runtimes --profile P [--reuse] [NN ...]``."""
    parser = argparse.ArgumentParser(prog="python -m depthkit.course.runtimes", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, choices=PROFILES)
    parser.add_argument("--reuse", action="store_true", help="run in the configured folders (reuse checkpoints)")
    parser.add_argument("notebooks", nargs="*", help="only these (e.g. 02 03); default: all, in order")
    args = parser.parse_args(argv)
    try:
        measured = measure(args.profile, fresh=not args.reuse, only=args.notebooks or None)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"written: {record(args.profile, measured)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
