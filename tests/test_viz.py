"""Tests of depthkit.viz: colour bars with units, shared colour ranges, the training curves, the table."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt
from matplotlib.image import AxesImage
from PIL import Image

from depthkit import viz


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def depth_images(fig) -> list[AxesImage]:
    """The depth maps of a figure: every image drawn with the depth colour map."""
    return [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name.startswith(viz.DEPTH_CMAP)]


def colorbar_labels(fig) -> list[str]:
    return [ax._colorbar.ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]


def batch(n: int = 3, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    rows = torch.linspace(1.0, 5.0, size).view(1, 1, size, 1)
    depths = (rows + torch.rand(n, 1, size, size, generator=g)).expand(n, 1, size, size).clone()
    depths[0, 0, :2, :2] = 0  # a hole, like the Kinect's
    return images, depths


def test_show_depth_has_a_colour_bar_with_its_unit():
    fig, axes = plt.subplots(1, 2)
    metric = viz.show_depth(axes[0], np.linspace(1, 4, 64).reshape(8, 8), "gt")
    relative = viz.show_depth(axes[1], np.linspace(1, 4, 64).reshape(8, 8), "pred", normalize=True)
    assert metric.colorbar.ax.get_ylabel() == viz.METRIC_LABEL and "(m)" in viz.METRIC_LABEL
    assert relative.colorbar.ax.get_ylabel() == viz.RELATIVE_LABEL and "relative depth" in viz.RELATIVE_LABEL
    assert relative.get_clim() == (0.0, 1.0) or np.allclose(relative.get_clim(), (0, 1))
    fig2, ax = plt.subplots()
    assert viz.show_depth(ax, np.ones((4, 4)), colorbar=False).colorbar is None


def test_samples_have_a_metric_colour_bar_per_depth_map():
    images, depths = batch()
    fig = viz.show_samples(images, depths, "samples", n=3)
    maps = depth_images(fig)
    assert len(maps) == 3
    assert all(im.colorbar is not None and im.colorbar.ax.get_ylabel() == viz.METRIC_LABEL for im in maps)


def test_predictions_beside_ground_truth_share_its_range_and_bar():
    images, depths = batch()
    preds = {"a": depths * 0.1 + 0.3, "b": torch.rand_like(depths)}
    fig = viz.show_predictions(images, preds, "predictions", depths=depths, n=3)
    assert "aligned" in fig._suptitle.get_text()
    labels = colorbar_labels(fig)
    assert labels == [viz.METRIC_LABEL] * 3  # one bar per row, in metres
    rows = {}
    for im in depth_images(fig):
        rows.setdefault(round(im.axes.get_position().y0, 3), []).append(im)
    assert len(rows) == 3
    for row in rows.values():
        assert len(row) == 3  # ground truth + two predictions
        assert len({tuple(np.round(im.get_clim(), 6)) for im in row}) == 1
    # prediction "a" is an affine function of the depth: aligned, it is the depth itself
    aligned = viz.align_to(preds["a"][1], depths[1])
    np.testing.assert_allclose(aligned, depths[1, 0].numpy(), rtol=1e-4, atol=1e-4)


def test_predictions_without_ground_truth_are_relative():
    images, depths = batch()
    pairs = torch.tensor([[[2, 3, 10, 12]]] * 3)
    relation = torch.tensor([[1], [-1], [1]])
    fig = viz.show_predictions(images, {"m": depths}, "diw", pairs=pairs, relation=relation, n=3)
    assert colorbar_labels(fig) == [viz.RELATIVE_LABEL] * 3
    assert all(np.allclose(im.get_clim(), (0, 1)) for im in depth_images(fig))
    fig = viz.show_predictions(images, {"m": depths}, "unaligned", depths=depths, n=2, align="none")
    assert sorted(colorbar_labels(fig)) == sorted([viz.METRIC_LABEL, viz.RELATIVE_LABEL] * 2)
    with pytest.raises(ValueError, match="align"):
        viz.show_predictions(images, {"m": depths}, "x", depths=depths, align="median")


def history(epochs: int, key: str, frozen: int = 0) -> dict:
    return {"epoch": list(range(1, epochs + 1)), "train_loss": list(np.linspace(1, 0.5, epochs)),
            key: list(np.linspace(0.5, 0.8, epochs)), "frozen": [e < frozen for e in range(epochs)]}


def test_training_curves_put_nyu_and_diw_on_separate_named_axes():
    fig = viz.plot_histories({"lraspp NYU": history(4, "val_normalized_mse"),
                              "lraspp DIW": history(2, "val_ordinal_accuracy")}, "curves")
    axes = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert len(axes) == 4
    ylabels = [ax.get_ylabel() for ax in axes]
    assert ylabels == [viz.TRAIN_LOSS_LABELS["NYU"], viz.VAL_METRICS["val_normalized_mse"][1],
                       viz.TRAIN_LOSS_LABELS["DIW"], viz.VAL_METRICS["val_ordinal_accuracy"][1]]
    assert "normalized MSE" in ylabels[1] and "accuracy" in ylabels[3]
    assert [len(ax.get_lines()) for ax in axes] == [1, 1, 1, 1]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    assert not any(ax.patches for ax in axes)  # nothing was frozen: no band
    assert not any("frozen" in ax.get_title() for ax in axes)
    assert not any("frozen" in t.get_text() for ax in axes if ax.get_legend() for t in ax.get_legend().get_texts())


def test_frozen_band_only_for_the_frozen_run():
    fig = viz.plot_histories({"unetpp NYU": history(5, "val_normalized_mse", frozen=1),
                              "lraspp NYU": history(5, "val_normalized_mse")}, "curves")
    axes = fig.axes
    assert len(axes) == 2  # NYU only: one row
    for ax in axes:
        assert len(ax.patches) == 1
        x0, x1 = ax.patches[0].get_x(), ax.patches[0].get_x() + ax.patches[0].get_width()
        assert (x0, x1) == (0.5, 1.5)
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "unetpp NYU: encoder frozen" in legend and not any("lraspp" in t and "frozen" in t for t in legend)


def test_one_epoch_run_draws_its_steps_not_a_lone_point(tmp_path):
    one = dict(history(1, "val_ordinal_accuracy"), steps=[90], step_losses=list(np.linspace(0.7, 0.6, 90)))
    fig = viz.plot_histories({"U-Net++ DIW": one, "LR-ASPP DIW": history(1, "val_ordinal_accuracy")}, "curves")
    loss_ax, val_ax = fig.axes[:2]
    per_step = [line for line in loss_ax.get_lines() if len(line.get_xdata()) == 90]
    assert len(per_step) == 1  # only the run that recorded its steps; the other keeps its epoch point
    x = per_step[0].get_xdata()
    assert x[0] == pytest.approx(1 / 90) and x[-1] == pytest.approx(1.0)  # the last step ends epoch 1
    assert list(per_step[0].get_ydata()) == pytest.approx(one["step_losses"])
    assert {t.get_text() for t in val_ax.texts} == {"50.0 %"}  # lone validation points say their value
    assert viz.save_figure(fig, tmp_path / "curves.png").stat().st_size > 0


def test_step_losses_of_a_resumed_history_are_not_misplaced():
    h = dict(history(3, "val_normalized_mse"), steps=[4, 4, 4], step_losses=[0.5] * 4)  # epochs 1-2 lost theirs
    fig = viz.plot_histories({"lraspp NYU": h}, "curves")
    assert all(len(line.get_xdata()) == 3 for line in fig.axes[0].get_lines())


def test_table_is_legible(tmp_path):
    header = ["model", "parameters", "NYU test normalized MSE ↓", "DIW test accuracy ↑"]
    rows = [["LR-ASPP MobileNetV3-Large", "3.22 M", "0.0312", "71.2 %"], ["U-Net++ resnext50_32x4d", "48.46 M", "0.0211", "74.0 %"]]
    fig = viz.table_figure(header, rows, "table")
    table = fig.axes[0].tables[0]
    cells = table.get_celld()
    assert min(c.get_text().get_fontsize() for c in cells.values()) >= 9
    widths = [cells[0, j].get_width() for j in range(len(header))]
    assert widths[0] > widths[1]  # columns as wide as their text, not all equal
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for cell in cells.values():  # no text spills out of its cell
        assert cell.get_text().get_window_extent(renderer).width <= cell.get_window_extent(renderer).width
    path = viz.save_figure(fig, tmp_path / "table.png")
    with Image.open(path) as im:
        dpi = im.info.get("dpi", (0, 0))[0]
    assert round(dpi) >= 100


def test_save_figure_defaults_to_at_least_100_dpi():
    import inspect

    assert inspect.signature(viz.save_figure).parameters["dpi"].default >= 100
    assert viz.SAVE_DPI >= 100
