"""The depth networks, their input normalization, and pretrained-weight handling.

Every model built here takes ``[B, 3, H, W]`` ImageNet-normalized images (see
:func:`normalize_images`) and returns ``[B, 1, H, W]``: one depth-like map, larger = farther,
for any ``H, W >= 32``.

* ``"unetpp"``       - U-Net++ with a ResNeXt-50 (32x4d) encoder, the report's model I (~48.5 M).
* ``"lraspp"``       - LR-ASPP MobileNetV3-Large, its 21 output maps combined by a 1x1 conv (~3.2 M).
* ``"unetpp_mnv2"``  - U-Net++ with a MobileNetV2 encoder and a slim decoder, sized like LR-ASPP
  (~3.25 M), to compare the two architectures at the same number of parameters.
* ``"segformer_b0"`` - SegFormer-B0 (a hierarchical vision transformer, MiT-B0, with an all-MLP
  decoder; ~3.7 M), a transformer at LR-ASPP's size (notebook 09).

:class:`ExpDepth` wraps any of them for a loss on log depth (:func:`depthkit.losses.silog_loss`).

``build_model(name, pretrained=...)``:

* ``False``  - random initialisation; touches no network.
* ``True``   - ImageNet (U-Net++ encoders) or COCO (LR-ASPP) weights, from the local cache or the
  internet. Offline and not cached it fails within seconds with :class:`WeightsUnavailableError`,
  whose message says how to get the files.
* ``"auto"`` - like ``True`` but warns and falls back to random initialisation instead of failing.

``model.weights_source`` records what happened: ``"random"``, ``"imagenet"``, ``"coco"`` or
``"random (fallback: <reason>)"``; ``model.weights_label`` says it for a reader
(:func:`weights_label`): ``"pretrained: ImageNet (smp-hub/resnext50_32x4d.imagenet)"``,
``"pretrained: COCO-VOC (torchvision LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1)"``,
``"random init"``. :func:`require_weights` checks, before any work, that ``pretrained=True`` can be
honoured (cached, or the host answers), so a long run stops at its start and not after the data.
"""
from __future__ import annotations

import contextlib
import os
import socket
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from depthkit.data.network import can_reach, with_retries

MODEL_NAMES: tuple[str, ...] = ("unetpp", "lraspp", "unetpp_mnv2", "segformer_b0")

# The statistics of ImageNet that every encoder here was (or would be) pretrained with.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

PROBE_TIMEOUT_S = 3.0  # how long we wait for a weight host before declaring ourselves offline
NETWORK_TIMEOUT_S = 30.0  # a weight download that receives nothing for this long fails (then is retried)
NETWORK_ATTEMPTS = 2  # tries per weight download before falling back or failing
RETRY_PAUSE_S = 2.0  # pause between two tries


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither in the local cache nor downloadable right now."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short phrase for ``model.weights_source``


# --------------------------------------------------------------------------------------------
# Input normalization: the one place that knows the ImageNet statistics.
# --------------------------------------------------------------------------------------------


def normalize_images(images: torch.Tensor, check_range: bool = True) -> torch.Tensor:
    """Turn uint8 ``[B, 3, H, W]`` (0..255) or float (0..1) images into ImageNet-normalized floats.

    ``check_range=False`` skips the range check of float images (it reads a value back from the
    tensor): the training loop's own augmented batches are in [0, 1] by construction.
    """
    if images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(
            f"images must be channels-first [..., 3, H, W], got shape {tuple(images.shape)} "
            "(for [B, H, W, 3] arrays use images.permute(0, 3, 1, 2))"
        )
    if images.dtype == torch.uint8:
        x = images.float() / 255.0
    elif images.is_floating_point():
        # the range check reads a value back from the device: skip it on GPUs, where it would stall
        if check_range and images.device.type == "cpu" and images.numel() and float(images.max()) > 1.5:
            raise ValueError(
                f"float images must lie in [0, 1], got a maximum of {float(images.max()):.1f}: "
                "pass uint8 images or divide by 255 first"
            )
        x = images
    else:
        raise ValueError(f"images must be uint8 or float, got {images.dtype}")
    mean, std = imagenet_stats(x.device, x.dtype)
    return (x - mean) / std


