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
# # 08 · Which depth cues does the network use?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/08_depth_cues.ipynb)
#
# The report's introduction lists the monocular cues a person uses to see depth in one picture:
# perspective, occlusion, relative size, texture gradients, shading, shadows, haze. Does a network
# trained on depth maps use them too, and which? The synthetic scenes let us ask directly: we draw the
# **same** test scenes again with one cue switched off at a time (same geometry, same depth, only the
# picture changes) and measure how much worse the trained models get. A cue whose removal hurts is a
# cue the network relies on; one whose removal changes nothing it ignores (or can do without).

# %% [markdown]
# **After this notebook you can**
#
# - render the same scenes without one depth cue at a time and score the trained models on them
# - read a cue ablation against its noise band
# - explain why a cue whose removal changes nothing is not proven unused
# - design a test that removes a geometric cue
#
# **It assumes** `01` (the cues), `03`–`05` (the trained models). Maths: a mean over scenes, its standard error, paired differences.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 1 hour (an estimate).

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

print(describe("08_depth_cues"))

# %% [markdown]
# ## 1. Switching cues off
#
# `depthkit.synthetic.render(scene, height, width, cues_off=(...))` draws a scene without some of its
# cues. Four can be switched off at render time; the other three *are* the geometry, i.e. the depth
# map itself, and no rendering switch can take them away (the next cell prints what each does).

# %%
from depthkit import synthetic as syn

print("switched off by render(..., cues_off=...):")
for cue, what in syn.REMOVABLE_CUES.items():
    print(f"  {cue:<17} {what}")
print("cannot be switched off (geometry = the depth itself):")
for cue, why in syn.GEOMETRIC_CUES.items():
    print(f"  {cue:<17} {why}")

# %% [markdown]
# One test scene, drawn five times: with every cue, then without each removable one. The depth map
# (right, in metres) is the same for all five pictures.

# %%
CONDITIONS = ("none",) + tuple(syn.REMOVABLE_CUES)  # "none": nothing removed, the reference
scene = syn.cue_scenes(1, seed=PROFILE.seed)[0]
fig, axes = plt.subplots(1, len(CONDITIONS) + 1, figsize=(2.6 * (len(CONDITIONS) + 1) + 0.6, 2.9), layout="constrained")
for ax, cue in zip(axes, CONDITIONS):
    out = syn.render(scene, 240, 320, cues_off=() if cue == "none" else (cue,))
    ax.imshow(out["image"]); ax.axis("off")
    ax.set_title("all cues" if cue == "none" else f"no {cue}", fontsize=9)
viz.show_depth(axes[-1], out["depth"], "depth (the same for all)")
fig.suptitle("One synthetic test scene (depthkit.synthetic.render), with every cue and without each removable one", fontsize=10);

# %% [markdown]
# ## 2. Test scenes without each cue
#
# Fresh scenes from their own random stream (none of them was seen in training), rendered at the NYU
# frame size (480×640) and resized to the profile's input size with the same functions that built the
# training caches. Each scene gets a few point pairs, drawn the way the DIW-layout pairs are (clearly
# different depths, balanced so that position alone says nothing), to score ordinal accuracy as well.

# %%
import numpy as np
import torch

from depthkit.data import resize_depth, resize_image
from depthkit.data.loader import DepthData

N_SCENES = 8 if PROFILE.name == "smoke" else 96  # smoke: seconds; demo/report: enough for a steady mean
PAIRS_PER_SCENE = 4
S = PROFILE.size
scenes = syn.cue_scenes(N_SCENES, seed=PROFILE.seed)


def cue_test_set(cue: str) -> DepthData:
    """The test scenes rendered without ``cue`` ("none": with every cue), as a DepthData with pairs."""
    images, depths = [], []
    for sc in scenes:
        out = syn.render(sc, 480, 640, cues_off=() if cue == "none" else (cue,))
        images.append(resize_image(out["image"], S).transpose(2, 0, 1))
        depths.append(resize_depth(out["depth"], S)[None])
    return DepthData(images=torch.from_numpy(np.stack(images)), depths=torch.from_numpy(np.stack(depths)),
                     pairs=PAIRS, relation=RELATION, name=f"cue test scenes, no {cue}")


