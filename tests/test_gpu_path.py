"""What a GPU would feel, seen on the CPU: every host<->device crossing and host read of a training step and an evaluation batch.

Mechanism: the training device is torch's ``meta`` device, and two torch modes record.

* ``meta`` is a device other than the CPU that runs every operator of the step (shapes only, no
  data), so a host-to-device copy that on the CPU is a no-op becomes a visible CPU->meta copy,
  and a read of a device value cannot be answered from data.
* A ``TorchDispatchMode`` sees every operator below autograd: it records cross-device
  ``_to_copy``/``copy_`` and ``_local_scalar_dense`` (``.item()``, ``float()``, ``bool()``) on a
  device tensor, answering the read with a placeholder so the loop goes on.
* A ``TorchFunctionMode`` sees what the dispatcher does not: ``torch.tensor``/``as_tensor`` of
  host data straight onto a device (the copy happens inside the constructor) and ``Tensor.tolist``.

Why not patch ``.item()`` on the CPU (the earlier sync test): on the CPU a host-to-device copy is
a no-op, so the three defects of issue #18 (augmentation drawn on the host, ImageNet constants
built per call, batch index copied from unpinned memory) were invisible. ``FakeTensorMode`` with a
fake CUDA device was the other candidate; it calls into ``torch.cuda`` (generators, capability)
and refuses data-dependent reads instead of recording them.

A CUDA step is allowed exactly: the batch's own copy (streamed data), nothing (device-resident
data), and per epoch the two documented reads of ``train_one_epoch`` (the first step's timing, the
epoch's mean loss) and the one of ``evaluate`` (its sums, at the end).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from depthkit import checkpoints
from depthkit import device as dk_device
from depthkit import evaluate as dk_eval
from depthkit import train as dk_train
from depthkit.data.loader import DepthData, Rows, augment
from depthkit.models import build_model
from depthkit.stages import get_stage

aten = torch.ops.aten
META = torch.device("meta")


def _placeholder(t: torch.Tensor) -> torch.Tensor:
    """What a recorded read returns: ones, and no non-finite count (row 2 of evaluate's [sums, counts, non-finite])."""
    out = torch.ones(t.shape, dtype=torch.float64)
    if t.dim() == 2 and t.shape[0] == 3:
        out[2] = 0
    return out


class _Functions(TorchFunctionMode):
    def __init__(self, events: list):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor) and kwargs.get("device") is not None \
                and torch.device(kwargs["device"]).type != "cpu" and not isinstance(args[0], torch.Tensor):
            self.events.append(("host data -> device (constructor)", tuple(torch.as_tensor(args[0]).shape)))
        if func is torch.Tensor.tolist and args[0].device.type != "cpu":
            self.events.append(("read", tuple(args[0].shape)))
            return _placeholder(args[0]).tolist()
        return func(*args, **kwargs)


class _Dispatch(TorchDispatchMode):
    def __init__(self, events: list):
        super().__init__()
        self.events = events

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default and args[0].device.type != "cpu":
            self.events.append(("read", tuple(args[0].shape)))
            return _placeholder(args[0]).to(args[0].dtype).item()
        out = func(*args, **kwargs)
        if func in (aten._to_copy.default, aten.copy_.default):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = out
            if isinstance(src, torch.Tensor) and src.device.type != dst.device.type:
                self.events.append((f"{src.device.type} -> {dst.device.type}", tuple(src.shape)))
        return out


class record:
    """``with record() as events:`` every host<->device copy and host read of a device value, in order."""

    def __enter__(self) -> list:
        self.events: list = []
        self._modes = [_Functions(self.events), _Dispatch(self.events)]
        for m in self._modes:
            m.__enter__()
        return self.events

    def __exit__(self, *exc) -> None:
        for m in reversed(self._modes):
            m.__exit__(*exc)


def _split(kind: str, n: int, size: int = 64) -> DepthData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    if kind == "nyu":
        return DepthData(images=images, depths=torch.rand(n, 1, size, size, generator=g) + 1, name="nyu")
    return DepthData(images=images, pairs=torch.randint(0, size, (n, 1, 4), generator=g),
                     relation=torch.randint(0, 2, (n, 1), generator=g) * 2 - 1, name="diw")


def _batch_shapes(data: DepthData, batch: int) -> set[tuple]:
    return {(batch, *c.shape[1:]) for c in data.columns().values()}


