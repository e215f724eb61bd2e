"""Training: the report's optimizer and schedule, a short ``fit`` over ``train_one_epoch``, ``train_stage``.

The loop follows torchvision's ``references/`` scripts:

* :func:`train_one_epoch` runs the optimizer over one shuffled pass of the training split, with the
  stage's loss from :data:`depthkit.stages.STAGES` (normalized MSE on NYU, ranking loss on DIW);
* :func:`depthkit.evaluate.evaluate` scores the validation split with the stage's metrics, in fp32;
* :func:`fit` calls them epoch after epoch and writes ``history.json``, ``last.pt`` and ``best.pt``
  atomically (:mod:`depthkit.checkpoints`), so a run killed at any moment resumes from its last
  finished epoch and ends with the same weights as a run that was never interrupted;
* :func:`train_stage` builds the model, finds the previous stage's ``best.pt`` and calls ``fit``.

On CUDA, the step never waits for the GPU: the loss is summed on the device and read once per
epoch (and every ``LOG_EVERY`` steps for the progress bar); a non-finite loss is detected with
the same sum. Mixed precision, channels_last memory and GPU-resident splits: :mod:`depthkit.device`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from depthkit import distributed
from depthkit.checkpoints import (checkpoint_state, checkpoint_weights, load_checkpoint, load_model, load_weights, resume,
                                  save_epoch)
from depthkit.config import Profile
from depthkit.data.loader import DepthData, augment, batches, device_generator
from depthkit.device import autocast_dtype, fits_on_device, pick_device, seed_everything, to_device
from depthkit.evaluate import evaluate, predict
from depthkit.fingerprint import code_fingerprint
from depthkit.models import build_model, freeze_encoder, require_weights, unfreeze_encoder, weights_label
from depthkit.runs import check_has_valid_depth, display_path, guard_run_folder, retire_stale_run, run_dir
from depthkit.stages import Stage, get_stage

LOG_EVERY = 25  # steps between progress-bar updates (each one reads the running loss from the device)


@dataclass(frozen=True)
class Hooks:
    """What a run may change without editing depthkit: a capstone's plugin file (:mod:`depthkit.course.plugin`).

    Each hook left None keeps depthkit's own: ``augment(batch, generator) -> batch`` replaces
    :func:`depthkit.data.loader.augment`; ``extra_loss(pred, batch) -> Tensor`` is added to the stage's
    loss; ``learning_rate(base, epoch, total) -> float`` replaces the profile's schedule;
    ``model(net) -> net`` changes the network once it is built (another head). ``record`` is what a
    checkpoint keeps of them (the plugin's file name, SHA-256, hooks and source), in its ``config``.
    ``loss(pred, batch) -> Tensor`` replaces the stage's loss: depthkit's own alternatives only
    (:func:`depthkit.course.modern.silog_hooks`; a plugin cannot set it: a capstone keeps the report's loss).
    """

    augment: Callable | None = None
    extra_loss: Callable | None = None
    learning_rate: Callable | None = None
    model: Callable[[nn.Module], nn.Module] | None = None
    record: dict | None = None
    loss: Callable | None = None


NO_HOOKS = Hooks()  # depthkit's own augmentation, loss, schedule and model


# --------------------------------------------------------------------------------------------
# The optimizer and its schedule
# --------------------------------------------------------------------------------------------
def build_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """The report's optimizer, Adam with weight decay; fused on CUDA (one kernel per step, no host sync).

    Fused Adam takes the fp16 gradient scaler's inf check on the GPU; with the default Adam,
    ``GradScaler.step`` reads it back (``.item()``) every step, which stalls a T4.
    """
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=True if device.type == "cuda" else None)


def learning_rate(base: float, epoch: int, total: int, schedule: str = "constant") -> float:
    """The learning rate of an epoch: constant (the report), or a cosine decay to 5 % of ``base``."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(total, 1))))
    raise ValueError(f"unknown lr_schedule {schedule!r}: expected 'constant' or 'cosine'")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (from the epoch number, so a resumed run gets the same)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


# --------------------------------------------------------------------------------------------
# One epoch, and a whole stage
# --------------------------------------------------------------------------------------------
def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, *, scaler: torch.amp.GradScaler,
                    stage: Stage, data: DepthData, profile: Profile, epoch: int, device: torch.device,
                    max_steps: int | None = None, progress: bool = True, desc: str = "",
                    hooks: Hooks = NO_HOOKS) -> dict[str, float]:
    """One shuffled pass over ``data`` (at most ``max_steps`` steps); returns its mean and per-step loss, steps and timings.

    The loss is summed on the device and read once at the end: no step waits for the GPU, except
    the first (timed: it carries one-off set-up) and every ``LOG_EVERY`` steps for the progress bar.
    ``data_seconds`` is how long the loop waited for its batches (the host's time in the loader).
    ``step_losses`` (each step's loss, kept on the device and read with the mean) draw a one-epoch run's curve.
    """
    model.train()
    seed = profile.training_seed
    amp, generator = autocast_dtype(device), device_generator(device, seed * 1000 + epoch)
    shard = distributed.shard(len(data), seed=seed, epoch=epoch, shuffle=True)  # None in one process
    n = len(data) if shard is None else len(shard)
    loader = batches(data, profile.batch_size, shuffle=shard is None, seed=seed * 1000 + epoch,
                     device=device, drop_last=n > profile.batch_size, num_workers=profile.num_workers, indices=shard)
    total = n // profile.batch_size if n > profile.batch_size else 1  # drop_last: only full batches
    total, loss_sum, steps, first, waited = min(total, max_steps or 1 << 62), None, 0, 0.0, 0.0
    step_losses, augment_batch = [], hooks.augment or augment
    bar = tqdm(loader, total=total, disable=not progress, leave=False, desc=desc)
    t0 = t_ready = time.perf_counter()
    for batch in bar:
        waited += time.perf_counter() - t_ready  # the loop waited this long for the batch
        batch = augment_batch(dict(batch, images=batch["images"].float() / 255), generator)
        pred = predict(model, batch["images"], amp, check_range=False)
        loss = (hooks.loss or stage.loss)(pred, batch)
        if hooks.extra_loss is not None:  # a plugin's extra term
            loss = loss + hooks.extra_loss(pred, batch)
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
        progress: bool = True, stop_after: int | None = None, max_steps: int | None = None,
        hooks: Hooks = NO_HOOKS) -> dict:
    """Train ``model`` on ``data["train"]`` for one stage; validate on ``data["val"]`` after every epoch.

    ``epochs`` is ``(frozen, full)`` (default: the profile's budget for this stage and model). ``init`` loads
    weights from an earlier stage's checkpoint. Resumes from ``out_dir/last.pt``; a finished run
    returns at once; a ``last.pt`` of other data or another model is refused. ``stop_after`` ends
    the call after that many epochs (to simulate a crash); ``max_steps`` caps the optimizer steps
    (and validation batches) of the whole stage, for rehearsals. ``hooks``: a plugin's changes (recorded
    in the checkpoint's config, so a run is never resumed under another plugin). Returns the history.
    """
    st, out_dir, progress = get_stage(stage), Path(out_dir), progress and distributed.is_main()
    name, budget = getattr(model, "name", type(model).__name__), profile.budget(stage)
    frozen, full = epochs if epochs is not None else budget.for_model(name)
    device = torch.device(device) if device is not None else pick_device(profile.device)
    fingerprint = fingerprint or data_fingerprint(data)
    config = run_config(profile, model, stage, frozen, full, init, hooks)
    schedule = hooks.learning_rate or (lambda base, epoch, total: learning_rate(base, epoch, total, profile.lr_schedule))
    for split in ("train", "val"):  # before any training: an empty split or one without depth is named
        check_has_valid_depth(data[split], f"{stage} {split}")
    init_state = load_checkpoint(init) if init is not None else None
    if init_state is not None:
        load_weights(model, init_state, init)
    to_device(model, device)
    optimizer = build_optimizer(model, budget.lr, profile.weight_decay, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
    history, best = resume(model, optimizer, scaler, out_dir / "last.pt", name, stage, fingerprint, config, device)
    # what the checkpoints say of the weights: the first stage's source (kept on resume), or the init's own origin
    model.weights_label = checkpoint_weights(init_state) if init_state is not None else \
        weights_label(config["weights_source"], name)
    steps_left, start = max_steps, len(history["epoch"])
    train = data["train"]  # copied to the device (a chunk at a time) only when it fits and there is training left
    train = train.to(device) if start < frozen + full and fits_on_device(train.nbytes, device) else train
    seed_everything(profile.training_seed)
    for epoch in range(start, frozen + full):
        if (stop_after is not None and epoch - start >= stop_after) or steps_left == 0:
            break
        (freeze_encoder if epoch < frozen else unfreeze_encoder)(model)
        if epoch in (start, frozen):  # the trainable set changed: DDP must see it anew
            step_fn = _step_module(model, device, compile)
        set_lr(optimizer, schedule(budget.lr, epoch, frozen + full))  # from the epoch number: resume-safe
        t0 = time.perf_counter()
        desc = f"{name} {stage} epoch {epoch + 1}/{frozen + full}{' (encoder frozen)' if epoch < frozen else ''}"
        stats = train_one_epoch(step_fn, optimizer, scaler=scaler, stage=st, data=train, profile=profile, epoch=epoch,
                                device=device, max_steps=steps_left, progress=progress, desc=desc, hooks=hooks)
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
            save_epoch(out_dir, checkpoint_state(model, optimizer, scaler, history, config, best, fingerprint), improved)
    unfreeze_encoder(model)
    distributed.barrier()  # every rank may read best.pt from here on
    return history


def data_fingerprint(data: dict[str, DepthData]) -> str:
    """What a checkpoint was trained on: the identity of the training and validation splits (no data is hashed)."""
    return "+".join(data[split].fingerprint() for split in ("train", "val"))


def run_config(profile: Profile, model: nn.Module, stage: str, frozen: int, full: int,
               init: str | Path | None, hooks: Hooks = NO_HOOKS) -> dict:
    """What a checkpoint records of its run: the profile's settings, this stage's learning rate and epochs,
    the code fingerprint and the plugin (None: depthkit's own training)."""
    settings = {k: v for k, v in dataclasses.asdict(profile).items() if k != "budgets"}  # the other stage's budget is not this run's
    return dict(settings, model=getattr(model, "name", type(model).__name__), stage=stage,
                lr=profile.budget(stage).lr, frozen_epochs=frozen, epochs=full, world_size=distributed.world_size(),
                code_fingerprint=code_fingerprint(profile), plugin=hooks.record,
                # where the first weights came from (a fallback to random ones shows):
                weights_source=f"checkpoint {display_path(init)}" if init is not None else getattr(model, "weights_source", "unknown"))


def _append(history: dict[str, list], values: dict) -> None:
    """Append one epoch's values to the history's columns (new columns are created)."""
    for key, value in values.items():
        history.setdefault(key, []).append(value)


def _step_module(model: nn.Module, device: torch.device, compile: bool) -> nn.Module:
    """What a training step calls: the model, DistributedDataParallel around it under torchrun, compiled if asked."""
    net = model
    if distributed.is_distributed():
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net, dynamic=False) if compile else net


