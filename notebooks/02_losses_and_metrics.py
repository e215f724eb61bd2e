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
# # 02 · Losses and metrics
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/02_losses_and_metrics.ipynb)
#
# A network that predicts depth from one image can be taught with dense depth maps (NYU) or with
# ordinal pairs (DIW), and the two need different losses. This notebook works through each of them
# on tiny tensors you can check by hand, then shows the **sign pitfall** hidden in the report's
# ranking loss, and ends with an interactive plot of that loss.
#
# Convention used everywhere in depthkit: every depth-like value means **larger = farther**, NYU's
# metres as much as every model output.

# %% [markdown]
# **After this notebook you can**
#
# - compute the report's normalized MSE with a mask, and say what it ignores (scale and shift)
# - write Chen et al.'s ranking loss, r = 0 included, and explain the sign pitfall of the report's convention
# - score pairs with ordinal accuracy and WHDR/WKDR at an ordinal threshold τ (and say whose metric each is)
# - align a relative prediction (median ratio, least squares) before the standard metrics, and say when each fails
# - contrast min–max normalisation with MiDaS's scale-and-shift-invariant loss
#
# **It assumes** `00`–`01`. Maths: mean squared error, min–max scaling, log and exp (softplus), a derivative by hand, ratios.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 3.5 hours (an estimate) for three functions to implement and four questions.

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

print(describe("02_losses_and_metrics"))

# %% [markdown]
# ## 1. MSE on normalized depth (the report's NYU loss)
#
# From a single image the absolute scale of a scene is ambiguous: a doll's house photographed up
# close and a real room look alike. The report therefore compares *shapes*: prediction and target are
# each min–max normalized to [0, 1] per image, then compared by mean squared error. A consequence
# worth seeing: any increasing linear transform of the right answer scores a perfect 0, while a
# flipped sign scores worse than a constant map.

# %%
# NBVAL_CHECK_OUTPUT
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

# %% [markdown]
# *Raw* Kinect depth has holes, stored as 0 where the sensor measured nothing (the real frame of section 5
# is raw): pass `mask=depth > 0` so they count neither in the min–max nor in the mean. Training passes
# that mask too, but on the in-painted `depths` of NYU's labeled file, which depthkit trains and tests on
# (`01`, section 2), the holes were filled before we see them and the mask keeps every pixel.
#
# ## 2. The ranking loss (Chen et al., DIW)
#
# For a pair of points with predicted depths $z_A, z_B$ and relation $r$:
#
# $$\ell = \log\left(1 + e^{-r\,(z_A - z_B)}\right) \text{ for } r = \pm 1, \qquad \ell = (z_A - z_B)^2 \text{ for } r = 0.$$
#
# depthkit follows the DIW annotation itself: `>` in the CSV (A farther) → $r = +1$, `<` (A closer)
# → $r = -1$. The loss is small when $z_A - z_B$ has the sign of $r$, and a pair counts as correct when
# $\operatorname{sign}(z_A - z_B) = r$. A worked example with $z_A = 2$ and $z_B = 1$:

# %%
# NBVAL_CHECK_OUTPUT
pred = torch.tensor([[[[2.0, 1.0]]]])  # a 1×2 "depth map": z_A = 2.0 at (0, 0), z_B = 1.0 at (0, 1)
pair = torch.tensor([[[0, 0, 0, 1]]])  # (ya, xa, yb, xb), 0-based
for r, meaning in [(+1, "A farther (CSV '>')"), (-1, "A closer (CSV '<')"), (0, "equal")]:
    loss = losses.ranking_loss(pred, pair, torch.tensor([[r]]))
    print(f"r = {r:>2}  {meaning:<20} loss = {loss.item():.4f}")

