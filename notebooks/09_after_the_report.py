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
# # 09 · After the report: a scale-invariant loss, metric depth, a transformer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/09_after_the_report.ipynb)
#
# The report trained with one loss (normalized MSE) and two CNNs. Three things the field did next, each
# tried here only as far as it runs on this machine: **Eigen et al.'s scale-invariant log loss** (2014,
# the loss most supervised depth networks since then train on), **metric depth** (models that answer in
# metres instead of "up to scale"), and **a vision transformer** at the size of LR-ASPP. A fourth, a
# pretrained modern model (Depth Anything V2), runs only when you switch it on, on Colab: nothing in this
# notebook downloads by default.

# %% [markdown]
# **After this notebook you can**
#
# - write Eigen et al.'s scale-invariant log loss and say what its λ keeps of the scene's scale
# - compare two training losses fairly: same data, same budget, same test images, a paired noise band
# - explain what the report's normalized MSE throws away, and how ZoeDepth, Metric3D and Depth Pro get metres back
# - train a vision transformer of LR-ASPP's size with the same data and budget, and read the comparison honestly
# - align a pretrained relative-depth model to a measured depth map in disparity, as MiDaS does
#
# **It assumes** `02` (the losses, alignment), `03` (LR-ASPP and its training run), `07` (the real photo). Maths: logarithms, a variance, least squares.
#
# **How long.** Run all: the measured times print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 1 hour 15 minutes (an estimate).

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

print(describe("09_after_the_report"))

# %% [markdown]
# ## 1. Eigen et al.'s scale-invariant log loss
#
# One picture does not fix the size of the world: a doll's house photographed up close and a real room
# from afar can look alike. Eigen, Puhrsch & Fergus (NIPS 2014) therefore compare depths on a log scale,
# where a global scale factor becomes a constant offset, and let the loss ignore part of that offset.
# With $d_i = \log y_i - \log y_i^*$ (prediction against truth, over the $n$ valid pixels of an image),
# their training loss (eq. 4) is
#
# $$L(y, y^*) = \frac{1}{n}\sum_i d_i^2 \;-\; \frac{\lambda}{n^2}\Big(\sum_i d_i\Big)^2
#   = \operatorname{var}(d) + (1 - \lambda)\,\bar d^{\,2}.$$
#
# With $\lambda = 1$ it is the variance of the log ratio: scaling the prediction by any constant adds the
# same number to every $d_i$ and changes nothing (their scale-invariant error, eq. 3). With $\lambda = 0$
# it is the plain MSE of log depth. Eigen et al. trained with **λ = 0.5**: half of the squared mean log
# ratio still counts, so the network is pushed towards the right scale, but less than towards the right
# shape. (BTS and AdaBins later trained on a variant, $10\sqrt{\operatorname{mean}(d^2) - 0.85\,\bar d^{\,2}}$;
# it is only mentioned here.)
#
# **Where the log depth comes from.** depthkit's models output a depth-like map, larger = farther, and
# `silog_loss(pred, depth, mask, lam=0.5)` takes `log(pred)`, so `pred` must be positive. For this loss
# the network's last layer is read as **log depth** and `ExpDepth` exponentiates it: the output is depth
# in metres, positive by construction, and `log(pred)` gives back exactly what the layer computed. Every
# metric then reads that output as it reads any model's. The next cell prints what each loss sees of a
# depth map multiplied by 10 and shifted by 3 m, and of one only multiplied by 10.

# %%
from depthkit import losses
from depthkit.models import ExpDepth

g = torch.Generator().manual_seed(0)
depth_map = 1 + 4 * torch.rand(1, 1, 16, 16, generator=g)           # a depth map in metres, 1 to 5 m
guess = depth_map * torch.exp(0.2 * torch.randn(1, 1, 16, 16, generator=g))  # a prediction off by ~20 % per pixel
print(f"{'prediction':<22}{'normalized MSE':>16}{'SIlog λ=0':>12}{'SIlog λ=0.5':>13}{'SIlog λ=1':>11}")
for label, p in [("as it is", guess), ("× 10", 10 * guess), ("× 10 + 3 m", 10 * guess + 3)]:
    row = [losses.normalized_mse(p, depth_map).item()] + [losses.silog_loss(p, depth_map, lam=lam).item() for lam in (0, 0.5, 1)]
    print(f"{label:<22}" + "".join(f"{v:>{w}.4f}" for v, w in zip(row, (16, 12, 13, 11))))
