"""Issue #32, section 5: the disk plan. ``reproduce --profile report`` prints what each step still writes,
per file system, and refuses before any work when a disk is too small; ``python -m depthkit plan`` prints it.

The refusals are tested on real small tmpfs mounts (root only; skipped elsewhere); the byte counts against
the files the real ``prepare`` and ``train`` write.
"""
from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

import pytest

from depthkit.cli import main
from depthkit.config import get_profile
from depthkit.data.diskplan import DIW_PARTS, PARAMETERS, check_plan, checkpoint_bytes, disk_plan
from depthkit.files import _human_bytes
from depthkit.reproduce import reproduce
from test_disk_full import tmpfs  # noqa: F401  (the fixture: a real small tmpfs, mounted as root, else skipped)

NEEDS = re.compile(r"^not enough disk: DEPTHKIT_\w+ \(.+\) on .+ needs [\d.]+ [KMG]B, [\d.]+ [KMG]B free: ")


def point_at(monkeypatch, data: Path, runs: Path, figures: Path) -> None:
    """Set DEPTHKIT_DATA / _RUNS / _FIGURES for this test."""
    for variable, folder in (("DEPTHKIT_DATA", data), ("DEPTHKIT_RUNS", runs), ("DEPTHKIT_FIGURES", figures)):
        monkeypatch.setenv(variable, str(folder))


def real_layout(data: Path, prepared) -> None:
    """The smoke profile's synthetic files where the report profile looks for the real ones (the .mat as a link)."""
    real = data / "real"
    real.mkdir(parents=True)
    (real / "nyu_depth_v2_labeled.mat").symlink_to(prepared.nyu_mat)
    shutil.copytree(prepared.nyu_mat.parent / "diw", real / "diw")
    shutil.copy(prepared.nyu_splits, data / "nyu_splits.json")


def steps_of(plan) -> dict:
    """``{step name: Step}`` over every file system of ``plan``."""
    return {s.name: s for fs in plan.filesystems for s in fs.steps}


def files_under(folder: Path) -> list[str]:
    """Every file and link below ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


@pytest.mark.slow
def test_parameter_counts_are_those_of_the_models():
    from depthkit.models import MODEL_NAMES, build_model, count_parameters

    assert {name: count_parameters(build_model(name)) for name in MODEL_NAMES} == PARAMETERS


def test_diw_parts_are_those_the_pipeline_reads():
    from depthkit.pipeline import DIW_PARTS as PIPELINE_PARTS

    assert DIW_PARTS == PIPELINE_PARTS


def test_cache_sizes_are_what_prepare_writes_and_a_current_cache_needs_nothing(smoke_prepared, tmp_path, monkeypatch):
    """Catches: a cache estimate that drifted from prepare's layout; a plan that ignores a cache already there."""
    from depthkit.pipeline import prepare_data

    point_at(monkeypatch, tmp_path / "data", tmp_path / "runs", tmp_path / "figures")
    real_layout(tmp_path / "data", smoke_prepared)
    profile = get_profile("report").replace(size=200)
    before = steps_of(disk_plan(profile, ("lraspp",)))
    prepared = prepare_data(profile)
    for name, path in (("cache NYU 200x200", prepared.nyu_cache), ("cache DIW_test 200x200", prepared.diw_caches["DIW_test"])):
        written = path.stat().st_size
        assert before[name].folder == path.parent and not before[name].estimate
        assert written <= before[name].need <= 1.05 * written, (name, before[name].need, written)  # within 5 %
    after = steps_of(disk_plan(profile, ("lraspp",)))
    assert after["cache NYU 200x200"].need == 0 and after["cache NYU 200x200"].have == prepared.nyu_cache.stat().st_size
    assert after["cache DIW_test 200x200"].need == 0
    assert after["download NYU .mat"].need == 0 and after["unpack DIW_test"].need == 0  # the sources are there


@pytest.mark.slow
def test_checkpoint_size_is_what_train_writes(nyu_splits, smoke_profile, tmp_path):
    """Catches: a checkpoint estimate without Adam's two moments (a third of the real file) or with far too much."""
    from depthkit.train import train_stage

    train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=tmp_path, device="cpu", progress=False, max_steps=1)
    written = (tmp_path / "last.pt").stat().st_size
    assert written <= checkpoint_bytes("lraspp") <= 1.05 * written, (checkpoint_bytes("lraspp"), written)


def test_a_finished_download_and_run_need_nothing_and_a_part_file_counts(tmp_path, monkeypatch):
    """Catches: a plan that ignores the files already on disk."""
    point_at(monkeypatch, tmp_path / "data", tmp_path / "runs", tmp_path / "figures")
    profile = get_profile("report")
    part = tmp_path / "data" / "real" / "nyu_depth_v2_labeled.mat.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)
    run = tmp_path / "runs" / "report" / "lraspp_nyu"
    run.mkdir(parents=True)
    (run / "history.json").write_text('{"epoch": [%s]}' % ", ".join(str(i) for i in range(100)))
    steps = steps_of(disk_plan(profile, ("lraspp",)))
    assert steps["download NYU .mat"].need == 2_972_037_809 - 1000 and steps["download NYU .mat"].have == 1000
    assert steps["checkpoints lraspp NYU"].need == 0  # 100 of 100 epochs: train returns at once
    assert steps["checkpoints lraspp DIW"].need == 2 * checkpoint_bytes("lraspp")


