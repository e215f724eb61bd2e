"""Profiles and paths: the one place that decides data source, sizes, epochs, batch and device.

Pick a profile with the environment variable ``DEPTHKIT_PROFILE`` or the ``--profile`` flag:

* ``smoke``  - seconds per notebook on a 2-core CPU (what CI and nbval run);
* ``demo``   - the embedded synthetic scenes, minutes on a CPU, models that really learn;
* ``report`` - real NYU Depth V2 + DIW with the report's hyperparameters, on a GPU (Colab).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROFILE_ENV = "DEPTHKIT_PROFILE"
PROFILE_NAMES = ("smoke", "demo", "report")


@dataclass(frozen=True)
class Budget:
    """One training stage's budget under a profile: its learning rate and its epochs per model (plain data)."""

    lr: float  # the stage's base learning rate (Adam)
    epochs: dict  # model name -> epochs with every weight trained; "*" for every other model
    frozen_epochs: dict = field(default_factory=dict)  # model name -> frozen-encoder warm-up epochs, run first

    def for_model(self, model: str) -> tuple[int, int]:
        """``(frozen_epochs, full_epochs)`` of ``model`` in this stage."""
        return self.frozen_epochs.get(model, 0), self.epochs.get(model, self.epochs.get("*", 1))


@dataclass(frozen=True)
class Profile:
    """Everything a run needs to know that is not code."""

    name: str
    data: str  # "synthetic" (embedded generator) or "real" (NYU .mat + DIW CSV on disk)
    size: int  # images are prepared as size x size (the report used 200)
    batch_size: int
    # each stage's budget ("nyu", then "diw"): learning rate and epochs per model. The report: Adam at
    # lr 1e-3 on NYU; fine-tuning starts from a trained model, so DIW takes a smaller step (1e-4)
    budgets: dict = field(default_factory=dict)
    weight_decay: float = 0.02  # the report: Adam with weight decay 0.02
    lr_schedule: str = "constant"  # the report's; "cosine" decays the rate per epoch to 5 % of it
    n_nyu: int = 0  # synthetic NYU-layout scenes (synthetic data only)
    n_diw: int = 0  # synthetic DIW-layout images (synthetic data only)
    val_fraction: float = 0.1  # validation carved from the training split
    diw_fractions: tuple = (0.8, 0.1, 0.1)  # seeded train/val/test split of the DIW partition
    diw_protocol: str = "report"  # "report": split inside DIW_test; "chen": DIW_train / DIW_val -> DIW_test
    max_diw_images: int | None = None  # cap on the DIW partition (None = all)
    # ImageNet/COCO weights: True (load them or stop with one line), False (random init), or "auto" (try, fall
    # back to random init with a warning); the CLI's --pretrained yes|no|auto sets it
    pretrained: bool | str = False
    seed: int = 0  # the data's seed: synthetic scenes and the seeded splits
    train_seed: int | None = None  # initial weights, batch order, augmentation (None: ``seed``); tools.seeds varies it
    device: str = "auto"
    num_workers: int = 0

    def budget(self, stage: str) -> Budget:
        """The budget of ``stage`` ("nyu" or "diw") under this profile, with a clear error for any other stage."""
        if stage not in self.budgets:
            raise ValueError(f"profile {self.name!r} has no budget for stage {stage!r}: "
                             f"expected one of {', '.join(self.budgets) or '(none)'}")
        return self.budgets[stage]

    def epochs(self, model: str, stage: str) -> tuple[int, int]:
        """Return ``(frozen_epochs, full_epochs)`` for a model and stage ("nyu" or "diw")."""
        return self.budget(stage).for_model(model)

    @property
    def training_seed(self) -> int:
        """The seed of a training run: ``train_seed``, or ``seed`` when that is not set."""
        return self.seed if self.train_seed is None else self.train_seed

    def replace(self, **changes) -> "Profile":
        """Return a copy with some fields changed (for experiments and tests)."""
        return dataclasses.replace(self, **changes)

    def with_budget(self, stage: str, **changes) -> "Profile":
        """Return a copy whose ``stage`` budget has some fields changed, e.g. ``with_budget("diw", lr=1e-3)``."""
        return self.replace(budgets={**self.budgets, stage: dataclasses.replace(self.budget(stage), **changes)})


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", data="synthetic", size=64, batch_size=4, n_nyu=24, n_diw=24,
        budgets={"nyu": Budget(lr=1e-3, epochs={"*": 1, "unetpp": 1}, frozen_epochs={"unetpp": 1}),
                 "diw": Budget(lr=1e-4, epochs={"*": 1})},
        num_workers=0,
    ),
    # demo: EQUAL BUDGETS = the same number of epochs for every model (the same images, seen as often,
    # with as many optimizer steps and the same schedule): a gap between the models is then the
    # model, not its training time. The measure is machine-independent (equal wall-clock on a
    # 2-core CPU would give LR-ASPP ~13x U-Net++'s epochs, on a GPU a different ratio). U-Net++'s
    # one frozen-encoder warm-up epoch (the report's recipe) counts as one of its 7 NYU epochs.
    # The cost is set by U-Net++ (batch 8 at 64x64; NYU train split 346 images = 43 steps per epoch,
    # DIW train 720 = 90): its seconds per step depend on the machine and its load, so they are not
    # typed here; each run's history records them (notebook 04 prints them, notebook 06 sums them) and
    # the measured `make reproduce` time is in README.md (first paragraph).
    # (Before: LR-ASPP 30 + 5 epochs, U-Net++ 1 + 4 + 1: 11.2 min of training, unequal.) The price:
    # LR-ASPP learns less in 7 epochs than in 30 (test normalized MSE 0.041 vs 0.025, mean-depth
    # baseline 0.050, measured on this data); equal wall-clock instead would leave U-Net++ 3 NYU epochs.
    "demo": Profile(
        name="demo", data="synthetic", size=64, batch_size=8, n_nyu=480, n_diw=1200,
        budgets={"nyu": Budget(lr=1e-3, epochs={"*": 7, "unetpp": 6}, frozen_epochs={"unetpp": 1}),
                 "diw": Budget(lr=1e-4, epochs={"*": 1})},
        lr_schedule="cosine", diw_fractions=(0.6, 0.1, 0.3),
    ),
    "report": Profile(
        name="report", data="real", size=200, batch_size=16,
        budgets={"nyu": Budget(lr=1e-3, epochs={"*": 100, "unetpp": 8}, frozen_epochs={"unetpp": 2}),
                 "diw": Budget(lr=1e-4, epochs={"*": 10, "unetpp": 4})},
        # the report's weights, or a stop at the start: a random-init run is chosen knowingly (--pretrained no),
        # never fallen into (a run offline used to train from random weights and print them beside the report's)
        pretrained=True,
        # 0 workers, measured (#32, docs/performance.md): the DIW train split of a cache written by prepare_diw
        # streams at ~13,000 images/s (warm page cache) and ~5,100 (cold) in the main process; 1 or 2 workers
        # deliver 1,500-2,400 (every batch crosses a process boundary) and add 20-170 MB of anonymous memory.
        # A T4 trains U-Net++ at ~40 images/s and LR-ASPP at a few thousand at most: workers would not help.
        # (Workers might help a cache on a slow network disk such as Google Drive: not measured.)
        num_workers=0,
    ),
}


