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
# # 04 · Model I: U-Net++ with a ResNeXt-50 encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/04_unetpp.ipynb)
#
# The report's large model is **U-Net++** (Zhou et al., 2018) from segmentation-models-pytorch, with
# a **ResNeXt-50 (32×4d)** encoder: 48.5 M parameters, fifteen times LR-ASPP. It trained it with a
# **frozen-encoder warm-up**: 2 epochs with the encoder fixed, then 8 with all weights.

# %% [markdown]
# **After this notebook you can**
#
# - describe U-Net++'s nested skip pathways and why smp needs sizes divisible by 32
# - explain the frozen-encoder warm-up, and what `requires_grad` does and does not freeze
# - train U-Net++ on NYU and compare it with LR-ASPP within the noise
# - freeze and unfreeze an encoder by hand, and write the training loop that `train_stage` runs
#
# **It assumes** `03`. Maths and ML: encoder–decoder networks, skip connections, BatchNorm, backpropagation.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 2 hours (an estimate): a training loop to write, your reading of the result, four questions.

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

print(describe("04_unetpp"))

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
# a CPU U-Net++ is slow, so the epochs it can afford set the budget; the next cell says how many each
# model gets, and what one training step cost each of them in the runs it trained (read from the runs'
# histories, on the machine that trained them). A finished run in `runs/<profile>/unetpp_nyu/` is reused.

# %%
import json

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
lraspp_history = run_dir(PROFILE, "lraspp", "nyu") / "history.json"
step_costs = {"U-Net++": history}
if lraspp_history.exists():
    step_costs["LR-ASPP"] = json.loads(lraspp_history.read_text(encoding="utf-8"))
for label, h in step_costs.items():
    print(f"{label}: {sum(h['train_seconds']) / max(sum(h['steps']), 1):.2f} s per training step of {PROFILE.batch_size} "
          f"images at {PROFILE.size}×{PROFILE.size} ({sum(h['steps'])} steps, as timed by its run)")

# %%
fig = viz.plot_histories({"U-Net++, NYU": history}, f"U-Net++ trained on NYU-layout data ({TAG})")

# %% [markdown]
# ## 4. Results, and LR-ASPP beside it
#
# If `03_lraspp` ran under this profile, its checkpoint is loaded for comparison. Every band is `03`'s noise
# band (section 3 there), labelled "test sampling" or, where the seed spread is added, "test sampling + seeds".

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
# **Your reading** *Interpret* (2 points). Before you run the next cell, write in the answer cell below what the numbers
# printed above say: is U-Net++ better than the mean-depth baseline, and than LR-ASPP, beyond each printed noise band?
# Does that show that its architecture is the better one?

# %% [markdown] nbgrader={"grade": true, "grade_id": "reading_04_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** In the committed `demo` run: U-Net++ 0.0331 against the baseline's 0.0499 (34 % lower, noise band
# ±0.0050 (test sampling): clearly better) and against LR-ASPP's 0.0408 (0.0077 lower, band of that difference
# ±0.0033 (test sampling): clearly better in this run, on these 96 test images). It does not show that the architecture is better: U-Net++ has some
# 15 times LR-ASPP's parameters, so size and architecture are confounded (`06` §5 compares a parameter-matched
# U-Net++); it is one training seed of each (the band covers the test images, not the seed: the next cell widens
# it); and synthetic rooms, not NYU, so the report's 0.032 vs 0.058 is not what was reproduced. Under `smoke` expect
# no clear difference at all.
#
# *Rubric (2 points):* 1 for both comparisons judged against their printed bands (values and verdicts); 1 for why that is not the architecture (15× the parameters, one seed each, synthetic data).

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
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved. Exercises 04.1 and 04.2 are checked at once
# (see `02` for how the checks work); the grader also runs hidden cases of the same kinds.
#
# | exercise | points | graded |
# |---|---|---|
# | your reading of the result (before "What we got") | 2 | by hand, from its answer cell |
# | questions 1–4 (points beside each) | 8 | by hand, from your answer cells |
# | Exercise 04.1 | 2 | by its check cell, plus hidden cases |
# | Exercise 04.2 | 4 | by its check cell, plus hidden cases |
# | **total** | **16** | |

