"""Notebook 09's additions: Eigen et al.'s SIlog loss, SegFormer-B0 at LR-ASPP's size, the opt-in pretrained model.

* ``silog_loss`` against numbers worked out by hand, its (partial) invariance to a global scale, holes, NaN;
* ``segformer_b0`` builds offline with random weights, keeps the output contract, and is LR-ASPP's size;
* SIlog training goes through ``train_stage`` (``silog_hooks``) and its checkpoint loads back as trained;
* the pretrained path is off by default and refuses offline, against a real closed local port, in seconds;
* MiDaS's alignment in disparity recovers a depth map from an affine function of its inverse;
* notebook 09's "What we got" texts claim only what the paired noise band allows.
"""
from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from depthkit.course import modern
from depthkit.course import narrative
from depthkit.losses import silog_loss
from depthkit.models import ExpDepth, WeightsUnavailableError, build_model, count_parameters

# ----- silog_loss ------------------------------------------------------------------------------

D1 = (0.1, -0.2, 0.3)  # log(pred / depth) on image 1's three valid pixels (the fourth is a hole)
D2 = (0.5, 0.5, 0.5, 0.5)  # image 2: the prediction is exp(0.5) times the depth everywhere


def planted() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 2x2 images, ``pred = depth * exp(d)`` with the log ratios above; image 1 has a hole (depth 0)."""
    depth = torch.tensor([[[[1.0, 2.0], [4.0, 0.0]]], [[[1.5, 3.0], [0.5, 8.0]]]])
    d = torch.tensor([[[[D1[0], D1[1]], [D1[2], 9.0]]], [[[*D2[:2]], [*D2[2:]]]]])  # 9.0 on the hole: ignored
    return depth * d.exp() + (depth == 0) * 5.0, depth  # any positive prediction on the hole


def test_silog_matches_eigen_eq4_by_hand():
    pred, depth = planted()
    # image 1: mean(d^2) = (0.01 + 0.04 + 0.09) / 3, mean(d) = 0.2 / 3; image 2: 0.25 - lam * 0.25
    for lam in (0.5, 1.0, 0.0, 0.85):
        image1 = 0.14 / 3 - lam * (0.2 / 3) ** 2
        image2 = 0.25 - lam * 0.25
        assert silog_loss(pred, depth, lam=lam).item() == pytest.approx((image1 + image2) / 2, rel=1e-5), lam
    assert silog_loss(pred, depth).item() == pytest.approx((0.14 / 3 - 0.5 * (0.2 / 3) ** 2 + 0.125) / 2, rel=1e-5)


def test_silog_with_lambda_one_ignores_a_global_scale_of_depth():
    pred, depth = planted()
    for c in (0.01, 3.0, 250.0):  # one constant per image: depth in metres, centimetres, anything
        assert silog_loss(pred, c * depth, lam=1.0).item() == pytest.approx(silog_loss(pred, depth, lam=1.0).item(), abs=1e-6)
        assert silog_loss(c * pred, depth, lam=1.0).item() == pytest.approx(silog_loss(pred, depth, lam=1.0).item(), abs=1e-6)
    assert silog_loss(pred[1:], depth[1:], lam=1.0).item() == pytest.approx(0.0, abs=1e-6)  # image 2 is depth x e^0.5


def test_silog_with_lambda_half_penalises_half_the_squared_log_scale():
    """Scaling the depth by c shifts every d by k = -log c: the loss grows by (1 - lam) (2 k mean(d) + k^2)."""
    pred, depth = planted()
    lam, c = 0.5, 2.0
    k = -math.log(c)
    means = (sum(D1) / 3, 0.5)
    expected = silog_loss(pred, depth, lam=lam).item() + sum((1 - lam) * (2 * k * m + k**2) for m in means) / 2
    assert silog_loss(pred, c * depth, lam=lam).item() == pytest.approx(expected, rel=1e-5)


def test_silog_masks_holes_and_explicit_masks_without_nan_gradients():
    pred, depth = planted()
    pred = pred.clone().requires_grad_(True)
    silog_loss(pred, depth).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 0, 1, 1] == 0  # nothing flows into the hole
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[1] = False  # image 2 masked out entirely: the mean is over image 1 alone
    image1 = 0.14 / 3 - 0.5 * (0.2 / 3) ** 2
    assert silog_loss(pred.detach(), depth, mask).item() == pytest.approx(image1, rel=1e-5)


def test_silog_of_a_non_positive_prediction_is_nan():
    pred, depth = planted()
    pred[0, 0, 0, 0] = -1.0  # a raw network output read as depth: its log is undefined
    assert math.isnan(silog_loss(pred, depth).item())


# ----- the models --------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_segformer_builds_offline_with_random_weights_at_lraspps_size():
    torch.manual_seed(0)
    vit, cnn = build_model("segformer_b0"), build_model("lraspp")
    assert vit.weights_source == "random" and vit.weights_label == "random init"
    assert count_parameters(vit) == pytest.approx(count_parameters(cnn), rel=0.25)  # within ±25 %
    vit.eval()
    with torch.no_grad():
        for h, w in ((64, 64), (70, 90), (200, 200)):  # smp's Segformer alone refuses sizes not divisible by 32
            out = vit(torch.randn(2, 3, h, w))
            assert out.shape == (2, 1, h, w) and torch.isfinite(out).all()


def test_exp_depth_is_positive_and_keeps_the_models_name():
    net = build_model("lraspp").eval()
    wrapped = ExpDepth(net).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), net(x).exp()) and (wrapped(x) > 0).all()
    assert wrapped.name == "lraspp" and wrapped.encoder is net.encoder


def test_silog_training_runs_through_train_stage_and_loads_back(smoke_profile, nyu_splits, tmp_path):
    from depthkit.course.plugin import describe, load_model
    from depthkit.course.modern import silog_hooks
    from depthkit.train import train_stage

    model, history, run = train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=tmp_path / "silog",
                                      device="cpu", progress=False, max_steps=2, hooks=silog_hooks())
    assert isinstance(model, ExpDepth) and history["train_loss"] and math.isfinite(history["train_loss"][0])
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert state["config"]["plugin"]["loss"] == "depthkit.losses.silog_loss(lam=0.5)"
    assert "silog_loss" in describe(state["config"]["plugin"])
    again = load_model(run / "best.pt")  # the wrapper rebuilt from the record
    x = nyu_splits["test"].images[:2].float() / 255
    from depthkit.evaluate import predict
    with torch.no_grad():
        assert isinstance(again, ExpDepth) and torch.allclose(predict(again, x), predict(model.eval(), x))



def test_the_loss_hook_is_the_loss_that_trains(smoke_profile, nyu_splits, tmp_path):
    """Catches: a training loop that ignores ``Hooks.loss`` (SIlog's runs would silently train on normalized MSE)."""
    from depthkit.train import Hooks, train_stage

    def seven(pred, batch):  # a loss whose value no other loss gives: the history must show it
        return pred.sum() * 0 + 7.0

    _, history, _ = train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=tmp_path / "seven",
                                device="cpu", progress=False, max_steps=2, hooks=Hooks(loss=seven))
    assert history["train_loss"] == pytest.approx([7.0] * len(history["train_loss"]))


