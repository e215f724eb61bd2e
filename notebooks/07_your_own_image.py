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
# # 07 · Your own image
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/depthkit/depthkit/blob/main/notebooks/07_your_own_image.ipynb)
#
# Upload a photo, see the depth a trained model predicts for it, and ask the model DIW's question
# about two points of your choice: which one is closer? Without an upload the notebook uses a real
# NYU Depth V2 photograph that ships with the repository, whose Kinect depth lets us check the answer.

# %% [markdown]
# **After this notebook you can**
#
# - predict depth for a photo of your own and read it as relative depth (no unit)
# - ask the model which of two points is closer, and check it against the Kinect where there is one
# - tell a showcase from an honest number (a selected pair against the share of all clear pairs)
# - name what separates a real photo from the synthetic training rooms
#
# **It assumes** `03`–`05` (a trained model, the ordinal question of DIW). Maths: scale and shift of a depth map.
#
# **How long.** Run all: the times measured from a fresh clone print under the set-up cells below (`smoke`, and `demo` once measured; on a CPU and, where measured, a GPU). Exercises: about 45 minutes (an estimate).

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

print(describe("07_your_own_image"))

# %% [markdown]
# ## 1. A trained model
#
# U-Net++ fine-tuned on DIW if an earlier notebook trained it under this profile, otherwise LR-ASPP,
# which trains in seconds. A word of warning: under `smoke` and `demo` the model has only seen
# synthetic rooms full of boxes, so on a real photograph expect it to follow the cues it knows
# (floors, walls, haze) and to be confused by everything else. That gap between training and real
# data is the lesson, not a bug. The `report` profile trains on the real datasets.

# %%
from depthkit.checkpoints import load_model
from depthkit.config import runs_dir
from depthkit.pipeline import load_stage_data, prepare_data
from depthkit.runs import run_dir
from depthkit.train import train_stage

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
# Pick a JPEG or PNG, then run the next cell; skip this to use the bundled NYU photo. On Colab the cell
# opens Colab's own file picker; elsewhere it shows an **Upload** button (it needs a live kernel). Why
# two pickers: the appendix page `docs/running.md`.

# %%
import ipywidgets as widgets
from IPython.display import display

UPLOADED = {}  # file name -> bytes, from Colab's picker
upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload")
if IN_COLAB:
    from google.colab import files

    print("Choose a photo (or cancel to keep the bundled NYU photo):")
    try:
        UPLOADED = files.upload()  # waits for your choice
    except Exception as err:  # cancelled, or the browser blocked the picker
        print("nothing uploaded:", type(err).__name__)
else:
    bundle = upload._repr_mimebundle_() if hasattr(upload, "_repr_mimebundle_") else None  # ipywidgets 8
    if bundle:  # the live control, and a still picture of it for readers of the saved notebook (GitHub, nbviewer)
        bundle["text/html"] = ('<button disabled style="padding:2px 10px">&#x2B06; Upload</button> '
                               "<i>(file picker: needs a live kernel)</i>")
        display(bundle, raw=True)
    else:
        display(upload)

# %%
import numpy as np

from depthkit.config import repo_root
from depthkit.course.colab import uploaded_file
from depthkit.data import load_nyu_png_depth, load_rgb, resize_depth, resize_image

SAMPLES = repo_root() / "tests" / "assets" / "nyu_real_samples"  # NYU Depth V2 frames, BSD-2 (LICENSE there)

file = uploaded_file(upload, UPLOADED)
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
# The prediction has no unit (the model learned depth only up to scale and shift), so its colour bar
# reads "relative depth"; the Kinect's is in metres.

# %%
from depthkit.evaluate import predict

S = PROFILE.size
small = resize_image(photo, S)
x = torch.tensor(small).permute(2, 0, 1)[None].to(DEVICE)  # uint8 [1, 3, S, S]
with torch.no_grad():
    depth = predict(model.eval(), x).cpu()[0, 0]

