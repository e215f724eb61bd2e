"""Checkpoints: written atomically, read back with a clear error, loaded into the model they were trained as.

A checkpoint (``last.pt``, ``best.pt``) is a dict: ``model`` (the weights), ``optimizer``,
``scaler``, ``epoch``, ``history``, ``config`` (the run's settings, :func:`depthkit.train.run_config`),
``model_name``, ``stage``, ``best``, ``fingerprint`` (the data it was trained on), ``weights_source``
and ``weights`` (where the run's first weights came from, for a reader: :func:`checkpoint_weights`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from depthkit.device import to_device
from depthkit.files import atomic_write_bytes
from depthkit.models import build_model, weights_label
from depthkit.runs import check_resume_config

CHECKPOINT_KEYS = ("model", "model_name", "stage", "epoch")  # what makes a file a depthkit checkpoint


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename).

    ``torch.save`` serialises into memory and Python writes the bytes: a full disk is then an
    ``OSError`` that names the file and the space it needs (torch's own writer reports it as
    ``RuntimeError: ... unexpected pos N vs M``).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def save_json(path: Path, obj) -> None:
    """Write JSON atomically (encoded first: a full disk then says how much the file needs)."""
    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`depthkit.train.fit`, with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated or not a torch file
        raise ValueError(f"checkpoint {path} could not be read ({type(exc).__name__}: {exc})") from exc
    for key in CHECKPOINT_KEYS:
        if not isinstance(state, dict) or key not in state:
            raise ValueError(f"checkpoint {path} is not a depthkit checkpoint: key {key!r} is missing")
    return state


def load_weights(model: nn.Module, state: dict, path: str | Path) -> None:
    """Load a checkpoint's weights into ``model``; a checkpoint of another model is refused in one line."""
    wanted = getattr(model, "name", type(model).__name__)
    if state.get("model_name") not in (None, wanted):
        raise ValueError(f"{path} holds a {state['model_name']!r} model, but a {wanted!r} model was asked for; "
                         f"pass --model {state['model_name']} or another checkpoint")
    weights = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"{path}: its weights do not fit the {wanted!r} model "
                         f"({str(exc).splitlines()[0][:200]})") from None


def load_model(path: str | Path, device: str | torch.device = "cpu",
               model_hook: Callable[[nn.Module], nn.Module] | None = None) -> nn.Module:
    """Build the model a checkpoint was trained as and load its weights (in eval mode).

    A checkpoint trained with a plugin that changed the model (its ``model`` hook, e.g. another head)
    needs that hook again: ``model_hook`` (:func:`depthkit.course.plugin.load_model` passes it).
    """
    state = load_checkpoint(path)
    model = build_model(state["model_name"], pretrained=False)
    plugin = (state.get("config") or {}).get("plugin") or {}
    if "model" in plugin.get("hooks", ()):
        if model_hook is None:
            raise ValueError(f"{path} was trained with the plugin {plugin.get('file')}, which changes the model: load it "
                             f"with depthkit.course.plugin.load_model (python -m depthkit evaluate does)")
        model = model_hook(model)
    load_weights(model, state, path)
    model.checkpoint = str(path)
    model.weights_label = checkpoint_weights(state)  # what the trained weights started from, not this build's
    return to_device(model, device).eval()


def checkpoint_weights(state: dict) -> str:
    """Where a checkpoint's weights started from, for a reader ("pretrained: ImageNet (...)", "random init");
    a checkpoint written before depthkit recorded it says so, from its ``weights_source`` or as unknown."""
    if state.get("weights"):
        return state["weights"]
    source = (state.get("config") or {}).get("weights_source") or state.get("weights_source")
    return weights_label(source, state.get("model_name"))


# --------------------------------------------------------------------------------------------
# A run's checkpoints: what each epoch writes, and resuming from them
# --------------------------------------------------------------------------------------------
def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                     history: dict, config: dict, best: float | None, fingerprint: str) -> dict:
    """Everything ``last.pt``/``best.pt`` hold: weights, optimizer and scaler state, history, config, best score."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "epoch": history["epoch"][-1], "history": history, "config": config, "model_name": config["model"],
            "stage": config["stage"], "best": best, "fingerprint": fingerprint,
            # the run's (kept on resume), not this process's build: a resumed run is built without downloading
            "weights_source": config.get("weights_source", getattr(model, "weights_source", "unknown")),
            "weights": getattr(model, "weights_label", None) or weights_label(config.get("weights_source"), config["model"])}


def save_epoch(out_dir: Path, state: dict, improved: bool) -> None:
    """Write an epoch's ``best.pt`` (when it improved), ``last.pt`` and ``history.json``, each atomically."""
    if improved:
        save_checkpoint(out_dir / "best.pt", state)
    save_checkpoint(out_dir / "last.pt", state)
    save_json(out_dir / "history.json", state["history"])


def set_fused(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Set the optimizer's implementation for ``device`` after ``load_state_dict`` restored the saved one.

    Fused on CUDA (a checkpoint written on the CPU would resume unfused: the fp16 scaler would read
    its inf flag back every step); never fused elsewhere (torch < 2.4 has no fused Adam on the CPU).
    Fused Adam wants its step counts on the device, as it makes them.
    """
    fused = device.type == "cuda"
    for group in optimizer.param_groups:
        if "fused" in group:
            group["fused"], group["foreach"] = (True if fused else None), None  # None: torch's default
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if fused and isinstance(state.get("step"), Tensor):
                state["step"] = state["step"].to(p.device, torch.float32)


def resume(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, last: Path,
           name: str, stage: str, fingerprint: str, config: dict,
           device: torch.device | None = None) -> tuple[dict, float | None]:
    """Load ``last.pt`` into the model, optimizer (fused again on CUDA) and scaler when it is there; return (history, best).

    A ``last.pt`` of another model or stage, of other data (``fingerprint``) or of another
    configuration (:func:`depthkit.runs.check_resume_config`) is refused; ``config`` is updated
    with what the run records of its extensions.
    """
    history: dict[str, list] = {"epoch": [], "train_loss": [], "lr": [], "frozen": [], "steps": [], "train_seconds": [],
                               "first_step_seconds": [], "seconds": []}
    if not last.exists():
        return history, None
    state = load_checkpoint(last)
    if state.get("config", {}).get("model") != name or state.get("stage") != stage:
        raise ValueError(f"{last} belongs to another run ({state.get('config', {}).get('model')}, "
                         f"{state.get('stage')}); use another --out or delete it")
    if state.get("fingerprint") and state["fingerprint"] != fingerprint:
        raise ValueError(f"{last} was trained on other data (fingerprint {state['fingerprint']}, now "
                         f"{fingerprint}): delete {last.parent} to retrain, or use another --out")
    config.update(check_resume_config(state.get("config"), config, last))  # refuses another configuration
    load_weights(model, state, last)
    optimizer.load_state_dict(state["optimizer"])
    set_fused(optimizer, device if device is not None else next(model.parameters()).device)
    if state.get("scaler") and scaler.is_enabled():  # a run resumed in other precision starts a fresh scaler
        scaler.load_state_dict(state["scaler"])
    if not (last.parent / "history.json").exists():  # restore a deleted history from the checkpoint
        save_json(last.parent / "history.json", state["history"])
    return state["history"], state.get("best")
