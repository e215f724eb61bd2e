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
# # 03 · Model II: LR-ASPP MobileNetV3, trained on NYU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/03_lraspp.ipynb)
#
# The report's small model is torchvision's **LR-ASPP** (Lite Reduced Atrous Spatial Pyramid
# Pooling) on a **MobileNetV3-Large** backbone: a segmentation network built for phones, 3.2 M
# parameters. It predicts 21 maps, one per Pascal-VOC class it was designed for; the report tried
# several ways to turn them into one depth map and a learned **1×1 convolution** worked best.

# %% [markdown]
# **After this notebook you can**
#
# - describe LR-ASPP on MobileNetV3 and how its 21 maps become one depth map (a 1×1 convolution)
# - train it on NYU with `train_stage` and read the training and validation curves
# - judge a score against the mean-depth baseline and its noise band
# - write the 21 → 1 head, the least-squares alignment and the paired noise band, and check them against depthkit's
#
# **It assumes** `02` (the normalized MSE). Maths: convolution (1×1 vs 3×3), gradient descent and Adam, a mean and its standard error.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 2 hours (an estimate): two functions to implement (the alignment and the noise band), your reading of the result, four questions, plus the training time of question 4's run.

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

print(describe("03_lraspp"))

# %% [markdown]
# ## 1. The architecture
#
# MobileNetV3 shrinks the image 16× with cheap depthwise-separable convolutions. The LR-ASPP head
# takes the deepest features, weighs them with a global "squeeze-and-excitation"-like gate, adds a
# projection of shallower (8× smaller) features for detail, and upsamples to the input size. Our
# wrapper adds the 1×1 convolution that mixes the 21 maps into one.

# %%
# NBVAL_CHECK_OUTPUT
from depthkit.models import build_model, count_parameters

model = build_model("lraspp")  # random weights here; the report profile tries the COCO weights
print(f"LR-ASPP: {count_parameters(model) / 1e6:.2f} M parameters, "
      f"backbone {count_parameters(model.encoder) / 1e6:.2f} M")
print("the 21 -> 1 head:", model.combine)
with torch.no_grad():
    for h, w in [(200, 200), (97, 131)]:
        x = torch.zeros(1, 3, h, w)
        print(f"input {h}×{w}: 21 maps {tuple(model.lraspp(x)['out'].shape)} -> depth {tuple(model(x).shape)}")

# %% [markdown]
# ## 2. Data and training
#
# The report trained with Adam, learning rate 1e-3, weight decay 0.02, for 100 epochs, on the
# normalized MSE from `02`. Here the profile sets the numbers (below); validation runs after every
# epoch, and the checkpoint with the best validation score is kept. `train_stage` **reuses** a
# finished run in `runs/<profile>/lraspp_nyu/` (delete that folder to train again) and resumes an
# interrupted one.

# %%
from IPython.display import Markdown, display

from depthkit.config import runs_dir
from depthkit.course import narrative
from depthkit.evaluate import baseline_per_image, evaluate, evaluate_baseline, noise_band, NOISE_Z, per_image_scores, predict_depth
from depthkit.pipeline import describe_splits, load_stage_data
from depthkit.reproduce import REPORT_RESULTS
from depthkit.train import train_stage

nyu = load_stage_data(PROFILE, "nyu")
print(describe_splits(nyu))
frozen, full = PROFILE.epochs("lraspp", "nyu")
display(Markdown(f"Under the `{PROFILE.name}` profile: Adam, learning rate {PROFILE.budget('nyu').lr:g} ({PROFILE.lr_schedule} "
                 f"schedule), weight decay {PROFILE.weight_decay:g}, **{frozen + full} epoch(s)**, batch {PROFILE.batch_size}."))

# %% [markdown]
# ### The loop itself
#
# `train_stage` calls `fit` (in `depthkit/train.py`): for every epoch, `train_one_epoch`, then
# `evaluate` on the validation split, then the checkpoints. Here is one epoch, the whole of it: the
# classic PyTorch step (forward, loss, `backward`, optimizer step) with two habits that keep a GPU
# busy: the loss is *summed on the device* and read once at the end, and the loop times how long
# it waits for its batches (`data_seconds`), so a slow data path shows up as a number.