# %% [markdown]
# **1.** *Explain* (2 points). What does the frozen-encoder warm-up protect, and why does it protect nothing under
# `smoke` and `demo` here?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_04_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It protects what a pretrained (ImageNet) encoder already knows. The decoder starts random, so its first
# gradients are large and noisy; flowing back into the encoder they would overwrite useful features before the
# decoder has learned to use them. Training only the decoder first lets it adapt to the fixed features, then
# everything is released. Under `smoke` and `demo` the encoder starts from random weights (`pretrained=False`,
# no downloads): there is nothing learned to protect, so the frozen epoch only trains the decoder on random
# features, and that epoch's encoder updates are simply lost.
#
# *Rubric (2 points):* 1 for what it protects (pretrained encoder features against the random decoder's large early gradients); 1 for why not here (random encoder under smoke/demo: nothing to protect, the frozen epoch is partly wasted).

# %% [markdown]
# **2.** *Explain* (2 points). `freeze_encoder` only switches off `requires_grad`. During the warm-up the model is in
# `train()` mode: what in the encoder still changes, and why could that matter with ImageNet weights? (Read the
# docstring of `depthkit.models.freeze_encoder`.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_04_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The BatchNorm layers' running statistics (running mean and variance) keep updating from every batch in
# `train()` mode, although no weight changes. With ImageNet weights the frozen convolutions were trained to be
# followed by normalisation with ImageNet's statistics; replacing them by estimates from small batches of depth
# data changes what the "frozen" encoder outputs (and noisy small-batch estimates make it jitter), so the
# features the decoder is adapting to move under it. The docstring's remedy: put the encoder's modules in
# `eval()` after `model.train()` to freeze the statistics too (the report did not).
#
# *Rubric (2 points):* 1 for BatchNorm running mean/variance still updating in train mode; 1 for why it matters (the pretrained features shift with the new, small-batch statistics; fix by eval() on the encoder).

# %% [markdown]
# **3.** *Try it* (2 points). Run `model(torch.zeros(1, 3, 97, 131))` and `model.net(torch.zeros(1, 3, 96, 128))` under
# `torch.no_grad()`. What shapes come out, and what did the wrapper do for 97×131 that the bare smp model would
# refuse?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_04_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** `(1, 1, 97, 131)` and `(1, 1, 96, 128)`: 96 × 128 is a multiple of 32 on both sides, so the bare smp
# network accepts it. For 97 × 131 depthkit's wrapper reflect-pads the input to the next multiples of 32,
# 128 × 160, runs the network there and crops the output back to 97 × 131; the bare `model.net` on 97 × 131
# raises smp's `RuntimeError` ("Expected image height and width divisible by 32. Consider pad your images to
# shape (128, 160)"), because the encoder halves the size five times.
#
# *Rubric (2 points):* 1 for both shapes; 1 for the wrapper's reflect-padding to 128 × 160 and cropping back (and why: five halvings need multiples of 32).

# %% [markdown]
# **4.** *Explain* (2 points). U-Net++ has about 15 times LR-ASPP's parameters. Name two reasons why, trained from
# random weights on a few hundred images for the same number of epochs, it need not win (section 4 shows what
# one run gives; one seed says little about a small gap).

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_04_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Any two of: (1) without ImageNet pretraining, 48 M parameters must be fitted from a few hundred images:
# more capacity to overfit and more to learn, while a large pretrained encoder is what usually makes the size
# pay off; (2) the same number of epochs is the same number of steps, and a bigger network from random weights
# typically needs more steps to converge; (3) its warm-up spends the frozen epoch(s) training the decoder on a
# *random*, frozen encoder; (4) at 64 × 64 with simple synthetic rooms, capacity may not be what limits either
# model; (5) one seed each: a small gap can reverse with another seed. (Section 4 shows whether it won in your run;
# the question is why that is not guaranteed.)
#
# *Rubric (2 points):* 1 point for each of two valid reasons (no pretraining/overfitting on few images, slower convergence in the same steps, a wasted frozen epoch on a random encoder, capacity not the bottleneck at this size, seed noise).

