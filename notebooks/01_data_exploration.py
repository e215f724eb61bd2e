# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · The data: NYU Depth V2, DIW and the synthetic scenes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/01_data_exploration.ipynb)
#
# Two very different kinds of supervision meet in this project. **NYU Depth V2** gives a dense depth
# map in metres for every pixel of 1449 indoor photos: a Kinect sensor measured it, with holes where it
# saw nothing, and the dataset's authors filled the holes in (the *in-painted* depth that depthkit,
# like the report, trains and tests on; section 2). **DIW** gives, for each of about half a million internet photos, just *two points* and a human's answer
# to "which one is closer?". This notebook looks at both, at their file formats and their traps,
# and at the synthetic scenes that stand in for them when the real files are not there.

# %% [markdown]
# **After this notebook you can**
#
# - read NYU Depth V2's MATLAB v7.3 file the right way round and explain the transpose trap
# - tell raw Kinect depth (`rawDepths`, with holes) from the in-painted `depths` that depthkit and the papers use
# - describe DIW's CSV (1-based points, `>` = A farther) and map a pair onto the network's grid
# - read depth statistics per pixel and per image, and say what the report's normalisation removes
# - name the monocular depth cues the synthetic scenes carry, and why DIW balances its pairs
#
# **It assumes** `00_setup`. Maths: array axes and indexing (row-major vs column-major), histograms, medians.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 45 minutes (an estimate).

# %%
# Set-up cell, the same in every notebook (its one source: notebooks/colab_cell.txt; a test compares the copies).
# On Google Colab it fetches depthkit and installs only what Colab lacks; anywhere else it does nothing.
import os, subprocess, sys
from pathlib import Path

# The repository to clone on Colab: set DEPTHKIT_REPO (e.g. `%env DEPTHKIT_REPO=...` in a cell above) to use your copy.
REPO_URL = os.environ.get("DEPTHKIT_REPO", "https://github.com/depthkit/depthkit")
USE_DRIVE = False  # True: mount Google Drive and keep checkpoints and results there (00_setup, section 7)
SMP = "segmentation-models-pytorch>=0.6,<0.7"  # U-Net++: the tested range (0.6.0); not preinstalled on Colab
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    REPO_DIR = "/content/depthkit"
    if not os.path.isdir(os.path.join(REPO_DIR, "depthkit")):
        clone = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], capture_output=True, text=True)
        if clone.returncode != 0:
            class CloneFailed(Exception):  # stops "Run all"; IPython shows these lines instead of a traceback
                def _render_traceback_(self):
                    return str(self).splitlines()

            why = (clone.stderr.strip() or "git failed").splitlines()[-1]
            raise CloneFailed(f"Could not clone {REPO_URL}:\n  {why}\n"
                              "Set DEPTHKIT_REPO to a depthkit repository you can reach, then run this cell again:\n"
                              "  %env DEPTHKIT_REPO=<https address of your fork or copy>\n"
                              f"(or put a checkout, with its depthkit/ folder, at {REPO_DIR}).")
    os.chdir(REPO_DIR)
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    # pip install once per commit: running this cell again (after a restart, Run all, ...) skips it until a `git pull`.
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    marker = Path(REPO_DIR + ".installed")  # beside the checkout: the commit installed last
    if not head or not marker.is_file() or marker.read_text() != head:
        # --no-deps: Colab's own torch, torchvision, ipywidgets 7.x, matplotlib and h5py stay as they are.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", REPO_DIR], check=True)
        marker.write_text(head)
    try:
        import segmentation_models_pytorch as smp
        smp_ok = smp.__version__.startswith("0.6")
    except ImportError:
        smp_ok = False
    if not smp_ok:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", SMP], check=True)
    import torch
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available()
          else "none (Runtime > Change runtime type > GPU, then run this cell again)")
    from depthkit.course.colab import reattach_drive
    reattach_drive(USE_DRIVE)  # the folders 00_setup saved on Drive; after a restarted session, without the switch

# %% [markdown]
# The **profile** decides the data, the image size, the epochs and the device (see `00_setup`):
# `smoke` runs in seconds and is what the tests use (the models learn nothing), `demo` trains on the
# embedded synthetic scenes in minutes on a CPU, `report` uses the real NYU Depth V2 and DIW with the
# report's settings on a GPU. Every figure title says which one produced it.

# %%
import matplotlib.pyplot as plt
import torch

from depthkit import viz
from depthkit.config import get_profile
from depthkit.device import pick_device

