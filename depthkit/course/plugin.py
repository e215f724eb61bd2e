"""The capstone without editing depthkit: your ideas in a file of your own, ``train --plugin mine.py``.

A plugin is a Python file that defines any of these four functions; each one it leaves out keeps
depthkit's own (:class:`depthkit.train.Hooks` says where each one acts)::

    def augment(batch: dict, generator) -> dict:          # replaces depthkit.data.loader.augment
    def extra_loss(pred: Tensor, batch: dict) -> Tensor:  # added to the stage's loss
    def learning_rate(base: float, epoch: int, total: int) -> float:  # replaces the profile's schedule
    def model(net: nn.Module) -> nn.Module:               # changes the network once built (another head)

``docs/capstone_plugin.py`` is a worked example. The checkpoint records the plugin (its file name,
SHA-256, the hooks it defines and its source), so a run is never resumed under another plugin,
``python -m depthkit evaluate`` rebuilds a changed head from the record, and the capstone's verdict
names what the plugin changed.
"""
from __future__ import annotations

import hashlib
import types
from pathlib import Path

import torch
from torch import nn

from depthkit.checkpoints import load_checkpoint
from depthkit.checkpoints import load_model as load_plain_model
from depthkit.course.modern import silog_hooks
from depthkit.train import Hooks

HOOK_NAMES = ("augment", "extra_loss", "learning_rate", "model")


def _module_from_source(source: str, name: str) -> types.ModuleType:
    """Run a plugin's source in a module of its own; a syntax or import error names the file."""
    module = types.ModuleType(f"depthkit_plugin_{Path(name).stem}")
    module.__file__ = name
    try:
        exec(compile(source, name, "exec"), module.__dict__)  # the student's own file, run as an import would
    except SyntaxError as err:
        raise ValueError(f"{name}, line {err.lineno}: not valid Python ({err.msg})") from None
    except Exception as err:  # an import or a top-level statement of the plugin failed
        raise ValueError(f"{name}: running the plugin failed ({type(err).__name__}: {err})") from None
    return module


def hooks_from_source(source: str, name: str) -> Hooks:
    """The :class:`~depthkit.train.Hooks` a plugin's source defines, with the record a checkpoint keeps."""
    module = _module_from_source(source, name)
    found = {hook: getattr(module, hook) for hook in HOOK_NAMES if hasattr(module, hook)}
    for hook, fn in found.items():
        if not callable(fn):
            raise ValueError(f"{name}: {hook} must be a function, got {type(fn).__name__}")
    if not found:
        raise ValueError(f"{name} defines none of {', '.join(HOOK_NAMES)}: nothing to change "
                         f"(see docs/capstone_plugin.py for the interface)")
    record = {"file": Path(name).name, "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
              "hooks": sorted(found), "source": source}
    return Hooks(**found, record=record)


def load_plugin(path: str | Path) -> Hooks:
    """Read a plugin file (``train --plugin``): its hooks, and what the checkpoint will record of it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such plugin file (see docs/capstone_plugin.py for an example)")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {err.start})") from None
    return hooks_from_source(source, str(path))


def hooks_of_checkpoint(state: dict, path: str | Path) -> Hooks | None:
    """The plugin a checkpoint was trained with, rebuilt from its record (None: depthkit's own training)."""
    record = (state.get("config") or {}).get("plugin")
    if not record:
        return None
    if record.get("builtin") == "silog":  # depthkit's own SIlog training (notebook 09), not a plugin file
        return silog_hooks(record["lam"])
    source = record.get("source", "")
    if hashlib.sha256(source.encode("utf-8")).hexdigest() != record.get("sha256"):
        raise ValueError(f"{path}: the plugin recorded in the checkpoint is damaged (its SHA-256 does not match)")
    return hooks_from_source(source, record.get("file", "plugin.py"))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """:func:`depthkit.checkpoints.load_model`, with the checkpoint's own plugin applied when it changed the model."""
    hooks = hooks_of_checkpoint(load_checkpoint(path), path)
    return load_plain_model(path, device, model_hook=hooks.model if hooks is not None else None)


def describe(record: dict | None) -> str:
    """One phrase for a verdict: ``plugin mine.py (changes augment, extra_loss; sha256 1a2b3c4d)``, or depthkit's own."""
    if not record:
        return "no plugin (depthkit's own training)"
    if record.get("builtin"):
        return f"depthkit's own {record['loss']} (the output read as log depth, {record['model']})"
    return f"plugin {record.get('file')} (changes {', '.join(record.get('hooks', []))}; sha256 {record.get('sha256', '')[:8]})"