# the pairs come from the depth, which no switch changes: one set of pairs for every condition
rng = np.random.default_rng([PROFILE.seed, 8])
flags = syn.balanced_flags(N_SCENES * PAIRS_PER_SCENE, rng, 2)  # (A farther, lower point closer), balanced
pairs, relation = [], []
for i, sc in enumerate(scenes):
    depth = resize_depth(syn.render(sc, 480, 640)["depth"], S)
    for a_farther, lower_closer in flags[i * PAIRS_PER_SCENE:(i + 1) * PAIRS_PER_SCENE]:
        ya, xa, yb, xb = syn.sample_pair(depth, rng, bool(lower_closer), bool(a_farther))
        pairs.append((ya, xa, yb, xb))
        relation.append(1 if depth[ya, xa] > depth[yb, xb] else -1)
PAIRS = torch.tensor(pairs, dtype=torch.long).view(N_SCENES, PAIRS_PER_SCENE, 4)
RELATION = torch.tensor(relation, dtype=torch.long).view(N_SCENES, PAIRS_PER_SCENE)

cue_sets = {cue: cue_test_set(cue) for cue in CONDITIONS}
print(f"{N_SCENES} scenes at {S}×{S}, {PAIRS.shape[0] * PAIRS.shape[1]} point pairs, {len(cue_sets)} conditions: "
      + ", ".join(CONDITIONS))

# %% [markdown]
# ## 3. The trained models
#
# Both report models under this profile: the NYU checkpoints (dense depth, scored by normalized MSE)
# and the DIW fine-tuned ones (point pairs, scored by ordinal accuracy). `train_stage` reuses what
# notebooks `03`–`05` left in `runs/<profile>/`, and trains only what is missing.

# %%
from depthkit.evaluate import evaluate, evaluate_baseline
from depthkit.pipeline import load_stage_data, prepare_data
from depthkit.train import train_stage

MODELS = {"lraspp": "LR-ASPP", "unetpp": "U-Net++"}
prepared = prepare_data(PROFILE)
nyu = load_stage_data(PROFILE, "nyu", prepared)
diw = load_stage_data(PROFILE, "diw", prepared)
nyu_models, diw_models = {}, {}
for name in MODELS:
    nyu_models[name], _, _ = train_stage(PROFILE, name, "nyu", nyu, device=DEVICE, progress=False)
    diw_models[name], _, _ = train_stage(PROFILE, name, "diw", diw, device=DEVICE, progress=False)
epochs = {name: (sum(PROFILE.epochs(name, "nyu")), PROFILE.epochs(name, "diw")[1]) for name in MODELS}
print("; ".join(f"{MODELS[n]}: {e[0]} NYU epoch(s), then {e[1]} DIW epoch(s)" for n, e in epochs.items())
      + f" ({PROFILE.name} profile, {PROFILE.data} training data)")

# %% [markdown]
# ## 4. Scores without each cue
#
# Each condition scored per scene with the metrics `depthkit.evaluate.evaluate` averages (`per_image_scores`),
# then averaged: normalized MSE of the NYU models (lower is better) and
# ordinal accuracy of the DIW models (higher is better). The mean-depth-map baseline's normalized MSE
# is the same for every condition (the depths do not change); for the pairs, 50 % is a coin, and the
# position rule "the lower point is closer" (`metrics.position_rule_accuracy`) is the floor a model
# must clear to show it looks at the picture at all.

# %%
from depthkit import metrics
from depthkit.course import narrative
from depthkit.evaluate import mean, MIN_IMAGES, NOISE_Z, per_image_scores, standard_error

# per scene: normalized MSE of the NYU model, share of its pairs the DIW model orders right (what evaluate averages)
per_scene = {(cue, name): {"nmse": per_image_scores(nyu_models[name], data, "nyu", device=DEVICE)["normalized_mse"],
                           "acc": per_image_scores(diw_models[name], data, "diw", device=DEVICE)["ordinal_accuracy"]}
             for cue, data in cue_sets.items() for name in MODELS}
scores = {cue: {name: {k: mean(v) for k, v in per_scene[(cue, name)].items()} for name in MODELS}
          for cue in CONDITIONS}
baseline_nmse = evaluate_baseline(nyu["train"], cue_sets["none"])["normalized_mse"]
n_pairs = PAIRS.numel() // 4
print(f"{'removed cue':<18}" + "".join(f"{MODELS[n] + ' nMSE':>15}{'Δ':>9}" for n in MODELS)
      + "".join(f"{MODELS[n] + ' acc.':>15}{'Δ':>8}" for n in MODELS))
for cue in CONDITIONS:
    row = f"{'(none)' if cue == 'none' else cue:<18}"
    for n in MODELS:
        v, ref = scores[cue][n]["nmse"], scores["none"][n]["nmse"]
        row += f"{v:>15.4f}{v - ref:>+9.4f}"
    for n in MODELS:
        v, ref = scores[cue][n]["acc"], scores["none"][n]["acc"]
        row += f"{100 * v:>14.1f}%{100 * (v - ref):>+7.1f}%"
    print(row)
