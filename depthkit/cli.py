"""``python -m depthkit <command>``: prepare, train, evaluate, reproduce, plan, compare, bench, rehearse, download, publish-url, student.

The commands that train or read data (prepare, train, evaluate, reproduce, bench) and ``plan`` take ``--profile``
(default: ``$DEPTHKIT_PROFILE``, else ``report`` with real data and a GPU, else ``demo``); the first four also take
``--device``, ``--pretrained yes|no|auto`` (the profile's ``pretrained``: ``report`` says yes) and ``--image-root``;
``rehearse`` always runs the ``report`` profile, from random init, on files it writes. ``--help`` on each command
lists its options.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from depthkit.config import DIW_IMAGES_ENV, PROFILE_NAMES, Profile, figures_dir, get_profile


def at_least(minimum: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum`` (otherwise a usage error, exit status 2, before any work)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{unit}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # what argparse prints in its message
    return parse


positive_int = at_least(1)
non_negative_int = at_least(0)
image_size = at_least(32, " pixels (the smallest input the models take)")


def worker_list(text: str) -> list[int]:
    """An argparse type: comma-separated worker counts, each a whole number >= 0."""
    return [non_negative_int(t.strip()) for t in text.split(",") if t.strip()] or [non_negative_int(text)]


def model_list(text: str) -> str:
    """An argparse type: comma-separated model names, each one of ``depthkit.models.MODEL_NAMES``."""
    from depthkit.models import MODEL_NAMES

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
                                         f"expected comma-separated names from: {', '.join(MODEL_NAMES)}")
    return ",".join(names)


PRETRAINED_CHOICES: dict[str, bool | str] = {"yes": True, "no": False, "auto": "auto"}  # --pretrained -> Profile.pretrained


def _add_profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                   help="smoke | demo | report (default: $DEPTHKIT_PROFILE, else report with real data and a GPU, else demo)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the profile's, i.e. auto)")
    p.add_argument("--pretrained", choices=tuple(PRETRAINED_CHOICES), default=None,
                   help="yes: ImageNet/COCO weights or stop at the start with one line; no: random init, chosen "
                        "knowingly; auto: try, else random init with a warning (default: the profile's: report yes, "
                        "smoke and demo no). The results say which weights each model started from")


def profile_of(args: argparse.Namespace) -> Profile:
    """The profile ``--profile`` names (or the default), with ``--pretrained`` applied when given."""
    profile = get_profile(args.profile)
    choice = getattr(args, "pretrained", None)
    return profile if choice is None else profile.replace(pretrained=PRETRAINED_CHOICES[choice])


def _add_image_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-root", default=None, metavar="DIR",
                   help="real DIW: the folder holding DIW_test/ (default: beside the CSVs, data/real/diw)")


def use_image_root(args: argparse.Namespace) -> None:
    """``--image-root DIR``: check the folder and hand it to the data code (``DEPTHKIT_DIW_IMAGES``)."""
    folder = getattr(args, "image_root", None)
    if folder is None:
        return
    if not Path(folder).is_dir():
        raise FileNotFoundError(errno.ENOENT, "--image-root: no such folder (expected the folder that holds "
                                              "DIW_test/ with the .thumb images)", folder)
    os.environ[DIW_IMAGES_ENV] = str(Path(folder).resolve())


def cmd_prepare(args: argparse.Namespace) -> int:
    """Generate or locate the data, build the caches, print dataset statistics."""
    from depthkit.pipeline import dataset_statistics, format_statistics, prepare_data

    profile = profile_of(args)
    t0 = time.perf_counter()
    stats = dataset_statistics(profile, prepare_data(profile))
    print(format_statistics(stats))
    print(f"prepared in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model on one stage (under torchrun: on every process, DistributedDataParallel)."""
    from depthkit import distributed
    from depthkit.pipeline import load_stage_data, prepare_data
    from depthkit.course.plugin import load_plugin
    from depthkit.runs import check_writable, lock_run_folder, run_dir
    from depthkit.train import NO_HOOKS, check_initial_weights, train_stage

    profile = profile_of(args)
    hooks = load_plugin(args.plugin) if args.plugin else NO_HOOKS  # before any work: a broken plugin is one line
    if args.epochs is not None:  # the same epochs for every model, no frozen warm-up
        profile = profile.with_budget(args.stage, epochs={"*": args.epochs}, frozen_epochs={})
    out_dir = check_writable(Path(args.out) if args.out else run_dir(profile, args.model, args.stage))
    args.out_dir = out_dir  # for the one line printed on Ctrl-C
    device = distributed.init_distributed(args.device) or args.device
    main_rank = distributed.is_main()
    with lock_run_folder(out_dir) if main_rank else nullcontext():  # before any work: one writer per folder
        check_initial_weights(profile, (args.model,), args.stage, args.init, out_dir)  # no weights: one line, now
        if main_rank:
            prepare_data(profile)  # rank 0 alone writes the data and caches; the others wait, then find them
        distributed.barrier()
        splits = load_stage_data(profile, args.stage)
        model, history, out = train_stage(profile, args.model, args.stage, splits, init=args.init, out_dir=out_dir,
                                          device=device, compile=args.compile, max_steps=args.max_steps, hooks=hooks)
    distributed.cleanup()  # on an error torchrun stops the other ranks; nothing to wait for
    if main_rank:
        last = {k: v[-1] for k, v in history.items() if v}
        print(json.dumps({"out": str(out), "best": str(out / "best.pt"), "last_epoch": last}, indent=2))
    return 0


