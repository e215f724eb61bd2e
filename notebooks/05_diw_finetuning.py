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
# # 05 · Fine-tuning on DIW with the ranking loss
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/05_diw_finetuning.ipynb)
#
# NYU is 1449 images of indoor rooms. DIW is half a million photos of everything, but each carries a
# single relation between two points. The report's plan: learn dense depth on NYU first, then
# fine-tune on DIW with the ranking loss from `02`, and measure how often the model orders DIW's
# test pairs correctly.

# %% [markdown]
# **After this notebook you can**
#
# - fine-tune both NYU models on DIW with the ranking loss, the sign read from the CSV as it is
# - measure ordinal accuracy and WHDR before and after, against a noise band
# - check what fine-tuning costs on NYU, and why an order-only loss can cost it
# - flip a batch with its point pairs, and write the cosine learning-rate schedule
#
# **It assumes** `02`–`04`. Maths: the ranking loss and its gradient, learning-rate schedules, the noise of an accuracy on n pairs.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 2 hours (an estimate): two functions to implement, your reading of the result, five questions, plus the training time of question 4's run.

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

print(describe("05_diw_finetuning"))

# %% [markdown]
# ## 1. Data
#
# The report trained and tested inside the ~74k-image DIW *test* partition. Chen et al. instead trained
# on DIW_train.csv, validated on DIW_val.csv and tested on DIW_test.csv; the profile's `diw_protocol`
# switches between the two.

# %%
from IPython.display import Markdown, display

from depthkit import metrics
from depthkit.course import narrative
from depthkit.evaluate import evaluate, mean, noise_band, per_image_scores, predict_depth
from depthkit.pipeline import describe_splits, load_stage_data, prepare_data
from depthkit.reproduce import REPORT_RESULTS, ZERO_SHOT_DIW_WHDR
from depthkit.train import train_stage

prepared = prepare_data(PROFILE)
nyu = load_stage_data(PROFILE, "nyu", prepared)
diw = load_stage_data(PROFILE, "diw", prepared)
if PROFILE.diw_protocol == "chen":
    display(Markdown(f"`{PROFILE.name}` profile, protocol `chen`: training on DIW_train.csv, validating on "
                     "DIW_val.csv (the authors' split), testing on DIW_test.csv."))
else:
    display(Markdown(f"`{PROFILE.name}` profile, protocol `report`: the DIW test partition split, seeded, into "
                     + "/".join(f"{100 * f:.0f}" for f in PROFILE.diw_fractions) + " % train/validation/test."))
print(describe_splits(diw))

# %% [markdown]
# ## 2. The starting point: the NYU models
#
# The checkpoints from `03` and `04` when they exist (otherwise trained now). How well do they order
# DIW's pairs *before* seeing a single one? A model that learned "larger = farther" on NYU should
# already beat 50 % with our sign convention.

# %%
MODELS = {"lraspp": "LR-ASPP", "unetpp": "U-Net++"}
nyu_models, before = {}, {}
for name in MODELS:
    nyu_models[name], _, _ = train_stage(PROFILE, name, "nyu", nyu, device=DEVICE, progress=False)
    before[name] = evaluate(nyu_models[name], diw["test"], "diw", device=DEVICE)
    before[name]["per_pair"] = per_image_scores(nyu_models[name], diw["test"], "diw", device=DEVICE)["ordinal_accuracy"]
    print(f"{MODELS[name]:<8} after NYU only: DIW test accuracy {100 * before[name]['ordinal_accuracy']:.1f} %")

# %% [markdown]
# ## 3. Fine-tuning
#
# The ranking loss with r taken from the CSV as it is (`>` → +1, A farther), a smaller learning rate
# than on NYU (the model is not starting from scratch), epochs from the profile (the cell prints them).
# Each run starts from the best NYU checkpoint and is kept in `runs/<profile>/<model>_diw/`.

# %%
from depthkit.config import runs_dir

display(Markdown(f"Under the `{PROFILE.name}` profile: learning rate {PROFILE.budget('diw').lr:g} (on NYU: {PROFILE.budget('nyu').lr:g}), "
                 + ", ".join(f"{label} {PROFILE.epochs(name, 'diw')[1]} epoch(s)" for name, label in MODELS.items()) + "."))
