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
# # 07 · Your own image
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/07_your_own_image.ipynb)
#
# Upload a photo, see the depth a trained model predicts for it, and ask the model DIW's question
# about two points of your choice: which one is closer? Without an upload the notebook uses a real
# NYU Depth V2 photograph that ships with the repository, whose Kinect depth lets us check the answer.

# %%
# Set-up cell, the same in every notebook (its one source: notebooks/colab_cell.txt; a test compares the copies).
# On Google Colab it fetches depthkit and installs only what Colab lacks; anywhere else it does nothing.
import os, subprocess, sys

REPO_URL = "https://github.com/depthkit/depthkit"
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    REPO_DIR = "/content/depthkit"
    if not os.path.isdir(os.path.join(REPO_DIR, "depthkit")):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
    os.chdir(REPO_DIR)
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    # --no-deps: Colab's own torch, torchvision, ipywidgets 7.x, matplotlib and h5py stay as they are.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", REPO_DIR], check=True)
    try:
        import segmentation_models_pytorch  # noqa: F401  (U-Net++; not preinstalled on Colab)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "segmentation-models-pytorch"], check=True)
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

plt.rcParams["figure.dpi"] = 72        # keeps the saved notebooks small; figures/ is written at full resolution
PROFILE = get_profile()               # DEPTHKIT_PROFILE=smoke | demo | report picks it (see 00_setup)
DEVICE = pick_device(PROFILE.device)  # CUDA if there is a GPU, then Apple MPS, then the CPU
TAG = f"{PROFILE.data} data · {PROFILE.name} profile · {DEVICE.type}"  # goes into every figure title
print(f"profile {PROFILE.name!r}: {PROFILE.data} data at {PROFILE.size}×{PROFILE.size}, "
      f"batch {PROFILE.batch_size}, device {DEVICE}")

# %% [markdown]
# ## 1. A trained model
#
# U-Net++ fine-tuned on DIW if an earlier notebook trained it under this profile, otherwise LR-ASPP,
# which trains in seconds. A word of warning: under `smoke` and `demo` the model has only seen
# synthetic rooms full of boxes, so on a real photograph expect it to follow the cues it knows
# (floors, walls, haze) and to be confused by everything else. That gap between training and real
# data is the lesson, not a bug. The `report` profile trains on the real datasets.

# %%
from depthkit.config import runs_dir
from depthkit.pipeline import load_stage_data, prepare_data
from depthkit.reproduce import run_dir, train_stage
from depthkit.train import load_model

MODEL_NAME = "unetpp" if (run_dir(PROFILE, "unetpp", "diw") / "best.pt").exists() else "lraspp"
checkpoint = run_dir(PROFILE, MODEL_NAME, "diw") / "best.pt"
if not checkpoint.exists():  # nothing trained yet under this profile: NYU, then DIW
    prepared = prepare_data(PROFILE)
    train_stage(PROFILE, MODEL_NAME, "nyu", load_stage_data(PROFILE, "nyu", prepared), device=DEVICE, progress=False)
    train_stage(PROFILE, MODEL_NAME, "diw", load_stage_data(PROFILE, "diw", prepared), device=DEVICE, progress=False)
model = load_model(checkpoint, device=DEVICE)
print(f"{MODEL_NAME} from {checkpoint.relative_to(runs_dir()).as_posix()} in the runs folder: trained on {PROFILE.data} data ({PROFILE.name} profile), "
      f"input {PROFILE.size}×{PROFILE.size}")

# %% [markdown]
# ## 2. Choose a photo
#
# Click **Upload**, pick a JPEG or PNG, then run the next cell. Skip this to use the bundled NYU photo.
# (The widget needs a live kernel: Jupyter, JupyterLab or Colab.)

# %%
import ipywidgets as widgets
from IPython.display import display

upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload")
display(upload)

# %% [markdown]
# ipywidgets changed the format of `FileUpload.value` between versions: 7.x (Colab) gives a dict
# `{filename: {"metadata": ..., "content": bytes}}`, 8.x a tuple of dicts with `"name"` and `"content"`
# (a memoryview). The cell handles both.

# %%
import numpy as np

from depthkit.config import repo_root
from depthkit.data import load_nyu_png_depth, load_rgb, resize_depth, resize_image

SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples"  # NYU Depth V2 frames, BSD-2 (LICENSE there)

