"""Issue #32 (3): downloads that cannot keep a half file, through ``python -m depthkit download``.

A real HTTP server on 127.0.0.1 (http.server in a thread) serves real .tar.gz archives of real JPEGs
and misbehaves as real servers do: it cuts the body short while promising the full Content-Length,
sends a wrong Content-Length, refuses ranges (always 200), honours them (206 with a matching
Content-Range) or answers a range with another one, and stalls. The CLI is pointed at it with
``--mirror`` / ``DEPTHKIT_MIRROR``. Nothing is mocked; nothing leaves this machine.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import tar_gz  # tests/helpers.py: shared with the other download tests
from depthkit import data
from depthkit.cli import main
from depthkit.data import downloads

ANNOTATIONS, IMAGES = "DIW_Annotations_splitted.tar.gz", "DIW_test.tar.gz"
N_IMAGES = 40


@pytest.fixture(scope="module")
def archives() -> dict[str, bytes]:
    """The two DIW archives as published: the annotations' CSVs and 40 real (noise) JPEG thumbnails."""
    rng = np.random.default_rng(0)
    jpegs = {}
    for i in range(N_IMAGES):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
        jpegs[f"DIW_test/img_{i:06d}.thumb"] = buffer.getvalue()
    csv = "".join(f"/home/wfchen/DIW/DIW_test/img_{i:06d}.thumb\n5,6,40,50,>,128,96\n" for i in range(N_IMAGES))
    return {ANNOTATIONS: tar_gz({"DIW_Annotations_splitted/DIW_test.csv": csv.encode()}), IMAGES: tar_gz(jpegs)}


class Server:
    """Serves ``files`` by name; each attribute below is one way a real server misbehaves."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (file, Range header)
        self.honour_range = True  # False: always 200 with the whole file
        self.cut: dict[str, list[float]] = {}  # file -> the share of the promised body each next answer sends
        self.cut_every: dict[str, float] = {}  # file -> the share every answer sends
        self.length_delta: dict[str, int] = {}  # file -> bytes added to the true Content-Length
        self.wrong_range = False  # answer a range with 206 and the whole file (Content-Range bytes 0-)
        self.stall_s = 0.0  # silence after the (cut) body, before closing
        server, owner = ThreadingHTTPServer(("127.0.0.1", 0), self._handler()), self
        server.daemon_threads = True
        self.httpd, self.url = server, f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name, rng = self.path.lstrip("/"), self.headers.get("Range")
                owner.requests.append((name, rng))
                if name not in owner.files:
                    self.send_error(404)
                    return
                body = owner.files[name]
                start = int(rng[6:].split("-")[0]) if rng and owner.honour_range else 0
                if rng and owner.honour_range:
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    start = 0 if owner.wrong_range else start
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload) + owner.length_delta.get(name, 0)))
                self.end_headers()
                share = owner.cut[name].pop(0) if owner.cut.get(name) else owner.cut_every.get(name, 1.0)
                try:
                    self.wfile.write(payload[:int(len(payload) * share)])
                    self.wfile.flush()
                    time.sleep(owner.stall_s)
                except (BrokenPipeError, ConnectionResetError):  # the client read what it was promised
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler

    def got(self, name: str) -> list[str | None]:
        """The Range headers of the requests for ``name``, in order."""
        return [rng for file, rng in self.requests if file == name]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(archives, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "COLAB_RELEASE_TAG", downloads.MIRROR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(downloads, "RETRY_PAUSE_S", 0.0)
    s = Server(dict(archives))
    yield s
    s.close()


def download(server: Server, root: Path, *flags: str) -> int:
    """``python -m depthkit download diw --root root --mirror <server>``, in process."""
    return main(["download", "diw", "--root", str(root), "--mirror", server.url, *flags])


def assert_unpacked(root: Path, archives: dict[str, bytes]) -> None:
    """Every image and the CSV are there, and each archive's marker records its true bytes and SHA-256."""
    assert len(list((root / "DIW_test").iterdir())) == N_IMAGES
    assert len(data.read_diw_csv(root / "DIW_test.csv")) == N_IMAGES
    for name, body in archives.items():
        record = json.loads((root / f".{name}.complete").read_text())
        assert record["bytes"] == len(body) and record["sha256"] == hashlib.sha256(body).hexdigest()
        assert record["unpacked"] >= 1 and "unpacked to its end" in record["checked"]