# %%
import inspect

from depthkit import train

print(inspect.getsource(train.train_one_epoch))

# %%
model, history, run = train_stage(PROFILE, "lraspp", "nyu", nyu, device=DEVICE, progress=False)
print(f"best checkpoint: {(run / 'best.pt').relative_to(runs_dir()).as_posix()} in the runs folder")
for e, loss, val, sec in zip(history["epoch"], history["train_loss"], history["val_normalized_mse"], history["seconds"]):
    print(f"epoch {e:3d}: training loss {loss:.4f}, validation normalized MSE {val:.4f} ({sec:.1f} s)")

# %%
fig = viz.plot_histories({"LR-ASPP, NYU": history}, f"LR-ASPP trained on NYU-layout data ({TAG})")

# %% [markdown]
# ## 3. How good is it?
#
# A model is only as good as what it beats. The trivial baseline predicts the same map for every
# image: the mean depth map of the training set (floor near at the bottom, wall far in the middle).
# A mean over a few dozen test images is itself noisy, so the cell also prints the **noise band** of
# the difference. It is the one band of the whole series, written out here once.
#
# **The noise band.** Two scores a and b measured on the same n test images (a model and the baseline,
# two models, one model before and after fine-tuning) give n per-image differences dᵢ = aᵢ − bᵢ. With s_d
# their sample standard deviation,
#
# $$\text{band} = z \cdot \frac{s_d}{\sqrt{n}},$$
#
# z standard errors of the mean difference (z is `NOISE_Z`, printed below). A difference inside the band
# is **no clear difference**. This band covers **test sampling**: which images happened to land in the
# test split. It says nothing about training again with another seed. Where `make seeds` measured each
# model's standard deviation over training seeds (s_A, s_B; the baseline has none), the band widens to
#
# $$\text{band}_{\text{seeds}} = \sqrt{\text{band}^2 + z^2\,(s_A^2 + s_B^2)},$$
#
# labelled **test sampling + seeds**. The cell prints both for LR-ASPP against the baseline. The "What we
# got" paragraphs use the wider band whenever the spread was measured. Every band in `04`–`08` is one of
# these two, and its label says which.

# %%
from depthkit.stages import NYU_ALIGN

scores = evaluate(model, nyu["test"], "nyu", device=DEVICE)
baseline = evaluate_baseline(nyu["train"], nyu["test"])
per_image = per_image_scores(model, nyu["test"], "nyu", device=DEVICE)  # the values evaluate averages
baseline_scores = baseline_per_image(nyu["train"], nyu["test"])
band = noise_band(per_image["normalized_mse"], baseline_scores)
print(f"test split, {len(nyu['test'])} images ({nyu['test'].name}), {PROFILE.data} data:")
seed_sd = narrative.seed_sd(narrative.seed_spread(PROFILE), "lraspp", "nyu.normalized_mse")  # 0.0: not measured
print(f"  normalized MSE  LR-ASPP {scores['normalized_mse']:.4f} | mean-depth baseline {baseline['normalized_mse']:.4f}"
      f" | noise band of the difference {narrative.format_band(band)}: z = NOISE_Z = {NOISE_Z:g}, "
      f"n = {len(baseline_scores)} images")
print(f"  with LR-ASPP's seed-to-seed sd {seed_sd:.4f}: {narrative.format_band(narrative.with_seeds(band, seed_sd), seeds=True)}"
      if seed_sd else "  seed-to-seed spread not measured under this profile: only the test-sampling band applies")
print(f"  after {narrative.ALIGNMENT_WORDS[NYU_ALIGN]}: AbsRel {scores['abs_rel']:.3f}, RMSE {scores['rmse']:.3f} m, "
      f"δ<1.25 {scores['delta1']:.3f}")
report = REPORT_RESULTS["lraspp"]["nyu_mse"]
print(f"  the report, on real NYU Depth V2: normalized MSE {report}" if PROFILE.data == "real" else
      f"  (the report's {report} was measured on real NYU Depth V2: not comparable with {PROFILE.data} scenes)")

