"""Geometry: camera rays, projection, exact depth by ray casting, and hard shadows.

Each pixel's ray is intersected with the floor, the ceiling, the walls and every box
(``cast_rays``); the nearest hit gives the depth in metres, the camera-z distance, like a Kinect
(larger = farther). ``cast_shadows`` sends a ray from every hit towards the light.
"""
from __future__ import annotations

import numpy as np

from depthkit.synthetic.scenes import FIRST_BOX, FOCAL_SCALE, Camera, Scene


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