def last_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------
# (a) a body cut short under the full Content-Length, (c) refused ranges, (d) honoured ranges
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("honour_range", [True, False], ids=["206-resume", "200-from-zero"])
def test_a_body_cut_short_is_resumed_or_fetched_again(server, archives, tmp_path, honour_range):
    """Catches: the length check skipped (the half archive renamed into place), a cut-short body not
    retried, a resume appended to a server's whole-file 200 answer."""
    server.honour_range = honour_range
    server.cut[IMAGES] = [0.5]
    with pytest.warns(UserWarning, match=r"DIW_test.tar.gz failed \(IncompleteTransfer: .*ended after"):
        assert download(server, tmp_path) == 0
    half = len(archives[IMAGES]) // 2
    assert server.got(IMAGES) == [None, f"bytes={half}-"]  # asked to resume; answered 206 or 200
    assert (tmp_path / IMAGES).read_bytes() == archives[IMAGES]
    assert_unpacked(tmp_path, archives)
    n = len(server.requests)
    assert download(server, tmp_path) == 0 and len(server.requests) == n  # complete: nothing fetched again


def test_a_server_that_always_cuts_short_ends_in_one_line_and_the_next_call_resumes(server, archives, tmp_path,
                                                                                    capsys):
    """Catches: a half archive renamed into place or unpacked, unbounded retries, a message without the
    URL and the byte counts."""
    server.cut_every[IMAGES] = 0.25  # 25 % of what each answer promises
    with pytest.warns(UserWarning, match="trying again"):
        assert download(server, tmp_path) == 1
    total = len(archives[IMAGES])
    line = last_line(capsys)
    assert line.startswith(f"depthkit download: error: {server.url}/{IMAGES}: the transfer ended after ")
    received = int(line.split("ended after ")[1].split(" of ")[0].replace(",", ""))
    assert 0 < received < total and f"of {total:,} bytes" in line and "3 tries" in line
    assert "run the same command again to resume" in line
    assert len(server.got(IMAGES)) == downloads.DOWNLOAD_ATTEMPTS
    assert not (tmp_path / IMAGES).exists() and not (tmp_path / "DIW_test").exists()
    assert not (tmp_path / f".{IMAGES}.complete").exists()
    assert (tmp_path / f"{IMAGES}.part").stat().st_size == received

    server.cut_every.clear()  # the server recovers: the next call resumes from the .part file
    assert download(server, tmp_path) == 0
    assert server.got(IMAGES)[-1] == f"bytes={received}-"
    assert_unpacked(tmp_path, archives)


def test_a_206_with_another_range_is_not_appended(server, archives, tmp_path):
    """Catches: a 206 trusted without its Content-Range (the whole file appended to the .part)."""
    part = tmp_path / f"{IMAGES}.part"
    tmp_path.mkdir(exist_ok=True)
    part.write_bytes(archives[IMAGES][:1000])
    server.wrong_range = True  # answers bytes=1000- with 206 "bytes 0-…"
    with pytest.warns(UserWarning, match="Content-Range 'bytes 0-"):
        assert download(server, tmp_path) == 0
    assert server.got(IMAGES) == ["bytes=1000-", None]
    assert_unpacked(tmp_path, archives)


