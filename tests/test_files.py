"""depthkit.files: the one atomic writer every module uses."""
from __future__ import annotations

import os
import stat

import pytest

from depthkit.files import atomic_write, atomic_write_bytes


def test_atomic_write_replaces_and_keeps_usual_permissions(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "a.txt", b"one")
    assert path.read_bytes() == b"one"
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_bytes(tmp_path / "good.bin", b"finished")

    def crash(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, crash)
    assert path.read_bytes() == b"finished"
    assert [p.name for p in tmp_path.iterdir()] == ["good.bin"]
