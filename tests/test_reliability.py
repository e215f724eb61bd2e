"""Issue #11: runs that repeat and resume exactly, nothing that hangs, one writer per run folder,
clear errors for unwritable folders, full disks, changed configurations, bad numbers and bad files."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from depthkit import files, models, runs
from depthkit.cli import build_parser, main
from depthkit.data import downloads
from depthkit.data.loader import DepthData
from depthkit.files import atomic_write, atomic_write_bytes
from depthkit.runs import (ConfigChangedError, RunFolderLockedError, check_has_valid_depth, check_resume_config,
                           check_writable, compare_config, guard_run_folder, lock_run_folder)

REPO = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("seconds", "train_seconds", "first_step_seconds", "data_seconds")
HANG_GUARD_S = 60  # a call that should return in seconds; past this it is declared hung


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def train_command(out: Path, epochs: int) -> list[str]:
    """The CLI command that trains LR-ASPP on the smoke NYU stage into ``out``."""
    return [sys.executable, "-m", "depthkit", "train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke",
            "--out", str(out), "--epochs", str(epochs)]


def run_train(env: dict, out: Path, epochs: int) -> Path:
    """Run the training command to its end; returns ``out``."""
    done = subprocess.run(train_command(out, epochs), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def checkpoint(path: Path) -> dict:
    """A checkpoint read on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tensors(a: dict, b: dict) -> None:
    """Two state dicts hold the same keys and bit-identical tensors."""
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def without_timing(history: dict) -> dict:
    """A history without its wall-clock keys."""
    return {k: v for k, v in history.items() if k not in TIMING_KEYS}