def test_a_part_file_that_is_already_whole_is_not_fetched_again(server, archives, tmp_path):
    """The server answers the resume with 416 and the file's size (``bytes */N``). Catches: a whole
    ``.part`` thrown away and fetched from zero, or a 416 taken as complete without the size."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / f"{IMAGES}.part").write_bytes(archives[IMAGES])
    assert download(server, tmp_path) == 0
    assert server.got(IMAGES) == [f"bytes={len(archives[IMAGES])}-"]
    assert_unpacked(tmp_path, archives)

    other = tmp_path / "other"  # a .part longer than the server's file: the 416 says so, it starts over
    other.mkdir()
    (other / f"{IMAGES}.part").write_bytes(archives[IMAGES] + b"junk")
    assert download(server, other) == 0
    assert server.got(IMAGES)[1:] == [f"bytes={len(archives[IMAGES]) + 4}-", None]
    assert_unpacked(other, archives)


# ---------------------------------------------------------------------------------------------
# (b) a wrong Content-Length
# ---------------------------------------------------------------------------------------------
def test_a_content_length_longer_than_the_body_is_a_cut_short_transfer(server, archives, tmp_path, capsys):
    """Catches: the length check skipped (the body, shorter than promised, accepted as the file)."""
    server.length_delta[ANNOTATIONS] = 5_000
    server.honour_range = False
    with pytest.warns(UserWarning, match="trying again"):
        assert download(server, tmp_path) == 1
    size = len(archives[ANNOTATIONS])
    assert f"ended after {size:,} of {size + 5_000:,} bytes" in last_line(capsys)
    assert not (tmp_path / ANNOTATIONS).exists() and not (tmp_path / "DIW_test.csv").exists()


def test_a_content_length_shorter_than_the_archive_is_set_aside_and_fetched_again(server, archives, tmp_path,
                                                                                  capsys):
    """The body matches its (wrong) length, so only unpacking can tell. Catches: a bad archive left in
    place (the next call unpacks it again and fails forever), a half-unpacked folder left looking
    complete, a bad archive recorded as complete."""
    server.length_delta[IMAGES] = -(len(archives[IMAGES]) // 2)
    assert download(server, tmp_path) == 1
    line = last_line(capsys)
    assert line.startswith(f"depthkit download: error: {tmp_path / IMAGES} does not unpack (")
    assert f"set aside as {IMAGES}.bad" in line and "run the same command again to fetch it again" in line.lower()
    assert (tmp_path / f"{IMAGES}.bad").stat().st_size == len(archives[IMAGES]) - len(archives[IMAGES]) // 2
    assert not (tmp_path / IMAGES).exists() and not (tmp_path / f".{IMAGES}.complete").exists()
    assert not (tmp_path / "DIW_test").exists()  # not even the files before the damage
    assert not list(tmp_path.glob(".*.unpacking"))

    server.length_delta.clear()
    assert download(server, tmp_path) == 0
    assert server.got(IMAGES) == [None, None]
    assert_unpacked(tmp_path, archives)


# ---------------------------------------------------------------------------------------------
# What the old code left behind: a half archive renamed into place, a file with no marker
# ---------------------------------------------------------------------------------------------
def test_a_truncated_archive_already_in_place_is_set_aside_and_the_next_call_fetches_it(server, archives, tmp_path,
                                                                                        capsys):
    """The state the issue measured (half of the archive in place, no record of completion).
    Catches: an existing archive counted as complete without unpacking to its end, a bad archive
    left in place, the partial unpacking left in the folder."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / IMAGES).write_bytes(archives[IMAGES][:len(archives[IMAGES]) // 2])
    assert download(server, tmp_path) == 1
    line = last_line(capsys)
    assert "does not unpack (EOFError: Compressed file ended before the end-of-stream marker was reached" in line
    assert server.got(IMAGES) == []  # an archive in place is tried first (it may have been saved by hand)
    assert not (tmp_path / "DIW_test").exists() and (tmp_path / f"{IMAGES}.bad").is_file()

    assert download(server, tmp_path) == 0
    assert server.got(IMAGES) == [None]
    assert_unpacked(tmp_path, archives)


