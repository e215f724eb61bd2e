"""From a profile to tensors: make or find the data, cache it, split it.

``prepare_data(profile)`` makes sure the files are there (the embedded synthetic scenes are
generated on first use; real data must have been downloaded) and cached at the profile's size.
``load_stage_data(profile, stage)`` returns the train / val / test splits as
:class:`depthkit.data.loader.DepthData`, whose images stay in the memory-mapped cache until a batch
is read: memory does not grow with the dataset. Validation is always carved from the training split; the test
split is only touched by the final evaluation.
"""
from __future__ import annotations

import hashlib
import json
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from depthkit import data as dk_data
from depthkit.config import Profile, data_dir, diw_image_root, repo_root
from depthkit.data.loader import DepthData, Rows
from depthkit.stages import get_stage


@dataclass(frozen=True)
class PreparedData:
    """Where a profile's data lives once prepared."""

    source: str  # "synthetic" or "real"
    root: Path
    nyu_mat: Path
    nyu_splits: Path
    nyu_cache: Path
    diw_caches: dict  # {"DIW_test": Path, and for the chen protocol "DIW_train", "DIW_val"}
    seconds: dict = dataclasses.field(default_factory=dict)  # time spent building each cache (0: reused)

    def describe(self) -> str:
        """A one-line statement of where the data came from, for titles and tables (no machine paths)."""
        kind = "synthetic depth-cue scenes (embedded generator)" if self.source == "synthetic" else "real NYU Depth V2 + DIW"
        try:
            where = str(self.root.resolve().relative_to(repo_root()))
        except ValueError:  # data outside the checkout: name it relative to DEPTHKIT_DATA
            where = "$DEPTHKIT_DATA/" + (f"synthetic/{self.root.name}" if self.source == "synthetic" else "real")
        return f"{kind}, {where}"


def synthetic_root(profile: Profile) -> Path:
    """Folder of a profile's synthetic scenes: ``data/synthetic/<profile>``."""
    return data_dir() / "synthetic" / profile.name


def real_root() -> Path:
    """Folder of the real datasets: ``data/real`` (see data/README.md)."""
    return data_dir() / "real"


# The DIW partitions each protocol reads: the report split DIW_test itself; Chen et al. train on
# DIW_train, validate on DIW_val and test on DIW_test (the files of DIW_Annotations_splitted.tar.gz).
DIW_PARTS = {"report": ("DIW_test",), "chen": ("DIW_test", "DIW_train", "DIW_val")}


def prepare_data(profile: Profile) -> PreparedData:
    """Generate (synthetic) or locate (real) the profile's data and build its caches."""
    cache_dir = data_dir() / "cache"
    if profile.data == "synthetic":
        root = synthetic_root(profile)
        n_tv = profile.n_diw if profile.diw_protocol == "chen" else 0
        paths = dk_data.make_synthetic(root, n_nyu=profile.n_nyu, n_diw=profile.n_diw, seed=profile.seed,
                                       n_diw_train_val=n_tv)
        nyu_mat, nyu_splits, diw_root = Path(paths["nyu"]), Path(paths["nyu_splits"]), Path(paths["diw_root"])
    elif profile.data == "real":
        root = real_root()
        nyu_mat, diw_root = root / "nyu_depth_v2_labeled.mat", root / "diw"
        nyu_splits = data_dir() / "nyu_splits.json"
        if not nyu_splits.is_file():  # DEPTHKIT_DATA elsewhere (e.g. Google Drive): the checkout's official split
            nyu_splits = repo_root() / "data" / "nyu_splits.json"
        if not nyu_mat.exists() or not (diw_root / "DIW_test.csv").exists():
            raise FileNotFoundError(
                f"profile {profile.name!r} needs the real datasets: expected {nyu_mat} and {diw_root / 'DIW_test.csv'}. "
                "Fetch them with `python -m depthkit download nyu` and `python -m depthkit download diw` "
                "(see data/README.md), or use --profile demo for the embedded synthetic data.")
    else:
        raise ValueError(f"profile {profile.name!r}: unknown data source {profile.data!r}")
    image_root = (diw_image_root() if profile.data == "real" else None) or diw_root  # --image-root: real DIW only
    seconds, t0 = {}, time.perf_counter()
    nyu_cache = dk_data.prepare_nyu(nyu_mat, cache_dir, size=profile.size)
    seconds["nyu"] = time.perf_counter() - t0
    diw_caches = {}
    for part in DIW_PARTS[profile.diw_protocol]:
        t0 = time.perf_counter()
        diw_caches[part] = dk_data.prepare_diw(diw_root / f"{part}.csv", cache_dir, size=profile.size,
                                               image_root=image_root, limit=profile.max_diw_images)
        seconds[part] = time.perf_counter() - t0
    return PreparedData(profile.data, root, nyu_mat, nyu_splits, nyu_cache, diw_caches, seconds)


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into train and validation positions (at least one of each)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# A split smaller than this is read into memory once (all of NYU at 200x200 is about 0.4 GB);
# larger ones (DIW: 74,441 images are 8.9 GB at 200x200) stay on disk and are read a batch at a time.
RESIDENT_BYTES = 512 * 2**20


