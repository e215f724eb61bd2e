"""The report-scale data path and the lean training loop, at smoke size on the CPU."""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest
import torch

from depthkit import checkpoints
from depthkit import device as dk_device
from depthkit import evaluate as dk_eval
from depthkit import train as dk_train
from depthkit.data.loader import Rows, batches
from depthkit.models import build_model
from depthkit.pipeline import load_stage_data
from depthkit.stages import get_stage

SYNC_METHODS = ("item", "__float__", "__bool__", "__int__", "tolist", "nonzero", "cpu", "numpy")


def _count_syncs(monkeypatch, everywhere: bool = False) -> dict:
    """Count depthkit's own calls of every Tensor method that makes the host wait for the device.

    (Library internals such as Adam's step counter call ``.item()`` on CPU tensors, which never
    waits for a GPU; what depthkit's loop, losses and models read back is what this test pins.)
    ``everywhere=True`` counts torch's own calls too.
    """
    calls = {"n": 0, "where": []}
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if everywhere or f"{os.sep}depthkit{os.sep}" in caller.co_filename:
                calls["n"] += 1
                calls["where"].append(f"{_name} in {caller.co_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("stage", ["nyu", "diw"])
def test_training_step_never_waits_for_the_device(stage, smoke_profile, nyu_splits, diw_splits, monkeypatch):
    """Host synchronisations per epoch must not grow with the number of steps (none inside a step)."""
    splits = {"nyu": nyu_splits, "diw": diw_splits}[stage]
    profile = smoke_profile.replace(batch_size=2)
    counts = []
    for steps in (2, 4):
        torch.manual_seed(0)
        model = build_model("lraspp")
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        train = splits["train"].to("cpu")  # resident, as on a GPU: the loader itself reads nothing back
        with monkeypatch.context() as m:
            calls = _count_syncs(m)
            done = dk_train.train_one_epoch(model, optimizer, scaler=scaler, stage=get_stage(stage), data=train, profile=profile,
                                            epoch=0, device=torch.device("cpu"), max_steps=steps, progress=False)["steps"]
        assert done == steps
        counts.append(calls["n"])
    assert counts[0] == counts[1], f"host syncs grew with steps: {counts} for 2 and 4 steps: {calls['where']}"


@pytest.mark.parametrize("stage", ["nyu", "diw"])
def test_evaluation_reads_the_device_once_not_per_batch(stage, nyu_splits, diw_splits, monkeypatch):
    """Host synchronisations of ``evaluate`` must not grow with the number of batches (metrics summed on the device)."""
    test = {"nyu": nyu_splits, "diw": diw_splits}[stage]["test"].to("cpu")
    torch.manual_seed(0)
    model = build_model("lraspp").eval()
    counts = []
    for n_batches in (1, 3):
        with monkeypatch.context() as m:
            calls = _count_syncs(m)
            dk_eval.evaluate(model, test, stage, batch_size=2, device="cpu", max_batches=n_batches)
        counts.append(calls["n"])
    assert counts[0] == counts[1], f"evaluation syncs grew with batches: {counts} for 1 and 3: {calls['where']}"


@pytest.mark.parametrize("stage", ["nyu", "diw"])
def test_evaluate_is_the_mean_over_images_of_the_float_metrics(stage, nyu_splits, diw_splits):
    """Summed per image on the device, ``evaluate`` equals the float metrics taken over the whole split at once."""
    from depthkit import metrics

    test = {"nyu": nyu_splits, "diw": diw_splits}[stage]["test"]
    torch.manual_seed(0)
    model = build_model("lraspp").eval()
    got = dk_eval.evaluate(model, test, stage, batch_size=3, device="cpu")  # batches of uneven use: 3 does not divide
    batch = next(batches(test, len(test)))
    with torch.no_grad():
        pred = dk_eval.predict(model, batch["images"])
    if stage == "nyu":
        mask = batch["depths"] > 0
        expected = {"normalized_mse": metrics.normalized_mse(pred, batch["depths"], mask),
                    **metrics.depth_metrics(pred, batch["depths"], mask, align="lstsq")}
    else:
        expected = {"ordinal_accuracy": metrics.ordinal_accuracy(pred, batch["pairs"], batch["relation"]),
                    "whdr": metrics.whdr(pred, batch["pairs"], batch["relation"], delta=0.0)}
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key


def test_an_image_without_valid_depth_is_left_out_of_the_mean(nyu_splits):
    from depthkit.data.loader import DepthData

    whole = next(batches(nyu_splits["test"], len(nyu_splits["test"])))
    depths = whole["depths"].clone()
    depths[1] = 0  # Kinect holes everywhere: no pixel to score
    torch.manual_seed(0)
    model = build_model("lraspp").eval()
    with_hole = dk_eval.evaluate(model, DepthData(images=whole["images"], depths=depths), "nyu", batch_size=2)
    keep = [i for i in range(len(depths)) if i != 1]
    without = dk_eval.evaluate(model, DepthData(images=whole["images"][keep], depths=depths[keep]), "nyu", batch_size=2)
    assert with_hole == pytest.approx(without, rel=1e-6)


def test_a_nan_prediction_fails_evaluation_by_name(diw_splits):
    class Diverged(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            out = x[:, :1] * self.w
            out[-1, 0, 0, 0] = float("nan")  # one pixel of the last image of every batch
            return out

    with pytest.raises(ValueError, match=r"predictions on .* hold \d+ non-finite"):
        dk_eval.evaluate(Diverged(), diw_splits["test"], "diw", device="cpu")


def test_train_one_epoch_counts_the_time_spent_waiting_for_data(smoke_profile, nyu_splits, monkeypatch):
    """A loader that takes 0.2 s per batch shows up as >= 0.2 s of data wait per step, never more than the epoch."""
    import time

    slow_batches = dk_eval.batches

    def slow(*args, **kwargs):
        for batch in slow_batches(*args, **kwargs):
            time.sleep(0.2)
            yield batch

    monkeypatch.setattr(dk_train, "batches", slow)
    torch.manual_seed(0)
    model = build_model("lraspp")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    t0 = time.perf_counter()
    stats = dk_train.train_one_epoch(model, optimizer, scaler=scaler, stage=get_stage("nyu"), data=nyu_splits["train"],
                                     profile=smoke_profile.replace(batch_size=2), epoch=0, device=torch.device("cpu"),
                                     max_steps=3, progress=False)
    assert stats["steps"] == 3
    assert 0.6 <= stats["data_seconds"] <= time.perf_counter() - t0


def test_bench_times_fits_own_step_on_both_stages(monkeypatch):
    """The model table runs train_one_epoch (fit's step) with the stage's data placement, warm-up then timed."""
    from depthkit.tools import bench

    calls = []

    def spy(model, optimizer, **kw):
        calls.append((kw["stage"].name, type(kw["data"].images).__name__, kw["max_steps"]))
        return dk_train.train_one_epoch(model, optimizer, **kw)

    monkeypatch.setattr(bench, "train_one_epoch", spy)
    result = bench.bench(("lraspp",), size=32, batch=2, steps=1, device="cpu")
    assert calls == [("nyu", "Tensor", bench.WARMUP), ("nyu", "Tensor", 1),
                     ("diw", "Rows", bench.WARMUP), ("diw", "Rows", 1)]
    nyu, diw = result["rows"]
    assert (nyu["data"], diw["data"]) == ("in memory", "disk, 0 workers")
    assert nyu["precision"] == "fp32" and 0 <= nyu["data_wait_pct"] <= 100 and nyu["tflops"] > 0
    assert result["matmul_tflops"] > 0 and 0 < nyu["matmul_pct"]


def test_cuda_sync_warnings_collects_what_torch_reports_and_resets_the_mode(monkeypatch):
    """The CUDA sync counter of bench, without a GPU: torch's warning text is collected, the debug mode reset."""
    import warnings

    from depthkit.tools import bench

    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    with bench.cuda_sync_warnings(torch.device("cuda")) as syncs:
        warnings.warn("called a synchronizing CUDA operation")  # what libc10_cuda says in "warn" mode
        warnings.warn("an unrelated warning")
    assert modes == ["warn", "default"] and len(syncs) == 1
    with pytest.warns(UserWarning), bench.cuda_sync_warnings(torch.device("cpu")) as syncs:
        warnings.warn("called a synchronizing CUDA operation")  # left alone off CUDA
    assert syncs == [] and modes == ["warn", "default"]


def test_training_flops_are_three_forward_passes():
    """A plain (ungrouped) conv: torch's own backward count is 2x the forward, which is what 3x forward assumes."""
    from torch.utils.flop_counter import FlopCounterMode

    conv, x = torch.nn.Conv2d(8, 16, 3, padding=1), torch.randn(2, 8, 16, 16, requires_grad=True)
    with FlopCounterMode(display=False) as forward:
        y = conv(x)
    with FlopCounterMode(display=False) as backward:
        y.sum().backward()
    assert backward.get_total_flops() == 2 * forward.get_total_flops()


@pytest.mark.parametrize("fused", [True, False])
def test_the_fp16_scaler_step_waits_only_without_fused_adam(fused, smoke_profile, nyu_splits, monkeypatch):
    """The T4 path (fp16 + GradScaler): with fused Adam (what fit uses on CUDA) nothing, torch included, reads back per step.

    With the default Adam, ``GradScaler.step`` reads its inf flag back every step: the count grows,
    which shows that this test sees the stall it guards against.
    """
    assert dk_train.build_optimizer(torch.nn.Linear(1, 1), 1e-3, 0.0, torch.device("cuda")).defaults["fused"]
    train, counts = nyu_splits["train"].to("cpu"), []
    for steps in (2, 4):
        torch.manual_seed(0)
        model = build_model("lraspp")
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused or None)
        scaler = torch.amp.GradScaler("cpu", enabled=True)
        with monkeypatch.context() as m:
            calls = _count_syncs(m, everywhere=True)
            dk_train.train_one_epoch(model, optimizer, scaler=scaler, stage=get_stage("nyu"), data=train,
                                     profile=smoke_profile.replace(batch_size=2), epoch=0, device=torch.device("cpu"),
                                     max_steps=steps, progress=False)
        counts.append(calls["n"])
    assert (counts[0] == counts[1]) == fused, f"read-backs for 2 and 4 steps: {counts}: {calls['where']}"


def test_bf16_only_on_compute_capability_8(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # a T4 says True (emulated)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    assert dk_train.autocast_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (8, 0))
    assert dk_train.autocast_dtype(torch.device("cuda")) == torch.bfloat16
    assert dk_train.autocast_dtype(torch.device("cpu")) is None


def test_evaluate_scores_in_fp32_even_when_training_uses_amp(diw_splits, monkeypatch):
    torch.manual_seed(0)
    model = build_model("lraspp").eval()
    fp32 = dk_eval.evaluate(model, diw_splits["test"], "diw", device="cpu")
    monkeypatch.setattr(dk_train, "autocast_dtype", lambda device: torch.bfloat16)  # CPU autocast exists
    assert dk_eval.evaluate(model, diw_splits["test"], "diw", device="cpu") == fp32


def test_resume_in_another_precision_starts_a_fresh_scaler(smoke_profile, diw_splits, tmp_path):
    torch.manual_seed(0)
    model = build_model("lraspp")
    dk_train.fit(model, diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), device="cpu", progress=False)
    optimizer = torch.optim.Adam(model.parameters())
    enabled = torch.amp.GradScaler("cpu", enabled=True)  # as on a T4 after a CPU or bf16 run
    config = checkpoints.load_checkpoint(tmp_path / "last.pt")["config"]
    history, _ = checkpoints.resume(model, optimizer, enabled, tmp_path / "last.pt", "lraspp", "diw",
                                  dk_train.data_fingerprint(diw_splits), dict(config))
    assert history["epoch"] == [1]


def test_max_steps_caps_the_whole_stage(smoke_profile, nyu_splits, tmp_path):
    torch.manual_seed(0)
    history = dk_train.fit(build_model("lraspp"), nyu_splits, "nyu", smoke_profile.replace(batch_size=2), tmp_path,
                           epochs=(0, 3), device="cpu", progress=False, max_steps=3)
    assert sum(history["steps"]) == 3


def test_splits_stream_from_disk_and_pickle_without_their_data(smoke_profile, smoke_prepared):
    diw = load_stage_data(smoke_profile, "diw", smoke_prepared)
    rows = diw["train"].images
    assert isinstance(rows, Rows) and isinstance(rows.array, np.memmap)
    assert len(pickle.dumps(diw["train"])) < 4096 + 64 * len(rows)  # file name, offsets and row numbers only
    clone = pickle.loads(pickle.dumps(diw["train"]))
    assert torch.equal(clone.images[[3, 0, 3]], rows[[3, 0, 3]])


def test_streamed_and_resident_batches_agree(smoke_profile, smoke_prepared):
    diw = load_stage_data(smoke_profile, "diw", smoke_prepared)["train"]
    resident = diw.to("cpu")
    for a, b in zip(batches(diw, 3, shuffle=True, seed=5), batches(resident, 3, shuffle=True, seed=5)):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fingerprint_reads_no_image(smoke_profile, smoke_prepared, monkeypatch):
    first = dk_train.data_fingerprint(load_stage_data(smoke_profile, "diw", smoke_prepared))

    def no_reads(*args, **kwargs):
        raise AssertionError("the fingerprint read an image")

    monkeypatch.setattr(Rows, "__getitem__", no_reads)
    again = dk_train.data_fingerprint(load_stage_data(smoke_profile, "diw", smoke_prepared))
    assert again == first
    other = load_stage_data(smoke_profile.replace(seed=1), "diw", smoke_prepared)
    assert dk_train.data_fingerprint(other) != first  # other rows, other fingerprint


def test_batched_baseline_equals_the_whole_split_at_once(nyu_splits):
    from depthkit import metrics

    train, test = nyu_splits["train"], nyu_splits["test"]
    mean_map = dk_eval.mean_depth_baseline(train)
    d = test.depths[:].float()
    whole = metrics.normalized_mse(mean_map.expand(len(d), -1, -1, -1), d, d > 0)
    assert dk_eval.evaluate_baseline(train, test, batch_size=2)["normalized_mse"] == pytest.approx(whole, rel=1e-5)


def test_bad_pairs_in_a_cache_are_refused_on_loading(smoke_profile, smoke_prepared):
    from depthkit.pipeline import check_pairs

    cache = {"pairs": np.array([[1, 2, 3, 4], [0, 0, 70, 1]]), "relation": np.array([1, -1], np.int8),
             "images": np.zeros((2, 64, 64, 3), np.uint8)}
    check_pairs(cache, np.array([0]), "DIW test")
    with pytest.raises(ValueError, match=r"DIW test: cache row 1 holds pair \[0, 0, 70, 1\]"):
        check_pairs(cache, np.array([0, 1]), "DIW test")


def test_rehearsal_files_read_through_the_real_readers(tmp_path):
    from depthkit import data
    from depthkit.tools.rehearse import write_rehearsal_data

    paths = write_rehearsal_data(tmp_path, diw_images=25, nyu_frames=3, distinct=4)
    images, depths = data.read_nyu_mat(paths["nyu"], [2])
    assert images.shape == (1, 480, 640, 3) and depths.shape == (1, 480, 640)
    records = data.read_diw_csv(paths["diw_csv"])  # authors' absolute paths, re-rooted
    assert len(records) == 25 and len({r.image for r in records}) == 25
    assert min(r.image.stat().st_nlink for r in records) >= 2  # hard links to a few distinct pictures
    for r in records[:4]:
        h, w = data.load_rgb(r.image).shape[:2]
        assert 250 <= h <= 500 and 250 <= w <= 500 and (r.height, r.width) == (h, w)


def test_the_rehearsal_sprinkles_the_real_releases_faults_and_prepare_counts_them(tmp_path, monkeypatch, capsys):
    """Each fault of FAULTS once (FAULT_EVERY lowered to 5): prepare skips exactly the unusable ones, counts the
    EXIF-tagged images, and the rejects file names them. Catches: a fault the rehearsal no longer writes."""
    import csv as csv_module
    from pathlib import Path

    from depthkit import data
    from depthkit.tools import rehearse

    monkeypatch.setattr(rehearse, "FAULT_EVERY", 5)
    n = 5 * len(rehearse.FAULTS)
    paths = rehearse.write_rehearsal_data(tmp_path, diw_images=n, nyu_frames=2, distinct=4)
    cache = data.prepare_diw(paths["diw_csv"], tmp_path / "cache", size=16, workers=1, max_reject_fraction=1.0)
    summary = capsys.readouterr().err
    skipped = len(rehearse.SKIPPED_FAULTS)
    assert f"{n} records: {n - skipped} prepared, {skipped} skipped" in summary, summary
    assert "1 with a point clamped" in summary and "2 images carry an EXIF orientation" in summary
    row = rehearse._diw_preparation(cache)
    assert (row["diw_records"], row["diw_prepared"], row["diw_skipped"], row["diw_exif_oriented"]) == (n, n - 3, 3, 2)
    with open(row["rejects_file"], newline="") as f:
        named = [Path(r["image"]).name for r in csv_module.DictReader(f)]
    faulty = {f: f"rehearsal_{5 * k + 4:06d}.thumb" for k, f in enumerate(rehearse.FAULTS)}
    assert sorted(named) == sorted(faulty[f] for f in rehearse.SKIPPED_FAULTS)


def test_a_deleted_history_is_restored_from_the_checkpoint(smoke_profile, diw_splits, tmp_path):
    """#11.3: a finished run whose history.json was deleted writes it again when run once more."""
    torch.manual_seed(0)
    first = dk_train.fit(build_model("lraspp"), diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1),
                         device="cpu", progress=False)
    (tmp_path / "history.json").unlink()
    again = dk_train.fit(build_model("lraspp"), diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1),
                         device="cpu", progress=False)
    import json

    assert again == first and json.loads((tmp_path / "history.json").read_text()) == first


def test_a_checkpoint_of_another_model_is_refused_in_one_line(smoke_profile, diw_splits, tmp_path):
    """#11.11: loading a checkpoint into the wrong model names both models in a short message."""
    torch.manual_seed(0)
    dk_train.fit(build_model("lraspp"), diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), device="cpu",
                 progress=False)
    state = checkpoints.load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(ValueError) as err:
        checkpoints.load_weights(build_model("unetpp_mnv2"), state, tmp_path / "last.pt")
    message = str(err.value)
    assert "'lraspp'" in message and "'unetpp_mnv2'" in message and len(message) < 400 and "\n" not in message