panels = 3 if kinect is not None else 2
fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels + 0.8, 3.6), layout="constrained")
axes[0].imshow(photo); axes[0].axis("off"); axes[0].set_title("photo", fontsize=9)
viz.show_depth(axes[1], depth, f"{MODEL_NAME}: predicted depth (near = bright)", normalize=True)
if kinect is not None:
    viz.show_depth(axes[2], kinect, "Kinect depth (holes grey)")
fig.suptitle(f"{SOURCE} · {MODEL_NAME} trained on {TAG}", fontsize=10);

# %% [markdown]
# ## 4. Which point is closer?
#
# The model answers by comparing its predicted depth at two points A and B (row and column on the
# model's input grid, `PROFILE.size` pixels square). For the bundled photo the Kinect says what is true.
# The default pair is **chosen**, not random: among random pairs where the Kinect measured both points
# and their depths differ by at least 25 % (no near-tie), the one the model orders right by the widest
# margin. That makes it a showcase, so the cell also says how many of those clear pairs the model gets
# right on this photo, beside the share that the rule "the lower point is closer" gets right on the same
# pairs (`metrics.position_rule_accuracy`): a rule that looks at no pixel, only at where the points lie.
# For your own photo the default is a point low in the picture against one higher up.

# %%
from depthkit import metrics


def clear_pair(pred: torch.Tensor, truth: np.ndarray, n: int = 4000, min_ratio: float = 1.25, seed: int = 0):
    """From ``n`` random pairs at least S/4 apart, both measured in ``truth`` and differing by ``min_ratio``:
    the pair the model orders right by the widest margin, that margin (share of the prediction's range),
    the share of such pairs it orders right, how many there were, and the share the position rule orders right."""
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(2, S - 2, size=(2, n)), rng.integers(2, S - 2, size=(2, n))
    ka, kb = truth[ys[0], xs[0]], truth[ys[1], xs[1]]
    ok = (ka > 0) & (kb > 0) & (np.maximum(ka, kb) >= min_ratio * np.minimum(ka, kb))
    ok &= np.hypot(ys[0] - ys[1], xs[0] - xs[1]) >= S / 4
    p = pred.numpy()
    margin = np.sign(ka - kb) * (p[ys[0], xs[0]] - p[ys[1], xs[1]]) / max(float(p.max() - p.min()), 1e-12)
    if not ok.any():
        return None, 0.0, 0.0, 0, None
    i = int(np.argmax(np.where(ok, margin, -np.inf)))
    clear = torch.from_numpy(np.stack([ys[0], xs[0], ys[1], xs[1]], axis=1)[ok])[None]  # [1, P, 4]: the same pairs
    rule = metrics.position_rule_accuracy(clear, torch.from_numpy(np.sign(ka - kb)[ok]).long()[None])
    return ((int(ys[0, i]), int(xs[0, i]), int(ys[1, i]), int(xs[1, i])), float(margin[i]),
            float((margin[ok] > 0).mean()), int(ok.sum()), rule)


