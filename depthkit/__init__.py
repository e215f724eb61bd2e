"""depthkit: single-image depth estimation, the small library behind the notebooks.

Three layers, which the folders show; imports go down only (docs/design.md has the picture):

* **the core** (this folder), what a student opens from a notebook: ``config`` (profiles as plain
  data, paths) and ``stages`` (the two training stages); ``data/`` (NYU and DIW readers, caches,
  batches, downloads) and ``synthetic/`` (the embedded depth-cue scenes); ``tensors``, ``losses``,
  ``metrics``, ``models``; ``device``, ``distributed``, ``checkpoints``, ``runs``, ``files``,
  ``fingerprint``; ``evaluate`` (the one evaluation loop and its statistics), ``train``,
  ``pipeline`` (profile -> splits), ``reproduce`` (the whole report), ``viz`` (figures), ``cli``.
* **course tooling** (``course/``): the exercises' checks and capstone, the notebooks' "What we
  got" texts, student copies, the Colab cell, saved widget state.
* **measurement tools** (``tools/``): ``bench``, ``rehearse``, ``gpucheck``, ``memory``.

``cli`` sits on top of all three: ``python -m depthkit <command>`` dispatches to each.
"""
__version__ = "0.1.0"
