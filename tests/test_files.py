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


def test_hdf5_writer_frees_the_unused_reservation_and_writes_what_h5py_writes(tmp_path):
    """Catches: a reservation kept past the close (every file 64 KB and more larger, in zeros that
    no checksum covers) or data that HDF5's writes through the file object change. 10 MB are
    reserved for 80 KB: the file ends as large as its content, its blocks freed, its data intact."""
    import h5py
    import numpy as np

    from depthkit.files import hdf5_writer

    rows = np.arange(10_000, dtype=np.int64)
    with hdf5_writer(tmp_path / "a.h5", 10_000_000) as f:
        f.create_dataset("rows", data=rows)
        f.create_dataset("chunked", data=rows.reshape(100, 100), chunks=(1, 100))
        f.attrs["note"] = "complete"
    with h5py.File(tmp_path / "b.h5", "w") as f:  # HDF5's own driver, for the size
        f.create_dataset("rows", data=rows)
        f.create_dataset("chunked", data=rows.reshape(100, 100), chunks=(1, 100))
        f.attrs["note"] = "complete"
    st = (tmp_path / "a.h5").stat()
    assert st.st_size <= (tmp_path / "b.h5").stat().st_size + 4096
    assert st.st_blocks * 512 <= st.st_size + 64 * 1024  # the reserved blocks past the end went back to the disk
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert np.array_equal(f["rows"][()], rows) and np.array_equal(f["chunked"][()], rows.reshape(100, 100))
        assert f.attrs["note"] == "complete"
