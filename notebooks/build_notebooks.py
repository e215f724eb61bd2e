"""Write the numbered notebooks from one place.

    python notebooks/build_notebooks.py            # write notebooks/*.ipynb (no outputs, except checked cells)
    python notebooks/build_notebooks.py --execute  # ... and fill the checked cells' outputs by running them (smoke)

The shared Colab cell (``COLAB_CELL``) and the repository URL (``REPO_URL``) live here only;
``tests/test_notebooks_meta.py`` checks that every notebook opens with exactly that cell and
that the notebooks' sources are the ones this script writes.

nbval (``--nbval-lax``) compares the outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` with the
outputs stored in the notebook, so those cells must carry stored outputs. They print only
profile-independent, rounded numbers (worked examples, parameter counts), so the outputs
stored here under ``smoke`` and the ones a ``demo`` run writes (``make notebooks``) agree.
Rebuilding keeps the stored outputs of every cell whose source did not change.
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB_DIR = Path(__file__).resolve().parent
REPO_URL = "https://github.com/depthkit/depthkit"  # the one place the repository's address is written
CHECK = "# NBVAL_CHECK_OUTPUT"

COLAB_CELL = f'''\
# Set-up cell, the same in every notebook (written by notebooks/build_notebooks.py).
# On Google Colab it fetches depthkit and installs only what Colab lacks; anywhere else it does nothing.
import os, subprocess, sys

REPO_URL = "{REPO_URL}"
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    REPO_DIR = "/content/depthkit"
    if not os.path.isdir(os.path.join(REPO_DIR, "depthkit")):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
    os.chdir(REPO_DIR)
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    # --no-deps: Colab's own torch, torchvision, ipywidgets 7.x, matplotlib and h5py stay as they are.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", REPO_DIR], check=True)
    try:
        import segmentation_models_pytorch  # noqa: F401  (U-Net++; not preinstalled on Colab)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "segmentation-models-pytorch"], check=True)
    import torch
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available()
          else "none (Runtime > Change runtime type > GPU, then run this cell again)")'''

SETUP_CELL = '''\
import matplotlib.pyplot as plt
import torch

from depthkit import viz
from depthkit.config import get_profile
from depthkit.train import pick_device

plt.rcParams["figure.dpi"] = 72        # keeps the saved notebooks small; figures/ is written at full resolution
PROFILE = get_profile()               # DEPTHKIT_PROFILE=smoke | demo | report picks it (see 00_setup)
DEVICE = pick_device(PROFILE.device)  # CUDA if there is a GPU, then Apple MPS, then the CPU
TAG = f"{PROFILE.data} data · {PROFILE.name} profile · {DEVICE.type}"  # goes into every figure title
print(f"profile {PROFILE.name!r}: {PROFILE.data} data at {PROFILE.size}×{PROFILE.size}, "
      f"batch {PROFILE.batch_size}, device {DEVICE}")'''


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell from an indented triple-quoted string."""
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str, check: bool = False) -> nbformat.NotebookNode:
    """A code cell; ``check=True`` marks it for nbval's output comparison."""
    src = textwrap.dedent(text).strip("\n")
    return new_code_cell(f"{CHECK}\n{src}" if check else src)


def header(stem: str, title: str, intro: str) -> list:
    """Title with an "Open in Colab" badge, the Colab cell and the profile cell."""
    colab = f"https://colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/notebooks/{stem}.ipynb"
    return [
        md(f"""
        # {title}

        [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})

        {textwrap.dedent(intro).strip()}
        """),
        code(COLAB_CELL),
        md("""
        The **profile** decides the data, the image size, the epochs and the device (see `00_setup`):
        `smoke` runs in seconds and is what the tests use (the models learn nothing), `demo` trains on the
        embedded synthetic scenes in minutes on a CPU, `report` uses the real NYU Depth V2 and DIW with the
        report's settings on a GPU. Every figure title says which one produced it.
        """),
        code(SETUP_CELL),
    ]