# %% [markdown]
# $\log(1 + e^{-1}) = 0.3133$: the prediction agrees with "A farther". $\log(1 + e^{1}) = 1.3133$:
# it disagrees with "A closer". $(2 - 1)^2 = 1$: an "equal" pair is pulled together.
#
# ## 3. The sign pitfall
#
# The report prints the same formula but says *"r = +1 means a is closer, reward a higher value
# for the closer point"*. The report did not invent that convention: Chen et al.'s own paper prints it,
# labelling the relation "closer (+1), further (−1)". Their released code says the opposite: the DIW
# loader of their Torch code (`DataLoader_DIW.lua`) maps the CSV's `>` (A farther) to +1. **The paper
# and its code disagree; read the code.** depthkit follows the loader, which is the data as annotated.
# On its own the printed convention is a valid choice: the network would then predict something
# like inverse depth (larger = closer). The trouble is the pipeline: the report first trains on NYU
# with MSE on **depth**, where larger = **farther**, then fine-tunes on DIW with a loss that rewards
# larger = **closer**. The meaning of the output flips between the two stages.
#
# A worked example. A model fresh from NYU training, and perfect: at point A on the floor it predicts
# 1.5 m, at B on the back wall 4.0 m. The DIW annotator says "A is closer" (`<`).

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([[[[1.5, 4.0]]]], requires_grad=True)  # the NYU model's output at A and B: depth, and right
conventions = {"ours (CSV '<' -> r = -1)": -1, "paper's printed (A closer -> r = +1)": +1}
for name, r in conventions.items():
    z.grad = None
    loss = losses.ranking_loss(z, pair, torch.tensor([[r]]))
    loss.backward()
    correct = metrics.ordinal_accuracy(z, pair, torch.tensor([[r]])) == 1.0
    step = "lowers z_A (A nearer)" if z.grad[0, 0, 0, 0] > 0 else "raises z_A (A farther)"
    print(f"{name:<38} loss = {loss.item():.4f}  counted correct: {correct!s:<5}  "
          f"dloss/dz_A = {z.grad[0, 0, 0, 0].item():+.4f}: a gradient step {step}")

# %% [markdown]
# With our convention (the loader's) the NYU model already agrees with the annotation (loss 0.08) and the
# gradient nudges it the same way NYU taught it. With the printed convention the same, correct model is told it
# is wrong (loss 2.58, counted incorrect) and every gradient step pushes the closer point *farther*.
# Fine-tuning then first has to turn the whole output upside down: DIW accuracy right after NYU reads
# as (100 − true accuracy) %, the NYU knowledge is fought rather than used, and after fine-tuning the
# model's output means "larger = closer", so its NYU MSE is meaningless.
#
# The same on many pairs: take depth maps from the NYU-layout test split as a *perfect* NYU model,
# sample pairs from them, and fine-tune a model whose output is `s · depth` (one parameter, `s = 1`
# after NYU) with each convention.

# %%
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
ax.plot(fine_tune_scale(-relation), label="paper's printed convention: flips to 'larger = closer'")
ax.axhline(0, color="0.5", lw=0.8)
ax.set(xlabel="fine-tuning step", ylabel="s in  output = s · depth")
ax.legend(fontsize=8)
ax.set_title(f"Fine-tuning a perfect NYU model on pairs from NYU-layout test depth ({TAG})", fontsize=9)
fig.tight_layout()

