"""The two training stages in one table: what each trains on, with which loss, judged by which metric.

===========  =====================================  ===================================  =====================
stage        data                                   loss                                 validation metric
===========  =====================================  ===================================  =====================
``nyu``      NYU Depth V2 (images + depth maps)     normalized MSE (the report's)        normalized MSE, lower
``diw``      DIW (images + one point pair each)     Chen et al.'s ranking loss           ordinal accuracy, higher
===========  =====================================  ===================================  =====================

A stage's metrics return per-image tensors and read nothing back from the GPU:
:func:`depthkit.evaluate.evaluate` sums them on the device and reads the means once per split.

Epochs and learning rates are the profile's plain data (:meth:`depthkit.config.Profile.budget`,
one :class:`depthkit.config.Budget` per stage); this table says what each stage trains on, with
which loss and metric, and which loader reads its data, so no other module needs an
``if stage == ...`` branch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from depthkit import losses, metrics


def nyu_loss(pred: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """The report's NYU loss: MSE between per-image min-max normalized prediction and depth."""
    return losses.normalized_mse(pred, batch["depths"], batch["depths"] > 0)


def diw_loss(pred: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """Chen et al.'s ranking loss on the batch's point pairs (+1: A farther), validated when the split was loaded."""
    return losses.ranking_loss(pred, batch["pairs"], batch["relation"], validate=False)


NYU_ALIGN = "lstsq"  # how nyu_metrics aligns a relative prediction to metres before the standard metrics


def nyu_metrics(pred: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-image NYU metrics ``[B]``: the report's normalized MSE and the standard metrics (lstsq-aligned)."""
    mask = batch["depths"] > 0
    values = {"normalized_mse": losses.normalized_mse(pred.detach(), batch["depths"], mask, reduction="none")}
    values.update(metrics.depth_metrics(pred, batch["depths"], mask, align=NYU_ALIGN, reduction="none"))
    return values


def diw_metrics(pred: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-image DIW metrics ``[B]``: ordinal accuracy (the report's) and WHDR (Chen et al., delta = 0)."""
    wrong = metrics.pair_errors_per_image(pred, batch["pairs"], batch["relation"])
    return {"ordinal_accuracy": 1 - wrong, "whdr": wrong}


@dataclass(frozen=True)
class Stage:
    """One row of the stage table."""

    name: str
    data: str  # what the stage trains on, in words
    loss: Callable[[Tensor, dict[str, Tensor]], Tensor]
    metrics: Callable[[Tensor, dict[str, Tensor]], dict[str, Tensor]]  # per-image values, NaN = not scored
    val_key: str  # the validation metric that picks best.pt
    higher_is_better: bool
    init_from: str | None  # the stage whose best.pt this one starts from, if any
    loader: str  # how its splits are read (depthkit.pipeline.LOADERS): "depth_maps" (NYU cache, in memory
    # when small) or "point_pairs" (DIW cache, images streamed from disk)

    def improved(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` on this stage's validation metric."""
        return best is None or (value > best if self.higher_is_better else value < best)


STAGES: dict[str, Stage] = {
    "nyu": Stage("nyu", "NYU Depth V2: images with depth maps", nyu_loss, nyu_metrics,
                 "normalized_mse", False, None, "depth_maps"),
    "diw": Stage("diw", "DIW: images with one annotated point pair", diw_loss, diw_metrics,
                 "ordinal_accuracy", True, "nyu", "point_pairs"),
}


def get_stage(name: str) -> Stage:
    """The stage called ``name`` ("nyu" or "diw"), with a clear error for any other name."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}: expected one of {', '.join(STAGES)}")
    return STAGES[name]