def _better(stage: Stage, value: float, best: float | None) -> float:
    return value if stage.improved(value, best) else best


def previous_best(profile: Profile, model_name: str, stage: str) -> Path | None:
    """The earlier stage's ``best.pt`` a stage starts from (DIW: this profile's NYU run), when it is there."""
    previous = get_stage(stage).init_from
    best = run_dir(profile, model_name, previous) / "best.pt" if previous else None
    return best if best is not None and best.exists() else None


def initial_pretrained(profile: Profile, out_dir: str | Path, init: str | Path | None) -> bool | str:
    """The ``pretrained`` a run is built with: the profile's for a fresh run; False when its weights will
    come from ``init`` or from the ``last.pt`` it resumes (whose recorded source is kept), so neither needs a download."""
    return profile.pretrained if init is None and not (Path(out_dir) / "last.pt").exists() else False


def check_initial_weights(profile: Profile, model_names: tuple[str, ...], stage: str = "nyu",
                          init: str | Path | None = None, out_dir: str | Path | None = None) -> None:
    """Before any data or training: stop with one line (:class:`~depthkit.models.WeightsUnavailableError`)
    when a run would need pretrained weights that are neither cached nor downloadable."""
    for name in model_names:
        start = init if init is not None else previous_best(profile, name, stage)
        folder = out_dir if out_dir is not None else run_dir(profile, name, stage)
        require_weights((name,), initial_pretrained(profile, folder, start))