# %% [markdown]
# ## 4. Scoring pairs: ordinal accuracy, WHDR and WKDR
#
# **Ordinal accuracy** is the share of pairs with $\operatorname{sign}(z_A - z_B) = r$: the report's
# DIW number. Two older metrics also handle "equal" pairs, and they are two names for one formula, a
# *weighted disagreement rate* over the judged pairs $i$:
#
# $$\text{rate} = \frac{\sum_i w_i \, [\hat r_i \ne r_i]}{\sum_i w_i} \quad \text{(lower is better).}$$
#
# - **WHDR**, the *Weighted Human Disagreement Rate*, is Bell, Bala and Snavely's (2014, Intrinsic Images
#   in the Wild): $r_i$ is a human judgement and its weight $w_i$ the annotators' confidence in it, so a
#   judgement people were unsure of costs less when a prediction contradicts it.
# - **WKDR**, the *Weighted Kinect Disagreement Rate*, is Zoran et al.'s (2015): the same rate with $r_i$
#   read off Kinect depth instead of asked of people.
#
# Chen et al. report WKDR on NYU and WHDR on DIW, whose one judgement per image carries no confidence:
# every weight is 1 there, and depthkit's `metrics.whdr` always uses weights 1. The predicted relation
# $\hat r$ comes from a ratio test with an **ordinal threshold τ** (the keyword `delta=` in depthkit's code;
# the δ of section 5 is another threshold): "equal" when $z_A / z_B$ lies within $[1/(1+τ), 1+τ]$.
# Following Zoran et al. and Chen et al., the ground truth *and* the prediction go through the same
# ratio test, on the prediction as it is: the ratio needs positive depth, so `metrics.whdr` refuses a
# non-positive predicted value at a scored pair with a clear error (`rescale=True` maps each prediction
# onto [1, 2] first: an option, not the published metric). Every call names its τ. DIW has no equal
# pairs, which is why the report reduced the rate to plain accuracy: WHDR with τ = 0 decides by the
# sign of the raw z_A − z_B (ties wrong, as Chen's test script) and equals 1 − accuracy; that is the DIW
# number in `results.md`.
#
# τ is a trade-off: too small and nearly-equal points are called ordered (first pair), too large and
# clearly ordered points are called equal (second pair). The last line weights the four judgements as
# WHDR would with annotator confidences (made-up ones here: DIW has none).

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([[[[1.0, 1.05, 1.3, 2.0]]]])      # one 1×4 prediction (already spans [1, 2])
pairs4 = torch.tensor([[[0, 1, 0, 0],               # 1.05 vs 1.0: annotated "equal"
                        [0, 2, 0, 1],               # 1.3 vs 1.05: annotated "A farther"
                        [0, 3, 0, 2],               # 2.0 vs 1.3:  annotated "A farther"
                        [0, 0, 0, 3]]])             # 1.0 vs 2.0:  annotated "A closer"
rel4 = torch.tensor([[0, 1, 1, -1]])
print("annotated:", rel4.tolist())
for tau in (0.02, 0.1, 0.5):  # the ordinal threshold τ, passed as delta=
    predicted = metrics.predicted_relation(z, pairs4, delta=tau).tolist()
    print(f"τ = {tau:<4}  predicted {predicted}  WHDR {metrics.whdr(z, pairs4, rel4, delta=tau):.4f}")
print(f"ordinal accuracy on the three ordered pairs: {metrics.ordinal_accuracy(z, pairs4, rel4, rel4 != 0):.4f}")
confidence = torch.tensor([[0.5, 1.0, 1.0, 0.8]])  # made-up annotator confidences, one per judgement
wrong = (metrics.predicted_relation(z, pairs4, delta=0.02) != rel4).double()
print(f"τ = 0.02 with these confidences as weights: WHDR {(confidence * wrong).sum() / confidence.sum():.4f} "
      f"(every weight 1: {wrong.mean():.4f}); the unsure first judgement costs less")

# %% [markdown]
# ## 5. The standard depth metrics, on a real photograph
#
# Papers on NYU report AbsRel, RMSE (metres), log errors and the threshold accuracies
# δ < 1.25, 1.25², 1.25³ (share of pixels whose ratio to the truth is below the threshold). Our models
# predict *relative* depth, so each prediction is first aligned to the truth: by the median ratio
# (scale only) or by least squares (scale and shift). Below, a real NYU frame with its Kinect depth
# (holes in grey), and a stand-in "prediction": the depth blurred and written in other units
# (0.5 · depth + 0.3). Alignment decides how good it looks.

# %%
# NBVAL_CHECK_OUTPUT
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

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
axes[0].imshow(rgb); axes[0].axis("off"); axes[0].set_title("photo", fontsize=9)
viz.show_depth(axes[1], gt[0, 0], "Kinect depth (holes grey)")
viz.show_depth(axes[2], (fake * valid)[0, 0], "stand-in prediction 0.5·blur(depth)+0.3",
               label="stand-in units (0.5 · metres + 0.3), not metres")