# ----- the opt-in pretrained model -----------------------------------------------------------------


def test_pretrained_is_off_by_default_and_touches_nothing(monkeypatch):
    monkeypatch.setattr(modern, "require_pretrained", lambda *a, **k: pytest.fail("probed while switched off"))
    model, line = modern.try_pretrained(False)
    assert model is None and "opt-in" in line and "\n" not in line


def closed_local_port() -> int:
    """A local TCP port nothing listens on: bound, then closed again (a connection to it is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_hub(monkeypatch, tmp_path):
    """An empty Hugging Face cache and a hub address on this machine where nothing answers; no proxy."""
    from huggingface_hub import constants

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = closed_local_port()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return port


def test_pretrained_refuses_an_unreachable_hub_in_seconds_with_one_line(local_hub):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        modern.load_depth_anything()
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert f"127.0.0.1:{local_hub} cannot be reached" in message and modern.DEPTH_ANYTHING in message
    assert "not in the local cache" in message and "\n" not in message
    model, line = modern.try_pretrained(True)  # the notebook's path: a skip, not an exception
    assert model is None and line.startswith("skipped: ") and "cannot be reached" in line



# A Depth Anything V2 checkpoint in the real transformers format and the real Hugging Face cache layout
# (models--<org>--<name>/snapshots/<revision>/ + refs/main), with random weights and a tiny backbone so it
# builds in a second: what a cache copied from Colab looks like. Then 09's path: load, disparity, alignment.
CACHED_RUN = r"""
import sys, numpy as np, torch
from pathlib import Path
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor
from depthkit.course import modern
from depthkit.config import repo_root
from depthkit.data import load_nyu_png_depth, load_rgb

snapshot = Path(sys.argv[1]) / ("models--" + modern.DEPTH_ANYTHING.replace("/", "--")) / "snapshots" / ("0" * 40)
backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=56,
                        patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