# %% [markdown]
# **Your reading** *Interpret* (2 points). Before you run the next cell, write in the answer cell below what the numbers
# printed above say: did LR-ASPP beat the mean-depth baseline by more than the noise band, by how much (as a share of
# the baseline's score), and what does that tell, and not tell, about the report's 0.058? The next cell gives
# depthkit's own reading, to compare with yours.

# %% [markdown] nbgrader={"grade": true, "grade_id": "reading_03_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** In the committed `demo` run: LR-ASPP 0.0408 against the baseline's 0.0499, a difference of 0.0091
# (18 % lower), about twice the noise band of ±0.0044 (test sampling) printed beside it (2 paired standard errors
# over the 96 test images): the model learned something from the images beyond the average room. It says nothing about the
# report's 0.058: these are synthetic rooms at another size, not NYU Depth V2. And the printed band covers the test
# images, not another training seed (the line under it widens it with the measured seed spread, to ±0.0060 (test
# sampling + seeds), and the gap of 0.0091 stays outside it). Under `smoke` (one epoch on a couple of dozen images, a handful of test images) the right reading is
# the opposite: no clear difference, or no band at all below 10 images.
#
# *Rubric (2 points):* 1 for the comparison with the baseline judged against the printed band (the difference, its size, outside or inside the band); 1 for what it does not say (synthetic data, not comparable with the report's 0.058; the band covers the test images, not the seed).

# %% [markdown]
# ### What we got

# %%
Markdown(narrative.lraspp_nyu(per_image["normalized_mse"], baseline_scores, history, PROFILE, len(nyu["train"]),
                              REPORT_RESULTS["lraspp"]["nyu_mse"], spread=narrative.seed_spread(PROFILE)))

# %%
fig = viz.show_predictions(nyu["test"].images, {"LR-ASPP": predict_depth(model, nyu["test"])},
                           f"LR-ASPP on NYU-layout test images ({TAG})", depths=nyu["test"].depths)

# %% [markdown]
# ## 4. Inside the 21 → 1 head
#
# The 21 maps before the 1×1 convolution, for one test image. Depth comes out as their weighted sum,
# $\text{depth} = \sum_k w_k \, \text{map}_k + b$. In torchvision's segmentation model these 21 channels are
# class scores, one per Pascal-VOC class, but only after training on segmentation labels. Here the
# model started from random weights and learned from depth alone, so they are **21 feature maps**
# (channels) with no class meaning: their order is arbitrary and another seed gives others.
#
# Which maps matter? Not the ones with the largest $|w_k|$: a map's share of the depth map's variation
# is $w_k$ times *its own* spread, and the maps can come out on very different scales, so a large weight on
# a nearly flat map adds almost nothing. The figure ranks the maps by $|w_k| \cdot \operatorname{std}(\text{map}_k)$
# (the spread of the term $w_k\,\text{map}_k$ over the image; both numbers are in each title), and the cell
# prints how far that ranking is from the one by $|w_k|$ alone. Each map is min-max scaled on its own for
# display, so they share one colour bar without a unit.

# %%
from depthkit.models import normalize_images

with torch.no_grad():
    maps = model.lraspp(normalize_images(nyu["test"].images[:1]).to(DEVICE))["out"][0].cpu()
weights = model.combine.weight.detach().flatten().cpu()
spread = maps.flatten(1).std(dim=1)            # each map's own scale over this image
contribution = weights.abs() * spread          # the spread of w_k · map_k: what map k adds to the depth map
order = contribution.argsort(descending=True)[:10].tolist()
by_weight = weights.abs().argsort(descending=True)[:10].tolist()
print(f"map std over this image: {spread.min():.3g} to {spread.max():.3g}; the ten largest |w| and the ten largest "
      f"|w|·std share {len(set(order) & set(by_weight))} maps; the top map by |w| (map {by_weight[0]}) ranks "
      f"{contribution.argsort(descending=True).tolist().index(by_weight[0]) + 1} of {len(weights)} by |w|·std")