fig.suptitle("Real NYU Depth V2 frame rgb_00000 (tests/assets/nyu_real_samples; no model involved)", fontsize=10)
fig.tight_layout()

# %% [markdown]
# ### How to read a published table
#
# A number in a paper's NYU table means something only with its protocol, and four choices decide it:
#
# - **Metric or aligned.** Supervised NYU tables (Eigen et al. 2014, BTS, AdaBins and their successors)
#   score the prediction *as it is*, in metres: no alignment, so the model must know the room's size.
#   An *aligned* number first fits each image's prediction to its ground truth (the median ratio, or a
#   least-squares scale and shift, as above), which forgives exactly the scale and shift that metric
#   depth is about. The two kinds of number cannot be compared.
# - **Depth or disparity.** *Disparity* is how far a point shifts between two cameras side by side: for
#   focal length $f$ and baseline $b$ it is $f b / Z$ at depth $Z$, so it is inverse depth (larger =
#   closer). Stereo photos and 3D films give disparity only up to an unknown scale and shift (unknown
#   baselines, shifted film frames), so zero-shot models such as MiDaS predict, and are aligned in,
#   disparity, then converted to depth to be scored. A scale and shift fitted in disparity is not one
#   fitted in depth: the same prediction scores differently (below).
# - **The Eigen crop and the test images.** NYU's official split has a fixed set of test images, and
#   supervised tables score them inside the crop of Eigen et al., where the depth camera overlaps the
#   colour image, with depth capped at a maximum (the cell prints all three as depthkit holds them).
#   Which depth map is the truth is part of the protocol as well (raw or in-painted: `01`, section 2).
# - **Zero-shot protocols.** A *zero-shot* table (MiDaS, and the relative-depth models after it) scores a
#   model on datasets it never trained on, each image aligned by a least-squares scale and shift in
#   disparity; its NYU column is aligned, and it is the column to set an aligned number beside.
#
# depthkit's own NYU tables (`results.md`, `python -m depthkit evaluate`) are per-image least-squares
# aligned *in depth*: protocol `resized` at the training size, protocol `eigen` on the Eigen crop at the
# full frame. Both are **neither** kind of published number: not metric like the supervised tables, not
# aligned in disparity like the zero-shot ones. They tell our models apart; they do not place them in a
# paper's table.

# %%
# NBVAL_CHECK_OUTPUT
import inspect

from depthkit.data import nyu_split
from depthkit.tensors import align_scale_shift

top, bottom, left, right = metrics.EIGEN_CROP_480x640
n_test = len(nyu_split("test", repo_root() / "data" / "nyu_splits.json"))
cap = inspect.signature(metrics.depth_metrics).parameters["max_depth"].default
print(f"NYU's official test split: {n_test} images; Eigen crop rows {top}:{bottom}, columns {left}:{right} "
      f"of the {metrics.NYU_FRAME[0]}×{metrics.NYU_FRAME[1]} frame; valid depth up to {cap:g} m")
ok = gt > 0
disparity_fit = align_scale_shift(1 / fake, torch.where(ok, 1 / gt.clamp_min(1e-6), 0), ok)  # fitted in disparity
from_disparity = 1 / disparity_fit.clamp_min(1e-6)  # back to depth, then scored unaligned
for name, pred, align in [("metric, unaligned (the stand-in as metres)", fake, None),
                          ("least squares in depth (depthkit's tables)", fake, "lstsq"),
                          ("least squares in disparity (zero-shot)", from_disparity, None)]:
    m = metrics.depth_metrics(pred, gt, ok, align=align)
    print(f"{name:<44} AbsRel {m['abs_rel']:.3f}  δ<1.25 {m['delta1']:.3f}")