def _train_step(kind: str, resident: bool, smoke_profile) -> tuple[list, set]:
    """One training step (a one-batch split) on the meta device, recorded."""
    profile = smoke_profile.replace(batch_size=2)
    data = _split(kind, profile.batch_size)
    data = data.to(META) if resident else data
    torch.manual_seed(0)
    model = build_model("lraspp").to(META)
    optimizer = dk_train.build_optimizer(model, 1e-3, 0.0, META)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with record() as events:
        stats = dk_train.train_one_epoch(model, optimizer, scaler=scaler, stage=get_stage(kind), data=data, profile=profile,
                                         epoch=0, device=META, progress=False)
    assert stats["steps"] == 1
    return events, _batch_shapes(data, profile.batch_size)


@pytest.mark.parametrize("kind", ["nyu", "diw"])
@pytest.mark.parametrize("resident", [False, True], ids=["streamed", "resident"])
def test_a_training_step_crosses_only_with_its_batch(kind, resident, smoke_profile):
    events, shapes = _train_step(kind, resident, smoke_profile)
    copies = [e for e in events if e[0] != "read"]
    reads = [e for e in events if e[0] == "read"]
    expected = [] if resident else sorted(("cpu -> meta", s) for s in shapes)
    assert sorted(copies) == expected, f"host<->device copies other than the batch's: {copies}"
    assert len(reads) == 2, f"reads of device values (allowed: first-step timing, epoch mean): {reads}"


@pytest.mark.parametrize("kind", ["nyu", "diw"])
def test_an_evaluation_batch_crosses_only_with_its_batch(kind):
    data = _split(kind, 2)
    torch.manual_seed(0)
    model = build_model("lraspp").to(META)
    with record() as events:
        dk_eval.evaluate(model, data, kind, batch_size=2, device=META)
    copies = [e for e in events if e[0] != "read"]
    reads = [e for e in events if e[0] == "read"]
    assert sorted(copies) == sorted(("cpu -> meta", s) for s in _batch_shapes(data, 2)), copies
    assert len(reads) == 1, f"evaluate reads its sums once, at the end: {reads}"


def test_the_recorder_sees_each_kind_of_crossing():
    """The recorder itself: a constructor onto the device, a copy, a read; host-only work is not recorded."""
    with record() as events:
        torch.tensor([1.0, 2.0], device=META)
        torch.rand(3).to(META)
        float(torch.zeros(2, device=META).sum())
        torch.zeros(2).sum().item()  # a CPU read: no GPU waits for it
    assert [e[0] for e in events] == ["host data -> device (constructor)", "cpu -> meta", "read"]