# ------------------------------------------------------------------------------------------------
# 00 - set-up
# ------------------------------------------------------------------------------------------------
def nb00() -> list:
    return header("00_setup", "00 · Set-up: environment, profiles, data", """
        This series rebuilds, step by step, a course project on **single-image depth estimation**
        ("Deep Learning for Image and Video Processing", Maastricht University, 2023–24): two networks
        (U-Net++ and LR-ASPP) trained on **NYU Depth V2** (indoor photos with Kinect depth) and fine-tuned
        on **DIW** (*Depth in the Wild*: internet photos with one human judgement "which of these two points
        is closer?"). The heavy lifting lives in the small `depthkit` package next to these notebooks; the
        notebooks explain, call it and plot.

        | notebook | what you will see |
        |---|---|
        | `00_setup` | the environment, the three profiles, where data lives, how to fetch the real datasets |
        | `01_data_exploration` | NYU and DIW samples, file layouts, depth statistics, the synthetic scenes |
        | `02_losses_and_metrics` | normalized MSE, the ranking loss and its sign pitfall, WHDR, standard metrics |
        | `03_lraspp` | model II: LR-ASPP MobileNetV3 and its 21 → 1 head, trained on NYU |
        | `04_unetpp` | model I: U-Net++ with a ResNeXt-50 encoder, frozen-encoder warm-up |
        | `05_diw_finetuning` | both models fine-tuned on DIW with the ranking loss |
        | `06_comparison` | the report's table beside ours, the figures, a parameter-matched third model, failures |
        | `07_your_own_image` | your own photo through a trained model |
        """) + [
        md("""
        ## 1. The environment

        The notebooks need PyTorch, torchvision, segmentation-models-pytorch (for U-Net++), h5py (NYU's
        `.mat` file is HDF5), matplotlib and ipywidgets. On Colab the first cell installed only what was
        missing; locally `make test` or `make reproduce` builds a virtual environment with everything.
        """),
        code("""
        import importlib
        import platform

        print(f"python {platform.python_version()} on {platform.system()} {platform.machine()}")
        for module in ["torch", "torchvision", "segmentation_models_pytorch", "numpy", "h5py",
                       "matplotlib", "ipywidgets", "tqdm", "PIL", "depthkit"]:
            try:
                version = getattr(importlib.import_module(module), "__version__", "?")
            except ImportError:
                version = "MISSING - see requirements.txt"
            print(f"  {module:<30} {version}")
        """),
        md("""
        A GPU makes the `report` profile possible (on a 2-core CPU, one U-Net++ training step on 8 images of
        224×224 takes about 38 s). Without one everything still runs, just on the small profiles.
        """),
        code("""
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, bf16: {torch.cuda.is_bf16_supported()}")
        else:
            print(f"no CUDA GPU: training runs on {DEVICE} with {torch.get_num_threads()} threads")
        """),
        md("""
        ## 2. Profiles: one switch for data, size, epochs and device

        Set the environment variable `DEPTHKIT_PROFILE` before starting Jupyter (or `--profile` on the
        command line). Without it, depthkit picks `report` when the real datasets and a GPU are present,
        otherwise `demo`.

        * **smoke** – a couple of dozen synthetic scenes at 64×64, one epoch: every notebook in seconds. The
          tests run it. Its numbers mean nothing.
        * **demo** – a few hundred synthetic scenes, enough epochs for the models to really learn; minutes
          on a CPU.
        * **report** – the real NYU Depth V2 (1449 images) and DIW, 200×200, the report's epochs and
          optimizer; meant for a Colab GPU.
        """),
        code("""
        from depthkit.config import PROFILES
        from depthkit.models import MODEL_NAMES

        for p in PROFILES.values():
            mark = "  <- active" if p.name == PROFILE.name else ""
            print(f"{p.name:<7} {p.data:<9} {p.size}×{p.size}, batch {p.batch_size}, lr {p.lr:g}, "
                  f"weight decay {p.weight_decay:g}, pretrained={p.pretrained}{mark}")
            for m in MODEL_NAMES:
                (frozen, nyu), (_, diw) = p.epochs(m, "nyu"), p.epochs(m, "diw")
                print(f"          {m:<12} NYU {frozen} frozen + {nyu} epochs, DIW {diw} epochs")
        """),
        md("""
        ## 3. Where things live

        Datasets and caches go to `data/`, checkpoints and training histories to `runs/<profile>/`, the
        report's figures to `figures/`. Three environment variables move them: `DEPTHKIT_DATA`,
        `DEPTHKIT_RUNS`, `DEPTHKIT_FIGURES`. On Colab, pointing `DEPTHKIT_DATA` at Google Drive keeps the
        3 GB of NYU between sessions (optional):

        ```python
        from google.colab import drive
        drive.mount("/content/drive")
        os.environ["DEPTHKIT_DATA"] = "/content/drive/MyDrive/depthkit-data"
        ```
        """),
        code("""
        from depthkit.config import data_dir, figures_dir, real_data_present, runs_dir

        print("data:   ", data_dir())
        print("runs:   ", runs_dir())
        print("figures:", figures_dir())
        print("real NYU + DIW on disk:", real_data_present())
        """),
        md("""
        ## 4. Getting the real datasets

        The real data is large: NYU Depth V2's labeled file alone is 2.8 GB, and DIW's images come on top. `depthkit.data.download` fetches them into `data/real/` with a progress bar, resumes a broken
        download, checks the size (and checksum where one is published) and unpacks DIW. Offline it fails
        within seconds and says what to fetch by hand.

        This cell does nothing unless you set `DOWNLOAD = True`: the machines that test these notebooks
        have no network, and nothing in this series downloads by itself. Flip it on Colab or on a laptop.
        """),
        code("""
        from depthkit import data as dk_data

        DOWNLOAD = False  # True: fetch NYU Depth V2 (2.8 GB) and DIW into data/real (needs a network)
        if DOWNLOAD:
            print("NYU:", dk_data.download("nyu"))
            print("DIW:", dk_data.download("diw"))
        else:
            print(f"DOWNLOAD is False: nothing fetched. Without a network this would fail anyway; "
                  f"set DOWNLOAD = True to fill {data_dir() / 'real'}")
        """),
        md("""
        ## 5. The embedded data

        Without the real files, depthkit draws its own **synthetic depth-cue scenes**: rooms with boxes,
        perspective, occlusion, texture gradients, shading, cast shadows and haze, with exact depth. It
        writes them in the *real* file layouts (a MATLAB-v7.3 `.mat` for NYU, a DIW-style CSV with JPEGs),
        so they go through the very readers the real data uses. `prepare_data` generates them on first
        use (seconds) and caches everything at the profile's image size.
        """),
        code("""
        from depthkit.pipeline import dataset_statistics, format_statistics, prepare_data

        prepared = prepare_data(PROFILE)
        print(prepared.describe())
        print(format_statistics(dataset_statistics(PROFILE, prepared)))
        """),
        md("""
        ## 6. The models

        Three networks, all mapping an image `[B, 3, H, W]` to one depth-like map `[B, 1, H, W]`
        (larger = farther): the report's U-Net++ (model I) and LR-ASPP (model II), and a third one with
        LR-ASPP's number of parameters but U-Net++'s architecture, for the comparison the report left
        open. Building them touches no network (random initialisation).
        """),
        code("""
        from depthkit.models import build_model, count_parameters

        for name in MODEL_NAMES:
            print(f"{name:<12} {count_parameters(build_model(name)) / 1e6:6.2f} M parameters")
        """, check=True),
        md("""
        Everything is in place. Next: `01_data_exploration`.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 01 - data exploration
# ------------------------------------------------------------------------------------------------
def nb01() -> list:
    return header("01_data_exploration", "01 · The data: NYU Depth V2, DIW and the synthetic scenes", """
        Two very different kinds of supervision meet in this project. **NYU Depth V2** gives a dense depth
        map in metres for every pixel of 1449 indoor photos (a Kinect sensor, with holes where it saw
        nothing). **DIW** gives, for each of about half a million internet photos, just *two points* and a human's answer
        to "which one is closer?". This notebook looks at both, at their file formats and their traps,
        and at the synthetic scenes that stand in for them when the real files are not there.
        """) + [
        code("""
        import numpy as np

        from depthkit.pipeline import describe_splits, load_stage_data, prepare_data

        prepared = prepare_data(PROFILE)
        nyu = load_stage_data(PROFILE, "nyu", prepared)
        diw = load_stage_data(PROFILE, "diw", prepared)
        print(prepared.describe())
        print(describe_splits(nyu))
        print(describe_splits(diw))
        """),
        md("""
        Validation is always carved out of the training split; the test split is touched only by the final
        evaluation. For DIW the report trained *and* tested inside the ~74k-image DIW test partition, so
        depthkit splits that partition too (80/10/10, seeded).

        ## 1. NYU Depth V2: the file and its orientation trap

        `nyu_depth_v2_labeled.mat` is a MATLAB v7.3 file, which is HDF5 inside. Read through `h5py`, MATLAB's
        column-major arrays come out **transposed**: `images` is `(N, 3, 640, 480)`, `depths` `(N, 640, 480)`.
        Image *i* is `images[i].transpose(2, 1, 0)` → `(480, 640, 3)`. Forget one transpose and every image
        is silently mirrored on its diagonal: the network still trains, on sideways rooms.
        `depthkit.data.read_nyu_mat` does it right and reads lazily (10 images never load the 2.8 GB file).
        """),
        code("""
        import h5py

        from depthkit.data import read_nyu_mat

        with h5py.File(prepared.nyu_mat, "r") as f:
            print("as stored:    images", f["images"].shape, f["images"].dtype, "| depths", f["depths"].shape, f["depths"].dtype)
            raw = f["images"][0]
        images, depths = read_nyu_mat(prepared.nyu_mat, indices=[0])
        print("read_nyu_mat: images", images.shape, images.dtype, "| depths", depths.shape, depths.dtype)

        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
        axes[0].imshow(images[0]); axes[0].set_title("images[0].transpose(2, 1, 0): right", fontsize=9)
        axes[1].imshow(raw.transpose(1, 2, 0)); axes[1].set_title("images[0].transpose(1, 2, 0): mirrored", fontsize=9)
        for ax in axes:
            ax.axis("off")
        fig.suptitle(f"Image 0 of {prepared.nyu_mat.name}, read two ways ({TAG})", fontsize=10)
        fig.tight_layout()
        """),
        md("""
        ## 2. NYU samples

        Depth is drawn with one colour map everywhere: **near is bright, far is dark**; grey marks pixels
        without a measurement (the real Kinect data has many, the synthetic scenes none).
        """),
        code("""
        fig = viz.show_samples(nyu["train"].images, nyu["train"].depths, f"NYU-layout training samples ({TAG})", n=4)
        """),
        md("""
        ## 3. How deep are the scenes?

        Indoor scenes span roughly 1–10 m. The report normalizes every depth map (and every prediction) to
        [0, 1] per image before the MSE, so a model is never asked for the absolute scale, only for the
        shape of the depth map: the right panel shows how much that scale varies from image to image.
        """),
        code("""
        d = nyu["train"].depths.numpy()
        valid = d[d > 0]
        per_image = [np.median(x[x > 0]) for x in d]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        axes[0].hist(valid, bins=50, color="0.35")
        axes[0].set(xlabel="depth (m)", ylabel="pixels", title="all valid pixels")
        axes[1].hist(per_image, bins=20, color="tab:blue")
        axes[1].set(xlabel="median depth of one image (m)", ylabel="images", title="one value per image")
        fig.suptitle(f"Depth in the NYU-layout training split, {len(d)} images ({TAG})", fontsize=10)
        fig.tight_layout()
        """),
        md("""
        ## 4. Scene types and depth cues

        The real NYU images come from many kinds of rooms (bedrooms, kitchens, offices, bathrooms, …). The synthetic
        scenes are one kind of room, a box with boxes in it, but each one is built to carry the monocular
        depth cues the report's introduction lists. A network can only learn depth from a single image
        through such cues: **perspective** (floor and wall edges converge), **occlusion**, **relative
        size**, **texture gradient** (patterns get denser with distance), **shading**, **cast shadows**
        and **haze** (colours fade towards grey with distance). `render_scene` reports which cues each
        picture shows.
        """),
        code("""
        import textwrap

        from depthkit.synthetic import render_scene

        fig, axes = plt.subplots(2, 3, figsize=(10, 5.6))
        for k in range(3):
            scene = render_scene(np.random.default_rng(k), height=240, width=320)
            axes[0, k].imshow(scene["image"])
            axes[0, k].axis("off")
            axes[0, k].set_title("\\n".join(textwrap.wrap(", ".join(scene["cues"]), 42)), fontsize=8)
            viz.show_depth(axes[1, k], scene["depth"], f"depth {scene['depth'].min():.1f}–{scene['depth'].max():.1f} m")
        fig.suptitle("Synthetic scenes (depthkit.synthetic.render_scene, seeds 0–2, 240×320) and the cues each shows",
                     fontsize=10)
        fig.tight_layout()
        """),
        md("""
        ## 5. DIW: two points and a relation

        The DIW CSV has two lines per image: the image's path (an absolute path from the authors' machine,
        which depthkit re-roots under the local folder), then `y_A, x_A, y_B, x_B, relation, width, height`.
        Coordinates are **1-based** in the grid of the image file; `>` means *A is farther than B*, `<`
        *A is closer*. Inside depthkit every coordinate is 0-based `(row, col)`, and a pair is rescaled to
        the network's grid with `floor(p / size_orig * size_new)`.
        """),
        code("""
        from depthkit.data import load_diw_cache, read_diw_csv, rescale_pair

        diw_csv = prepared.root / "diw" / "DIW_test.csv"
        with open(diw_csv) as f:
            print("".join(f.readline() for _ in range(4)))
        first = read_diw_csv(diw_csv, check_images=False)[0]
        print("read_diw_csv ->", first)
        cache = load_diw_cache(prepared.diw_caches["DIW_test"])
        print(f"on the {PROFILE.size}×{PROFILE.size} grid:", rescale_pair(first, (first.height, first.width), (PROFILE.size, PROFILE.size)),
              "| in the cache:", tuple(cache["pairs"][0].tolist()), "relation", int(cache["relation"][0]))
        """),
        code("""
        fig = viz.show_pairs(diw["train"].images, diw["train"].pairs, diw["train"].relation,
                             f"DIW-layout training images with their annotated pair ({TAG})", n=4)
        """),
        md("""
        DIW's authors took care that the easy guesses do not work: the pair is not always "the lower point
        is closer" (true for most floors) and A is not always the farther one. If either held for 90 % of
        the pairs, a network could score 90 % without looking at depth at all.
        """),
        code("""
        rel = torch.cat([d.relation for d in diw.values()]).flatten()
        pairs = torch.cat([d.pairs for d in diw.values()]).reshape(-1, 4)
        a_is_lower = pairs[:, 0] > pairs[:, 2]  # larger row = lower in the image
        lower_is_closer = torch.where(a_is_lower, rel == -1, rel == 1)
        print(f"{len(rel)} pairs ({prepared.source} data)")
        print(f"  A is the farther point:    {100 * (rel == 1).float().mean():5.1f} %")
        print(f"  the lower point is closer: {100 * lower_is_closer.float().mean():5.1f} %")
        """),
        md("""
        ## 6. Browse the samples

        Pick a split and an image. (The sliders need a live kernel; on GitHub you see the first image only.)
        """),
        code("""
        import ipywidgets as widgets

        SPLITS = {"NYU train": nyu["train"], "NYU test": nyu["test"], "DIW train": diw["train"], "DIW test": diw["test"]}

        def browse(split="NYU train", index=0):
            data = SPLITS[split]
            i = min(index, len(data) - 1)
            fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
            axes[0].imshow(viz.to_image(data.images[i]))
            axes[0].axis("off")
            if data.depths is not None:
                viz.show_depth(axes[1], data.depths[i], "depth")
            else:
                viz.draw_pair(axes[0], data.pairs[i, 0].tolist(), int(data.relation[i, 0]))
                axes[0].axis("on"); axes[0].set_xticks([]); axes[0].set_yticks([])
                axes[1].axis("off")
                axes[1].text(0, 0.5, "DIW has no depth map,\\nonly the relation of A and B", fontsize=10)
            fig.suptitle(f"{data.name}, image {i} of {len(data)} ({TAG})", fontsize=10)
            plt.show()

        widgets.interact(browse, split=widgets.Dropdown(options=list(SPLITS), value="NYU train"),
                         index=widgets.IntSlider(value=0, min=0, max=max(len(d) for d in SPLITS.values()) - 1));
        """),
        md("""
        Next, `02_losses_and_metrics`: how to score a depth map against each kind of supervision.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 02 - losses and metrics
# ------------------------------------------------------------------------------------------------
def nb02() -> list:
    return header("02_losses_and_metrics", "02 · Losses and metrics", """
        A network that predicts depth from one image can be taught with dense depth maps (NYU) or with
        ordinal pairs (DIW), and the two need different losses. This notebook works through each of them
        on tiny tensors you can check by hand, then shows the **sign pitfall** hidden in the report's
        ranking loss, and ends with an interactive plot of that loss.

        Convention used everywhere in depthkit: every depth-like value means **larger = farther**, NYU's
        metres as much as every model output.
        """) + [
        md("""
        ## 1. MSE on normalized depth (the report's NYU loss)

        From a single image the absolute scale of a scene is ambiguous: a doll's house photographed up
        close and a real room look alike. The report therefore compares *shapes*: prediction and target are
        each min–max normalized to [0, 1] per image, then compared by mean squared error. A consequence
        worth seeing: any increasing linear transform of the right answer scores a perfect 0, while a
        flipped sign scores worse than a constant map.
        """),
        code("""
        from depthkit import losses, metrics

        depth = torch.tensor([[1.0, 2.0], [3.0, 5.0]])  # metres, larger = farther
        candidates = {
            "the depth itself": depth,
            "2 × depth + 1 (other units)": 2 * depth + 1,
            "1 / depth (inverse depth)": 1 / depth,
            "−depth (flipped sign)": -depth,
            "constant 3 m": torch.full_like(depth, 3.0),
        }
        for name, pred in candidates.items():
            print(f"{name:<30} normalized MSE = {losses.normalized_mse(pred, depth).item():.4f}")
        """, check=True),
        md("""
        Real Kinect depth has holes (0 = no measurement): pass `mask=depth > 0` so they count neither in
        the min–max nor in the mean. Training does exactly that.

        ## 2. The ranking loss (Chen et al., DIW)

        For a pair of points with predicted depths $z_A, z_B$ and relation $r$:

        $$\\ell = \\log\\left(1 + e^{-r\\,(z_A - z_B)}\\right) \\text{ for } r = \\pm 1, \\qquad \\ell = (z_A - z_B)^2 \\text{ for } r = 0.$$

        depthkit follows the DIW annotation itself: `>` in the CSV (A farther) → $r = +1$, `<` (A closer)
        → $r = -1$. The loss is small when $z_A - z_B$ has the sign of $r$, and a pair counts as correct when
        $\\operatorname{sign}(z_A - z_B) = r$. A worked example with $z_A = 2$ and $z_B = 1$:
        """),
        code("""
        pred = torch.tensor([[[[2.0, 1.0]]]])  # a 1×2 "depth map": z_A = 2.0 at (0, 0), z_B = 1.0 at (0, 1)
        pair = torch.tensor([[[0, 0, 0, 1]]])  # (ya, xa, yb, xb), 0-based
        for r, meaning in [(+1, "A farther (CSV '>')"), (-1, "A closer (CSV '<')"), (0, "equal")]:
            loss = losses.ranking_loss(pred, pair, torch.tensor([[r]]))
            print(f"r = {r:>2}  {meaning:<20} loss = {loss.item():.4f}")
        """, check=True),
        md("""
        $\\log(1 + e^{-1}) = 0.3133$: the prediction agrees with "A farther". $\\log(1 + e^{1}) = 1.3133$:
        it disagrees with "A closer". $(2 - 1)^2 = 1$: an "equal" pair is pulled together.

        ## 3. The sign pitfall

        The report prints the same formula but says *"r = +1 means a is closer, reward a higher value
        for the closer point"*. On its own that is a valid choice: the network would then predict something
        like inverse depth (larger = closer). The trouble is the pipeline: the report first trains on NYU
        with MSE on **depth**, where larger = **farther**, then fine-tunes on DIW with a loss that rewards
        larger = **closer**. The meaning of the output flips between the two stages.

        A worked example. A model fresh from NYU training, and perfect: at point A on the floor it predicts
        1.5 m, at B on the back wall 4.0 m. The DIW annotator says "A is closer" (`<`).
        """),
        code("""
        z = torch.tensor([[[[1.5, 4.0]]]], requires_grad=True)  # the NYU model's output at A and B: depth, and right
        conventions = {"ours (CSV '<' -> r = -1)": -1, "report's printed (A closer -> r = +1)": +1}
        for name, r in conventions.items():
            z.grad = None
            loss = losses.ranking_loss(z, pair, torch.tensor([[r]]))
            loss.backward()
            correct = metrics.ordinal_accuracy(z, pair, torch.tensor([[r]])) == 1.0
            step = "lowers z_A (A nearer)" if z.grad[0, 0, 0, 0] > 0 else "raises z_A (A farther)"
            print(f"{name:<38} loss = {loss.item():.4f}  counted correct: {correct!s:<5}  "
                  f"dloss/dz_A = {z.grad[0, 0, 0, 0].item():+.4f}: a gradient step {step}")
        """, check=True),
        md("""
        With our convention the NYU model already agrees with the annotation (loss 0.08) and the gradient
        nudges it the same way NYU taught it. With the printed convention the same, correct model is told it
        is wrong (loss 2.58, counted incorrect) and every gradient step pushes the closer point *farther*.
        Fine-tuning then first has to turn the whole output upside down: DIW accuracy right after NYU reads
        as (100 − true accuracy) %, the NYU knowledge is fought rather than used, and after fine-tuning the
        model's output means "larger = closer", so its NYU MSE is meaningless.

        The same on many pairs: take depth maps from the NYU-layout test split as a *perfect* NYU model,
        sample pairs from them, and fine-tune a model whose output is `s · depth` (one parameter, `s = 1`
        after NYU) with each convention.
        """),
        code("""
        from depthkit.pipeline import load_stage_data

        nyu = load_stage_data(PROFILE, "nyu")
        depth_maps = losses.normalize_depth(nyu["test"].depths[:4].float(), nyu["test"].depths[:4] > 0)
        pairs, relation = metrics.sample_pairs(nyu["test"].depths[:4], 200, seed=0)  # ours: +1 = A farther
        keep = relation != 0                                                          # DIW has no equal pairs
        print(f"{int(keep.sum())} ordered pairs; the perfect NYU model scores "
              f"{100 * metrics.ordinal_accuracy(depth_maps, pairs, relation, keep):.0f} % with our convention and "
              f"{100 * metrics.ordinal_accuracy(depth_maps, pairs, -relation, keep):.0f} % with the printed one")

        def fine_tune_scale(relation, steps=80, lr=2.0):
            s = torch.tensor(1.0, requires_grad=True)  # the model's output is s · depth; s = 1 after NYU
            opt, trace = torch.optim.SGD([s], lr=lr), [1.0]
            for _ in range(steps):
                loss = losses.ranking_loss(s * depth_maps, pairs, relation, keep)
                opt.zero_grad(); loss.backward(); opt.step()
                trace.append(s.item())
            return trace

        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot(fine_tune_scale(relation), label="our convention: stays 'larger = farther'")
        ax.plot(fine_tune_scale(-relation), label="report's printed convention: flips to 'larger = closer'")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(xlabel="fine-tuning step", ylabel="s in  output = s · depth")
        ax.legend(fontsize=8)
        ax.set_title(f"Fine-tuning a perfect NYU model on pairs from NYU-layout test depth ({TAG})", fontsize=9)
        fig.tight_layout()
        """),
        md("""
        ## 4. Scoring pairs: ordinal accuracy and WHDR/WKDR

        **Ordinal accuracy** is the share of pairs with $\\operatorname{sign}(z_A - z_B) = r$: the report's
        DIW number. **WKDR** (Zoran et al.), called **WHDR** by Chen et al., also handles "equal" pairs:
        the prediction says "equal" when the ratio $z_A / z_B$ lies within $[1/(1+\\delta), 1+\\delta]$,
        and WHDR is the share of pairs whose predicted relation differs from the annotated one (lower is
        better). The ratio needs positive values; our networks predict relative depth of any sign, so
        `metrics.whdr` first maps each image's prediction linearly onto [1, 2]. DIW has no equal pairs,
        which is why the report reduced WKDR to plain accuracy (WHDR with δ = 0 is 1 − accuracy).

        δ is a trade-off: too small and nearly-equal points are called ordered (first pair), too large and
        clearly ordered points are called equal (second pair).
        """),
        code("""
        z = torch.tensor([[[[1.0, 1.05, 1.3, 2.0]]]])      # one 1×4 prediction (already spans [1, 2])
        pairs4 = torch.tensor([[[0, 1, 0, 0],               # 1.05 vs 1.0: annotated "equal"
                                [0, 2, 0, 1],               # 1.3 vs 1.05: annotated "A farther"
                                [0, 3, 0, 2],               # 2.0 vs 1.3:  annotated "A farther"
                                [0, 0, 0, 3]]])             # 1.0 vs 2.0:  annotated "A closer"
        rel4 = torch.tensor([[0, 1, 1, -1]])
        print("annotated:", rel4.tolist())
        for delta in (0.02, 0.1, 0.5):
            predicted = metrics.predicted_relation(z, pairs4, delta=delta).tolist()
            print(f"δ = {delta:<4}  predicted {predicted}  WHDR {metrics.whdr(z, pairs4, rel4, delta=delta):.4f}")
        print(f"ordinal accuracy on the three ordered pairs: {metrics.ordinal_accuracy(z, pairs4, rel4, rel4 != 0):.4f}")
        """, check=True),
        md("""
        ## 5. The standard depth metrics, on a real photograph

        Papers on NYU report AbsRel, RMSE (metres), log errors and the threshold accuracies
        δ < 1.25, 1.25², 1.25³ (share of pixels whose ratio to the truth is below the threshold). Our models
        predict *relative* depth, so each prediction is first aligned to the truth: by the median ratio
        (scale only) or by least squares (scale and shift). Below, a real NYU frame with its Kinect depth
        (holes in grey), and a stand-in "prediction": the depth blurred and written in other units
        (0.5 · depth + 0.3). Alignment decides how good it looks.
        """),
        code("""
        import torch.nn.functional as F

        from depthkit.config import repo_root
        from depthkit.data import load_nyu_png_depth, load_rgb

        SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples"  # three NYU frames, BSD-2 (see LICENSE there)
        rgb = load_rgb(SAMPLES / "rgb" / "rgb_00000.jpg")
        gt = torch.from_numpy(load_nyu_png_depth(SAMPLES / "depth" / "sync_depth_00000.png"))[None, None]
        valid = (gt > 0).float()
        blurred = F.avg_pool2d(gt, 9, stride=1, padding=4) / F.avg_pool2d(valid, 9, stride=1, padding=4).clamp_min(1e-6)
        fake = 0.5 * blurred + 0.3  # blurred over valid pixels only, then in other units
        print(f"photo {rgb.shape}, Kinect depth {tuple(gt.shape[-2:])}, {100 * (gt == 0).float().mean():.1f} % holes")
        for align in (None, "median", "lstsq"):
            m = metrics.depth_metrics(fake, gt, gt > 0, align=align)
            print(f"align={align!s:<7} AbsRel {m['abs_rel']:.3f}  RMSE {m['rmse']:.3f} m  "
                  f"δ<1.25 {m['delta1']:.3f}  δ<1.25² {m['delta2']:.3f}  δ<1.25³ {m['delta3']:.3f}")
        """, check=True),
        code("""
        fig, axes = plt.subplots(1, 3, figsize=(11, 3))
        axes[0].imshow(rgb); axes[0].axis("off"); axes[0].set_title("photo", fontsize=9)
        viz.show_depth(axes[1], gt[0, 0], "Kinect depth (holes grey)")
        viz.show_depth(axes[2], (fake * valid)[0, 0], "stand-in prediction 0.5·blur(depth)+0.3")
        fig.suptitle("Real NYU Depth V2 frame rgb_00000 (tests/assets/nyu_real_samples; no model involved)", fontsize=10)
        fig.tight_layout()
        """),
        md("""
        ## 6. The scale-and-shift-invariant loss (MiDaS)

        The report's min–max normalization is one particular way of ignoring scale and shift, and a
        fragile one: a single outlier pixel sets the range. MiDaS (Ranftl et al.) instead *fits* the best
        scale and shift by least squares and measures the error after that alignment. Since min–max is
        one candidate alignment, the SSI loss is never larger than normalized MSE.
        """),
        code("""
        ramp = torch.tensor([[1.0, 2.0, 3.0, 4.0, 8.0]])
        for name, pred in {"depth": ramp, "2 × depth + 1": 2 * ramp + 1, "depth²": ramp**2,
                           "1 / depth": 1 / ramp, "−depth": -ramp}.items():
            print(f"{name:<14} normalized MSE {losses.normalized_mse(pred, ramp).item():.4f}   "
                  f"SSI {losses.ssi_loss(pred, ramp).item():.4f}")
        """, check=True),
        md("""
        Look at the last line: the fitted scale may be negative, so the SSI loss forgives a **flipped sign**
        completely. It judges the shape of the depth map up to any linear map, which is what MiDaS wants
        (it mixes datasets with unknown scale and shift), but it means SSI alone cannot teach a network
        which way is far. The sign has to come from elsewhere: a convention fixed once, as in section 3.
        """),
        md("""
        ## 7. Play with the ranking loss

        The loss of one pair as a function of $z_A - z_B$, for the annotation you choose, under our
        convention and under the report's printed one. Move the slider to where an NYU-trained model would
        sit (for an "A closer" pair, $z_A - z_B < 0$) and compare the two losses. The first plot is the
        starting point; the interactive one below it needs a live kernel.
        """),
        code("""
        import ipywidgets as widgets

        DIFFS = torch.linspace(-6, 6, 121)
        PAIR = torch.tensor([[[0, 0, 0, 1]]])

        def loss_of_pair(diff, r):
            return losses.ranking_loss(torch.tensor([[[[diff, 0.0]]]]), PAIR, torch.tensor([[r]])).item()

        CURVES = {r: [loss_of_pair(d, r) for d in DIFFS.tolist()] for r in (-1, 0, 1)}  # computed by depthkit
        ANNOTATIONS = {"A closer than B (CSV '<')": -1, "A farther than B (CSV '>')": 1, "equal": 0}

        def plot_ranking_loss(annotation="A closer than B (CSV '<')", z_diff=-2.5):
            ours = ANNOTATIONS[annotation]
            printed = -ours  # the printed convention calls "A closer" r = +1
            fig, ax = plt.subplots(figsize=(7.5, 3.4))
            ax.plot(DIFFS, CURVES[ours], lw=2, label=f"our convention, r = {ours:+d}: {loss_of_pair(z_diff, ours):.3f}")
            if ours:
                ax.plot(DIFFS, CURVES[printed], "--", lw=2,
                        label=f"report's printed convention, r = {printed:+d}: {loss_of_pair(z_diff, printed):.3f}")
            ax.axvline(z_diff, color="0.4", lw=1)
            ax.set(xlabel="z_A − z_B  (depth-like: larger = farther)", ylabel="loss", ylim=(0, 6.5))
            ax.legend(fontsize=8, loc="upper center")
            ax.set_title(f"Ranking loss of one pair annotated '{annotation}' (depthkit.losses.ranking_loss, no data)",
                         fontsize=9)
            plt.show()

        plot_ranking_loss()  # the starting point, drawn once (also for readers without a live kernel)
        widgets.interact(plot_ranking_loss, annotation=widgets.Dropdown(options=list(ANNOTATIONS)),
                         z_diff=widgets.FloatSlider(value=-2.5, min=-6, max=6, step=0.1, description="z_A − z_B"));
        """),
        md("""
        | where | loss for training | number we report |
        |---|---|---|
        | NYU | normalized MSE (SSI as the modern alternative) | normalized MSE; AbsRel, RMSE, δ after alignment |
        | DIW | ranking loss, r from the CSV as it is | ordinal accuracy; WHDR |

        Next, `03_lraspp`: the first model.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 03 - LR-ASPP
# ------------------------------------------------------------------------------------------------
def nb03() -> list:
    return header("03_lraspp", "03 · Model II: LR-ASPP MobileNetV3, trained on NYU", """
        The report's small model is torchvision's **LR-ASPP** (Lite Reduced Atrous Spatial Pyramid
        Pooling) on a **MobileNetV3-Large** backbone: a segmentation network built for phones, 3.2 M
        parameters. It predicts 21 maps, one per Pascal-VOC class it was designed for; the report tried
        several ways to turn them into one depth map and a learned **1×1 convolution** worked best.
        """) + [
        md("""
        ## 1. The architecture

        MobileNetV3 shrinks the image 16× with cheap depthwise-separable convolutions. The LR-ASPP head
        takes the deepest features, weighs them with a global "squeeze-and-excitation"-like gate, adds a
        projection of shallower (8× smaller) features for detail, and upsamples to the input size. Our
        wrapper adds the 1×1 convolution that mixes the 21 maps into one.
        """),
        code("""
        from depthkit.models import build_model, count_parameters

        model = build_model("lraspp")  # random weights here; the report profile tries the COCO weights
        print(f"LR-ASPP: {count_parameters(model) / 1e6:.2f} M parameters, "
              f"backbone {count_parameters(model.encoder) / 1e6:.2f} M")
        print("the 21 -> 1 head:", model.combine)
        with torch.no_grad():
            for h, w in [(200, 200), (97, 131)]:
                x = torch.zeros(1, 3, h, w)
                print(f"input {h}×{w}: 21 maps {tuple(model.lraspp(x)['out'].shape)} -> depth {tuple(model(x).shape)}")
        """, check=True),
        md("""
        ## 2. Data and training

        Training follows the report: Adam, learning rate 1e-3, weight decay 0.02, the normalized MSE from
        `02`, validation after every epoch, and the checkpoint with the best validation score kept. The
        report trained for 100 epochs; the profile decides here. `train_stage` **reuses** a finished run
        in `runs/<profile>/lraspp_nyu/` (delete that folder to train again) and resumes an interrupted one.
        """),
        code("""
        from depthkit.pipeline import describe_splits, load_stage_data
        from depthkit.reproduce import REPORT_RESULTS, predict_depth, train_stage
        from depthkit.train import evaluate, evaluate_baseline

        nyu = load_stage_data(PROFILE, "nyu")
        print(describe_splits(nyu))
        print("epochs (frozen encoder, all weights):", PROFILE.epochs("lraspp", "nyu"))
        """),
        code("""
        model, history, run = train_stage(PROFILE, "lraspp", "nyu", nyu, device=DEVICE, progress=False)
        print(f"best checkpoint: {run / 'best.pt'}")
        for e, loss, val, sec in zip(history["epoch"], history["train_loss"], history["val_normalized_mse"], history["seconds"]):
            print(f"epoch {e:3d}: training loss {loss:.4f}, validation normalized MSE {val:.4f} ({sec:.1f} s)")
        """),
        code("""
        fig = viz.plot_histories({"LR-ASPP, NYU": history}, f"LR-ASPP trained on NYU-layout data ({TAG})")
        """),
        md("""
        ## 3. How good is it?

        A model is only as good as what it beats. The trivial baseline predicts the same map for every
        image: the mean depth map of the training set (floor near at the bottom, wall far in the middle).
        """),
        code("""
        scores = evaluate(model, nyu["test"], "nyu", device=DEVICE)
        baseline = evaluate_baseline(nyu["train"], nyu["test"])
        print(f"test split, {len(nyu['test'])} images ({nyu['test'].name}):")
        print(f"  normalized MSE  LR-ASPP {scores['normalized_mse']:.4f} | mean-depth baseline {baseline['normalized_mse']:.4f} "
              f"| the report (real NYU) {REPORT_RESULTS['lraspp']['nyu_mse']}")
        print(f"  after median alignment: AbsRel {scores['abs_rel']:.3f}, RMSE {scores['rmse']:.3f} m, δ<1.25 {scores['delta1']:.3f}")
        """),
        code("""
        fig = viz.show_predictions(nyu["test"].images, {"LR-ASPP": predict_depth(model, nyu["test"])},
                                   f"LR-ASPP on NYU-layout test images ({TAG})", depths=nyu["test"].depths)
        """),
        md("""
        ## 4. Inside the 21 → 1 head

        The 21 maps before the 1×1 convolution, for one test image, the ten with the largest mixing weights
        (the weight is in each title). Depth comes out as a weighted sum of them.
        """),
        code("""
        from depthkit.models import normalize_images

        with torch.no_grad():
            maps = model.lraspp(normalize_images(nyu["test"].images[:1]).to(DEVICE))["out"][0].cpu()
        weights = model.combine.weight.detach().flatten().cpu()
        order = weights.abs().argsort(descending=True)[:10].tolist()
        fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
        axes[0, 0].imshow(viz.to_image(nyu["test"].images[0])); axes[0, 0].axis("off"); axes[0, 0].set_title("image", fontsize=9)
        for ax, k in zip(axes.flat[1:11], order):
            viz.show_depth(ax, maps[k], f"map {k}, w = {weights[k]:+.2f}", normalize=True)
        viz.show_depth(axes[1, 5], predict_depth(model, nyu["test"], n=1)[0], "1×1 conv: depth", normalize=True)
        fig.suptitle(f"LR-ASPP's 21 maps (10 strongest) for one NYU-layout test image ({TAG})", fontsize=10)
        fig.tight_layout()
        """),
        md("""
        Under `smoke` the model has seen a couple of dozen images for one epoch: expect blur and a score
        near the baseline. Under `demo` it should clearly beat the baseline; under `report` compare with the
        report's 0.058. Next, `04_unetpp`: the large model.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 04 - U-Net++
# ------------------------------------------------------------------------------------------------
def nb04() -> list:
    return header("04_unetpp", "04 · Model I: U-Net++ with a ResNeXt-50 encoder", """
        The report's large model is **U-Net++** (Zhou et al., 2018) from segmentation-models-pytorch, with
        a **ResNeXt-50 (32×4d)** encoder: 48.5 M parameters, fifteen times LR-ASPP. It trained it with a
        **frozen-encoder warm-up**: 2 epochs with the encoder fixed, then 8 with all weights.
        """) + [
        md("""
        ## 1. The architecture, and the multiple-of-32 rule

        The encoder halves the resolution five times. U-Net's decoder climbs back up, joining each level
        with the encoder's features of the same size (skip connections). U-Net++ replaces each plain skip
        by a small dense block of convolutions, so the decoder receives features that have already been
        partly decoded: the "nested" skip pathways.

        Five halvings mean the input must be divisible by 2⁵ = 32, and smp refuses 200×200, the report's
        size. depthkit's wrapper pads the input by reflection to the next multiple of 32 (224) and crops the
        output back, so callers never see the rule.
        """),
        code("""
        from depthkit.models import build_model, count_parameters, freeze_encoder, unfreeze_encoder

        model = build_model("unetpp")
        print(f"U-Net++: {count_parameters(model) / 1e6:.2f} M parameters, encoder {count_parameters(model.encoder) / 1e6:.2f} M")
        with torch.no_grad():
            print("depthkit's U-Net++ on 200×200:", tuple(model(torch.zeros(1, 3, 200, 200)).shape))
            try:
                model.net(torch.zeros(1, 3, 200, 200))
            except Exception as err:  # smp's own check: "divisible by 32"
                print("the bare smp model refuses 200×200:", type(err).__name__)
        """, check=True),
        md("""
        ## 2. Why freeze the encoder first?

        With ImageNet weights, the encoder already knows edges, textures and objects, while the decoder
        starts random. In the first steps the decoder's gradients are large and noisy; letting them into
        the encoder would wreck what it knows. So the warm-up trains only the decoder, then releases
        everything. `freeze_encoder` just switches off `requires_grad`:
        """),
        code("""
        freeze_encoder(model)
        print(f"encoder frozen:  {count_parameters(model, trainable_only=True) / 1e6:5.2f} M of "
              f"{count_parameters(model) / 1e6:.2f} M parameters train")
        unfreeze_encoder(model)
        print(f"encoder free:    {count_parameters(model, trainable_only=True) / 1e6:5.2f} M train")
        """, check=True),
        md("""
        Honest caveat: without a network the `smoke` and `demo` profiles start from random weights
        (`pretrained=False`), so here the warm-up only shows the mechanics. With `report` on Colab the
        ImageNet encoder is loaded and the warm-up matters.

        ## 3. Training

        Same recipe as LR-ASPP (Adam 1e-3, weight decay 0.02, normalized MSE); epochs from the profile. On a
        CPU U-Net++ is slow (about 1.7 s per step of 8 images at 64×64), which is why `demo` gives it fewer
        epochs than LR-ASPP. A finished run in `runs/<profile>/unetpp_nyu/` is reused.
        """),
        code("""
        from depthkit.pipeline import load_stage_data
        from depthkit.reproduce import REPORT_RESULTS, predict_depth, run_dir, train_stage
        from depthkit.train import evaluate, evaluate_baseline, load_model

        nyu = load_stage_data(PROFILE, "nyu")
        frozen, full = PROFILE.epochs("unetpp", "nyu")
        print(f"{len(nyu['train'])} training images; {frozen} epoch(s) with the encoder frozen, then {full} with all weights")
        model, history, run = train_stage(PROFILE, "unetpp", "nyu", nyu, device=DEVICE, progress=False)
        for e, loss, val, fr, sec in zip(history["epoch"], history["train_loss"], history["val_normalized_mse"],
                                         history["frozen"], history["seconds"]):
            print(f"epoch {e:3d}{' (encoder frozen)' if fr else '                 '}: training loss {loss:.4f}, "
                  f"validation normalized MSE {val:.4f} ({sec:.1f} s)")
        """),
        code("""
        fig = viz.plot_histories({"U-Net++, NYU": history}, f"U-Net++ trained on NYU-layout data ({TAG})")
        """),
        md("""
        ## 4. Results, and LR-ASPP beside it

        If `03_lraspp` ran under this profile, its checkpoint is loaded for comparison.
        """),
        code("""
        baseline = evaluate_baseline(nyu["train"], nyu["test"])
        rows = {"U-Net++": model}
        lraspp_ckpt = run_dir(PROFILE, "lraspp", "nyu") / "best.pt"
        if lraspp_ckpt.exists():
            rows["LR-ASPP"] = load_model(lraspp_ckpt, device=DEVICE)
        print(f"test split, {len(nyu['test'])} images; mean-depth baseline {baseline['normalized_mse']:.4f}")
        for name, m in rows.items():
            s = evaluate(m, nyu["test"], "nyu", device=DEVICE)
            key = "unetpp" if name == "U-Net++" else "lraspp"
            print(f"  {name:<8} normalized MSE {s['normalized_mse']:.4f} (report: {REPORT_RESULTS[key]['nyu_mse']}), "
                  f"AbsRel {s['abs_rel']:.3f}, δ<1.25 {s['delta1']:.3f}")
        """),
        code("""
        preds = {name: predict_depth(m, nyu["test"]) for name, m in rows.items()}
        fig = viz.show_predictions(nyu["test"].images, preds, f"U-Net++ (and LR-ASPP) on NYU-layout test images ({TAG})",
                                   depths=nyu["test"].depths)
        """),
        md("""
        Next, `05_diw_finetuning`: teaching both models from pairs of points.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 05 - DIW fine-tuning
# ------------------------------------------------------------------------------------------------
def nb05() -> list:
    return header("05_diw_finetuning", "05 · Fine-tuning on DIW with the ranking loss", """
        NYU is 1449 images of indoor rooms. DIW is half a million photos of everything, but each carries a
        single relation between two points. The report's plan: learn dense depth on NYU first, then
        fine-tune on DIW with the ranking loss from `02`, and measure how often the model orders DIW's
        test pairs correctly.
        """) + [
        md("""
        ## 1. Data

        The report trained and tested inside the ~74k-image DIW *test* partition (a seeded 80/10/10 split
        here). Chen et al. instead trained on DIW_train_val and tested on DIW_test; the profile's
        `diw_protocol` switches between the two.
        """),
        code("""
        from depthkit.pipeline import describe_splits, load_stage_data, prepare_data
        from depthkit.reproduce import CHEN_2016_DIW_ACC, REPORT_RESULTS, predict_depth, train_stage
        from depthkit.train import evaluate

        prepared = prepare_data(PROFILE)
        nyu = load_stage_data(PROFILE, "nyu", prepared)
        diw = load_stage_data(PROFILE, "diw", prepared)
        print(f"DIW protocol: {PROFILE.diw_protocol}")
        print(describe_splits(diw))
        """),
        md("""
        ## 2. The starting point: the NYU models

        The checkpoints from `03` and `04` when they exist (otherwise trained now). How well do they order
        DIW's pairs *before* seeing a single one? A model that learned "larger = farther" on NYU should
        already beat 50 % with our sign convention.
        """),
        code("""
        MODELS = {"lraspp": "LR-ASPP", "unetpp": "U-Net++"}
        nyu_models, before = {}, {}
        for name in MODELS:
            nyu_models[name], _, _ = train_stage(PROFILE, name, "nyu", nyu, device=DEVICE, progress=False)
            before[name] = evaluate(nyu_models[name], diw["test"], "diw", device=DEVICE)
            print(f"{MODELS[name]:<8} after NYU only: DIW test accuracy {100 * before[name]['ordinal_accuracy']:.1f} %")
        """),
        md("""
        ## 3. Fine-tuning

        The ranking loss with r taken from the CSV as it is (`>` → +1, A farther), a smaller learning rate
        than on NYU (the model is not starting from scratch), epochs from the profile. Each run starts from
        the best NYU checkpoint and is kept in `runs/<profile>/<model>_diw/`.
        """),
        code("""
        diw_models, after, histories = {}, {}, {}
        for name, label in MODELS.items():
            diw_models[name], histories[f"{label} DIW"], run = train_stage(PROFILE, name, "diw", diw, device=DEVICE, progress=False)
            after[name] = evaluate(diw_models[name], diw["test"], "diw", device=DEVICE)
            print(f"{label:<8} {len(histories[f'{label} DIW']['epoch'])} epoch(s) -> {run}")
        """),
        code("""
        fig = viz.plot_histories(histories, f"Fine-tuning on DIW-layout pairs ({TAG})")
        """),
        md("""
        ## 4. Before and after

        Accuracy is the report's DIW number; WHDR (δ = 0.1, see `02`) is the error rate papers use. The
        report got 58.4 % (LR-ASPP) and 65.3 % (U-Net++) on real DIW; Chen et al.'s hourglass network
        reached 77.9 %.
        """),
        code("""
        print(f"DIW test split: {len(diw['test'])} pairs ({diw['test'].name}); profile {PROFILE.name}")
        print(f"{'model':<9}{'after NYU':>11}{'after DIW':>11}{'WHDR':>8}{'report':>9}")
        for name, label in MODELS.items():
            print(f"{label:<9}{100 * before[name]['ordinal_accuracy']:>10.1f}%{100 * after[name]['ordinal_accuracy']:>10.1f}%"
                  f"{100 * after[name]['whdr']:>7.1f}%{REPORT_RESULTS[name]['diw_acc']:>8.1f}%")
        print(f"Chen et al. 2016 (real DIW): {CHEN_2016_DIW_ACC} %")
        """),
        md("""
        ## 5. Predictions on DIW images

        Each row: a DIW-layout test image with its annotated pair, then the depth maps before and after
        fine-tuning (near = bright). The ranking loss only constrains one pair per image, so it shapes the
        *order* of depths, not their scale: the fine-tuned maps can drift in contrast while keeping
        "larger = farther".
        """),
        code("""
        preds = {}
        for name, label in MODELS.items():
            preds[f"{label} after NYU"] = predict_depth(nyu_models[name], diw["test"])
            preds[f"{label} after DIW"] = predict_depth(diw_models[name], diw["test"])
        fig = viz.show_predictions(diw["test"].images, preds, f"Before and after DIW fine-tuning, DIW-layout test images ({TAG})",
                                   pairs=diw["test"].pairs, relation=diw["test"].relation)
        """),
        md("""
        ## 6. Did fine-tuning cost NYU accuracy?

        The ranking loss never looks at depth values, only at their order, so the dense depth learned on
        NYU can degrade. The NYU test score before and after:
        """),
        code("""
        for name, label in MODELS.items():
            a = evaluate(nyu_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
            b = evaluate(diw_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
            print(f"{label:<8} NYU test normalized MSE: {a:.4f} after NYU -> {b:.4f} after DIW fine-tuning")
        """),
        md("""
        Next, `06_comparison`: everything side by side, and the figures of the report.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 06 - comparison
# ------------------------------------------------------------------------------------------------
def nb06() -> list:
    return header("06_comparison", "06 · The comparison: the report's table, its figures, and beyond", """
        This notebook puts our results beside the report's, regenerates the report's figures through
        `depthkit.reproduce` (the same code as `python -m depthkit reproduce`), and then asks three
        questions the report did not: is U-Net++ better because of its architecture or its size (a third,
        parameter-matched model), which scenes are hard, and what do the failures look like?
        """) + [
        md("""
        ## 1. Where the figures go

        The committed `figures/` folder holds the figures of a `demo` run. Under `demo` and `report` this
        notebook rewrites them there; under `smoke` (the tests) it writes to `runs/smoke/figures/` so the
        committed ones stay intact.
        """),
        code("""
        from IPython.display import Image, Markdown, display

        from depthkit.config import figures_dir, runs_dir

        FIG_DIR = figures_dir() if PROFILE.name in ("demo", "report") else runs_dir() / PROFILE.name / "figures"
        print(f"profile {PROFILE.name}: figures go to {FIG_DIR}")
        """),
        md("""
        ## 2. The whole reproduction

        `reproduce` prepares the data, trains both report models on NYU, fine-tunes them on DIW, evaluates
        on the test splits, and writes the figures and `results.md`. Checkpoints that `03`–`05` left under
        this profile are reused, so this is quick after them.
        """),
        code("""
        from depthkit.reproduce import CHEN_2016_DIW_ACC, REPORT_RESULTS, reproduce

        results = reproduce(PROFILE, out=FIG_DIR, device=str(DEVICE), progress=False)
        print("written:", ", ".join(results["figures"]))
        """),
        md("""
        ## 3. The report's table beside ours

        Read the numbers with their data in mind: under `smoke`/`demo` ours come from synthetic scenes and
        only show that the pipeline learns; only a `report` run on the real datasets is comparable. The
        baseline predicts the training set's mean depth map for every image; on DIW it therefore orders a
        pair by *where* its points sit in the picture (lower usually nearer), a bias DIW was built to defeat.
        """),
        code("""
        p = results["provenance"]
        print(f"ours: {p['data']} | profile {p['profile']} | {p['device']}")
        print(f"{'model':<27}{'params':>9}{'NYU MSE report':>16}{'ours':>8}{'DIW acc. report':>17}{'ours':>8}")
        for name, rep in REPORT_RESULTS.items():
            r = results["models"][name]
            print(f"{rep['label']:<27}{r['params_m']:>7.1f} M{rep['nyu_mse']:>16.3f}{r['nyu']['normalized_mse']:>8.3f}"
                  f"{rep['diw_acc']:>16.1f}%{100 * r['diw']['ordinal_accuracy']:>7.1f}%")
        b = results["baseline"]
        print(f"{'mean-depth baseline':<27}{'0':>9}{'–':>16}{b['nyu']['normalized_mse']:>8.3f}{'–':>17}"
              f"{100 * b['diw']['ordinal_accuracy']:>7.1f}%")
        print(f"Chen et al. 2016, real DIW: {CHEN_2016_DIW_ACC} % accuracy")
        """),
        md("""
        The full `results.md` that `reproduce` wrote, standard metrics included:
        """),
        code("""
        display(Markdown((FIG_DIR / "results.md").read_text(encoding="utf-8")))
        """),
        md("""
        ## 4. The report's figures, regenerated

        Each file was written by `depthkit.reproduce` just now; its title names the data, profile and device.
        """),
        code("""
        written = sorted(p.name for p in FIG_DIR.glob("*.png"))
        print(f"{len(written)} figures in {FIG_DIR} (profile {PROFILE.name}):", ", ".join(written))
        # three of them here; notebooks 01, 03, 04 and 05 already showed the samples and predictions
        for name in ["comparison_table.png", "training_curves.png", "predictions_after_diw_unetpp.png"]:
            display(Image(filename=str(FIG_DIR / name), width=720))
        """),
        md("""
        ## 5. Architecture or size? A parameter-matched comparison

        The report found U-Net++ (48 M parameters) far better than LR-ASPP (3.2 M) and wondered whether that
        was the architecture or simply the size. The third model, `unetpp_mnv2`, keeps U-Net++'s nested
        decoder but uses a MobileNetV2 encoder and a slim decoder: 3.25 M parameters, within 1 % of
        LR-ASPP. Same data, same recipe:

        * `lraspp` vs `unetpp_mnv2`: different architecture, same size;
        * `unetpp_mnv2` vs `unetpp`: same architecture, 15× the size.
        """),
        code("""
        from depthkit.models import MODEL_NAMES, count_parameters
        from depthkit.pipeline import load_stage_data, prepare_data
        from depthkit.reproduce import predict_depth, run_dir, train_stage
        from depthkit.train import evaluate, load_model

        prepared = prepare_data(PROFILE)
        nyu = load_stage_data(PROFILE, "nyu", prepared)
        diw = load_stage_data(PROFILE, "diw", prepared)
        THIRD = MODEL_NAMES[2]
        third_nyu, _, _ = train_stage(PROFILE, THIRD, "nyu", nyu, device=DEVICE, progress=False)
        third_diw, _, _ = train_stage(PROFILE, THIRD, "diw", diw, device=DEVICE, progress=False)
        matched = {name: {"params_m": r["params_m"], "nyu": r["nyu"]["normalized_mse"], "diw": r["diw"]["ordinal_accuracy"]}
                   for name, r in results["models"].items()}
        matched[THIRD] = {"params_m": count_parameters(third_nyu) / 1e6,
                          "nyu": evaluate(third_nyu, nyu["test"], "nyu", device=DEVICE)["normalized_mse"],
                          "diw": evaluate(third_diw, diw["test"], "diw", device=DEVICE)["ordinal_accuracy"]}
        header = ["model", "parameters", "NYU test normalized MSE ↓", "DIW test accuracy ↑"]
        rows = [[name, f"{m['params_m']:.2f} M", f"{m['nyu']:.4f}", f"{100 * m['diw']:.1f} %"]
                for name, m in sorted(matched.items(), key=lambda kv: kv[1]["params_m"])]
        fig = viz.table_figure(header, rows, f"Parameter-matched comparison ({TAG})")
        display(fig)
        print("saved", viz.save_figure(fig, FIG_DIR / "parameter_matched.png"))
        """),
        md("""
        ## 6. Which scenes are hard?

        The normalized MSE of every NYU-layout test image, grouped by scene. For the synthetic scenes the
        natural "scene type" is how many boxes stand in the room (more boxes: more occlusion edges, where
        depth jumps); for real NYU data it is the scene type stored in the labeled file (kitchen, bedroom, ...).
        """),
        code("""
        import numpy as np

        from depthkit import metrics
        from depthkit.pipeline import scene_labels

        test = nyu["test"]
        nyu_models = {name: load_model(run_dir(PROFILE, name, "nyu") / "best.pt", device=DEVICE) for name in ("lraspp", "unetpp")}
        nyu_models[THIRD] = third_nyu
        preds = {name: predict_depth(m, test, n=None) for name, m in nyu_models.items()}
        errors = {name: metrics.normalized_mse(p, test.depths, test.depths > 0, reduction="none") for name, p in preds.items()}

        groups = scene_labels(PROFILE, prepared, "test")  # synthetic: "3 boxes"; real NYU: "kitchen", "bedroom", ...
        labels = sorted(set(groups))
        fig, ax = plt.subplots(figsize=(8, 3.4))
        width = 0.8 / len(errors)
        for k, (name, err) in enumerate(errors.items()):
            means = [float(np.nanmean([e for e, g in zip(err.tolist(), groups) if g == lab])) for lab in labels]
            ax.bar(np.arange(len(labels)) + k * width, means, width, label=name)
        ax.set_xticks(np.arange(len(labels)) + width * (len(errors) - 1) / 2,
                      [f"{lab}\\n({groups.count(lab)} images)" for lab in labels])
        ax.set(ylabel="normalized MSE (mean)", title=f"NYU-layout test error by scene type ({TAG})")
        ax.legend(fontsize=8)
        fig.tight_layout()
        display(fig)
        print("saved", viz.save_figure(fig, FIG_DIR / "errors_by_scene_type.png"))
        """),
        md("""
        ## 7. Failure cases

        The three NYU-layout test images U-Net++ gets most wrong, with every model's prediction beside the
        truth. Look for what they share: thin objects, depth edges, unusual camera angles?
        """),
        code("""
        worst = errors["unetpp"].nan_to_num(-1).argsort(descending=True)[:3]
        print("worst images:", worst.tolist(), "normalized MSE:", [f"{errors['unetpp'][i]:.3f}" for i in worst])
        fig = viz.show_predictions(test.images[worst], {name: p[worst] for name, p in preds.items()},
                                   f"The 3 hardest NYU-layout test images for U-Net++ ({TAG})", depths=test.depths[worst])
        display(fig)
        print("saved", viz.save_figure(fig, FIG_DIR / "failures_nyu.png"))
        """),
        md("""
        And the DIW-layout test pairs the fine-tuned U-Net++ orders wrongly:
        """),
        code("""
        from depthkit.losses import pair_values

        unetpp_diw = load_model(run_dir(PROFILE, "unetpp", "diw") / "best.pt", device=DEVICE)
        pred = predict_depth(unetpp_diw, diw["test"], n=None)
        z_a, z_b = pair_values(pred, diw["test"].pairs)
        wrong = (torch.sign(z_a - z_b) != diw["test"].relation).any(dim=1).nonzero().flatten()[:4]
        print(f"{int((torch.sign(z_a - z_b) != diw['test'].relation).sum())} of {len(diw['test'])} DIW test pairs ordered wrongly")
        if len(wrong):
            fig = viz.show_predictions(diw["test"].images[wrong], {"U-Net++ after DIW": pred[wrong]},
                                       f"DIW-layout test pairs U-Net++ orders wrongly ({TAG})",
                                       pairs=diw["test"].pairs[wrong], relation=diw["test"].relation[wrong])
            display(fig)
            print("saved", viz.save_figure(fig, FIG_DIR / "failures_diw.png"))
        """),
        md("""
        Next, `07_your_own_image`: try a trained model on a photograph of your own.
        """),
    ]


# ------------------------------------------------------------------------------------------------
# 07 - your own image
# ------------------------------------------------------------------------------------------------
def nb07() -> list:
    return header("07_your_own_image", "07 · Your own image", """
        Upload a photo, see the depth a trained model predicts for it, and ask the model DIW's question
        about two points of your choice: which one is closer? Without an upload the notebook uses a real
        NYU Depth V2 photograph that ships with the repository, whose Kinect depth lets us check the answer.
        """) + [
        md("""
        ## 1. A trained model

        U-Net++ fine-tuned on DIW if an earlier notebook trained it under this profile, otherwise LR-ASPP,
        which trains in seconds. A word of warning: under `smoke` and `demo` the model has only seen
        synthetic rooms full of boxes, so on a real photograph expect it to follow the cues it knows
        (floors, walls, haze) and to be confused by everything else. That gap between training and real
        data is the lesson, not a bug. The `report` profile trains on the real datasets.
        """),
        code("""
        from depthkit.pipeline import load_stage_data, prepare_data
        from depthkit.reproduce import run_dir, train_stage
        from depthkit.train import load_model

        MODEL_NAME = "unetpp" if (run_dir(PROFILE, "unetpp", "diw") / "best.pt").exists() else "lraspp"
        checkpoint = run_dir(PROFILE, MODEL_NAME, "diw") / "best.pt"
        if not checkpoint.exists():  # nothing trained yet under this profile: NYU, then DIW
            prepared = prepare_data(PROFILE)
            train_stage(PROFILE, MODEL_NAME, "nyu", load_stage_data(PROFILE, "nyu", prepared), device=DEVICE, progress=False)
            train_stage(PROFILE, MODEL_NAME, "diw", load_stage_data(PROFILE, "diw", prepared), device=DEVICE, progress=False)
        model = load_model(checkpoint, device=DEVICE)
        print(f"{MODEL_NAME} from {checkpoint}: trained on {PROFILE.data} data ({PROFILE.name} profile), "
              f"input {PROFILE.size}×{PROFILE.size}")
        """),
        md("""
        ## 2. Choose a photo

        Click **Upload**, pick a JPEG or PNG, then run the next cell. Skip this to use the bundled NYU photo.
        (The widget needs a live kernel: Jupyter, JupyterLab or Colab.)
        """),
        code("""
        import ipywidgets as widgets
        from IPython.display import display

        upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload")
        display(upload)
        """),
        md("""
        ipywidgets changed the format of `FileUpload.value` between versions: 7.x (Colab) gives a dict
        `{filename: {"metadata": ..., "content": bytes}}`, 8.x a tuple of dicts with `"name"` and `"content"`
        (a memoryview). The cell handles both.
        """),
        code("""
        import numpy as np

        from depthkit.config import repo_root
        from depthkit.data import load_nyu_png_depth, load_rgb, resize_depth, resize_image

        SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples"  # NYU Depth V2 frames, BSD-2 (LICENSE there)

        def uploaded_file(upload):
            \"\"\"(name, bytes) of the uploaded file under ipywidgets 7 or 8, or None.\"\"\"
            value = upload.value
            if not value:
                return None
            if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
                name, item = next(iter(value.items()))
            else:                        # ipywidgets 8: ({"name": ..., "content": memoryview, ...},)
                item = value[0]
                name = item["name"]
            return name, bytes(item["content"])

        file = uploaded_file(upload)
        if file:
            SOURCE, kinect = f"your photo {file[0]}", None
            photo = load_rgb(file[1])  # bytes work too: grayscale, CMYK, 16-bit all come back as RGB
        else:
            SOURCE = "real NYU photo rgb_00000 (bundled)"
            photo = load_rgb(SAMPLES / "rgb" / "rgb_00000.jpg")
            kinect = resize_depth(load_nyu_png_depth(SAMPLES / "depth" / "sync_depth_00000.png"), PROFILE.size)
        print(f"{SOURCE}: {photo.shape[1]}×{photo.shape[0]} pixels")
        """),
        md("""
        ## 3. Predicted depth

        The photo is squashed to the model's input size (as the training data was) and predicted in one go.
        """),
        code("""
        from depthkit.train import predict

        S = PROFILE.size
        small = resize_image(photo, S)
        x = torch.tensor(small).permute(2, 0, 1)[None].to(DEVICE)  # uint8 [1, 3, S, S]
        with torch.no_grad():
            depth = predict(model.eval(), x).cpu()[0, 0]

        panels = 3 if kinect is not None else 2
        fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 3.6))
        axes[0].imshow(photo); axes[0].axis("off"); axes[0].set_title("photo", fontsize=9)
        viz.show_depth(axes[1], depth, f"{MODEL_NAME}: predicted depth (near = bright)", normalize=True)
        if kinect is not None:
            viz.show_depth(axes[2], kinect, "Kinect depth (holes grey)")
        fig.suptitle(f"{SOURCE} · {MODEL_NAME} trained on {TAG}", fontsize=10)
        fig.tight_layout()
        """),
        md("""
        ## 4. Which point is closer?

        Move A and B (row and column on the model's input grid, `PROFILE.size` pixels square). The model answers by
        comparing its predicted depth at the two points; for the bundled photo the Kinect measurement says
        what is true (when it measured both points). The first figure judges the default points, A on the
        floor near the bottom and B higher up; the sliders below it need a live kernel.
        """),
        code("""
        def judge(ya=int(0.85 * S), xa=S // 2, yb=int(0.35 * S), xb=S // 2):
            za, zb = float(depth[ya, xa]), float(depth[yb, xb])
            verdict = "A is farther than B" if za > zb else "A is closer than B"
            fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
            axes[0].imshow(small); axes[0].set_xticks([]); axes[0].set_yticks([])
            viz.draw_pair(axes[0], (ya, xa, yb, xb))
            viz.show_depth(axes[1], depth, f"z_A = {za:.3f}, z_B = {zb:.3f}", normalize=True)
            viz.draw_pair(axes[1], (ya, xa, yb, xb))
            fig.suptitle(f"{SOURCE} · {MODEL_NAME} ({TAG}): {verdict}", fontsize=10)
            plt.show()
            print(f"the model says: {verdict} (z_A − z_B = {za - zb:+.3f}; larger = farther)")
            if kinect is not None:
                ka, kb = float(kinect[ya, xa]), float(kinect[yb, xb])
                if ka > 0 and kb > 0:
                    truth = "A is farther than B" if ka > kb else "A is closer than B"
                    print(f"the Kinect says:  {truth} ({ka:.2f} m vs {kb:.2f} m) -> the model is "
                          f"{'right' if truth == verdict else 'wrong'}")
                else:
                    print("the Kinect has no measurement at A or B (a hole): move the point")

        judge()  # the default points, judged once (also for readers without a live kernel); now move them:
        slider = lambda v: widgets.IntSlider(value=v, min=0, max=S - 1)
        widgets.interact(judge, ya=slider(int(0.85 * S)), xa=slider(S // 2), yb=slider(int(0.35 * S)), xb=slider(S // 2));
        """),
        md("""
        That is the whole series: data, losses, two models, fine-tuning, comparison and your own photo.
        To see the models really learn, run everything with `DEPTHKIT_PROFILE=demo`; for the real thing, use
        `report` on a Colab GPU after fetching the data in `00_setup`.
        """),
    ]


NOTEBOOKS = {
    "00_setup": nb00,
    "01_data_exploration": nb01,
    "02_losses_and_metrics": nb02,
    "03_lraspp": nb03,
    "04_unetpp": nb04,
    "05_diw_finetuning": nb05,
    "06_comparison": nb06,
    "07_your_own_image": nb07,
}


def build(stem: str) -> nbformat.NotebookNode:
    """The notebook ``stem`` without outputs, with stable cell ids."""
    nb = new_notebook(cells=NOTEBOOKS[stem]())
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
        "colab": {"provenance": []},
    }
    return nb


def is_checked(cell) -> bool:
    """True for code cells nbval compares (``# NBVAL_CHECK_OUTPUT`` on their first line)."""
    return cell.cell_type == "code" and cell.source.startswith(CHECK)


def keep_old_outputs(new: nbformat.NotebookNode, path: Path) -> None:
    """Copy the stored outputs of unchanged cells from the notebook at ``path`` into ``new``."""
    if not path.exists():
        return
    old = {c.source: c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"}
    for cell in new.cells:
        if cell.cell_type == "code" and cell.source in old:
            cell["outputs"] = old[cell.source].get("outputs", [])
            cell["execution_count"] = old[cell.source].get("execution_count")


def execute_checked(nb: nbformat.NotebookNode, profile: str = "smoke", timeout: int = 900) -> None:
    """Run the notebook under ``profile`` and keep the outputs of the checked cells only."""
    from nbclient import NotebookClient

    run = nbformat.from_dict(nb)
    os.environ["DEPTHKIT_PROFILE"] = profile
    os.environ.setdefault("MPLBACKEND", "Agg")
    NotebookClient(run, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}).execute()
    for cell, done in zip(nb.cells, run.cells):
        if is_checked(cell):
            cell["outputs"], cell["execution_count"] = done.outputs, done.execution_count  # nbval: outputs need a count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true",
                        help="run each notebook (smoke profile) and store the outputs of its checked cells")
    parser.add_argument("--fresh", action="store_true", help="drop all stored outputs instead of keeping unchanged ones")
    parser.add_argument("names", nargs="*", help="notebook stems (default: all)")
    args = parser.parse_args(argv)
    for stem in args.names or NOTEBOOKS:
        path = NB_DIR / f"{stem}.ipynb"
        nb = build(stem)
        if not args.fresh:
            keep_old_outputs(nb, path)
        if args.execute:
            execute_checked(nb)
        nbformat.validate(nb)
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
        print(f"wrote {path.relative_to(NB_DIR.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