DEFAULT, MARGIN, SHARE, N_CLEAR, RULE = (int(0.85 * S), S // 2, int(0.35 * S), S // 2), None, None, 0, None
if kinect is not None:
    pair, MARGIN, SHARE, N_CLEAR, RULE = clear_pair(depth, kinect)
    DEFAULT = pair or DEFAULT


def judge(ya, xa, yb, xb) -> dict:
    """Draw the pair on the photo and the prediction; print the model's verdict and, where measured, the Kinect's."""
    za, zb = float(depth[ya, xa]), float(depth[yb, xb])
    verdict = "A is farther than B" if za > zb else "A is closer than B"
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
    axes[0].imshow(small); axes[0].set_xticks([]); axes[0].set_yticks([])
    viz.draw_pair(axes[0], (ya, xa, yb, xb))
    viz.show_depth(axes[1], depth, f"z_A = {za:.3f}, z_B = {zb:.3f}", normalize=True)
    viz.draw_pair(axes[1], (ya, xa, yb, xb))
    fig.suptitle(f"{SOURCE} · {MODEL_NAME} ({TAG}): {verdict}", fontsize=10)
    plt.show()
    print(f"the model says: {verdict} (z_A − z_B = {za - zb:+.3f}; larger = farther)")
    out = {"verdict": verdict, "za": za, "zb": zb, "truth": None}
    if kinect is not None:
        ka, kb = float(kinect[ya, xa]), float(kinect[yb, xb])
        if ka > 0 and kb > 0:
            out.update(truth="A is farther than B" if ka > kb else "A is closer than B", ka=ka, kb=kb)
            print(f"the Kinect says:  {out['truth']} ({ka:.2f} m vs {kb:.2f} m) -> the model is "
                  f"{'right' if out['truth'] == verdict else 'wrong'}")
        else:
            print("the Kinect has no measurement at A or B (a hole): move the point")
    return out

result = judge(*DEFAULT)  # the default pair, judged once (also for readers without a live kernel)

# %% [markdown]
# ### What we got

# %%
from IPython.display import Markdown

from depthkit.course import narrative

# the bundled frames are from a basement storage room (tests/assets/nyu_real_samples/README.md)
Markdown(narrative.own_image(result, SOURCE, MARGIN, SHARE, N_CLEAR, PROFILE,
                             photo="a real basement storage room" if file is None else "your photo", rule=RULE))

# %% [markdown]
# Now move A and B: the drawing below the sliders starts at the default pair and follows them (it needs a
# live kernel; the saved notebook, read without one, shows the default pair's drawing above instead).

# %%
sliders = [widgets.IntSlider(value=v, min=0, max=S - 1, description=k, continuous_update=False)
           for k, v in zip(("ya", "xa", "yb", "xb"), DEFAULT)]
area = widgets.Output()

def redraw(_change=None):
    with area:
        area.clear_output(wait=True)
        judge(*(s.value for s in sliders))

for s in sliders:
    s.observe(redraw, names="value")
display(widgets.VBox([widgets.HBox(sliders[:2]), widgets.HBox(sliders[2:]), area]))
redraw()  # draw the default pair at once, so the picker never shows sliders without a picture

# %% [markdown]
# That is the series' main line: data, losses, two models, fine-tuning, comparison and your own photo.
# `08_depth_cues` asks which depth cues the networks rely on. To see the models really learn, run
# everything with `DEPTHKIT_PROFILE=demo`; for the real thing, use `report` on a Colab GPU after
# fetching the data in `00_setup`.

# %% [markdown]
# ## Exercises
#
# Answer each *explain* question in the answer cell under it, in a sentence or two; for the *try it* ones,
# change one thing, rerun and write in the answer cell what moved.
#
# | exercise | points | graded |
# |---|---|---|
# | questions 1–5 (points beside each) | 10 | by hand, from your answer cells |
# | **total** | **10** | |

# %% [markdown]
# **1.** *Explain* (2 points). The model predicts depth only up to scale and shift. Why can it not tell you how many
# metres away a point in your photo is, and what would you need to add to get metres?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_07_1", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It was trained with losses that ignore scale and shift: the normalized MSE min–max scales prediction and
# truth per image, and the ranking loss sees only the order of two points. Any a · depth + b (a > 0) scores the same,
# so its output has no unit, and nothing forced it to learn how big a scene is. For metres you need the missing
# scale and shift: align the prediction to a few measured depths (as the Kinect does for the bundled photo), or
# know the camera (focal length, its height above the floor) and the size of objects in view, or use a model
# trained with a metric loss on metric data.
#
# *Rubric (2 points):* 1 for the cause (scale- and shift-invariant training: normalized MSE and ordinal loss, so the output has no unit); 1 for what would give metres (alignment to measured depths, or known camera/object sizes, or a metric model).

# %% [markdown]
# **2.** *Explain* (2 points). Section 4's default pair is a showcase chosen for a wide margin. Which number in that
# section is the honest one, and why?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_07_2", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** The share of the clear pairs the model orders right on this photo (printed in "What we got", beside
# the position rule's share of the same pairs), not the verdict or margin of the default pair. The default pair was *selected* from thousands of
# random pairs as the one the model gets right by the widest margin, so it is right by construction and says
# nothing about the model; the share over all clear pairs (both measured by the Kinect, depths at least 25 %
# apart) is an unselected sample and estimates how often the model is right (50 % is a coin).
#
# *Rubric (2 points):* 1 for naming the share of clear pairs ordered right; 1 for why (the default pair is selected for its margin: selection bias, while the share covers all clear pairs).

# %% [markdown]
# **3.** *Try it* (2 points). Put A and B on the same flat wall, one above the other. Does the model call the lower point
# closer? What does that suggest about the cue it uses (compare `08`)?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_07_3", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It depends on the model and the photo; report the verdict and z_A − z_B. On a wall facing the camera both
# points are at about the same depth, so the true answer is "about equal" (for the bundled photo the Kinect says
# which is nearer, and by how much). If the model calls the lower point clearly closer, it is using the position
# in the image, the prior that lower means nearer learned from floors that rise towards the horizon (perspective),
# rather than anything on the wall itself; if it calls them about equal, or answers differently at different
# heights, it uses local cues. `08` tests such cues by removing them; position/perspective is one it never removes.
#
# *Rubric (2 points):* 1 for reporting the verdict (with z_A − z_B) against the truth of about equal depth; 1 for the interpretation (lower = closer reveals an image-position/perspective prior rather than a cue on the wall).

# %% [markdown]
# **4.** *Try it* (2 points). Rotate the photo by 180° (`photo = np.ascontiguousarray(photo[::-1, ::-1])`) and rerun
# section 3. Does the predicted depth rotate with the picture, or does "near" stay at the bottom?

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_07_4", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** It depends on the model; report which it is. If "near" (bright) stays at the bottom of the rotated picture,
# the model leans on the position prior learned from rooms whose floor is always at the bottom (the ceiling is
# now there, and it calls it near); if the depth map rotates with the picture, it reads the content (edges,
# shading, haze). A model trained only on upright synthetic rooms, as under `smoke` and `demo`, is expected to
# keep a good part of its bottom-near bias; one trained on varied real data less so.
#
# *Rubric (2 points):* 1 for the observation (does the map rotate, or does near stay at the bottom); 1 for the interpretation (position prior from upright training rooms vs image content).

# %% [markdown]
# **5.** *Explain* (2 points). Under `demo` the model was trained on synthetic 64×64 rooms. Name two ways in which a
# real photo differs from everything it has seen, and how each could show in the prediction.

# %% [markdown] nbgrader={"grade": true, "grade_id": "answer_07_5", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Answer.** Any two of: (1) content and appearance: real textures, clutter, people, windows and lighting unlike the
# flat-coloured boxes, striped walls and synthetic haze: its learned cues misfire, so the map follows colour or
# brightness edges instead of depth; (2) resolution and shape: the photo is squashed to 64 × 64, losing detail and
# distorting the aspect, so thin or small objects vanish and the map is blurred; (3) geometry and camera: other
# focal lengths, heights and tilts, or an outdoor scene without a floor-and-walls box, so the room-shaped prior is
# wrong (e.g. the sky or the ceiling predicted near); (4) haze: indoor photos have almost none, so a model that
# leans on haze (see `08`) loses its main cue.
#
# *Rubric (2 points):* 1 point for each of two differences, each with a plausible effect on the prediction.

# %% [markdown]
# ## References
#
# - N. Silberman, D. Hoiem, P. Kohli, R. Fergus. *Indoor Segmentation and Support Inference from RGBD Images* (NYU Depth V2). ECCV 2012. [dataset page](https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html)
# - W. Chen, Z. Fu, D. Yang, J. Deng. *Single-Image Depth Perception in the Wild.* NIPS 2016. [arXiv:1604.03901](https://arxiv.org/abs/1604.03901), [project page (DIW)](http://www-personal.umich.edu/~wfchen/depth-in-the-wild/)
# - The course report this series rebuilds: *Single Image Depth Estimation*, final project of Deep Learning for Image and Video Processing, Maastricht University, 2023–24 (not published; its pipeline and numbers are summarised in `docs/design.md`).