def test_reproduce_refuses_a_disk_too_small_before_any_work(tmpfs, monkeypatch, capsys):
    """Catches: no refusal (hours of work, then a full disk); a refusal without the numbers."""
    disk = tmpfs("64m")
    point_at(monkeypatch, disk / "data", disk / "runs", disk / "figures")
    with pytest.raises(OSError) as caught:
        reproduce(get_profile("report").replace(pretrained=False), device="cpu", progress=False)  # the disk, not the weights
    line, free = caught.value.strerror, shutil.disk_usage(disk).free
    assert caught.value.errno == errno.ENOSPC and "\n" not in line and NEEDS.match(line), line
    assert f"DEPTHKIT_DATA ({disk / 'data'})" in line and f" on {disk} " in line and f"{_human_bytes(free)} free" in line
    assert "cache DIW_test 200x200 ~8.96 GB, download DIW_test ~7.44 GB" in line, line  # the largest steps first
    out = capsys.readouterr().out
    assert f"{disk}: needs" in out and "DOES NOT FIT" in out  # the plan was printed first
    assert files_under(disk) == []  # nothing was written: no download, cache, run folder or figure


def test_the_plan_command_prints_the_plan_and_fails_in_one_line(tmpfs, monkeypatch, capsys):
    disk = tmpfs("1m")
    point_at(monkeypatch, disk / "data", disk / "runs", disk / "figures")
    assert main(["plan", "--profile", "report"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("disk plan, profile report") and "cache DIW_test 200x200" in captured.out
    assert captured.err.count("\n") == 1 and captured.err.startswith("depthkit plan: error: not enough disk: ")


def two_disks(tmpfs, monkeypatch, smoke_prepared) -> tuple[Path, Path]:
    """A data disk (data and figures: ~21 MB to write at 32x32) and a runs disk (LR-ASPP's checkpoints, ~199 MB)."""
    data, runs = tmpfs("48m"), tmpfs("240m")
    point_at(monkeypatch, data / "data", runs / "runs", data / "figures")
    real_layout(data / "data", smoke_prepared)
    return data, runs


@pytest.mark.slow
def test_two_disks_are_planned_apart_and_a_run_that_fits_goes_through(tmpfs, monkeypatch, smoke_prepared, capsys):
    """Catches: a plan that sums two file systems' needs against one's free space; a plan that ignores
    the downloads already on disk (the NYU .mat alone, 2.97 GB, would not fit). The run then goes
    through, on disks sized by the plan, and writes no more on each than the plan said."""
    profile = get_profile("report").replace(size=32, pretrained=False).with_budget("nyu", epochs={"*": 1}, frozen_epochs={})
    profile = profile.with_budget("diw", epochs={"*": 1})
    data, runs = two_disks(tmpfs, monkeypatch, smoke_prepared)
    plan = disk_plan(profile, ("lraspp",))
    assert sorted(str(fs.mount) for fs in plan.filesystems) == sorted([str(data), str(runs)]) and plan.fits
    assert sum(fs.need for fs in plan.filesystems) > shutil.disk_usage(data).free  # summed, they would not fit
    used = {fs.mount: shutil.disk_usage(fs.mount).used for fs in plan.filesystems}
    results = reproduce(profile, models=("lraspp",), device="cpu", progress=False, max_steps=1)
    assert results["models"]["lraspp"]["nyu"]["normalized_mse"] > 0  # the run went through
    out = capsys.readouterr().out
    assert f"{data}: needs" in out and f"{runs}: needs" in out and "DOES NOT FIT" not in out
    for fs in plan.filesystems:  # the plan is no underestimate
        assert shutil.disk_usage(fs.mount).used - used[fs.mount] <= fs.need, fs.mount


def test_a_disk_too_small_for_its_own_steps_is_refused_beside_a_roomy_one(tmpfs, monkeypatch, smoke_prepared):
    """Catches: a plan that pools the free space of all disks (1 GB beside 1 MB would hold it all)."""
    data, runs = tmpfs("1g"), tmpfs("1m")
    point_at(monkeypatch, data / "data", runs / "runs", data / "figures")
    real_layout(data / "data", smoke_prepared)
    plan = disk_plan(get_profile("report").replace(size=32), ("lraspp",))
    assert sum(fs.need for fs in plan.filesystems) < sum(fs.free for fs in plan.filesystems)
    with pytest.raises(OSError) as caught:
        check_plan(plan)
    line = caught.value.strerror
    assert NEEDS.match(line) and line.startswith(f"not enough disk: DEPTHKIT_RUNS ({runs / 'runs'}) on {runs} "), line
    assert "checkpoints lraspp NYU 79.4 MB" in line, line


def test_an_unpacking_cut_short_needs_the_rest_and_one_finished_needs_nothing(tmp_path, monkeypatch):
    """Catches: a half-unpacked image folder taken for a finished one (the archive still there, no marker)."""
    point_at(monkeypatch, tmp_path / "data", tmp_path / "runs", tmp_path / "figures")
    diw = tmp_path / "data" / "real" / "diw"
    (diw / "DIW_test").mkdir(parents=True)
    (diw / "DIW_test.tar.gz").write_bytes(b"\0" * 10_000)
    (diw / "DIW_test" / "a.thumb").write_bytes(b"\0" * 4_000)
    steps = steps_of(disk_plan(get_profile("report"), ("lraspp",)))
    assert steps["download DIW_test"].need == 0 and steps["unpack DIW_test"].need == 6_000
    (diw / ".DIW_test.tar.gz.extracted").touch()
    assert steps_of(disk_plan(get_profile("report"), ("lraspp",)))["unpack DIW_test"].need == 0