def test_augment_refuses_a_generator_on_another_device():
    batch = {"images": torch.rand(2, 3, 8, 8, device=META)}
    with pytest.raises(ValueError, match="generator is on cpu but the images are on meta"):
        augment(batch, torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------
# The CUDA-only branches of fit, run on the CPU where torch allows (docs/design.md lists the rest)
# ------------------------------------------------------------------------------------------
def _fit(splits, stage, profile, out, **kw):
    torch.manual_seed(0)
    model = build_model("lraspp")
    return model, dk_train.fit(model, splits, stage, profile, out, device="cpu", progress=False, **kw)


def _losses(history: dict) -> list[float]:
    return history["train_loss"] + [v for k, v in history.items() if k.startswith("val_") for v in v]


def test_a_device_resident_split_trains_as_the_streamed_one(smoke_profile, diw_splits, tmp_path, monkeypatch):
    """The GPU-resident branch forced on the CPU: the DIW split (on disk) is copied a chunk at a time, then sliced."""
    _, streamed = _fit(diw_splits, "diw", smoke_profile, tmp_path / "a", epochs=(0, 2))
    calls = []
    original = Rows.materialize
    monkeypatch.setattr(Rows, "materialize", lambda self, *a, **k: calls.append(len(self)) or original(self, *a, **k))
    monkeypatch.setenv(dk_device.RESIDENT_ENV, "1")
    _, resident = _fit(diw_splits, "diw", smoke_profile, tmp_path / "b", epochs=(0, 2))
    assert calls == [len(diw_splits["train"])]  # the training split went resident, once
    assert _losses(resident) == _losses(streamed)
    _fit(diw_splits, "diw", smoke_profile, tmp_path / "b", epochs=(0, 2))  # finished: nothing is copied again
    assert calls == [len(diw_splits["train"])]


def test_a_split_reaches_the_device_a_chunk_at_a_time(diw_splits):
    rows = diw_splits["train"].images
    whole = rows[np.arange(len(rows))]
    row_bytes = rows.nbytes // len(rows)
    for chunk in (row_bytes, 3 * row_bytes, 10**9):
        copy = rows.materialize("cpu", chunk_bytes=chunk)
        assert torch.equal(copy, whole) and copy.stride() == whole.stride()  # same values, same memory layout


@pytest.mark.parametrize("amp", [torch.bfloat16, torch.float16], ids=["bf16", "fp16+scaler"])
def test_mixed_precision_training_and_the_scalers_resume(amp, smoke_profile, nyu_splits, tmp_path, monkeypatch):
    """CUDA's autocast branch on the CPU (bf16 as on an A100; fp16 with a GradScaler as on a T4), resumed mid-run."""
    monkeypatch.setattr(dk_train, "autocast_dtype", lambda device: amp)
    smoke_profile = smoke_profile.replace(batch_size=2)  # reduced precision is emulated, slowly, on most CPUs
    _, history = _fit(nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(0, 2), stop_after=1, max_steps=2)
    assert np.isfinite(history["train_loss"]).all()
    saved = checkpoints.load_checkpoint(tmp_path / "last.pt")
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**5, enabled=amp == torch.float16)
    model = build_model("lraspp")
    optimizer = dk_train.build_optimizer(model, 1e-3, 0.0, torch.device("cpu"))
    checkpoints.resume(model, optimizer, scaler, tmp_path / "last.pt", "lraspp", "nyu", saved["fingerprint"],
                     dict(saved["config"]), torch.device("cpu"))
    if amp == torch.float16:  # the trained scale comes back, not the fresh one
        assert scaler.get_scale() == saved["scaler"]["scale"] != 2.0**5
    _, resumed = _fit(nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(0, 2), max_steps=2)
    assert resumed["epoch"] == [1, 2] and np.isfinite(resumed["train_loss"]).all()


def test_channels_last_training_matches_contiguous(smoke_profile, nyu_splits, tmp_path, monkeypatch):
    """CUDA's channels_last branch (model and inputs) on the CPU: the same losses within float noise."""
    _, plain = _fit(nyu_splits, "nyu", smoke_profile, tmp_path / "a", epochs=(0, 1))
    monkeypatch.setattr(dk_device, "channels_last", lambda device: True)  # the model's memory (to_device) ...
    monkeypatch.setattr(dk_eval, "channels_last", lambda device: True)  # ... and the inputs' (predict)
    model, last = _fit(nyu_splits, "nyu", smoke_profile, tmp_path / "b", epochs=(0, 1))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert _losses(last) == pytest.approx(_losses(plain), rel=1e-2)  # other conv kernels: float noise over 4 steps


def test_resume_sets_fused_adam_from_the_device(smoke_profile, diw_splits, tmp_path):
    """A last.pt written by fused Adam on CUDA resumes unfused on the CPU, and a CPU one resumes fused on CUDA."""
    _fit(diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 2), stop_after=1)
    state = checkpoints.load_checkpoint(tmp_path / "last.pt")
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True  # as fit writes it on CUDA
    torch.save(state, tmp_path / "last.pt")
    model = build_model("lraspp")
    optimizer = dk_train.build_optimizer(model, 1e-3, 0.0, torch.device("cpu"))
    args = (model, optimizer, torch.amp.GradScaler("cpu", enabled=False), tmp_path / "last.pt", "lraspp", "diw",
            state["fingerprint"], dict(state["config"]))
    checkpoints.resume(*args, torch.device("cpu"))
    assert all(g["fused"] is None and g["foreach"] is None for g in optimizer.param_groups)
    model(torch.zeros(1, 3, 64, 64)).mean().backward()
    optimizer.step()  # the unfused CPU step runs on the loaded state
    checkpoints.set_fused(optimizer, torch.device("cuda"))  # what _resume does on a GPU (flags only: no GPU here)
    assert all(g["fused"] is True for g in optimizer.param_groups)
    assert all(s["step"].dtype == torch.float32 for s in optimizer.state.values())
    _, history = _fit(diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 2))  # and fit itself resumes
    assert history["epoch"] == [1, 2]