METRIC_LABELS = {"delta1": "δ<1.25", "delta2": "δ<1.25²", "delta3": "δ<1.25³"}  # the evaluate table's names


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint on a split of NYU or DIW; print a table and JSON."""
    from depthkit.checkpoints import save_json
    from depthkit.course.plugin import load_model
    from depthkit.device import pick_device
    from depthkit.evaluate import evaluate
    from depthkit.pipeline import load_stage_data, nyu_frames, prepare_data
    from depthkit.reproduce import PROTOCOLS

    profile = profile_of(args)
    if args.protocol == "eigen" and args.data != "nyu":
        raise ValueError("--protocol eigen scores NYU depth (Eigen crop, per-image aligned); DIW has one protocol: "
                         "drop --protocol or use --data nyu")
    device = pick_device(args.device or profile.device)
    model = load_model(args.checkpoint, device=device)
    prepared = prepare_data(profile)
    data = load_stage_data(profile, args.data, prepared)[args.split]
    original = {"mat_path": prepared.nyu_mat, "frames": nyu_frames(profile, prepared, args.split)} \
        if args.protocol == "eigen" else {}
    result = evaluate(model, data, args.data, batch_size=profile.batch_size * 2, device=device,
                      protocol=args.protocol, **original)
    protocol = "diw" if args.data == "diw" else args.protocol
    print(f"{args.checkpoint} on {data.name} ({len(data)} images, profile {profile.name}, {device.type})")
    print(f"  protocol {protocol}: {PROTOCOLS[protocol].format(size=profile.size)}")
    for key, value in result.items():
        print(f"  {METRIC_LABELS.get(key, key):<18} {value:.4f}")
    record = {"checkpoint": str(args.checkpoint), "data": data.name, "split": args.split, "profile": profile.name,
              "device": device.type, "protocol": protocol, "metrics": result}
    print(json.dumps(record))
    if args.json:
        save_json(Path(args.json), record)
    if args.compare:  # the capstone: by how much this checkpoint beats or misses the committed run
        from depthkit.course.capstone import check_capstone

        check_capstone(args.checkpoint, profile=profile.name, device=args.device)
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    """Student copies of the notebooks (nbgrader's release: no solutions, no hidden tests, no answers), or a course folder."""
    from depthkit.course.student import make_course, write_student_copies

    if args.course:
        names = make_course(Path(args.course))
        print(f"nbgrader course folder {args.course}/: nbgrader_config.py and {len(names)} assignments in source/ "
              f"({', '.join(names)}); next: cd {args.course} && nbgrader generate_assignment NAME (docs/teaching.md)")
        return 0
    written = write_student_copies(Path(args.out))
    print(f"wrote {len(written)} student notebooks to {args.out}/: " + ", ".join(p.name for p in written))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """The whole report: data, both models on NYU then DIW, evaluation, figures, results.md; then the comparison
    with the results that were in the figures folder before (the committed ones, in a fresh clone)."""
    from depthkit.reproduce import PER_IMAGE_FILE, read_figures_json, reproduce
    from depthkit.runs import check_writable
    from depthkit.tools.compare import compare_results, format_comparison

    out = check_writable(Path(args.out) if args.out else figures_dir())
    profile = profile_of(args)
    if args.diw_protocol:
        profile = profile.replace(diw_protocol=args.diw_protocol)
    print(f"depthkit reproduce: profile {profile.name} ({profile.data} data)")
    before = read_figures_json("results.json", out), read_figures_json(PER_IMAGE_FILE, out)  # what this run is compared with
    results = reproduce(profile, models=tuple(args.models.split(",")), out=out, device=args.device)
    if not results:  # a torchrun rank other than 0: rank 0 reports
        return 0
    print((out / "results.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'results.md'} and {len(results['figures']) - 1} more files beside it; "
          f"wall time {results['provenance']['wall_time_s'] / 60:.1f} min")
    if before[0] is None or before[0].get("provenance", {}).get("profile") != profile.name:
        print(f"no earlier {profile.name} results in {out} to compare with")
        return 0
    print(f"\nThis run against the results that were in {out} before it (the committed ones in a fresh clone):")
    print(format_comparison(compare_results(results, before[0], read_figures_json("seed_spread.json", out),
                                            read_figures_json(PER_IMAGE_FILE, out), before[1])))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """The disk a run needs, step by step, against each file system's free space (exit status 1 when it does not fit)."""
    import os

    from depthkit.config import PROFILE_ENV
    from depthkit.data.diskplan import check_plan, disk_plan, format_plan

    profile = get_profile(args.profile or os.environ.get(PROFILE_ENV) or "report")
    if args.diw_protocol:
        profile = profile.replace(diw_protocol=args.diw_protocol)
    plan = disk_plan(profile, tuple(args.models.split(",")), args.out)
    print(format_plan(plan))
    check_plan(plan)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """A run's results.json against the committed one, metric by metric: difference, noise band, verdict
    (exit status 3 when a number lies beyond its band)."""
    from depthkit.reproduce import PER_IMAGE_FILE, SEED_SPREAD_FILE, read_figures_json
    from depthkit.tools.compare import compare_results, format_comparison

    run_path = Path(args.results)
    committed_dir = Path(args.against) if args.against else figures_dir()
    run = read_figures_json(run_path.name, run_path.parent)
    committed = read_figures_json("results.json", committed_dir)
    for path, found in ((run_path, run), (committed_dir / "results.json", committed)):
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such results file", str(path))
    report = compare_results(run, committed, read_figures_json(SEED_SPREAD_FILE, committed_dir),
                             read_figures_json(PER_IMAGE_FILE, run_path.parent), read_figures_json(PER_IMAGE_FILE, committed_dir))
    print(f"{run_path} against {committed_dir / 'results.json'}:")
    print(format_comparison(report))
    return 3 if report["differs"] else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Throughput, data wait, achieved FLOP rate and memory of fit's training step; the data path's images/s."""
    from depthkit.tools import bench as dk_bench

    parts = args.only or ["models", "data"]
    if "models" in parts:
        print(dk_bench.format_table(dk_bench.bench(tuple(args.model.split(",")), size=args.size, batch=args.batch,
                                                   steps=args.steps, device=args.device, workers=args.workers)))
    if "data" in parts:
        workers = tuple(args.data_workers) if args.data_workers else args.workers
        print(dk_bench.format_data_table(dk_bench.bench_data(size=args.size, batch=args.batch, images=args.data_images,
                                                             workers=workers, split=args.data_split)))
    if "flops" in parts:
        print(dk_bench.format_flops_table(dk_bench.report_flops(tuple(args.model.split(",")))))
    if "nyu-reads" in parts:
        print(dk_bench.format_nyu_reads(dk_bench.bench_nyu_reads()))
    return 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    """Report-scale files in the real layouts, the report profile end to end on them, one table of costs."""
    from depthkit.tools.rehearse import format_rehearsal, rehearse

    row = rehearse(diw_images=args.diw_images, steps=args.steps, device=args.device, keep=args.keep,
                   models=tuple(args.models.split(",")))
    print(format_rehearsal(row))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download a real dataset (needs a network: Colab or a laptop)."""
    from depthkit.config import data_dir
    from depthkit.data import download
    from depthkit.runs import check_writable

    from depthkit.data.downloads import DEFAULT_FOLDERS

    root = Path(args.root) if args.root else data_dir() / DEFAULT_FOLDERS[args.name]
    print(download(args.name, check_writable(root), delete_archives=args.delete_archives, mirror=args.mirror))
    return 0


def cmd_publish_url(args: argparse.Namespace) -> int:
    """Point the Colab set-up cell, the notebooks' badges and the READMEs at your GitHub copy."""
    from depthkit.course.colab import current_slug, parse_github_url, publish_url
    from depthkit.config import repo_root

    root = Path(args.root) if args.root else repo_root()
    old = current_slug(root)
    changed = publish_url(args.url, root)
    for path in changed:
        print(f"rewrote {path.relative_to(root).as_posix()}")
    print(f"{len(changed)} files now point at https://github.com/{parse_github_url(args.url)} instead of https://github.com/{old}"
          if changed else f"nothing to change: the notebooks already point at https://github.com/{old}")
    return 0


def _add_data_commands(sub) -> None:
    """``prepare``, ``train``, ``evaluate`` and ``reproduce``: the commands of the core."""
    from depthkit.models import MODEL_NAMES

    p = sub.add_parser("prepare", help=cmd_prepare.__doc__)
    _add_profile(p)
    _add_image_root(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help=cmd_train.__doc__)
    p.add_argument("--model", choices=MODEL_NAMES, required=True)
    p.add_argument("--stage", choices=("nyu", "diw"), required=True)
    p.add_argument("--init", default=None, help="checkpoint to start from (default for diw: this profile's NYU best.pt)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<profile>/<model>_<stage>)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the profile's epochs (no frozen warm-up)")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop the stage after N optimizer steps (and validate on N batches): for rehearsals")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for the training steps (GPU)")
    p.add_argument("--plugin", default=None, metavar="FILE",
                   help="your own augment / extra_loss / learning_rate / model hooks (docs/capstone_plugin.py)")
    _add_profile(p)
    _add_image_root(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help=cmd_evaluate.__doc__)
    p.add_argument("checkpoint", help="a best.pt or last.pt written by train")
    p.add_argument("--data", choices=("nyu", "diw"), required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--protocol", choices=("resized", "eigen"), default="resized",
                   help="NYU: resized = at the prepared size (default); eigen = the Eigen crop on the original "
                        "640x480 frames, per-image least-squares aligned: not comparable with published supervised "
                        "tables (metric, unaligned); needs the .mat")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.add_argument("--compare", action="store_true",
                   help="the capstone: compare the checkpoint's test score with figures/results.json, with a noise band")
    _add_profile(p)
    _add_image_root(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reproduce", help=cmd_reproduce.__doc__)
    p.add_argument("--models", type=model_list, default="lraspp,unetpp",
                   help="comma-separated, from: " + ", ".join(MODEL_NAMES))
    p.add_argument("--out", default=None, help="figures folder (default: figures/)")
    p.add_argument("--diw-protocol", choices=("report", "chen"), default=None,
                   help="report: seeded split inside DIW_test (as the report); chen: DIW_train / DIW_val -> DIW_test")
    _add_profile(p)
    _add_image_root(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("plan", help=cmd_plan.__doc__)
    p.add_argument("--profile", choices=PROFILE_NAMES, default=None, help="default: $DEPTHKIT_PROFILE, else report")
    p.add_argument("--models", type=model_list, default="lraspp,unetpp", help="comma-separated, as for reproduce")
    p.add_argument("--out", default=None, help="figures folder, as for reproduce (default: figures/)")
    p.add_argument("--diw-protocol", choices=("report", "chen"), default=None, help="as for reproduce")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("compare", help=cmd_compare.__doc__.splitlines()[0])
    p.add_argument("results", help="the results.json of a run (python -m depthkit reproduce --out DIR writes one)")
    p.add_argument("--against", default=None, metavar="DIR",
                   help="the folder of the committed results.json, per_image_scores.json, seed_spread.json (default: figures/)")
    p.set_defaults(func=cmd_compare)


def _add_tool_commands(sub) -> None:
    """``bench`` and ``rehearse``: the measurement tools (:mod:`depthkit.tools`)."""
    p = sub.add_parser("bench", help=cmd_bench.__doc__)
    p.add_argument("--model", type=model_list, default="lraspp,unetpp", help="comma-separated model names")
    p.add_argument("--size", type=image_size, default=224, help="image side in pixels (>= 32)")
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--steps", type=positive_int, default=5)
    p.add_argument("--data-images", type=positive_int, default=4096,
                   help="images in the temporary cache the data row reads (default 4096)")
    p.add_argument("--workers", type=non_negative_int, default=0,
                   help="DataLoader workers for the streamed (diw) rows and the data row (default 0)")
    p.add_argument("--data-split", choices=("random", "diw"), default="random",
                   help="what the data rows read: a cache of random rows, or a DIW train split written by prepare_diw")
    p.add_argument("--data-workers", type=worker_list, default=None, metavar="W[,W...]",
                   help="worker counts the data rows compare, e.g. 0,1,2 (default: --workers)")
    p.add_argument("--only", action="append", choices=("models", "data", "flops", "nyu-reads"), default=None,
                   help="run only these parts (repeatable; default: models and data). flops: the report profile's "
                        "training FLOPs and a T4 estimate; nyu-reads: MB/s of chunk-aligned against 16-frame reads")
    _add_profile(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("rehearse", help=cmd_rehearse.__doc__)
    p.add_argument("--diw-images", type=positive_int, default=74_441,
                   help="DIW records to write (default 74,441: the size of DIW_test)")
    p.add_argument("--steps", type=positive_int, default=3, help="optimizer steps and evaluation batches per stage")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: auto)")
    p.add_argument("--keep", default=None, help="write the files into this folder and leave them there")
    p.add_argument("--models", type=model_list, default="lraspp,unetpp", help="comma-separated model names")
    p.set_defaults(func=cmd_rehearse)


def _add_setup_commands(sub) -> None:
    """``download``, ``publish-url`` and ``student``: getting data, and the course's copies."""
    p = sub.add_parser("download", help=cmd_download.__doc__)
    p.add_argument("name", choices=("nyu", "diw", "diw_train_val"),
                   help="diw_train_val: the DIW_train / DIW_val images, only for --diw-protocol chen (very large)")
    p.add_argument("--root", default=None, help="target folder (default: data/real, data/real/diw for both DIW sets)")
    p.add_argument("--delete-archives", action=argparse.BooleanOptionalAction, default=None,
                   help="remove each archive once it is unpacked and verified (default: yes on Colab, no elsewhere)")
    p.add_argument("--mirror", default=None,
                   help="base URL serving the files under their own names, instead of the datasets' hosts "
                        "(default: $DEPTHKIT_MIRROR)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("publish-url", help=cmd_publish_url.__doc__)
    p.add_argument("url", help="https://github.com/OWNER/NAME of the copy students clone")
    p.add_argument("--root", default=None, help="the checkout to rewrite (default: this one)")
    p.set_defaults(func=cmd_publish_url)

    p = sub.add_parser("student", help=cmd_student.__doc__)
    p.add_argument("--out", default="student", help="folder for the student copies (default: student/)")
    p.add_argument("--course", default=None, metavar="DIR",
                   help="write an nbgrader course folder instead (nbgrader_config.py, source/NN_name/NN_name.ipynb)")
    p.set_defaults(func=cmd_student)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m depthkit``."""
    parser = argparse.ArgumentParser(prog="python -m depthkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_tool_commands(sub)
    _add_setup_commands(sub)
    return parser


_OS_HINTS = {
    errno.EACCES: "check the permissions, or choose another folder (--out, DEPTHKIT_RUNS, DEPTHKIT_DATA)",
    errno.EPERM: "check the permissions, or choose another folder (--out, DEPTHKIT_RUNS, DEPTHKIT_DATA)",
    errno.EROFS: "the disk is read-only: choose another folder (--out, DEPTHKIT_RUNS, DEPTHKIT_DATA)",
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.ENOENT: "check the path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file or network operation: the path, what failed, and what to do."""
    if exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        text = f"{where}: {exc.strerror or exc}"
        hint = _OS_HINTS.get(exc.errno)
        text += f" ({hint})" if hint else ""
    else:
        text = exc.strerror if exc.strerror and exc.errno is not None else str(exc)
    return " ".join(text.split())


def interrupted_line(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind, in one line: for ``train``, the last finished epoch's checkpoint and how to resume."""
    out_dir = getattr(args, "out_dir", None)
    if args.command != "train" or out_dir is None:
        return f"depthkit {args.command}: interrupted"
    last = Path(out_dir) / "last.pt"
    try:
        import torch

        epoch = torch.load(last, map_location="cpu", mmap=True, weights_only=False)["epoch"]
    except Exception:  # no checkpoint yet (or unreadable): nothing to resume from
        return (f"depthkit train: interrupted before the first epoch was saved in {out_dir}; "
                f"the same command starts the run again")
    return (f"depthkit train: interrupted; epoch {epoch} is saved in {last}; "
            f"the same command resumes from it")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m depthkit``: 0 done, 1 a file, disk or network failure, 2 a usage or data error
    (also a diverging run), 130 interrupted (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        use_image_root(args)
        return args.func(args)
    except OSError as exc:  # includes missing files, permissions, full disks, connections
        print(f"depthkit {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, FloatingPointError) as exc:  # bad data or options; a diverging run
        print(f"depthkit {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_line(args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