def repo_root() -> Path:
    """The checkout that holds ``depthkit/``, ``data/`` and ``figures/``."""
    return Path(__file__).resolve().parents[1]


DIW_IMAGES_ENV = "DEPTHKIT_DIW_IMAGES"  # the CLI's --image-root sets it


def diw_image_root() -> Path | None:
    """Where the real DIW images are, when not beside their CSVs (``DEPTHKIT_DIW_IMAGES``, ``--image-root``); else None."""
    value = os.environ.get(DIW_IMAGES_ENV)
    return Path(value) if value else None


def data_dir() -> Path:
    """Where datasets, the split file and caches live (``DEPTHKIT_DATA`` overrides)."""
    return Path(os.environ.get("DEPTHKIT_DATA", repo_root() / "data"))


def runs_dir() -> Path:
    """Where checkpoints and histories are written (``DEPTHKIT_RUNS`` overrides)."""
    return Path(os.environ.get("DEPTHKIT_RUNS", repo_root() / "runs"))


def figures_dir() -> Path:
    """Where the reproduction writes its figures and ``results.md`` (``DEPTHKIT_FIGURES`` overrides)."""
    return Path(os.environ.get("DEPTHKIT_FIGURES", repo_root() / "figures"))


def real_data_present(root: Path | None = None) -> bool:
    """True when the real NYU ``.mat`` and a DIW CSV are on disk under ``data/real``."""
    root = Path(root or data_dir()) / "real"
    return (root / "nyu_depth_v2_labeled.mat").exists() and any((root / "diw").glob("DIW_*.csv"))


def default_profile_name() -> str:
    """``DEPTHKIT_PROFILE`` if set, else ``report`` with real data and a GPU, else ``demo``."""
    env = os.environ.get(PROFILE_ENV)
    if env:
        return env
    import torch

    return "report" if real_data_present() and torch.cuda.is_available() else "demo"


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile (default: :func:`default_profile_name`)."""
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]