print("ExpDepth's output is exp(the network's last layer):", ExpDepth.forward.__doc__.strip())

# %% [markdown]
# Normalized MSE does not move under either change: min–max normalization removes each image's scale
# *and* shift. SIlog with λ = 1 ignores the factor 10 but not the shift (a shift is no constant on the log
# scale); with λ = 0.5 the factor 10 costs about $(1-\lambda)\log^2 10 \approx 2.65$ (λ = 0: the full
# $\log^2 10 \approx 5.3$), plus a small cross term with the guess's own mean log ratio.
#
# ### Trained on SIlog, with the same data and budget
#
# LR-ASPP twice: once on the report's normalized MSE (the run of `03`, reused from `runs/<profile>/`), once
# on SIlog with λ = 0.5 (`silog_hooks()`: the loss replaced, the output read as log depth). The same
# training images, optimizer, learning rate, schedule, epochs and seed; validation and the pick of
# `best.pt` use the normalized MSE in both runs.

# %%
from depthkit.pipeline import describe_splits, load_stage_data
from depthkit.runs import run_dir
from depthkit.course.modern import silog_hooks
from depthkit.train import train_stage

nyu = load_stage_data(PROFILE, "nyu")
print(describe_splits(nyu))
LAM = losses.SILOG_LAMBDA
mse_model, mse_history, _ = train_stage(PROFILE, "lraspp", "nyu", nyu, device=DEVICE, progress=False)
silog_model, silog_history, _ = train_stage(PROFILE, "lraspp", "nyu", nyu, out_dir=run_dir(PROFILE, "lraspp", "nyu_silog"),
                                            device=DEVICE, progress=False, hooks=silog_hooks(LAM))
EPOCHS = len(mse_history["epoch"])
print(f"LR-ASPP on normalized MSE: {EPOCHS} epoch(s); on SIlog (λ = {LAM:g}): {len(silog_history['epoch'])} epoch(s); "
      f"batch {PROFILE.batch_size}, learning rate {PROFILE.budget('nyu').lr:g} ({PROFILE.lr_schedule}), {len(nyu['train'])} training images")

# %%
from depthkit.evaluate import baseline_per_image, noise_band, NOISE_Z, per_image_scores
from depthkit.course import narrative

RUNS = {"normalized MSE": mse_model, f"SIlog (λ = {LAM:g})": silog_model}
per_image = {label: per_image_scores(m, nyu["test"], "nyu", device=DEVICE) for label, m in RUNS.items()}
baseline_scores = baseline_per_image(nyu["train"], nyu["test"])
print(f"{len(nyu['test'])} test images ({PROFILE.data} data); normalized MSE ↓, and AbsRel ↓ / δ<1.25 ↑ after "
      f"{narrative.ALIGNMENT_WORDS['lstsq']}:")
for label, s in per_image.items():
    print(f"  LR-ASPP, {label:<16} normalized MSE {s['normalized_mse'].mean():.4f}   AbsRel {s['abs_rel'].mean():.3f}   "
          f"δ<1.25 {s['delta1'].mean():.3f}")
print(f"  mean-depth baseline            normalized MSE {baseline_scores.mean():.4f}")
a, b = per_image[f"SIlog (λ = {LAM:g})"]["normalized_mse"], per_image["normalized MSE"]["normalized_mse"]
print(f"SIlog − normalized MSE: {a.mean() - b.mean():+.4f}, noise band "
      f"{narrative.format_band(noise_band(a, b))}: {NOISE_Z:g} standard errors of the {len(a)} per-image differences")

# %% [markdown]
# ### What we got

# %%
from IPython.display import Markdown

Markdown(narrative.silog_comparison(per_image[f"SIlog (λ = {LAM:g})"]["normalized_mse"], per_image["normalized MSE"]["normalized_mse"],
                                    baseline_scores, LAM, EPOCHS, PROFILE, spread=narrative.seed_spread(PROFILE)))

# %%
from depthkit.evaluate import predict_depth

fig = viz.show_predictions(nyu["test"].images, {label: predict_depth(m, nyu["test"]) for label, m in RUNS.items()},
                           f"LR-ASPP trained on normalized MSE and on SIlog, NYU-layout test images ({TAG})",
                           depths=nyu["test"].depths)