plt.rcParams["figure.dpi"] = 100       # legible figures; figures/ is written at viz.SAVE_DPI (120)
PROFILE = get_profile()               # DEPTHKIT_PROFILE=smoke | demo | report picks it (see 00_setup)
DEVICE = pick_device(PROFILE.device)  # CUDA if there is a GPU, then Apple MPS, then the CPU
TAG = f"{PROFILE.data} data · {PROFILE.name} profile · {DEVICE.type}"  # goes into every figure title
print(f"profile {PROFILE.name!r}: {PROFILE.data} data at {PROFILE.size}×{PROFILE.size}, "
      f"batch {PROFILE.batch_size}, device {DEVICE}")

# %%
# How long this notebook takes to run, measured (notebooks/run_times.json):
from depthkit.course.runtimes import describe

print(describe("01_data_exploration"))

# %%
import numpy as np

from depthkit.config import data_dir
from depthkit.pipeline import describe_splits, load_stage_data, prepare_data

prepared = prepare_data(PROFILE)
nyu = load_stage_data(PROFILE, "nyu", prepared)
diw = load_stage_data(PROFILE, "diw", prepared)
print(f"{prepared.source} data, in the data folder under {prepared.root.relative_to(data_dir()).as_posix()}/")
print(describe_splits(nyu))
print(describe_splits(diw))

# %%
from IPython.display import Markdown

if PROFILE.diw_protocol == "chen":
    diw_split = (f"Under the `{PROFILE.name}` profile DIW follows Chen et al. instead: training on DIW_train.csv, "
                 "validating on DIW_val.csv (the authors' split), testing on DIW_test.csv.")
else:
    diw_split = ("The report trained *and* tested inside the ~74k-image DIW test partition, so depthkit splits that "
                 f"partition too, seeded: under the `{PROFILE.name}` profile "
                 + "/".join(f"{100 * f:.0f}" for f in PROFILE.diw_fractions) + " % train/validation/test.")
Markdown("Validation is always carved out of the training split; the test split is touched only by the final "
         f"evaluation. {diw_split}")

# %% [markdown]
# ## 1. NYU Depth V2: the file and its orientation trap
#
# `nyu_depth_v2_labeled.mat` is a MATLAB v7.3 file, which is HDF5 inside. Read through `h5py`, MATLAB's
# column-major arrays come out **transposed**: `images` is `(N, 3, 640, 480)`, `depths` `(N, 640, 480)`.
# Image *i* is `images[i].transpose(2, 1, 0)` → `(480, 640, 3)`. Forget one transpose and every image
# is silently mirrored on its diagonal: the network still trains, on sideways rooms.
# `depthkit.data.read_nyu_mat` does it right and reads lazily (10 images never load the 2.8 GB file).

# %%
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

# %% [markdown]
# ## 2. NYU samples: raw and in-painted depth
#
# The labeled file holds two depth maps of every frame. **`rawDepths`** is what the Kinect measured,
# projected onto the colour image, with holes (stored as 0) where it measured nothing: shiny, dark,
# transparent or distant surfaces, object edges, the border the depth camera does not see.
# **`depths`** is the same map **in-painted**: NYU's authors filled every hole from the neighbouring
# depths and the colour image (the toolbox's `fill_depth_colorization`, after Levin et al.'s
# colorization method), so it has no zeros at all. depthkit reads `depths`, as the report did, for its
# training and its test images alike. Inside a hole that "ground truth" is an interpolation, smooth where
# the sensor knew nothing: a model is partly trained and scored on the in-painting's guesses.
#
# Which depth a paper trains and scores on is part of its protocol. The supervised line of BTS (Lee et
# al. 2019), whose data scripts AdaBins and later papers reuse, trains on many more *raw* frames from
# NYU's video sequences with the holes masked out, and tests on the raw depth of the official test
# images: its `utils/extract_official_train_test_set_from_mat.py` reads `rawDepths`, not `depths`.
#
# The three real NYU frames bundled for the tests (`tests/assets/nyu_real_samples`) come from NYU's raw
# sequences, not from the labeled file: they are raw, with holes. They show what `depths` hides, and
# they are why the metrics take a mask. The cell prints what this run's file holds and both hole shares.

# %%
from depthkit.config import repo_root
from depthkit.data import load_nyu_png_depth

with h5py.File(prepared.nyu_mat, "r") as f:
    stored = sorted(k for k in f.keys() if not k.startswith("#"))
