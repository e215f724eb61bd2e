"""Issue #19: nothing silently wrong. Real faults on the paths users run: a damaged cache, a real
SIGINT and SIGKILL to ``python -m depthkit train``, a diverging run, and the checks ``fit`` wires
in, tested through ``fit`` and the CLI. (A full disk, for every writer: tests/test_disk_full.py.)"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from depthkit import models
from depthkit.cli import main
from depthkit.data import load_nyu_cache, prepare_nyu
from depthkit.runs import ConfigChangedError


def assert_same_cache(a: dict, b: dict) -> None:
    """Two opened caches hold the same arrays (image paths compared by name: the data folders differ)."""
    assert a.keys() == b.keys()
    for key in a.keys() - {"fingerprint"}:
        if key == "paths":
            assert [Path(p).name for p in a[key]] == [Path(p).name for p in b[key]]
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
        else:
            assert a[key] == b[key], key


# --------------------------------------------------------------------------------------------
# 1. A cache cut short by a full disk, or written by an older depthkit
# --------------------------------------------------------------------------------------------
def small_nyu(path: Path, n: int = 5) -> Path:
    """An NYU-layout .mat (HDF5) of ``n`` random 16x12 frames with depths of 1-5 m."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 255, (n, 3, 16, 12), dtype=np.uint8)
        f["depths"] = rng.uniform(1, 5, (n, 16, 12)).astype(np.float32)
    return path


def _drop_checksums(path: Path) -> None:
    """Make ``path`` look like a cache an older depthkit renamed into place: version 1, no checksums."""
    with h5py.File(path, "r+") as f:
        f.attrs["cache_version"] = 1
        del f.attrs["checksums"]


def _truncate(path: Path) -> None:
    """Cut the last quarter of ``path`` off, as a disk that filled up would."""
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size * 3 // 4)


def _zero_depths(path: Path) -> None:
    """A cache whose rows an interrupted write left as zeros, but which still says it is complete."""
    with h5py.File(path, "r+") as f:
        f.attrs["cache_version"] = 1
        f["depths"][2:] = 0


@pytest.mark.parametrize("damage, notice", [(_drop_checksums, "older depthkit"), (_truncate, "damaged"),
                                            (_zero_depths, "older depthkit")])
def test_a_cache_from_an_older_version_or_damaged_is_rebuilt_with_a_notice(tmp_path, damage, notice):
    """Catches: a cache accepted on its fingerprint alone -- one renamed into place by an older
    depthkit (which did not verify its rows) or cut short is rebuilt, with one warning naming it."""
    mat = small_nyu(tmp_path / "nyu_depth_v2_labeled.mat")
    cache = prepare_nyu(mat, cache_dir=tmp_path / "cache", size=8)
    good = load_nyu_cache(cache, mmap=False)
    damage(cache)
    with pytest.warns(UserWarning, match=rf"{cache.name}: .*{notice}.*; rebuilding it") as caught:
        assert prepare_nyu(mat, cache_dir=tmp_path / "cache", size=8) == cache
    assert len(caught) == 1
    assert_same_cache(load_nyu_cache(cache, mmap=False), good)
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


# --------------------------------------------------------------------------------------------
# 3. Errors as one line: a diverging run, Ctrl-C
# --------------------------------------------------------------------------------------------
def train_argv(out: Path, epochs: int, stage: str = "nyu") -> list[str]:
    """``python -m depthkit train`` arguments for LR-ASPP on the smoke profile into ``out``."""
    return ["train", "--model", "lraspp", "--stage", stage, "--profile", "smoke", "--out", str(out),
            "--epochs", str(epochs)]


def last_stderr_line(capsys) -> str:
    """The last line the command printed on stderr (progress bars and warnings come before it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("stage", ["nyu", "diw"])
def test_a_diverging_run_is_one_line_with_status_2(stage, monkeypatch, capsys, tmp_path):
    """Catches: ``FloatingPointError`` from ``train_one_epoch`` escaping the CLI as a traceback, and a
    training loss that hides NaN predictions (the NYU loss once skipped non-finite predicted pixels
    and stayed finite, so NYU divergence surfaced only at validation). The run really diverges: the
    smoke profile's stage with an infinite learning rate."""
    from depthkit import config

    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setitem(config.PROFILES, "smoke", config.PROFILES["smoke"].with_budget(stage, lr=float("inf")))
    assert main(train_argv(tmp_path / "run", 1, stage=stage)) == 2
    line = last_stderr_line(capsys)
    assert line.startswith("depthkit train: error: ") and "the training loss became nan" in line, line
    assert not (tmp_path / "run" / "last.pt").exists()


TRAIN_UNTIL_KILLED = 40  # epochs asked for by the runs that a signal ends (far more than they get to)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Poll until ``path`` exists while ``proc`` runs."""
    t0 = time.monotonic()
    while proc.poll() is None and not path.exists():
        assert time.monotonic() - t0 < timeout, f"{path} did not appear within {timeout} s"
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before the signal: {proc.returncode}"