# %% [markdown]
# ## 2. Relative and metric depth
#
# **What the report's loss throws away.** `normalize_depth` min–max scales every prediction and every
# depth map to [0, 1] before the squared error (section 1 printed it: × 10 + 3 m changed nothing). A model
# trained on normalized MSE is told nothing about metres: its output has no unit, and every metric of
# `03`–`08` aligns it per image (least-squares scale and shift) before it can be read in metres. That is
# *relative* depth, what MiDaS and Depth Anything predict too. A *metric* model must also get each image's
# scale (how big is the room?) and, for depth rather than disparity, its shift. Three published answers:
#
# - **ZoeDepth** (Bhat et al. 2023): a relative-depth network pretrained on many data sets (MiDaS's recipe),
#   then light **metric bins** heads fine-tuned on metric data (NYU Depth V2 indoors, KITTI outdoors): each
#   pixel's depth is a weighted mix of bin centres in metres that the head places per image, and a small
#   router picks the indoor or the outdoor head.
# - **Metric3D** (Yin et al., ICCV 2023): the scale of one picture is ambiguous mostly because cameras
#   differ (the same room looks bigger through a longer lens). It maps every training image into a
#   **canonical camera space** with one fixed focal length, learns metric depth there, and maps the
#   prediction back with the test camera's known focal length.
# - **Depth Pro** (Bochkovskii et al., Apple, 2024): zero-shot metric depth without the intrinsics: a
#   network head **estimates the focal length** (field of view) from the image itself, and the predicted
#   canonical inverse depth is turned into metres with it.
#
# The synthetic rooms are the easy case of all three: every scene is seen by the same pinhole camera (the
# next cell prints its focal length) from about the same height above the floor (`depthkit.synthetic.scenes`),
# so the picture itself says how far the floor is. The SIlog run's output is in metres (λ = 0.5 keeps half the scale term), so it can be scored
# **as it is**, unaligned, beside the trivial metric baseline, the training set's mean depth map in metres.
# The normalized-MSE run has no unit, so only its aligned score exists.

# %%
import numpy as np

from depthkit import metrics
from depthkit.evaluate import ConstantModel, mean_depth_baseline, predictions
from depthkit.synthetic.scenes import FOCAL_SCALE


def abs_rel(model, align) -> np.ndarray:
    """AbsRel of every test image: the prediction read as metres (``align=None``) or aligned per image first."""
    return np.concatenate([metrics.depth_metrics(pred, batch["depths"], batch["depths"] > 0, align=align,
                                                 reduction="none")["abs_rel"].cpu().numpy()
                           for pred, batch in predictions(model, nyu["test"])])


mean_map = ConstantModel(mean_depth_baseline(nyu["train"]))  # the average training room, in metres
rows = {"SIlog run, read as metres": abs_rel(silog_model, None), "SIlog run, aligned": abs_rel(silog_model, "lstsq"),
        "normalized-MSE run, aligned": abs_rel(mse_model, "lstsq"),
        "mean depth map, read as metres": abs_rel(mean_map, None), "mean depth map, aligned": abs_rel(mean_map, "lstsq")}
print(f"synthetic camera: focal length {FOCAL_SCALE:g} × image width, the same for every scene")
print(f"AbsRel ↓ on the {len(nyu['test'])} test images (at {PROFILE.size}×{PROFILE.size}, no Eigen crop; 'aligned' = "
      f"{narrative.ALIGNMENT_WORDS['lstsq']}):")
for label, v in rows.items():
    print(f"  {label:<32} {np.nanmean(v):.3f}")

# %%
Markdown("In metres, without alignment: " + narrative.compare("the SIlog run", rows["SIlog run, read as metres"], "the mean depth map",
                                                              rows["mean depth map, read as metres"], True, ".3f")
         + ". What alignment adds for the SIlog run: " + narrative.compare("aligned", rows["SIlog run, aligned"], "read as metres",
                                                                            rows["SIlog run, read as metres"], True, ".3f")
         + f". Noise bands: test sampling, {NOISE_Z:g} standard errors of the per-image differences. Synthetic rooms from one "
         "camera only: this says the scale can be learnt here, not that it transfers to another camera.")

