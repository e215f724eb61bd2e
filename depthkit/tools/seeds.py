"""The seed-to-seed spread of a reproduction, measured once and committed: ``figures/seed_spread.json``.

``make seeds`` (``python -m depthkit.tools.seeds --profile demo``) reruns the reproduction with several
training seeds (``Profile.train_seed``: initial weights, batch order, augmentation; the data and its splits
stay the same) and records, per model and metric, each seed's value, their mean and standard deviation,
with the code fingerprint of the committed results. Seed 0 is the committed run itself (``runs/<profile>/``,
reused when ``make reproduce`` trained it with this code); seed k trains into ``runs/<profile>-seed<k>/``.
Each seed's own figures and tables go to ``runs/<profile>-seeds/seed<k>/``, never to ``figures/``.

The spread is what :mod:`depthkit.tools.compare`, the notebooks' "What we got" texts and the capstone
use where one seed alone could say nothing.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from depthkit.checkpoints import save_json
from depthkit.config import PROFILE_NAMES, Profile, figures_dir, get_profile, runs_dir
from depthkit.fingerprint import code_fingerprint
from depthkit.reproduce import SEED_SPREAD_FILE, read_figures_json, reproduce, write_results_md
from depthkit.tools.compare import BLOCKS, spread_summary

DEFAULT_SEEDS = {"lraspp": 5, "unetpp": 3}  # LR-ASPP is cheap; U-Net++ as many as an hour of the 2-core CPU allows


def seed_profile(profile: Profile, k: int) -> Profile:
    """The profile of seed ``k``: the profile itself for k = 0 (the committed run), else ``train_seed = k``."""
    return profile if k == 0 else profile.replace(train_seed=k)


def run_seeds(profile: Profile, seeds: dict[str, int], progress: bool = False) -> dict:
    """Reproduce under ``seeds[model]`` training seeds per model; returns the spread record (see the module)."""
    values: dict[str, dict[str, dict[str, float]]] = {m: {} for m in seeds}
    cost = {}
    for k in range(max(seeds.values())):
        models = tuple(m for m, n in seeds.items() if k < n)
        t0 = time.perf_counter()
        results = reproduce(seed_profile(profile, k), models=models, out=runs_dir() / f"{profile.name}-seeds" / f"seed{k}",
                            progress=progress)
        cost[str(k)] = {"models": list(models), "seconds": time.perf_counter() - t0}
        print(f"seed {k} ({', '.join(models)}): {cost[str(k)]['seconds'] / 60:.1f} min", flush=True)
        for model in models:
            for block in BLOCKS:
                for metric, value in results["models"][model].get(block, {}).items():
                    values[model].setdefault(f"{block}.{metric}", {})[str(k)] = value
    return {"fingerprint": code_fingerprint(profile), "profile": profile.name,
            "seeds": {m: list(range(n)) for m, n in seeds.items()},
            "what_varies": "the training seed (initial weights, batch order, augmentation); data and splits fixed",
            "models": {m: {key: spread_summary(v) for key, v in metrics.items()} for m, metrics in values.items()},
            "cost": {"seconds": sum(c["seconds"] for c in cost.values()), "per_seed": cost,
                     "device": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                     "torch": torch.__version__}}


def parse_seeds(text: str) -> dict[str, int]:
    """``"lraspp=5,unetpp=3"`` as ``{"lraspp": 5, "unetpp": 3}`` (each at least 2: one seed has no spread)."""
    from depthkit.models import MODEL_NAMES

    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, n = part.partition("=")
        if name not in MODEL_NAMES or not n.isdigit() or int(n) < 2:
            raise argparse.ArgumentTypeError(f"expected MODEL=N with MODEL in {', '.join(MODEL_NAMES)} and N >= 2, got {part!r}")
        out[name] = int(n)
    if not out:
        raise argparse.ArgumentTypeError("no MODEL=N given")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m depthkit.tools.seeds [--profile demo] [--seeds lraspp=5,unetpp=3]``: write figures/seed_spread.json."""
    parser = argparse.ArgumentParser(prog="python -m depthkit.tools.seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="demo")
    parser.add_argument("--seeds", type=parse_seeds, default=DEFAULT_SEEDS, help="MODEL=N,... (default lraspp=5,unetpp=3)")
    args = parser.parse_args(argv)
    record = run_seeds(get_profile(args.profile), args.seeds)
    path = figures_dir() / SEED_SPREAD_FILE
    save_json(path, record)
    results = read_figures_json("results.json", path.parent)
    if results:  # results.md shows the seeds' mean ± sd beside each number (when they are of the same code)
        write_results_md(path.parent / "results.md", results)
    print(f"wrote {path}: {', '.join(f'{m} {n} seeds' for m, n in args.seeds.items())} in "
          f"{record['cost']['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
