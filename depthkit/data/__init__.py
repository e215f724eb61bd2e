"""Datasets: read NYU Depth V2 and DIW, cache them at a fixed size, stream batches, download them.

One module per concern:

* :mod:`depthkit.data.nyu` - the NYU Depth V2 labeled ``.mat`` (MATLAB v7.3 = HDF5) and its split;
* :mod:`depthkit.data.diw` - the DIW annotation CSV (image line + annotation line per record);
* :mod:`depthkit.data.images` - image loading, resizing, rescaling point pairs;
* :mod:`depthkit.data.cache` - the 200x200 on-disk caches, written row by row, memory-mapped;
* :mod:`depthkit.data.loader` - :class:`DepthData` splits read a batch at a time, augmentation;
* :mod:`depthkit.data.downloads` - downloads with resume, checksums and a clear offline failure.

Conventions used everywhere in depthkit: depth is "larger = farther"; coordinates are 0-based
``(row, col)``; a pair is ``(ya, xa, yb, xb)``; a size is ``(height, width)``.
"""
from __future__ import annotations

from pathlib import Path

from depthkit.data.cache import CACHE_VERSION, load_diw_cache, load_nyu_cache, prepare_diw, prepare_nyu
from depthkit.data.diw import RELATIONS, DIWPair, read_diw_csv
from depthkit.data.downloads import DEFAULT_FOLDERS, DIW_PAGE, DOWNLOADS, NYU_URL, download
from depthkit.data.images import load_rgb, rescale_pair, resize_depth, resize_image
from depthkit.data.nyu import NYU_SIZE, load_nyu_png_depth, nyu_split, read_nyu_mat, read_nyu_scene_types

__all__ = [
    "DIWPair", "RELATIONS", "read_nyu_mat", "read_nyu_scene_types", "nyu_split", "read_diw_csv", "load_rgb",
    "load_nyu_png_depth", "rescale_pair", "resize_image", "resize_depth", "prepare_nyu", "prepare_diw",
    "load_nyu_cache", "load_diw_cache", "download", "DOWNLOADS", "DEFAULT_FOLDERS", "NYU_URL", "NYU_SIZE",
    "DIW_PAGE", "CACHE_VERSION", "make_synthetic",
]


def make_synthetic(*args, **kwargs) -> dict[str, Path]:
    """Write synthetic depth-cue scenes in the real NYU/DIW layouts (see :mod:`depthkit.synthetic`)."""
    from depthkit.synthetic import make_synthetic as _make_synthetic

    return _make_synthetic(*args, **kwargs)