# %% [markdown]
# ## 3. A vision transformer at LR-ASPP's size
#
# Since 2021 most new depth models are built on vision transformers: DPT (Ranftl et al. 2021) put a ViT
# under MiDaS, and Depth Anything and Depth Pro build on ViT encoders too. segmentation-models-pytorch 0.6
# offers two: **DPT** and **SegFormer** (Xie et al. 2021, a hierarchical transformer, MiT, with an all-MLP
# decoder). The question here is architecture, not size, so the transformer must match LR-ASPP's 3.2 M
# parameters (within ±25 %). The next cell prints the counts from the built models: SegFormer-B0 fits;
# DPT, even on timm's smallest ViT (ViT-Ti/16), is about ten times larger, and its 16-pixel patches leave a
# 4 × 4 grid of tokens at 64 × 64. What each step costs is printed after training, from each run's own
# history (seconds per step, on this machine, in this run): compare SegFormer-B0's with LR-ASPP's there.
# Both start from random weights here; `build_model("segformer_b0")`
# pads the input to a multiple of 32 as it does for U-Net++.

# %%
import segmentation_models_pytorch as smp

from depthkit.models import build_model, count_parameters

built = {"SegFormer-B0": build_model("segformer_b0"), "LR-ASPP": build_model("lraspp")}
dpt = smp.DPT("tu-vit_tiny_patch16_224", encoder_weights=None, classes=1, dynamic_img_size=True)  # random init, no download
for label, m in built.items():
    print(f"{label:<13} {count_parameters(m) / 1e6:5.2f} M parameters (encoder {count_parameters(m.encoder) / 1e6:.2f} M), "
          f"{type(m.encoder).__name__} encoder")
print(f"{'DPT, ViT-Ti':<13} {count_parameters(dpt) / 1e6:5.2f} M parameters (encoder {count_parameters(dpt.encoder) / 1e6:.2f} M): "
      "too large to match")
ratio = count_parameters(built["SegFormer-B0"]) / count_parameters(built["LR-ASPP"])
print(f"SegFormer-B0 / LR-ASPP: {ratio:.2f} (the test holds it within ±25 %)")
del dpt

# %% [markdown]
# SegFormer-B0 trains with `train_stage`, the library's one training path, on the NYU-layout images with
# the report's normalized MSE and the profile's budget for every model (the printed epochs); LR-ASPP is the
# normalized-MSE run of section 1.

# %%
vit_model, vit_history, _ = train_stage(PROFILE, "segformer_b0", "nyu", nyu, device=DEVICE, progress=False)
epochs = {"SegFormer-B0": len(vit_history["epoch"]), "LR-ASPP": len(mse_history["epoch"])}
print("; ".join(f"{label}: {e} NYU epoch(s)" for label, e in epochs.items())
      + f", batch {PROFILE.batch_size}, the same {len(nyu['train'])} training images ({PROFILE.name} profile)")
for label, h in {"SegFormer-B0": vit_history, "LR-ASPP": mse_history}.items():
    print(f"  {label:<13} {sum(h['seconds']):6.1f} s of training and validation when it was trained, "
          f"{sum(h['train_seconds']) / max(sum(h['steps']), 1):.2f} s per step (other work on the machine changes both)")

# %%
fig = viz.plot_histories({"SegFormer-B0, NYU": vit_history, "LR-ASPP, NYU": mse_history},
                         f"SegFormer-B0 and LR-ASPP trained on the same NYU-layout images ({TAG})")

# %%
scores = {"SegFormer-B0": per_image_scores(vit_model, nyu["test"], "nyu", device=DEVICE),
          "LR-ASPP": per_image["normalized MSE"]}
params = {label: count_parameters(m) for label, m in built.items()}
for label, s in scores.items():
    print(f"{label:<13} {params[label] / 1e6:.2f} M   normalized MSE {s['normalized_mse'].mean():.4f}   "
          f"AbsRel {s['abs_rel'].mean():.3f}   δ<1.25 {s['delta1'].mean():.3f} (aligned)")
print(f"{'mean depth':<13}          normalized MSE {baseline_scores.mean():.4f}")

# %% [markdown]
# ### What we got

# %%
Markdown(narrative.transformer_comparison({k: v["normalized_mse"] for k, v in scores.items()}, params, baseline_scores,
                                          epochs, PROFILE, spread=narrative.seed_spread(PROFILE)))

