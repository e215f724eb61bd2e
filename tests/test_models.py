"""Models: shapes at awkward sizes, parameter counts, freezing, input normalization, and the
pretrained-weight paths (offline failure, fallback, cache) - all without touching the network."""
from __future__ import annotations

import json
import os
import time

import pytest
import torch
from torch import nn

from depthkit import models
from depthkit.models import (
    MODEL_NAMES,
    PadToMultiple,
    WeightsUnavailableError,
    build_model,
    count_parameters,
    encoder_parameters,
    freeze_encoder,
    normalize_images,
    unfreeze_encoder,
)

SIZES = [(200, 200), (224, 224), (97, 131)]
EXPECTED_PARAMS = {"unetpp": 48.46e6, "lraspp": 3.22e6, "unetpp_mnv2": 3.25e6, "segformer_b0": 3.71e6}


pytestmark = pytest.mark.usefixtures("no_network")  # nothing here may download (tests/conftest.py)


@pytest.fixture(scope="module")
def built() -> dict[str, nn.Module]:
    """Each model once, random weights (U-Net++ takes a few seconds to build)."""
    torch.manual_seed(0)
    return {name: build_model(name) for name in MODEL_NAMES}


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    """Empty torch-hub and Hugging Face caches, so no weights on this machine can be found."""
    from huggingface_hub import constants

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    return tmp_path


def offline(monkeypatch) -> list[str]:
    """Make every weight host look unreachable; returns the hosts that were probed."""
    probed: list[str] = []
    monkeypatch.setattr(models, "_can_reach", lambda host, *a, **k: probed.append(host) or False)
    return probed


# ----- forward shapes and sizes -------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shape_at_any_size(built, name):
    model = built[name].eval()
    with torch.no_grad():
        for h, w in SIZES:
            out = model(torch.randn(1, 3, h, w))
            assert out.shape == (1, 1, h, w), (name, h, w)
            assert torch.isfinite(out).all()


def test_model_attributes(built):
    for name, model in built.items():
        assert model.name == name and model.weights_source == "random"


def test_pad_to_multiple_crops_back_the_input_region():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return x[:, :1]

    x = torch.randn(2, 3, 97, 131)
    out = PadToMultiple(Spy())(x)
    assert seen == [(128, 160)]
    assert torch.equal(out, x[:, :1])  # the crop returns exactly the original pixels
    assert PadToMultiple(Spy())(torch.randn(1, 3, 64, 32)).shape == (1, 1, 64, 32)


def test_unetpp_backward_at_200(built):
    model = built["unetpp_mnv2"].train()
    out = model(torch.randn(2, 3, 200, 200))
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.zero_grad(set_to_none=True)


# ----- parameter counts and freezing ---------------------------------------------------------


def test_parameter_counts(built):
    for name, expected in EXPECTED_PARAMS.items():
        assert count_parameters(built[name]) == pytest.approx(expected, rel=0.01), name
    # the third model is LR-ASPP's size: within 2 %
    assert count_parameters(built["unetpp_mnv2"]) == pytest.approx(count_parameters(built["lraspp"]), rel=0.02)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_freeze_and_unfreeze_touch_exactly_the_encoder(built, name):
    model = built[name]
    encoder_ids = {id(p) for p in encoder_parameters(model)}
    assert 0 < len(encoder_ids) < len(list(model.parameters()))
    try:
        freeze_encoder(model)
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        assert frozen == encoder_ids
        n_encoder = sum(p.numel() for p in encoder_parameters(model))
        assert count_parameters(model, trainable_only=True) == count_parameters(model) - n_encoder
        unfreeze_encoder(model)
        assert all(p.requires_grad for p in model.parameters())
    finally:
        unfreeze_encoder(model)


def test_frozen_encoder_gets_no_gradient():
    model = build_model("lraspp")
    freeze_encoder(model)
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    assert all(p.grad is None for p in encoder_parameters(model))
    assert model.combine.weight.grad is not None


def test_encoder_is_the_expected_module(built):
    assert models.encoder_module(built["unetpp"]) is built["unetpp"].net.encoder
    assert models.encoder_module(built["lraspp"]) is built["lraspp"].lraspp.backbone
    assert count_parameters(models.encoder_module(built["unetpp"])) == pytest.approx(23.0e6, rel=0.01)
    with pytest.raises(ValueError, match="no encoder"):
        models.encoder_module(nn.Linear(2, 2))


