"""End to end, bytes on disk to a gradient: files in the real layouts -> reader -> cache -> batches ->
augmentation -> model -> loss (issue #12, section 3).

Each test writes its own small files (a DIW CSV with JPEGs, an NYU MATLAB-v7.3 HDF5) whose content
says, independently of depthkit, which point is farther and where a marker lies. Any sign, axis or
ordering error anywhere on the way then shows up as a disagreement with that content:

* DIW: the left half of every picture is a far blue "window", the right half a near brown "object".
  Every pair puts one point in each half, in rows far apart, and the points are chosen so that
  mirroring the image *or* swapping y and x moves each point into the other half. What a batch
  says (pair and relation) is checked against the picture under the points, through augmentation,
  and a few optimizer steps must raise the prediction at the farther point.
* NYU: each frame carries the same elongated bar in its image (bright) and its depth (near), in the
  top-left quadrant, at a frame-specific place: a depth read transposed, mirrored or out of order
  no longer lies under the image's bar.
"""
from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from depthkit import losses, metrics
from depthkit.data import load_diw_cache
from depthkit.data.loader import DepthData, augment, batches
from depthkit.models import build_model
from depthkit.pipeline import load_stage_data, prepare_data
from depthkit.stages import STAGES
from depthkit.evaluate import predict
from depthkit.train import train_one_epoch

SIZE = 64  # the cache size (the smoke profile's)

# ------------------------------------------------------------------------------------------------
# DIW: a CSV and JPEGs on disk
# ------------------------------------------------------------------------------------------------
DIW_W, DIW_H = 96, 64  # width x height of the JPEGs (not square, so a y/x swap is not a no-op)
FAR_RGB, NEAR_RGB = (50, 110, 235), (170, 95, 35)  # far: B > R everywhere; near: R > B everywhere
# (symbol, y_A, x_A, y_B, x_B), 1-based as in the CSV. The far ("window") half is x <= 48, the near
# half x > 48. Every point sits >= 8 px from the border between them, its mirror lies in the other
# half, and so does its transpose (x, y) -- which also stays inside the 96x64 image, so a reader
# that swaps y and x silently reads the wrong half instead of raising.
DIW_RECORDS = [
    (">", 58, 20, 8, 60),   # A: far, bottom-left;  B: near, top-right
    ("<", 12, 58, 52, 30),  # A: near, top-right;   B: far, bottom-left
    (">", 50, 10, 20, 62),  # A: far;               B: near
    ("<", 4, 60, 60, 32),   # A: near;              B: far
]
SIGN = {">": 1, "<": -1}  # DESIGN.md: ">" means depth(A) > depth(B), A farther -> relation +1