def train_stage(profile: Profile, model_name: str, stage: str, splits: dict[str, DepthData],
                init: str | Path | None = None, out_dir: str | Path | None = None,
                device: str | torch.device | None = None, progress: bool = True,
                compile: bool = False, max_steps: int | None = None,
                hooks: Hooks = NO_HOOKS) -> tuple[nn.Module, dict, Path]:
    """Train (or resume, or reuse) one model on one stage; returns the best model, its history and folder.

    The DIW stage starts from this profile's NYU ``best.pt`` when there is one. The seed is set
    before the model is built, so two runs start from the same random weights. ``hooks.model``
    (a plugin's other head) is applied to the built model and again when ``best.pt`` is loaded.
    """
    out_dir = Path(out_dir) if out_dir is not None else run_dir(profile, model_name, stage)
    init = init if init is not None else previous_best(profile, model_name, stage)
    retire_stale_run(out_dir, profile)  # a run trained by other code is moved aside, not resumed
    seed_everything(profile.training_seed)
    model = build_model(model_name, pretrained=initial_pretrained(profile, out_dir, init))
    model = hooks.model(model) if hooks.model is not None else model
    history = fit(model, splits, stage, profile, out_dir, init=init, device=device, progress=progress,
                  compile=compile, max_steps=max_steps, hooks=hooks)
    best = load_model(out_dir / "best.pt", device=next(model.parameters()).device, model_hook=hooks.model)
    return best, history, out_dir