# ----- input normalization -------------------------------------------------------------------


def test_normalize_images_uint8_and_float_agree():
    images = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    a, b = normalize_images(images), normalize_images(images.float() / 255)
    assert a.dtype == torch.float32 and torch.allclose(a, b)
    white = normalize_images(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten()
    assert white.tolist() == pytest.approx([(1 - m) / s for m, s in zip(models.IMAGENET_MEAN, models.IMAGENET_STD)])
    assert torch.allclose(models.denormalize_images(b), images.float() / 255, atol=1e-6)


def test_normalize_images_rejects_wrong_layouts():
    with pytest.raises(ValueError, match="channels-first"):
        normalize_images(torch.zeros(2, 8, 8, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        normalize_images(torch.full((1, 3, 2, 2), 200.0))


# ----- build_model arguments and pretrained weights ------------------------------------------


def test_build_model_rejects_unknown_arguments():
    with pytest.raises(ValueError, match="unknown model 'unet'"):
        build_model("unet")
    with pytest.raises(ValueError, match="pretrained"):
        build_model("lraspp", pretrained="yes")


def test_can_reach_is_false_fast_without_network():
    start = time.perf_counter()
    assert models._can_reach("huggingface.co", timeout=2.0) is False
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_pretrained_true_fails_fast_offline(monkeypatch, empty_caches, name):
    probed = offline(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        build_model(name, pretrained=True)
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert "cannot be reached" in message and "pretrained=True) once" in message
    assert str(empty_caches) in message  # names where the file should go
    assert probed == ["download.pytorch.org" if name == "lraspp" else "huggingface.co"]


@pytest.mark.parametrize("name", ["lraspp", "unetpp_mnv2"])
def test_pretrained_auto_falls_back_with_a_warning(monkeypatch, empty_caches, name):
    offline(monkeypatch)
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="Falling back to random initialisation"):
        model = build_model(name, pretrained="auto")
    assert time.perf_counter() - start < 5.0
    assert model.weights_source.startswith("random (fallback: ") and "unreachable" in model.weights_source
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_download_errors_become_weights_unavailable(monkeypatch, empty_caches):
    # The host "answers" the probe, but the download itself fails (here: sockets are disabled).
    monkeypatch.setattr(models, "_can_reach", lambda *a, **k: True)
    with pytest.raises(WeightsUnavailableError, match="could not load COCO weights"):
        build_model("lraspp", pretrained=True)
    with pytest.warns(UserWarning):
        model = build_model("lraspp", pretrained="auto")
    assert model.weights_source.startswith("random (fallback: ")


def test_cached_torchvision_weights_load_offline(monkeypatch, empty_caches):
    from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

    torch.manual_seed(1)
    reference = build_model("lraspp").lraspp.state_dict()
    path = models._torch_hub_file(LRASPP_MobileNet_V3_Large_Weights.DEFAULT.url)
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    monkeypatch.setattr(models, "_can_reach", lambda *a, **k: pytest.fail("probed although cached"))
    model = build_model("lraspp", pretrained=True)
    assert model.weights_source == "coco"
    loaded = model.lraspp.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())


def test_cached_hf_weights_load_offline(monkeypatch, empty_caches):
    from huggingface_hub import constants
    from safetensors.torch import save_file
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders["mobilenet_v2"]["pretrained_settings"]["imagenet"]
    if "repo_id" not in settings:
        pytest.skip("this smp version downloads encoder weights from URLs, not the HF hub")
    torch.manual_seed(2)
    reference = {k: v.contiguous() for k, v in build_model("unetpp_mnv2").net.encoder.state_dict().items()}
    snapshot = (
        empty_caches / "hf_hub" / f"models--{settings['repo_id'].replace('/', '--')}" / "snapshots" / settings["revision"]
    )
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"mean": list(models.IMAGENET_MEAN), "std": list(models.IMAGENET_STD)}))
    save_file(reference, str(snapshot / "model.safetensors"))
    monkeypatch.setattr(models, "_can_reach", lambda *a, **k: pytest.fail("probed although cached"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = constants.HF_HUB_OFFLINE
    model = build_model("unetpp_mnv2", pretrained=True)
    assert model.weights_source == "imagenet"
    loaded = model.net.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())
    # the hub's offline switch was only flipped while loading
    assert constants.HF_HUB_OFFLINE == before and "HF_HUB_OFFLINE" not in os.environ
