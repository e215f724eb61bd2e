"""Figures: samples, point pairs, predictions, training curves and the comparison table.

Every function returns a matplotlib ``Figure`` and takes a ``title``: put the data and profile
that produced it there (e.g. "synthetic scenes · demo profile · cpu"), so no figure travels
without saying where it came from. Depth is drawn with one colour map everywhere, near = bright,
and every depth map has a colour bar that names its unit:

* ground truth is metric: its bar reads ``depth (m)`` (:data:`METRIC_LABEL`);
* a prediction is only defined up to scale and shift (the report's loss min-max normalizes it), so
  on its own it is drawn min-max scaled with a bar reading ``relative depth``
  (:data:`RELATIVE_LABEL`); beside a metric ground truth it is aligned to that image's ground
  truth (least-squares scale and shift over the valid pixels, as the standard metrics do) and
  shares its colour range and its bar, and the figure title says so.

Figures are meant to be read at 100 dpi or more: :func:`save_figure` writes PNGs at
:data:`SAVE_DPI`, and the notebooks display at ``figure.dpi = 100``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from depthkit.files import atomic_write_bytes

DEPTH_CMAP = "magma_r"  # larger = farther is drawn darker: near things glow
POINT_COLORS = {"A": "#00e5ff", "B": "#ff3d00"}
METRIC_LABEL = "depth (m)"
RELATIVE_LABEL = "relative depth (min–max scaled)"
SAVE_DPI = 120  # figures/ is written at this resolution (at least 100: legible on a screen and in a PDF)
PANEL_INCHES = 2.6  # one image or depth panel; with 9 pt text this stays legible at 100 dpi
ALIGN_NOTE = "predictions aligned to each image's ground truth (least-squares scale + shift), same colour range"
# what each stage's validation metric is called on its axis (history key -> label, higher is better?)
VAL_METRICS = {
    "val_normalized_mse": ("NYU", "validation normalized MSE ↓", False),
    "val_ordinal_accuracy": ("DIW", "validation ordinal accuracy (%) ↑", True),
}
STEP_CURVE_EPOCHS = 2  # runs this short also get their per-step training loss drawn (longer ones: epoch means)
TRAIN_LOSS_LABELS = {"NYU": "training loss: normalized MSE", "DIW": "training loss: ranking loss"}


def to_image(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``[3, H, W]`` / ``[H, W, 3]`` tensor or array (uint8 or [0, 1] float) as an ``H×W×3`` float array."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    return a.astype(np.float32) / 255 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0, 1)


def to_depth(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``[1, H, W]`` or ``[H, W]`` depth tensor or array as an ``H×W`` float array."""
    a = t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float32)
    return np.squeeze(a).astype(np.float32)


def min_max(depth) -> np.ndarray:
    """``depth`` scaled to [0, 1] (a constant map becomes zeros)."""
    d = to_depth(depth)
    lo, hi = np.nanmin(d), np.nanmax(d)
    return (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)


def align_to(pred, depth) -> np.ndarray:
    """``s * pred + t`` closest to ``depth`` in least squares over its valid pixels (> 0): the
    prediction in the ground truth's metres, as the standard metrics align it."""
    from depthkit.tensors import align_scale_shift

    p, d = torch.from_numpy(to_depth(pred)), torch.from_numpy(to_depth(depth))
    valid = torch.isfinite(d) & (d > 0)
    return to_depth(align_scale_shift(p[None, None], d.nan_to_num(0.0)[None, None], valid[None, None]))


def depth_range(depth) -> tuple[float, float]:
    """(min, max) of the valid (> 0, finite) pixels of ``depth``; (0, 1) when there are none."""
    d = to_depth(depth)
    valid = d[np.isfinite(d) & (d > 0)]
    return (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)


def add_colorbar(image, ax, label: str, location: str = "right", shrink: float = 1.0):
    """A colour bar for ``image`` beside ``ax`` (one axes or a list of them), labelled with its unit."""
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, location=location, shrink=shrink) \
        if not isinstance(ax, (list, tuple, np.ndarray)) \
        else ax[0].figure.colorbar(image, ax=list(ax), fraction=0.046, pad=0.03, location=location, shrink=shrink)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return bar


