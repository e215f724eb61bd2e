"""Synthetic "depth-cue" rooms: the embedded default dataset, written in the real file layouts.

No machine in this project can download NYU Depth V2 or DIW, so depthkit draws its own scenes: a
box-shaped room seen by a pinhole camera, with a few boxes standing on the floor. Every scene is
drawn from a seed, and its depth is exact: each pixel's ray is intersected with the floor, the
ceiling, the walls and every box (``cast_rays``), and the nearest hit gives the depth in metres
(the camera-z distance, like a Kinect; larger = farther).

The images carry the monocular depth cues that the report's introduction lists:

* **perspective** - the floor, ceiling and wall edges converge towards vanishing points; the
  floor's depth grows steadily from the bottom of the image towards the horizon;
* **occlusion** - boxes stand in front of the walls and often in front of other boxes;
* **relative size** - in many rooms the boxes share one size, so a farther box looks smaller;
* **texture gradient** - every surface is textured in *world* coordinates (tiles, planks,
  stripes, noise), so its pattern gets denser with distance;
* **shading** - Lambertian shading from one light direction: each box face has its own brightness;
* **cast shadows** - the boxes cast hard shadows (shadow rays towards the light);
* **haze** - colours fade towards a grey-blue fog with distance (aerial perspective).

**Switching cues off.** ``render(scene, h, w, cues_off=(...))`` (and ``render_scene``) draws the same
scene with some cues removed, to ask which ones a trained network relies on. The depth map does
not change; only the picture does. The switches (``REMOVABLE_CUES``):

* ``"haze"`` - no fog: every surface keeps its full colour at any distance;
* ``"shading"`` - flat shading instead of Lambertian: every lit pixel gets the same brightness
  (ambient + the image's mean direct light), so faces no longer differ by their angle to the light;
  cast shadows stay, unless switched off too;
* ``"cast shadows"`` - no shadow rays: every pixel gets its direct light;
* ``"texture gradient"`` - uniform texture density: each surface keeps its pattern and colours,
  but the pattern is laid in *screen* coordinates at the density it would have 3 m away
  (``FLAT_TEXTURE_DEPTH``), so it no longer gets denser with distance nor foreshortened by the
  surface's slant (a wallpaper seen through the room's outline).

What no switch can remove (``GEOMETRIC_CUES``): **perspective**, **occlusion** and **relative
size** are the geometry of the scene and the camera, i.e. the depth map itself. The outlines of
floor, walls and boxes still converge, nearer boxes still hide farther ones and a farther box of
the same size still looks smaller; removing them would need another scene with another depth.
Each surface also keeps its own colours, so region boundaries (and with them the layout) stay.

``render_scene`` draws one scene; ``make_synthetic`` writes a whole dataset in the layouts of the
real files, so that ``depthkit.data`` reads it with the very code it uses for the real data:

* ``root/nyu_depth_v2_labeled.mat`` - MATLAB v7.3 = HDF5: ``images`` (N, 3, 640, 480) uint8 and
  ``depths`` (N, 640, 480) float32 metres, stored transposed as MATLAB does; ``root/splits.json``;
* ``root/diw/DIW_test/<name>.thumb`` JPEGs and ``root/diw/DIW_test.csv``: per image, its path and
  one line ``y_A,x_A,y_B,x_B,<relation>,width,height`` (1-based; ``>`` = A is farther).

The DIW-style point pairs avoid the shortcuts that Chen et al. (2016) warn about: both points are
random (not the image centre), ``>`` and ``<`` are 50/50, no pair has nearly equal depths (DIW has
no "equal" pairs), and *where* the two points lie says nothing about the answer: "the lower point
is the closer one", "the point nearer the centre is the farther one" and the mean depth map of
the scenes (``position_prior``) each order half of the pairs rightly, so a predictor that sees
only positions, such as the training-set mean depth map, scores about 50 %.

A call with the same arguments as the last one finds ``root/manifest.json`` and returns at once.
"""
from __future__ import annotations

import colorsys
import csv
import functools
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from depthkit.files import atomic_write, atomic_write_bytes

CUES = ("perspective", "occlusion", "relative size", "texture gradient", "shading", "cast shadows", "haze")
# cues ``render(..., cues_off=...)`` can remove without changing the depth, and what each switch does
REMOVABLE_CUES = {
    "texture gradient": "uniform texture density: patterns laid in screen space, as dense as at 3 m everywhere",
    "shading": "flat shading: one brightness for every lit pixel instead of Lambert's cosine per face",
    "cast shadows": "no cast shadows: no shadow rays, every pixel receives its direct light",
    "haze": "no haze: colours do not fade towards the fog with distance",
}
# cues that are the scene's geometry (= its depth): no rendering switch can remove them
GEOMETRIC_CUES = {
    "perspective": "the camera's projection: edges converge and the floor rises towards the horizon",
    "occlusion": "which surface is nearest along each ray is what the depth map records",
    "relative size": "a box's size in the image follows from its distance",
}
FLAT_TEXTURE_DEPTH = 3.0  # metres: with "texture gradient" off, every pattern is as dense as at this depth
GENERATOR_VERSION = 4  # bump when the pictures, pairs or partitions change: make_synthetic then regenerates

# Surface ids in the per-pixel surface map: the room's six sides, then one id per box. A room side's
# id is also its face number, 2 * axis + (1 if rays reach it travelling towards +axis): the left
# wall (x = min) is face 0, the right wall 1, floor 2, ceiling 3, front wall 4 (behind the camera),
# back wall 5.
LEFT_WALL, RIGHT_WALL, FLOOR, CEILING, FRONT_WALL, BACK_WALL = range(6)
FIRST_BOX = 6
FOCAL_SCALE = 0.8  # focal length in pixels = 0.8 * image width (about 64 degrees horizontal view)


# --------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------

@dataclass
class Material:
    """A procedural texture defined in world metres: ``pattern`` mixes ``colour_a`` and ``colour_b``."""

    pattern: str  # "tiles" | "planks" | "stripes" | "checker" | "noise"
    colour_a: np.ndarray  # RGB in [0, 1]
    colour_b: np.ndarray
    scale: float  # metres per tile / plank / stripe / noise cell
    seed: int  # varies per-tile brightness and noise between materials