diw_models, after, histories = {}, {}, {}
for name, label in MODELS.items():
    diw_models[name], histories[f"{label} DIW"], run = train_stage(PROFILE, name, "diw", diw, device=DEVICE, progress=False)
    after[name] = evaluate(diw_models[name], diw["test"], "diw", device=DEVICE)
    after[name]["per_pair"] = per_image_scores(diw_models[name], diw["test"], "diw", device=DEVICE)["ordinal_accuracy"]
    print(f"{label:<8} {len(histories[f'{label} DIW']['epoch'])} epoch(s) -> {run.relative_to(runs_dir()).as_posix()} in the runs folder")

# %% [markdown]
# With one DIW epoch an epoch-by-epoch curve would be a single point, so the left panels also draw the
# loss of every optimizer step (thin line; the dot is the epoch's mean), and a lone validation point
# is labelled with its value.

# %%
fig = viz.plot_histories(histories, f"Fine-tuning on DIW-layout pairs ({TAG})")

# %% [markdown]
# ## 4. Before and after
#
# Accuracy is the report's DIW number; WHDR with τ = 0 (see `02`: one pair per image, the sign of
# z_A − z_B, ties wrong) is the error rate Chen et al. and MiDaS report for DIW, and accuracy = 1 − WHDR.
# Beside the models, the **position rule** "the lower point is closer" (`metrics.position_rule_accuracy`,
# see `07`) scores the same pairs without looking at a pixel: the floor an ordinal score must clear.
# The report got 58.4 % (LR-ASPP) and 65.3 % (U-Net++) on real DIW; the zero-shot anchors printed
# below come from the MiDaS README.

# %%
print(f"DIW test split: {len(diw['test'])} pairs ({diw['test'].name}); profile {PROFILE.name}, {PROFILE.data} data")
print(f"{'model':<9}{'after NYU':>11}{'after DIW':>11}{'WHDR':>8}{'noise band of the change':>27}")
for name, label in MODELS.items():
    band = noise_band(after[name]["per_pair"], before[name]["per_pair"])  # 2 standard errors, same pairs
    print(f"{label:<9}{100 * before[name]['ordinal_accuracy']:>10.1f}%{100 * after[name]['ordinal_accuracy']:>10.1f}%"
          f"{100 * after[name]['whdr']:>7.1f}%  {narrative.format_band(band, '.1f', 100, ' points'):>25}")
rule = metrics.position_rule_accuracy(diw["test"].pairs, diw["test"].relation)  # looks at no pixel
print(f"{'position rule':<9}{100 * rule:>21.1f}%   (\"the lower point is closer\", on the same pairs; a coin: 50 %)")
report = ", ".join(f"{label} {REPORT_RESULTS[name]['diw_acc']} %" for name, label in MODELS.items())
print(f"the report, on real DIW: {report}" + ("" if PROFILE.data == "real" else f" (not comparable with {PROFILE.data} pairs)"))
print("zero-shot anchors on real DIW (WHDR, MiDaS README; far more training data): "
      + ", ".join(f"{k} {v} %" for k, v in ZERO_SHOT_DIW_WHDR.items()))

# %% [markdown]
# **Your reading** *Interpret* (2 points). Before you run the next cell, write in the answer cell below what the table
# printed above says: did fine-tuning on DIW change either model's accuracy by more than the noise band of the
# change? If not, what would it take to tell?

# %% [markdown] nbgrader={"grade": true, "grade_id": "reading_05_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** In the committed `demo` run: LR-ASPP 64.4 % → 65.6 % (+1.1 points) and U-Net++ 69.4 % → 67.2 % (−2.2
# points), against noise bands of the change of ±4.8 and ±5.6 points (test sampling) on the same 360 test pairs: one
# went up and one down, but neither change is beyond its band, so this run cannot tell fine-tuning from no
# fine-tuning (and the next cell's bands, which add the seed-to-seed spread, are wider still). Both stay far above
# the position rule's 46.9 % on these pairs. Each test image carries one pair scored right
# or wrong, so the band is wide: telling a change of 3–4 points needs more test pairs (the band shrinks as
# 1/√n; four times the pairs halve it) or several training seeds of each setting. The report's 58.4 % and 65.3 %
# were on real DIW: not comparable with these synthetic pairs.
#
# *Rubric (2 points):* 1 for both changes read against their bands (up, but inside: no clear difference); 1 for what it would take (more test pairs or seeds; one 0/1 pair per image makes the band wide), or for why the report's numbers do not compare.

