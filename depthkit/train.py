"""Training and evaluation: a short ``fit`` over ``train_one_epoch`` and ``evaluate``, checkpoints that survive a crash.

The loop follows torchvision's ``references/`` scripts:

* :func:`train_one_epoch` runs the optimizer over one shuffled pass of the training split, with the
  stage's loss from :data:`depthkit.stages.STAGES` (normalized MSE on NYU, ranking loss on DIW);
* :func:`evaluate` scores a split with the stage's metrics, in fp32;
* :func:`fit` calls them epoch after epoch and writes ``history.json``, ``last.pt`` and ``best.pt``
  atomically, so a run killed at any moment resumes from its last finished epoch and ends with
  the same weights as a run that was never interrupted.

On CUDA, the step never waits for the GPU: the loss is summed on the device and read once per
epoch (and every ``LOG_EVERY`` steps for the progress bar); a non-finite loss is detected with
the same sum. Mixed precision is bf16 on GPUs that have it natively (compute capability >= 8),
else fp16 with a gradient scaler; channels_last memory; a split that fits in a share of the free
GPU memory is copied there once, others stream through pinned memory.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from depthkit import distributed, metrics
from depthkit.config import Profile, runs_dir
from depthkit.data.loader import DepthData, augment, batches, device_generator
from depthkit.files import atomic_write, atomic_write_bytes
from depthkit.fingerprint import code_fingerprint
from depthkit.models import build_model, freeze_encoder, normalize_images, unfreeze_encoder
from depthkit.runs import check_has_valid_depth, check_resume_config, guard_run_folder, retire_stale_run
from depthkit.stages import STAGES, Stage, get_stage

LOG_EVERY = 25  # steps between progress-bar updates (each one reads the running loss from the device)
GPU_RESIDENT_SHARE = 0.25  # a split goes GPU-resident when it needs at most this share of free GPU memory
RESIDENT_ENV = "DEPTHKIT_RESIDENT"  # "1": the training split goes device-resident on any device (CPU rehearsals, tests)

__all__ = ["DepthData", "batches", "augment", "STAGES", "fit", "train_one_epoch", "evaluate", "train_stage",
           "load_model", "load_checkpoint", "save_checkpoint", "save_json", "pick_device", "predict"]


# --------------------------------------------------------------------------------------------
# Devices, seeds, precision
# --------------------------------------------------------------------------------------------
def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run repeats on the same device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision of the fast path: bf16 on compute capability >= 8 (A100, H100, ...), fp16 before (T4); None off CUDA.

    ``torch.cuda.is_bf16_supported()`` is True on a T4 too, through slow emulation: ask the
    hardware's compute capability instead.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def channels_last(device: torch.device) -> bool:
    """Whether models and inputs use channels_last memory on ``device`` (CUDA: Tensor Core convolutions)."""
    return device.type == "cuda"


def predict(model: nn.Module, images: Tensor, amp: torch.dtype | None = None, check_range: bool = True) -> Tensor:
    """Run ``model`` on uint8 or [0, 1] float images ``[B, 3, H, W]``; returns float32 ``[B, 1, H, W]``."""
    x = normalize_images(images, check_range)
    if channels_last(images.device):
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(images.device, amp):
        out = model(x)
    return out.float()


def fits_on_device(data: DepthData, device: torch.device, share: float = GPU_RESIDENT_SHARE) -> bool:
    """True when ``data`` can live on the GPU ``device`` using at most ``share`` of its free memory.

    ``DEPTHKIT_RESIDENT=1`` forces residency on any device (the CPU path of a GPU-resident split).
    """
    if os.environ.get(RESIDENT_ENV) == "1":
        return True
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return data.nbytes <= share * free


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
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
    """Write JSON atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`fit`, with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated or not a torch file
        raise ValueError(f"checkpoint {path} could not be read ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "model_name", "stage", "epoch"):
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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint was trained as and load its weights (in eval mode)."""
    state = load_checkpoint(path)
    model = build_model(state["model_name"], pretrained=False)
    load_weights(model, state, path)
    model.checkpoint = str(path)
    fmt = torch.channels_last if channels_last(torch.device(device)) else torch.preserve_format
    return model.to(device, memory_format=fmt).eval()


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
EVAL_PROTOCOLS = ("resized", "eigen")  # where NYU depth is scored: at the prepared size, or the published protocol


@torch.no_grad()
def evaluate(model: nn.Module, data: DepthData, stage: str | Stage, batch_size: int = 16,
             device: str | torch.device | None = None, max_batches: int | None = None,
             num_workers: int = 0, across_ranks: bool = False, protocol: str = "resized",
             mat_path: str | Path | None = None, frames: np.ndarray | None = None) -> dict[str, float]:
    """The stage's metrics of ``model`` on ``data``, the mean over scored images, computed in fp32.

    ``protocol="eigen"`` (NYU only) scores against the original 640×480 frames of ``mat_path``
    (``frames``: their positions in the file, :func:`depthkit.pipeline.nyu_frames`) under the
    published protocol, as :func:`depthkit.reproduce.nyu_eigen_metrics` does for the report.
    Otherwise (``"resized"``):
    NYU: the report's normalized MSE and :func:`depthkit.metrics.depth_metrics` after per-image
    least-squares scale-and-shift alignment (at the prepared size, no Eigen crop). DIW: ordinal
    accuracy (the report's) and WHDR (Chen et al., delta = 0). fp32 keeps near-ties apart that
    bf16 would round into exact ties (counted wrong). Per-image values are summed on the device
    and read back once, at the end (no batch waits for the GPU); a NaN/inf prediction anywhere
    raises then. ``across_ranks`` (under torchrun): each rank scores its shard and the sums are
    added over ranks.
    """
    stage = get_stage(stage) if isinstance(stage, str) else stage
    if protocol not in EVAL_PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}: expected one of {', '.join(EVAL_PROTOCOLS)}")
    if protocol == "eigen":
        if stage.name != "nyu" or mat_path is None or frames is None:
            raise ValueError(f"the eigen protocol scores NYU depth against the original 640x480 frames: it needs "
                             f"the nyu stage, the .mat file and the frames' positions in it (got stage {stage.name})")
        from depthkit.reproduce import nyu_eigen_metrics  # the report's own evaluation, reused

        return nyu_eigen_metrics(model, data, Path(mat_path), frames, batch_size, max_batches)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    keys, totals = None, None  # totals [3, K]: per metric the sum and the count of scored images, then NaN/inf seen
    shard = distributed.shard(len(data)) if across_ranks else None
    for i, batch in enumerate(batches(data, batch_size, device=device, num_workers=num_workers, indices=shard)):
        if max_batches is not None and i >= max_batches:
            break
        pred = predict(model, batch["images"])
        values = stage.metrics(pred, batch)  # name -> [B] per image, NaN where not scored
        keys = keys or sorted(values)
        per_image = torch.stack([values[k].double() for k in keys])  # [K, B]
        scored = ~per_image.isnan()
        nonfinite = (~torch.isfinite(pred)).sum().double().expand(len(keys))
        step = torch.stack([per_image.nan_to_num(0.0).sum(1), scored.sum(1).double(), nonfinite])
        totals = step if totals is None else totals + step  # stays on the device: no read per batch
    model.train(was_training)
    if totals is None:
        raise ValueError(f"cannot evaluate on an empty dataset ({data.name or stage.name}) or an empty shard "
                         f"of it (rank {distributed.rank()} of {distributed.world_size()})")
    if shard is not None:  # add every rank's sums (same keys on every rank: the stage's metrics)
        totals = distributed.all_reduce_sum(totals)
    sums, counts, nonfinite = totals.tolist()  # the one read of the whole evaluation
    if nonfinite[0]:
        raise ValueError(f"the model's predictions on {data.name or stage.name} hold {int(nonfinite[0])} non-finite "
                         f"values (NaN/inf): the model diverged or was fed invalid input")
    if not all(counts):
        raise ValueError(f"no image of {data.name or stage.name} could be scored: "
                         f"{', '.join(k for k, c in zip(keys, counts) if not c)} had no valid depth pixel or pair")
    return {key: total / count for key, total, count in zip(keys, sums, counts)}


def mean_depth_baseline(train: DepthData, batch_size: int = 64) -> Tensor:
    """The trivial baseline: the training set's mean depth map ``[1, 1, S, S]`` (valid pixels only)."""
    total = weight = 0
    for batch in batches(train, batch_size):
        d = batch["depths"].float()
        total = total + d.clamp_min(0).sum(0, keepdim=True)
        weight = weight + (d > 0).float().sum(0, keepdim=True)
    return total / weight.clamp_min(1)


@torch.no_grad()
def evaluate_baseline(train: DepthData, test: DepthData, batch_size: int = 64) -> dict[str, float]:
    """Normalized MSE of predicting the training-set mean depth map for every test image (a batch at a time)."""
    mean_map, total, count = mean_depth_baseline(train), 0.0, 0
    for batch in batches(test, batch_size):
        d = batch["depths"].float()
        per_image = metrics.normalized_mse(mean_map.expand(len(d), -1, -1, -1), d, d > 0, reduction="none").double()
        total, count = total + per_image.nan_to_num(0.0).sum(), count + (~per_image.isnan()).sum()
    if not count:
        raise ValueError(f"no image of {test.name or 'the test split'} has a valid depth pixel")
    return {"normalized_mse": float(total / count)}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def learning_rate(base: float, epoch: int, total: int, schedule: str = "constant") -> float:
    """The learning rate of an epoch: constant (the report), or a cosine decay to 5 % of ``base``."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(total, 1))))
    raise ValueError(f"unknown lr_schedule {schedule!r}: expected 'constant' or 'cosine'")


def data_fingerprint(data: dict[str, DepthData]) -> str:
    """What a checkpoint was trained on: the identity of the training and validation splits (no data is hashed)."""
    return "+".join(data[split].fingerprint() for split in ("train", "val"))


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """The report's optimizer, Adam with weight decay; fused on CUDA (one kernel per step, no host sync).

    Fused Adam takes the fp16 gradient scaler's inf check on the GPU; with the default Adam,
    ``GradScaler.step`` reads it back (``.item()``) every step, which stalls a T4.
    """
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=True if device.type == "cuda" else None)


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


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    stage: Stage, train: DepthData, profile: Profile, epoch: int, device: torch.device,
                    max_steps: int | None = None, progress: bool = True, desc: str = "") -> dict[str, float]:
    """One shuffled pass over ``train`` (at most ``max_steps`` steps); returns its mean and per-step loss, steps and timings.

    The loss is summed on the device and read once at the end: no step waits for the GPU, except
    the first (timed: it carries one-off set-up) and every ``LOG_EVERY`` steps for the progress bar.
    ``data_seconds`` is how long the loop waited for its batches (the host's time in the loader).
    ``step_losses`` (each step's loss, kept on the device and read with the mean) draw a one-epoch run's curve.
    """
    model.train()
    amp, generator = autocast_dtype(device), device_generator(device, profile.seed * 1000 + epoch)
    shard = distributed.shard(len(train), seed=profile.seed, epoch=epoch, shuffle=True)  # None in one process
    n = len(train) if shard is None else len(shard)
    loader = batches(train, profile.batch_size, shuffle=shard is None, seed=profile.seed * 1000 + epoch,
                     device=device, drop_last=n > profile.batch_size, num_workers=profile.num_workers, indices=shard)
    total = n // profile.batch_size if n > profile.batch_size else 1  # drop_last: only full batches
    total, loss_sum, steps, first, waited = min(total, max_steps or 1 << 62), None, 0, 0.0, 0.0
    step_losses = []
    bar = tqdm(loader, total=total, disable=not progress, leave=False, desc=desc)
    t0 = t_ready = time.perf_counter()
    for batch in bar:
        waited += time.perf_counter() - t_ready  # the loop waited this long for the batch
        batch = augment(dict(batch, images=batch["images"].float() / 255), generator)
        loss = stage.loss(predict(model, batch["images"], amp, check_range=False), batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        step_losses.append(loss.detach())
        steps += 1
        if steps == 1:  # time the first step, which carries one-off set-up; reading the loss waits for it
            loss_sum.item()
            first = time.perf_counter() - t0
        if progress and steps % LOG_EVERY == 0:
            bar.set_postfix(loss=f"{float(loss_sum) / steps:.4f}")
        if steps == max_steps:
            break
        t_ready = time.perf_counter()
    bar.close()
    losses = torch.stack(step_losses).float().tolist() if steps else []  # the epoch's one read of its losses
    mean = sum(losses) / steps if steps else float("nan")
    if not math.isfinite(mean):
        raise FloatingPointError(f"{desc}: the training loss became {mean} (diverged or no batch): "
                                 f"lower the learning rate, or check the data")
    return {"train_loss": mean, "steps": steps, "first_step_seconds": first, "data_seconds": waited,
            "train_seconds": time.perf_counter() - t0, "step_losses": losses}


@guard_run_folder  # a writable out_dir, and one writer at a time
def fit(model: nn.Module, data: dict[str, DepthData], stage: str, profile: Profile, out_dir: str | Path,
        init: str | Path | None = None, epochs: tuple[int, int] | None = None,
        device: str | torch.device | None = None, compile: bool = False, fingerprint: str | None = None,
        progress: bool = True, stop_after: int | None = None, max_steps: int | None = None) -> dict:
    """Train ``model`` on ``data["train"]`` for one stage; validate on ``data["val"]`` after every epoch.

    ``epochs`` is ``(frozen, full)`` (default: from ``profile`` via the stage table). ``init`` loads
    weights from an earlier stage's checkpoint. Resumes from ``out_dir/last.pt``; a finished run
    returns at once; a ``last.pt`` of other data or another model is refused. ``stop_after`` ends
    the call after that many epochs (to simulate a crash); ``max_steps`` caps the optimizer steps
    (and validation batches) of the whole stage, for rehearsals. Returns the history.
    """
    st, out_dir, progress = get_stage(stage), Path(out_dir), progress and distributed.is_main()
    name = getattr(model, "name", type(model).__name__)
    frozen, full = epochs if epochs is not None else st.epochs(profile, name)
    device = torch.device(device) if device is not None else pick_device(profile.device)
    fingerprint = fingerprint or data_fingerprint(data)
    config = run_config(profile, model, stage, frozen, full, init)
    for split in ("train", "val"):  # before any training: an empty split or one without depth is named
        check_has_valid_depth(data[split], f"{stage} {split}")
    if init is not None:
        load_weights(model, load_checkpoint(init), init)
    model.to(device, memory_format=torch.channels_last if channels_last(device) else torch.preserve_format)
    optimizer = build_optimizer(model, st.lr(profile), profile.weight_decay, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
    history, best = _resume(model, optimizer, scaler, out_dir / "last.pt", name, stage, fingerprint, config, device)
    steps_left, start = max_steps, len(history["epoch"])
    train = data["train"]  # copied to the device (a chunk at a time) only when it fits and there is training left
    train = train.to(device) if start < frozen + full and fits_on_device(train, device) else train
    seed_everything(profile.seed)
    for epoch in range(start, frozen + full):
        if (stop_after is not None and epoch - start >= stop_after) or steps_left == 0:
            break
        (freeze_encoder if epoch < frozen else unfreeze_encoder)(model)
        if epoch in (start, frozen):  # the trainable set changed: DDP must see it anew
            step_fn = _step_module(model, device, compile)
        set_lr(optimizer, learning_rate(st.lr(profile), epoch, frozen + full, profile.lr_schedule))  # resume-safe
        t0 = time.perf_counter()
        desc = f"{name} {stage} epoch {epoch + 1}/{frozen + full}{' (encoder frozen)' if epoch < frozen else ''}"
        stats = train_one_epoch(step_fn, optimizer, scaler, st, train, profile, epoch, device, steps_left, progress, desc)
        history.setdefault("step_losses", []).extend(stats.pop("step_losses"))  # flat: epoch k's are its "steps"
        steps_left = None if steps_left is None else steps_left - stats["steps"]
        distributed.broadcast_buffers(model)  # the model rank 0 saves is the one every rank scores
        val = evaluate(model, data["val"], st, profile.batch_size * 2, device, max_batches=max_steps,
                       num_workers=profile.num_workers, across_ranks=True)
        _append(history, {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "frozen": epoch < frozen, **stats,
                          "seconds": time.perf_counter() - t0, "weights_source": config["weights_source"],
                          **{"val_" + k: v for k, v in val.items()}})
        improved, best = st.improved(val[st.val_key], best), _better(st, val[st.val_key], best)
        if distributed.is_main():  # one writer; the state comes from the unwrapped model (no "module.")
            _save_epoch(out_dir, checkpoint_state(model, optimizer, scaler, history, config, best, fingerprint), improved)
    unfreeze_encoder(model)
    distributed.barrier()  # every rank may read best.pt from here on
    return history


def run_config(profile: Profile, model: nn.Module, stage: str, frozen: int, full: int,
               init: str | Path | None) -> dict:
    """What a checkpoint records of its run: the profile's settings, the model, stage, epochs and code fingerprint."""
    return dict(dataclasses.asdict(profile), model=getattr(model, "name", type(model).__name__), stage=stage,
                frozen_epochs=frozen, epochs=full, world_size=distributed.world_size(),
                code_fingerprint=code_fingerprint(profile),
                # where the first weights came from (a fallback to random ones shows):
                weights_source=f"checkpoint {init}" if init is not None else getattr(model, "weights_source", "unknown"))


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                     history: dict, config: dict, best: float | None, fingerprint: str) -> dict:
    """Everything ``last.pt``/``best.pt`` hold: weights, optimizer and scaler state, history, config, best score."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "epoch": history["epoch"][-1], "history": history, "config": config, "model_name": config["model"],
            "stage": config["stage"], "best": best, "fingerprint": fingerprint,
            "weights_source": getattr(model, "weights_source", "unknown")}


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (from the epoch number, so a resumed run gets the same)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def _append(history: dict[str, list], values: dict) -> None:
    """Append one epoch's values to the history's columns (new columns are created)."""
    for key, value in values.items():
        history.setdefault(key, []).append(value)


def _save_epoch(out_dir: Path, state: dict, improved: bool) -> None:
    """Write an epoch's ``best.pt`` (when it improved), ``last.pt`` and ``history.json``, each atomically."""
    if improved:
        save_checkpoint(out_dir / "best.pt", state)
    save_checkpoint(out_dir / "last.pt", state)
    save_json(out_dir / "history.json", state["history"])


def _step_module(model: nn.Module, device: torch.device, compile: bool) -> nn.Module:
    """What a training step calls: the model, DistributedDataParallel around it under torchrun, compiled if asked."""
    net = model
    if distributed.is_distributed():
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net, dynamic=False) if compile else net


def _better(stage: Stage, value: float, best: float | None) -> float:
    return value if stage.improved(value, best) else best


def _resume(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, last: Path,
            name: str, stage: str, fingerprint: str, config: dict,
            device: torch.device | None = None) -> tuple[dict, float | None]:
    """Load ``last.pt`` into the model, optimizer (fused again on CUDA) and scaler when it is there; return (history, best)."""
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


def run_dir(profile: Profile, model_name: str, stage: str) -> Path:
    """Where a profile's run of one model and stage keeps its checkpoints: ``runs/<profile>/<model>_<stage>``."""
    return runs_dir() / profile.name / f"{model_name}_{stage}"


def train_stage(profile: Profile, model_name: str, stage: str, splits: dict[str, DepthData],
                init: str | Path | None = None, out_dir: str | Path | None = None,
                device: str | torch.device | None = None, progress: bool = True,
                compile: bool = False, max_steps: int | None = None) -> tuple[nn.Module, dict, Path]:
    """Train (or resume, or reuse) one model on one stage; returns the best model, its history and folder.

    The DIW stage starts from this profile's NYU ``best.pt`` when there is one. The seed is set
    before the model is built, so two runs start from the same random weights.
    """
    out_dir = Path(out_dir) if out_dir is not None else run_dir(profile, model_name, stage)
    previous = get_stage(stage).init_from
    if previous and init is None and (run_dir(profile, model_name, previous) / "best.pt").exists():
        init = run_dir(profile, model_name, previous) / "best.pt"
    retire_stale_run(out_dir, profile)  # a run trained by other code is moved aside, not resumed
    seed_everything(profile.seed)
    model = build_model(model_name, pretrained=profile.pretrained if init is None else False)
    history = fit(model, splits, stage, profile, out_dir, init=init, device=device, progress=progress,
                  compile=compile, max_steps=max_steps)
    best = load_model(out_dir / "best.pt", device=next(model.parameters()).device)
    return best, history, out_dir
