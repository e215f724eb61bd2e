"""Shared fixtures: every test runs against temporary data, runs and figures folders."""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Point DEPTHKIT_DATA / _RUNS / _FIGURES at a temporary tree so tests never touch the checkout's."""
    root = tmp_path_factory.mktemp("depthkit")
    dirs = {"data": root / "data", "runs": root / "runs", "figures": root / "figures"}
    for d in dirs.values():
        d.mkdir()
    shutil.copy(REPO / "data" / "nyu_splits.json", dirs["data"] / "nyu_splits.json")
    old = {k: os.environ.get(k) for k in ("DEPTHKIT_DATA", "DEPTHKIT_RUNS", "DEPTHKIT_FIGURES", "DEPTHKIT_PROFILE")}
    os.environ.update(DEPTHKIT_DATA=str(dirs["data"]), DEPTHKIT_RUNS=str(dirs["runs"]),
                      DEPTHKIT_FIGURES=str(dirs["figures"]), DEPTHKIT_PROFILE="smoke")
    yield dirs
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def smoke_profile():
    """The smoke profile (tiny synthetic data at 64x64)."""
    from depthkit.config import get_profile

    return get_profile("smoke")


@pytest.fixture(scope="session")
def smoke_prepared(isolated_dirs, smoke_profile):
    """The smoke profile's synthetic data, generated and cached once per session."""
    from depthkit.pipeline import prepare_data

    return prepare_data(smoke_profile)


@pytest.fixture(scope="session")
def nyu_splits(smoke_profile, smoke_prepared):
    """Smoke NYU-layout train/val/test splits as DepthData."""
    from depthkit.pipeline import load_stage_data

    return load_stage_data(smoke_profile, "nyu", smoke_prepared)


@pytest.fixture(scope="session")
def diw_splits(smoke_profile, smoke_prepared):
    """Smoke DIW-layout train/val/test splits as DepthData."""
    from depthkit.pipeline import load_stage_data

    return load_stage_data(smoke_profile, "diw", smoke_prepared)


@pytest.fixture(scope="module")
def no_network():
    """Sockets refuse to connect for a whole test module: nothing in it may download."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the depthkit tests")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket.socket, "connect", refuse)
        yield


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict:
    """Environment of a ``python -m depthkit`` subprocess: its own data and runs folders, smoke profile."""
    root = tmp_path_factory.mktemp("cli")
    (root / "data").mkdir()
    (root / "runs").mkdir()
    shutil.copy(REPO / "data" / "nyu_splits.json", root / "data" / "nyu_splits.json")
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, DEPTHKIT_DATA=str(root / "data"), DEPTHKIT_RUNS=str(root / "runs"),
                DEPTHKIT_FIGURES=str(root / "figures"), DEPTHKIT_PROFILE="smoke", TQDM_DISABLE="1",
                MPLBACKEND="Agg")
