"""Scenes: a box-shaped room, boxes on its floor, a pinhole camera, a light and haze, drawn from a seed.

Coordinates are metres: x across, y up, z away from the camera. Every surface gets an id in the
per-pixel surface map (the room's six sides, then one per box) and a procedural ``Material``
defined in world coordinates (its pattern is drawn in ``cues.py``). ``random_scene`` draws a whole
scene from a generator; ``scene_rng`` gives every scene of every dataset its own generator.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

# Surface ids in the per-pixel surface map: the room's six sides, then one id per box. A room side's
# id is also its face number, 2 * axis + (1 if rays reach it travelling towards +axis): the left
# wall (x = min) is face 0, the right wall 1, floor 2, ceiling 3, front wall 4 (behind the camera),
# back wall 5.
LEFT_WALL, RIGHT_WALL, FLOOR, CEILING, FRONT_WALL, BACK_WALL = range(6)
FIRST_BOX = 6
FOCAL_SCALE = 0.8  # focal length in pixels = 0.8 * image width (about 64 degrees horizontal view)


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


def scene_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator for scene ``index`` of ``stream`` (0 NYU, 1 DIW test, 2 DIW train/val)."""
    return np.random.default_rng([seed, stream, index])
