"""Batches from the caches: a split is a :class:`DepthData`, read a batch at a time, augmented.

A split never holds its images in memory unless it is small: :class:`Rows` stands for rows of a
memory-mapped cache array and reads only the rows it is indexed with. :func:`batches` turns a split
into dicts of tensors on the training device:

* data already on the device (NYU, or any split that fits the GPU) is sliced in place, with batch
  positions drawn on the device (no index crosses from the host per step);
* otherwise a ``torch.utils.data.DataLoader`` reads whole batches (one sorted read from the
  memory map per batch), optionally in worker processes, into pinned memory, and the batch is
  copied with ``non_blocking=True`` while the next one is being read.

Every tensor follows the conventions of :mod:`depthkit.data`: images uint8 ``[B, 3, H, W]``,
depths ``[B, 1, H, W]`` metres (0 = invalid), pairs ``[B, P, 4]`` 0-based ``(ya, xa, yb, xb)``,
relation ``[B, P]`` (+1: A farther).
"""
from __future__ import annotations

import hashlib
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

KEYS = ("images", "depths", "pairs", "relation")
CHUNK_BYTES = 64 * 2**20  # a split sent to a device travels in chunks of this size: host memory holds one chunk


def device_generator(device: torch.device | str, seed: int) -> torch.Generator | None:
    """A random generator on ``device`` seeded with ``seed`` (on the CPU the same stream as ``torch.Generator()``).

    None for a device without generators (``meta``): its draws then come from the default stream.
    """
    try:
        return torch.Generator(device=torch.device(device)).manual_seed(seed)
    except RuntimeError:
        return None


def _as_rows(index, n: int) -> np.ndarray | int:
    """Turn an int, slice, list, array or tensor index into positions in ``range(n)``."""
    if isinstance(index, Tensor):
        index = index.cpu().numpy()
    if isinstance(index, slice):
        return np.arange(n)[index]
    if isinstance(index, (int, np.integer)):
        return int(index)
    index = np.asarray(index)
    if index.dtype == bool:
        return np.flatnonzero(index)
    return index.astype(np.int64)