def show_depth(ax, depth, title: str = "", normalize: bool = False, mask_invalid: bool = True, *,
               vmin: float | None = None, vmax: float | None = None, colorbar: bool = True,
               label: str | None = None):
    """Draw one depth map on ``ax`` and return its image (invalid zeros in grey).

    ``normalize`` min-max scales it first (for predictions, which have no unit). With
    ``colorbar`` a bar beside it names the unit: ``label``, by default :data:`RELATIVE_LABEL`
    when normalized, else :data:`METRIC_LABEL`. ``vmin``/``vmax`` fix the colour range (to share
    it between maps).
    """
    d = min_max(depth) if normalize else to_depth(depth)
    shown = np.ma.masked_where(d <= 0, d) if (mask_invalid and not normalize) else d
    cmap = matplotlib.colormaps[DEPTH_CMAP].with_extremes(bad="0.6")
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    if colorbar:
        add_colorbar(image, ax, label or (RELATIVE_LABEL if normalize else METRIC_LABEL))
    return image


def draw_pair(ax, pair: Sequence[int], relation: int | None = None) -> None:
    """Mark points A and B of ``(ya, xa, yb, xb)`` on ``ax``; the relation (+1: A farther) goes below."""
    ya, xa, yb, xb = (int(v) for v in pair)
    ax.plot([xa, xb], [ya, yb], color="white", lw=1, alpha=0.7)
    for label, (y, x) in (("A", (ya, xa)), ("B", (yb, xb))):
        ax.scatter([x], [y], s=40, c=POINT_COLORS[label], edgecolors="black", linewidths=0.8, zorder=3)
        ax.annotate(label, (x, y), xytext=(4, -4), textcoords="offset points", color=POINT_COLORS[label],
                    fontsize=9, fontweight="bold")
    if relation is not None:
        text = {1: "A farther than B", -1: "A closer than B", 0: "A and B equal"}.get(int(relation), "?")
        ax.set_xlabel(text, fontsize=9)


def _grid(rows: int, cols: int, title: str, scale: float = PANEL_INCHES, extra_width: float = 0.0) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale + extra_width, rows * scale + 0.5), squeeze=False,
                             layout="constrained")
    fig.suptitle(title, fontsize=10)
    return fig, axes


def _first(x) -> np.ndarray:
    return np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x).reshape(-1)


def show_samples(images, depths, title: str, n: int = 4) -> Figure:
    """NYU-style samples: the image above its depth map, each map with its own colour bar in metres."""
    n = min(n, len(images))
    fig, axes = _grid(2, n, title, extra_width=0.6 * n)
    for i in range(n):
        axes[0, i].imshow(to_image(images[i]))
        axes[0, i].axis("off")
        lo, hi = depth_range(depths[i])
        show_depth(axes[1, i], depths[i], f"{lo:.1f}–{hi:.1f} m" if hi > lo else "no valid depth", vmin=lo, vmax=hi)
    return fig


