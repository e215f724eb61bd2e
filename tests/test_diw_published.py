"""The real DIW files as published: DIW_Annotations_splitted.tar.gz, archives dropped in by hand, Chen's split."""
from __future__ import annotations

import io
import socket
import tarfile

import numpy as np
import pytest
from PIL import Image

from depthkit import data
from depthkit.config import get_profile

AUTHORS = "/home/wfchen/DIW"  # image lines are absolute paths on the authors' machines


def _tar_gz(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def _jpeg(w: int, h: int, value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A DIW folder holding the two archives as a user saves them from the project page."""
    folder = tmp_path / "diw"
    folder.mkdir()
    csv = {part: "\n".join([f"{AUTHORS}/{folder_name}/{part}_{i}.thumb\n{3 + i},4,10,12,{'>' if i % 2 else '<'},40,30"
                            for i in range(n)]) + "\n"
           for part, folder_name, n in (("DIW_test", "DIW_test", 3), ("DIW_train", "DIW_train_val", 4),
                                        ("DIW_val", "DIW_train_val", 2))}
    _tar_gz(folder / "DIW_Annotations_splitted.tar.gz",
            {f"DIW_Annotations_splitted/{part}.csv": text.encode() for part, text in csv.items()})
    _tar_gz(folder / "DIW_test.tar.gz", {f"DIW_test/DIW_test_{i}.thumb": _jpeg(40, 30, 10 * i) for i in range(3)})
    dead = f"http://127.0.0.1:{_closed_port()}/"
    for item in data.DOWNLOADS["diw"]:  # nothing may be fetched: the host is a closed local port
        monkeypatch.setitem(item, "url", dead + item["file"])
    return folder


def test_download_diw_asks_for_the_published_names():
    names = [item["file"] for item in data.DOWNLOADS["diw"]]
    assert names == ["DIW_Annotations_splitted.tar.gz", "DIW_test.tar.gz"]
    assert data.DOWNLOADS["diw"][0]["url"].endswith("/nips2016/DIW_Annotations_splitted.tar.gz")


def test_archives_dropped_in_by_hand_are_unpacked_and_read(published):
    assert data.download("diw", published, timeout=2) == published
    for part, n in (("DIW_test", 3), ("DIW_train", 4), ("DIW_val", 2)):
        assert (published / f"{part}.csv").is_file()
    pairs = data.read_diw_csv(published / "DIW_test.csv")  # authors' paths re-rooted under the folder
    assert [p.image for p in pairs] == [published / "DIW_test" / f"DIW_test_{i}.thumb" for i in range(3)]
    assert [p.relation for p in pairs] == [-1, 1, -1]
    assert (pairs[1].ya, pairs[1].xa, pairs[1].yb, pairs[1].xb) == (3, 3, 9, 11)  # 1-based in the file


def test_missing_image_archive_says_what_to_fetch_and_where(published):
    (published / "DIW_test.tar.gz").unlink()
    with pytest.raises(ConnectionError) as err:
        data.download("diw", published, timeout=2)
    message = str(err.value)
    assert "DIW_test.tar.gz" in message and "project page" in message
    assert str(published / "DIW_test.tar.gz") in message


def test_chen_protocol_reads_the_authors_train_and_val_files(isolated_dirs):
    from depthkit.pipeline import load_stage_data, prepare_data

    profile = get_profile("smoke").replace(name="smoke-chen", diw_protocol="chen", n_diw=8)
    prepared = prepare_data(profile)
    assert set(prepared.diw_caches) == {"DIW_test", "DIW_train", "DIW_val"}
    splits = load_stage_data(profile, "diw", prepared)
    sizes = {split: len(d) for split, d in splits.items()}
    assert sizes == {"train": 8 - max(1, 8 // 10), "val": max(1, 8 // 10), "test": 8}
    assert "DIW_train" in splits["train"].name and "DIW_val" in splits["val"].name
