"""Synthetic "depth-cue" rooms: the embedded default dataset, written in the real file layouts.

No machine in this project can download NYU Depth V2 or DIW, so depthkit draws its own scenes: a
box-shaped room seen by a pinhole camera, with a few boxes standing on the floor. Every scene is
drawn from a seed, and its depth is exact: each pixel's ray is intersected with the floor, the
ceiling, the walls and every box (``cast_rays``), and the nearest hit gives the depth in metres
(the camera-z distance, like a Kinect; larger = farther).

One module per concern, each importing only the ones above it:

=================  ==========================================================================
``scenes.py``      the room, its boxes, camera, light and haze, drawn from a seed (``random_scene``)
``geometry.py``    camera rays, projection, exact depth by ray casting, cast shadows
``cues.py``        the depth cues: textures, shading, haze, and the switches (``REMOVABLE_CUES``)
``rendering.py``   ``render`` (with ``cues_off``), ``render_scene``, ``cue_scenes``
``pairs.py``       DIW-style point pairs: position prior, ``sample_pair``, image sizes, balancing
``writers.py``     the NYU/DIW file layouts and ``make_synthetic``
=================  ==========================================================================

``GENERATOR_VERSION`` (``writers.py``) is the generator's version: bump it when the generated data
changes (pictures, pairs or partitions); ``make_synthetic`` then regenerates every dataset.

Every public name is re-exported here: ``from depthkit.synthetic import render`` and
``depthkit.synthetic.make_synthetic`` work as before the split.
"""
from depthkit.synthetic.scenes import (
    BACK_WALL, CEILING, FIRST_BOX, FLOOR, FOCAL_SCALE, FRONT_WALL, LEFT_WALL, RIGHT_WALL, Box, Camera,
    Material, Scene, random_box_size, random_boxes, random_camera, random_colour, random_light,
    random_material, random_room, random_scene, scene_rng,
)
from depthkit.synthetic.geometry import (
    camera_rays, cast_room, cast_rays, cast_shadows, face_index, project, screen_window, slab_test,
)
from depthkit.synthetic.cues import (
    CUES, FLAT_TEXTURE_DEPTH, GEOMETRIC_CUES, REMOVABLE_CUES, TABLE, check_cues_off, compose, direct_light,
    lambert, lookup, noise_tables, scene_cues, smooth_noise, surface_materials, texture, texture_weights,
)
from depthkit.synthetic.rendering import CUE_STREAM, cue_scenes, render, render_scene
from depthkit.synthetic.pairs import (
    PAIR_FLAGS, PRIOR_GRID, PRIOR_MARGIN, PRIOR_SCENES, balanced_flags, diw_flags, diw_image_size,
    position_prior, prior_at, sample_pair,
)
from depthkit.synthetic.writers import (
    DIW_IMAGE_DIR, GENERATOR_VERSION, MATLAB_HEADER, available_cores, diw_record, make_synthetic,
    remove_partition, write_diw, write_nyu_mat, write_splits,
)