# %% [markdown]
# ## 4. A pretrained modern model, on the photo of `07` (opt-in, Colab)
#
# **Depth Anything V2** (Yang et al. 2024), Small: a ViT-S encoder with a DPT decoder, about 25 M
# parameters, trained on millions of real photos that a larger teacher, itself trained on synthetic images, labelled. Like MiDaS
# it predicts *relative inverse depth* (disparity: larger = closer) up to an unknown scale and shift, so it is
# compared with the Kinect as MiDaS is evaluated (Ranftl et al., TPAMI 2020): per image, the least-squares
# scale and shift **in disparity** that bring its output closest to 1 / Kinect depth, then back to depth
# (`depthkit.course.modern.align_disparity`), scored in metres. Our LR-ASPP predicts depth, so it is aligned in depth
# (least squares, as in `03`); the trivial baseline is the photo's mean Kinect depth everywhere.
#
# It downloads about 100 MB from the Hugging Face hub, so it is **off by default**: set `USE_PRETRAINED =
# True` on Colab (which has `transformers`; `requirements.txt` installs it elsewhere). Offline or switched off,
# the cell says so in one line and the section is skipped.

# %%
from depthkit.course import modern

USE_PRETRAINED = False  # True on Colab with internet: Depth Anything V2 Small, ~100 MB, downloaded once
pretrained, message = modern.try_pretrained(USE_PRETRAINED, device=DEVICE)
print(message)

# %%
import torch.nn.functional as F

from depthkit.config import repo_root
from depthkit.data import load_nyu_png_depth, load_rgb, resize_depth, resize_image
from depthkit.evaluate import predict

if pretrained is None:
    print("section 4 skipped: no pretrained model (see the line above); nothing was downloaded")
else:
    SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples"  # NYU Depth V2 frames, BSD-2 (LICENSE there)
    photo = load_rgb(SAMPLES / "rgb" / "rgb_00000.jpg")
    S = PROFILE.size
    kinect = torch.from_numpy(resize_depth(load_nyu_png_depth(SAMPLES / "depth" / "sync_depth_00000.png"), S))
    disparity = F.interpolate(pretrained.disparity(photo)[None, None], size=(S, S), mode="area")  # at the models' size
    ours = predict(mse_model.eval(), torch.tensor(resize_image(photo, S)).permute(2, 0, 1)[None].to(DEVICE)).cpu()
    maps = {"Depth Anything V2 Small, aligned in disparity": modern.align_disparity(disparity, kinect),
            "LR-ASPP (ours, normalized MSE), aligned in depth": torch.from_numpy(viz.align_to(ours, kinect))[None, None]}
    flat = torch.full_like(kinect, float(kinect[kinect > 0].mean()))[None, None]  # the trivial baseline
    valid = kinect > 0
    for label, m in {**maps, "photo's mean Kinect depth everywhere": flat}.items():
        s = metrics.depth_metrics(m, kinect[None, None], valid[None, None], align=None)
        print(f"{label:<50} AbsRel {s['abs_rel']:.3f}  δ<1.25 {s['delta1']:.3f}  RMSE {s['rmse']:.2f} m")
    print(f"one photo, {int(valid.sum())} Kinect pixels at {S}×{S}: a hint, not a measurement (no noise band from one photo)")
    lo, hi = viz.depth_range(kinect)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
    axes[0].imshow(photo); axes[0].axis("off"); axes[0].set_title("real NYU photo rgb_00000 (bundled)", fontsize=9)
    viz.show_depth(axes[1], kinect, "Kinect depth (holes grey)", vmin=lo, vmax=hi)
    for ax, (label, m) in zip(axes[2:], maps.items()):
        viz.show_depth(ax, m[0, 0], label.replace(", ", ",\n"), vmin=lo, vmax=hi)
    fig.suptitle(f"A pretrained modern model beside ours on the photo of 07 ({TAG})", fontsize=10)

# %% [markdown]
# That is where the series stops. The pieces that were not tried here, honestly: training at the report's size
# on real NYU Depth V2 (the `report` profile on a GPU), a metric model of the kinds in section 2, and a
# transformer *with* pretrained weights (exercise 4). Back to `00_setup` for the profiles.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved.
#
# | exercise | points | graded |
# |---|---|---|
# | questions 1–5 (points beside each) | 11 | by hand, from your answer cells |
# | **total** | **11** | |