rule = metrics.position_rule_accuracy(PAIRS, RELATION)  # "the lower point is closer": no pixel looked at
print(f"mean-depth baseline normalized MSE {baseline_nmse:.4f}; {n_pairs} pairs: chance 50 %, "
      f"the position rule \"the lower point is closer\" {100 * rule:.1f} % (the same for every condition)")

# %%
x = np.arange(len(CONDITIONS))
width = 0.8 / len(MODELS)
labels = ["all cues" if c == "none" else f"no {c}".replace(" ", "\n", 1) for c in CONDITIONS]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
bars = dict(capsize=3, error_kw={"lw": 1})  # error bars: ±2 standard errors of the mean over the scenes
for k, (name, label) in enumerate(MODELS.items()):
    axes[0].bar(x + k * width, [scores[c][name]["nmse"] for c in CONDITIONS], width, label=f"{label} (after NYU)",
                yerr=[NOISE_Z * standard_error(per_scene[(c, name)]["nmse"]) for c in CONDITIONS], **bars)
    axes[1].bar(x + k * width, [100 * scores[c][name]["acc"] for c in CONDITIONS], width, label=f"{label} (after DIW)",
                yerr=[100 * NOISE_Z * standard_error(per_scene[(c, name)]["acc"]) for c in CONDITIONS],
                **bars)
axes[0].axhline(baseline_nmse, color="0.3", ls="--", lw=1, label="mean-depth baseline")
axes[1].axhline(50, color="0.3", ls="--", lw=1, label="chance")
axes[1].axhline(100 * rule, color="tab:red", ls=":", lw=1.2, label="position rule (lower = closer)")
axes[0].set(ylabel="normalized MSE on the test scenes ↓", xlabel="cue removed from the test pictures",
            title="Dense depth (NYU-trained models)")
axes[1].set(ylabel="ordinal accuracy on point pairs (%) ↑", xlabel="cue removed from the test pictures",
            title="Which point is farther? (DIW fine-tuned models)")
