"""The contract every depth network keeps, checked the same way for each model.

In the spirit of segmentation-models-pytorch's shared model tests: one set of checks, run for
every name in :data:`depthkit.models.MODEL_NAMES` (random weights, no network):

* any input size gives ``[B, 1, H, W]`` (U-Net++ pads to multiples of 32 and crops back), and in
  ``eval()`` an image's output does not depend on the rest of the batch;
* after one backward pass every trainable weight has a finite, non-zero gradient;
* ``freeze_encoder`` keeps the encoder's weights fixed through an optimizer step (Adam with weight
  decay over *all* parameters, as ``train.fit`` builds it) while the rest trains, and
  ``unfreeze_encoder`` makes the encoder train again.

U-Net++ with ResNeXt-50 takes ~3.5 s to build and about a second per batch-2 step on 2 CPU
cores (far more when the cores are shared): its checks are marked ``slow``, so
``pytest -m "not slow"`` never builds it here (test_models.py still checks its shapes).
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from depthkit.models import MODEL_NAMES, build_model, encoder_parameters, freeze_encoder, unfreeze_encoder

SIZES = [(64, 64), (70, 90)]  # a multiple of 32, and an awkward size for both H and W
BATCH = 2  # BatchNorm needs more than one value per channel in train mode; 2 keeps U-Net++ cheap
HEAVY = {"unetpp"}  # ResNeXt-50 U-Net++ (48 M parameters): over ~5 s per check on 2 cores


def model_names() -> list:
    """``MODEL_NAMES`` as pytest params, the heavy ones marked ``slow``."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in MODEL_NAMES]


pytestmark = pytest.mark.usefixtures("no_network")  # nothing here may download (tests/conftest.py)


@pytest.fixture(scope="module")
def get_model() -> Callable[[str], nn.Module]:
    """Each model built once per module, on first use (so ``-k lraspp`` never builds U-Net++)."""
    cache: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = build_model(name, pretrained=False)
        model = cache[name]
        unfreeze_encoder(model)
        model.zero_grad(set_to_none=True)
        return model

    return get


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int = 0) -> None:
    """One optimizer step on a random batch, with a loss that weighs every output pixel differently."""
    gen = torch.Generator().manual_seed(seed)
    model.train()
    out = model(torch.randn(BATCH, 3, 64, 64, generator=gen))
    loss = (out * torch.randn(out.shape, generator=gen)).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("name", model_names())
def test_output_is_b1hw_at_any_size_and_per_image(get_model, name):
    model = get_model(name).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for h, w in SIZES:
            x = torch.randn(BATCH, 3, h, w, generator=gen)
            out = model(x)
            assert out.shape == (BATCH, 1, h, w), (name, h, w)
            assert out.dtype == torch.float32 and torch.isfinite(out).all()
            # eval(): one image's prediction must not depend on its batch mates
            assert torch.allclose(model(x[:1]), out[:1], atol=1e-4, rtol=1e-4), (name, h, w)


@pytest.mark.parametrize("name", model_names())
def test_gradients_reach_every_trainable_weight(get_model, name):
    model = get_model(name).train()
    out = model(torch.randn(BATCH, 3, 64, 64))
    (out * torch.randn_like(out)).mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(model.parameters()))
    no_grad = [n for n, p in trainable if p.grad is None]
    assert not no_grad, f"{name}: {len(no_grad)} weights get no gradient, e.g. {no_grad[:3]}"
    dead = [n for n, p in trainable if not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not dead, f"{name}: {len(dead)} weights get a zero or non-finite gradient, e.g. {dead[:3]}"
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", model_names())
def test_freeze_encoder_survives_an_optimizer_step_and_unfreeze_trains_it(get_model, name):
    model = get_model(name)
    encoder = {id(p) for p in encoder_parameters(model)}
    try:
        freeze_encoder(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.02)  # as train.fit
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        train_step(model, optimizer, seed=2)
        moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        encoder_names = {n for n, p in model.named_parameters() if id(p) in encoder}
        assert 0 < len(encoder_names) < len(before)
        assert not moved & encoder_names, f"{name}: frozen encoder weights changed: {sorted(moved & encoder_names)[:3]}"
        assert moved == set(before) - encoder_names, f"{name}: decoder weights did not train"

        unfreeze_encoder(model)
        assert all(p.requires_grad for p in model.parameters())
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        train_step(model, optimizer, seed=3)
        stuck = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
        assert not stuck, f"{name}: after unfreeze_encoder these weights did not train: {stuck[:3]}"
    finally:
        unfreeze_encoder(model)
        model.zero_grad(set_to_none=True)