def test_an_archive_missing_only_its_gzip_trailer_is_refused(server, archives, tmp_path, capsys):
    """The tar ends before its last 8 bytes (the gzip CRC and length): every member unpacks.
    Catches: reading stopped at tar's end-of-archive blocks, so a truncated file counts as complete."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / IMAGES).write_bytes(archives[IMAGES][:-8])
    assert download(server, tmp_path) == 1
    assert f"{N_IMAGES:,} files" in last_line(capsys) and not (tmp_path / "DIW_test").exists()


def test_a_file_without_a_record_is_fetched_again(server, tmp_path, monkeypatch):
    """A non-archive with no published size, half of it in place and no marker (the old code left
    exactly that). Catches: "the file exists" counted as complete."""
    body = bytes(range(256)) * 1000
    server.files["nyu_depth_v2_labeled.mat"] = body
    monkeypatch.setitem(data.DOWNLOADS, "nyu", [dict(data.DOWNLOADS["nyu"][0], size=None, sha256=None)])
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "nyu_depth_v2_labeled.mat").write_bytes(body[:1000])
    monkeypatch.setenv(downloads.MIRROR_ENV, server.url)  # the environment variable, this time
    assert main(["download", "nyu", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "nyu_depth_v2_labeled.mat").read_bytes() == body
    assert json.loads((tmp_path / ".nyu_depth_v2_labeled.mat.complete").read_text())["bytes"] == len(body)
    assert main(["download", "nyu", "--root", str(tmp_path)]) == 0
    assert server.got("nyu_depth_v2_labeled.mat") == [None]  # recorded complete: not fetched twice


# ---------------------------------------------------------------------------------------------
# A stalled server, and archives deleted once unpacked (--delete-archives, the default on Colab)
# ---------------------------------------------------------------------------------------------
def test_a_server_that_stalls_every_time_fails_within_the_timeouts(server, archives, tmp_path):
    """Catches: a read without a timeout (hangs), retries without a bound."""
    server.cut_every[ANNOTATIONS], server.stall_s = 0.5, 3.0
    start = time.monotonic()
    with pytest.warns(UserWarning, match="timed out"), pytest.raises(ConnectionError) as err:
        downloads.download("diw", tmp_path, timeout=0.5, mirror=server.url)
    assert time.monotonic() - start < 2.5  # 3 tries of 0.5 s each, plus the probes
    total = len(archives[ANNOTATIONS])
    first, second = total // 2, total // 2 + (total - total // 2) // 2  # each try resumes, gets half the rest
    assert server.got(ANNOTATIONS) == [None, f"bytes={first}-", f"bytes={second}-"]
    received = (tmp_path / f"{ANNOTATIONS}.part").stat().st_size
    assert f"download interrupted (timed out) after {received:,} of {total:,} bytes" in str(err.value)
    assert not (tmp_path / ANNOTATIONS).exists()


@pytest.mark.parametrize("how", ["flag", "colab"])
def test_archives_are_deleted_once_unpacked_and_verified(server, archives, tmp_path, monkeypatch, how):
    """Catches: archives kept on Colab (a full Drive), an archive deleted before its record says it
    was unpacked (the next call would fetch it again)."""
    flags = ("--delete-archives",) if how == "flag" else ()
    if how == "colab":
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101-060000_RC00")
    assert download(server, tmp_path, *flags) == 0
    assert not (tmp_path / ANNOTATIONS).exists() and not (tmp_path / IMAGES).exists()
    for name in (ANNOTATIONS, IMAGES):
        assert json.loads((tmp_path / f".{name}.complete").read_text())["archive_deleted"] is True
    assert len(list((tmp_path / "DIW_test").iterdir())) == N_IMAGES
    n = len(server.requests)
    assert download(server, tmp_path, *flags) == 0 and len(server.requests) == n


def test_on_colab_no_delete_archives_keeps_them_and_a_bad_one_is_removed_there(server, archives, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101-060000_RC00")
    assert download(server, tmp_path, "--no-delete-archives") == 0
    assert (tmp_path / IMAGES).read_bytes() == archives[IMAGES]

    other = tmp_path / "other"  # where archives are deleted, a bad one is deleted too (no .bad to fill a disk)
    other.mkdir()
    (other / IMAGES).write_bytes(archives[IMAGES][:1000])
    assert download(server, other) == 1
    assert "it was deleted" in last_line(capsys)
    assert not (other / IMAGES).exists() and not (other / f"{IMAGES}.bad").exists()
    assert download(server, other) == 0 and not (other / IMAGES).exists()
    assert len(list((other / "DIW_test").iterdir())) == N_IMAGES
