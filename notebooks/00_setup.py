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
# # 00 · Set-up: environment, profiles, data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/00_setup.ipynb)
#
# This series rebuilds, step by step, a course project on **single-image depth estimation**
# ("Deep Learning for Image and Video Processing", Maastricht University, 2023–24): two networks
# (U-Net++ and LR-ASPP) trained on **NYU Depth V2** (indoor photos with Kinect depth) and fine-tuned
# on **DIW** (*Depth in the Wild*: internet photos with one human judgement "which of these two points
# is closer?"). The heavy lifting lives in the small `depthkit` package next to these notebooks; the
# notebooks explain, call it and plot.
#
# | notebook | what you will see |
# |---|---|
# | `00_setup` | the environment, the three profiles, where data lives, how to fetch the real datasets |
# | `01_data_exploration` | NYU and DIW samples, file layouts, depth statistics, the synthetic scenes |
# | `02_losses_and_metrics` | normalized MSE, the ranking loss and its sign pitfall, WHDR, standard metrics |
# | `03_lraspp` | model II: LR-ASPP MobileNetV3 and its 21 → 1 head, trained on NYU |
# | `04_unetpp` | model I: U-Net++ with a ResNeXt-50 encoder, frozen-encoder warm-up |
# | `05_diw_finetuning` | both models fine-tuned on DIW with the ranking loss |
# | `06_comparison` | the report's table beside ours, the figures, a parameter-matched third model, failures |
# | `07_your_own_image` | your own photo through a trained model |
# | `08_depth_cues` | which depth cues the networks use: test scenes without haze, shading, shadows, texture gradient |
# | `09_after_the_report` | after the report: the SIlog loss, metric depth, a transformer at LR-ASPP's size, Depth Anything V2 (opt-in) |

# %% [markdown]
# **After this notebook you can**
#
# - check that the environment has what the series needs, locally or on Colab
# - pick a profile (`smoke`, `demo`, `report`) and say what each changes
# - find where data, checkpoints and figures live, and move them with `DEPTHKIT_DATA`, `DEPTHKIT_RUNS`, `DEPTHKIT_FIGURES`
# - fetch the real NYU Depth V2 and DIW files, or work on the embedded synthetic scenes instead
#
# **It assumes** nothing before it; some Python and a terminal. No maths.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: none here; reading it takes about 20 minutes (an estimate).

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

print(describe("00_setup"))

# %% [markdown]
# ## 1. The environment
#
# The notebooks need PyTorch, torchvision, segmentation-models-pytorch (for U-Net++), h5py (NYU's
# `.mat` file is HDF5), matplotlib and ipywidgets. On Colab the first cell installed only what was
# missing; locally `make test` or `make reproduce` builds a virtual environment with everything.

# %%
import importlib
import platform

print(f"python {platform.python_version()} on {platform.system()} {platform.machine()}")
for module in ["torch", "torchvision", "segmentation_models_pytorch", "numpy", "h5py",
               "matplotlib", "ipywidgets", "tqdm", "PIL", "depthkit"]:
    try:
        version = getattr(importlib.import_module(module), "__version__", "?")
    except ImportError:
        version = "MISSING - see requirements.txt"
    print(f"  {module:<30} {version}")

# %% [markdown]
# A GPU makes the `report` profile possible (on a 2-core CPU, one U-Net++ training step on 8 images of
# 224×224 takes about 38 s). Without one everything still runs, just on the small profiles.

# %%
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, bf16: {torch.cuda.is_bf16_supported()}")
else:
    print(f"no CUDA GPU: training runs on {DEVICE} with {torch.get_num_threads()} threads")

# %% [markdown]
# ## 2. Profiles: one switch for data, size, epochs and device
#
# Set the environment variable `DEPTHKIT_PROFILE` before starting Jupyter (or `--profile` on the
# command line). Without it, depthkit picks `report` when the real datasets and a GPU are present,
# otherwise `demo`.
#
# * **smoke** – a couple of dozen synthetic scenes at 64×64, one epoch: every notebook in seconds. The
#   tests run it. Its numbers mean nothing.
# * **demo** – a few hundred synthetic scenes, enough epochs for the models to really learn; minutes
#   on a CPU.
# * **report** – the real NYU Depth V2 (1449 images) and DIW, 200×200, the report's epochs and
#   optimizer; meant for a Colab GPU.

# %%
from depthkit.config import PROFILES
from depthkit.models import MODEL_NAMES

for p in PROFILES.values():
    mark = "  <- active" if p.name == PROFILE.name else ""
    print(f"{p.name:<7} {p.data:<9} {p.size}×{p.size}, batch {p.batch_size}, lr NYU {p.budget('nyu').lr:g} / "
          f"DIW {p.budget('diw').lr:g}, "
          f"weight decay {p.weight_decay:g}, pretrained={p.pretrained}{mark}")
    for m in MODEL_NAMES:
        (frozen, nyu), (_, diw) = p.epochs(m, "nyu"), p.epochs(m, "diw")
        print(f"          {m:<12} NYU {frozen} frozen + {nyu} epochs, DIW {diw} epochs")

# %% [markdown]
# ## 3. Where things live
#
# Datasets and caches go to `data/`, checkpoints and training histories to `runs/<profile>/`, the
# report's figures to `figures/`. Three environment variables move them: `DEPTHKIT_DATA`,
# `DEPTHKIT_RUNS`, `DEPTHKIT_FIGURES`. On Colab, section 7 can point the checkpoints and figures into
# Google Drive (if you ask it to), so they outlive the runtime.

# %%
from depthkit.config import data_dir, figures_dir, real_data_present, repo_root, runs_dir

