"""Figures: samples, point pairs, predictions, training curves and the comparison table.

Every function returns a matplotlib ``Figure`` and takes a ``title``: put the data and profile
that produced it there (e.g. "synthetic scenes · demo profile · cpu"), so no figure travels
without saying where it came from. Depth is drawn with one colour map everywhere, near = bright.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from depthkit.files import atomic_write

DEPTH_CMAP = "magma_r"  # larger = farther is drawn darker: near things glow
POINT_COLORS = {"A": "#00e5ff", "B": "#ff3d00"}


def to_image(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``[3, H, W]`` / ``[H, W, 3]`` tensor or array (uint8 or [0, 1] float) as an ``H×W×3`` float array."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    return a.astype(np.float32) / 255 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0, 1)


def to_depth(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``[1, H, W]`` or ``[H, W]`` depth tensor or array as an ``H×W`` float array (NaN where invalid, i.e. <= 0)."""
    a = t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float32)
    return np.squeeze(a).astype(np.float32)


def show_depth(ax, depth, title: str = "", normalize: bool = False, mask_invalid: bool = True) -> None:
    """Draw one depth map on ``ax`` (invalid zeros in grey; ``normalize`` min-max scales it first)."""
    d = to_depth(depth)
    if normalize:
        lo, hi = np.nanmin(d), np.nanmax(d)
        d = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    shown = np.ma.masked_where(d <= 0, d) if (mask_invalid and not normalize) else d
    cmap = matplotlib.colormaps[DEPTH_CMAP].with_extremes(bad="0.6")
    ax.imshow(shown, cmap=cmap)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def draw_pair(ax, pair: Sequence[int], relation: int | None = None) -> None:
    """Mark points A and B of ``(ya, xa, yb, xb)`` on ``ax``; the relation (+1: A farther) goes in the legend."""
    ya, xa, yb, xb = (int(v) for v in pair)
    ax.plot([xa, xb], [ya, yb], color="white", lw=1, alpha=0.7)
    for label, (y, x) in (("A", (ya, xa)), ("B", (yb, xb))):
        ax.scatter([x], [y], s=40, c=POINT_COLORS[label], edgecolors="black", linewidths=0.8, zorder=3)
        ax.annotate(label, (x, y), xytext=(4, -4), textcoords="offset points", color=POINT_COLORS[label],
                    fontsize=9, fontweight="bold")
    if relation is not None:
        text = {1: "A farther than B", -1: "A closer than B", 0: "A and B equal"}.get(int(relation), "?")
        ax.set_xlabel(text, fontsize=8)


def _grid(rows: int, cols: int, title: str, scale: float = 2.2) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale + 0.6), squeeze=False)
    fig.suptitle(title, fontsize=10)
    return fig, axes


def show_samples(images, depths, title: str, n: int = 4) -> Figure:
    """NYU-style samples: the image above its depth map."""
    n = min(n, len(images))
    fig, axes = _grid(2, n, title)
    for i in range(n):
        axes[0, i].imshow(to_image(images[i]))
        axes[0, i].axis("off")
        d = to_depth(depths[i])
        valid = d[d > 0]
        show_depth(axes[1, i], d, f"{valid.min():.1f}–{valid.max():.1f} m" if valid.size else "no valid depth")
    fig.tight_layout()
    return fig


def show_pairs(images, pairs, relation, title: str, n: int = 4) -> Figure:
    """DIW-style samples: each image with its annotated pair and relation."""
    n = min(n, len(images))
    fig, axes = _grid(1, n, title, scale=2.6)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(to_image(images[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        p = np.asarray(pairs[i]).reshape(-1, 4)[0]
        r = np.asarray(relation[i]).reshape(-1)[0]
        draw_pair(ax, p, int(r))
    fig.tight_layout()
    return fig


def show_predictions(images, predictions: dict, title: str, depths=None, pairs=None, relation=None,
                     n: int = 4) -> Figure:
    """One row per image: the image, the ground truth (if any), then each model's prediction (min-max scaled)."""
    n = min(n, len(images))
    cols = 1 + (depths is not None) + len(predictions)
    fig, axes = _grid(n, cols, title)
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(to_image(images[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        if pairs is not None:
            draw_pair(ax, np.asarray(pairs[i]).reshape(-1, 4)[0], None if relation is None else int(np.asarray(relation[i]).reshape(-1)[0]))
        c = 1
        if depths is not None:
            show_depth(axes[i, c], depths[i], "ground truth" if i == 0 else "")
            c += 1
        for name, pred in predictions.items():
            show_depth(axes[i, c], pred[i], name if i == 0 else "", normalize=True)
            if pairs is not None:
                draw_pair(axes[i, c], np.asarray(pairs[i]).reshape(-1, 4)[0])
            c += 1
    fig.tight_layout()
    return fig


def plot_histories(histories: dict[str, dict], title: str) -> Figure:
    """Training loss and the validation metric per epoch, one line per run."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    fig.suptitle(title, fontsize=10)
    for name, h in histories.items():
        axes[0].plot(h["epoch"], h["train_loss"], marker="o", ms=3, label=name)
        metric = "val_normalized_mse" if "val_normalized_mse" in h else "val_ordinal_accuracy"
        axes[1].plot(h["epoch"], h[metric], marker="o", ms=3, label=f"{name} ({metric[4:]})")
        frozen = [e for e, f in zip(h["epoch"], h.get("frozen", [])) if f]
        if frozen:
            axes[0].axvspan(min(frozen) - 0.5, max(frozen) + 0.5, color="0.9", zorder=0)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss (grey: encoder frozen)")
    axes[1].set(xlabel="epoch", ylabel="validation metric", title="validation")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def table_figure(header: Sequence[str], rows: Sequence[Sequence], title: str) -> Figure:
    """Render a small table as a figure (the comparison table, for slides and the README)."""
    fig, ax = plt.subplots(figsize=(min(2.0 * len(header), 14), 0.5 + 0.38 * (len(rows) + 1)))
    ax.axis("off")
    table = ax.table(cellText=[[str(c) for c in r] for r in rows], colLabels=list(header), loc="center",
                     cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically (never half a file over a good one) and close it."""
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path
