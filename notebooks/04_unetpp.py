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
# # 04 · Model I: U-Net++ with a ResNeXt-50 encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/04_unetpp.ipynb)
#
# The report's large model is **U-Net++** (Zhou et al., 2018) from segmentation-models-pytorch, with
# a **ResNeXt-50 (32×4d)** encoder: 48.5 M parameters, fifteen times LR-ASPP. It trained it with a
# **frozen-encoder warm-up**: 2 epochs with the encoder fixed, then 8 with all weights.

# %%
# Set-up cell, the same in every notebook (its one source: notebooks/colab_cell.txt; a test compares the copies).
# On Google Colab it fetches depthkit and installs only what Colab lacks; anywhere else it does nothing.
import os, subprocess, sys
from pathlib import Path

# The repository to clone on Colab: set DEPTHKIT_REPO (e.g. `%env DEPTHKIT_REPO=...` in a cell above) to use your copy.
REPO_URL = os.environ.get("DEPTHKIT_REPO", "https://github.com/depthkit/depthkit")
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

# %% [markdown]
# ## 1. The architecture, and the multiple-of-32 rule
#
# The encoder halves the resolution five times. U-Net's decoder climbs back up, joining each level
# with the encoder's features of the same size (skip connections). U-Net++ replaces each plain skip
# by a small dense block of convolutions, so the decoder receives features that have already been
# partly decoded: the "nested" skip pathways.
#
# Five halvings mean the input must be divisible by 2⁵ = 32, and smp refuses 200×200, the report's
# size. depthkit's wrapper pads the input by reflection to the next multiple of 32 (224) and crops the
# output back, so callers never see the rule.

# %%
# NBVAL_CHECK_OUTPUT
from depthkit.models import build_model, count_parameters, freeze_encoder, unfreeze_encoder

model = build_model("unetpp")
print(f"U-Net++: {count_parameters(model) / 1e6:.2f} M parameters, encoder {count_parameters(model.encoder) / 1e6:.2f} M")
with torch.no_grad():
    print("depthkit's U-Net++ on 200×200:", tuple(model(torch.zeros(1, 3, 200, 200)).shape))
    try:
        model.net(torch.zeros(1, 3, 200, 200))
    except Exception as err:  # smp's own check: "divisible by 32"
        print("the bare smp model refuses 200×200:", type(err).__name__)

# %% [markdown]
# ## 2. Why freeze the encoder first?
#
# With ImageNet weights, the encoder already knows edges, textures and objects, while the decoder
# starts random. In the first steps the decoder's gradients are large and noisy; letting them into
# the encoder would wreck what it knows. So the warm-up trains only the decoder, then releases
# everything. `freeze_encoder` just switches off `requires_grad`:

# %%
# NBVAL_CHECK_OUTPUT
freeze_encoder(model)
print(f"encoder frozen:  {count_parameters(model, trainable_only=True) / 1e6:5.2f} M of "
      f"{count_parameters(model) / 1e6:.2f} M parameters train")
unfreeze_encoder(model)
print(f"encoder free:    {count_parameters(model, trainable_only=True) / 1e6:5.2f} M train")

# %% [markdown]
# Honest caveat: without a network the `smoke` and `demo` profiles start from random weights
# (`pretrained=False`), so here the warm-up only shows the mechanics. With `report` on Colab the
# ImageNet encoder is loaded and the warm-up matters.
#
# ## 3. Training
#
# The same optimizer and loss as LR-ASPP (Adam, normalized MSE); the epochs come from the profile. On
# a CPU U-Net++ is slow (about 1.3 s per step of 8 images at 64×64, some 13× LR-ASPP), so the epochs
# it can afford set the budget; the next cell says how many each model gets. A finished run in
# `runs/<profile>/unetpp_nyu/` is reused.

# %%
from IPython.display import Markdown, display

from depthkit.checkpoints import load_model
from depthkit.course import narrative
from depthkit.evaluate import baseline_per_image, evaluate, evaluate_baseline, noise_band, per_image_scores, predict_depth
from depthkit.pipeline import load_stage_data
from depthkit.reproduce import REPORT_RESULTS
from depthkit.runs import run_dir
from depthkit.train import train_stage

nyu = load_stage_data(PROFILE, "nyu")
frozen, full = PROFILE.epochs("unetpp", "nyu")
display(Markdown(f"Under the `{PROFILE.name}` profile: Adam, learning rate {PROFILE.budget('nyu').lr:g} ({PROFILE.lr_schedule} schedule), "
                 f"weight decay {PROFILE.weight_decay:g}; U-Net++ trains **{frozen} epoch(s) with the encoder frozen, "
                 f"then {full} with all weights** (LR-ASPP: {sum(PROFILE.epochs('lraspp', 'nyu'))} epoch(s))."))
print(f"{len(nyu['train'])} training images")
model, history, run = train_stage(PROFILE, "unetpp", "nyu", nyu, device=DEVICE, progress=False)
for e, loss, val, fr, sec in zip(history["epoch"], history["train_loss"], history["val_normalized_mse"],
                                 history["frozen"], history["seconds"]):
    print(f"epoch {e:3d}{' (encoder frozen)' if fr else '                 '}: training loss {loss:.4f}, "
          f"validation normalized MSE {val:.4f} ({sec:.1f} s)")
print(narrative.epoch_times(history))  # a slow epoch, and where its time went (from the history's fields)

# %%
fig = viz.plot_histories({"U-Net++, NYU": history}, f"U-Net++ trained on NYU-layout data ({TAG})")

