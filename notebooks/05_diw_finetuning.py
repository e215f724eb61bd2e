# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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

# %%
# Set-up cell, the same in every notebook (its one source: notebooks/colab_cell.txt; a test compares the copies).
# On Google Colab it fetches depthkit and installs only what Colab lacks; anywhere else it does nothing.
import os, subprocess, sys

# The repository to clone on Colab: set DEPTHKIT_REPO (e.g. `%env DEPTHKIT_REPO=...` in a cell above) to use your copy.
REPO_URL = os.environ.get("DEPTHKIT_REPO", "https://github.com/depthkit/depthkit")
SMP = "segmentation-models-pytorch>=0.6,<0.7"  # U-Net++: the tested range (0.6.0); not preinstalled on Colab
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    REPO_DIR = "/content/depthkit"
    if not os.path.isdir(os.path.join(REPO_DIR, "depthkit")):
        clone = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], capture_output=True, text=True)
        if clone.returncode != 0:
            print(f"Could not clone {REPO_URL}:\n  {(clone.stderr.strip() or 'git failed').splitlines()[-1]}\n"
                  "Set DEPTHKIT_REPO to the address of a depthkit repository you can reach, then run this cell again:\n"
                  "  %env DEPTHKIT_REPO=<https address of your fork or copy>\n"
                  f"(or put a checkout, with its depthkit/ folder, at {REPO_DIR}).")
            raise SystemExit("depthkit is not installed: see the message above")
    os.chdir(REPO_DIR)
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    # --no-deps: Colab's own torch, torchvision, ipywidgets 7.x, matplotlib and h5py stay as they are.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", REPO_DIR], check=True)
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
from depthkit.train import pick_device

plt.rcParams["figure.dpi"] = 100       # legible figures; figures/ is written at viz.SAVE_DPI (120)
PROFILE = get_profile()               # DEPTHKIT_PROFILE=smoke | demo | report picks it (see 00_setup)
DEVICE = pick_device(PROFILE.device)  # CUDA if there is a GPU, then Apple MPS, then the CPU
TAG = f"{PROFILE.data} data · {PROFILE.name} profile · {DEVICE.type}"  # goes into every figure title
print(f"profile {PROFILE.name!r}: {PROFILE.data} data at {PROFILE.size}×{PROFILE.size}, "
      f"batch {PROFILE.batch_size}, device {DEVICE}")

# %% [markdown]
# ## 1. Data
#
# The report trained and tested inside the ~74k-image DIW *test* partition. Chen et al. instead trained
# on DIW_train.csv, validated on DIW_val.csv and tested on DIW_test.csv; the profile's `diw_protocol`
# switches between the two.

# %%
from IPython.display import Markdown, display

from depthkit.pipeline import describe_splits, load_stage_data, prepare_data
from depthkit.reproduce import REPORT_RESULTS, ZERO_SHOT_DIW_WHDR, predict_depth, train_stage
from depthkit.train import evaluate

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
    print(f"{MODELS[name]:<8} after NYU only: DIW test accuracy {100 * before[name]['ordinal_accuracy']:.1f} %")

# %% [markdown]
# ## 3. Fine-tuning
#
# The ranking loss with r taken from the CSV as it is (`>` → +1, A farther), a smaller learning rate
# than on NYU (the model is not starting from scratch), epochs from the profile (the cell prints them).
# Each run starts from the best NYU checkpoint and is kept in `runs/<profile>/<model>_diw/`.

# %%
from depthkit.config import runs_dir

display(Markdown(f"Under the `{PROFILE.name}` profile: learning rate {PROFILE.diw_lr:g} (on NYU: {PROFILE.lr:g}), "
                 + ", ".join(f"{label} {PROFILE.epochs(name, 'diw')[1]} epoch(s)" for name, label in MODELS.items()) + "."))
diw_models, after, histories = {}, {}, {}
for name, label in MODELS.items():
    diw_models[name], histories[f"{label} DIW"], run = train_stage(PROFILE, name, "diw", diw, device=DEVICE, progress=False)
    after[name] = evaluate(diw_models[name], diw["test"], "diw", device=DEVICE)
    print(f"{label:<8} {len(histories[f'{label} DIW']['epoch'])} epoch(s) -> {run.relative_to(runs_dir()).as_posix()} in the runs folder")

# %%
fig = viz.plot_histories(histories, f"Fine-tuning on DIW-layout pairs ({TAG})")

# %% [markdown]
# ## 4. Before and after
#
# Accuracy is the report's DIW number; WHDR with δ = 0 (see `02`: one pair per image, the sign of
# z_A − z_B, ties wrong) is the error rate Chen et al. and MiDaS report for DIW, and accuracy = 1 − WHDR.
# The report got 58.4 % (LR-ASPP) and 65.3 % (U-Net++) on real DIW; the zero-shot anchors printed
# below come from the MiDaS README.