@pytest.mark.slow
def test_gpucheck_runs_on_the_cpu_and_marks_what_needs_a_gpu():
    """``make gpu-check`` end to end on a CPU (``--quick``): one table, the GPU rows marked, the rest measured."""
    from depthkit.tools import gpucheck

    result = gpucheck.gpucheck(quick=True, device="cpu")
    table = gpucheck.format_check(result)
    assert "host syncs per training step" in table and "peak host RAM" in table and "no GPU" in table
    status = {r["what"]: r["status"] for r in result["rows"]}
    assert status["host syncs per training step (set_sync_debug_mode)"] == "no GPU"
    assert all(r["device"].startswith("CPU: ") for r in result["rows"])  # each row names what it ran on
    assert {s for w, s in status.items() if "data wait" in w} <= {"PASS", "FAIL"}  # measured on any device
    # the parity check itself ran (CPU channels_last against CPU contiguous), within its tolerances
    assert result["parity"]["loss_rel"] <= gpucheck.LOSS_RTOL and result["parity"]["grad_rel"] <= gpucheck.GRAD_TOL


def test_random_split_makes_each_loaders_layout_and_needs_a_folder_to_stream(tmp_path):
    """Catches: gpucheck and bench drawing different random data, or a streamed split without a folder
    failing deep inside numpy instead of with one line."""
    from depthkit.tools.bench import random_split

    nyu = random_split("nyu", 4, 32)
    assert nyu.depths is not None and tuple(nyu.images.shape) == (4, 3, 32, 32)
    assert torch.equal(nyu.images, random_split("nyu", 4, 32).images)  # seeded: the same images every call
    assert random_split("diw", 4, 32, tmp_path).pairs is not None
    with pytest.raises(ValueError, match="diw stage streams its images from disk"):
        random_split("diw", 4, 32)


