"""torchrun: two gloo processes on the CPU train one model; rank shards; checkpoints load in one process."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from depthkit import distributed
from depthkit.config import repo_root


def test_shards_cover_every_position_once(monkeypatch):
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    seen = {}
    for r in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        seen[r] = {"eval": distributed.shard(7), "train": distributed.shard(7, seed=3, epoch=1, shuffle=True),
                   "next": distributed.shard(7, seed=3, epoch=2, shuffle=True)}
    assert sorted(seen[0]["eval"] + seen[1]["eval"]) == list(range(7))  # evaluation: each image exactly once
    assert set(seen[0]["train"]) | set(seen[1]["train"]) == set(range(7))
    assert len(seen[0]["train"]) == len(seen[1]["train"])  # equal steps on every rank
    assert seen[0]["train"] != seen[0]["next"]  # set_epoch reshuffles


def test_one_process_is_not_distributed():
    assert distributed.shard(5) is None and distributed.world_size() == 1 and distributed.is_main()


def test_torchrun_two_gloo_processes_train_and_write_once(tmp_path):
    """The README's torchrun line at smoke size: rank 0 writes a checkpoint that loads in one process."""
    env_before = {k: os.environ[k] for k in ("DEPTHKIT_DATA", "DEPTHKIT_RUNS")}
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(repo_root() / "data" / "nyu_splits.json", data)
    env = dict(os.environ, DEPTHKIT_DATA=str(data), DEPTHKIT_RUNS=str(tmp_path / "runs"), OMP_NUM_THREADS="1",
               TQDM_DISABLE="1")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "depthkit",
           "train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--epochs", "2", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"last_epoch"') == 1  # rank 0 alone reports
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["config"]["world_size"] == 2 and state["epoch"] == 2
    assert not any(k.startswith("module.") for k in state["model"])
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2] and "val_normalized_mse" in history

    from depthkit.checkpoints import load_model

    model = load_model(out / "last.pt")  # a single process reads what two processes trained
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)
    # the validation metric summed over the two ranks' shards equals one process scoring the whole split
    from depthkit.config import get_profile
    from depthkit.pipeline import load_stage_data
    from depthkit.evaluate import evaluate

    os.environ.update(DEPTHKIT_DATA=str(data), DEPTHKIT_RUNS=str(tmp_path / "runs"))
    try:
        val = load_stage_data(get_profile("smoke"), "nyu")["val"]
    finally:
        os.environ.update(DEPTHKIT_DATA=env_before["DEPTHKIT_DATA"], DEPTHKIT_RUNS=env_before["DEPTHKIT_RUNS"])
    single = evaluate(model, val, "nyu", batch_size=8, device="cpu")
    assert history["val_normalized_mse"][-1] == pytest.approx(single["normalized_mse"], rel=1e-4)


BARRIER_SCRIPT = """
import os, sys, time
from datetime import timedelta
import torch.distributed as dist
from depthkit import distributed
dist.init_process_group("gloo", timeout=timedelta(seconds=10))  # the collectives' timeout, short here
distributed.init_distributed()  # joins the group above, adds the preparation barrier's own
if distributed.rank() == 0:
    time.sleep(15)  # rank 0 "prepares the data" for longer than the collectives' timeout
distributed.barrier()
distributed.cleanup()
print("through", distributed.rank() if dist.is_initialized() else "")
"""


@pytest.mark.slow
def test_ranks_wait_for_data_preparation_longer_than_the_collective_timeout(tmp_path):
    """torchrun: rank 1 waits at the barrier while rank 0 prepares, beyond the process group's timeout."""
    script = tmp_path / "barrier.py"
    script.write_text(BARRIER_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1"))
             for r in (0, 1)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err[-2000:]