# %% [markdown]
# ## 6. The scale-and-shift-invariant loss (MiDaS)
#
# The report's min–max normalization is one particular way of ignoring scale and shift, and a
# fragile one: a single outlier pixel sets the range. MiDaS (Ranftl et al.) aligns instead, and two
# things about *how* matter. First, MiDaS works in **disparity** (inverse depth, larger = closer; see
# "How to read a published table" above), because its stereo and film training data give nothing else.
# Second, it defines a family of scale-and-shift-invariant losses. One, $\mathcal{L}_{ssimse}$, *fits* the
# scale and shift by least squares and takes *half* the mean squared error after it (a factor 1/(2M) over
# M pixels): that is depthkit's `losses.ssi_loss`, applied to depth. The one the MiDaS paper settles on
# (with a gradient-matching term), $\mathcal{L}_{ssitrim}$, aligns each map robustly instead: shift = its **median**, scale =
# its **mean absolute deviation** from that median, a scale that is never negative; then a mean absolute
# error with the largest residuals trimmed. Since min–max is one candidate alignment, twice depthkit's SSI
# loss is never larger than normalized MSE.

# %%
# NBVAL_CHECK_OUTPUT
ramp = torch.tensor([[1.0, 2.0, 3.0, 4.0, 8.0]])
for name, pred in {"depth": ramp, "2 × depth + 1": 2 * ramp + 1, "depth²": ramp**2,
                   "1 / depth": 1 / ramp, "−depth": -ramp}.items():
    print(f"{name:<14} normalized MSE {losses.normalized_mse(pred, ramp).item():.4f}   "
          f"SSI {losses.ssi_loss(pred, ramp).item():.4f}")

# %% [markdown]
# Look at the last line: the least-squares scale may come out negative, so depthkit's SSI loss forgives
# a **flipped sign** completely: it judges the shape of the depth map up to *any* linear map, and alone
# it cannot teach a network which way is far. MiDaS's robust alignment does not do that: a median and a
# mean absolute deviation normalise a map without ever turning it over, so a flipped map stays wrong.
# The cell below aligns both ways in disparity, as MiDaS does (`disparity = 1 / depth` of the same ramp).

# %%
# NBVAL_CHECK_OUTPUT
def median_mad(x: torch.Tensor) -> torch.Tensor:
    """MiDaS's robust alignment of one map: minus its median, over its mean absolute deviation (> 0)."""
    shifted = x - x.flatten().median()
    return shifted / shifted.abs().mean()

disparity = 1 / ramp  # what MiDaS predicts and aligns: larger = closer
for name, pred in {"disparity": disparity, "2 × disparity + 1": 2 * disparity + 1,
                   "−disparity": -disparity, "depth (not inverted)": ramp}.items():
    robust = (median_mad(pred) - median_mad(disparity)).abs().mean().item()
    print(f"{name:<21} median/MAD-aligned error {robust:.4f}   least-squares SSI {losses.ssi_loss(pred, disparity).item():.4f}")

# %% [markdown]
# Both forgive scale and shift (the first two lines); only the least-squares fit forgives the flipped
# sign (third line). On the last line, depth where disparity is wanted, the robust alignment scores it
# as wrong as the flipped map (depth runs the other way), while least squares, free to turn it over,
# nearly forgives it: 1/Z is not a linear map of Z, but on this ramp it is close to a flipped one. The sign, and depth versus disparity, have to be fixed once, as in section 3.

# %% [markdown]
# ## 7. Play with the ranking loss
#
# The loss of one pair as a function of $z_A - z_B$, for the annotation you choose, under our
# convention and under the one printed in Chen et al.'s paper (and the report). Move the slider to where
# an NYU-trained model would sit (for an "A closer" pair, $z_A - z_B < 0$) and compare the two losses. The first plot is the
# starting point; the interactive one below it needs a live kernel.

# %%
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
                label=f"paper's printed convention, r = {printed:+d}: {loss_of_pair(z_diff, printed):.3f}")
    ax.axvline(z_diff, color="0.4", lw=1)
    ax.set(xlabel="z_A − z_B  (depth-like: larger = farther)", ylabel="loss", ylim=(0, 6.5))
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title(f"Ranking loss of one pair annotated '{annotation}' (depthkit.losses.ranking_loss, no data)",
                 fontsize=9)
    plt.show()