fig, axes = plt.subplots(2, 6, figsize=(12.5, 4.6), layout="constrained")
axes[0, 0].imshow(viz.to_image(nyu["test"].images[0])); axes[0, 0].axis("off"); axes[0, 0].set_title("image", fontsize=9)
for ax, k in zip(axes.flat[1:11], order):
    shown = viz.show_depth(ax, maps[k], f"map {k}: w = {weights[k]:+.2f}\n|w|·std = {contribution[k]:.1e}",
                           normalize=True, colorbar=False)
viz.add_colorbar(shown, list(axes.flat[:11]), "feature map value (min–max scaled per map, no unit)", location="bottom", shrink=0.5)
viz.show_depth(axes[1, 5], predict_depth(model, nyu["test"], n=1)[0], "1×1 conv: depth", normalize=True)
fig.suptitle(f"LR-ASPP's 21 feature maps (the 10 largest |w|·std) for one NYU-layout test image ({TAG})", fontsize=10);

# %% [markdown]
# Under `smoke` the model has seen a couple of dozen images for one epoch: expect blur and a score
# near the baseline. Under `demo` it should clearly beat the baseline; only under `report`, on the real
# data, can it be compared with the report's 0.058. Next, `04_unetpp`: the large model.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved. Exercises 03.1–03.3 are checked at once (see
# `02` for how the checks work); the grader also runs hidden cases of the same kinds.
#
# | exercise | points | graded |
# |---|---|---|
# | your reading of the result (before "What we got") | 2 | by hand, from its answer cell |
# | questions 1–4 (points beside each) | 8 | by hand, from your answer cells |
# | Exercise 03.1 | 3 | by its check cell, plus hidden cases |
# | Exercise 03.2 | 3 | by its check cell, plus hidden cases |
# | Exercise 03.3 | 3 | by its check cell, plus hidden cases |
# | **total** | **19** | |

# %% [markdown]
# **1.** *Explain* (2 points). Why can LR-ASPP's 21 maps be turned into one depth map by a 1×1 convolution? What
# does it compute at each pixel, and what can it *not* do that a 3×3 convolution could?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_03_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The 21 maps are aligned channels of the same grid, so one output value per pixel can be any weighted
# mix of the 21 values at that pixel: a 1×1 convolution computes out(y, x) = Σ_c w_c · map_c(y, x) + b, with the
# same 21 weights and bias at every pixel (a per-pixel linear layer). It sees only its own pixel: it cannot
# combine neighbouring pixels, so it cannot smooth, sharpen edges or use local context; a 3×3 convolution mixes
# each pixel with its 8 neighbours (9 × 21 weights) and can do that spatial filtering.
#
# *Rubric (2 points):* 1 for what it computes (a weighted sum of the 21 values at each pixel plus a bias, the same weights everywhere); 1 for the limit (no spatial context: a 3×3 kernel combines neighbouring pixels).

# %% [markdown]
# **2.** *Explain* (2 points). Under `smoke` and `demo` the model starts from random weights (no downloads). Do the
# 21 maps in section 4 then stand for the 21 Pascal-VOC classes? When would they?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_03_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** No. From random weights nothing ever tells a channel about a class: the only training signal is depth,
# through the 1×1 mix, so the 21 maps are just 21 intermediate feature maps shaped by the depth loss (their
# order and meaning are arbitrary, and another seed gives others). They would stand for the VOC classes only
# when the model starts from torchvision's pretrained segmentation weights (COCO images with the 21 VOC labels;
# the `report` profile tries to load them), and even then fine-tuning on depth lets them drift away from the
# classes.
#
# *Rubric (2 points):* 1 for no (random start, only depth supervision, so the channels carry no class meaning); 1 for when they would (pretrained segmentation weights, with the caveat that depth training changes them).

# %% [markdown]
# **3.** *Explain* (2 points). Why is the mean-depth baseline of section 3 needed to read the model's score, and why
# is the baseline's normalized MSE not 0 although it is "the average room"?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_03_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** A normalized MSE has no meaning on its own: how low it can go depends on the data. The baseline
# predicts the training set's mean depth map for every image, i.e. what one gets from the typical layout
# alone (floor near at the bottom, far wall in the middle), without looking at the picture; the model has
# learned something from the image only where it beats that, by more than the printed noise band. The
# baseline is not 0 because no test image *is* the average room: boxes, their positions, the camera and the
# room's size differ from image to image, and the average of many rooms is a blurred map that matches none of
# them; min–max normalisation removes scale and offset, not these differences of shape.
#
# *Rubric (2 points):* 1 for the baseline as the bar (what the average layout gives without looking at the image; compare with the noise band); 1 for why it is not 0 (each test image's shape differs from the blurred average; normalisation removes only scale and offset).

