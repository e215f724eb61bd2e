"""Rendering: a scene's picture and exact depth, with any removable cue switched off.

``render(scene, h, w, cues_off=(...))`` ray-casts the scene (``geometry.py``), then paints it with the
cues of ``cues.py``; ``render_scene`` draws a random scene first; ``cue_scenes`` gives the scenes
that notebook 08 re-renders without each cue.
(Named ``rendering`` rather than ``render`` so that ``depthkit.synthetic.render`` stays the function.)
"""
from __future__ import annotations

import numpy as np

from depthkit.synthetic.cues import check_cues_off, compose, lambert, scene_cues, texture_weights
from depthkit.synthetic.geometry import cast_rays, cast_shadows
from depthkit.synthetic.scenes import Scene, random_scene, scene_rng


def render(scene: Scene, height: int = 480, width: int = 640, cues_off=()) -> dict:
    """Render a scene: {"image": uint8 (H, W, 3), "depth": float32 (H, W) metres, "cues": [...]}.

    ``cues_off`` names cues of ``REMOVABLE_CUES`` to leave out of the picture (see ``cues.py``'s
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