plot_ranking_loss()  # the starting point, drawn once (also for readers without a live kernel)
widgets.interact(plot_ranking_loss, annotation=widgets.Dropdown(options=list(ANNOTATIONS)),
                 z_diff=widgets.FloatSlider(value=-2.5, min=-6, max=6, step=0.1, description="z_A − z_B"));

# %% [markdown]
# | where | loss for training | number we report |
# |---|---|---|
# | NYU | normalized MSE (SSI as the modern alternative) | normalized MSE; AbsRel, RMSE, δ after alignment |
# | DIW | ranking loss, r from the CSV as it is | ordinal accuracy; WHDR |
#
# Next, `03_lraspp`: the first model.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun the cell and write in the answer cell what moved. The *implement it* exercises
# (02.1–02.3 below) are checked at once: write the body of each function where the worked solution stands
# (a student copy, from `make student` or nbgrader, holds a `raise NotImplementedError` line there), run its
# cell, then the check cell under it. The check runs your function and depthkit's own on random inputs and
# on the edge cases that matter, and prints `PASS` or one line naming the first case that fails, what was
# expected and what came back. The grader also runs further cases of the same kinds that the check cell
# does not show.
#
# | exercise | points | graded |
# |---|---|---|
# | questions 1–4 (points beside each) | 8 | by hand, from your answer cells |
# | Exercise 02.1 | 4 | by its check cell, plus hidden cases |
# | Exercise 02.2 | 4 | by its check cell, plus hidden cases |
# | Exercise 02.3 | 3 | by its check cell, plus hidden cases |
# | **total** | **19** | |

# %% [markdown]
# **1.** *Explain* (2 points). Section 1 scores `2 × depth + 1` a perfect 0. Why does the report normalise every
# depth map and every prediction before the MSE, and what does that throw away? (Think of a model that gets
# every room's layout right and every room's size wrong.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_02_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** From one image the absolute scale is ambiguous (a doll's house photographed close up looks like a
# room), so the report compares only the *shape* of the depth map: per image, prediction and truth are each
# min–max scaled to [0, 1]. That maps every increasing linear transform a · depth + b (a > 0) of the truth onto
# the same map, hence the 0 for `2 × depth + 1`. What is thrown away is each image's scale and offset: the
# model that gets every layout right and every size wrong scores perfectly, and no output can be read in
# metres without aligning it to a measured depth first (section 5). A side effect: one extreme pixel sets the
# whole range (section 6).
#
# *Rubric (2 points):* 1 for the scale (and shift) ambiguity of a single image, i.e. any increasing linear map of the truth scores 0; 1 for what is lost: the absolute (metric) scale and offset of each image.

# %% [markdown]
# **2.** *Explain* (2 points). Negate every DIW relation (read `<` as +1). The ranking loss still falls during
# training and the run still "converges". Why, and what has the model learned then? Which number in section 3
# gives it away?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_02_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The loss is symmetric: log(1 + e^(−r (z_A − z_B))) with r negated is exactly the loss of the negated
# output −z. Flipped labels are therefore just as learnable; the network minimises them by learning the
# opposite order, "larger = closer" (something like inverse depth), and the loss falls as it would have.
# Nothing in the loss says which way is far. The give-away is an accuracy, not the loss: in section 3 the
# perfect NYU model orders 100 % of the pairs right with our convention and 0 % with the flipped one, and the
# fitted scale s in the plot turns negative (the output flips). In a real run, the DIW accuracy right after
# NYU would read as 100 minus the true accuracy.
#
# *Rubric (2 points):* 1 for the symmetry (negated labels are the loss of −z, so the model learns the reversed order, larger = closer); 1 for naming the tell in section 3 (the 100 % vs 0 % of the perfect NYU model, or s changing sign; the 2.58 vs 0.08 loss of the worked example also counts).