def uploaded_file(upload):
    """(name, bytes) of the uploaded file under ipywidgets 7 or 8, or None."""
    value = upload.value
    if not value:
        return None
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        name, item = next(iter(value.items()))
    else:                        # ipywidgets 8: ({"name": ..., "content": memoryview, ...},)
        item = value[0]
        name = item["name"]
    return name, bytes(item["content"])

file = uploaded_file(upload)
if file:
    SOURCE, kinect = f"your photo {file[0]}", None
    photo = load_rgb(file[1])  # bytes work too: grayscale, CMYK, 16-bit all come back as RGB
else:
    SOURCE = "real NYU photo rgb_00000 (bundled)"
    photo = load_rgb(SAMPLES / "rgb" / "rgb_00000.jpg")
    kinect = resize_depth(load_nyu_png_depth(SAMPLES / "depth" / "sync_depth_00000.png"), PROFILE.size)
print(f"{SOURCE}: {photo.shape[1]}×{photo.shape[0]} pixels")

# %% [markdown]
# ## 3. Predicted depth
#
# The photo is squashed to the model's input size (as the training data was) and predicted in one go.

# %%
from depthkit.train import predict

S = PROFILE.size
small = resize_image(photo, S)
x = torch.tensor(small).permute(2, 0, 1)[None].to(DEVICE)  # uint8 [1, 3, S, S]
with torch.no_grad():
    depth = predict(model.eval(), x).cpu()[0, 0]

panels = 3 if kinect is not None else 2
fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 3.6))
axes[0].imshow(photo); axes[0].axis("off"); axes[0].set_title("photo", fontsize=9)
viz.show_depth(axes[1], depth, f"{MODEL_NAME}: predicted depth (near = bright)", normalize=True)
if kinect is not None:
    viz.show_depth(axes[2], kinect, "Kinect depth (holes grey)")
fig.suptitle(f"{SOURCE} · {MODEL_NAME} trained on {TAG}", fontsize=10)
fig.tight_layout()


# %% [markdown]
# ## 4. Which point is closer?
#
# Move A and B (row and column on the model's input grid, `PROFILE.size` pixels square). The model answers by
# comparing its predicted depth at the two points; for the bundled photo the Kinect measurement says
# what is true (when it measured both points). The first figure judges the default points, A on the
# floor near the bottom and B higher up; the sliders below it need a live kernel.

# %%
def judge(ya=int(0.85 * S), xa=S // 2, yb=int(0.35 * S), xb=S // 2):
    za, zb = float(depth[ya, xa]), float(depth[yb, xb])
    verdict = "A is farther than B" if za > zb else "A is closer than B"
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
    axes[0].imshow(small); axes[0].set_xticks([]); axes[0].set_yticks([])
    viz.draw_pair(axes[0], (ya, xa, yb, xb))
    viz.show_depth(axes[1], depth, f"z_A = {za:.3f}, z_B = {zb:.3f}", normalize=True)
    viz.draw_pair(axes[1], (ya, xa, yb, xb))
    fig.suptitle(f"{SOURCE} · {MODEL_NAME} ({TAG}): {verdict}", fontsize=10)
    plt.show()
    print(f"the model says: {verdict} (z_A − z_B = {za - zb:+.3f}; larger = farther)")
    if kinect is not None:
        ka, kb = float(kinect[ya, xa]), float(kinect[yb, xb])
        if ka > 0 and kb > 0:
            truth = "A is farther than B" if ka > kb else "A is closer than B"
            print(f"the Kinect says:  {truth} ({ka:.2f} m vs {kb:.2f} m) -> the model is "
                  f"{'right' if truth == verdict else 'wrong'}")
        else:
            print("the Kinect has no measurement at A or B (a hole): move the point")

judge()  # the default points, judged once (also for readers without a live kernel); now move them:
slider = lambda v: widgets.IntSlider(value=v, min=0, max=S - 1)
widgets.interact(judge, ya=slider(int(0.85 * S)), xa=slider(S // 2), yb=slider(int(0.35 * S)), xb=slider(S // 2));

# %% [markdown]
# That is the whole series: data, losses, two models, fine-tuning, comparison and your own photo.
# To see the models really learn, run everything with `DEPTHKIT_PROFILE=demo`; for the real thing, use
# `report` on a Colab GPU after fetching the data in `00_setup`.