@dataclass
class Box:
    """An axis-aligned box standing on the floor, from corner ``lo`` to corner ``hi`` (metres)."""

    lo: np.ndarray
    hi: np.ndarray
    material: Material

    def corners(self) -> np.ndarray:
        """The eight corners, shape (8, 3)."""
        return np.array([[x, y, z] for x in (self.lo[0], self.hi[0])
                         for y in (self.lo[1], self.hi[1]) for z in (self.lo[2], self.hi[2])])


@dataclass
class Camera:
    """A pinhole camera at ``position``, turned by ``yaw`` (left/right) and ``pitch`` (up/down), radians."""

    position: np.ndarray
    yaw: float
    pitch: float

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors (right, up, forward) of the camera in world coordinates."""
        cy, sy, cp, sp = np.cos(self.yaw), np.sin(self.yaw), np.cos(self.pitch), np.sin(self.pitch)
        forward = np.array([sy * cp, sp, cy * cp])
        right = np.array([cy, 0.0, -sy])
        return right, np.cross(forward, right), forward


@dataclass
class Scene:
    """A room (x across, y up, z away from the camera), its boxes, the camera, light and haze."""

    room_lo: np.ndarray
    room_hi: np.ndarray
    camera: Camera
    boxes: list[Box]
    materials: dict[int, Material]  # one per room surface id (LEFT_WALL ... BACK_WALL)
    light: np.ndarray  # unit vector pointing *towards* the light
    ambient: float
    haze: float  # fog density per metre
    fog_colour: np.ndarray
    same_size_boxes: bool = False  # all boxes share one size: the relative-size cue


def random_colour(rng: np.random.Generator, saturation=(0.1, 0.7), value=(0.45, 0.95)) -> np.ndarray:
    """A random RGB colour in [0, 1] with saturation and value drawn from the given ranges."""
    h = rng.random()
    s = rng.uniform(*saturation)
    v = rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def random_material(rng: np.random.Generator, patterns: tuple[str, ...], scale=(0.2, 0.6)) -> Material:
    """A material with one of ``patterns``, two related colours and a world-space scale."""
    a = random_colour(rng)
    b = np.clip(a * rng.uniform(0.45, 0.8) + rng.uniform(-0.08, 0.08, 3), 0, 1).astype(np.float32)
    if rng.random() < 0.5:
        a, b = b, a
    return Material(str(rng.choice(patterns)), a, b, float(rng.uniform(*scale)), int(rng.integers(1 << 16)))


def random_room(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Room corners: 3-6 m wide, 2.4-3.2 m high, back wall 4-8.5 m in front of the camera."""
    width, height, depth = rng.uniform(3.0, 6.0), rng.uniform(2.4, 3.2), rng.uniform(4.0, 8.5)
    return np.array([-width / 2, 0.0, -0.5]), np.array([width / 2, height, depth])


def random_camera(rng: np.random.Generator, room_lo: np.ndarray, room_hi: np.ndarray) -> Camera:
    """A camera 1.2-1.7 m above the floor near the front wall, looking slightly down into the room."""
    x = rng.uniform(0.25 * room_lo[0], 0.25 * room_hi[0])
    position = np.array([x, rng.uniform(1.2, 1.7), 0.0])
    return Camera(position, yaw=np.radians(rng.uniform(-12, 12)), pitch=np.radians(rng.uniform(-20, -4)))


def random_box_size(rng: np.random.Generator) -> np.ndarray:
    """Width, height and depth of a box in metres."""
    return np.array([rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.2)])


def _footprints_overlap(a: Box, lo: np.ndarray, hi: np.ndarray, gap: float = 0.1) -> bool:
    """True when box ``a`` and the box ``lo``-``hi`` overlap on the floor (with a small gap)."""
    return bool(np.all(lo[[0, 2]] < a.hi[[0, 2]] + gap) and np.all(hi[[0, 2]] > a.lo[[0, 2]] - gap))


def random_boxes(rng: np.random.Generator, room_lo: np.ndarray, room_hi: np.ndarray, camera: Camera,
                 same_size: bool) -> list[Box]:
    """1-6 boxes on the floor inside the view; some are put right behind an earlier one (occlusion)."""
    half_fov = np.arctan(0.5 / FOCAL_SCALE)
    base_size = random_box_size(rng)
    boxes: list[Box] = []
    for _ in range(int(rng.integers(1, 7))):
        size = base_size.copy() if same_size else random_box_size(rng)
        for _attempt in range(20):
            if boxes and rng.random() < 0.5:  # behind an earlier box, along the same line of sight
                front = boxes[int(rng.integers(len(boxes)))]
                centre = (front.lo + front.hi) / 2
                ray = centre[[0, 2]] - camera.position[[0, 2]]
                ray /= np.linalg.norm(ray)
                x, z = centre[[0, 2]] + ray * rng.uniform(0.8, 2.5) + np.array([rng.uniform(-0.4, 0.4), 0.0])
            else:
                z = rng.uniform(1.4, room_hi[2] - 0.3)
                angle = camera.yaw + rng.uniform(-0.8, 0.8) * half_fov
                x = camera.position[0] + np.tan(angle) * (z - camera.position[2])
            lo = np.array([x - size[0] / 2, 0.0, z - size[2] / 2])
            hi = np.array([x + size[0] / 2, size[1], z + size[2] / 2])
            inside = (lo[0] > room_lo[0] + 0.05 and hi[0] < room_hi[0] - 0.05 and hi[2] < room_hi[2] - 0.05
                      and lo[2] > 0.8 + size[1] and hi[1] < room_hi[1] - 0.3)  # tall boxes stand farther away
            if inside and not any(_footprints_overlap(b, lo, hi) for b in boxes):
                material = random_material(rng, ("checker", "stripes", "noise", "planks"), scale=(0.08, 0.3))
                boxes.append(Box(lo, hi, material))
                break
    return boxes


def random_light(rng: np.random.Generator) -> np.ndarray:
    """Unit vector towards a light high above (35-65 degrees), from any side."""
    elevation, azimuth = np.radians(rng.uniform(35, 65)), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
    light[[0, 2]] = np.where(np.abs(light[[0, 2]]) < 1e-3, 1e-3, light[[0, 2]])  # no zero component
    return light / np.linalg.norm(light)