print(f"{prepared.nyu_mat.name} ({prepared.source} data) holds: {', '.join(stored)}"
      + ("" if "rawDepths" in stored else "  (no rawDepths: the synthetic stand-in writes only what depthkit reads)"))
zeros = (nyu["train"].depths == 0).float().mean().item()
print(f"`depths` as depthkit loads it ({len(nyu['train'])} training images): {100 * zeros:.2f} % of pixels are 0"
      + (" (in-painted: no holes)" if zeros == 0 else " (holes: is this raw depth?)"))
RAW_SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples" / "depth"  # raw Kinect frames, BSD-2 (LICENSE there)
raw_frames = {png.stem: load_nyu_png_depth(png) for png in sorted(RAW_SAMPLES.glob("*.png"))}
for name, raw_depth in raw_frames.items():
    print(f"raw Kinect frame {name}: {100 * (raw_depth == 0).mean():.1f} % of pixels are holes (0: no measurement)")

# %% [markdown]
# Depth is drawn with one colour map everywhere: **near is bright, far is dark**; grey marks pixels
# without a measurement, which only raw depth has (the figure after the samples).

# %%
fig = viz.show_samples(nyu["train"].images, nyu["train"].depths, f"NYU-layout training samples ({TAG})", n=4)

# %%
fig, ax = plt.subplots(figsize=(4.2, 3.4), layout="constrained")
name, raw_depth = next(iter(raw_frames.items()))
viz.show_depth(ax, raw_depth, f"raw Kinect depth {name} (holes grey)")
fig.suptitle("A raw NYU frame (tests/assets/nyu_real_samples; no model): the holes that `depths` fills in", fontsize=9);

# %% [markdown]
# ## 3. How deep are the scenes?
#
# Indoor scenes span roughly 1–10 m. The report normalizes every depth map (and every prediction) to
# [0, 1] per image before the MSE, so a model is never asked for the absolute scale, only for the
# shape of the depth map: the right panel shows how much that scale varies from image to image.

# %%
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

# %% [markdown]
# ## 4. Scene types and depth cues
#
# The real NYU images come from many kinds of rooms (bedrooms, kitchens, offices, bathrooms, …). The synthetic
# scenes are one kind of room, a box with boxes in it, but each one is built to carry the monocular
# depth cues the report's introduction lists. A network can only learn depth from a single image
# through such cues: **perspective** (floor and wall edges converge), **occlusion**, **relative
# size**, **texture gradient** (patterns get denser with distance), **shading**, **cast shadows**
# and **haze** (colours fade towards grey with distance). `render_scene` reports which cues each
# picture shows.

# %%
import textwrap

from depthkit.synthetic import render_scene

fig, axes = plt.subplots(2, 3, figsize=(10, 5.6))
for k in range(3):
    scene = render_scene(np.random.default_rng(k), height=240, width=320)
    axes[0, k].imshow(scene["image"])
    axes[0, k].axis("off")
    axes[0, k].set_title("\n".join(textwrap.wrap(", ".join(scene["cues"]), 42)), fontsize=8)
    viz.show_depth(axes[1, k], scene["depth"], f"depth {scene['depth'].min():.1f}–{scene['depth'].max():.1f} m")