# relative to the checkout: a saved notebook shows no one's home directory
checkout = repo_root().resolve()
for label, folder, variable in [("data", data_dir(), "DEPTHKIT_DATA"), ("runs", runs_dir(), "DEPTHKIT_RUNS"),
                                ("figures", figures_dir(), "DEPTHKIT_FIGURES")]:
    folder = folder.resolve()
    where = f"{folder.relative_to(checkout).as_posix()}/" if folder.is_relative_to(checkout) else f"outside the checkout (${variable})"
    print(f"{label + ':':<9}{where}")
print("real NYU + DIW on disk:", real_data_present())

# %% [markdown]
# ## 4. Getting the real datasets
#
# The real data is large: NYU Depth V2's labeled file alone is 2.97 GB, and DIW's images come on top. `depthkit.data.download` fetches them into `data/real/` with a progress bar, resumes a broken
# download, checks every byte count against what the server promised (and the checksum where one is
# published), and unpacks DIW; an archive that does not unpack is set aside and fetched again next
# time, and on Colab archives are deleted once unpacked. Offline it fails within seconds and says what
# to fetch by hand.
#
# The real DIW release holds a few bad records (missing or truncated thumbnails, A = B): preparing the
# cache skips them, lists them in a rejects file beside the cache and sums them up in one line; more
# than 1 % bad means a wrong folder (`--image-root`) or a broken download, and it stops. A preparation
# cut off part-way resumes where it stopped. `data/README.md` has the details.
#
# This cell does nothing unless you set `DOWNLOAD = True`: the machines that test these notebooks
# have no network, and nothing in this series downloads by itself. Flip it on Colab or on a laptop.

# %%
from depthkit import data as dk_data

DOWNLOAD = False  # True: fetch NYU Depth V2 (2.97 GB) and DIW into data/real (needs a network)
if DOWNLOAD:
    print("NYU:", dk_data.download("nyu"))
    print("DIW:", dk_data.download("diw"))
else:
    print("DOWNLOAD is False: nothing fetched. Without a network this would fail anyway; "
          "set DOWNLOAD = True to fill real/ in the data folder")

# %% [markdown]
# ## 5. The embedded data
#
# Without the real files, depthkit draws its own **synthetic depth-cue scenes**: rooms with boxes,
# perspective, occlusion, texture gradients, shading, cast shadows and haze, with exact depth. It
# writes them in the *real* file layouts (a MATLAB-v7.3 `.mat` for NYU, a DIW-style CSV with JPEGs),
# so they go through the very readers the real data uses. `prepare_data` generates them on first
# use (seconds) and caches everything at the profile's image size.

# %%
from depthkit.pipeline import dataset_statistics, format_statistics, prepare_data

prepared = prepare_data(PROFILE)
where = f"{prepared.source} data, in the data folder under {prepared.root.relative_to(data_dir()).as_posix()}/"
stats = dataset_statistics(PROFILE, prepared)
stats["source"] = where  # its own description names an absolute folder when the data lives outside the checkout
print(format_statistics(stats))

# %% [markdown]
# ## 6. The models
#
# Three networks, all mapping an image `[B, 3, H, W]` to one depth-like map `[B, 1, H, W]`
# (larger = farther): the report's U-Net++ (model I) and LR-ASPP (model II), and a third one with
# LR-ASPP's number of parameters but U-Net++'s architecture, for the comparison the report left
# open. Building them touches no network (random initialisation).

# %%
# NBVAL_CHECK_OUTPUT
from depthkit.models import build_model, count_parameters

for name in MODEL_NAMES:
    print(f"{name:<12} {count_parameters(build_model(name)) / 1e6:6.2f} M parameters")

# %% [markdown]
# ## 7. Run the report on Colab
#
# The `report` profile (real NYU Depth V2 + DIW, 200×200, the report's epochs) needs a GPU: on Colab,
# *Runtime → Change runtime type → T4 GPU*. A Colab runtime forgets everything when it disconnects, so
# checkpoints and results should go to **Google Drive**: set `USE_DRIVE = True` in the set-up cell at the
# top, run it, then the cell below. It mounts your Drive and prints the **disk plan** of a `report` run
# (what each step writes, against each disk's free space). Left off, everything stays on the runtime's
# disk: fine for `smoke` and `demo`. The layout, what to do after a disconnect, and how long a `report`
# run is estimated to take: the appendix page `docs/running.md`.

# %%
from depthkit.course.colab import use_drive
from depthkit.data.diskplan import disk_plan, format_plan

DRIVE_FOLDER = "/content/drive/MyDrive/depthkit"  # any folder of your Drive; the other notebooks find it again
if IN_COLAB and USE_DRIVE:  # USE_DRIVE: the switch in the set-up cell at the top
    use_drive(DRIVE_FOLDER)
elif IN_COLAB:
    print("USE_DRIVE is False: nothing mounted; data, runs and figures stay on this runtime's disk and vanish with it"
          + (" (set USE_DRIVE = True in the set-up cell before a report run)" if PROFILE.name == "report" else ""))
else:
    print("not on Colab: nothing mounted; data, runs and figures stay where section 3 says")
print(format_plan(disk_plan(PROFILES["report"])))

# %% [markdown]
# Then, in this notebook or a fresh one after the two cells above (each `!` line is a shell command):
#
# ```
# !python -m depthkit download nyu        # NYU Depth V2 into $DEPTHKIT_DATA/real (resumes a broken download)
# !python -m depthkit download diw        # DIW annotations and images
# !python -m depthkit reproduce --profile report
# ```

# %% [markdown]
# Everything is in place. Next: `01_data_exploration`.