for ax in axes:
    ax.set_xticks(x + width * (len(MODELS) - 1) / 2, labels, fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
    ax.grid(axis="y", alpha=0.3)
fig.suptitle(f"Removing one depth cue at a time from {N_SCENES} unseen synthetic test scenes ({TAG})\n"
             f"error bars: ±{NOISE_Z:g} standard errors of the mean over the {N_SCENES} scenes"
             + ("" if N_SCENES >= MIN_IMAGES else f" (not drawn: fewer than {MIN_IMAGES} scenes)"),
             fontsize=10);

# %%
header = ["removed cue"] + [f"{MODELS[n]} nMSE ↓" for n in MODELS] + [f"{MODELS[n]} accuracy ↑" for n in MODELS]
rows = [[("(none)" if c == "none" else c)] + [f"{scores[c][n]['nmse']:.4f}" for n in MODELS]
        + [f"{100 * scores[c][n]['acc']:.1f} %" for n in MODELS] for c in CONDITIONS]
fig = viz.table_figure(header, rows, f"Scores without each cue ({TAG})")

# %% [markdown]
# ### What we got

# %%
from IPython.display import Markdown

# a change counts beyond its noise band: 2 standard errors of the per-scene differences (same scenes, same pairs)
Markdown(narrative.depth_cues({key: v["nmse"] for key, v in per_scene.items()}, {key: v["acc"] for key, v in per_scene.items()},
                              MODELS, baseline_nmse, PROFILE))

# %% [markdown]
# Things to try: switch off two cues at once (`cues_off=("haze", "texture gradient")`), or train a model on
# pictures without haze and test it with haze (what does it learn instead?). Back to `00_setup` for the
# profiles; `06_comparison` for the report's table.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved.
#
# | exercise | points | graded |
# |---|---|---|
# | questions 1–4 (points beside each) | 9 | by hand, from your answer cells |
# | **total** | **9** | |

# %% [markdown]
# **1.** *Explain* (2 points). Which cue does your "What we got" cell say each model leans on most, and is that change
# larger than twice its printed noise? Why does "removing this cue changes nothing" not prove that the model
# ignores it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_08_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Read from the run: name, per model, the cue whose removal costs most and compare the change with its noise
# band (the printed band already is two standard errors). In the committed `demo` run at the time of writing
# that was haze for both models, well beyond its band, with shading second. "No change" does not prove the cue is ignored: the model may use it but get the same
# information from another cue that is still there (haze and texture density both grow with distance), so
# removing one of two redundant cues costs nothing; and a small effect can hide inside the noise of a few dozen
# scenes.
#
# *Rubric (2 points):* 1 for naming each model's main cue from the run with a correct comparison against the noise band; 1 for why no change is no proof (redundant cues can substitute; small effects within the noise).

# %% [markdown]
# **2.** *Try it* (2 points). Switch off two cues at once in section 2, e.g. `cues_off=("haze", "texture gradient")`.
# Does the damage add up, or is it larger than the sum (a sign that the two cues stand in for each other)?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_08_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It depends on the run; a good answer computes the change with both cues off and compares it with the sum of
# the two single-cue changes, each against the noise. About equal to the sum: the model uses the two independently.
# Clearly larger than the sum: each cue was covering for the other (removing either alone cost little because the
# other remained), which is the redundancy of question 1. Smaller than the sum: the two overlap in what they cost.
# With few scenes the differences between these are often within the noise, and then the honest answer says so.
#
# *Rubric (2 points):* 1 for the measurement (the two-cue change against the sum of the single-cue changes); 1 for a correct reading (larger than the sum = substitutes; about the sum = independent), judged against the noise.

# %% [markdown]
# **3.** *Try it on a real photo* (3 points). In `07` (bundled NYU photo), add haze with the photo's own Kinect depth:
# blend `small`, the photo at the model's size, towards grey by `a = 1 - np.exp(-kinect / 5)` per pixel (`kinect` is
# already at that size; holes get no haze), predict again and compare with and without. Does the prediction move
# towards the Kinect's depth?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_08_3", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# **Answer.** For example `hazy = ((1 - a[..., None]) * small + a[..., None] * 128).astype(np.uint8)` with
# `a = np.where(kinect > 0, 1 - np.exp(-kinect / 5), 0)`,
# then the prediction of section 3 on `hazy`. The outcome depends on the model: compare, with and without haze,
# how well the prediction matches the Kinect, e.g. the share of clear pairs ordered right (section 4) or the
# correlation over the measured pixels. If the model leans on haze (as `08` measured on synthetic scenes), the
# depth-consistent haze gives it the cue it learned, and the prediction should follow the Kinect more closely;
# if it barely changes, the model's failure on the real photo lies elsewhere (textures, geometry, the 64×64
# squashing). One photo is one sample: a change is a hint, not a measurement.
#
# *Rubric (3 points):* 1 for a correct haze blend (grey weighted by a per pixel, holes unhazed); 1 for a quantitative comparison with the Kinect, with and without haze; 1 for a sound interpretation (moves towards the Kinect = relies on haze; no change = other gaps), hedged for one photo.

# %% [markdown]
# **4.** *Explain* (2 points). Perspective, occlusion and relative size are never switched off here. Which of them could
# a model use on every test picture of section 2, and how would you design a test scene that removes it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_08_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Perspective: every scene is a box-shaped room seen by a similar camera, so the converging floor and wall
# edges (and the image position of the floor, near at the bottom) are in every picture, while occlusion and
# relative size need boxes that overlap or match in size at different depths (`01`, exercise 5). To remove
# perspective: render with an orthographic camera (no convergence, no size change with distance), or show only a
# fronto-parallel wall with objects in front of it, or randomise the camera's tilt and roll so that position in
# the image no longer predicts depth; the depth map stays the truth to score against.
#
# *Rubric (2 points):* 1 for perspective (present in every scene; occlusion and relative size are not); 1 for a test design that removes it (orthographic projection, a fronto-parallel view without floor, or random tilt/roll) while keeping the ground truth.

# %% [markdown]
# ## References
#
# - T. van Dijk, G. de Croon. *How Do Neural Networks See Depth in Single Images?* ICCV 2019 (further reading: the same question asked of real networks). [CVF open access](https://openaccess.thecvf.com/content_ICCV_2019/html/van_Dijk_How_Do_Neural_Networks_See_Depth_in_Single_Images_ICCV_2019_paper.html)
# - N. Silberman, D. Hoiem, P. Kohli, R. Fergus. *Indoor Segmentation and Support Inference from RGBD Images* (NYU Depth V2). ECCV 2012. [dataset page](https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html)
# - W. Chen, Z. Fu, D. Yang, J. Deng. *Single-Image Depth Perception in the Wild.* NIPS 2016. [arXiv:1604.03901](https://arxiv.org/abs/1604.03901), [project page (DIW)](http://www-personal.umich.edu/~wfchen/depth-in-the-wild/)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