# %%
print(f"DIW test split: {len(diw['test'])} pairs ({diw['test'].name}); profile {PROFILE.name}, {PROFILE.data} data")
print(f"{'model':<9}{'after NYU':>11}{'after DIW':>11}{'WHDR':>8}")
for name, label in MODELS.items():
    print(f"{label:<9}{100 * before[name]['ordinal_accuracy']:>10.1f}%{100 * after[name]['ordinal_accuracy']:>10.1f}%"
          f"{100 * after[name]['whdr']:>7.1f}%")
report = ", ".join(f"{label} {REPORT_RESULTS[name]['diw_acc']} %" for name, label in MODELS.items())
print(f"the report, on real DIW: {report}" + ("" if PROFILE.data == "real" else f" (not comparable with {PROFILE.data} pairs)"))
print("zero-shot anchors on real DIW (WHDR, MiDaS README; far more training data): "
      + ", ".join(f"{k} {v} %" for k, v in ZERO_SHOT_DIW_WHDR.items()))

# %% [markdown]
# ### What we got

# %%
n_test = len(diw["test"])
lines = []
for name, label in MODELS.items():
    b, a = before[name]["ordinal_accuracy"], after[name]["ordinal_accuracy"]
    noise = (2 * b * (1 - b) / n_test) ** 0.5  # spread of a difference of two accuracies on n_test pairs
    change = ("rose" if a > b else "fell") if abs(a - b) > 2 * noise else "hardly moved"
    lines.append(f"- **{label}**: {100 * b:.1f} % → {100 * a:.1f} % ({100 * (a - b):+.1f} points; {change}, "
                 f"the noise on {n_test} test pairs is about ±{100 * noise:.1f} points).")
fell = [MODELS[n] for n in MODELS if after[n]["ordinal_accuracy"] < before[n]["ordinal_accuracy"]]
why = ("Fine-tuning can *lower* accuracy, and did here for " + " and ".join(fell) + ". Possible reasons, from this "
       f"run's settings: {PROFILE.epochs('lraspp', 'diw')[1]} DIW epoch(s) at learning rate {PROFILE.diw_lr:g} is short; "
       "the ranking loss sees one pair per image, a much weaker signal per image than a dense depth map; best.pt is "
       f"picked on only {len(diw['val'])} validation pairs, so it can be a lucky epoch; and "
       + ("the synthetic DIW-layout scenes come from the same generator as the NYU-layout ones, so the NYU model "
          "already orders them well and there is little left to learn." if PROFILE.data == "synthetic" else
          "real DIW photos differ from NYU's indoor rooms, so the first steps may trade NYU habits for DIW ones before "
          "paying off.")
       if fell else "Fine-tuning did not lower either model's accuracy here.")
if PROFILE.name == "smoke":
    why += " Under `smoke` these are a few dozen pairs and one epoch: noise."
Markdown("\n".join(lines) + "\n\n" + why)

# %% [markdown]
# ## 5. Predictions on DIW images
#
# Each row: a DIW-layout test image with its annotated pair, then the depth maps before and after
# fine-tuning (near = bright). The ranking loss only constrains one pair per image, so it shapes the
# *order* of depths, not their scale: the fine-tuned maps can drift in contrast while keeping
# "larger = farther".

# %%
preds = {}
for name, label in MODELS.items():
    preds[f"{label} after NYU"] = predict_depth(nyu_models[name], diw["test"])
    preds[f"{label} after DIW"] = predict_depth(diw_models[name], diw["test"])
fig = viz.show_predictions(diw["test"].images, preds, f"Before and after DIW fine-tuning, DIW-layout test images ({TAG})",
                           pairs=diw["test"].pairs, relation=diw["test"].relation)

# %% [markdown]
# ## 6. Did fine-tuning cost NYU accuracy?
#
# The ranking loss never looks at depth values, only at their order, so the dense depth learned on
# NYU can degrade. The NYU test score before and after:

# %%
nyu_cost = {}
for name, label in MODELS.items():
    a = evaluate(nyu_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
    b = evaluate(diw_models[name], nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
    nyu_cost[label] = (a, b)
    print(f"{label:<8} NYU test normalized MSE: {a:.4f} after NYU -> {b:.4f} after DIW fine-tuning")

# %% [markdown]
# ### What we got

# %%
Markdown(" ".join(f"{label}'s NYU error {'rose' if b > a else 'fell'} from {a:.4f} to {b:.4f} "
                  f"({100 * (b / a - 1):+.0f} %)." for label, (a, b) in nyu_cost.items())
         + " The ranking loss rewards only the *order* of two points per image; nothing holds the rest of the map, "
           "or its contrast, to what NYU taught, so dense accuracy can drift even while the pairs get better. "
           "Fine-tuning on both losses at once (or a scale-invariant loss, see `02`) is the usual remedy.")

# %% [markdown]
# Next, `06_comparison`: everything side by side, and the figures of the report.