def denormalize_images(images: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize_images`: ImageNet-normalized floats back to [0, 1] (for plotting)."""
    mean, std = imagenet_stats(images.device, images.dtype)
    return (images * std + mean).clamp(0.0, 1.0)


_STATS: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def imagenet_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std ``[3, 1, 1]`` on ``device`` in ``dtype``, made once per pair.

    They are filled on the device from Python numbers (``torch.full``), never copied from host
    memory: a host-to-GPU copy of a fresh tensor waits for the GPU, and ran twice per step before.
    """
    key = (torch.device(device), dtype)
    if key not in _STATS:
        with torch.inference_mode(False):  # usable by autograd even if first asked for under inference_mode
            _STATS[key] = tuple(torch.stack([torch.full((), v, dtype=dtype, device=device) for v in values]).view(3, 1, 1)
                                for values in (IMAGENET_MEAN, IMAGENET_STD))
    return _STATS[key]


# --------------------------------------------------------------------------------------------
# The model wrappers.
# --------------------------------------------------------------------------------------------


class PadToMultiple(nn.Module):
    """Reflect-pad the input to a multiple of ``multiple``, run ``net``, crop the output back.

    smp's U-Net++ halves the resolution five times and refuses sizes that are not divisible by
    32 (200 x 200 fails). This wrapper hides the constraint: 200 x 200 is padded to 224 x 224
    (12 mirrored pixels on each side), and the 224 x 224 prediction is cropped to 200 x 200.
    """

    def __init__(self, net: nn.Module, multiple: int = 32) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple

    @property
    def encoder(self) -> nn.Module:
        """The wrapped network's encoder (for freezing)."""
        return self.net.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad, predict, crop: ``[B, C, H, W]`` in, ``[B, 1, H, W]`` out."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        top, left = pad_h // 2, pad_w // 2
        if pad_h or pad_w:
            x = F.pad(x, (left, pad_w - left, top, pad_h - top), mode="reflect")
        out = self.net(x)
        return out[..., top : top + h, left : left + w]


class LRASPPDepth(nn.Module):
    """torchvision's LR-ASPP with its 21 output maps mixed into one depth map by a 1x1 conv.

    The 21 maps are the 21 Pascal-VOC classes the COCO weights were trained for; the report
    tried several ways to turn them into one map and a learned 1x1 convolution worked best.
    """

    def __init__(self, lraspp: nn.Module, in_maps: int = 21) -> None:
        super().__init__()
        self.lraspp = lraspp
        self.combine = nn.Conv2d(in_maps, 1, kernel_size=1)

    @property
    def encoder(self) -> nn.Module:
        """The MobileNetV3-Large backbone (for freezing)."""
        return self.lraspp.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in, ``[B, 1, H, W]`` out (LR-ASPP upsamples to the input size itself)."""
        return self.combine(self.lraspp(x)["out"])


class ExpDepth(nn.Module):
    """A network whose last layer is read as **log depth**: returns ``exp(net(x))``, depth in metres (> 0).

    For :func:`depthkit.losses.silog_loss` (Eigen et al.), which compares log depths: the wrapped
    network predicts ``log d`` and this module exponentiates it, so the output keeps depthkit's
    convention (a depth-like map, larger = farther, here with a unit) and every metric reads it as
    it reads any model's. ``name``, ``weights_source`` and ``weights_label`` are the wrapped model's.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        for attr in ("name", "weights_source", "weights_label"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    @property
    def encoder(self) -> nn.Module:
        """The wrapped network's encoder (for freezing)."""
        return encoder_module(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in, depth ``exp(log d)`` ``[B, 1, H, W]`` out."""
        return self.net(x).exp()


# --------------------------------------------------------------------------------------------
# Is a weight host reachable? Are the weights cached? (So that offline fails in seconds.)
# --------------------------------------------------------------------------------------------


def _can_reach(host: str, port: int = 443, timeout: float | None = None) -> bool:
    """True when a weight host answers within ``timeout`` s (default :data:`PROBE_TIMEOUT_S`): :func:`depthkit.data.network.can_reach`."""
    return can_reach(host, port, PROBE_TIMEOUT_S if timeout is None else timeout)


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Inside the block, sockets opened without a timeout (urllib in torch.hub) time out after ``seconds``."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _download(load: Callable[[], nn.Module], what: str) -> nn.Module:
    """Run a weight-downloading ``load()`` with a read timeout, at most :data:`NETWORK_ATTEMPTS` times
    (:func:`depthkit.data.network.with_retries`, the dataset downloads' retry policy too)."""
    def timed() -> nn.Module:
        with _socket_timeout(NETWORK_TIMEOUT_S):
            return load()

    return with_retries(timed, what, attempts=NETWORK_ATTEMPTS, pause=RETRY_PAUSE_S)


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    """Inside the block, huggingface_hub reads its local cache only: no requests, no retries."""
    try:
        from huggingface_hub import constants
    except ImportError:  # older smp versions download from plain URLs instead
        yield
        return
    old_const, old_env = constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _torch_hub_file(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` caches ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _smp_weights_location(encoder: str) -> tuple[str, bool, str]:
    """``(host, cached, where)`` for smp's ImageNet weights of ``encoder``."""
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[encoder]["pretrained_settings"]["imagenet"]
    if "url" in settings:  # smp < 0.5: a plain URL cached by torch.hub
        path = _torch_hub_file(settings["url"])
        return urlparse(settings["url"]).hostname or "", path.exists(), str(path)
    from huggingface_hub import constants, try_to_load_from_cache  # smp >= 0.5: the HF hub

    repo, rev = settings["repo_id"], settings.get("revision")
    cached = all(
        isinstance(try_to_load_from_cache(repo, name, revision=rev), str)
        for name in ("config.json", "model.safetensors")
    )
    where = str(Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}")
    return urlparse(constants.ENDPOINT).hostname or "huggingface.co", cached, where


_SMP_ENCODERS = {"unetpp": "resnext50_32x4d", "unetpp_mnv2": "mobilenet_v2", "segformer_b0": "mit_b0"}  # model name -> smp encoder


def _lraspp_weights():
    """torchvision's default LR-ASPP weights (COCO images, the 21 Pascal-VOC classes)."""
    from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

    return LRASPP_MobileNet_V3_Large_Weights.DEFAULT


def _weights_location(name: str) -> tuple[str, str, bool, str]:
    """``(what, host, cached, where)`` of model ``name``'s pretrained weights: no download, no probe."""
    if name == "lraspp":
        weights = _lraspp_weights()
        path = _torch_hub_file(weights.url)
        return ("COCO weights for LR-ASPP MobileNetV3-Large", urlparse(weights.url).hostname or "download.pytorch.org",
                path.exists(), str(path))
    encoder = _SMP_ENCODERS[name]
    host, cached, where = _smp_weights_location(encoder)
    return f"ImageNet weights for the {encoder} encoder", host, cached, where


def require_weights(names: Iterable[str], pretrained: bool | str) -> None:
    """Before any work: raise :class:`WeightsUnavailableError` (one line) when ``pretrained=True`` cannot be honoured.

    Weights in the local cache pass without a probe; otherwise the host must answer within
    :data:`PROBE_TIMEOUT_S`. ``False`` and ``"auto"`` never stop a run, so they pass at once.
    """
    if pretrained is not True:
        return
    reachable: dict[str, bool] = {}
    for name in names:
        what, host, cached, where = _weights_location(name)
        if not cached and not reachable.setdefault(host, _can_reach(host)):
            raise _unavailable(what, host, where, name)


def pretrained_label(name: str) -> str:
    """What ``build_model(name, pretrained=True)`` loads, for a reader: data set and the exact weights."""
    if name == "lraspp":
        return f"pretrained: COCO-VOC (torchvision LRASPP_MobileNet_V3_Large_Weights.{_lraspp_weights().name})"
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[_SMP_ENCODERS[name]]["pretrained_settings"]["imagenet"]
    part = "SegFormer encoder" if name == "segformer_b0" else "U-Net++ encoder"
    return f"pretrained: ImageNet ({settings.get('repo_id') or 'smp ' + _SMP_ENCODERS[name]}, {part})"


RANDOM_INIT = "random init"
UNKNOWN_WEIGHTS = "unknown (not recorded: written before depthkit recorded the weights' source)"


def weights_label(source: str | None, name: str | None = None) -> str:
    """A ``weights_source`` (``"random"``, ``"imagenet"``, ``"coco"``, ``"random (fallback: ...)"``,
    ``"checkpoint PATH"``; None when not recorded) as results.md and compare print it."""
    if not source or source == "unknown":
        return UNKNOWN_WEIGHTS
    if source == "random":
        return RANDOM_INIT
    if source.startswith("random (fallback: "):
        return f"{RANDOM_INIT} (the pretrained weights could not be loaded: {source[len('random (fallback: '):-1]})"
    if source in ("imagenet", "coco"):
        return pretrained_label(name) if name in _BUILDERS else f"pretrained: {'ImageNet' if source == 'imagenet' else 'COCO-VOC'}"
    if source.startswith("checkpoint "):
        return f"from {source}"
    return source


def weights_kind(label: str | None) -> str:
    """``"pretrained"``, ``"random init"`` or ``"unknown"`` (also for weights from a checkpoint of unknown origin)."""
    if label and label.startswith("pretrained"):
        return "pretrained"
    if label and label.startswith(RANDOM_INIT):
        return RANDOM_INIT
    return "unknown"


def _unavailable(what: str, host: str, where: str, model: str) -> WeightsUnavailableError:
    """The error for weights that are neither cached nor reachable: one line, with the cache path and both ways out."""
    message = (
        f"{what} are not in the local cache ({where}) and {host} cannot be reached (offline?): "
        f"run once with internet access to download them (build_model({model!r}, pretrained=True) once, or any "
        f"command with --pretrained yes, e.g. on Colab; or copy {where} here from a machine that has them), "
        f"or choose random initialisation knowingly with --pretrained no (pretrained=False in Python; "
        f"the results then say 'random init')."
    )
    return WeightsUnavailableError(message, reason=f"{host} unreachable and weights not cached")


def _guarded(load: Callable[[], nn.Module], what: str, host: str, where: str, model: str) -> nn.Module:
    """Run a weight-loading ``load()``; turn download errors into :class:`WeightsUnavailableError`."""
    try:
        return _download(load, what)
    except Exception as err:  # URLError, HF hub errors, timeouts, truncated files: all mean "no weights"
        message = (
            f"could not load {what} ({type(err).__name__}: {err}). They belong under {where}: "
            f"run build_model({model!r}, pretrained=True) once with internet access, "
            f"or choose random initialisation knowingly with --pretrained no (pretrained=False in Python)."
        )
        raise WeightsUnavailableError(message, reason=f"{type(err).__name__} while loading") from err


# --------------------------------------------------------------------------------------------
# Builders: one per model name.
# --------------------------------------------------------------------------------------------


def _smp_unetpp(encoder: str, pretrained: bool, model: str, **kwargs) -> nn.Module:
    """smp U-Net++ with one output channel, padded to multiples of 32; ImageNet encoder if asked."""
    import segmentation_models_pytorch as smp

    return _smp_model(smp.UnetPlusPlus, encoder, pretrained, model, **kwargs)


def _smp_model(architecture: Callable[..., nn.Module], encoder: str, pretrained: bool, model: str,
               **kwargs) -> nn.Module:
    """An smp ``architecture`` with one output channel, padded to multiples of 32; ImageNet encoder if asked."""
    def make(weights: str | None) -> nn.Module:
        return architecture(encoder, encoder_weights=weights, classes=1, **kwargs)

    if not pretrained:
        return PadToMultiple(make(None))
    what, host, cached, where = _weights_location(model)
    if not cached and not _can_reach(host):
        raise _unavailable(what, host, where, model)
    # Cached: read the cache without asking the hub at all (offline, the hub retries for ~24 s).
    with _hf_offline() if cached else contextlib.nullcontext():
        return PadToMultiple(_guarded(lambda: make("imagenet"), what, host, where, model))


def build_unetpp(pretrained: bool = False) -> nn.Module:
    """U-Net++ with a ResNeXt-50 (32x4d) encoder, one output map: the report's model I (~48.5 M)."""
    return _smp_unetpp("resnext50_32x4d", pretrained, "unetpp")


def build_unetpp_mnv2(pretrained: bool = False) -> nn.Module:
    """U-Net++ with a MobileNetV2 encoder and a slim decoder, LR-ASPP's size (~3.25 M parameters).

    Why this model: the report found U-Net++ (48 M parameters) far better than LR-ASPP (3.2 M)
    and asked whether that is the architecture or simply the size. This model keeps U-Net++'s
    nested skip-connection decoder and shrinks everything else until it has as many parameters
    as LR-ASPP (3.25 M vs 3.22 M, within 1 %):

    * encoder: MobileNetV2 (2.2 M, ImageNet weights available in smp), the light sibling of
      LR-ASPP's MobileNetV3 - depthwise-separable convolutions, the same design family;
    * decoder: channels (64, 32, 16, 16, 8) instead of smp's default (256, 128, 64, 32, 16),
      which brings the decoder from 4.6 M down to 1.0 M.

    So ``unetpp`` vs ``unetpp_mnv2`` varies the size at a fixed architecture, and ``lraspp`` vs
    ``unetpp_mnv2`` varies the architecture at a fixed size. (A U-Net++ on LR-ASPP's exact
    MobileNetV3 encoder cannot get that small: its 960-channel last stage alone leaves a
    16-channel decoder at 3.3 M. smp's Segformer-B0 has 3.7 M and a different encoder.)
    """
    return _smp_unetpp("mobilenet_v2", pretrained, "unetpp_mnv2", decoder_channels=(64, 32, 16, 16, 8))


def build_segformer_b0(pretrained: bool = False) -> nn.Module:
    """SegFormer-B0 (smp ``Segformer`` on the MiT-B0 encoder), one output map: a transformer at LR-ASPP's size (~3.7 M).

    Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
    NeurIPS 2021: a hierarchical vision transformer (Mix Transformer, four stages at 1/4 to 1/32 of
    the input, efficient self-attention with reduced keys and values) and an all-MLP decoder (256
    channels, smp's default and the paper's B0), output at 1/4 and upsampled to the input. 3.71 M
    parameters, 15 % more than LR-ASPP's 3.22 M. Chosen over smp's DPT, measured at the demo size
    (64 x 64, batch 8, 2 CPU cores): DPT on timm's smallest ViT (ViT-Ti/16) has 34.9 M parameters with
    its default decoder (7.1 M with a slimmed one, its encoder alone 5.7 M), and its 16-pixel patches
    leave a 4 x 4 token grid at 64 x 64. smp's Segformer needs sizes divisible by 32: padded as U-Net++ is.
    """
    import segmentation_models_pytorch as smp

    return _smp_model(smp.Segformer, "mit_b0", pretrained, "segformer_b0")


def build_lraspp(pretrained: bool = False) -> nn.Module:
    """torchvision LR-ASPP MobileNetV3-Large, 21 maps mixed by a 1x1 conv: model II (~3.2 M)."""
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    if not pretrained:
        # weights_backbone=None too: otherwise torchvision downloads ImageNet backbone weights.
        return LRASPPDepth(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21))
    weights = _lraspp_weights()
    what, host, cached, where = _weights_location("lraspp")
    if not cached and not _can_reach(host):
        raise _unavailable(what, host, where, "lraspp")
    net = _guarded(lambda: lraspp_mobilenet_v3_large(weights=weights), what, host, where, "lraspp")
    return LRASPPDepth(net, in_maps=len(weights.meta["categories"]))