# %% [markdown]
# **4.** *Try it* (2 points). Train LR-ASPP with a constant learning rate instead of the profile's schedule, into a
# folder of its own, and compare the test normalized MSE with section 3 (is the change larger than the spread
# you would expect from another seed?):
# `train_stage(PROFILE.replace(lr_schedule="constant"), "lraspp", "nyu", nyu, out_dir=runs_dir() / "exercises" / "lraspp_constant", device=DEVICE, progress=False)`

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_03_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The numbers depend on the run; what a good answer reports: the new test normalized MSE beside section 3's,
# its difference, and a judgement against the noise. Under `demo` the profile's schedule is cosine (it decays
# to 5 % of the rate by the last epoch), so the constant rate keeps taking full-size steps at the end: a
# slightly noisier end of training, often a little worse, but with a few epochs the difference is typically
# small. Under `smoke` the profile's schedule already is constant, so nothing changes. Whether a difference is
# real cannot be read from one run each: the printed noise band covers the test images, not the seed, so a
# gap of the size of that band (or of what a second seed moves) is no evidence; one would train each setting
# with a few seeds.
#
# *Rubric (2 points):* 1 for reporting both scores and their difference (with the schedule each run used); 1 for judging it against the noise (one seed per setting cannot separate a small gap from seed-to-seed spread).

# %% [markdown]
# **5.** *Implement it.* Exercise 03.1: the 21 → 1 head written by hand, below.

# %% nbgrader={"grade": false, "grade_id": "ex_03_1", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 03.1 · the 21 -> 1 head: a 1x1 convolution written by hand
import torch


def combine_maps(maps: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Mix C maps into one: out[b, 0, y, x] = sum_c weight[c] * maps[b, c, y, x] + bias.

    maps: [B, C, H, W] (C = 21 for LR-ASPP, but any C); weight: [C]; bias: a 0-dim tensor.
    Returns [B, 1, H, W]: what the model's ``combine`` layer (nn.Conv2d(C, 1, kernel_size=1)) computes.
    """
    ### BEGIN SOLUTION
    return (maps * weight[None, :, None, None]).sum(dim=1, keepdim=True) + bias
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_03_1", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_combine_maps
from depthkit.models import normalize_images

check_combine_maps(combine_maps)
### BEGIN HIDDEN TESTS
check_combine_maps(combine_maps, hidden=True)
### END HIDDEN TESTS
with torch.no_grad():  # your head on the trained model's 21 maps of one test image, against its own 1x1 conv
    maps1 = model.lraspp(normalize_images(nyu["test"].images[:1]).to(DEVICE))["out"].cpu()
    w, b = model.combine.weight.detach().cpu(), model.combine.bias.detach().cpu()
    gap = (combine_maps(maps1, w.flatten(), b[0]) - torch.nn.functional.conv2d(maps1, w, b)).abs().max().item()
print(f"on a test image: largest difference from the model's combine layer {gap:.1e}")

# %% [markdown]
# **6.** *Implement it.* Exercise 03.2: the per-image least-squares scale and shift behind every "aligned" number and
# figure (AbsRel, RMSE and δ in section 3, the aligned predictions of `06`), below. Two ways work: the closed form of
# a straight-line fit (covariance over variance), or `torch.linalg.lstsq` on the columns `[pred, 1]` of each image's
# valid pixels.

# %% nbgrader={"grade": false, "grade_id": "ex_03_2", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 03.2 · aligning a prediction to the depth: a scale and a shift per image, by least squares
import torch


def align_scale_shift(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image, s * pred + t with the s and t that minimise sum over valid pixels of (s * pred + t - depth)^2.

    pred, depth: [B, 1, H, W] float; mask: [B, 1, H, W] bool (True = a valid depth pixel; holes hold anything).
    Returns [B, 1, H, W]: s * pred + t at every pixel, holes included, with each image's own s and t, fitted on
    its valid pixels only. Where the prediction is constant over an image's valid pixels the fit has no slope:
    s = 0 and t is the mean depth of those pixels.
    """
    ### BEGIN SOLUTION
    w = mask.to(pred.dtype)
    depth = torch.where(mask, depth, torch.zeros_like(depth))  # holes may hold anything, NaN included
    n = w.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1)
    mean_p = (pred * w).sum(dim=(1, 2, 3), keepdim=True) / n
    mean_d = (depth * w).sum(dim=(1, 2, 3), keepdim=True) / n
    cov = ((pred - mean_p) * (depth - mean_d) * w).sum(dim=(1, 2, 3), keepdim=True)
    var = ((pred - mean_p) ** 2 * w).sum(dim=(1, 2, 3), keepdim=True)
    scale = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    return scale * (pred - mean_p) + mean_d
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_03_2", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_align_scale_shift
from depthkit.tensors import align_scale_shift as depthkit_alignment