def _diw_picture(seed: int) -> np.ndarray:
    """A 64x96 RGB picture: far blue window on the left, near textured brown object on the right."""
    rng = np.random.default_rng(seed)
    img = np.empty((DIW_H, DIW_W, 3), np.float64)
    img[:, : DIW_W // 2] = FAR_RGB
    img[:, DIW_W // 2:] = NEAR_RGB
    yy, xx = np.mgrid[:DIW_H, :DIW_W]
    img[:, DIW_W // 2:] *= (1 + 0.12 * (((yy // 4 + xx // 4) % 2) - 0.5))[:, DIW_W // 2:, None]  # texture
    img[:, : DIW_W // 2] *= (0.9 + 0.2 * yy / DIW_H)[:, : DIW_W // 2, None]  # a soft gradient
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def diw_files(tmp_path_factory, nyu_mat) -> dict:
    """The real-data layout under a fresh ``DEPTHKIT_DATA``: ``real/diw/DIW_test.csv`` in the published
    layout (an absolute authors'-machine image line, then the annotation line) with one JPEG per
    record, and (``prepare_data`` caches NYU too) the test's NYU file and split file."""
    data = tmp_path_factory.mktemp("diw_e2e")
    root = data / "real" / "diw"
    (root / "DIW_test").mkdir(parents=True)
    lines = []
    for i, (sym, ya, xa, yb, xb) in enumerate(DIW_RECORDS):
        name = f"{i:04d}.thumb"
        Image.fromarray(_diw_picture(i)).save(root / "DIW_test" / name, format="JPEG", quality=95)
        lines += [f"/home/wfchen/DIW/DIW_test/{name}", f"{ya},{xa},{yb},{xb},{sym},{DIW_W},{DIW_H}"]
    (root / "DIW_test.csv").write_text("\n".join(lines) + "\n")
    mat, splits = nyu_mat
    (data / "real" / "nyu_depth_v2_labeled.mat").write_bytes(mat.read_bytes())
    (data / "nyu_splits.json").write_bytes(splits.read_bytes())
    return {"data": data, "csv": root / "DIW_test.csv"}


@pytest.fixture(scope="module")
def stage_data(diw_files, smoke_profile) -> dict[str, dict[str, DepthData]]:
    """Both stages' splits exactly as ``train`` and ``reproduce`` obtain them: ``prepare_data`` ->
    ``load_stage_data(profile, stage)`` on the real-data layout. The profile's seeded partition of
    DIW_test keeps every record in the training split (in CSV order)."""
    profile = smoke_profile.replace(data="real", size=SIZE, diw_protocol="report", max_diw_images=None,
                                    diw_fractions=(1.0, 0.0, 0.0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPTHKIT_DATA", str(diw_files["data"]))
        prepare_data(profile)
        return {stage: load_stage_data(profile, stage) for stage in ("nyu", "diw")}


@pytest.fixture(scope="module")
def diw_train(stage_data) -> DepthData:
    """The DIW stage's training split, as ``train`` reads it."""
    assert len(stage_data["diw"]["train"]) == len(DIW_RECORDS)
    return stage_data["diw"]["train"]


@pytest.fixture(scope="module")
def diw_cache(diw_files, diw_train) -> dict:
    """The DIW cache ``prepare_data`` wrote for the CSV, opened."""
    return load_diw_cache(next((diw_files["data"] / "cache").glob("diw_*.h5")))


def _farness(images: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """+1 where the picture shows the far window (blue > red), -1 on the near object, per image.

    Colour jitter (brightness, contrast, saturation with positive factors) keeps the order of the
    channels within a pixel, so this reads the same before and after augmentation.
    """
    b = torch.arange(len(images))
    px = images[b, :, y, x].float()  # [B, 3]
    return torch.sign(px[:, 2] - px[:, 0]).long()


def _check_batch_against_pictures(batch: dict) -> None:
    """The relation of each sample must say what the picture under its two points says."""
    images, pairs, relation = batch["images"], batch["pairs"][:, 0], batch["relation"][:, 0]
    far_a = _farness(images, pairs[:, 0], pairs[:, 1])
    far_b = _farness(images, pairs[:, 2], pairs[:, 3])
    assert (far_a != 0).all() and (far_b != 0).all() and (far_a != far_b).all(), \
        "a pair point does not lie on the window / object it was annotated on"
    assert torch.equal(relation.long(), (far_a - far_b) // 2), (
        f"relations {relation.tolist()} disagree with the pictures under the points "
        f"(A far: {far_a.tolist()}, B far: {far_b.tolist()})")


def _count_mirrored(batch: dict, seen: dict) -> None:
    """Count the samples that came mirrored (the far window then lies on the right) and the others."""
    images = batch["images"]
    w = images.shape[-1]
    blue = (images[:, 2].float() - images[:, 0].float())
    mirrored = blue[..., w // 2:].mean(dim=(1, 2)) > blue[..., : w // 2].mean(dim=(1, 2))
    seen["mirrored"] += int(mirrored.sum())
    seen["plain"] += int((~mirrored).sum())


@torch.no_grad()
def _signed_gaps(model: torch.nn.Module, data: DepthData) -> torch.Tensor:
    """Per record, SIGN[csv symbol] * (z_A - z_B) at the cache's pair coordinates on the plain images.

    The sign comes from the test's own records, not from the cache: a relation flipped on the way
    into the cache makes training lower this number. Measured in train mode (batch statistics, the
    function the optimizer changed), on the whole split in CSV order.
    """
    model.train()
    pred = predict(model, data.images[:])
    z_a, z_b = losses.pair_values(pred, data.pairs[:])
    expected = torch.tensor([SIGN[r[0]] for r in DIW_RECORDS], dtype=pred.dtype)
    return expected * (z_a - z_b)[:, 0]


def test_diw_cache_points_land_on_the_annotated_content(diw_cache, diw_train):
    """Catches: relation negated or '>'/'<' swapped in the reader (RELATIONS) or where
    ``pipeline._diw_split`` builds the split, y and x read in the wrong order, or pairs rescaled
    wrongly into the cache -- the split's relation must agree with the picture under the split's
    own pair coordinates, and with the CSV's symbols."""
    assert diw_cache["relation"].tolist() == [SIGN[r[0]] for r in DIW_RECORDS]
    assert diw_cache["images"].shape == (len(DIW_RECORDS), SIZE, SIZE, 3)
    data = diw_train
    assert data.relation[:, 0].tolist() == [SIGN[r[0]] for r in DIW_RECORDS]
    seen = {"mirrored": 0, "plain": 0}
    batch = data[np.arange(len(data))]
    _check_batch_against_pictures(batch)
    _count_mirrored(batch, seen)
    assert seen == {"mirrored": 0, "plain": len(DIW_RECORDS)}


@pytest.mark.parametrize("flips", [True, False], ids=["flips_on", "flips_off"])
def test_diw_ranking_steps_raise_the_farther_point(diw_train, smoke_profile, flips):
    """Catches, from the CSV bytes to the gradient: relation negated (RELATIONS, or in
    ``pipeline._diw_split``), '>'/'<' swapped, y/x read in the wrong order, pair columns left
    unflipped by ``augment`` (flips on), and the ranking loss's sign flipped. The split comes from
    ``load_stage_data`` as in ``train``.

    A few Adam steps of LR-ASPP with the DIW stage's loss must raise z(farther) - z(closer) at the
    cache's pair coordinates for every record, the farther point being the one the CSV names. With
    flips on the steps are :func:`train_one_epoch` itself (batches -> augment with flips and
    jitter -> stage loss); with flips off the same loop without ``augment``. Every batch the loss
    sees is checked against the pictures under its points.
    """
    torch.manual_seed(0)
    data = diw_train
    model = build_model("lraspp")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    stage, seen = STAGES["diw"], {"mirrored": 0, "plain": 0}

    def checked_loss(pred, batch):
        _count_mirrored(batch, seen)
        _check_batch_against_pictures(batch)
        return STAGES["diw"].loss(pred, batch)

    spy = dataclasses.replace(stage, loss=checked_loss)
    before = _signed_gaps(model, data)
    epochs = 5
    if flips:  # the real training step: batches, augment (flip + jitter), the stage's loss
        profile = dataclasses.replace(smoke_profile, batch_size=len(data), seed=0, num_workers=0)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        for epoch in range(epochs):
            train_one_epoch(model, optimizer, scaler=scaler, stage=spy, data=data, profile=profile, epoch=epoch,
                            device=torch.device("cpu"), progress=False)
    else:
        for epoch in range(epochs):
            model.train()
            for batch in batches(data, len(data), shuffle=True, seed=epoch):
                batch = dict(batch, images=batch["images"].float() / 255)
                loss = spy.loss(predict(model, batch["images"], check_range=False), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    after = _signed_gaps(model, data)
    if flips:
        assert seen["mirrored"] > 0 and seen["plain"] > 0, f"augment never (or always) flipped: {seen}"
    else:
        assert seen == {"mirrored": 0, "plain": epochs * len(data)}
    gain = after - before
    assert (gain > 0).all(), (f"z(farther) - z(closer) fell for records "
                              f"{torch.nonzero(gain <= 0).flatten().tolist()}: before {before.tolist()}, "
                              f"after {after.tolist()}")


# ------------------------------------------------------------------------------------------------
# NYU: a MATLAB v7.3 file with a marker in image and depth
# ------------------------------------------------------------------------------------------------
NYU_H, NYU_W, NYU_N, NYU_SIZE_PREP = 48, 64, 6, SIZE  # like 480x640, not square


def _bar(i: int) -> tuple[slice, slice]:
    """Frame i's marker: a horizontal bar in the top-left quadrant, moved per frame."""
    return slice(3 + 2 * i, 9 + 2 * i), slice(4 + i, 30 + i)


@pytest.fixture(scope="module")
def nyu_mat(tmp_path_factory):
    """A 6-frame NYU-labeled file written exactly as MATLAB v7.3 stores it: images (N, 3, W, H)
    with images[i] = img.transpose(2, 1, 0), depths (N, W, H) with depths[i] = depth.T; split file
    1-based."""
    root = tmp_path_factory.mktemp("nyu_e2e")
    rng = np.random.default_rng(0)
    images = np.empty((NYU_N, 3, NYU_W, NYU_H), np.uint8)
    depths = np.empty((NYU_N, NYU_W, NYU_H), np.float32)
    for i in range(NYU_N):
        img = rng.integers(30, 60, (NYU_H, NYU_W, 3)).astype(np.uint8)  # dark background
        depth = (4.0 + 2.0 * np.linspace(0, 1, NYU_W)[None, :] + rng.uniform(0, 0.2, (NYU_H, NYU_W))
                 ).astype(np.float32)  # far wall, 4-6.2 m
        depth[NYU_H - 6:, NYU_W - 10:] = 0  # a Kinect hole, bottom right
        rows, cols = _bar(i)
        img[rows, cols] = 235  # bright bar ...
        depth[rows, cols] = 1.0  # ... and the same pixels near
        images[i] = img.transpose(2, 1, 0)
        depths[i] = depth.T
    mat = root / "nyu_depth_v2_labeled.mat"
    with h5py.File(mat, "w") as f:
        f["images"], f["depths"] = images, depths
    splits = root / "nyu_splits.json"
    splits.write_text(json.dumps({"train": [1, 2, 3, 4], "test": [5, 6]}))
    return mat, splits


def _masks(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: the image's bright pixels and the depth's near valid pixels."""
    img = batch["images"].float().mean(dim=1)  # [B, H, W]
    lo, hi = img.amin(dim=(1, 2), keepdim=True), img.amax(dim=(1, 2), keepdim=True)
    bright = img > (lo + hi) / 2
    d = batch["depths"][:, 0]
    near = (d > 0) & (d < 2.5)
    return bright, near


@pytest.mark.parametrize("flips", [True, False], ids=["flips_on", "flips_off"])
def test_nyu_marker_sits_at_the_same_pixel_in_image_and_depth(stage_data, flips):
    """Catches: the depth mis-oriented against the image (depths read without ``.T``, i.e. mirrored
    on the diagonal), images or depths mirrored, depths and images of different frames paired up,
    and (flips on) ``augment`` flipping the image but not the depth.

    The file goes through prepare_data -> load_stage_data (the split file, row mapping and
    train/val carving), as ``train`` reads it -> batches -> augment; in every sample the bright bar
    of the image and the near bar of the depth must be the same pixels, in the top-left quadrant
    (top-right if mirrored).
    """
    splits = stage_data["nyu"]
    assert sum(len(s) for s in splits.values()) == NYU_N
    assert splits["train"].depths.shape[-2:] == (NYU_SIZE_PREP, NYU_SIZE_PREP)
    generator, counts, half = torch.Generator().manual_seed(3), {"mirrored": 0, "plain": 0}, NYU_SIZE_PREP // 2
    for name, split in splits.items():
        for batch in batches(split, 4, shuffle=True, seed=1):
            if flips:
                batch = augment(dict(batch, images=batch["images"].float() / 255), generator)
            bright, near = _masks(batch)
            for i in range(len(bright)):
                inter, union = (bright[i] & near[i]).sum(), (bright[i] | near[i]).sum()
                assert bright[i].sum() >= 20, f"{name}: the image's marker is missing"
                assert inter / union > 0.8, (f"{name}: the image's bright bar and the depth's near bar "
                                             f"overlap on {int(inter)} of {int(union)} pixels")
                ys, xs = torch.nonzero(bright[i], as_tuple=True)
                assert ys.float().mean() < half, f"{name}: the marker is not in the top half"
                mirrored = bool(xs.float().mean() >= half)
                counts["mirrored" if mirrored else "plain"] += 1
    if flips:
        assert counts["mirrored"] > 0 and counts["plain"] > 0, counts
    else:
        assert counts["mirrored"] == 0, "a marker moved to the right half without augmentation"


# ------------------------------------------------------------------------------------------------
# The report's normalized MSE
# ------------------------------------------------------------------------------------------------
def _depth_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Depths in metres with holes (0) and a mask of the valid pixels."""
    g = torch.Generator().manual_seed(0)
    depth = 0.5 + 9 * torch.rand(3, 1, 12, 16, generator=g)
    depth[:, :, :2, :3] = 0
    return depth, depth > 0


def test_normalized_mse_is_invariant_to_an_affine_rescaling_of_the_target():
    """Catches: the target left unnormalized (or normalized differently from the prediction) in the
    report's MSE -- the loss, the NYU stage's loss and the metric must not change when the target
    depth d becomes 3d + 2 (invalid pixels stay invalid)."""
    depth, mask = _depth_batch()
    pred = torch.randn(depth.shape, generator=torch.Generator().manual_seed(1))
    rescaled = torch.where(mask, 3 * depth + 2, depth)
    base = losses.normalized_mse(pred, depth, mask)
    assert base > 0.01
    assert losses.normalized_mse(pred, rescaled, mask) == pytest.approx(float(base), rel=1e-5)
    assert metrics.normalized_mse(pred, rescaled, mask) == pytest.approx(float(base), rel=1e-5)
    nyu_loss = STAGES["nyu"].loss
    assert nyu_loss(pred, {"depths": rescaled}) == pytest.approx(float(nyu_loss(pred, {"depths": depth})), rel=1e-5)
    assert float(nyu_loss(pred, {"depths": depth})) == pytest.approx(float(base), rel=1e-6)


def test_normalized_mse_is_zero_for_the_target_up_to_an_affine_map():
    """Catches: the target left unnormalized, or the prediction normalized on other pixels than the
    target -- a prediction a*d + b (a > 0) of the target d must cost nothing; the reversed depth
    (far and near swapped) must cost a lot, so the loss still tells near from far."""
    depth, mask = _depth_batch()
    for a, b in [(1.0, 0.0), (0.25, -3.0), (40.0, 7.0)]:
        pred = torch.where(mask, a * depth + b, torch.full_like(depth, 123.0))  # junk under the holes
        assert float(losses.normalized_mse(pred, depth, mask)) == pytest.approx(0.0, abs=1e-10)
        assert float(STAGES["nyu"].loss(pred, {"depths": depth})) == pytest.approx(0.0, abs=1e-10)
    assert float(losses.normalized_mse(-depth, depth, mask)) > 0.1