fig.suptitle("Synthetic scenes (depthkit.synthetic.render_scene, seeds 0–2, 240×320) and the cues each shows",
             fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## 5. DIW: two points and a relation
#
# The DIW CSV has two lines per image: the image's path (an absolute path from the authors' machine,
# which depthkit re-roots under the local folder), then `y_A, x_A, y_B, x_B, relation, width, height`.
# Coordinates are **1-based** in the grid of the image file; `>` means *A is farther than B*, `<`
# *A is closer*. Inside depthkit every coordinate is 0-based `(row, col)`, and a pair is rescaled to
# the network's grid with `floor(p / size_orig * size_new)`.

# %%
import dataclasses

from depthkit.data import load_diw_cache, read_diw_csv, rescale_pair

diw_csv = prepared.root / "diw" / "DIW_test.csv"
with open(diw_csv) as f:
    print("".join(f.readline() for _ in range(4)))
first = read_diw_csv(diw_csv, check_images=False)[0]
print("read_diw_csv ->", dataclasses.replace(first, image=first.image.relative_to(data_dir())), "(image: in the data folder)")
cache = load_diw_cache(prepared.diw_caches["DIW_test"])
print(f"on the {PROFILE.size}×{PROFILE.size} grid:", rescale_pair(first, (first.height, first.width), (PROFILE.size, PROFILE.size)),
      "| in the cache:", tuple(cache["pairs"][0].tolist()), "relation", int(cache["relation"][0]))

# %%
fig = viz.show_pairs(diw["train"].images, diw["train"].pairs, diw["train"].relation,
                     f"DIW-layout training images with their annotated pair ({TAG})", n=4)

# %% [markdown]
# DIW's authors took care that the easy guesses do not work: the pair is not always "the lower point
# is closer" (true for most floors) and A is not always the farther one. If either held for 90 % of
# the pairs, a network could score 90 % without looking at depth at all. The synthetic pairs go one
# step further: *where* the two points sit says nothing about the answer, so even the training set's
# mean depth map, a predictor that knows every position's typical depth, orders about half of them.

# %%
rel = torch.cat([d.relation for d in diw.values()]).flatten()
pairs = torch.cat([d.pairs for d in diw.values()]).reshape(-1, 4)
from depthkit import metrics

# larger row = lower in the image; the rule "the lower point is closer", as every ordinal score is printed beside it
lower_is_closer = metrics.position_rule_relation(pairs[None])[0] == rel
radius = lambda y, x: ((y + 0.5) / PROFILE.size - 0.5) ** 2 + ((x + 0.5) / PROFILE.size - 0.5) ** 2
a_is_central = radius(pairs[:, 0], pairs[:, 1]) < radius(pairs[:, 2], pairs[:, 3])
central_is_farther = torch.where(a_is_central, rel == 1, rel == -1)
print(f"{len(rel)} pairs ({prepared.source} data)")
for rule, holds in [("A is the farther point", rel == 1), ("the lower point is closer", lower_is_closer),
                    ("the more central point is farther", central_is_farther)]:
    print(f"  {rule + ':':<36}{100 * holds.float().mean():5.1f} %")

# %% [markdown]
# ## 6. Browse the samples
#
# The first NYU training image is drawn once, as a plain figure that the saved notebook keeps; below it,
# pick a split and an image (the controls need a live kernel: Jupyter, JupyterLab or Colab).

# %%
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
        axes[1].text(0, 0.5, "DIW has no depth map,\nonly the relation of A and B", fontsize=10)
    fig.suptitle(f"{data.name}, image {i} of {len(data)} ({TAG})", fontsize=10)
    plt.show()

browse()  # the first image, drawn once: readers of the saved notebook (GitHub, nbviewer) see it too
widgets.interact(browse, split=widgets.Dropdown(options=list(SPLITS), value="NYU train"),
                 index=widgets.IntSlider(value=0, min=0, max=max(len(d) for d in SPLITS.values()) - 1));

# %% [markdown]
# Next, `02_losses_and_metrics`: how to score a depth map against each kind of supervision.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun the cell and write in the answer cell what moved.
#
# | exercise | points | graded |
# |---|---|---|
# | questions 1–5 (points beside each) | 10 | by hand, from your answer cells |
# | **total** | **10** | |

# %% [markdown]
# **1.** *Explain* (2 points). Read through `h5py`, NYU's `images` come out as `(N, 3, 640, 480)`. Why does depthkit
# take `images[i].transpose(2, 1, 0)` and not `transpose(1, 2, 0)`, and why would a network trained on the wrong
# one still train without an error (section 1)?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_01_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** MATLAB stores arrays column-major; HDF5 (h5py) reads them with the axes reversed, so MATLAB's
# `(480, 640, 3, N)` (height, width, channel, image) shows up as `(N, 3, 640, 480)`: channel, *width*, *height*.
# Reversing all three axes, `transpose(2, 1, 0)`, gives `(480, 640, 3)` = height, width, channel.
# `transpose(1, 2, 0)` gives `(640, 480, 3)`: rows and columns swapped, the image mirrored on its diagonal.
# Nothing fails: it is still a valid RGB array (and depth read the same wrong way still matches it pixel for
# pixel), the network is convolutional and the images are resized to a square anyway, so training runs and
# the loss falls; the network just learns on sideways rooms (floor on one side instead of at the bottom), which
# only shows on correctly oriented images or in a picture.
#
# *Rubric (2 points):* 1 for the axis order (column-major storage read reversed: channel, width, height, so all three axes must be reversed); 1 for why no error appears (a valid array of another shape, consistent image/depth, resizing to a square), the model learning sideways rooms.

# %% [markdown]
# **2.** *Explain* (2 points). Section 3 shows that the median depth changes a lot from image to image. Why does
# this variation not reach the report's loss at all, and what would a model need to learn in addition to predict
# depth in metres?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_01_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The report's loss min–max normalises the prediction and the depth map of each image to [0, 1] before
# the MSE, so each image's scale and offset, and with them its median depth, are divided out: a room twice as
# deep gives the same target map. To predict metres a model would also have to learn the absolute scale of the
# scene from one picture: the typical sizes of known objects (doors, chairs, tables), the camera's height and
# field of view (focal length), and be trained with a loss that keeps scale (e.g. an error in metres or in
# log-depth), on data from cameras with known intrinsics.
#
# *Rubric (2 points):* 1 for the per-image min–max normalisation removing scale and offset (so the median cancels); 1 for what metric depth needs (absolute scale from object sizes or camera intrinsics/height, and a loss that keeps it).

# %% [markdown]
# **3.** *Try it* (2 points). In section 5, print the first CSV record's `y_A, x_A` next to the `ya, xa` of
# `read_diw_csv`'s first pair. By how much do they differ, and why? What would a pixel lookup with the CSV's
# numbers read on the last row of an image?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_01_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** They differ by exactly 1 each (e.g. CSV `54,104` against `ya=53, xa=103` under `demo`): DIW's CSV is
# 1-based (MATLAB/Torch7 convention, rows and columns counted from 1) and depthkit converts to 0-based
# `(row, col)`. A lookup with the CSV's numbers reads every point one row lower and one column to the right of
# the annotated pixel, and for a point on the last row (y = height) it indexes one past the end: an
# `IndexError` in numpy/PyTorch, or with clamping or wrapping it silently reads the wrong pixel.
#
# *Rubric (2 points):* 1 for the difference of 1 and its cause (1-based CSV, 0-based depthkit); 1 for the consequence on the last row (index out of range, or a silent off-by-one read).

# %% [markdown]
# **4.** *Explain* (2 points). The last cell of section 5 prints how often "the lower point is closer" and "A is
# the farther point" hold. Why did DIW's authors make sure neither rule is right most of the time? What accuracy
# would a network get that had learned only the better of the two rules?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_01_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** If either rule held for most pairs, a network could score well without perceiving depth at all, by
# answering from the position of the points or from the order A/B in the file: the benchmark would reward a
# bias, not depth perception, and its accuracy would overstate what the model sees. A network that learned
# only the better rule gets exactly that rule's printed share: about 50 % on these synthetic pairs (the cell
# prints 50.0 % for both under `demo`), i.e. a coin flip; on real DIW, whatever share the better rule has there.
#
# *Rubric (2 points):* 1 for the reason (a bias-only shortcut would score well without depth, so accuracy would be misleading); 1 for the accuracy = the better rule's printed share (about 50 % here, chance).

# %% [markdown]
# **5.** *Try it* (2 points). Render one scene with `render_scene(np.random.default_rng(k), ...)` for `k = 3, 4, 5`
# (section 4). Which cue appears in every picture, and which only in some?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_01_5", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Perspective, texture gradient and shading appear in every picture (the generator always draws the room's
# converging outline, its textures and Lambert shading); in these three scenes cast shadows and haze appear too.
# Occlusion and relative size appear only in some: scene 4 lists neither (its boxes do not overlap in the view,
# and relative size needs equal-sized boxes at clearly different depths), while scenes 3 and 5 list both.
# `scene["cues"]` is computed from the rendered picture (`depthkit.synthetic.cues.scene_cues`), so a cue is
# listed only when it is actually visible.
#
# *Rubric (2 points):* 1 for the cues in every picture (perspective, texture gradient, shading; shadows and haze also in all three); 1 for the ones that vary (occlusion and relative size, missing in k = 4), ideally with why.

# %% [markdown]
# ## References
#
# - N. Silberman, D. Hoiem, P. Kohli, R. Fergus. *Indoor Segmentation and Support Inference from RGBD Images* (NYU Depth V2). ECCV 2012. [dataset page](https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html)
# - W. Chen, Z. Fu, D. Yang, J. Deng. *Single-Image Depth Perception in the Wild.* NIPS 2016. [arXiv:1604.03901](https://arxiv.org/abs/1604.03901), [project page (DIW)](http://www-personal.umich.edu/~wfchen/depth-in-the-wild/)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
