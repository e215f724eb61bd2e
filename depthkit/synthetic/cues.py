"""The depth cues: world-space textures, Lambertian shading, cast shadows, haze, and the switches.

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
"""
from __future__ import annotations

import functools

import numpy as np

from depthkit.synthetic.geometry import project
from depthkit.synthetic.scenes import FIRST_BOX, FOCAL_SCALE, Material, Scene

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

