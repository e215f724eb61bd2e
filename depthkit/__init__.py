"""depthkit: single-image depth estimation, the small library behind the notebooks.

Modules, each named after what it holds: ``config`` (profiles and paths), ``data`` (NYU/DIW readers,
caches, downloads), ``synthetic`` (the embedded depth-cue scenes), ``models``, ``losses``,
``metrics``, ``train`` (the training loop and checkpoints), ``pipeline`` (profile -> splits),
``reproduce`` (the whole report), ``viz`` (figures), ``bench`` and ``cli``.
"""
__version__ = "0.1.0"
