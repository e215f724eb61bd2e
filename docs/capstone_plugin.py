"""A capstone plugin: your idea in a file of your own, without editing depthkit.

Copy this file, change what you want, and train with it (notebook 06, "Capstone"):

    cp docs/capstone_plugin.py mine.py
    DEPTHKIT_PROFILE=demo python -m depthkit train --model lraspp --stage nyu --plugin mine.py --out runs/capstone/lraspp_nyu
    DEPTHKIT_PROFILE=demo python -m depthkit evaluate runs/capstone/lraspp_nyu/best.pt --data nyu --compare

Define any of the four functions below; delete the ones you do not change (each one left out keeps
depthkit's own). The checkpoint records this file (name, SHA-256, which functions, its text), and the
capstone's verdict names them. This example changes two things at once, which is a poor experiment:
change one thing per run, so the verdict tells you what it did.
"""
import torch

from depthkit import losses
from depthkit.data.loader import augment as depthkit_augment


def augment(batch: dict, generator) -> dict:
    """depthkit's flip and colour jitter, then a little Gaussian noise on the images (values stay in [0, 1])."""
    out = depthkit_augment(batch, generator)
    images = out["images"]
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    out["images"] = (images + 0.02 * noise).clamp(0, 1)
    return out


def extra_loss(pred: torch.Tensor, batch: dict) -> torch.Tensor:
    """Half of MiDaS's scale-and-shift-invariant loss beside the report's loss, on NYU batches (DIW has no depth maps)."""
    if "depths" not in batch:
        return pred.sum() * 0.0  # nothing to add; keeps the graph
    return 0.5 * losses.ssi_loss(pred, batch["depths"], batch["depths"] > 0)


# def learning_rate(base: float, epoch: int, total: int) -> float:
#     """One epoch of warm-up at a tenth of the rate, then the rate itself."""
#     return base * (0.1 if epoch == 0 else 1.0)


# def model(net: torch.nn.Module) -> torch.nn.Module:
#     """Another head, e.g. for LR-ASPP: a 3x3 convolution instead of the 1x1 that combines its 21 maps."""
#     net.combine = torch.nn.Conv2d(net.combine.in_channels, 1, kernel_size=3, padding=1)
#     return net
