"""Small things shared by several test files: tensors for the loss and metric tests, archives for the download tests."""
from __future__ import annotations

import io
import tarfile

import torch

# One 2 x 2 "prediction" [1, 1, 2, 2]: value 0 at (0, 0), 1 at (0, 1), 2 at (1, 0), 3 at (1, 1).
GRID = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])


def t(rows) -> torch.Tensor:
    """A [1, 1, H, W] tensor from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A .tar.gz archive holding ``members`` (name -> bytes), as real bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()