# ------------------------------------------------------------------------------------------
# cudnn.benchmark: set where the model reaches a CUDA device, and nowhere else (#32)
# ------------------------------------------------------------------------------------------
@pytest.fixture
def cudnn_flag():
    """``torch.backends.cudnn.benchmark`` off for the test, restored after it."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    yield
    torch.backends.cudnn.benchmark = saved


def test_cudnn_benchmark_is_set_for_cuda_and_for_no_other_device(cudnn_flag):
    """Catches: the autotuner left off on CUDA (fixed 200x200 inputs: its search pays for itself), or set elsewhere."""
    for kind in ("cpu", "mps", "meta"):
        dk_device.configure_backends(torch.device(kind))
        assert torch.backends.cudnn.benchmark is False, kind
    dk_device.configure_backends(torch.device("cuda"))  # the flag alone: no GPU needed to set it
    assert torch.backends.cudnn.benchmark is True


def test_training_on_the_cpu_leaves_cudnn_benchmark_as_it_was(cudnn_flag, smoke_profile, diw_splits, tmp_path):
    """Catches: fit (through to_device) setting the flag on a CPU run, or resetting one the user set."""
    _fit(diw_splits, "diw", smoke_profile, tmp_path / "a", epochs=(0, 1), max_steps=2)
    assert torch.backends.cudnn.benchmark is False
    torch.backends.cudnn.benchmark = True
    _fit(diw_splits, "diw", smoke_profile, tmp_path / "b", epochs=(0, 1), max_steps=2)
    assert torch.backends.cudnn.benchmark is True


def test_fit_configures_the_backends_of_its_device(cudnn_flag, smoke_profile, diw_splits, tmp_path, monkeypatch):
    """CUDA's branch of configure_backends on the CPU: fit, where the model reaches its device, sets the flag.

    Catches: configure_backends never called on the training path (the flag would stay off on a GPU).
    """
    monkeypatch.setattr(dk_device, "cudnn_benchmark", lambda device: True)
    _fit(diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), max_steps=2)
    assert torch.backends.cudnn.benchmark is True


# ------------------------------------------------------------------------------------------
# gpucheck: every row names the device it ran on; a T4's matmul row is measured in fp16 (#32)
# ------------------------------------------------------------------------------------------
def _bench_result(name: str, dtype: str, precision: str, matmul_pct: float) -> dict:
    """What dk_bench.bench returns on a device called ``name`` whose autocast dtype is ``dtype``."""
    row = {"stage": "nyu", "data": "on GPU", "data_wait_pct": 1.0, "syncs_per_step": 0.0, "precision": precision,
           "matmul_pct": matmul_pct}
    return {"device_name": name, "matmul_dtype": dtype, "matmul_tflops": 30.0,
            "rows": [dict(row, model="lraspp"), dict(row, model="unetpp"), dict(row, model="unetpp", stage="diw",
                                                                                data="disk, 0 workers")]}


def _check_rows(name: str, cuda: bool, bench: dict) -> list[dict]:
    from depthkit.tools import gpucheck

    par = {"loss_rel": 1e-6, "grad_rel": 1e-5, "against": "GPU" if cuda else "cpu channels_last"}
    syncs = {"train_per_step": 0.0 if cuda else None, "eval_per_batch": 0.0 if cuda else None}
    return gpucheck.check_rows(name, cuda, par, syncs, bench, ("this check", 1.2), 2.0 if cuda else None)


def test_every_gpucheck_row_names_the_device_it_ran_on():
    """Catches: a row of the table (parity, syncs, bench, memory) that does not say which GPU or CPU produced it."""
    from depthkit.tools import gpucheck

    cpu = dk_device.device_name("cpu")
    assert cpu.startswith("CPU: ") and len(cpu) > len("CPU: ")
    for name, cuda, bench in (("Tesla T4", True, _bench_result("Tesla T4", "float16", "fp16", 45.0)),
                              (cpu, False, _bench_result(f"{cpu}, 2 threads", "float32", "fp32", 80.0))):
        rows = _check_rows(name, cuda, bench)
        assert all(name in r["device"] for r in rows), [r for r in rows if name not in r["device"]]
        parity = [r for r in rows if "parity" in r["what"]]
        assert parity and all(cpu in r["device"] for r in parity)  # parity ran on both sides and names both
        table = gpucheck.format_check({"device": name, "quick": False, "rows": rows})
        assert all(name in line for line in table.splitlines()[3:-1])  # each printed row carries it


@pytest.mark.parametrize("gpu, dtype, precision", [("Tesla T4", "float16", "fp16"), ("NVIDIA A100", "bfloat16", "bf16")])
def test_the_matmul_row_is_measured_on_every_gpu_in_its_autocast_dtype(gpu, dtype, precision):
    """Catches: the U-Net++ matmul-share row marked "no GPU" on a T4 (sm_75, no bf16): fp16 there, and it says so."""
    for pct, status in ((45.0, "PASS"), (30.0, "FAIL")):
        rows = [r for r in _check_rows(gpu, True, _bench_result(gpu, dtype, precision, pct)) if "matmul" in r["what"]]
        assert len(rows) == 2 and {r["status"] for r in rows} == {status}, rows
        assert all(precision in r["what"] and precision in r["target"] for r in rows), rows
    cpu_rows = [r for r in _check_rows("CPU: x", False, _bench_result("CPU: x", "float32", "fp32", 80.0))
                if "matmul" in r["what"]]
    assert {r["status"] for r in cpu_rows} == {"no GPU"}


# ------------------------------------------------------------------------------------------
# bench: the DIW split as fit streams it, and the FLOPs behind the T4 estimate (#32)
# ------------------------------------------------------------------------------------------
def test_bench_data_reads_the_diw_train_split_prepare_diw_wrote():
    """Catches: the DIW data rows timing something other than the report profile's train split (80 % of the records)."""
    from depthkit.tools.bench import bench_data, format_data_table

    result = bench_data(size=32, batch=8, images=40, workers=(0, 1), epochs=1, split="diw")
    assert result["images"] == 32 and [r["workers"] for r in result["rows"]] == [0, 1]
    assert all(r["warm img/s"] > 0 and r["cold img/s"] > 0 and r["cold peak_mb"] > 0 for r in result["rows"])
    assert "DIW train-split rows" in format_data_table(result)


def test_the_flop_estimate_counts_the_steps_and_splits_fit_runs():
    """Catches: steps per epoch or split sizes in the T4 estimate that differ from what fit and the pipeline use."""
    from depthkit.data.loader import batch_order
    from depthkit.tools.bench import report_flops

    result = report_flops(("lraspp",))
    splits, batch = result["splits"], result["batch"]
    assert splits["nyu"]["train"] + splits["nyu"]["val"] == 795 and sum(splits["diw"].values()) == 74_441
    for r in result["rows"]:
        n = splits[r["stage"]]["train"]
        assert r["steps_per_epoch"] == len(batch_order(n, batch, drop_last=n > batch))
        assert r["train_pflop"] == pytest.approx(3 * r["gflop_fwd"] * 1e9 * batch * r["steps_per_epoch"] * r["epochs"] / 1e15)
