"""Peak memory of a whole process tree: what a run really costs a Colab runtime.

Anonymous memory (heap, tensors, arrays) is what a machine must hold; pages of memory-mapped
files are page cache that the kernel can drop, so they do not count. Forked workers share their
parent's pages until they write to them, so each process counts its proportional share
(``Pss_Anon`` in ``/proc/<pid>/smaps_rollup``; ``RssAnon`` where that file is missing), and the
sum over the tree is what the machine really holds. :class:`PeakMemory` samples this process and all its descendants (DataLoader
workers, preparation processes) in a background thread. Linux only; elsewhere it reports ``None``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` file)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _anon_kib(pid: int) -> int:
    """Proportional anonymous memory of one process in KiB (0 when it has gone)."""
    for name, key in (("smaps_rollup", "Pss_Anon:"), ("status", "RssAnon:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except OSError:
            continue
    return 0


def tree_anon_bytes(pid: int | None = None) -> int:
    """Anonymous resident memory of ``pid`` (default: this process) and all its descendants, in bytes."""
    todo, total, seen = [pid or os.getpid()], 0, set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _anon_kib(p)
        todo += _children(p)
    return total * 1024


class PeakMemory:
    """Context manager: ``with PeakMemory() as m: ...`` then ``m.peak_bytes`` (``None`` off Linux)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_bytes = interval, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes or 0, tree_anon_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if Path("/proc/self/status").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes or 0, tree_anon_bytes())