# %% [markdown]
# **5.** *Implement it.* Exercise 04.1: freeze and unfreeze an encoder, below.

# %% nbgrader={"grade": false, "grade_id": "ex_04_1", "locked": false, "schema_version": 3, "solution": true, "task": false}
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

# %% nbgrader={"grade": true, "grade_id": "check_04_1", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_set_encoder_trainable
from depthkit.models import count_parameters

check_set_encoder_trainable(set_encoder_trainable)
### BEGIN HIDDEN TESTS
check_set_encoder_trainable(set_encoder_trainable, hidden=True)
### END HIDDEN TESTS
set_encoder_trainable(model, False)
print(f"U-Net++ with your frozen encoder: {count_parameters(model, trainable_only=True) / 1e6:.2f} M of "
      f"{count_parameters(model) / 1e6:.2f} M parameters train")
set_encoder_trainable(model, True)

# %% [markdown]
# **6.** *Implement it.* Exercise 04.2: the training loop itself, below. `train_stage` hides it inside
# `depthkit.train.train_one_epoch`; here you write the plain loop it runs (without its mixed precision, its
# augmentation and its timing). The check runs your loop and depthkit's on two identical small models, on the same
# batches, and compares the loss of every step and the weights the steps leave behind.

# %% nbgrader={"grade": false, "grade_id": "ex_04_2", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 04.2 · the training loop: one optimizer step per batch
import torch
from torch import nn


def train_steps(model: nn.Module, batches: list, optimizer: torch.optim.Optimizer, loss_fn) -> list[float]:
    """Train ``model`` one optimizer step per batch, in order; return the loss of each step as a Python float.

    batches: a list of dicts, "images" [B, 3, H, W] (model inputs, normalised already) and "depths" [B, 1, H, W];
    loss_fn(pred, depths) -> a 0-dim tensor; optimizer: built on model.parameters(). The model trains in train()
    mode (BatchNorm then uses each batch's own statistics), whatever mode it comes in. Each step follows the
    gradient of its own batch only, and the loss it records is the one computed before its update. The batches
    are the caller's: do not change them.
    """
    ### BEGIN SOLUTION
    model.train()
    losses = []
    for batch in batches:
        optimizer.zero_grad()
        pred = model(batch["images"])
        loss = loss_fn(pred, batch["depths"])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_04_2", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_train_steps
from depthkit.data.loader import batches as split_batches
from depthkit.losses import normalized_mse
from depthkit.models import normalize_images

check_train_steps(train_steps)
### BEGIN HIDDEN TESTS
check_train_steps(train_steps, hidden=True)
### END HIDDEN TESTS
# your loop on NYU-layout training batches: a tiny network (16 channels), the report's loss, 12 steps (seconds)
torch.manual_seed(0)
tiny = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
few = [{"images": normalize_images(b["images"]), "depths": b["depths"]}
       for _, b in zip(range(3), split_batches(nyu["train"], PROFILE.batch_size))]
step_losses = train_steps(tiny, (few * 4)[:12], torch.optim.Adam(tiny.parameters(), lr=1e-2),
                          lambda pred, depths: normalized_mse(pred, depths, depths > 0))
print(f"your loop, {len(step_losses)} steps on {len(few)} batch(es) of {len(few[0]['images'])} images: "
      f"training loss {step_losses[0]:.4f} at the first step, {step_losses[-1]:.4f} at the last")

# %% [markdown]
# ## References
#
# - Z. Zhou, M. M. Rahman Siddiquee, N. Tajbakhsh, J. Liang. *UNet++: A Nested U-Net Architecture for Medical Image Segmentation.* DLMIA (MICCAI workshop) 2018. [arXiv:1807.10165](https://arxiv.org/abs/1807.10165)
# - S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He. *Aggregated Residual Transformations for Deep Neural Networks* (ResNeXt). CVPR 2017. [arXiv:1611.05431](https://arxiv.org/abs/1611.05431)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