# %% [markdown]
# **3.** *Try it* (2 points). In section 4, replace the thresholds τ `(0.02, 0.1, 0.5)` by `(0.0, 0.04, 0.06)`. At
# which τ does the first pair (1.05 vs 1.0, annotated "equal") become right, and why does τ = 0 count it
# wrong?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_02_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** At τ = 0.06. With τ = 0.0 and 0.04 the first pair is predicted +1 ("A farther") and counted wrong
# (WHDR 0.25); at τ = 0.06 it is "equal" and WHDR drops to 0 (the other three pairs stay ordered: their ratios
# are about 1.24, 1.54 and 2). The prediction says "equal" when the ratio 1.05 / 1.0 lies within 1 + τ, i.e.
# from τ = 0.05 on. With τ = 0 only an exact tie is "equal", so any two different values are ordered and a
# pair annotated "equal" can be right only by an exact tie.
#
# *Rubric (2 points):* 1 for τ = 0.06 with the ratio argument (1.05 ≤ 1 + τ, so from τ = 0.05); 1 for why τ = 0 calls it ordered (only exact ties are equal).

# %% [markdown]
# **4.** *Try it* (2 points). In section 5, make the stand-in `0.5 * blurred - 3.0` (most values negative). What
# does `align="median"` do now (read the warning), and why can a median *ratio* not align it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_02_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** About 93 % of the stand-in's valid pixels are now negative and its median is about −1.4. depthkit warns
# that "median alignment needs positive predictions" and aligns that image by least squares instead, so the
# `median` line prints the same numbers as `lstsq` (AbsRel about 0.007 for this frame), while `align=None`
# scores the raw negative values against metres (δ < 1.25 is 0). A median ratio median(truth) / median(pred)
# would be negative here: a negative scale turns the map upside down (near becomes far). And a ratio is a
# pure scale: it cannot remove an additive offset such as −3, which needs a fitted shift.
#
# *Rubric (2 points):* 1 for what happens (the warning and the fallback to least squares: the same numbers as lstsq); 1 for why (a median ≤ 0 gives a negative or meaningless scale, and a scale cannot undo a shift).

# %% [markdown]
# **5.** *Implement it.* Exercises 02.1 (the report's normalized MSE, with a mask), 02.2 (Chen et al.'s ranking
# loss, including r = 0) and 02.3 (WHDR with the ratio test at τ), below.

# %% nbgrader={"grade": false, "grade_id": "ex_02_1", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 02.1 · the report's normalized MSE, by hand
import math

import torch


