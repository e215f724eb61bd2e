"""Training loop, checkpoints, augmentation and data splits at smoke size on the CPU."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from depthkit.models import build_model, encoder_parameters
from depthkit.pipeline import describe_splits, split_train_val
from depthkit.data.loader import DepthData, augment, batches
from depthkit.checkpoints import load_checkpoint, load_model, save_checkpoint
from depthkit.evaluate import evaluate, evaluate_baseline
from depthkit.train import fit


def _params(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_smoke_splits_are_disjoint_and_sized(smoke_profile, nyu_splits, diw_splits):
    for splits in (nyu_splits, diw_splits):
        assert set(splits) == {"train", "val", "test"}
        assert all(len(d) > 0 for d in splits.values())
        assert splits["train"].images.dtype == torch.uint8
        assert splits["train"].images.shape[1:] == (3, smoke_profile.size, smoke_profile.size)
    assert nyu_splits["train"].depths.shape[1:] == (1, smoke_profile.size, smoke_profile.size)
    assert diw_splits["train"].pairs.shape[1:] == (1, 4)
    assert set(diw_splits["train"].relation.unique().tolist()) <= {-1, 1}
    assert "train" in describe_splits(nyu_splits)


def test_split_train_val_is_seeded_and_disjoint():
    tr, va = split_train_val(20, 0.25, seed=3)
    assert len(va) == 5 and len(tr) == 15
    assert not set(tr) & set(va)
    tr2, va2 = split_train_val(20, 0.25, seed=3)
    assert np.array_equal(va, va2)
    assert split_train_val(2, 0.01, 0)[1].size == 1  # always at least one validation image


def test_batches_cover_every_image_once(nyu_splits):
    data = nyu_splits["train"]
    seen = torch.cat([b["images"] for b in batches(data, 4, shuffle=True, seed=1)])
    assert seen.shape == data.images.shape
    # same multiset of images, different order
    assert torch.equal(seen.float().sum(0), data.images.float().sum(0))


def test_flip_augmentation_keeps_depth_and_pairs_consistent():
    """Catches: ``augment`` flipping the image but not the depth, or not the pair columns (or the
    wrong ones, or off by one), or touching the relation. Which samples were flipped is read from
    the images (the ground truth), never from the pairs, so a column left unflipped cannot hide."""
    torch.manual_seed(0)
    depths = torch.rand(8, 1, 6, 10) + 1
    images = torch.rand(8, 3, 6, 10)
    pairs = torch.tensor([[[1, 2, 4, 7], [5, 9, 0, 0]]]).repeat(8, 1, 1)  # two pairs, borders included
    relation = torch.tensor([[1, -1]]).repeat(8, 1)
    batch = {"images": images, "depths": depths, "pairs": pairs, "relation": relation}
    for with_depths in (True, False):  # an NYU-style batch with depths and pairs, and a DIW-style one
        b = batch if with_depths else {k: v for k, v in batch.items() if k != "depths"}
        out = augment(b, torch.Generator().manual_seed(1), jitter=0.0)
        flipped = torch.tensor([torch.equal(out["images"][i], images[i].flip(-1)) for i in range(8)])
        kept = torch.tensor([torch.equal(out["images"][i], images[i]) for i in range(8)])
        assert (flipped ^ kept).all()  # each image is either mirrored or untouched
        assert 0 < flipped.sum() < 8  # some flipped, some not
        assert torch.equal(out["relation"], relation)
        for i in range(8):
            if with_depths:
                assert torch.equal(out["depths"][i], depths[i].flip(-1) if flipped[i] else depths[i])
            for p in range(2):
                ya, xa, yb, xb = out["pairs"][i, p].tolist()
                y0a, x0a, y0b, x0b = pairs[i, p].tolist()
                assert (ya, yb) == (y0a, y0b)  # rows never move
                assert (xa, xb) == ((10 - 1 - x0a, 10 - 1 - x0b) if flipped[i] else (x0a, x0b))
                # the pixel under each (possibly moved) point is the one it had before
                assert torch.equal(out["images"][i, :, ya, xa], images[i, :, y0a, x0a])
                assert torch.equal(out["images"][i, :, yb, xb], images[i, :, y0b, x0b])
                if with_depths:
                    assert out["depths"][i, 0, ya, xa] == depths[i, 0, y0a, x0a]
                    assert out["depths"][i, 0, yb, xb] == depths[i, 0, y0b, x0b]
    assert torch.equal(batch["pairs"], pairs) and torch.equal(batch["depths"][0], depths[0])  # inputs untouched


def test_colour_jitter_changes_images_only():
    batch = {"images": torch.rand(4, 3, 8, 8), "depths": torch.rand(4, 1, 8, 8)}
    out = augment(batch, torch.Generator().manual_seed(0), jitter=0.3)
    unflipped_depth = torch.where(out["depths"] == batch["depths"], 1, 0).all(dim=(1, 2, 3))
    for i in range(4):
        if unflipped_depth[i]:
            assert not torch.equal(out["images"][i], batch["images"][i])
    assert out["images"].min() >= 0 and out["images"].max() <= 1


def test_loss_falls_over_a_few_epochs(smoke_profile, nyu_splits, tmp_path):
    model = build_model("lraspp")
    history = fit(model, nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(0, 4), progress=False)
    assert len(history["train_loss"]) == 4
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["train_loss"] == pytest.approx(history["train_loss"])
    assert "val_normalized_mse" in saved and "val_abs_rel" in saved


def test_freeze_schedule_keeps_encoder_during_warmup(smoke_profile, nyu_splits, tmp_path):
    model = build_model("lraspp")
    enc0 = _params(encoder_parameters(model))
    head0 = _params(p for p in model.parameters() if all(p is not q for q in encoder_parameters(model)))
    fit(model, nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(1, 1), stop_after=1, progress=False)
    enc1 = _params(encoder_parameters(model))
    head1 = _params(p for p in model.parameters() if all(p is not q for q in encoder_parameters(model)))
    assert _same(enc0, enc1), "encoder weights changed while frozen"
    assert not _same(head0, head1), "the head did not train during the warm-up"
    history = fit(model, nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(1, 1), progress=False)
    assert history["frozen"] == [True, False]
    assert not _same(enc1, _params(encoder_parameters(model))), "encoder weights did not change after unfreezing"
    assert all(p.requires_grad for p in model.parameters())


def test_resume_equals_uninterrupted(smoke_profile, diw_splits, tmp_path):
    torch.manual_seed(0)  # every run starts from the same random weights (train_stage seeds the same way)
    straight = build_model("lraspp")
    h_straight = fit(straight, diw_splits, "diw", smoke_profile, tmp_path / "a", epochs=(0, 2), progress=False, device="cpu")

    torch.manual_seed(0)
    crashed = build_model("lraspp")
    fit(crashed, diw_splits, "diw", smoke_profile, tmp_path / "b", epochs=(0, 2), stop_after=1, progress=False, device="cpu")
    del crashed  # the process "dies"; a new one resumes from last.pt
    torch.manual_seed(1)  # the resumed process's init does not matter: last.pt replaces it
    resumed = build_model("lraspp")
    h_resumed = fit(resumed, diw_splits, "diw", smoke_profile, tmp_path / "b", epochs=(0, 2), progress=False, device="cpu")

    assert h_resumed["epoch"] == [1, 2]
    for key in h_straight:
        if key not in ("seconds", "train_seconds", "first_step_seconds", "data_seconds"):
            assert h_resumed[key] == pytest.approx(h_straight[key]), key
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_finished_run_is_reused_not_retrained(smoke_profile, diw_splits, tmp_path):
    model = build_model("lraspp")
    fit(model, diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    stamp = (tmp_path / "last.pt").stat().st_mtime_ns
    again = build_model("lraspp")
    history = fit(again, diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    assert history["epoch"] == [1]
    assert (tmp_path / "last.pt").stat().st_mtime_ns == stamp
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_resume_refuses_a_foreign_run(smoke_profile, diw_splits, nyu_splits, tmp_path):
    fit(build_model("lraspp"), diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    with pytest.raises(ValueError, match="belongs to another run"):
        fit(build_model("lraspp"), nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(0, 1), progress=False)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {}, "model_name": "lraspp", "stage": "nyu", "epoch": 1})

    write_bytes = pathlib.Path.write_bytes

    def crash(self, data):  # save_checkpoint serialises in memory, then writes the bytes: cut that write short
        write_bytes(self, bytes(data)[: len(data) // 2])
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(pathlib.Path, "write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model": {}, "model_name": "lraspp", "stage": "nyu", "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*model"):
        load_checkpoint(foreign)


def test_evaluate_and_load_model_round_trip(smoke_profile, nyu_splits, diw_splits, tmp_path):
    model = build_model("lraspp")
    fit(model, diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    loaded = load_model(tmp_path / "last.pt")
    a = evaluate(model, diw_splits["test"], "diw")
    b = evaluate(loaded, diw_splits["test"], "diw")
    assert a == pytest.approx(b)
    assert 0 <= a["ordinal_accuracy"] <= 1
    nyu = evaluate(loaded, nyu_splits["test"], "nyu")
    assert {"normalized_mse", "abs_rel", "rmse", "delta1"} <= set(nyu)
    with pytest.raises(ValueError, match="stage"):
        evaluate(loaded, nyu_splits["test"], "kitti")


def test_baseline_is_worse_than_an_oracle(nyu_splits):
    base = evaluate_baseline(nyu_splits["train"], nyu_splits["test"])["normalized_mse"]
    assert base > 0
    # predicting the test depths themselves scores zero: the baseline is a real yardstick
    oracle = evaluate_baseline(DepthData(images=nyu_splits["test"].images[:1], depths=nyu_splits["test"].depths[:1]),
                               DepthData(images=nyu_splits["test"].images[:1], depths=nyu_splits["test"].depths[:1]))
    assert oracle["normalized_mse"] == pytest.approx(0, abs=1e-6)


def test_checkpoint_trained_on_other_data_is_refused(smoke_profile, diw_splits, tmp_path):
    fit(build_model("lraspp"), diw_splits, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    other = dict(diw_splits, train=diw_splits["train"].subset([0, 1, 2]))
    with pytest.raises(ValueError, match="trained on other data"):
        fit(build_model("lraspp"), other, "diw", smoke_profile, tmp_path, epochs=(0, 1), progress=False)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the finished checkpoint is kept


def test_learning_rate_schedules():
    from depthkit.train import learning_rate

    assert learning_rate(1e-3, 7, 10) == 1e-3
    assert learning_rate(1e-3, 0, 10, "cosine") == pytest.approx(1e-3)
    assert learning_rate(1e-3, 5, 10, "cosine") == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert learning_rate(1e-3, 9, 10, "cosine") < learning_rate(1e-3, 8, 10, "cosine")
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate(1e-3, 0, 10, "step")


def test_predict_depth_batches_give_the_same_result(nyu_splits):
    from depthkit.evaluate import predict_depth

    model = build_model("lraspp").eval()
    all_at_once = predict_depth(model, nyu_splits["test"], n=None, batch_size=64)
    in_batches = predict_depth(model, nyu_splits["test"], n=None, batch_size=2)
    assert all_at_once.shape == (len(nyu_splits["test"]), 1, 64, 64)
    assert torch.allclose(all_at_once, in_batches, atol=1e-5)
    assert predict_depth(model, nyu_splits["test"], n=3).shape[0] == 3


def test_scene_labels_follow_the_split_order(smoke_profile, smoke_prepared, nyu_splits):
    from depthkit.pipeline import scene_labels

    labels = {split: scene_labels(smoke_profile, smoke_prepared, split) for split in ("train", "val", "test")}
    for split, names in labels.items():
        assert len(names) == len(nyu_splits[split])
        assert all(1 <= int(n.split()[0]) <= 6 and n.split()[1] == ("box" if n.startswith("1 ") else "boxes")
                   for n in names)  # "1 box", "3 boxes"
    with pytest.raises(ValueError, match="split"):
        scene_labels(smoke_profile, smoke_prepared, "everything")


def test_history_keeps_every_steps_loss_for_the_curves(smoke_profile, nyu_splits, tmp_path):
    """history.json holds each step's loss (flat, epoch by epoch): a one-epoch run still has a curve to draw."""
    h = fit(build_model("lraspp"), nyu_splits, "nyu", smoke_profile, tmp_path, epochs=(0, 2), progress=False, device="cpu")
    assert len(h["step_losses"]) == sum(h["steps"]) >= 2
    first = h["step_losses"][:h["steps"][0]]
    assert sum(first) / len(first) == pytest.approx(h["train_loss"][0], rel=1e-5)  # the epoch's mean is their mean
