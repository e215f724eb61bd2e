"""DIW-style point pairs: the position prior, pair sampling, DIW image sizes and balanced requests.

The DIW-style point pairs avoid the shortcuts that Chen et al. (2016) warn about: both points are
random (not the image centre), ``>`` and ``<`` are 50/50, no pair has nearly equal depths (DIW has
no "equal" pairs), and *where* the two points lie says nothing about the answer: "the lower point
is the closer one", "the point nearer the centre is the farther one" and the mean depth map of
the scenes (``position_prior``) each order half of the pairs rightly, so a predictor that sees
only positions, such as the training-set mean depth map, scores about 50 %.
"""
from __future__ import annotations

import functools

import numpy as np

from depthkit.synthetic.geometry import cast_rays
from depthkit.synthetic.scenes import random_scene

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


def diw_flags(n: int, seed: int, stream: int) -> list[dict[str, bool]]:
    """The balanced pair requests (``PAIR_FLAGS``) of the ``n`` images of a DIW partition."""
    flags = balanced_flags(n, np.random.default_rng([seed, 10 + stream]), len(PAIR_FLAGS))  # not a scene stream
    return [dict(zip(PAIR_FLAGS, map(bool, row))) for row in flags]