def normalized_mse(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The report's NYU loss: per image, min-max normalise pred and depth to [0, 1], then the MSE.

    pred, depth: float [B, 1, H, W]; mask: bool [B, 1, H, W], True = valid pixel (Kinect holes are False).
    Per image: scale pred and depth each to [0, 1] with the min and max of the image's *valid* pixels
    (a constant map becomes all zeros), square the difference, average it over the valid pixels.
    Return the mean of those numbers over the images that have a valid pixel (an image without one
    has no number and is left out, as in depthkit's loss), as a 0-dim tensor that keeps the gradient.
    """
    ### BEGIN SOLUTION
    def to_unit_range(x):
        lo = torch.where(mask, x, torch.full_like(x, math.inf)).amin(dim=(1, 2, 3), keepdim=True)
        hi = torch.where(mask, x, torch.full_like(x, -math.inf)).amax(dim=(1, 2, 3), keepdim=True)
        span = hi - lo
        return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))

    error = (to_unit_range(pred) - to_unit_range(depth)) ** 2 * mask
    count = mask.sum(dim=(1, 2, 3))
    per_image = error.sum(dim=(1, 2, 3)) / count.clamp_min(1)  # clamp: no 0/0, so no NaN in the gradient
    return per_image[count > 0].mean()  # images without a valid pixel are left out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_02_1", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_normalized_mse

check_normalized_mse(normalized_mse)
### BEGIN HIDDEN TESTS
check_normalized_mse(normalized_mse, hidden=True)
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "ex_02_2", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 02.2 · Chen et al.'s ranking loss, r = 0 included
import torch
import torch.nn.functional as F


def ranking_loss(pred: torch.Tensor, pairs: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
    """Mean over all pairs of log(1 + exp(-r (z_A - z_B))) for r = +-1 and (z_A - z_B)^2 for r = 0.

    pred: float [B, 1, H, W] (larger = farther); pairs: long [B, P, 4], 0-based (ya, xa, yb, xb);
    relation: [B, P] in {-1, 0, +1}, +1 = A farther. z_A is pred at (ya, xa) of the pair's own image.
    Stay finite when |z_A - z_B| is large (torch.nn.functional.softplus); return a 0-dim tensor that
    keeps the gradient.
    """
    ### BEGIN SOLUTION
    image = torch.arange(pred.shape[0])[:, None]  # [B, 1]: each pair reads its own image
    z_a = pred[image, 0, pairs[..., 0], pairs[..., 1]]
    z_b = pred[image, 0, pairs[..., 2], pairs[..., 3]]
    diff = z_a - z_b
    per_pair = torch.where(relation == 0, diff**2, F.softplus(-relation.to(diff.dtype) * diff))
    return per_pair.mean()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_02_2", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_ranking_loss

check_ranking_loss(ranking_loss)
### BEGIN HIDDEN TESTS
check_ranking_loss(ranking_loss, hidden=True)
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "ex_02_3", "locked": false, "schema_version": 3, "solution": true, "task": false}
# Exercise 02.3 · WHDR with the ratio test at τ
import torch


def whdr(pred: torch.Tensor, pairs: torch.Tensor, relation: torch.Tensor, delta: float) -> float:
    """The share of pairs whose predicted relation differs from ``relation`` (WHDR/WKDR, every weight 1).

    pred: positive depth [B, 1, H, W]; pairs, relation as in ranking_loss. Predicted relation:
    +1 when z_A / z_B > 1 + delta, -1 when z_B / z_A > 1 + delta, else 0 ("equal"); delta is the ordinal
    threshold τ of section 4. With delta = 0 an
    exact tie is "equal", so it is wrong for an ordered pair. Return a Python float.
    """
    ### BEGIN SOLUTION
    image = torch.arange(pred.shape[0])[:, None]
    z_a = pred[image, 0, pairs[..., 0], pairs[..., 1]].double()
    z_b = pred[image, 0, pairs[..., 2], pairs[..., 3]].double()
    predicted = torch.zeros_like(relation)
    predicted[z_a > (1 + delta) * z_b] = 1
    predicted[z_b > (1 + delta) * z_a] = -1
    return (predicted != relation).double().mean().item()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_02_3", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from depthkit.course.exercises import check_whdr

check_whdr(whdr)
### BEGIN HIDDEN TESTS
check_whdr(whdr, hidden=True)
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - W. Chen, Z. Fu, D. Yang, J. Deng. *Single-Image Depth Perception in the Wild.* NIPS 2016. [arXiv:1604.03901](https://arxiv.org/abs/1604.03901), [project page (DIW)](http://www-personal.umich.edu/~wfchen/depth-in-the-wild/)
# - D. Zoran, P. Isola, D. Krishnan, W. T. Freeman. *Learning Ordinal Relationships for Mid-Level Vision.* ICCV 2015. [CVF open access](http://www.cv-foundation.org/openaccess/content_iccv_2015/html/Zoran_Learning_Ordinal_Relationships_ICCV_2015_paper.html)
# - R. Ranftl, K. Lasinger, D. Hafner, K. Schindler, V. Koltun. *Towards Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer* (MiDaS). IEEE TPAMI, 2022 (online 2020). [arXiv:1907.01341](https://arxiv.org/abs/1907.01341)
# - D. Eigen, C. Puhrsch, R. Fergus. *Depth Map Prediction from a Single Image using a Multi-Scale Deep Network.* NIPS 2014. [arXiv:1406.2283](https://arxiv.org/abs/1406.2283)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