# %% [markdown]
# **1.** *Explain* (2 points). Show from eq. 4 that with λ = 1 the loss does not change when the prediction is
# multiplied by a constant c > 0. What does λ = 0.5 keep of the scale, and why does that matter for section 2?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_09_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Multiplying the prediction by c adds k = log c to every d_i, so the mean becomes d̄ + k and every
# deviation d_i − d̄ stays the same; eq. 4 equals var(d) + (1 − λ) d̄², and with λ = 1 only var(d) is left, which
# does not see k. With λ = 0.5 the term 0.5 (d̄ + k)² remains: a wrong global scale still costs something (half of
# what the log MSE charges), so the network is pushed towards the right scale. That is why section 2 can read the
# SIlog run's output as metres unaligned; a λ = 1 run (or a normalized-MSE run) has no reason to get the scale right.
#
# *Rubric (2 points):* 1 for the derivation (c adds log c to every d_i; the loss is the variance of d at λ = 1); 1 for what λ = 0.5 keeps (a penalty on the mean log ratio, so scale is learnt; hence the unaligned metres of section 2).

# %% [markdown]
# **2.** *Try it* (2 points). Train the SIlog run with λ = 1 into a folder of its own,
# `train_stage(PROFILE, "lraspp", "nyu", nyu, out_dir=runs_dir() / "exercises" / "silog_lam1", device=DEVICE, progress=False, hooks=silog_hooks(1.0))`
# (with `from depthkit.config import runs_dir`), and score it as in sections 1 and 2. Which number moves:
# the aligned scores or the one read as metres? Judge it against the noise band.

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_09_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It depends on the run; a good answer reports both AbsRels (read as metres, and aligned) and the
# normalized MSE for λ = 1 beside λ = 0.5, with the paired noise bands. What to expect: with λ = 1 nothing in the
# loss fixes the scale, so the unaligned AbsRel ("read as metres") should be much worse, typically worse than the
# mean depth map in metres, while the aligned scores and the normalized MSE, which ignore the scale, may not change
# beyond the noise. A difference within the printed band is no difference; one seed per setting cannot separate a
# small gap from seed-to-seed spread.
#
# *Rubric (2 points):* 1 for the measurement (both AbsRels and the normalized MSE of the λ = 1 run beside λ = 0.5's); 1 for the reading (the metric, unaligned score suffers, the aligned ones need not), judged against the noise band.

# %% [markdown]
# **3.** *Explain* (2 points). In depthkit's own terms, what exactly does the report's normalized MSE remove from a
# prediction, and why can no amount of training on it teach a network metres? Which of ZoeDepth, Metric3D and
# Depth Pro needs the camera's focal length at test time, and why?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_09_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** `normalize_depth` maps each image's prediction and depth map to [0, 1] by its own minimum and maximum
# before the squared error, i.e. it removes a per-image scale and shift (any s·pred + t with s > 0 gives the same
# loss, as section 1 printed). The gradient therefore never says anything about the scale or offset in metres, so
# the network has no reason to learn them, and its output has no unit (it must be aligned before metric scores).
# Metric3D needs the focal length: it learns in a canonical camera space and maps the prediction back with the
# test camera's focal length. Depth Pro estimates the focal length from the image; ZoeDepth learns metric bins from
# metric training data and needs no intrinsics (but is tied to the camera statistics of NYU and KITTI).
#
# *Rubric (2 points):* 1 for what is removed (a per-image scale and shift, via min–max normalisation of both maps) and why metres cannot be learnt; 1 for Metric3D needing the intrinsics (canonical camera space), with Depth Pro estimating it and ZoeDepth not using it.