torch.manual_seed(0)
DepthAnythingForDepthEstimation(DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32],
                                                    fusion_hidden_size=16, head_hidden_size=8,
                                                    reassemble_hidden_size=32)).save_pretrained(snapshot)
DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=False, ensure_multiple_of=14).save_pretrained(snapshot)
(snapshot.parent.parent / "refs").mkdir()
(snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
model, line = modern.try_pretrained(True)
assert model is not None, line
samples = repo_root() / "tests" / "assets" / "nyu_real_samples"
photo = load_rgb(samples / "rgb" / "rgb_00000.jpg")
disparity = model.disparity(photo)
kinect = torch.from_numpy(np.ascontiguousarray(load_nyu_png_depth(samples / "depth" / "sync_depth_00000.png")))
aligned = modern.align_disparity(disparity, kinect)
assert disparity.shape == photo.shape[:2] and aligned.shape == (1, 1, *photo.shape[:2]), (disparity.shape, aligned.shape)
assert torch.isfinite(aligned).all() and (aligned > 0).all()
print(line)
"""


def test_a_cached_depth_anything_loads_and_aligns_on_07s_photo_without_the_network(tmp_path):
    """Catches: a loader that needs the network when the cache holds the model (Colab's cache copied to a machine
    offline), a processor/model mismatch, a disparity map not at the photo's size, an alignment that fails on it."""
    pytest.importorskip("transformers")
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_ENDPOINT=f"http://127.0.0.1:{closed_local_port()}",
               HF_HUB_OFFLINE="0", TRANSFORMERS_VERBOSITY="error")
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", CACHED_RUN, str(tmp_path / "hub")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith(f"loaded {modern.DEPTH_ANYTHING} (0.1 M parameters)"), done.stdout

def test_pretrained_refuses_at_once_when_the_hub_is_switched_off(local_hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(modern, "_can_reach", lambda *a, **k: pytest.fail("probed although HF_HUB_OFFLINE is set"))
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        modern.require_pretrained()


def test_align_disparity_recovers_depth_from_an_affine_disparity():
    depth = torch.linspace(0.8, 6.0, 64).view(1, 1, 8, 8)
    depth[0, 0, 0, 0] = 0  # a hole: neither fitted nor a problem
    disparity = 3.0 / depth.clamp_min(1e-3) + 0.2  # what a relative model may predict: scale and shift unknown
    aligned = modern.align_disparity(disparity, depth)
    valid = depth > 0
    assert torch.allclose(aligned[valid], depth[valid], rtol=1e-4)


# ----- the "What we got" texts ----------------------------------------------------------------------


def values(mean: float, seed: int, n: int = 60, spread: float = 0.01) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 1, n)
    return mean + spread * (x - x.mean()) / x.std()


def test_silog_and_transformer_texts_say_no_clear_difference_inside_the_band(smoke_profile):
    from depthkit.config import get_profile

    base, demo = values(0.05, 1), get_profile("demo")
    close = base + np.random.default_rng(2).normal(0, 0.01, base.size)  # a different run, the same mean on average
    text = narrative.silog_comparison(close, base, base + 0.02, 0.5, 7, demo)
    assert "no clear difference between SIlog (λ = 0.5) and normalized MSE" in text and "test sampling" in text, text
    text = narrative.transformer_comparison({"SegFormer-B0": base - 0.01, "LR-ASPP": base}, {"SegFormer-B0": 3.7e6, "LR-ASPP": 3.2e6},
                                            base + 0.02, {"SegFormer-B0": 7, "LR-ASPP": 7}, demo)
    assert "**SegFormer-B0** is better" in text and "1.16× as many" in text and "does not separate them" in text, text


def test_the_texts_say_when_a_gap_beyond_test_sampling_is_within_the_seed_spread():
    from depthkit.config import get_profile

    base, demo = values(0.05, 1), get_profile("demo")
    spread = {"models": {"lraspp": {"nyu.normalized_mse": {"values": {"0": 0.040, "1": 0.045, "2": 0.050}}}}}
    text = narrative.transformer_comparison({"SegFormer-B0": base + 0.004, "LR-ASPP": base}, {"SegFormer-B0": 3.7e6, "LR-ASPP": 3.2e6},
                                            base + 0.02, {"SegFormer-B0": 7, "LR-ASPP": 7}, demo, spread)
    assert "**LR-ASPP** is better" in text and "**within** that, and another seed could reverse it" in text, text
    assert "include the seed-to-seed spread" not in text and "one run with one seed" in text, text
