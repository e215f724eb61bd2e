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

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from depthkit import train as dk_train
from depthkit.data.loader import DepthData
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
        stats = dk_train.train_one_epoch(model, optimizer, scaler, get_stage(kind), data, profile, 0, META,
                                         progress=False)
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
        dk_train.evaluate(model, data, kind, batch_size=2, device=META)
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