# %% [markdown]
# **4.** *Explain* (2 points). SegFormer-B0 and LR-ASPP have about the same number of parameters. Name two things that
# still differ between the two runs, apart from "transformer vs CNN", that could explain a gap in section 3, and say
# how you would test one of them.

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_09_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** For example: the output resolution and decoder (SegFormer predicts at 1/4 of the input and
# upsamples; LR-ASPP at 1/16 with a 1/8 skip, then a 21 → 1 head); the normalisation layers (LayerNorm in the
# transformer, BatchNorm in MobileNetV3, whose running statistics matter in `eval()`); the compute per step and
# memory (equal parameters are not equal FLOPs); sensitivity to the learning rate and schedule (transformers are
# usually trained with warm-up and AdamW, here both get the report's Adam at 1e-3); the pretraining that each would
# normally get (both are random here). A test changes one of them only: e.g. train both with a few learning rates
# (`PROFILE.with_budget("nyu", lr=3e-4)`, into folders of their own) and compare the best of each, or train
# SegFormer with ImageNet weights on Colab (`PROFILE.replace(pretrained=True)`) against LR-ASPP with COCO weights.
#
# *Rubric (2 points):* 1 for two real differences besides the architecture family (resolution/decoder, normalisation, FLOPs, learning-rate sensitivity, pretraining); 1 for a test that changes only one of them, on the same images.

# %% [markdown]
# **5.** *Try it on Colab* (3 points). Set `USE_PRETRAINED = True` on a Colab runtime and run section 4. Compare the
# AbsRel of Depth Anything V2 (aligned in disparity) with ours (aligned in depth) and with the flat baseline. Then
# align Depth Anything's output in *depth* instead (`viz.align_to(1 / disparity.clamp_min(1e-6), kinect)`): what changes, and why is
# disparity the right space for it? What does one photo let you conclude?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_09_5", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Expected (check against the run): Depth Anything V2, trained on millions of real photos, lands far
# closer to the Kinect than our LR-ASPP trained on synthetic boxes, which may not beat the flat baseline on a real
# basement. Aligned in depth instead, its score gets worse (or erratic): its output is an affine function of
# *inverse* depth with an unknown shift, and 1 / (s·disp + t) is not an affine function of depth, so a scale and
# shift fitted in depth cannot undo it; in disparity the fit has exactly the unknowns the model leaves open
# (MiDaS's protocol). One photo is one sample: its pixels are not independent draws, so no noise band, and the
# ranking holds for this photo only; many photos would be needed to measure it.
#
# *Rubric (3 points):* 1 for the three numbers and the ranking; 1 for why disparity is the space to align in (affine in inverse depth, not in depth); 1 for the limit of one photo (no noise band, no general claim).

# %% [markdown]
# ## References
#
# - D. Eigen, C. Puhrsch, R. Fergus. *Depth Map Prediction from a Single Image using a Multi-Scale Deep Network* (the scale-invariant log loss, eqs. 3–4). NIPS 2014. [arXiv:1406.2283](https://arxiv.org/abs/1406.2283)
# - J. H. Lee, M.-K. Han, D. W. Ko, I. H. Suh. *From Big to Small: Multi-Scale Local Planar Guidance for Monocular Depth Estimation* (BTS). 2019. [arXiv:1907.10326](https://arxiv.org/abs/1907.10326)
# - S. F. Bhat, I. Alhashim, P. Wonka. *AdaBins: Depth Estimation using Adaptive Bins.* CVPR 2021. [arXiv:2011.14141](https://arxiv.org/abs/2011.14141)
# - S. F. Bhat, R. Birkl, D. Wofk, P. Wonka, M. Müller. *ZoeDepth: Zero-shot Transfer by Combining Relative and Metric Depth.* 2023. [arXiv:2302.12288](https://arxiv.org/abs/2302.12288)
# - W. Yin, C. Zhang, H. Chen, Z. Cai, G. Yu, K. Wang, X. Chen, C. Shen. *Metric3D: Towards Zero-shot Metric 3D Prediction from A Single Image.* ICCV 2023. [arXiv:2307.10984](https://arxiv.org/abs/2307.10984)
# - A. Bochkovskii, A. Delaunoy, H. Germain, M. Santos, Y. Zhou, S. R. Richter, V. Koltun. *Depth Pro: Sharp Monocular Metric Depth in Less Than a Second.* 2024. [arXiv:2410.02073](https://arxiv.org/abs/2410.02073)
# - E. Xie, W. Wang, Z. Yu, A. Anandkumar, J. M. Alvarez, P. Luo. *SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers.* NeurIPS 2021. [arXiv:2105.15203](https://arxiv.org/abs/2105.15203)
# - R. Ranftl, A. Bochkovskiy, V. Koltun. *Vision Transformers for Dense Prediction* (DPT). ICCV 2021. [arXiv:2103.13413](https://arxiv.org/abs/2103.13413)
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale* (ViT). ICLR 2021. [arXiv:2010.11929](https://arxiv.org/abs/2010.11929)
# - R. Ranftl, K. Lasinger, D. Hafner, K. Schindler, V. Koltun. *Towards Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer* (MiDaS; alignment in disparity). TPAMI 2020. [arXiv:1907.01341](https://arxiv.org/abs/1907.01341)
# - L. Yang, B. Kang, Z. Huang, Z. Zhao, X. Xu, J. Feng, H. Zhao. *Depth Anything V2.* NeurIPS 2024. [arXiv:2406.09414](https://arxiv.org/abs/2406.09414), [model card](https://huggingface.co/depth-anything/Depth-Anything-V2-Small-hf)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