def random_scene(rng: np.random.Generator) -> Scene:
    """Draw a room, a camera, boxes, materials, a light and haze from ``rng``."""
    room_lo, room_hi = random_room(rng)
    camera = random_camera(rng, room_lo, room_hi)
    same_size = bool(rng.random() < 0.4)
    boxes = random_boxes(rng, room_lo, room_hi, camera, same_size)
    wall = random_material(rng, ("stripes", "noise", "tiles"), scale=(0.1, 0.4))
    floor = random_material(rng, ("tiles", "planks", "checker"), scale=(0.25, 0.7))
    back_wall = random_material(rng, ("stripes", "noise", "tiles"), scale=(0.1, 0.4)) if rng.random() < 0.5 else wall
    ceiling = Material("noise", np.full(3, 0.9, np.float32), np.full(3, 0.8, np.float32), 0.5, 7)
    materials = {LEFT_WALL: wall, RIGHT_WALL: wall, FLOOR: floor, CEILING: ceiling, FRONT_WALL: wall,
                 BACK_WALL: back_wall}
    fog = np.clip(np.array([0.68, 0.74, 0.82]) + rng.uniform(-0.05, 0.05, 3), 0, 1).astype(np.float32)
    return Scene(room_lo, room_hi, camera, boxes, materials, light=random_light(rng),
                 ambient=float(rng.uniform(0.35, 0.5)), haze=float(rng.uniform(0.02, 0.08)),
                 fog_colour=fog, same_size_boxes=same_size)


# --------------------------------------------------------------------------------------------
# Ray casting: exact depth
# --------------------------------------------------------------------------------------------

def camera_rays(camera: Camera, height: int, width: int) -> np.ndarray:
    """World directions of every pixel's ray, shape (3, H, W), scaled so that the forward part is 1.

    With this scaling the ray parameter t of a hit *is* its depth (the camera-z distance).
    """
    focal = FOCAL_SCALE * width
    xs = ((np.arange(width) + 0.5 - width / 2) / focal).astype(np.float32)
    ys = (-(np.arange(height) + 0.5 - height / 2) / focal).astype(np.float32)
    right, up, forward = (v.astype(np.float32) for v in camera.axes())
    rays = (right[:, None, None] * xs[None, None, :] + up[:, None, None] * ys[None, :, None]
            + forward[:, None, None])
    rays[rays == 0] = np.float32(1e-12)  # no exact zeros: every 1 / direction stays finite
    return rays