def in_thread(call, guard: float = HANG_GUARD_S):
    """Run ``call()`` in a daemon thread; returns its result, or fails the test when it hangs."""
    box: dict = {}

    def target() -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                box["value"] = call()
            box["warnings"] = [str(w.message) for w in caught]
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(guard)
    assert not thread.is_alive(), f"the call hung (still running after {guard} s)"
    if "error" in box:
        raise box["error"]
    return box["value"], box["warnings"]


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and then never answers (optionally after a CONNECT reply)."""

    def __init__(self, answer_connect: bool = False) -> None:
        self.answer_connect = answer_connect
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
            self.requests.append(data)
            if self.answer_connect and data.startswith(b"CONNECT"):
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            while conn.recv(4096):  # say nothing more, ever
                pass
        except OSError:
            pass

    def close(self) -> None:
        """Stop accepting and drop every connection (a hung client then sees the end of its stream)."""
        self.sock.close()
        for conn in self.connections:
            conn.close()


def use_proxy(monkeypatch, url: str, schemes: tuple[str, ...] = ("https", "http")) -> None:
    """Make urllib (and depthkit's probes) send requests through the proxy ``url``."""
    import urllib.request

    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's opener keeps the proxies of its first call
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY", "https_proxy",
                 "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for scheme in schemes:
        monkeypatch.setenv(f"{scheme}_proxy", url)
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", url)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------------------------
# 1. Repeatable runs, and a run killed with SIGKILL resumes to the same weights
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uninterrupted(cli_env, tmp_path_factory) -> Path:
    """A 3-epoch CLI run that nothing interrupted."""
    return run_train(cli_env, tmp_path_factory.mktemp("runs") / "whole", epochs=3)


@pytest.mark.slow
def test_two_cli_runs_give_bit_identical_weights(cli_env, tmp_path):
    a = checkpoint(run_train(cli_env, tmp_path / "a", epochs=1) / "last.pt")
    b = checkpoint(run_train(cli_env, tmp_path / "b", epochs=1) / "last.pt")
    assert_same_tensors(a["model"], b["model"])
    assert_same_tensors(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    assert without_timing(a["history"]) == without_timing(b["history"])


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(cli_env, uninterrupted, tmp_path):
    out = tmp_path / "killed"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(train_command(out, 3), env=cli_env, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None and not (out / "last.pt").exists():
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.returncode}"
    assert checkpoint(out / "last.pt")["epoch"] < 3  # killed mid-run
    run_train(cli_env, out, epochs=3)  # the same command resumes
    resumed, whole = checkpoint(out / "last.pt"), checkpoint(uninterrupted / "last.pt")
    assert resumed["epoch"] == whole["epoch"] == 3
    assert_same_tensors(resumed["model"], whole["model"])
    assert without_timing(resumed["history"]) == without_timing(whole["history"])
    assert without_timing(json.loads((out / "history.json").read_text())) == without_timing(whole["history"])
    assert not list(out.glob(".*.tmp"))  # a checkpoint half-written at the kill was cleaned up


@pytest.mark.slow
def test_run_killed_with_sigkill_in_the_middle_of_an_epoch_resumes_to_the_uninterrupted_result(
        cli_env, uninterrupted, tmp_path):
    """The kill lands inside epoch 2 (half an epoch after epoch 1 was saved), not at a boundary:
    the optimizer steps of the unfinished epoch are lost and redone, to the same weights."""
    whole = checkpoint(uninterrupted / "last.pt")
    epoch_s = min(whole["history"]["seconds"])
    out = tmp_path / "killed"
    proc = subprocess.Popen(train_command(out, 3), env=cli_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while proc.poll() is None and not (out / "history.json").exists():
        time.sleep(0.005)
    time.sleep(epoch_s / 2)  # epoch 2 is under way
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.returncode}"
    assert checkpoint(out / "last.pt")["epoch"] == 1, "the kill did not land inside epoch 2"
    run_train(cli_env, out, epochs=3)  # the same command resumes
    resumed = checkpoint(out / "last.pt")
    assert resumed["epoch"] == whole["epoch"] == 3
    assert_same_tensors(resumed["model"], whole["model"])
    assert without_timing(resumed["history"]) == without_timing(whole["history"])


# --------------------------------------------------------------------------------------------
# 2. Resume with a changed configuration
# --------------------------------------------------------------------------------------------
def fit_config(profile, model: str = "lraspp", stage: str = "nyu") -> dict:
    """The configuration ``fit`` stores in a checkpoint for ``profile`` (``depthkit.train.run_config`` itself)."""
    from depthkit.train import run_config

    frozen, full = profile.epochs(model, stage)
    return run_config(profile, types.SimpleNamespace(name=model), stage, frozen, full, None)


def cli_profile(epochs: int):
    """The smoke profile as ``train --epochs N`` changes it."""
    from depthkit.config import get_profile

    return get_profile("smoke").with_budget("nyu", frozen_epochs={}, epochs={"*": epochs}).with_budget(
        "diw", epochs={"*": epochs})


def test_compare_config_lists_each_difference(smoke_profile):
    saved = fit_config(smoke_profile)
    assert compare_config(saved, dict(saved)) == []
    changed = dict(saved, lr=5e-4, batch_size=8)
    assert compare_config(saved, changed) == ["batch_size: 4 then, 8 now", "lr: 0.001 then, 0.0005 now"]
    assert compare_config(saved, dict(saved, device="cuda", num_workers=4)) == []  # do not change the result
    assert compare_config(saved, dict(saved, diw_fractions=list(saved["diw_fractions"]))) == []  # JSON lists
    assert compare_config(saved, dict(saved, frozen_epochs=1)) == ["frozen_epochs: 0 then, 1 now"]


def test_more_epochs_are_allowed_and_recorded_fewer_are_refused():
    saved, more, fewer = fit_config(cli_profile(3)), fit_config(cli_profile(5)), fit_config(cli_profile(2))
    assert compare_config(saved, more) == []  # the per-model epoch tables differ, the resolved epochs grew
    config = check_resume_config(saved, more, "runs/x/last.pt")
    assert config["epochs"] == 5 and config["epochs_extended"] == [{"from": 3, "to": 5}]
    again = check_resume_config(config, fit_config(cli_profile(7)), "runs/x/last.pt")
    assert again["epochs_extended"] == [{"from": 3, "to": 5}, {"from": 5, "to": 7}]
    assert compare_config(saved, fewer) == ["epochs: 3 then, 2 now"]


@pytest.fixture(scope="module")
def one_epoch_run(nyu_splits, tmp_path_factory) -> Path:
    """``last.pt`` of the first of 3 epochs of a run as ``train --epochs 3`` starts it."""
    from depthkit.train import fit

    out = tmp_path_factory.mktemp("fit") / "run"
    fit(models.build_model("lraspp"), nyu_splits, "nyu", cli_profile(3), out, device="cpu", progress=False,
        stop_after=1)
    return out / "last.pt"


def test_resume_under_another_configuration_is_refused_with_the_differences(one_epoch_run):
    saved = checkpoint(one_epoch_run)["config"]  # what fit stored
    assert compare_config(saved, fit_config(cli_profile(3))) == []
    assert compare_config(saved, fit_config(cli_profile(4))) == []
    with pytest.raises(ConfigChangedError) as info:
        check_resume_config(saved, fit_config(cli_profile(3).with_budget("nyu", lr=0.01).replace(seed=1)), one_epoch_run)
    message = str(info.value)
    assert str(one_epoch_run) in message and "lr: 0.001 then, 0.01 now" in message
    assert "seed: 0 then, 1 now" in message and "--out" in message
    assert check_resume_config(None, fit_config(cli_profile(3)), "old.pt")["epochs_extended"] == []  # old checkpoints


# --------------------------------------------------------------------------------------------
# 4. Nothing hangs: weights behind a silent proxy, downloads behind any proxy
# --------------------------------------------------------------------------------------------
@pytest.fixture
def silent_proxy(monkeypatch):
    """A proxy that accepts connections and never answers, set in the environment."""
    server = SilentServer()
    use_proxy(monkeypatch, f"http://127.0.0.1:{server.port}")
    yield server
    server.close()


@pytest.fixture
def empty_hub(monkeypatch, tmp_path):
    """An empty torch-hub cache, so the LR-ASPP weights must be downloaded."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))


def test_probe_counts_a_proxy_that_never_answers_as_unreachable(silent_proxy):
    reached, _ = in_thread(lambda: models._can_reach("download.pytorch.org", timeout=0.5))
    assert reached is False
    assert silent_proxy.requests and silent_proxy.requests[0].startswith(b"CONNECT download.pytorch.org:443")


def test_pretrained_auto_falls_back_loudly_behind_a_silent_proxy(silent_proxy, empty_hub, monkeypatch, nyu_splits,
                                                                  smoke_profile, tmp_path):
    monkeypatch.setattr(models, "PROBE_TIMEOUT_S", 0.5)
    model, caught = in_thread(lambda: models.build_model("lraspp", pretrained="auto"))
    assert model.weights_source.startswith("random (fallback: ")
    assert any("PRETRAINED WEIGHTS NOT LOADED" in w and "random initialisation" in w for w in caught)
    from depthkit.train import fit

    fit(model, nyu_splits, "nyu", smoke_profile, tmp_path, device="cpu", progress=False, max_steps=1)
    assert checkpoint(tmp_path / "last.pt")["config"]["weights_source"] == model.weights_source
    assert json.loads((tmp_path / "history.json").read_text())["weights_source"] == [model.weights_source]


def test_a_download_that_stalls_after_connect_times_out_and_is_retried_once(monkeypatch, empty_hub):
    server = SilentServer(answer_connect=True)  # the probe passes; the TLS handshake then stalls
    use_proxy(monkeypatch, f"http://127.0.0.1:{server.port}")
    monkeypatch.setattr(models, "PROBE_TIMEOUT_S", 2.0)
    monkeypatch.setattr(models, "NETWORK_TIMEOUT_S", 0.5)
    monkeypatch.setattr(models, "RETRY_PAUSE_S", 0.0)
    try:
        model, caught = in_thread(lambda: models.build_model("lraspp", pretrained="auto"))
        with pytest.raises(models.WeightsUnavailableError, match="could not load COCO weights"):
            in_thread(lambda: models.build_model("lraspp", pretrained=True))
    finally:
        server.close()
    assert model.weights_source.startswith("random (fallback: ")
    assert any("trying again (2/2)" in w for w in caught)
    # per build: one probe + NETWORK_ATTEMPTS downloads, each a CONNECT through the proxy
    assert sum(r.startswith(b"CONNECT") for r in server.requests) == 2 * (1 + models.NETWORK_ATTEMPTS)


class _ProxyHandler(BaseHTTPRequestHandler):
    """A plain-HTTP proxy stand-in: answers every GET with five bytes and remembers the request line."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen.append(self.requestline)
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def no_dns(monkeypatch):
    """Name resolution fails for every host but 127.0.0.1 (a machine whose only way out is a proxy)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise socket.gaierror(socket.EAI_NONAME, f"no DNS here ({host})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_download_goes_through_the_proxy_without_its_own_dns_lookup(monkeypatch, tmp_path, no_dns):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    use_proxy(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}", schemes=("http",))
    item = {"url": "http://data.example.invalid/nyu.mat", "file": "nyu.mat", "size": 5, "sha256": None,
            "extract": False, "confirmed": True}
    try:
        path, _ = in_thread(lambda: downloads._fetch(item, tmp_path / "nyu.mat", timeout=2.0))
    finally:
        server.shutdown()
        server.server_close()
    assert path.read_bytes() == b"hello"
    assert _ProxyHandler.seen[-1].startswith("GET http://data.example.invalid/nyu.mat")


def test_without_a_proxy_the_dns_check_still_fails_fast(monkeypatch, tmp_path, no_dns):
    use_proxy(monkeypatch, "", schemes=())
    item = {"url": "http://data.example.invalid/nyu.mat", "file": "nyu.mat", "size": 5, "sha256": None,
            "extract": False, "confirmed": True}
    with pytest.raises(ConnectionError, match="cannot reach http://data.example.invalid/nyu.mat"):
        downloads._fetch(item, tmp_path / "nyu.mat", timeout=2.0)


# --------------------------------------------------------------------------------------------
# 5. One writer per run folder
# --------------------------------------------------------------------------------------------
HOLDER = """
import sys, time
from depthkit.runs import lock_run_folder
with lock_run_folder(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_and_a_dead_holder_does_not_block(tmp_path, cli_env, monkeypatch, capsys):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=cli_env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderLockedError) as info:
            with lock_run_folder(folder):
                pass
        assert str(folder) in str(info.value) and f"process {holder.pid}" in str(info.value)
        # through the CLI: refused before any data is prepared, in one line
        import depthkit.pipeline

        monkeypatch.setattr(depthkit.pipeline, "load_stage_data", lambda *a, **k: pytest.fail("worked before locking"))
        argv = ["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out", str(folder)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and str(folder) in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    assert (folder / ".lock").read_text().strip() == str(holder.pid)  # a stale lock file of a dead process...
    with lock_run_folder(folder):  # ...does not block
        assert (folder / ".lock").read_text().strip() == str(os.getpid())
        with lock_run_folder(folder):  # re-entrant within one process (the CLI and fit may both lock)
            pass


def test_guard_run_folder_checks_and_locks_the_out_dir(tmp_path):
    seen = []

    @guard_run_folder
    def fit_like(model, out_dir, epochs=1):
        seen.append((folder / ".lock").read_text().strip())
        return epochs

    folder = tmp_path / "deep" / "run"
    assert fit_like("m", folder, epochs=3) == 3 and seen == [str(os.getpid())]
    assert fit_like(model="m", out_dir=folder) == 1


# --------------------------------------------------------------------------------------------
# 6. Writable folders, and every OSError as one line with exit status 1
# --------------------------------------------------------------------------------------------
@pytest.fixture
def unwritable(monkeypatch, tmp_path) -> Path:
    """A folder in which creating a file fails with EACCES (simulated: root ignores chmod)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    real = runs.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / "x"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(runs.tempfile, "mkstemp", mkstemp)
    return folder


def test_check_writable_creates_the_folder(tmp_path):
    assert check_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())


def test_check_writable_names_the_folder_and_what_to_do(unwritable):
    with pytest.raises(PermissionError) as info:
        check_writable(unwritable)
    assert str(unwritable) in str(info.value) and "Permission denied" in str(info.value)
    assert "--out" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: chmod cannot test this")
def test_check_writable_on_a_really_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="cannot write in the folder"):
            check_writable(folder)
        with pytest.raises(PermissionError, match="cannot create the folder"):
            check_writable(folder / "sub")
    finally:
        folder.chmod(0o700)


def test_cli_train_into_an_unwritable_folder_is_one_line_and_status_1(unwritable, monkeypatch, capsys):
    import depthkit.pipeline

    monkeypatch.setattr(depthkit.pipeline, "load_stage_data", lambda *a, **k: pytest.fail("worked before checking"))
    argv = ["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out", str(unwritable)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(unwritable) in err and "depthkit train: error:" in err


def test_cli_turns_any_oserror_into_one_line_with_status_1(monkeypatch, capsys):
    from depthkit import cli

    def fail(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/cache/nyu.h5")

    monkeypatch.setattr(cli, "cmd_prepare", fail)
    assert main(["prepare", "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert err == ("depthkit prepare: error: /data/cache/nyu.h5: Permission denied (check the permissions, or "
                   "choose another folder (--out, DEPTHKIT_RUNS, DEPTHKIT_DATA))\n")


def test_cli_download_into_an_unwritable_folder_fails_before_the_network(unwritable, monkeypatch, capsys):
    monkeypatch.setattr(downloads, "_fetch", lambda *a, **k: pytest.fail("downloaded although unwritable"))
    assert main(["download", "nyu", "--root", str(unwritable)]) == 1
    assert str(unwritable) in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# 7. Full disk
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   OSError(getattr(errno, "EDQUOT", errno.ENOSPC), "Disk quota exceeded"),
                                   RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0: "
                                                "PytorchStreamWriter failed writing file data/0: file write failed")])
def test_full_disk_names_the_file_and_the_free_space_and_keeps_the_old_file(tmp_path, error):
    path = atomic_write_bytes(tmp_path / "last.pt", b"epoch 1")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"half of epoch 2")
        raise error

    with pytest.raises(OSError) as info:
        atomic_write(path, write)
    message = str(info.value)
    assert info.value.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    assert str(path) in message and "free on the disk" in message and "Free some space" in message
    assert path.read_bytes() == b"epoch 1"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    from depthkit.cli import describe_os_error

    assert str(path) in describe_os_error(info.value) and "[Errno" not in describe_os_error(info.value)


def test_other_write_errors_pass_unchanged(tmp_path):
    def write(tmp: Path) -> None:
        raise RuntimeError("a bug in the writer")

    with pytest.raises(RuntimeError, match="a bug in the writer"):
        atomic_write(tmp_path / "x.bin", write)


# --------------------------------------------------------------------------------------------
# 8. Stale temporary files
# --------------------------------------------------------------------------------------------
def test_temporary_files_carry_host_and_pid(tmp_path):
    names = []
    atomic_write(tmp_path / "a.bin", lambda tmp: names.append(tmp.name) or tmp.write_bytes(b"x"))
    assert names[0].startswith(f".a.bin.{files.host_tag()}-{os.getpid()}-") and names[0].endswith(".tmp")
    assert files._TMP_NAME.match(names[0])


def test_stale_temporary_files_are_removed_on_the_next_write_to_the_folder(tmp_path):
    host, old = files.host_tag(), time.time() - 2 * files.STALE_TMP_AGE_S
    made = {
        "dead writer": f".last.pt.{host}-{dead_pid()}-abcd1234.tmp",
        "old, no pid (older depthkit)": ".best.pt.k2j3h4g5.tmp",
        "live writer": f".last.pt.{host}-{os.getpid()}-efgh5678.tmp",
        "fresh, no pid": ".history.json.q1w2e3r4.tmp",
        "dead pid, other host": f".last.pt.{'0' * 6 if host != '0' * 6 else '1' * 6}-{dead_pid()}-ijkl9012.tmp",
        "not ours": ".notes.tmp",
        "not ours, old": ".my.notes.tmp",
    }
    for label, name in made.items():
        (tmp_path / name).write_bytes(b"partial")
    for name in (made["old, no pid (older depthkit)"], made["not ours, old"]):
        os.utime(tmp_path / name, (old, old))
    atomic_write_bytes(tmp_path / "history.json", b"{}")
    left = {p.name for p in tmp_path.iterdir()}
    assert made["dead writer"] not in left and made["old, no pid (older depthkit)"] not in left
    for label in ("live writer", "fresh, no pid", "dead pid, other host", "not ours", "not ours, old"):
        assert made[label] in left, label


WRITER = """
import sys, time
from depthkit.files import atomic_write

def write(tmp):
    tmp.write_bytes(b"half a checkpoint")
    print("writing", flush=True)
    time.sleep(120)

atomic_write(sys.argv[1], write)
"""


def test_a_writer_killed_mid_write_leaves_nothing_after_the_next_write(tmp_path, cli_env):
    target = tmp_path / "last.pt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env=cli_env, stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert len(list(tmp_path.glob(".last.pt.*.tmp"))) == 1
    atomic_write_bytes(tmp_path / "history.json", b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


# --------------------------------------------------------------------------------------------
# 12, 13. Numbers and model names on the command line: usage errors (status 2) before any work
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["train", "--model", "lraspp", "--stage", "nyu", "--epochs", "0"],
    ["train", "--model", "lraspp", "--stage", "nyu", "--epochs", "-2"],
    ["train", "--model", "lraspp", "--stage", "nyu", "--epochs", "two"],
    ["train", "--model", "lraspp", "--stage", "nyu", "--max-steps", "0"],
    ["bench", "--steps", "0"],
    ["bench", "--batch", "0"],
    ["bench", "--size", "0"],
    ["bench", "--size", "16"],
    ["bench", "--size", "1.5"],
    ["bench", "--data-images", "0"],
    ["bench", "--workers", "-1"],
    ["bench", "--model", "lraspp,bogus"],
    ["rehearse", "--diw-images", "0"],
    ["rehearse", "--steps", "0"],
    ["rehearse", "--models", "bogus"],
    ["reproduce", "--models", "lraspp,bogus"],
    ["reproduce", "--models", ","],
], ids=lambda argv: " ".join(argv))
def test_bad_numbers_and_names_are_usage_errors(argv, monkeypatch, capsys):
    from depthkit import cli

    for name in ("cmd_train", "cmd_bench", "cmd_rehearse", "cmd_reproduce"):
        monkeypatch.setattr(cli, name, lambda args: pytest.fail("ran although the arguments are bad"))
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_every_numeric_option_is_validated_by_the_parser():
    """No option takes a bare int or float: each one goes through a checking type."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    loose = [f"{name} {opt}" for name, p in sub.choices.items() for a in p._actions
             for opt in a.option_strings[:1] if a.type in (int, float)]
    assert not loose


# --------------------------------------------------------------------------------------------
# 14. A split with no valid depth fails before training, by name
# --------------------------------------------------------------------------------------------
def depth_data(depths: torch.Tensor, name: str = "nyu_val") -> DepthData:
    """A small NYU-style split with the given depths."""
    return DepthData(torch.zeros(len(depths), 3, 8, 8, dtype=torch.uint8), depths, name=name)


def test_a_split_without_valid_depth_is_refused_by_name():
    check_has_valid_depth(depth_data(torch.rand(3, 1, 8, 8) + 0.5), "nyu val")
    one = torch.zeros(70, 1, 8, 8)
    one[69, 0, 7, 7] = 2.0  # a single valid pixel, in the second chunk, is enough
    check_has_valid_depth(depth_data(one), "nyu val")
    for bad in (torch.zeros(5, 1, 8, 8), torch.full((5, 1, 8, 8), float("nan")), -torch.ones(5, 1, 8, 8)):
        with pytest.raises(ValueError, match=r"the split nyu val \(nyu_val\) has no valid depth pixel in its 5 images"):
            check_has_valid_depth(depth_data(bad), "nyu val")
    with pytest.raises(ValueError, match="the split diw val holds no images"):
        check_has_valid_depth(DepthData(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), name="diw val"), "diw val")
    pairs = DepthData(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), pairs=torch.zeros(2, 1, 4, dtype=torch.long),
                      relation=torch.ones(2, 1), name="diw val")
    check_has_valid_depth(pairs, "diw val")  # no depths: rows are enough


