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
# # 03 · Model II: LR-ASPP MobileNetV3, trained on NYU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/03_lraspp.ipynb)
#
# The report's small model is torchvision's **LR-ASPP** (Lite Reduced Atrous Spatial Pyramid
# Pooling) on a **MobileNetV3-Large** backbone: a segmentation network built for phones, 3.2 M
# parameters. It predicts 21 maps, one per Pascal-VOC class it was designed for; the report tried
# several ways to turn them into one depth map and a learned **1×1 convolution** worked best.

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
from depthkit.pipeline import describe_splits, load_stage_data
from depthkit.reproduce import REPORT_RESULTS, predict_depth, train_stage
from depthkit.train import evaluate, evaluate_baseline

nyu = load_stage_data(PROFILE, "nyu")
print(describe_splits(nyu))
frozen, full = PROFILE.epochs("lraspp", "nyu")
display(Markdown(f"Under the `{PROFILE.name}` profile: Adam, learning rate {PROFILE.lr:g} ({PROFILE.lr_schedule} "
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

# %%
scores = evaluate(model, nyu["test"], "nyu", device=DEVICE)
baseline = evaluate_baseline(nyu["train"], nyu["test"])
print(f"test split, {len(nyu['test'])} images ({nyu['test'].name}), {PROFILE.data} data:")
print(f"  normalized MSE  LR-ASPP {scores['normalized_mse']:.4f} | mean-depth baseline {baseline['normalized_mse']:.4f}")
print(f"  after median alignment: AbsRel {scores['abs_rel']:.3f}, RMSE {scores['rmse']:.3f} m, δ<1.25 {scores['delta1']:.3f}")
report = REPORT_RESULTS["lraspp"]["nyu_mse"]
print(f"  the report, on real NYU Depth V2: normalized MSE {report}" if PROFILE.data == "real" else
      f"  (the report's {report} was measured on real NYU Depth V2: not comparable with {PROFILE.data} scenes)")

# %% [markdown]
# ### What we got

# %%
gain = 1 - scores["normalized_mse"] / baseline["normalized_mse"]
vals = history["val_normalized_mse"]
best_epoch = history["epoch"][vals.index(min(vals))]
trend = ("was still falling at the last epoch: more epochs would likely help" if best_epoch == history["epoch"][-1]
         else f"was lowest after epoch {best_epoch} of {history['epoch'][-1]} (that checkpoint is the one kept)")
context = {
    "smoke": "Under `smoke` it saw a couple of dozen images for one epoch: it is not expected to beat the baseline, "
             "and this cell only shows the mechanics.",
    "demo": "The scenes are synthetic rooms, so the number says the pipeline learns, not how it would do on NYU.",
    "report": f"The report measured {REPORT_RESULTS['lraspp']['nyu_mse']} on the same split at the same size.",
}[PROFILE.name]
Markdown(f"LR-ASPP reached a test normalized MSE of **{scores['normalized_mse']:.4f}** against "
         f"{baseline['normalized_mse']:.4f} for the mean-depth baseline: "
         + (f"**{100 * gain:.0f} % lower**" if gain > 0 else f"**{-100 * gain:.0f} % higher** (worse than predicting the average room)")
         + f", after {frozen + full} epoch(s) on {len(nyu['train'])} {PROFILE.data} training images. "
         f"Its validation error {trend}. {context}")

# %%
fig = viz.show_predictions(nyu["test"].images, {"LR-ASPP": predict_depth(model, nyu["test"])},
                           f"LR-ASPP on NYU-layout test images ({TAG})", depths=nyu["test"].depths)

# %% [markdown]
# ## 4. Inside the 21 → 1 head
#
# The 21 maps before the 1×1 convolution, for one test image, the ten with the largest mixing weights
# (the weight is in each title). Depth comes out as a weighted sum of them.

# %%
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

# %% [markdown]
# Under `smoke` the model has seen a couple of dozen images for one epoch: expect blur and a score
# near the baseline. Under `demo` it should clearly beat the baseline; only under `report`, on the real
# data, can it be compared with the report's 0.058. Next, `04_unetpp`: the large model.