def project(camera: Camera, points: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel column, row and depth of world ``points`` (N, 3)."""
    right, up, forward = camera.axes()
    rel = points - camera.position
    z = rel @ forward
    focal = FOCAL_SCALE * width
    with np.errstate(divide="ignore", invalid="ignore"):
        col = width / 2 + focal * (rel @ right) / z - 0.5
        row = height / 2 - focal * (rel @ up) / z - 0.5
    return col, row, z


def screen_window(camera: Camera, points: np.ndarray, height: int, width: int) -> tuple[slice, slice] | None:
    """Rows and columns of the image rectangle that contains the projection of ``points``.

    Returns the whole image when a point lies behind the camera, and None when the rectangle
    lies outside the image. Boxes cover a small part of the picture, so testing only the rays
    inside their rectangle makes ray casting several times faster.
    """
    col, row, z = project(camera, points, height, width)
    if np.any(z <= 1e-3):
        return slice(0, height), slice(0, width)
    r0, r1 = max(int(np.floor(row.min())) - 1, 0), min(int(np.ceil(row.max())) + 2, height)
    c0, c1 = max(int(np.floor(col.min())) - 1, 0), min(int(np.ceil(col.max())) + 2, width)
    if r0 >= r1 or c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)


def slab_test(origin: np.ndarray | list[np.ndarray], inv_dir: list[np.ndarray], lo: np.ndarray,
              hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Ray / axis-aligned box intersection ("slab method").

    Returns the entry t, the exit t (the ray hits the box when entry <= exit) and, per axis, the t
    where the ray enters that axis' slab (the largest of them tells which face was hit).
    """
    t_in, t_out = [], []
    for a in range(3):
        t1 = (np.float32(lo[a]) - origin[a]) * inv_dir[a]
        t2 = (np.float32(hi[a]) - origin[a]) * inv_dir[a]
        t_in.append(np.minimum(t1, t2))
        t_out.append(np.maximum(t1, t2))
    t_enter = np.maximum(np.maximum(t_in[0], t_in[1]), t_in[2])
    t_exit = np.minimum(np.minimum(t_out[0], t_out[1]), t_out[2])
    return t_enter, t_exit, t_in


def face_index(t_axes: list[np.ndarray], t_hit: np.ndarray, direction: list[np.ndarray]) -> np.ndarray:
    """Which face a ray hit: 2 * axis + (1 if the ray travels towards +axis), from the per-axis t's.

    A ray travelling towards +x hits a face whose normal points to -x, and so on.
    """
    on_x = t_axes[0] == t_hit
    on_y = ~on_x & (t_axes[1] == t_hit)
    on_z = ~on_x & ~on_y
    positive = (on_x & (direction[0] > 0)) | (on_y & (direction[1] > 0)) | (on_z & (direction[2] > 0))
    return (on_y.view(np.int8) << 1) | (on_z.view(np.int8) << 2) | positive.view(np.int8)


def cast_room(scene: Scene, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and face (= room surface id) where each ray leaves the (convex, empty) room."""
    origin = scene.camera.position
    t_axes = []
    for a in range(3):
        wall = np.where(rays[a] > 0, np.float32(scene.room_hi[a]), np.float32(scene.room_lo[a]))
        t_axes.append((wall - np.float32(origin[a])) / rays[a])
    depth = np.minimum(np.minimum(t_axes[0], t_axes[1]), t_axes[2])
    return depth, face_index(t_axes, depth, list(rays))


def cast_rays(scene: Scene, height: int, width: int) -> dict[str, np.ndarray]:
    """Ray-cast the scene: per pixel depth (metres), surface id, face (normal) and world hit point.

    Also counts the pixels where one box hides part of another (the occlusion cue).
    """
    rays = camera_rays(scene.camera, height, width)
    depth, face = cast_room(scene, rays)
    surface = face.astype(np.int16)  # the room's surface ids are its face numbers
    origin = scene.camera.position.astype(np.float32)
    inv = [np.float32(1.0) / rays[a] for a in range(3)]
    box_overlap = 0
    for k, box in enumerate(scene.boxes):
        window = screen_window(scene.camera, box.corners(), height, width)
        if window is None:
            continue
        inv_window = [v[window] for v in inv]
        t_enter, t_exit, t_in = slab_test(origin, inv_window, box.lo, box.hi)
        hit = (t_enter <= t_exit) & (t_enter > 0)
        box_overlap += int(np.count_nonzero(hit & (surface[window] >= FIRST_BOX)))
        hit &= t_enter < depth[window]
        depth[window][hit] = t_enter[hit]
        surface[window][hit] = FIRST_BOX + k
        face[window][hit] = face_index(t_in, t_enter, inv_window)[hit]
    points = origin[:, None, None] + depth[None] * rays
    return {"depth": depth, "surface": surface, "face": face, "points": points,
            "box_overlap": np.int64(box_overlap)}


def cast_shadows(scene: Scene, hits: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean map of the pixels whose path to the light is blocked by a box (exact hard shadows)."""
    height, width = hits["depth"].shape
    shadow = np.zeros((height, width), dtype=bool)
    light = scene.light.astype(np.float32)
    inv = [np.float32(1.0) / light[a] for a in range(3)]
    to_floor = -scene.light / scene.light[1]  # a point at height y moves by y * to_floor onto the floor
    for k, box in enumerate(scene.boxes):
        corners = box.corners()
        volume = np.concatenate([corners, corners + corners[:, 1:2] * to_floor])  # the box and its shadow
        window = screen_window(scene.camera, volume, height, width)
        if window is None:
            continue
        points = [hits["points"][a][window] for a in range(3)]
        t_enter, t_exit, _ = slab_test(points, inv, box.lo, box.hi)
        shadow[window] |= (t_enter <= t_exit) & (t_exit > 1e-3) & (hits["surface"][window] != FIRST_BOX + k)
    return shadow


# --------------------------------------------------------------------------------------------
# Appearance: textures in world coordinates, shading, haze
# --------------------------------------------------------------------------------------------

TABLE = 256  # the noise tables are TABLE x TABLE and wrap around


@functools.lru_cache(maxsize=1)
def noise_tables() -> tuple[np.ndarray, np.ndarray]:
    """Two fixed, wrapping 256x256 tables in [0, 1]: smooth fractal noise and white noise (per tile)."""
    rng = np.random.default_rng(20240)
    f = np.fft.fftfreq(TABLE)
    k = np.hypot(f[:, None], f[None, :])
    k[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((TABLE, TABLE))) / k ** 1.6  # 1/f noise: clouds, stone
    spectrum[0, 0] = 0.0
    smooth = np.real(np.fft.ifft2(spectrum))
    smooth = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32).ravel()
    return smooth, rng.random(TABLE * TABLE).astype(np.float32)


def lookup(table: np.ndarray, i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """table[i, j] for non-negative integer arrays, wrapping around; ``seed`` shifts the pattern."""
    return table.take(((i + 17 * seed) & (TABLE - 1)) * TABLE + ((j + 31 * seed) & (TABLE - 1)))


def smooth_noise(u: np.ndarray, v: np.ndarray, seed: int, texels_per_unit: float = 32.0) -> np.ndarray:
    """Cloudy noise in [0, 1] at world coordinates (u, v), measured in texture units."""
    smooth, _ = noise_tables()
    i = (v * np.float32(texels_per_unit) + np.float32(1 << 20)).astype(np.int32)
    j = (u * np.float32(texels_per_unit) + np.float32(1 << 20)).astype(np.int32)
    return lookup(smooth, i, j, seed)


def texture(material: Material, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mix weight in [0, 1] of ``colour_b`` at world texture coordinates (u, v) in metres."""
    _, white = noise_tables()
    a = u / np.float32(material.scale) + np.float32(1 << 12)  # in cells; the offset keeps them positive
    b = v / np.float32(material.scale) + np.float32(1 << 12)
    cell_a, cell_b = np.floor(a), np.floor(b)
    ia, ib = cell_a.astype(np.int32), cell_b.astype(np.int32)  # cell numbers
    seed = material.seed
    if material.pattern == "checker":
        parity = ((ia + ib) & 1).astype(np.float32)
        return 0.8 * parity + 0.2 * smooth_noise(a, b, seed, 64)
    if material.pattern == "tiles":  # tiles of varying brightness with dark grout lines
        grout = (a - cell_a < 0.06) | (b - cell_b < 0.06)
        return np.where(grout, np.float32(1.0), 0.5 * lookup(white, ia, ib, seed))
    if material.pattern == "planks":  # boards 4 cells long, staggered, each its own shade, wood grain
        along = b / 4 + 0.5 * (ia & 1).astype(np.float32)
        board = np.floor(along)
        seam = (a - cell_a < 0.05) | (along - board < 0.01)
        shade = 0.6 * lookup(white, ia, board.astype(np.int32), seed) + 0.3 * smooth_noise(a * 4, b / 2, seed)
        return np.where(seam, np.float32(1.0), shade)
    if material.pattern == "stripes":
        return 0.7 * (ia & 1).astype(np.float32) + 0.3 * smooth_noise(a, b, seed)
    return smooth_noise(a, b, seed, 16)  # "noise"


def texture_weights(scene: Scene, hits: dict[str, np.ndarray], uniform_density: bool = False) -> np.ndarray:
    """Per pixel mix weight of each surface's texture, (H, W) float32.

    Texture coordinates are world coordinates along the surface: (z, y) on faces across x, (x, z)
    on floor, ceiling and box tops, (x, y) on faces across z. So a pattern keeps its size in metres
    and looks denser the farther away it is: the texture gradient cue. With ``uniform_density`` the
    coordinates are the pixel's position on the image plane scaled to ``FLAT_TEXTURE_DEPTH`` metres
    instead: the same patterns, equally dense everywhere (the cue switched off).
    """
    surface, axis = hits["surface"].ravel(), hits["face"].ravel() // 2
    x, y, z = (c.ravel() for c in hits["points"])
    if uniform_density:
        height, width = hits["surface"].shape
        metres = np.float32(FLAT_TEXTURE_DEPTH / (FOCAL_SCALE * width))  # one pixel, seen FLAT_TEXTURE_DEPTH away
        rows, cols = np.indices((height, width), dtype=np.float32)
        screen_u = ((cols + 0.5 - width / 2) * metres).ravel()
        screen_v = (-(rows + 0.5 - height / 2) * metres).ravel()
    weights = np.empty(surface.size, dtype=np.float32)
    for sid, material in surface_materials(scene).items():
        idx = np.flatnonzero(surface == sid)
        if idx.size == 0:
            continue
        if uniform_density:
            u, v = screen_u[idx], screen_v[idx]
        elif sid < FIRST_BOX:  # a side of the room: one orientation
            u, v = {0: (z, y), 1: (x, z), 2: (x, y)}[sid // 2]
            u, v = u[idx], v[idx]
        else:
            ax = axis[idx]
            u = np.where(ax == 0, z[idx], x[idx])
            v = np.where(ax == 1, z[idx], y[idx])
        weights[idx] = np.clip(texture(material, u, v), 0, 1)
    return weights.reshape(hits["surface"].shape)


def surface_materials(scene: Scene) -> dict[int, Material]:
    """Material of every surface id: the room's sides, then the boxes."""
    materials = dict(scene.materials)
    materials.update({FIRST_BOX + k: box.material for k, box in enumerate(scene.boxes)})
    return materials


def direct_light(scene: Scene, faces: np.ndarray) -> np.ndarray:
    """Lambert's cosine max(0, normal . light) for each face number in ``faces``."""
    # face 2a is hit by rays going to -axis a, so its normal is +a; face 2a + 1 has normal -a
    cosine = np.repeat(scene.light, 2) * np.tile([1.0, -1.0], 3)
    return np.maximum(cosine, 0).astype(np.float32).take(faces)


def lambert(scene: Scene, hits: dict[str, np.ndarray], shadow: np.ndarray, flat: bool = False) -> np.ndarray:
    """Brightness per pixel: ambient + (1 - ambient) * max(0, normal . light), no direct light in shadow.

    ``flat`` replaces the cosine by its mean over the picture: the same brightness on every face
    (the shading cue switched off; shadows still fall where ``shadow`` says).
    """
    direct = direct_light(scene, hits["face"])
    if flat:
        direct = np.full_like(direct, direct.mean())
    direct[shadow] = 0
    return scene.ambient + (1 - scene.ambient) * direct


def compose(scene: Scene, hits: dict[str, np.ndarray], weights: np.ndarray, brightness: np.ndarray,
            haze: bool = True) -> np.ndarray:
    """The final uint8 picture: textured colour x brightness, then haze: fade to fog with distance (``haze``)."""
    colour_a = np.zeros((FIRST_BOX + len(scene.boxes), 3), np.float32)
    colour_b = np.zeros_like(colour_a)
    for sid, material in surface_materials(scene).items():
        colour_a[sid], colour_b[sid] = material.colour_a, material.colour_b
    density = np.float32(scene.haze if haze else 0.0)
    keep = np.exp(-density * hits["depth"])  # fraction of the surface's light that arrives
    lit = brightness * keep * np.float32(255)
    fog = np.float32(255) - keep * np.float32(255)
    lit_weights = weights * lit
    image = np.empty((*hits["depth"].shape, 3), np.uint8)
    for c in range(3):  # colour = a + (b - a) * weight, lit, plus the fog's share (+ 0.5 to round)
        channel = colour_a[:, c].take(hits["surface"]) * lit
        channel += (colour_b[:, c] - colour_a[:, c]).take(hits["surface"]) * lit_weights
        channel += fog * np.float32(scene.fog_colour[c]) + np.float32(0.5)
        image[..., c] = np.minimum(channel, np.float32(255), out=channel)
    return image


def scene_cues(scene: Scene, hits: dict[str, np.ndarray], shadow: np.ndarray) -> list[str]:
    """The depth cues visible in this picture, in the order of ``CUES``."""
    n_pixels = hits["depth"].size
    n_shadow = np.count_nonzero(direct_light(scene, hits["face"][shadow]) > 0.05)  # would be lit
    counts = np.bincount(hits["surface"].ravel(), minlength=FIRST_BOX + len(scene.boxes))
    visible = [box for k, box in enumerate(scene.boxes) if counts[FIRST_BOX + k] > 0.002 * n_pixels]
    depths = [(box.lo + box.hi) / 2 for box in visible]
    depths = list(project(scene.camera, np.array(depths), *hits["depth"].shape)[2]) if visible else []
    present = {
        "perspective": True,
        "occlusion": bool(hits["box_overlap"] > 0.0005 * n_pixels),
        "relative size": scene.same_size_boxes and len(depths) >= 2 and max(depths) > 1.25 * min(depths),
        "texture gradient": True,
        "shading": True,
        "cast shadows": bool(n_shadow > 0.003 * n_pixels),
        "haze": scene.haze > 0,
    }
    return [cue for cue in CUES if present[cue]]


def check_cues_off(cues_off) -> frozenset[str]:
    """The set of cues to switch off, checked: each must be one of ``REMOVABLE_CUES``."""
    if isinstance(cues_off, str):
        cues_off = (cues_off,)
    off = frozenset(cues_off or ())
    for cue in off:
        if cue in GEOMETRIC_CUES:
            raise ValueError(f"{cue!r} cannot be switched off: it is the scene's geometry "
                             f"({GEOMETRIC_CUES[cue]}), i.e. the depth itself. Removable: {', '.join(REMOVABLE_CUES)}")
        if cue not in REMOVABLE_CUES:
            raise ValueError(f"unknown cue {cue!r}: removable cues are {', '.join(REMOVABLE_CUES)}")
    return off


def render(scene: Scene, height: int = 480, width: int = 640, cues_off=()) -> dict:
    """Render a scene: {"image": uint8 (H, W, 3), "depth": float32 (H, W) metres, "cues": [...]}.

    ``cues_off`` names cues of ``REMOVABLE_CUES`` to leave out of the picture (see the module
    docstring); the depth is the same whatever is switched off, and "cues" lists what remains.
    """
    off = check_cues_off(cues_off)
    hits = cast_rays(scene, height, width)
    if "cast shadows" in off:
        shadow = np.zeros(hits["depth"].shape, dtype=bool)
    else:
        shadow = cast_shadows(scene, hits)
    image = compose(scene, hits, texture_weights(scene, hits, uniform_density="texture gradient" in off),
                    lambert(scene, hits, shadow, flat="shading" in off), haze="haze" not in off)
    cues = [cue for cue in scene_cues(scene, hits, shadow) if cue not in off]
    return {"image": image, "depth": hits["depth"], "cues": cues}


def render_scene(rng: np.random.Generator, height: int = 480, width: int = 640, cues_off=()) -> dict:
    """Draw a random room with boxes from ``rng`` and render it (see ``render``)."""
    return render(random_scene(rng), height, width, cues_off)


CUE_STREAM = 7  # scene_rng stream of the cue-ablation scenes, apart from every dataset's


def cue_scenes(n: int, seed: int = 0, stream: int = CUE_STREAM) -> list[Scene]:
    """``n`` random scenes of their own stream, to render with and without each cue (same depth)."""
    return [random_scene(scene_rng(seed, stream, i)) for i in range(n)]


# --------------------------------------------------------------------------------------------
# DIW-style point pairs
# --------------------------------------------------------------------------------------------

PRIOR_GRID = 32  # the position prior is a PRIOR_GRID x PRIOR_GRID map over normalized image coordinates
PRIOR_SCENES = 256  # scenes averaged into it
PRIOR_MARGIN = 1.05  # a pair's two prior values differ by at least this ratio
PAIR_FLAGS = ("a_farther", "lower_closer", "central_farther", "prior_agrees")  # balanced per DIW partition


@functools.lru_cache(maxsize=1)
def position_prior() -> np.ndarray:
    """What a predictor that sees only *where* two points are can know: the mean depth map.

    The mean depth (metres) of ``PRIOR_SCENES`` random scenes of DIW-like shapes, on a
    ``PRIOR_GRID`` x ``PRIOR_GRID`` grid over normalized image coordinates (row / height,
    column / width), i.e. what a network sees after squashing the image to a square. Fixed seeds:
    the same map in every process. A mean-depth-map baseline trained on the generated data
    orders a pair the way this map does.
    """
    total = np.zeros((PRIOR_GRID, PRIOR_GRID))
    cells = (np.arange(PRIOR_GRID) + 0.5) / PRIOR_GRID
    for i in range(PRIOR_SCENES):
        rng = np.random.default_rng([7919, i])  # its own stream, apart from every dataset's
        height, width = (s // 6 for s in diw_image_size(rng))
        depth = cast_rays(random_scene(rng), height, width)["depth"]
        total += depth[(cells * height).astype(int)][:, (cells * width).astype(int)]
    return (total / PRIOR_SCENES).astype(np.float32)


def prior_at(prior: np.ndarray, ys: np.ndarray, xs: np.ndarray, height: int, width: int) -> np.ndarray:
    """The prior's value at pixel rows ``ys`` and columns ``xs`` of a ``height`` x ``width`` image."""
    grid_h, grid_w = prior.shape
    rows = np.minimum(((ys + 0.5) / height * grid_h).astype(int), grid_h - 1)
    cols = np.minimum(((xs + 0.5) / width * grid_w).astype(int), grid_w - 1)
    return prior[rows, cols]


def sample_pair(depth: np.ndarray, rng: np.random.Generator, lower_closer: bool, a_farther: bool,
                min_ratio: float = 1.05, min_distance: float = 0.1, *, central_farther: bool | None = None,
                prior_agrees: bool | None = None, prior: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """Pick two points (ya, xa, yb, xb), 0-based, the way DIW's annotators were asked.

    Both points are random (not the image centre), at least ``min_distance`` of the diagonal apart,
    away from the border and from depth edges, with depths differing by at least ``min_ratio``.
    Then the pair is chosen so that *where* the points lie gives its answer away no more often
    than chance, once each request below is balanced 50/50 over a dataset:

    * ``lower_closer``: the point lower in the image is the closer one;
    * ``central_farther``: the point nearer the image centre (normalized coordinates) is the farther;
    * ``prior_agrees``: the position prior (``position_prior``, the mean depth map) orders the
      two points the right way.

    When no candidate meets every request, the one that meets the most wins, ``prior_agrees``
    weighing most, then ``lower_closer``. Two combinations contradict the prior's own shape
    (the lower *and* more peripheral point farther while the prior agrees, and the mirror case);
    there ``central_farther`` gives way, and as the two cases mirror each other it stays at 50 %
    over a dataset. ``a_farther`` makes A the farther point (the CSV's ``>``).
    """
    height, width = depth.shape
    margin = max(2, int(0.03 * min(height, width)))
    step = 2  # a point's neighbours, step pixels away, must have about its depth (no depth edge)
    if prior_agrees is not None and prior is None:
        prior = position_prior()
    requests = [(w, want) for w, want in ((4, prior_agrees), (2, lower_closer), (1, central_farther)) if want is not None]
    best = None  # (score, index, ys, xs) of the best candidate so far
    for _ in range(20):
        ys = rng.integers(margin, height - margin, size=(2, 256))
        xs = rng.integers(margin, width - margin, size=(2, 256))
        za, zb = depth[ys[0], xs[0]], depth[ys[1], xs[1]]
        far, near = np.maximum(za, zb), np.minimum(za, zb)
        ok = (far >= min_ratio * near) & (ys[0] != ys[1])
        ok &= np.hypot(ys[0] - ys[1], xs[0] - xs[1]) >= min_distance * np.hypot(height, width)
        for p in range(2):
            around = np.stack([depth[ys[p] + dy, xs[p] + dx] for dy in (-step, step) for dx in (-step, step)])
            ok &= (around.max(0) <= 1.1 * around.min(0))
        a_is_farther = za > zb
        features = {}
        features[2] = np.where(ys[0] > ys[1], ~a_is_farther, a_is_farther)  # the lower point is closer
        if central_farther is not None:
            radius = [np.hypot((ys[p] + 0.5) / height - 0.5, (xs[p] + 0.5) / width - 0.5) for p in range(2)]
            features[1] = np.where(radius[0] < radius[1], a_is_farther, ~a_is_farther)
        if prior_agrees is not None:
            pa, pb = (prior_at(prior, ys[p], xs[p], height, width) for p in range(2))
            clear = np.maximum(pa, pb) >= PRIOR_MARGIN * np.minimum(pa, pb)  # noise in a mean map cannot flip it
            features[4] = np.where(clear, (pa > pb) == a_is_farther, not prior_agrees)
        score = np.zeros(ys.shape[1], dtype=int)
        for weight, want in requests:
            score += weight * (features[weight] == want)
        score = np.where(ok, score, -1)
        i = int(np.argmax(score))
        if score[i] >= 0 and (best is None or score[i] > best[0]):
            best = int(score[i]), i, ys.copy(), xs.copy()
        if best is not None and best[0] == sum(w for w, _ in requests):
            break
    if best is None:
        raise ValueError(f"no valid point pair found in a {height}x{width} depth map")
    _, i, ys, xs = best
    a, b = (ys[0, i], xs[0, i]), (ys[1, i], xs[1, i])
    if (depth[a] > depth[b]) != a_farther:
        a, b = b, a
    return int(a[0]), int(a[1]), int(b[0]), int(b[1])


# --------------------------------------------------------------------------------------------
# Writing the dataset in the real layouts
# --------------------------------------------------------------------------------------------

MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: depthkit.synthetic HDF5 schema 1.00 ."
DIW_IMAGE_DIR = "/synthetic/DIW"  # the "authors' machine" prefix written into the CSV


def scene_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator for scene ``index`` of ``stream`` (0 NYU, 1 DIW test, 2 DIW train/val)."""
    return np.random.default_rng([seed, stream, index])


def available_cores() -> int:
    """Number of CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _parallel(fn: Callable[[int], object], n: int, workers: int) -> Iterator[object]:
    """fn(0), ..., fn(n - 1) in order, computed by ``workers`` threads (numpy releases the GIL)."""
    if workers <= 1:
        yield from (fn(i) for i in range(n))
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(fn, i) for i in range(min(n, 2 * workers))]
        for i in range(n):
            result = pending.pop(0).result()
            if i + len(pending) + 1 < n:
                pending.append(pool.submit(fn, i + len(pending) + 1))
            yield result


def _progress(iterable, total: int, desc: str):
    """tqdm.auto progress bar when tqdm is installed and the job is not tiny."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=total < 50, leave=False)


def write_nyu_mat(path: Path, n: int, seed: int, size: tuple[int, int], workers: int) -> None:
    """Render ``n`` scenes into a MATLAB-v7.3-layout .mat (HDF5): images (N,3,W,H), depths (N,W,H)."""
    height, width = size

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w", userblock_size=512) as f:
            images = f.create_dataset("images", (n, 3, width, height), np.uint8, chunks=(1, 3, width, height))
            depths = f.create_dataset("depths", (n, width, height), np.float32, chunks=(1, width, height))
            images.attrs["MATLAB_class"] = np.bytes_("uint8")
            depths.attrs["MATLAB_class"] = np.bytes_("single")
            scenes = _parallel(lambda i: render_scene(scene_rng(seed, 0, i), height, width), n, workers)
            for i, scene in enumerate(_progress(scenes, n, "synthetic NYU")):
                images[i] = scene["image"].transpose(2, 1, 0)  # MATLAB is column-major: (3, W, H)
                depths[i] = scene["depth"].T
        with open(tmp, "r+b") as f:  # the 512-byte MATLAB header that real v7.3 files start with
            f.write(MATLAB_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")

    atomic_write(path, write)


def write_splits(path: Path, n: int, seed: int, test_fraction: float = 0.2) -> None:
    """A seeded ~80/20 train/test split in the format of data/nyu_splits.json (1-based indices)."""
    order = np.random.default_rng([seed, 99]).permutation(n) + 1
    n_test = 0 if n < 2 else max(1, round(test_fraction * n))
    splits = {
        "about": f"Seeded split (seed {seed}) of {n} synthetic scenes written by depthkit.synthetic, "
                 f"1-based indices into nyu_depth_v2_labeled.mat, like the official NYU split file.",
        "train": sorted(int(i) for i in order[n_test:]),
        "test": sorted(int(i) for i in order[:n_test]),
    }
    atomic_write_bytes(path, json.dumps(splits).encode())


def diw_image_size(rng: np.random.Generator) -> tuple[int, int]:
    """Height and width of a DIW-style thumbnail: 240-400 by 320-512 pixels."""
    return int(rng.integers(240, 401)), int(rng.integers(320, 513))


def balanced_flags(n: int, rng: np.random.Generator, k: int = 1) -> np.ndarray:
    """``n`` rows of ``k`` booleans, shape (n, k), in random order, each column True for half the rows.

    The columns are balanced jointly too: all 2**k combinations occur equally often (up to
    rounding, as far as ``n`` allows), so no flag leans on another.
    """
    combos = (np.arange(n) % (1 << k))[:, None] >> np.arange(k) & 1
    return rng.permutation(combos.astype(bool))


def diw_record(seed: int, stream: int, index: int, flags: dict[str, bool], scale: float = 1.0,
               prior: np.ndarray | None = None) -> dict:
    """Render DIW-style image ``index`` of ``stream`` and pick its pair (``flags``: see ``sample_pair``).

    Returns {"image", "depth", "pair": (ya, xa, yb, xb) 0-based, "relation": ">" or "<"}.
    ``scale`` shrinks the image (tests; the dataset uses 1); the scene is the same either way.
    """
    rng = scene_rng(seed, stream, index)
    height, width = diw_image_size(rng)
    if scale != 1.0:
        height, width = max(16, round(height * scale)), max(16, round(width * scale))
    scene = render_scene(rng, height, width)
    pair = sample_pair(scene["depth"], rng, flags["lower_closer"], flags["a_farther"],
                       central_farther=flags.get("central_farther"), prior_agrees=flags.get("prior_agrees"),
                       prior=prior)
    ya, xa, yb, xb = pair
    relation = ">" if scene["depth"][ya, xa] > scene["depth"][yb, xb] else "<"
    return {"image": scene["image"], "depth": scene["depth"], "pair": pair, "relation": relation}


def diw_flags(n: int, seed: int, stream: int) -> list[dict[str, bool]]:
    """The balanced pair requests (``PAIR_FLAGS``) of the ``n`` images of a DIW partition."""
    flags = balanced_flags(n, np.random.default_rng([seed, 10 + stream]), len(PAIR_FLAGS))  # not a scene stream
    return [dict(zip(PAIR_FLAGS, map(bool, row))) for row in flags]


def write_diw(root: Path, partition: str, n: int, seed: int, stream: int, workers: int) -> Path:
    """Render ``n`` DIW-style JPEGs into ``root/<partition>/`` and write ``root/<partition>.csv``."""
    folder = root / partition
    folder.mkdir(parents=True, exist_ok=True)
    flags, prior = diw_flags(n, seed, stream), position_prior()

    def make_one(i: int) -> list[str]:
        """Render image i, pick its pair, write its JPEG; return its two CSV lines."""
        record = diw_record(seed, stream, i, flags[i], prior=prior)
        height, width = record["depth"].shape
        ya, xa, yb, xb = record["pair"]
        name = f"synth_{partition.split('_', 1)[1].replace('_', '')}_{i:06d}.thumb"
        buffer = io.BytesIO()
        Image.fromarray(record["image"]).save(buffer, format="JPEG", quality=90)
        atomic_write_bytes(folder / name, buffer.getvalue())
        return [f"{DIW_IMAGE_DIR}/{partition}/{name}",
                f"{ya + 1},{xa + 1},{yb + 1},{xb + 1},{record['relation']},{width},{height}"]

    lines = [line for pair in _progress(_parallel(make_one, n, workers), n, f"synthetic {partition}") for line in pair]
    remove_partition(root, partition, keep={Path(line).name for line in lines[::2]})  # an earlier, larger set
    csv_path = root / f"{partition}.csv"
    atomic_write_bytes(csv_path, ("\n".join(lines) + "\n").encode())
    return csv_path


def remove_partition(root: Path, partition: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Delete the synthetic images of ``root/<partition>/`` (all but ``keep``); the CSV too if nothing is kept."""
    for image in (root / partition).glob("synth_*.thumb"):
        if image.name not in keep:
            image.unlink()
    if not keep:
        (root / f"{partition}.csv").unlink(missing_ok=True)


def _manifest_files(root: Path, paths: list[Path]) -> dict[str, int]:
    """Relative path -> size in bytes of every file the dataset consists of."""
    return {str(p.relative_to(root)): p.stat().st_size for p in paths}


def _dataset_files(root: Path) -> list[Path]:
    """Every file of a written dataset, listed from its CSVs (images) plus the fixed files."""
    paths = [root / "nyu_depth_v2_labeled.mat", root / "splits.json"]
    for csv_path in sorted((root / "diw").glob("DIW_*.csv")):
        paths.append(csv_path)
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
        partition = csv_path.stem
        paths += [root / "diw" / partition / Path(row[0]).name for row in rows[::2]]
    return paths


def _manifest_matches(root: Path, arguments: dict) -> bool:
    """True when ``root/manifest.json`` records ``arguments`` and every listed file is intact."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("arguments") != arguments:
        return False
    for rel, size in manifest.get("files", {}).items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return bool(manifest.get("files"))


def make_synthetic(root: str | os.PathLike, n_nyu: int = 64, n_diw: int = 64, seed: int = 0,
                   size: tuple[int, int] = (480, 640), n_diw_train_val: int = 0,
                   workers: int | None = None) -> dict[str, Path]:
    """Write a synthetic NYU-layout .mat + split file and DIW-layout JPEGs + CSV under ``root``.

    Returns {"nyu": .mat, "nyu_splits": splits.json, "diw_csv": DIW_test.csv, "diw_root": diw folder}
    (plus "diw_train_csv" and "diw_val_csv", 90/10 of ``n_diw_train_val``, when it is > 0). A second call with the same arguments
    finds ``root/manifest.json`` and returns at once. ``size`` is (height, width) of the NYU scenes;
    ``workers`` threads render in parallel (default: all CPU cores).
    """
    if n_nyu < 1 or n_diw < 1 or n_diw_train_val < 0:
        raise ValueError(f"make_synthetic needs n_nyu >= 1, n_diw >= 1 and n_diw_train_val >= 0, "
                         f"got {n_nyu}, {n_diw}, {n_diw_train_val}")
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"make_synthetic: size must be (height, width) of at least 16 pixels, got {size!r}")
    root = Path(root)
    diw = root / "diw"
    paths = {"nyu": root / "nyu_depth_v2_labeled.mat", "nyu_splits": root / "splits.json",
             "diw_csv": diw / "DIW_test.csv", "diw_root": diw}
    if n_diw_train_val:  # Chen et al.'s published split: DIW_train.csv and DIW_val.csv
        paths["diw_train_csv"], paths["diw_val_csv"] = diw / "DIW_train.csv", diw / "DIW_val.csv"
    arguments = {"version": GENERATOR_VERSION, "n_nyu": n_nyu, "n_diw": n_diw, "seed": seed,
                 "size": [int(s) for s in size], "n_diw_train_val": n_diw_train_val}
    if _manifest_matches(root, arguments):
        return paths

    workers = workers or available_cores()
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").unlink(missing_ok=True)  # an interrupted run must not look finished
    start = time.perf_counter()
    write_nyu_mat(paths["nyu"], n_nyu, seed, tuple(size), workers)
    write_splits(paths["nyu_splits"], n_nyu, seed)
    write_diw(diw, "DIW_test", n_diw, seed, stream=1, workers=workers)
    n_val = max(1, n_diw_train_val // 10) if n_diw_train_val else 0
    for partition, n, stream in (("DIW_train", n_diw_train_val - n_val, 2), ("DIW_val", n_val, 4)):
        if n > 0:
            write_diw(diw, partition, n, seed, stream=stream, workers=workers)
        else:
            remove_partition(diw, partition)
    remove_partition(diw, "DIW_train_val")  # the layout of generator version 2
    manifest = {"arguments": arguments, "seconds": round(time.perf_counter() - start, 1),
                "files": _manifest_files(root, _dataset_files(root))}
    atomic_write_bytes(root / "manifest.json", json.dumps(manifest, indent=1).encode())
    return paths