def test_valid_depth_check_reads_on_disk_splits(nyu_splits):
    check_has_valid_depth(nyu_splits["val"], "nyu val")


# --------------------------------------------------------------------------------------------
# Behaviour that is already there: pinned by tests
# --------------------------------------------------------------------------------------------
def test_jpeg_with_exif_orientation_6_loads_rotated(tmp_path):
    from PIL import Image

    from depthkit.data.images import load_rgb

    pixels = np.zeros((20, 40, 3), np.uint8)  # stored landscape 40 x 20: left half red, right half blue
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = load_rgb(tmp_path / "phone.jpg")
    assert rgb.shape == (40, 20, 3)  # portrait
    assert rgb[:15, :, 0].mean() > 200 and rgb[25:, :, 2].mean() > 200  # the left half is now on top


def write_nyu_layout(path: Path, n: int, w: int = 16, h: int = 12) -> Path:
    """An NYU-layout .mat (HDF5): images (N, 3, W, H) uint8, depths (N, W, H) float32."""
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((n, 3, w, h), np.uint8)
        f["depths"] = np.ones((n, w, h), np.float32)
    return path


def test_an_nyu_file_without_frames_is_refused_by_name(tmp_path):
    from depthkit.data.cache import prepare_nyu

    mat = write_nyu_layout(tmp_path / "nyu_depth_v2_labeled.mat", n=0)
    with pytest.raises(ValueError, match=r"nyu_depth_v2_labeled.mat: no frames to prepare \(the file holds 0 images"):
        prepare_nyu(mat, cache_dir=tmp_path / "cache", size=8)
    empty = tmp_path / "zero_bytes.mat"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="zero_bytes.mat: not an HDF5 / MATLAB v7.3 file"):
        prepare_nyu(empty, cache_dir=tmp_path / "cache", size=8)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["zero bytes", "blank lines"])
def test_an_empty_diw_csv_is_refused_by_name(tmp_path, content):
    from depthkit.data.diw import read_diw_csv

    csv = tmp_path / "DIW_test.csv"
    csv.write_bytes(content)
    with pytest.raises(ValueError, match="DIW_test.csv: the DIW CSV holds no records"):
        read_diw_csv(csv, check_images=False)


def test_a_diw_csv_that_is_not_utf8_names_the_line(tmp_path):
    from depthkit.data.diw import read_diw_csv

    csv = tmp_path / "DIW_test.csv"
    csv.write_bytes(b"./DIW_test/a.thumb\n10,20,30,40,>,100,80\n./DIW_test/caf\xe9.thumb\n10,20,30,40,<,100,80\n")
    with pytest.raises(ValueError, match=r"DIW_test.csv:3: not UTF-8 text .* Re-save it as UTF-8"):
        read_diw_csv(csv, check_images=False)