def _nyu_split(cache: dict, rows: np.ndarray, name: str) -> DepthData:
    """Rows of an NYU cache as a split (read into memory when under :data:`RESIDENT_BYTES`)."""
    data = DepthData(images=Rows(cache["images"], rows), depths=Rows(cache["depths"], rows), name=name,
                     identity=_split_identity(cache, rows))
    return data.to("cpu") if data.nbytes <= RESIDENT_BYTES else data


def _diw_split(cache: dict, rows: np.ndarray, name: str) -> DepthData:
    """Rows of a DIW cache as a split: images on disk, the (small) pairs and relations in memory."""
    check_pairs(cache, rows, name)
    pairs = torch.from_numpy(np.asarray(cache["pairs"][rows], dtype=np.int64))[:, None, :]
    relation = torch.from_numpy(np.asarray(cache["relation"][rows], dtype=np.int64))[:, None]
    return DepthData(images=Rows(cache["images"], rows), pairs=pairs, relation=relation, name=name,
                     identity=_split_identity(cache, rows))


def check_pairs(cache: dict, rows: np.ndarray, name: str) -> None:
    """Check once, on loading, that every pair lies inside the image and every relation is -1, 0 or +1.

    The training loop then skips these checks (each would wait for the GPU on every step).
    """
    pairs, relation = cache["pairs"][rows], cache["relation"][rows]
    size = cache["images"].shape[1:3]
    bad = ((pairs < 0) | (pairs >= np.array([size[0], size[1], size[0], size[1]]))).any(axis=1)
    bad |= ~np.isin(relation, (-1, 0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: cache row {int(rows[i])} holds pair {pairs[i].tolist()} with relation "
                         f"{int(relation[i])}; expected 0-based (ya, xa, yb, xb) inside {size[0]}x{size[1]} "
                         f"and a relation of -1, 0 or +1. Delete the cache (data/cache) and prepare again.")


def _split_identity(cache: dict, rows: np.ndarray) -> str:
    """What a split is, cheaply: its cache's fingerprint and its row numbers (no image is read)."""
    h = hashlib.sha1(cache["fingerprint"].encode())
    h.update(np.asarray(rows, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def nyu_rows(profile: Profile, prepared: PreparedData) -> dict[str, np.ndarray]:
    """Cache rows of the NYU ``train``, ``val`` and ``test`` splits (val carved from the official train split)."""
    indices = dk_data.load_nyu_cache(prepared.nyu_cache)["indices"]
    row_of = {int(i): r for r, i in enumerate(np.asarray(indices))}
    split = {name: dk_data.nyu_split(name, prepared.nyu_splits) for name in ("train", "test")}
    rows = {name: np.array([row_of[i] for i in idx if i in row_of], dtype=np.int64) for name, idx in split.items()}
    tr, va = split_train_val(len(rows["train"]), profile.val_fraction, profile.seed)
    return {"train": rows["train"][tr], "val": rows["train"][va], "test": rows["test"]}


def nyu_frames(profile: Profile, prepared: PreparedData, split: str = "test") -> np.ndarray:
    """0-based positions in the NYU ``.mat`` of a split's images, in :func:`load_stage_data` order."""
    indices = dk_data.load_nyu_cache(prepared.nyu_cache)["indices"]
    return np.asarray(indices)[nyu_rows(profile, prepared)[split]]


def load_depth_map_splits(profile: Profile, prepared: PreparedData) -> dict[str, DepthData]:
    """NYU's ``train``, ``val`` and ``test`` splits: images with depth maps, from the NYU cache."""
    cache = dk_data.load_nyu_cache(prepared.nyu_cache)
    src = f"NYU ({prepared.source})"
    return {name: _nyu_split(cache, rows, f"{src} {name}") for name, rows in nyu_rows(profile, prepared).items()}


def load_point_pair_splits(profile: Profile, prepared: PreparedData) -> dict[str, DepthData]:
    """DIW's ``train``, ``val`` and ``test`` splits (report protocol: a seeded split of DIW_test; chen: the authors')."""
    test_cache = dk_data.load_diw_cache(prepared.diw_caches["DIW_test"])
    src = f"DIW ({prepared.source})"
    if profile.diw_protocol == "chen":  # the authors' own split: DIW_train, DIW_val, DIW_test
        caches = {part: dk_data.load_diw_cache(prepared.diw_caches[part]) for part in ("DIW_train", "DIW_val")}
        caches["DIW_test"] = test_cache
        return {split: _diw_split(c, np.arange(len(c["relation"])), f"{src} {part}")
                for split, (part, c) in zip(("train", "val", "test"), caches.items())}
    order = np.random.default_rng(profile.seed).permutation(len(test_cache["relation"]))
    f_train, f_val, _ = profile.diw_fractions
    n_train, n_val = int(len(order) * f_train), max(1, int(len(order) * f_val))
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {name: _diw_split(test_cache, np.sort(rows), f"{src} DIW_test-partition {name}")
            for name, rows in parts.items()}


LOADERS = {"depth_maps": load_depth_map_splits, "point_pairs": load_point_pair_splits}  # Stage.loader -> function


def load_stage_data(profile: Profile, stage: str, prepared: PreparedData | None = None) -> dict[str, DepthData]:
    """The ``train``, ``val`` and ``test`` splits of a stage ("nyu" or "diw"), read by the loader its stage names."""
    loader = LOADERS[get_stage(stage).loader]  # an unknown stage is named by get_stage
    return loader(profile, prepared or prepare_data(profile))


def describe_splits(splits: dict[str, DepthData]) -> str:
    """One line per split: its name and size."""
    return "\n".join(f"{key:>5}: {len(d):5d} images  ({d.name})" for key, d in splits.items())


def dataset_statistics(profile: Profile, prepared: PreparedData | None = None) -> dict:
    """Sizes and depth statistics of the prepared data (what the set-up command prints)."""
    prepared = prepared or prepare_data(profile)
    nyu = load_stage_data(profile, "nyu", prepared)
    diw = load_stage_data(profile, "diw", prepared)
    train_depth = nyu["train"].depths
    valid = train_depth[train_depth > 0]
    return {
        "profile": profile.name,
        "source": prepared.describe(),
        "size": profile.size,
        "nyu": {k: len(v) for k, v in nyu.items()},
        "diw": {k: len(v) for k, v in diw.items()},
        "nyu_depth_m": {"min": float(valid.min()), "median": float(valid.median()), "max": float(valid.max())},
        "diw_farther_A_fraction": float((torch.cat([d.relation for d in diw.values()]) > 0).float().mean()),
    }


def format_statistics(stats: dict) -> str:
    """Human-readable dataset statistics."""
    return json.dumps(stats, indent=2)


def scene_labels(profile: Profile, prepared: PreparedData, split: str = "test") -> list[str]:
    """One scene-type label per image of the NYU stage's ``split`` (in :func:`load_stage_data` order).

    Synthetic data: the number of boxes in the scene (re-drawn from the generator's seed, no
    rendering). Real NYU: the ``sceneTypes`` stored in the .mat ("kitchen", "bedroom", ...).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}: expected 'train', 'val' or 'test'")
    files = nyu_frames(profile, prepared, split).tolist()
    if prepared.source == "synthetic":
        from depthkit.synthetic import random_scene, scene_rng

        counts = [len(random_scene(scene_rng(profile.seed, 0, int(i))).boxes) for i in files]
        return [f"{n} box{'' if n == 1 else 'es'}" for n in counts]
    return dk_data.read_nyu_scene_types(prepared.nyu_mat, files)