class Rows:
    """Rows of an on-disk cache array (images ``(N, H, W, 3)`` or depths ``(N, H, W)``), read when indexed.

    Indexing returns tensors in depthkit's layout: ``[k, 3, H, W]`` uint8 images or ``[k, 1, H, W]``
    depths. Only the requested rows are read (one sorted read, then the requested order restored).
    Pickling (to a DataLoader worker) sends the file name and offset, never the data.
    """

    def __init__(self, array: np.ndarray, rows: Sequence[int] | np.ndarray | None = None):
        self.array = array
        self.rows = np.arange(len(array), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        """Shape of the whole column as a tensor would have it."""
        _, h, w = self.array.shape[:3]
        return torch.Size((len(self.rows), 3 if self.array.ndim == 4 else 1, h, w))

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of the rows."""
        return torch.from_numpy(np.zeros(0, self.array.dtype)).dtype

    @property
    def device(self) -> torch.device:
        """Rows live on disk and arrive on the CPU."""
        return torch.device("cpu")

    @property
    def nbytes(self) -> int:
        """Bytes the column would take in memory."""
        return int(np.prod(self.shape)) * self.array.dtype.itemsize

    def __getitem__(self, index) -> Tensor:
        pos = _as_rows(index, len(self.rows))
        if isinstance(pos, int):
            return self[[pos]][0]
        return self._layout(torch.from_numpy(self._read(self.rows[pos])))

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """The cache rows ``rows`` in that order, as an array in the cache's layout (one sorted read)."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        block = np.asarray(self.array[uniq])[inverse.ravel()]  # memmap: reads just these rows
        return np.ascontiguousarray(block)

    @staticmethod
    def _layout(t: Tensor) -> Tensor:
        """``(k, H, W, 3)`` -> ``[k, 3, H, W]`` and ``(k, H, W)`` -> ``[k, 1, H, W]`` (views, nothing copied)."""
        return t.permute(0, 3, 1, 2) if t.ndim == 4 else t[:, None]

    def subset(self, index) -> "Rows":
        """The same column restricted to ``index`` (nothing is read)."""
        return Rows(self.array, self.rows[_as_rows(index, len(self.rows))])

    def materialize(self, device: torch.device | str = "cpu", chunk_bytes: int = CHUNK_BYTES) -> Tensor:
        """Every row as one tensor on ``device``, read and copied a chunk at a time.

        The destination is allocated once on ``device``; host memory holds one chunk of
        ``chunk_bytes`` at a time beyond it (on a GPU: one chunk, not the split).
        """
        n, row_bytes = len(self.rows), int(np.prod(self.array.shape[1:])) * self.array.dtype.itemsize
        step = max(1, chunk_bytes // max(row_bytes, 1))
        out = torch.empty((n, *self.array.shape[1:]), dtype=self.dtype, device=device)
        for start in range(0, n, step):
            out[start:start + step].copy_(torch.from_numpy(self._read(self.rows[start:start + step])))
        return self._layout(out)

    def __getstate__(self) -> dict:
        a = self.array
        if isinstance(a, np.memmap) and a.filename:
            return {"rows": self.rows, "memmap": (a.filename, a.offset, a.shape, a.dtype.str)}
        return {"rows": self.rows, "array": a}

    def __setstate__(self, state: dict) -> None:
        self.rows = state["rows"]
        if "memmap" in state:
            filename, offset, shape, dtype = state["memmap"]
            self.array = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        else:
            self.array = state["array"]


class DepthData(Dataset):
    """One split: images with depth maps (NYU-style) or with point pairs (DIW-style).

    Each column (``images``, ``depths``, ``pairs``, ``relation``) is a tensor in memory or
    :class:`Rows` of a cache on disk; both index alike (``data.images[:4]`` is a uint8 tensor).
    ``data[i]`` is one sample, ``data[[i, j, ...]]`` a batch: dicts of tensors. ``identity`` says
    which cache rows the split holds (checkpoints remember it instead of hashing the data).
    """

    def __init__(self, images: Tensor | Rows, depths: Tensor | Rows | None = None, pairs: Tensor | None = None,
                 relation: Tensor | None = None, name: str = "", identity: str | None = None):
        self.images, self.depths, self.pairs, self.relation = images, depths, pairs, relation
        self.name = name
        self.identity = identity

    def __len__(self) -> int:
        return len(self.images)

    def columns(self) -> dict[str, Tensor | Rows]:
        """The columns that are present, by name."""
        return {k: getattr(self, k) for k in KEYS if getattr(self, k) is not None}

    def __getitem__(self, index) -> dict[str, Tensor]:
        pos = _as_rows(index, len(self))
        if isinstance(pos, int):
            return {k: v[0] for k, v in self[[pos]].items()}
        out = {}
        for key, col in self.columns().items():
            out[key] = col[pos] if isinstance(col, Rows) else col[torch.as_tensor(pos, device=col.device)]
        return out

    def _map(self, fn) -> dict:
        return {k: fn(v) for k, v in self.columns().items()}

    def subset(self, index) -> "DepthData":
        """The rows ``index`` of every column (on-disk columns stay on disk)."""
        pos = _as_rows(index, len(self))
        cols = self._map(lambda c: c.subset(pos) if isinstance(c, Rows) else c[torch.as_tensor(pos, device=c.device)])
        ident = None if self.identity is None else _digest(self.identity, np.asarray(pos).tobytes())
        return DepthData(**cols, name=self.name, identity=ident)

    def to(self, device: torch.device | str) -> "DepthData":
        """Every column as a tensor on ``device``; on-disk columns stream there a chunk at a time (no whole copy in host RAM)."""
        cols = self._map(lambda c: c.materialize(device) if isinstance(c, Rows) else c.to(device))
        return DepthData(**cols, name=self.name, identity=self.identity)

    @property
    def nbytes(self) -> int:
        """Bytes the split takes once in memory."""
        return sum(c.nbytes if isinstance(c, Rows) else c.numel() * c.element_size() for c in self.columns().values())

    @property
    def on_disk(self) -> bool:
        """True when some column is read from the cache on demand."""
        return any(isinstance(c, Rows) for c in self.columns().values())

    @property
    def device(self) -> torch.device:
        """Where the images are (``cpu`` for on-disk columns)."""
        return self.images.device

    def fingerprint(self) -> str:
        """Identity of the split: the cache and its rows, or (for data built in memory) a hash of the tensors."""
        if self.identity is not None:
            return self.identity
        h = hashlib.sha1()
        for t in self.columns().values():
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def batch_order(n: int, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                indices: Sequence[int] | None = None, device: torch.device | str = "cpu") -> list[Tensor]:
    """Positions of each batch: all of ``range(n)`` (or ``indices``), shuffled reproducibly from ``seed``.

    The positions are made on ``device`` (a device generator: on the CPU the same order as ever);
    a rank's ``indices`` are shuffled on the host and cross to the device once, from pinned memory.
    """
    device = torch.device(device)
    if indices is None:
        order = (torch.randperm(n, generator=device_generator(device, seed), device=device) if shuffle
                 else torch.arange(n, device=device))
    else:
        order = torch.as_tensor(list(indices), dtype=torch.long)
        if shuffle:
            order = order[torch.randperm(len(order), generator=torch.Generator().manual_seed(seed))]
        if device.type == "cuda":
            order = order.pin_memory()
        order = order.to(device, non_blocking=True)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    return [order[s:s + batch_size] for s in range(0, stop, batch_size)]


def batches(data: DepthData, batch_size: int, shuffle: bool = False, seed: int = 0,
            device: torch.device | str = "cpu", drop_last: bool = False, num_workers: int = 0,
            indices: Sequence[int] | None = None) -> Iterator[dict[str, Tensor]]:
    """Yield batches of ``data`` as dicts of tensors on ``device``.

    Data already on ``device`` is sliced in place (the GPU-resident path). Otherwise a DataLoader
    reads one batch per step (``num_workers`` processes; pinned memory and non-blocking copies
    when ``device`` is CUDA). ``indices`` restricts the batches to those positions (a rank's shard).
    """
    device = torch.device(device)
    if data.device.type == device.type and not data.on_disk:  # resident: slice on the device, nothing crosses
        cols = data.columns()
        for idx in batch_order(len(data), batch_size, shuffle, seed, drop_last, indices, device=data.device):
            yield {k: v[idx] for k, v in cols.items()}
        return
    order = batch_order(len(data), batch_size, shuffle, seed, drop_last, indices)
    cuda = device.type == "cuda"
    loader = DataLoader(data, sampler=[idx.tolist() for idx in order], batch_size=None, num_workers=num_workers,
                        pin_memory=cuda, prefetch_factor=4 if num_workers else None,
                        persistent_workers=False)
    for batch in loader:
        yield {k: v.to(device, non_blocking=cuda) for k, v in batch.items()}


def augment(batch: dict[str, Tensor], generator: torch.Generator | None, jitter: float = 0.2) -> dict[str, Tensor]:
    """Random horizontal flip (image, depth and pair columns together) and colour jitter (image only).

    Works on a whole batch at once on whatever device it lives on. ``images`` must be float in
    [0, 1]; the random draws are made on that device, from ``generator`` (see
    :func:`device_generator`; seeded per epoch, runs repeat exactly), so nothing crosses from the host.
    """
    images = batch["images"]
    b, _, _, w = images.shape
    if generator is not None and generator.device.type != images.device.type:
        raise ValueError(f"augment: the generator is on {generator.device} but the images are on {images.device}; "
                         f"use depthkit.data.loader.device_generator(images.device, seed)")
    flip = torch.rand(b, generator=generator, device=images.device) < 0.5
    out = dict(batch)
    out["images"] = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if "depths" in batch:
        d = batch["depths"]
        out["depths"] = torch.where(flip[:, None, None, None], d.flip(-1), d)
    if "pairs" in batch:
        p = batch["pairs"].clone()
        f = flip[:, None]
        p[..., 1] = torch.where(f, w - 1 - p[..., 1], p[..., 1])
        p[..., 3] = torch.where(f, w - 1 - p[..., 3], p[..., 3])
        out["pairs"] = p
    if jitter > 0:
        # brightness and contrast per image, saturation by blending towards grey
        u = (torch.rand(3, b, generator=generator, device=images.device) * 2 - 1) * jitter + 1
        u = u.to(images.dtype)[:, :, None, None, None]
        x = out["images"] * u[0]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u[1] + mean
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * u[2] + grey
        out["images"] = x.clamp(0, 1)
    return out