_BUILDERS: dict[str, Callable[[bool], nn.Module]] = {
    "unetpp": build_unetpp,
    "lraspp": build_lraspp,
    "unetpp_mnv2": build_unetpp_mnv2,
    "segformer_b0": build_segformer_b0,
}
_PRETRAINED_SOURCE = {"unetpp": "imagenet", "lraspp": "coco", "unetpp_mnv2": "imagenet", "segformer_b0": "imagenet"}


def build_model(name: str, pretrained: bool | str = False) -> nn.Module:
    """Build model ``name`` (one of :data:`MODEL_NAMES`); sets ``model.name``, ``model.weights_source`` and
    ``model.weights_label`` (what was actually loaded, :func:`weights_label`)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
    if pretrained not in (False, True, "auto"):
        raise ValueError(f"pretrained must be False, True or 'auto', got {pretrained!r}")
    if not pretrained:
        model, source = _BUILDERS[name](False), "random"
    else:
        try:
            model, source = _BUILDERS[name](True), _PRETRAINED_SOURCE[name]
        except WeightsUnavailableError as err:
            if pretrained is True:
                raise
            warnings.warn(f"PRETRAINED WEIGHTS NOT LOADED: {err} Falling back to random initialisation: "
                          f"expect lower accuracy than with pretrained weights.", stacklevel=2)
            model, source = _BUILDERS[name](False), f"random (fallback: {err.reason})"
    set_batchnorm_momentum(model, BN_MOMENTUM)
    model.name = name
    model.weights_source = source
    model.weights_label = weights_label(source, name)
    return model


BN_MOMENTUM = 0.1


def set_batchnorm_momentum(model: nn.Module, momentum: float = BN_MOMENTUM) -> None:
    """Give every BatchNorm layer the same running-statistics momentum.

    torchvision builds MobileNetV3 with momentum 0.01, tuned for ImageNet's long schedules: after
    a few hundred steps from scratch its running statistics still lag far behind the batch
    statistics, and the model scores much worse in ``eval()`` than in ``train()``. PyTorch's
    default, 0.1, is what smp's encoders already use.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


# --------------------------------------------------------------------------------------------
# Encoder freezing (the report's warm-up: 2 epochs with a frozen encoder) and counting.
# --------------------------------------------------------------------------------------------


def encoder_module(model: nn.Module) -> nn.Module:
    """The encoder of a model from :func:`build_model` (U-Net++: its encoder; LR-ASPP: its backbone)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise ValueError(f"{type(model).__name__} has no encoder: build it with depthkit.models.build_model")
    return encoder


def encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The encoder's parameters, e.g. for a smaller learning rate or for freezing."""
    return list(encoder_module(model).parameters())


def freeze_encoder(model: nn.Module) -> None:
    """Stop gradients into the encoder (``requires_grad = False``); the decoder keeps training.

    Only ``requires_grad`` changes: in ``model.train()`` the encoder's BatchNorm layers still
    update their running statistics. (Call ``encoder_module(model).eval()`` after ``model.train()``
    if you want those frozen too; the report did not.)
    """
    for p in encoder_parameters(model):
        p.requires_grad_(False)


def unfreeze_encoder(model: nn.Module) -> None:
    """Let gradients into the encoder again (``requires_grad = True``)."""
    for p in encoder_parameters(model):
        p.requires_grad_(True)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