# %% [markdown]
# ### What we got

# %%
Markdown(narrative.diw_finetuning({label: before[name]["per_pair"] for name, label in MODELS.items()},
                                  {label: after[name]["per_pair"] for name, label in MODELS.items()},
                                  {label: PROFILE.epochs(name, "diw")[1] for name, label in MODELS.items()},
                                  len(diw["val"]), PROFILE, spread=narrative.seed_spread(PROFILE)))

# %% [markdown]
# ## 5. Predictions on DIW images
#
# Each row: a DIW-layout test image with its annotated pair, then the depth maps before and after
# fine-tuning (near = bright). The ranking loss only constrains one pair per image, so it shapes the
# *order* of depths, not their scale: the fine-tuned maps can drift in contrast, and nothing forces
# the rest of the map to keep "larger = farther". The cell after the figure checks that from numbers.

# %%
preds = {}
for name, label in MODELS.items():
    preds[f"{label} after NYU"] = predict_depth(nyu_models[name], diw["test"])
    preds[f"{label} after DIW"] = predict_depth(diw_models[name], diw["test"])
fig = viz.show_predictions(diw["test"].images, preds, f"Before and after DIW fine-tuning, DIW-layout test images ({TAG})",
                           pairs=diw["test"].pairs, relation=diw["test"].relation)

# %%
correlations = {}  # per NYU-layout test image: does the predicted depth grow with the true depth?
for name, label in MODELS.items():
    for when, m in (("after NYU", nyu_models[name]), ("after DIW", diw_models[name])):
        correlations[f"{label} {when}"] = metrics.depth_correlation(predict_depth(m, nyu["test"], n=None), nyu["test"].depths)
Markdown(narrative.depth_order(correlations))

# %% [markdown]
# ## 6. Did fine-tuning cost NYU accuracy?
#
# The ranking loss never looks at depth values, only at their order, so the dense depth learned on
# NYU can degrade. The NYU test score before and after:

# %%
nyu_before, nyu_after = {}, {}
for name, label in MODELS.items():
    nyu_before[label] = per_image_scores(nyu_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
    nyu_after[label] = per_image_scores(diw_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
    print(f"{label:<8} NYU test normalized MSE: {mean(nyu_before[label]):.4f} after NYU -> "
          f"{mean(nyu_after[label]):.4f} after DIW fine-tuning "
          f"(noise band {narrative.format_band(noise_band(nyu_after[label], nyu_before[label]))})")

# %% [markdown]
# ### What we got

# %%
Markdown(narrative.nyu_cost(nyu_before, nyu_after, PROFILE, spread=narrative.seed_spread(PROFILE)))

# %% [markdown]
# Next, `06_comparison`: everything side by side, and the figures of the report.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved. Exercises 05.1 and 05.2 are checked at
# once (see `02` for how the checks work); the grader also runs hidden cases of the same kinds.
#
# | exercise | points | graded |
# |---|---|---|
# | your reading of the result (before "What we got") | 2 | by hand, from its answer cell |
# | questions 1–5 (points beside each) | 10 | by hand, from your answer cells |
# | Exercise 05.1 | 3 | by its check cell, plus hidden cases |
# | Exercise 05.2 | 2 | by its check cell, plus hidden cases |
# | **total** | **17** | |

# %% [markdown]
# **1.** *Explain* (2 points). In section 2 the NYU-only models already order more than half of the DIW pairs. Why
# does that depend on reading `>` as r = +1 (A farther)? What would the same cell print with the report's printed
# convention?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_05_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** NYU training made the output depth-like, larger = farther. A pair is counted right when
# sign(z_A − z_B) = r, so a model that orders the two points correctly agrees with the annotation exactly when
# r = +1 means "A farther", which is how depthkit reads `>`. With the printed convention (r = +1 for "A closer")
# every pair the model orders correctly would be counted wrong and vice versa: the cell would print 100 % minus
# the accuracy it prints now (e.g. 40 % instead of 60 %), below chance, although the model is the same.
#
# *Rubric (2 points):* 1 for the link between the output's meaning (larger = farther after NYU) and r = +1 for A farther; 1 for the printed convention giving 100 % − the current accuracy (below 50 %).

# %% [markdown]
# **2.** *Explain* (2 points). Why does the DIW stage start from a smaller learning rate than the NYU stage
# (`PROFILE.budget("diw").lr` vs `PROFILE.budget("nyu").lr`)? What could a large first step do to what NYU taught?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_05_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Fine-tuning starts from weights that already predict depth; it should adjust them, not retrain them. The
# ranking loss is a sparse, noisy signal (one pair per image), and its first gradients can be large where the
# NYU model misorders pairs. With Adam the first steps move every weight by roughly the learning rate whatever
# the gradient's size, so at NYU's rate (10× DIW's here) the first few steps could move the network far from the
# NYU solution and wipe out the dense depth it learned (catastrophic forgetting), before the pairs have taught
# anything in its place.
#
# *Rubric (2 points):* 1 for the reason (start from a trained model: small adjustments; sparse, noisy pair signal); 1 for the risk (large early steps, about lr per weight with Adam, destroy what NYU taught: forgetting).

# %% [markdown]
# **3.** *Explain* (2 points). Training flips about half of the images of every batch left-right
# (`depthkit.data.loader.augment`). If it flipped the images but not the pair columns, what would happen to the
# flipped half of the DIW signal? Would the training loss show it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_05_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** In a flipped image the pair's columns still point at the unflipped positions, i.e. at the mirror images
# of the annotated points (x → W − 1 − x): other scene points, whose order is unrelated to the annotation. About
# half of the pairs would carry labels that are noise, diluting the signal (and pairs near the centre line, where
# the mirrored points are close to the true ones, would look right by accident). Nothing fails and the training
# loss would still fall, only more slowly and to a higher value (noisy labels can partly be memorised), so it
# would not clearly show the bug; the validation accuracy, computed on unflipped images, would come out lower,
# and a unit test of the flip (exercise 05.1) catches it directly.
#
# *Rubric (2 points):* 1 for the effect (the flipped half's pairs point at mirrored, unrelated points: label noise for about half of the signal); 1 for the loss not showing it clearly (it still falls; only validation accuracy or a test of the flip reveals it).

# %% [markdown]
# **4.** *Try it* (2 points). Fine-tune LR-ASPP with a ten times larger rate, into a folder of its own, and compare its
# test accuracy with section 4, against the noise the "What we got" cell prints:
# `train_stage(PROFILE.with_budget("diw", lr=10 * PROFILE.budget("diw").lr), "lraspp", "diw", diw, init=run_dir(PROFILE, "lraspp", "nyu") / "best.pt", out_dir=runs_dir() / "exercises" / "lraspp_diw_fast", device=DEVICE, progress=False)`
# (`from depthkit.runs import run_dir`).

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_05_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The outcome depends on the run; a good answer reports the new test accuracy beside section 4's (and ideally
# the NYU normalized MSE of the new checkpoint, section 6), the difference, and whether it exceeds the printed noise
# band. What to expect: with one DIW epoch the larger rate moves the model further, which can raise the DIW
# accuracy or hurt it (and typically costs more NYU accuracy, question 2). With a few hundred test pairs the noise
# band is several points wide, so a difference of a few points is usually no evidence either way, and one seed
# per setting cannot separate the two.
#
# *Rubric (2 points):* 1 for reporting the new accuracy against section 4's with the difference; 1 for judging it against the noise band (a few points on a few hundred pairs is within the noise; one seed).

# %% [markdown]
# **5.** *Explain* (2 points). Section 6: the ranking loss sees one pair per image. What holds the rest of the depth
# map in place during fine-tuning, and why can the NYU error rise while the DIW accuracy rises?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_05_5", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Nothing in the loss: only two pixels per image are constrained, and only in their order. What keeps the
# rest of the map roughly as NYU left it is the starting point (the NYU weights), the small learning rate and the
# few steps, and weight sharing: the same convolutions produce every pixel, so the map changes as a whole rather
# than pixel by pixel. The NYU error can rise while DIW accuracy rises because the two measure different things:
# the ranking loss rewards only the correct order of the annotated points, so the model may change the scale,
# contrast or shape of the rest of the map (even break "larger = farther" elsewhere) at no cost, and the
# normalized MSE on NYU penalises exactly such changes; DIW's images also differ from NYU's, so adapting to them
# can cost on NYU.
#
# *Rubric (2 points):* 1 for what holds the map (nothing explicit: the NYU initialisation, small rate and few steps, shared weights); 1 for why the two can move apart (order-only loss at two points leaves the rest of the map free; the normalized MSE judges the whole map).

# %% [markdown]
# **6.** *Implement it.* Exercises 05.1 (the horizontal flip of a batch, pairs included) and 05.2 (the cosine
# learning-rate schedule of the `demo` profile), below.

# %% nbgrader={"grade": false, "grade_id": "ex_05_1", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 05.1 · flip a batch left-right: images, depth maps and the pairs' columns
import torch


def hflip_batch(batch: dict) -> dict:
    """A new batch in which every image (and depth map) is mirrored left-right and the pairs follow.

    batch: {"images": float [B, 3, H, W], "depths": [B, 1, H, W] (NYU batches only),
    "pairs": long [B, P, 4] 0-based (ya, xa, yb, xb), "relation": [B, P]}. After the flip each pair
    must point at the same scene points as before. Return a new dict; leave the input unchanged.
    """
    ### BEGIN SOLUTION
    width = batch["images"].shape[-1]
    out = dict(batch)
    out["images"] = batch["images"].flip(-1)
    if "depths" in batch:
        out["depths"] = batch["depths"].flip(-1)
    pairs = batch["pairs"].clone()
    pairs[..., 1] = width - 1 - pairs[..., 1]  # columns mirror; rows and the relation stay
    pairs[..., 3] = width - 1 - pairs[..., 3]
    out["pairs"] = pairs
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_05_1", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_hflip_batch

check_hflip_batch(hflip_batch)
### BEGIN HIDDEN TESTS
check_hflip_batch(hflip_batch, hidden=True)
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "ex_05_2", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 05.2 · the cosine learning-rate schedule
import math


def cosine_lr(base: float, epoch: int, total: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of a run of ``total`` epochs, cosine schedule.

    ``base`` at epoch 0, then down along half a cosine period towards 5 % of ``base``, which it would
    reach at epoch == total (so the last epoch, total - 1, is still a little above it). total = 0
    counts as 1.
    """
    ### BEGIN SOLUTION
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(total, 1))))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_05_2", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_cosine_lr

check_cosine_lr(cosine_lr)
### BEGIN HIDDEN TESTS
check_cosine_lr(cosine_lr, hidden=True)
### END HIDDEN TESTS
n = 10
diw_lr = PROFILE.budget("diw").lr
print(f"a {n}-epoch DIW run at the DIW learning rate {diw_lr:g}: " + ", ".join(f"{cosine_lr(diw_lr, e, n):.2g}" for e in range(n)))

# %% [markdown]
# ## References
#
# - W. Chen, Z. Fu, D. Yang, J. Deng. *Single-Image Depth Perception in the Wild.* NIPS 2016. [arXiv:1604.03901](https://arxiv.org/abs/1604.03901), [project page (DIW)](http://www-personal.umich.edu/~wfchen/depth-in-the-wild/)
# - R. Ranftl, K. Lasinger, D. Hafner, K. Schindler, V. Koltun. *Towards Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer* (MiDaS). IEEE TPAMI, 2022 (online 2020). [arXiv:1907.01341](https://arxiv.org/abs/1907.01341)
# - R. Ranftl, A. Bochkovskiy, V. Koltun. *Vision Transformers for Dense Prediction* (DPT). ICCV 2021. [arXiv:2103.13413](https://arxiv.org/abs/2103.13413); the zero-shot DIW figures are from the [MiDaS README](https://github.com/isl-org/MiDaS)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