# %% [markdown]
# ## 4. Results, and LR-ASPP beside it
#
# If `03_lraspp` ran under this profile, its checkpoint is loaded for comparison. The noise band of a
# difference is two standard errors of the mean of the per-image differences, on the same test images.

# %%
baseline = evaluate_baseline(nyu["train"], nyu["test"])
rows = {"U-Net++": model}
lraspp_ckpt = run_dir(PROFILE, "lraspp", "nyu") / "best.pt"
if lraspp_ckpt.exists():
    rows["LR-ASPP"] = load_model(lraspp_ckpt, device=DEVICE)
print(f"test split, {len(nyu['test'])} images of {PROFILE.data} data; mean-depth baseline {baseline['normalized_mse']:.4f}")
test_scores, per_image = {}, {}
baseline_scores = baseline_per_image(nyu["train"], nyu["test"])
for name, m in rows.items():
    test_scores[name] = s = evaluate(m, nyu["test"], "nyu", device=DEVICE)
    per_image[name] = per_image_scores(m, nyu["test"], "nyu", device=DEVICE)["normalized_mse"]
    print(f"  {name:<8} normalized MSE {s['normalized_mse']:.4f} (noise band against the baseline "
          f"{narrative.format_band(noise_band(per_image[name], baseline_scores))}), AbsRel {s['abs_rel']:.3f}, δ<1.25 {s['delta1']:.3f}")
if len(per_image) == 2:
    print(f"  noise band of the U-Net++ − LR-ASPP difference: {narrative.format_band(noise_band(*per_image.values()))}")
report = ", ".join(f"{r['label'].split()[0]} {r['nyu_mse']}" for r in REPORT_RESULTS.values())
print(f"the report, on real NYU Depth V2: {report}" if PROFILE.data == "real" else
      f"(the report's normalized MSE, {report}, was measured on real NYU Depth V2: not comparable with {PROFILE.data} scenes)")

# %% [markdown]
# ### What we got

# %%
Markdown(narrative.unetpp_nyu(per_image, baseline_scores, {"U-Net++": sum(PROFILE.epochs("unetpp", "nyu")),
                                                              "LR-ASPP": sum(PROFILE.epochs("lraspp", "nyu"))},
                              frozen, PROFILE, len(nyu["train"]), spread=narrative.seed_spread(PROFILE)))

# %%
preds = {name: predict_depth(m, nyu["test"]) for name, m in rows.items()}
fig = viz.show_predictions(nyu["test"].images, preds, f"U-Net++ (and LR-ASPP) on NYU-layout test images ({TAG})",
                           depths=nyu["test"].depths)

# %% [markdown]
# Next, `05_diw_finetuning`: teaching both models from pairs of points.

# %% [markdown]
# ## Exercises
#
# Answer the *explain* questions in a sentence or two; for the *try it* ones, change one thing, rerun and
# note what moved. Exercise 04.1 is checked at once (see `02` for how the checks work).
#
# 1. *Explain.* What does the frozen-encoder warm-up protect, and why does it protect nothing under `smoke`
#    and `demo` here?
# 2. *Explain.* `freeze_encoder` only switches off `requires_grad`. During the warm-up the model is in
#    `train()` mode: what in the encoder still changes, and why could that matter with ImageNet weights?
#    (Read the docstring of `depthkit.models.freeze_encoder`.)
# 3. *Try it.* Run `model(torch.zeros(1, 3, 97, 131))` and `model.net(torch.zeros(1, 3, 96, 128))` under
#    `torch.no_grad()`. What shapes come out, and what did the wrapper do for 97×131 that the bare smp
#    model would refuse?
# 4. *Explain.* U-Net++ has about 15 times LR-ASPP's parameters. Name two reasons why, trained from random
#    weights on a few hundred images for the same number of epochs, it need not win (section 4 shows what
#    one run gives; one seed says little about a small gap).
# 5. *Implement it.* Exercise 04.1: freeze and unfreeze an encoder.

# %%
# Exercise 04.1 · freezing and unfreezing the encoder
from torch import nn


def set_encoder_trainable(model: nn.Module, trainable: bool) -> None:
    """Let gradients into the encoder (``trainable=True``) or stop them (``False``); nothing else changes.

    ``model.encoder`` is the encoder of every depthkit model (U-Net++: its encoder; LR-ASPP: its
    MobileNetV3 backbone). The decoder and head stay trainable; the weights and the train/eval mode
    are not touched.
    """
    ### BEGIN SOLUTION
    for p in model.encoder.parameters():
        p.requires_grad_(trainable)
    ### END SOLUTION

# %%
from depthkit.course.exercises import check_set_encoder_trainable
from depthkit.models import count_parameters

check_set_encoder_trainable(set_encoder_trainable)
set_encoder_trainable(model, False)
print(f"U-Net++ with your frozen encoder: {count_parameters(model, trainable_only=True) / 1e6:.2f} M of "
      f"{count_parameters(model) / 1e6:.2f} M parameters train")
set_encoder_trainable(model, True)

# %% [markdown]
# ## References
#
# - Z. Zhou, M. M. Rahman Siddiquee, N. Tajbakhsh, J. Liang. *UNet++: A Nested U-Net Architecture for Medical Image Segmentation.* DLMIA (MICCAI workshop) 2018. [arXiv:1807.10165](https://arxiv.org/abs/1807.10165)
# - S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He. *Aggregated Residual Transformations for Deep Neural Networks* (ResNeXt). CVPR 2017. [arXiv:1611.05431](https://arxiv.org/abs/1611.05431)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