def default_ctrl_c() -> None:
    """In the child before it runs Python: SIGINT back to its default action, whatever the test process inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_during_train_is_one_line_status_130_and_the_checkpoint_resumes(cli_env, tmp_path):
    """Catches: a ``KeyboardInterrupt`` traceback (status -2) on Ctrl-C. A real SIGINT to the CLI
    after the first epoch: one line that names ``last.pt`` and its epoch and says the same command
    resumes; status 130; ``last.pt`` intact."""
    out = tmp_path / "run"
    # As in a terminal, the run starts with Ctrl-C at its default: a child inherits an ignored SIGINT (pytest started
    # as a background job of a non-interactive shell), and then it rightly trains on to the end with status 0.
    proc = subprocess.Popen([sys.executable, "-m", "depthkit", *train_argv(out, TRAIN_UNTIL_KILLED)], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c)
    wait_for(out / "history.json", proc)  # epoch 1 is saved
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, (proc.returncode, stderr[-3000:])
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    from depthkit.checkpoints import load_checkpoint

    epoch = load_checkpoint(out / "last.pt")["epoch"]
    assert 1 <= epoch < TRAIN_UNTIL_KILLED
    assert stderr.strip().splitlines()[-1] == (f"depthkit train: interrupted; epoch {epoch} is saved in {out / 'last.pt'}; "
                              f"the same command resumes from it")
    assert len(json.loads((out / "history.json").read_text())["epoch"]) in (epoch - 1, epoch)  # or being saved
    assert not list(out.glob(".*.tmp"))


# --------------------------------------------------------------------------------------------
# 4. The checks fit wires in, tested where they are wired: through fit and the CLI
# --------------------------------------------------------------------------------------------
def test_fit_refuses_to_resume_under_another_configuration(nyu_splits, smoke_profile, tmp_path):
    """Catches: ``_resume`` no longer calling ``check_resume_config`` -- a run resumed with another
    learning rate is refused before any step, naming the difference, and ``last.pt`` is kept."""
    from depthkit.train import fit

    out = tmp_path / "run"
    profile = smoke_profile.with_budget("nyu", frozen_epochs={}, epochs={"*": 2})
    fit(models.build_model("lraspp"), nyu_splits, "nyu", profile, out, device="cpu", progress=False, stop_after=1)
    before = (out / "last.pt").read_bytes()
    with pytest.raises(ConfigChangedError, match=r"lr: 0.001 then, 0.01 now"):
        fit(models.build_model("lraspp"), nyu_splits, "nyu", profile.with_budget("nyu", lr=0.01), out, device="cpu",
            progress=False)
    assert (out / "last.pt").read_bytes() == before


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """The folder of a finished 2-epoch ``python -m depthkit train`` of LR-ASPP on smoke NYU (in this process)."""
    out = tmp_path_factory.mktemp("cli_run") / "run"
    assert main(train_argv(out, 2)) == 0
    return out


def test_cli_refuses_to_resume_with_fewer_epochs_in_one_line(cli_run, capsys):
    """Catches: ``_resume`` no longer calling ``check_resume_config`` -- ``train --epochs 1`` on a
    folder that a 2-epoch run finished is refused (status 2, one line naming last.pt and the
    difference) instead of quietly reporting the old run as done."""
    out = cli_run
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(train_argv(out, 1)) == 2
    line = last_stderr_line(capsys)
    assert line.startswith("depthkit train: error: ") and str(out / "last.pt") in line, line
    assert "epochs: 2 then, 1 now" in line, line
    assert (out / "last.pt").read_bytes() == before


def test_fit_refuses_a_training_split_without_valid_depth(nyu_splits, smoke_profile, tmp_path):
    """Catches: ``fit`` no longer checking its splits for valid depth -- a training split whose
    depths are all 0 (invalid) is refused by name before any step, not trained into NaN."""
    from depthkit.data.loader import DepthData
    from depthkit.train import fit

    train = nyu_splits["train"]
    blank = DepthData(images=train.images[:], depths=torch.zeros_like(train.depths[:]), name="blank")
    with pytest.raises(ValueError, match=r"nyu train \(blank\)"):
        fit(models.build_model("lraspp"), dict(nyu_splits, train=blank), "nyu", smoke_profile, tmp_path / "run",
            device="cpu", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_cli_refuses_a_cache_without_valid_depth_in_one_line(smoke_prepared, capsys, monkeypatch, tmp_path):
    """Catches: ``fit`` no longer checking its splits for valid depth, on the CLI's path: an NYU
    cache whose depths are all 0 (what a silently failed write once left) ends ``train`` with one
    line naming the split, status 2."""
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    (data / "nyu_splits.json").write_bytes((smoke_prepared.nyu_splits).read_bytes())
    (data / "synthetic").symlink_to(smoke_prepared.root.parent, target_is_directory=True)
    for cache in (smoke_prepared.nyu_cache, *smoke_prepared.diw_caches.values()):
        (data / "cache" / cache.name).write_bytes(cache.read_bytes())
    with h5py.File(data / "cache" / smoke_prepared.nyu_cache.name, "r+") as f:
        f["depths"][...] = 0
    monkeypatch.setenv("DEPTHKIT_DATA", str(data))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main(train_argv(tmp_path / "run", 1)) == 2
    line = last_stderr_line(capsys)
    assert line.startswith("depthkit train: error: ") and "nyu train" in line and "valid depth" in line, line


# --------------------------------------------------------------------------------------------
# 5. The published protocol where users evaluate
# --------------------------------------------------------------------------------------------
def test_cli_evaluate_scores_nyu_under_the_eigen_protocol_as_reproduce_does(cli_run, smoke_profile, smoke_prepared,
                                                                             capsys, tmp_path):
    """Catches: ``--protocol`` ignored (or the Eigen protocol scored at the prepared size): the
    table names the protocol and the δ thresholds, and the numbers are those of the report's own
    Eigen evaluation (original 640x480 frames) of the same checkpoint; ``resized`` differs."""
    from depthkit.pipeline import load_stage_data, nyu_frames
    from depthkit.evaluate import nyu_eigen_metrics
    from depthkit.checkpoints import load_model

    records = {}
    for protocol in ("eigen", "resized"):
        capsys.readouterr()
        assert main(["evaluate", str(cli_run / "best.pt"), "--data", "nyu", "--protocol", protocol, "--profile",
                     "smoke", "--device", "cpu", "--json", str(tmp_path / f"{protocol}.json")]) == 0
        out = capsys.readouterr().out
        assert f"protocol {protocol}: " in out and "δ<1.25 " in out and "δ<1.25³" in out, out
        records[protocol] = json.loads((tmp_path / f"{protocol}.json").read_text())
        assert records[protocol]["protocol"] == protocol
    test = load_stage_data(smoke_profile, "nyu", smoke_prepared)["test"]
    frames = nyu_frames(smoke_profile, smoke_prepared, "test")
    expected = nyu_eigen_metrics(load_model(cli_run / "best.pt"), test, smoke_prepared.nyu_mat, frames)
    assert records["eigen"]["metrics"] == pytest.approx(expected, rel=1e-5)
    assert "normalized_mse" in records["resized"]["metrics"]
    assert records["resized"]["metrics"]["abs_rel"] != pytest.approx(expected["abs_rel"], rel=1e-3)
    assert main(["evaluate", str(cli_run / "best.pt"), "--data", "diw", "--protocol", "eigen", "--profile",
                 "smoke"]) == 2
    assert "--protocol eigen scores NYU depth" in last_stderr_line(capsys)


# --------------------------------------------------------------------------------------------
# 6. Dataset downloads retry a stalled connection, with the weights' retry policy
# --------------------------------------------------------------------------------------------
class _StallOnceHandler(BaseHTTPRequestHandler):
    """Serves ``BODY``; the first request gets half of it and then silence, later ones honour ``Range``."""

    requests: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        first = not type(self).requests
        type(self).requests.append(self.headers.get("Range"))
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        if start:  # RFC 9110 15.3.7: a 206 names the range it carries
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        if first:
            self.wfile.write(BODY[:len(BODY) // 2])
            self.wfile.flush()
            time.sleep(3)  # stalls past the client's timeout
            return
        self.wfile.write(BODY[start:])

    def log_message(self, *args) -> None:
        pass


BODY = bytes(range(256)) * 400


def test_a_dataset_download_that_stalls_is_retried_and_resumes(tmp_path, monkeypatch):
    """Catches: dataset downloads without retries (one stall ends the command) or retries that start
    over: the second try asks for the rest of the file (Range) and the file is whole."""
    from http.server import ThreadingHTTPServer

    from depthkit.data import downloads

    server = ThreadingHTTPServer(("127.0.0.1", 0), _StallOnceHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(downloads, "RETRY_PAUSE_S", 0.0)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    item = {"url": f"http://127.0.0.1:{server.server_address[1]}/nyu.mat", "file": "nyu_depth_v2_labeled.mat",
            "size": len(BODY), "sha256": None, "extract": False, "confirmed": True}
    monkeypatch.setitem(downloads.DOWNLOADS, "nyu", [item])
    try:
        with pytest.warns(UserWarning, match=r"downloading nyu_depth_v2_labeled.mat failed .*trying again \(2/3\)"):
            path = downloads.download("nyu", tmp_path, timeout=0.5)
    finally:
        server.shutdown()
        server.server_close()
    assert path.read_bytes() == BODY
    assert _StallOnceHandler.requests == [None, f"bytes={len(BODY) // 2}-"]
