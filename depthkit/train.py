"""Training and evaluation: one ``fit`` for both stages, checkpoints that survive a crash.

The loop is deliberately plain (torchvision ``references/`` style):

* stage ``"nyu"`` trains with :func:`depthkit.losses.normalized_mse` (the report's loss),
  stage ``"diw"`` with :func:`depthkit.losses.ranking_loss` (Chen et al.);
* Adam with the report's defaults (lr 1e-3, weight decay 0.02), an optional frozen-encoder
  warm-up, then all weights;
* after every epoch: validation metrics, ``history.json``, ``last.pt`` and ``best.pt`` written
  atomically, so a run killed at any moment resumes from its last finished epoch and ends with the
  same weights as a run that was never interrupted.

On CUDA the fast path switches itself on: bf16 (or fp16 with a gradient scaler) autocast,
channels_last, NYU's training set resident on the GPU as uint8 with batched GPU-side augmentation,
and DIW streamed from pinned memory with non-blocking copies.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from depthkit import losses, metrics
from depthkit.config import Profile
from depthkit.files import atomic_write
from depthkit.models import build_model, freeze_encoder, normalize_images, unfreeze_encoder

STAGES = ("nyu", "diw")


# --------------------------------------------------------------------------------------------
# Data held as tensors
# --------------------------------------------------------------------------------------------
@dataclass
class DepthData:
    """One split of a prepared dataset as tensors (uint8 images, NCHW).

    NYU-style data has ``depths`` ``[N, 1, S, S]`` (metres, 0 = invalid); DIW-style data has
    ``pairs`` ``[N, P, 4]`` as 0-based ``(ya, xa, yb, xb)`` and ``relation`` ``[N, P]`` (+1: A farther).
    """

    images: Tensor
    depths: Tensor | None = None
    pairs: Tensor | None = None
    relation: Tensor | None = None
    name: str = ""

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor | np.ndarray | list[int]) -> "DepthData":
        """Return the rows ``index`` of every tensor."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        pick = lambda t: None if t is None else t[index.to(t.device)]  # noqa: E731
        return DepthData(pick(self.images), pick(self.depths), pick(self.pairs), pick(self.relation), self.name)

    def to(self, device: torch.device | str) -> "DepthData":
        """Move every tensor to ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return DepthData(move(self.images), move(self.depths), move(self.pairs), move(self.relation), self.name)

    def pin_memory(self) -> "DepthData":
        """Page-lock every tensor so copies to the GPU can run asynchronously."""
        pin = lambda t: None if t is None else t.pin_memory()  # noqa: E731
        return DepthData(pin(self.images), pin(self.depths), pin(self.pairs), pin(self.relation), self.name)


def batches(data: DepthData, batch_size: int, shuffle: bool = False, seed: int = 0,
            device: torch.device | str = "cpu") -> Iterator[dict[str, Tensor]]:
    """Yield batches as dicts of tensors on ``device`` (shuffled reproducibly from ``seed``).

    Data already on ``device`` is sliced in place (the GPU-resident path); data on the CPU is
    gathered into page-locked memory and copied with ``non_blocking=True`` when ``device`` is CUDA.
    """
    device = torch.device(device)
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    copy_async = device.type == "cuda" and data.images.device.type == "cpu"
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        batch = {}
        for key in ("images", "depths", "pairs", "relation"):
            t = getattr(data, key)
            if t is None:
                continue
            part = t[idx.to(t.device)]
            if copy_async:
                part = part.pin_memory()
            batch[key] = part.to(device, non_blocking=copy_async)
        yield batch


def augment(batch: dict[str, Tensor], generator: torch.Generator, jitter: float = 0.2) -> dict[str, Tensor]:
    """Random horizontal flip (image, depth and pair columns together) and colour jitter (image only).

    Works on a whole batch at once on whatever device it lives on. ``images`` must be float in
    [0, 1]; the random draws come from a CPU ``generator`` so runs repeat exactly.
    """
    images = batch["images"]
    b, _, _, w = images.shape
    flip = (torch.rand(b, generator=generator) < 0.5).to(images.device)
    out = dict(batch)
    out["images"] = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if "depths" in batch:
        d = batch["depths"]
        out["depths"] = torch.where(flip[:, None, None, None], d.flip(-1), d)
    if "pairs" in batch:
        p = batch["pairs"].clone()
        f = flip[:, None]
        p[..., 1] = torch.where(f, w - 1 - p[..., 1], p[..., 1])
        p[..., 3] = torch.where(f, w - 1 - p[..., 3], p[..., 3])
        out["pairs"] = p
    if jitter > 0:
        # brightness and contrast per image, saturation by blending towards grey
        u = (torch.rand(3, b, generator=generator) * 2 - 1) * jitter + 1
        u = u.to(images.device, images.dtype)[:, :, None, None, None]
        x = out["images"] * u[0]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u[1] + mean
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * u[2] + grey
        out["images"] = x.clamp(0, 1)
    return out


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
    """The mixed-precision dtype of the fast path: bf16 where supported, else fp16; None off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def predict(model: nn.Module, images: Tensor, amp: torch.dtype | None = None) -> Tensor:
    """Run ``model`` on uint8 or [0, 1] float images ``[B, 3, H, W]``; returns float32 ``[B, 1, H, W]``."""
    x = normalize_images(images)
    if images.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(images.device, amp):
        out = model(x)
    return out.float()


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint was trained as and load its weights (in eval mode)."""
    state = load_checkpoint(path)
    model = build_model(state["model_name"], pretrained=False)
    model.load_state_dict(state["model"])
    model.checkpoint = str(path)
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, data: DepthData, stage: str, batch_size: int = 16,
             device: str | torch.device | None = None) -> dict[str, float]:
    """Metrics of ``model`` on ``data``: NYU-style (normalized MSE + standard) or DIW-style (ordinal).

    NYU: ``normalized_mse`` (the report's figure) and :func:`depthkit.metrics.depth_metrics` after
    per-image least-squares scale-and-shift alignment (the losses are shift-invariant, so the raw
    output is depth only up to an affine map). DIW: ``ordinal_accuracy`` (the report's figure) and ``whdr``.
    Every number is the mean over images (or pairs).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in batches(data, batch_size, device=device):
        pred = predict(model, batch["images"], autocast_dtype(device))
        n = pred.shape[0]
        if stage == "nyu":
            mask = batch["depths"] > 0
            values = {"normalized_mse": metrics.normalized_mse(pred, batch["depths"], mask)}
            values.update(metrics.depth_metrics(pred, batch["depths"], mask, align="lstsq"))
        elif stage == "diw":
            values = {"ordinal_accuracy": metrics.ordinal_accuracy(pred, batch["pairs"], batch["relation"]),
                      # delta=0 is Chen et al.'s DIW convention (no "equal" pairs): comparable with their 22.14 %
                      "whdr": metrics.whdr(pred, batch["pairs"], batch["relation"], delta=0.0)}
        else:
            raise ValueError(f"unknown stage {stage!r}: expected one of {STAGES}")
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + float(value) * n
        count += n
    model.train(was_training)
    if count == 0:
        raise ValueError(f"cannot evaluate on an empty dataset ({data.name or stage})")
    return {key: value / count for key, value in sums.items()}


def mean_depth_baseline(train: DepthData) -> Tensor:
    """The trivial baseline: the training set's mean depth map ``[1, 1, S, S]`` (valid pixels only)."""
    d = train.depths.float()
    valid = (d > 0).float()
    return (d * valid).sum(0, keepdim=True) / valid.sum(0, keepdim=True).clamp_min(1)


@torch.no_grad()
def evaluate_baseline(train: DepthData, test: DepthData) -> dict[str, float]:
    """Normalized MSE of predicting the training-set mean depth map for every test image."""
    mean_map = mean_depth_baseline(train)
    pred = mean_map.expand(len(test), -1, -1, -1)
    return {"normalized_mse": metrics.normalized_mse(pred, test.depths.float(), test.depths > 0)}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def validation_key(stage: str) -> tuple[str, bool]:
    """The metric that picks the best checkpoint, and whether higher is better."""
    return ("normalized_mse", False) if stage == "nyu" else ("ordinal_accuracy", True)


def learning_rate(base: float, epoch: int, total: int, schedule: str = "constant") -> float:
    """The learning rate of an epoch: constant (the report), or a cosine decay to 5 % of ``base``."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(total, 1))))
    raise ValueError(f"unknown lr_schedule {schedule!r}: expected 'constant' or 'cosine'")


def stage_loss(stage: str, pred: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """The report's loss for a stage: normalized MSE on NYU, the ranking loss on DIW."""
    if stage == "nyu":
        return losses.normalized_mse(pred, batch["depths"], batch["depths"] > 0)
    return losses.ranking_loss(pred, batch["pairs"], batch["relation"])


def data_fingerprint(data: dict[str, DepthData]) -> str:
    """A short hash of the training and validation tensors: a checkpoint remembers what it was trained on."""
    import hashlib

    h = hashlib.sha1()
    for split in ("train", "val"):
        for t in (data[split].images, data[split].depths, data[split].pairs, data[split].relation):
            if t is not None:
                h.update(str(tuple(t.shape)).encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _config_record(profile: Profile, model_name: str, stage: str, frozen: int, full: int) -> dict:
    record = dataclasses.asdict(profile)
    record.update(model=model_name, stage=stage, frozen_epochs=frozen, epochs=full)
    return record


def fit(model: nn.Module, data: dict[str, DepthData], stage: str, profile: Profile, out_dir: str | Path,
        init: str | Path | None = None, epochs: tuple[int, int] | None = None,
        device: str | torch.device | None = None, compile: bool = False, fingerprint: str | None = None,
        progress: bool = True, stop_after: int | None = None) -> dict:
    """Train ``model`` on ``data["train"]`` for one stage; validate on ``data["val"]`` every epoch.

    ``epochs`` is ``(frozen, full)``: epochs with the encoder frozen, then with all weights
    (default: from ``profile``). ``init`` loads weights from an earlier stage's checkpoint.
    Writes ``last.pt``, ``best.pt`` and ``history.json`` to ``out_dir`` after every epoch and
    resumes from ``last.pt`` when it is there; a finished run returns at once. ``last.pt`` trained on
    other data (another ``fingerprint``, by default :func:`data_fingerprint`) is refused, not overwritten.
    ``stop_after`` ends the call after that many epochs of this call (to simulate a crash).
    Returns the history: a dict of per-epoch lists.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: expected one of {STAGES}")
    out_dir = Path(out_dir)
    model_name = getattr(model, "name", type(model).__name__)
    frozen, full = epochs if epochs is not None else profile.epochs(model_name, stage)
    total = frozen + full
    device = torch.device(device) if device is not None else pick_device(profile.device)
    amp = autocast_dtype(device)
    config = _config_record(profile, model_name, stage, frozen, full)
    key, higher_is_better = validation_key(stage)
    fingerprint = fingerprint or data_fingerprint(data)

    seed_everything(profile.seed)
    if init is not None:
        model.load_state_dict(load_checkpoint(init)["model"])
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    base_lr = profile.lr if stage == "nyu" else profile.diw_lr
    optimizer = torch.optim.Adam(model.parameters(), lr=base_lr, weight_decay=profile.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "lr": [], "frozen": [], "seconds": []}
    start_epoch, best = 0, None

    last_path = out_dir / "last.pt"
    if last_path.exists():
        state = load_checkpoint(last_path)
        if state.get("config", {}).get("model") != model_name or state.get("stage") != stage:
            raise ValueError(f"{last_path} belongs to another run ({state.get('config', {}).get('model')}, "
                             f"{state.get('stage')}); use another --out or delete it")
        if state.get("fingerprint") and state["fingerprint"] != fingerprint:
            raise ValueError(f"{last_path} was trained on other data (fingerprint {state['fingerprint']}, "
                             f"now {fingerprint}): delete {out_dir} to retrain, or use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, start_epoch, best = state["history"], state["epoch"], state.get("best")

    train = data["train"]
    if device.type == "cuda" and stage == "nyu":
        train = train.to(device)  # the GPU-resident path: uint8 on the GPU, augmented there
    elif device.type == "cuda":
        train = train.pin_memory()  # DIW streams from pinned memory
    step_fn = torch.compile(model) if compile else model

    run_epochs = 0
    for epoch in range(start_epoch, total):
        if stop_after is not None and run_epochs >= stop_after:
            break
        is_frozen = epoch < frozen
        (freeze_encoder if is_frozen else unfreeze_encoder)(model)
        for group in optimizer.param_groups:  # set per epoch from the epoch number: resume-safe
            group["lr"] = learning_rate(base_lr, epoch, total, profile.lr_schedule)
        model.train()
        generator = torch.Generator().manual_seed(profile.seed * 1000 + epoch)
        t0, loss_sum, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(batches(train, profile.batch_size, shuffle=True, seed=profile.seed * 1000 + epoch, device=device),
                   total=math.ceil(len(train) / profile.batch_size), disable=not progress, leave=False,
                   desc=f"{model_name} {stage} epoch {epoch + 1}/{total}{' (encoder frozen)' if is_frozen else ''}")
        for batch in bar:
            batch["images"] = batch["images"].float() / 255
            batch = augment(batch, generator)
            pred = predict(step_fn, batch["images"], amp)
            loss = stage_loss(stage, pred, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{model_name} {stage}: loss became {loss.item()} at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(pred)
            seen += len(pred)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        val = evaluate(model, data["val"], stage, batch_size=profile.batch_size * 2, device=device)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(loss_sum / max(seen, 1))
        history["lr"].append(optimizer.param_groups[0]["lr"])
        history["frozen"].append(is_frozen)
        history["seconds"].append(time.perf_counter() - t0)
        for name, value in val.items():
            history.setdefault("val_" + name, []).append(value)
        improved = best is None or (val[key] > best if higher_is_better else val[key] < best)
        if improved:
            best = val[key]
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                 "epoch": epoch + 1, "history": history, "config": config, "model_name": model_name,
                 "stage": stage, "best": best, "fingerprint": fingerprint, "weights_source":
                 getattr(model, "weights_source", "unknown")}
        if improved:
            save_checkpoint(out_dir / "best.pt", state)
        save_checkpoint(last_path, state)
        save_json(out_dir / "history.json", history)
        run_epochs += 1
    unfreeze_encoder(model)
    return history