check_align_scale_shift(align_scale_shift)
### BEGIN HIDDEN TESTS
check_align_scale_shift(align_scale_shift, hidden=True)
### END HIDDEN TESTS
test_pred, test_depth = predict_depth(model, nyu["test"], n=8), nyu["test"].depths[:8].float()
mine = align_scale_shift(test_pred, test_depth, test_depth > 0)
gap = (mine - depthkit_alignment(test_pred, test_depth, test_depth > 0)).abs().max().item()
print(f"on {len(test_pred)} test predictions: largest difference from the alignment behind the metrics {gap:.1e} m")

# %% [markdown]
# **7.** *Implement it.* Exercise 03.3: the paired noise band printed beside every comparison of this series, below.

# %% nbgrader={"grade": false, "grade_id": "ex_03_3", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 03.3 · the paired noise band: two standard errors of the mean per-image difference
import math

import torch


def paired_band(a: torch.Tensor, b: torch.Tensor) -> float:
    """The noise band of mean(a) - mean(b) when a and b score the same images, image by image.

    a, b: per-image scores [N] (float tensors; NaN or inf where an image was not scored). The images where a or b
    is not finite are left out of both. Of the n per-image differences a - b left: 2 standard errors of their
    mean, a standard error being the sample standard deviation (divided by n - 1) over sqrt(n). Returns a float,
    math.inf when fewer than 10 images are left (too few to estimate a band).
    """
    ### BEGIN SOLUTION
    d = (a - b).double()
    d = d[torch.isfinite(d)]
    if len(d) < 10:
        return math.inf
    return 2.0 * float(d.std() / math.sqrt(len(d)))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_03_3", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_paired_band
from depthkit.evaluate import standard_error

check_paired_band(paired_band)
### BEGIN HIDDEN TESTS
check_paired_band(paired_band, hidden=True)
### END HIDDEN TESTS
model_scores = torch.as_tensor(per_image["normalized_mse"]).cpu()
base_scores = torch.as_tensor(baseline_scores)
unpaired = NOISE_Z * math.hypot(standard_error(model_scores), standard_error(base_scores))
print(f"section 3's comparison: your paired band ±{paired_band(model_scores, base_scores):.4f} "
      f"(depthkit's ±{noise_band(model_scores, base_scores):.4f}); unpaired, it would be ±{unpaired:.4f}")

# %% [markdown]
# ## References
#
# - A. Howard, M. Sandler, G. Chu, L.-C. Chen, B. Chen, M. Tan, W. Wang, Y. Zhu, R. Pang, V. Vasudevan, Q. V. Le, H. Adam. *Searching for MobileNetV3* (MobileNetV3 and the LR-ASPP head). ICCV 2019. [arXiv:1905.02244](https://arxiv.org/abs/1905.02244)
# - N. Silberman, D. Hoiem, P. Kohli, R. Fergus. *Indoor Segmentation and Support Inference from RGBD Images* (NYU Depth V2). ECCV 2012. [dataset page](https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