def show_pairs(images, pairs, relation, title: str, n: int = 4) -> Figure:
    """DIW-style samples: each image with its annotated pair and relation."""
    n = min(n, len(images))
    fig, axes = _grid(1, n, title)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(to_image(images[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        draw_pair(ax, _first(pairs[i])[:4], int(_first(relation[i])[0]))
    return fig


def show_predictions(images, predictions: dict, title: str, depths=None, pairs=None, relation=None,
                     n: int = 4, align: str = "auto") -> Figure:
    """One row per image: the image, the ground truth (if any), then each model's prediction.

    ``align="auto"`` (the default) aligns every prediction to the row's ground truth when there is
    one (least-squares scale and shift over its valid pixels, :func:`align_to`), so ground truth
    and predictions share one colour range and one bar in metres; the title says so. Without
    ground truth, or with ``align="none"``, predictions are min-max scaled and share a bar
    labelled :data:`RELATIVE_LABEL` (the ground truth keeps its own bar in metres).
    """
    if align not in ("auto", "none"):
        raise ValueError(f"align must be 'auto' or 'none', got {align!r}")
    n = min(n, len(images))
    aligned = depths is not None and align == "auto" and len(predictions) > 0
    if aligned:
        title = f"{title}\n{ALIGN_NOTE}"
    cols = 1 + (depths is not None) + len(predictions)
    fig, axes = _grid(n, cols, title, extra_width=1.0 + 0.9 * (depths is not None and not aligned))
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(to_image(images[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        pair = None if pairs is None else _first(pairs[i])[:4]
        if pair is not None:
            draw_pair(ax, pair, None if relation is None else int(_first(relation[i])[0]))
        c, vmin, vmax = 1, None, None
        if depths is not None:
            vmin, vmax = depth_range(depths[i])
            gt = show_depth(axes[i, c], depths[i], "ground truth" if i == 0 else "", vmin=vmin, vmax=vmax,
                            colorbar=False)
            if not aligned:
                add_colorbar(gt, axes[i, c], METRIC_LABEL)
            c += 1
        first = c
        pred_image = None
        for name, pred in predictions.items():
            head = (f"{name} (aligned)" if aligned else name) if i == 0 else ""
            if aligned:
                pred_image = show_depth(axes[i, c], align_to(pred[i], depths[i]), head, vmin=vmin, vmax=vmax,
                                        colorbar=False, mask_invalid=False)
            else:
                pred_image = show_depth(axes[i, c], pred[i], head, normalize=True, vmin=0.0, vmax=1.0, colorbar=False)
            if pair is not None:
                draw_pair(axes[i, c], pair)
            c += 1
        if aligned:
            add_colorbar(pred_image, axes[i, 1:c], METRIC_LABEL)
        elif pred_image is not None:
            add_colorbar(pred_image, axes[i, first:c], RELATIVE_LABEL)
    return fig


def _stage_of(name: str, history: dict) -> str:
    """"NYU" or "DIW": from the history's validation metric, else from the run's name."""
    for key, (stage, _, _) in VAL_METRICS.items():
        if key in history:
            return stage
    return "DIW" if "diw" in name.lower() else "NYU"


def plot_histories(histories: dict[str, dict], title: str) -> Figure:
    """Training loss and validation metric per epoch, one line per run; NYU and DIW runs on separate axes.

    One row per stage present (NYU: normalized MSE; DIW: ranking loss and ordinal accuracy), each
    axis named after its metric. A run of at most :data:`STEP_CURVE_EPOCHS` epochs whose history
    holds each step's loss (``step_losses``, one per step of every epoch) gets its training loss
    drawn per step too (a thin line, step k of epoch e at e - 1 + k / steps), so a one-epoch run
    shows a curve, not a lone point; a lone
    validation point is labelled with its value. A run trained with the encoder frozen gets a
    shaded band over those epochs, labelled in the legend; runs without frozen epochs get none.
    """
    stages = [s for s in ("NYU", "DIW") if any(_stage_of(n, h) == s for n, h in histories.items())] or ["NYU"]
    fig, axes = plt.subplots(len(stages), 2, figsize=(10, 3.4 * len(stages) + 0.4), squeeze=False, layout="constrained")
    fig.suptitle(title, fontsize=10)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, h) in enumerate(histories.items()):
        stage, color = _stage_of(name, h), colors[k % len(colors)]
        row = axes[stages.index(stage)]
        steps_x = _step_positions(h) if len(h["epoch"]) <= STEP_CURVE_EPOCHS else None
        if steps_x is not None:
            row[0].plot(steps_x, h["step_losses"], lw=0.8, alpha=0.45, color=color, label=f"{name}: each step")
        row[0].plot(h["epoch"], h["train_loss"], marker="o", ms=3 if len(h["epoch"]) > 1 else 6, color=color,
                    label=f"{name}: epoch mean" if steps_x is not None else name)
        for key, (_, _, percent) in VAL_METRICS.items():
            if key in h:
                values = [100 * v for v in h[key]] if percent else h[key]
                row[1].plot(h["epoch"], values, marker="o", ms=3 if len(values) > 1 else 6, color=color, label=name)
                if len(values) == 1:  # one epoch: say the value instead of leaving a dot on empty axes
                    row[1].annotate(f"{values[0]:.1f} %" if percent else f"{values[0]:.4f}", (h["epoch"][0], values[0]),
                                    xytext=(8, 0), textcoords="offset points", va="center", fontsize=9, color=color)
        frozen = [e for e, f in zip(h["epoch"], h.get("frozen", [])) if f]
        if frozen:
            for j, ax in enumerate(row):
                ax.axvspan(min(frozen) - 0.5, max(frozen) + 0.5, color=color, alpha=0.12, zorder=0,
                           label=f"{name}: encoder frozen" if j == 0 else None)
    for stage, row in zip(stages, axes):
        key = next(k for k, v in VAL_METRICS.items() if v[0] == stage)
        row[0].set(xlabel="epoch", ylabel=TRAIN_LOSS_LABELS[stage], title=f"{stage}: training loss")
        row[1].set(xlabel="epoch", ylabel=VAL_METRICS[key][1], title=f"{stage}: validation")
        for ax in row:
            lo, hi = ax.get_xlim()  # whole epochs, also for a one-epoch run
            ax.set_xlim(min(lo, 0.5), max(hi, 1.5))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    return fig


def _step_positions(history: dict) -> list[float] | None:
    """x of each recorded step loss, in epochs (step k of epoch e at e - 1 + k / steps); None if not recorded in full."""
    per_epoch, losses = history.get("steps", []), history.get("step_losses", [])
    if not losses or len(per_epoch) != len(history["epoch"]) or sum(per_epoch) != len(losses):
        return None  # an older history (or a resumed one) without every step's loss
    return [e - 1 + (k + 1) / n for e, n in zip(history["epoch"], per_epoch) for k in range(n)]


def table_figure(header: Sequence[str], rows: Sequence[Sequence], title: str, fontsize: float = 10,
                 caption: Sequence[str] = ()) -> Figure:
    """Render a small table as a figure (the comparison table, for slides and the README).

    Columns are as wide as their longest entry (header included), text is ``fontsize`` points
    (at least 9), the header is bold on grey. ``caption``: lines printed under the table (e.g. the
    weights each model started from), the figure made taller to hold them.
    """
    fontsize = max(float(fontsize), 9.0)
    cells = [[str(c) for c in r] for r in rows]
    chars = [max([len(str(h))] + [len(r[j]) for r in cells if j < len(r)]) + 2 for j, h in enumerate(header)]
    inch_per_char = 0.62 * fontsize / 72  # an average character is about 0.6 em wide
    width = sum(chars) * inch_per_char + 0.4
    row_h = 2.0 * fontsize / 72
    caption_h = 1.5 * fontsize / 72 * len(caption)
    height = row_h * (len(cells) + 1) + 0.7 + caption_h
    fig, ax = plt.subplots(figsize=(max(width, 4.0), height))
    if caption:
        fig.subplots_adjust(bottom=(caption_h + 0.15) / height)
        fig.text(0.01, 0.01, "\n".join(caption), fontsize=fontsize - 1, ha="left", va="bottom")
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=list(header), loc="center", cellLoc="center",
                     colWidths=[c / sum(chars) for c in chars], bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.9")
    ax.set_title(title, fontsize=max(fontsize, 10))
    fig.tight_layout(rect=(0, (caption_h + 0.15) / height if caption else 0, 1, 1))
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = SAVE_DPI) -> Path:
    """Save ``fig`` as PNG atomically (never half a file over a good one) at ``dpi`` (>= 100) and close it."""
    png = io.BytesIO()  # rendered first: the file's size is known, and a full disk says how much it needs
    fig.savefig(png, dpi=dpi, format="png", bbox_inches="tight")
    path = atomic_write_bytes(path, png.getbuffer())
    plt.close(fig)
    return path
