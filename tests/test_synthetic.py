"""Tests of the synthetic depth-cue scenes (depthkit.synthetic) and their files in the real layouts."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from depthkit import synthetic as syn
from depthkit.synthetic import Box, Camera, Material, Scene


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

def plain_scene(boxes: list[Box] | None = None, pitch: float = 0.0) -> Scene:
    """A fixed room 4 m wide, 3 m high, back wall at z = 6 m; camera 1.5 m high at x = 0, z = 0."""
    grey = Material("noise", np.full(3, 0.5, np.float32), np.full(3, 0.6, np.float32), 0.5, 1)
    return Scene(room_lo=np.array([-2.0, 0.0, -0.5]), room_hi=np.array([2.0, 3.0, 6.0]),
                 camera=Camera(np.array([0.0, 1.5, 0.0]), yaw=0.0, pitch=pitch),
                 boxes=boxes or [], materials={sid: grey for sid in range(syn.FIRST_BOX)},
                 light=np.array([0.3, 0.8, -0.52]) / np.linalg.norm([0.3, 0.8, -0.52]),
                 ambient=0.4, haze=0.05, fog_colour=np.array([0.7, 0.75, 0.8], np.float32))


def centred_box(z_front: float, width: float = 1.0, height: float = 2.0) -> Box:
    """A box in front of the camera whose front face is at ``z_front`` metres."""
    red = Material("checker", np.array([0.8, 0.2, 0.2], np.float32), np.array([0.4, 0.1, 0.1], np.float32), 0.2, 2)
    return Box(np.array([-width / 2, 0.0, z_front]), np.array([width / 2, height, z_front + 0.8]), red)


def rendered(stream: int, index: int, seed: int = 0, size: tuple[int, int] | None = None) -> dict:
    """Render scene ``index`` of ``stream`` exactly as make_synthetic does (DIW sizes come from the rng)."""
    rng = syn.scene_rng(seed, stream, index)
    height, width = size if size is not None else syn.diw_image_size(rng)
    return syn.render_scene(rng, height, width)


def csv_records(csv_path: Path) -> list[tuple[str, list[str]]]:
    """(image line, annotation fields) per record of a DIW CSV."""
    lines = csv_path.read_text().splitlines()
    return [(lines[i], lines[i + 1].split(",")) for i in range(0, len(lines), 2)]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> dict[str, Path]:
    """6 NYU-layout scenes at 480x640 and 6 DIW-layout images (with 4 for Chen's DIW_train + DIW_val), written once."""
    root = tmp_path_factory.mktemp("synthetic") / "syn"
    return syn.make_synthetic(root, n_nyu=6, n_diw=6, seed=3, n_diw_train_val=4)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def test_render_scene_is_deterministic_for_a_seed():
    a = syn.render_scene(np.random.default_rng(11), 120, 160)
    b = syn.render_scene(np.random.default_rng(11), 120, 160)
    c = syn.render_scene(np.random.default_rng(12), 120, 160)
    assert a["image"].tobytes() == b["image"].tobytes()
    assert a["depth"].tobytes() == b["depth"].tobytes()
    assert a["cues"] == b["cues"]
    assert not np.array_equal(a["image"], c["image"]) and not np.array_equal(a["depth"], c["depth"])


@pytest.mark.filterwarnings("error")  # no inf / nan anywhere on the way
def test_render_scene_types_and_plausible_depth():
    for seed in range(12):
        out = syn.render_scene(np.random.default_rng(seed), 96, 128)
        assert out["image"].shape == (96, 128, 3) and out["image"].dtype == np.uint8
        assert out["depth"].shape == (96, 128) and out["depth"].dtype == np.float32
        depth = out["depth"]
        assert np.isfinite(depth).all()
        assert 0.5 < depth.min() and depth.max() < 12.0, (seed, depth.min(), depth.max())
        assert depth.max() / depth.min() > 1.5  # a room, not a flat picture
        assert out["image"].std() > 5  # textured and shaded, not a flat colour
        assert set(out["cues"]) <= set(syn.CUES)
        assert {"perspective", "texture gradient", "shading", "haze"} <= set(out["cues"])


def test_every_cue_appears_in_some_scene():
    seen = set()
    for seed in range(20):
        seen |= set(syn.render_scene(np.random.default_rng(seed), 96, 128)["cues"])
    assert seen == set(syn.CUES)


def test_back_wall_and_floor_depth_are_exact():
    """Camera level (no yaw, no pitch): the back wall is at constant depth 6 m, the floor at h*f/row."""
    height, width = 120, 160
    hits = syn.cast_rays(plain_scene(), height, width)
    depth, surface = hits["depth"], hits["surface"]
    back = surface == syn.BACK_WALL
    assert back.sum() > 1000
    np.testing.assert_allclose(depth[back], 6.0, rtol=1e-5)
    rows, cols = np.nonzero(surface == syn.FLOOR)
    assert rows.min() > height / 2  # the floor lies below the horizon
    focal = syn.FOCAL_SCALE * width
    expected = 1.5 * focal / (rows + 0.5 - height / 2)
    np.testing.assert_allclose(depth[rows, cols], expected, rtol=1e-4)


def test_floor_depth_increases_going_up_the_image():
    out = syn.render(plain_scene(pitch=np.radians(-10)), 120, 160)
    column = out["depth"][:, 80]
    hits = syn.cast_rays(plain_scene(pitch=np.radians(-10)), 120, 160)
    floor_rows = np.nonzero(hits["surface"][:, 80] == syn.FLOOR)[0]
    assert floor_rows.size > 20 and floor_rows.max() == 119  # the bottom row is floor
    assert np.all(np.diff(column[floor_rows]) < 0)  # going down the image = coming closer


def test_occluding_box_is_nearer_than_the_wall_behind_it():
    height, width = 120, 160
    empty = syn.render(plain_scene(), height, width)
    with_box = syn.render(plain_scene([centred_box(z_front=3.0)]), height, width)
    changed = with_box["depth"] != empty["depth"]
    assert changed.sum() > 200
    assert np.all(with_box["depth"][changed] < empty["depth"][changed])
    # The ray through the image centre hits the box's front face, 3 m away.
    assert with_box["depth"][height // 2, width // 2] == pytest.approx(3.0, rel=1e-5)
    assert empty["depth"][height // 2, width // 2] == pytest.approx(6.0, rel=1e-5)
    # A second box right behind the first is partly hidden: occlusion between boxes is reported.
    two = syn.render(plain_scene([centred_box(3.0, height=1.0), centred_box(4.5, width=2.0, height=1.6)]),
                     height, width)
    assert "occlusion" in two["cues"]
    assert "occlusion" not in with_box["cues"]


def test_box_casts_a_shadow_on_the_floor():
    scene = plain_scene([centred_box(z_front=3.0, height=1.0)])
    hits = syn.cast_rays(scene, 120, 160)
    shadow = syn.cast_shadows(scene, hits)
    on_floor = shadow & (hits["surface"] == syn.FLOOR)
    assert on_floor.sum() > 20
    # the light comes from +x and from behind the camera (-z): the shadow falls to -x, away from us
    hit_x, hit_z = hits["points"][0][on_floor], hits["points"][2][on_floor]
    assert hit_x.mean() < 0 and hit_z.mean() > 3.0
    assert "cast shadows" in syn.render(scene, 120, 160)["cues"]


def test_floor_texture_gets_denser_with_distance():
    """Tiles have a fixed size in metres, so a farther image row crosses more of them (texture gradient)."""
    scene = plain_scene(pitch=np.radians(-15))
    scene.materials[syn.FLOOR] = Material("checker", np.zeros(3, np.float32), np.ones(3, np.float32), 0.3, 3)
    hits = syn.cast_rays(scene, 240, 320)
    parity = syn.texture_weights(scene, hits) > 0.5
    floor_rows = np.nonzero((hits["surface"] == syn.FLOOR).all(axis=1))[0]
    near_row, far_row = floor_rows.max(), floor_rows.min()
    assert hits["depth"][far_row, 160] > 1.5 * hits["depth"][near_row, 160]
    edges = [np.count_nonzero(np.diff(parity[row])) for row in (near_row, far_row)]
    assert edges[1] > 1.3 * edges[0] > 0


# ----------------------------------------------------------------------------------------------
# Cue switches: render(..., cues_off=...)
# ----------------------------------------------------------------------------------------------

def scene_with_every_removable_cue() -> Scene:
    """A random scene whose picture shows cast shadows (the other removable cues are always there)."""
    for scene in syn.cue_scenes(50):
        if "cast shadows" in syn.render(scene, 96, 128)["cues"]:
            return scene
    raise AssertionError("no scene with cast shadows among 50")


@pytest.mark.parametrize("cue", list(syn.REMOVABLE_CUES))
def test_each_cue_switch_changes_the_image_and_keeps_the_depth(cue):
    scene = scene_with_every_removable_cue()
    full = syn.render(scene, 96, 128)
    without = syn.render(scene, 96, 128, cues_off=(cue,))
    assert cue in full["cues"] and cue not in without["cues"]
    assert set(without["cues"]) == set(full["cues"]) - {cue}
    np.testing.assert_array_equal(without["depth"], full["depth"])  # the same scene, the same depth
    changed = np.any(without["image"] != full["image"], axis=-1)
    assert changed.mean() > 0.005, f"switching off {cue} changed {100 * changed.mean():.2f} % of the pixels"
    assert without["image"].std() > 5  # still a picture, not a flat colour


def test_cue_switches_are_checked_and_combine():
    scene = scene_with_every_removable_cue()
    for cue in syn.GEOMETRIC_CUES:
        with pytest.raises(ValueError, match="geometry"):
            syn.render(scene, 48, 64, cues_off=(cue,))
    with pytest.raises(ValueError, match="unknown cue"):
        syn.render(scene, 48, 64, cues_off=("colour",))
    assert set(syn.REMOVABLE_CUES) | set(syn.GEOMETRIC_CUES) == set(syn.CUES)
    bare = syn.render(scene, 96, 128, cues_off=tuple(syn.REMOVABLE_CUES))
    assert set(bare["cues"]) <= set(syn.GEOMETRIC_CUES)
    np.testing.assert_array_equal(bare["depth"], syn.render(scene, 96, 128)["depth"])
    assert syn.render(scene, 48, 64, cues_off="haze")["cues"] == syn.render(scene, 48, 64, cues_off=("haze",))["cues"]


def test_no_haze_is_the_scene_without_fog():
    scene = scene_with_every_removable_cue()
    clear = dataclasses.replace(scene, haze=0.0)
    np.testing.assert_array_equal(syn.render(scene, 96, 128, cues_off=("haze",))["image"],
                                  syn.render(clear, 96, 128)["image"])


def test_no_cast_shadows_changes_only_shadowed_pixels():
    scene = scene_with_every_removable_cue()
    hits = syn.cast_rays(scene, 96, 128)
    shadow = syn.cast_shadows(scene, hits)
    changed = np.any(syn.render(scene, 96, 128, cues_off=("cast shadows",))["image"]
                     != syn.render(scene, 96, 128)["image"], axis=-1)
    assert changed.any() and not (changed & ~shadow).any()


def test_flat_shading_gives_every_lit_pixel_one_brightness():
    scene = scene_with_every_removable_cue()
    hits = syn.cast_rays(scene, 96, 128)
    shadow = syn.cast_shadows(scene, hits)
    lit = syn.lambert(scene, hits, shadow)
    flat = syn.lambert(scene, hits, shadow, flat=True)
    assert len(np.unique(lit[~shadow])) > 1 and len(np.unique(flat[~shadow])) == 1
    np.testing.assert_array_equal(flat[shadow], lit[shadow])  # shadows stay (their own switch)


def test_uniform_texture_density_removes_the_gradient():
    """The checker floor of test_floor_texture_gets_denser_with_distance: as many edges near as far."""
    scene = plain_scene(pitch=np.radians(-15))
    scene.materials[syn.FLOOR] = Material("checker", np.zeros(3, np.float32), np.ones(3, np.float32), 0.3, 3)
    hits = syn.cast_rays(scene, 240, 320)
    parity = syn.texture_weights(scene, hits, uniform_density=True) > 0.5
    floor_rows = np.nonzero((hits["surface"] == syn.FLOOR).all(axis=1))[0]
    edges = [np.count_nonzero(np.diff(parity[row])) for row in (floor_rows.max(), floor_rows.min())]
    assert edges[0] > 0 and abs(edges[1] - edges[0]) <= 2


def test_cue_scenes_are_their_own_deterministic_stream():
    a, b = syn.cue_scenes(3, seed=1), syn.cue_scenes(3, seed=1)
    assert all(np.array_equal(syn.render(x, 32, 48)["image"], syn.render(y, 32, 48)["image"]) for x, y in zip(a, b))
    nyu_like = syn.render_scene(syn.scene_rng(1, 0, 0), 32, 48)
    assert not np.array_equal(syn.render(a[0], 32, 48)["depth"], nyu_like["depth"])


# ----------------------------------------------------------------------------------------------
# DIW-style pairs
# ----------------------------------------------------------------------------------------------

def test_sample_pair_follows_its_constraints():
    out = syn.render_scene(np.random.default_rng(5), 240, 320)
    depth = out["depth"]
    for lower_closer in (True, False):
        for a_farther in (True, False):
            rng = np.random.default_rng(int(lower_closer) * 2 + int(a_farther))
            ya, xa, yb, xb = syn.sample_pair(depth, rng, lower_closer, a_farther)
            za, zb = depth[ya, xa], depth[yb, xb]
            assert (za > zb) == a_farther
            assert max(za, zb) / min(za, zb) >= 1.05
            assert np.hypot(ya - yb, xa - xb) >= 0.1 * np.hypot(240, 320)
            for y, x in ((ya, xa), (yb, xb)):
                assert 2 <= y < 238 and 2 <= x < 318
            lower_near = za < zb if ya > yb else zb < za
            assert lower_near == lower_closer


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_diw_pair_statistics_avoid_the_trivial_biases(tmp_path):
    paths = syn.make_synthetic(tmp_path / "stats", n_nyu=1, n_diw=60, seed=1, size=(48, 64))
    records = csv_records(paths["diw_csv"])
    assert len(records) == 60
    lower_closer, a_farther, centres = [], [], 0
    for _, (ya, xa, yb, xb, rel, w, h) in records:
        ya, xa, yb, xb, w, h = map(int, (ya, xa, yb, xb, w, h))
        assert rel in "<>"
        a_is_lower = ya > yb
        a_closer = rel == "<"
        lower_closer.append(a_closer if a_is_lower else not a_closer)
        a_farther.append(rel == ">")
        assert np.hypot(ya - yb, xa - xb) >= 0.1 * np.hypot(w, h)
        assert 1 < ya < h and 1 < xa < w and 1 < yb < h and 1 < xb < w  # 1-based, off the border
        centres += abs(ya - h / 2) < 0.05 * h and abs(xa - w / 2) < 0.05 * w
    assert 0.3 <= np.mean(lower_closer) <= 0.7
    assert 0.3 <= np.mean(a_farther) <= 0.7
    assert centres < 10  # A is a random point, not the image centre
    assert len({tuple(r[1][:2]) for r in records}) > 50


def test_sample_pair_meets_the_position_requests():
    depth = syn.render_scene(np.random.default_rng(8), 240, 320)["depth"]
    prior = syn.position_prior()
    for k, (lower_closer, central_farther, prior_agrees) in enumerate(np.ndindex(2, 2, 2)):
        rng = np.random.default_rng(k)
        ya, xa, yb, xb = syn.sample_pair(depth, rng, bool(lower_closer), True, central_farther=bool(central_farther),
                                         prior_agrees=bool(prior_agrees), prior=prior)
        assert depth[ya, xa] > depth[yb, xb]  # a_farther
        assert (ya > yb) != bool(lower_closer)  # A farther, so A is the lower point iff the lower one is farther
        ra, rb = (np.hypot((y + 0.5) / 240 - 0.5, (x + 0.5) / 320 - 0.5) for y, x in ((ya, xa), (yb, xb)))
        # "lower farther, more central closer" (or the reverse) contradicts the prior's ordering itself:
        # there the centre request, weighing least, gives way (the two cases cancel over a dataset)
        if lower_closer != central_farther or prior_agrees == lower_closer:
            assert (ra < rb) == bool(central_farther)
        pa, pb = syn.prior_at(prior, np.array([ya, yb]), np.array([xa, xb]), 240, 320)
        assert (pa > pb) == bool(prior_agrees)


def test_position_prior_is_fixed_and_looks_like_a_room():
    prior = syn.position_prior()
    assert prior.shape == (syn.PRIOR_GRID, syn.PRIOR_GRID) and np.isfinite(prior).all()
    assert np.array_equal(prior, syn.position_prior.__wrapped__())  # the same map when computed again
    g = syn.PRIOR_GRID
    assert prior[g // 2, g // 2] > prior[-1, g // 2]  # the centre (back wall) is farther than the floor below
    assert prior[g // 2, g // 2] > prior[g // 2, 0]   # ... and than the side walls


def test_balanced_flags_balance_every_combination():
    flags = syn.balanced_flags(64, np.random.default_rng(0), 3)
    assert flags.shape == (64, 3) and flags.dtype == bool
    combos, counts = np.unique(flags, axis=0, return_counts=True)
    assert len(combos) == 8 and set(counts) == {8}
    assert not np.array_equal(flags, syn.balanced_flags(64, np.random.default_rng(1), 3))  # shuffled by the rng
    assert syn.balanced_flags(5, np.random.default_rng(0)).sum() in (2, 3)


def test_diw_records_are_deterministic():
    flags = syn.diw_flags(3, seed=2, stream=1)
    assert flags == syn.diw_flags(3, seed=2, stream=1) and set(flags[0]) == set(syn.PAIR_FLAGS)
    a, b = (syn.diw_record(2, 1, 1, flags[1], scale=0.2) for _ in range(2))
    assert a["pair"] == b["pair"] and a["relation"] == b["relation"] and np.array_equal(a["image"], b["image"])


N_FAIR, GRID = 480, 32


@pytest.fixture(scope="module")
def fair_records() -> list[dict]:
    """480 DIW-layout records of one partition, drawn at a quarter of the size (same scenes, same sampler)."""
    flags = syn.diw_flags(N_FAIR, seed=0, stream=1)
    return [syn.diw_record(0, 1, i, flags[i], scale=0.25) for i in range(N_FAIR)]


def mean_map_accuracy(records: list[dict], n_train: int) -> float:
    """Accuracy of the mean-depth-map baseline: the mean of the first ``n_train`` true depth maps
    (each resized to GRID x GRID), scored on the other records' pairs by sign(z_A - z_B) == relation."""
    cells = (np.arange(GRID) + 0.5) / GRID

    def on_grid(depth):
        h, w = depth.shape
        return depth[(cells * h).astype(int)][:, (cells * w).astype(int)]

    mean = np.mean([on_grid(r["depth"]) for r in records[:n_train]], axis=0)
    correct = []
    for r in records[n_train:]:
        h, w = r["depth"].shape
        ya, xa, yb, xb = r["pair"]
        za, zb = mean[int(ya / h * GRID), int(xa / w * GRID)], mean[int(yb / h * GRID), int(xb / w * GRID)]
        correct.append(np.sign(za - zb) == (1 if r["relation"] == ">" else -1))
    return float(np.mean(correct))


def test_position_alone_orders_diw_pairs_at_chance(fair_records):
    """A predictor that knows only where the points are (the training-set mean depth map) scores ~50 %."""
    accuracy = mean_map_accuracy(fair_records, n_train=N_FAIR // 2)
    assert 0.42 <= accuracy <= 0.58, f"mean-depth-map baseline orders {100 * accuracy:.1f} % of DIW pairs"


def test_simple_position_rules_order_diw_pairs_at_chance(fair_records):
    """Neither "the lower point is closer" nor "the point nearer the centre is farther" beats chance."""
    lower_closer, central_farther, a_farther = [], [], []
    for r in fair_records:
        h, w = r["depth"].shape
        ya, xa, yb, xb = r["pair"]
        farther = r["relation"] == ">"
        lower_closer.append(farther != (ya > yb))
        ra, rb = (np.hypot((y + 0.5) / h - 0.5, (x + 0.5) / w - 0.5) for y, x in ((ya, xa), (yb, xb)))
        central_farther.append(farther == (ra < rb))
        a_farther.append(farther)
    for name, hits in [("lower point closer", lower_closer), ("central point farther", central_farther),
                       ("A farther", a_farther)]:
        assert 0.42 <= np.mean(hits) <= 0.58, f"{name}: {100 * np.mean(hits):.1f} %"


# ----------------------------------------------------------------------------------------------
# Files in the real layouts
# ----------------------------------------------------------------------------------------------

def test_nyu_mat_has_the_real_layout(small_set):
    with h5py.File(small_set["nyu"], "r") as f:
        assert f["images"].shape == (6, 3, 640, 480) and f["images"].dtype == np.uint8
        assert f["depths"].shape == (6, 640, 480) and f["depths"].dtype == np.float32
        first_image, first_depth = f["images"][0], f["depths"][0]
    scene = rendered(0, 0, seed=3, size=(480, 640))
    np.testing.assert_array_equal(first_image, scene["image"].transpose(2, 1, 0))
    np.testing.assert_array_equal(first_depth, scene["depth"].T)
    with open(small_set["nyu"], "rb") as f:
        assert f.read(19) == b"MATLAB 7.3 MAT-file"
    assert h5py.is_hdf5(small_set["nyu"])


def test_nyu_mat_reads_back_through_the_real_reader(small_set):
    data = pytest.importorskip("depthkit.data")
    images, depths = data.read_nyu_mat(small_set["nyu"], indices=[4, 1])
    assert images.shape == (2, 480, 640, 3) and depths.shape == (2, 480, 640)
    for got_image, got_depth, index in zip(images, depths, (4, 1)):
        scene = rendered(0, index, seed=3, size=(480, 640))
        np.testing.assert_array_equal(got_image, scene["image"])  # not mirrored on the diagonal
        np.testing.assert_array_equal(got_depth, scene["depth"])


def test_splits_file_has_the_official_format(small_set):
    splits = json.loads(small_set["nyu_splits"].read_text())
    assert set(splits) == {"about", "train", "test"} and isinstance(splits["about"], str)
    assert sorted(splits["train"] + splits["test"]) == list(range(1, 7))  # 1-based, every scene once
    assert len(splits["test"]) == 1 and splits["train"] == sorted(splits["train"])
    data = pytest.importorskip("depthkit.data")
    np.testing.assert_array_equal(data.nyu_split("test", small_set["nyu_splits"]), np.array(splits["test"]) - 1)


def test_diw_csv_layout_and_images(small_set):
    records = csv_records(small_set["diw_csv"])
    assert len(records) == 6
    sizes = set()
    for i, (image_line, fields) in enumerate(records):
        assert image_line.startswith("/synthetic/DIW/DIW_test/") and image_line.endswith(".thumb")
        assert len(fields) == 7 and fields[4] in ("<", ">")
        image_path = small_set["diw_root"] / "DIW_test" / Path(image_line).name
        with Image.open(image_path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (int(fields[5]), int(fields[6]))  # width, height
            sizes.add(im.size)
        assert 320 <= int(fields[5]) <= 512 and 240 <= int(fields[6]) <= 400
    assert len(sizes) > 1


def test_diw_csv_reads_through_the_real_reader_and_agrees_with_depth(small_set):
    data = pytest.importorskip("depthkit.data")
    for csv_key, partition, stream, n in (("diw_csv", "DIW_test", 1, 6), ("diw_train_csv", "DIW_train", 2, 3),
                                          ("diw_val_csv", "DIW_val", 4, 1)):
        pairs = data.read_diw_csv(small_set[csv_key], image_root=small_set["diw_root"])
        assert len(pairs) == n
        for i, pair in enumerate(pairs):
            scene = rendered(stream, i, seed=3)
            assert pair.image == small_set["diw_root"] / partition / pair.image.name
            assert (pair.height, pair.width) == scene["depth"].shape
            za, zb = scene["depth"][pair.ya, pair.xa], scene["depth"][pair.yb, pair.xb]
            assert pair.relation == (1 if za > zb else -1)
            assert data.load_rgb(pair.image).shape == (pair.height, pair.width, 3)
    test_names = {p.image.name for p in data.read_diw_csv(small_set["diw_csv"])}
    train_names = {p.image.name for p in data.read_diw_csv(small_set["diw_train_csv"])}
    val_names = {p.image.name for p in data.read_diw_csv(small_set["diw_val_csv"])}
    assert not test_names & val_names and not test_names & train_names and not train_names & val_names


# ----------------------------------------------------------------------------------------------
# make_synthetic: reuse, regeneration, atomic writes
# ----------------------------------------------------------------------------------------------

def file_times(root: Path) -> dict[str, int]:
    """Modification time of every file under ``root``."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_second_call_reuses_the_files(tmp_path):
    root = tmp_path / "reuse"
    args = dict(n_nyu=2, n_diw=3, seed=0, size=(48, 64))
    first = syn.make_synthetic(root, **args)
    before = file_times(root)
    start = time.perf_counter()
    second = syn.make_synthetic(root, **args)
    assert time.perf_counter() - start < 0.5
    assert first == second and file_times(root) == before
    assert not list(root.rglob("*.tmp"))


def test_changed_arguments_or_missing_files_regenerate(tmp_path):
    root = tmp_path / "regen"
    syn.make_synthetic(root, n_nyu=2, n_diw=5, seed=0, size=(48, 64))
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "r") as f:
        old_depth = f["depths"][0]
    syn.make_synthetic(root, n_nyu=2, n_diw=3, seed=1, size=(48, 64))
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "r") as f:
        assert not np.array_equal(f["depths"][0], old_depth)
    assert len(list((root / "diw" / "DIW_test").glob("*.thumb"))) == 3  # the old, larger set is gone
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["arguments"]["seed"] == 1
    victim = next((root / "diw" / "DIW_test").glob("*.thumb"))
    victim.unlink()
    syn.make_synthetic(root, n_nyu=2, n_diw=3, seed=1, size=(48, 64))
    assert victim.exists()


def test_threads_do_not_change_the_data(tmp_path):
    one = syn.make_synthetic(tmp_path / "one", n_nyu=3, n_diw=3, size=(48, 64), workers=1)
    two = syn.make_synthetic(tmp_path / "two", n_nyu=3, n_diw=3, size=(48, 64), workers=2)
    with h5py.File(one["nyu"], "r") as a, h5py.File(two["nyu"], "r") as b:
        np.testing.assert_array_equal(a["images"][:], b["images"][:])
        np.testing.assert_array_equal(a["depths"][:], b["depths"][:])
    assert one["diw_csv"].read_text() == two["diw_csv"].read_text()


def test_a_crash_mid_write_leaves_the_old_files_intact(tmp_path, monkeypatch):
    root = tmp_path / "crash"
    paths = syn.make_synthetic(root, n_nyu=3, n_diw=2, seed=0, size=(48, 64))
    good = paths["nyu"].read_bytes()
    real_render = syn.render_scene

    def failing_render(rng, height=480, width=640):
        """render_scene that crashes on its third call."""
        if failing_render.calls == 2:
            raise RuntimeError("simulated crash")
        failing_render.calls += 1
        return real_render(rng, height, width)

    failing_render.calls = 0
    monkeypatch.setattr(syn.writers, "render_scene", failing_render)  # the name the writers call
    with pytest.raises(RuntimeError, match="simulated crash"):
        syn.make_synthetic(root, n_nyu=3, n_diw=2, seed=7, size=(48, 64), workers=1)
    assert paths["nyu"].read_bytes() == good
    assert not list(root.rglob("*.tmp"))
    assert not (root / "manifest.json").exists()  # the next call regenerates
    monkeypatch.undo()
    syn.make_synthetic(root, n_nyu=3, n_diw=2, seed=7, size=(48, 64))
    assert paths["nyu"].read_bytes() != good


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_nyu"):
        syn.make_synthetic(tmp_path / "bad", n_nyu=0)
    with pytest.raises(ValueError, match="size"):
        syn.make_synthetic(tmp_path / "bad", n_nyu=1, n_diw=1, size=(8, 8))


# ----------------------------------------------------------------------------------------------
# The package's layout: one module per concern, no import circle
# ----------------------------------------------------------------------------------------------

LAYERS = ("scenes", "geometry", "cues", "rendering", "pairs", "writers")  # each imports only earlier ones


def test_submodules_import_only_earlier_layers_and_say_what_they_hold():
    import ast
    import importlib

    for i, name in enumerate(LAYERS):
        module = importlib.import_module(f"depthkit.synthetic.{name}")
        tree = ast.parse(Path(module.__file__).read_text())
        assert ast.get_docstring(tree), f"depthkit/synthetic/{name}.py has no module docstring"
        modules = [f"{node.module}.{alias.name}" if node.module == "depthkit" else node.module or ""
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names]
        modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported = {m.split(".")[2] if m.count(".") >= 2 else "__init__"
                    for m in modules if m.startswith("depthkit.synthetic")}
        later = imported - set(LAYERS[:i])
        assert not later, f"depthkit/synthetic/{name}.py imports {sorted(later)}: a later layer or itself (a circle)"


def test_the_package_re_exports_the_public_names():
    import inspect

    assert inspect.isfunction(syn.render) and syn.render is syn.rendering.render  # not the module
    for name in LAYERS:
        module = getattr(syn, name)
        public = [n for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)
                  and (getattr(v, "__module__", None) == module.__name__ or n.isupper())]
        missing = [n for n in public if getattr(syn, n, None) is not getattr(module, n)]
        assert not missing, f"depthkit.synthetic does not re-export {missing} from {name}.py"
