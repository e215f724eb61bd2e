"""Weights that are what the table says (issue #32, section 4).

``report`` either loads the pretrained weights or stops with one line at the start; ``--pretrained no``
chooses random init knowingly; every model's weights' source is written into its checkpoints,
``results.json``, ``results.md``, the comparison table's caption and ``compare``'s verdict.

Offline is real here: the weight caches are empty temporary folders (``TORCH_HOME``, ``HF_HOME``), the
``python -m depthkit`` subprocesses reach the internet only through an HTTPS proxy on a closed local port
(every connection is refused, as on a machine without a network), and the in-process tests run with
sockets disabled. The "pretrained" file is a state_dict of the right architecture saved under the
exact name torchvision looks for, so the real loading path reads it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthkit import models
from depthkit.checkpoints import load_checkpoint, load_model, save_checkpoint
from depthkit.cli import build_parser, main, profile_of
from depthkit.config import get_profile
from depthkit.reproduce import reproduce, results_weights
from depthkit.train import check_initial_weights, train_stage
from depthkit.tools.compare import BY_DESIGN, compare_results, format_comparison, spread_summary

REPO = Path(__file__).resolve().parents[1]
LRASPP_LABEL = "LR-ASPP MobileNetV3-Large"

pytestmark = pytest.mark.usefixtures("no_network")  # nothing here may download (tests/conftest.py)


def _closed_port() -> int:
    """A local port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def offline_env(tmp_path) -> dict:
    """A ``python -m depthkit`` environment without a network and with empty weight caches and data folders."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    (tmp_path / "data").mkdir()
    shutil.copy(REPO / "data" / "nyu_splits.json", tmp_path / "data" / "nyu_splits.json")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "hf_hub_offline")}
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env.update(PYTHONPATH=path, TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               HF_HUB_CACHE=str(tmp_path / "hf" / "hub"), HTTPS_PROXY=proxy, https_proxy=proxy, HTTP_PROXY=proxy,
               http_proxy=proxy, DEPTHKIT_DATA=str(tmp_path / "data"), DEPTHKIT_RUNS=str(tmp_path / "runs"),
               DEPTHKIT_FIGURES=str(tmp_path / "figures"), TQDM_DISABLE="1", MPLBACKEND="Agg")
    env.pop("DEPTHKIT_PROFILE", None)
    return env


def _depthkit(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "depthkit", *args], env=env, capture_output=True, text=True,
                          timeout=240, cwd=REPO)


def _untouched(env: dict) -> None:
    """Nothing was prepared, trained or written: the data folder holds only the split file, no checkpoint or result exists."""
    assert sorted(p.name for p in Path(env["DEPTHKIT_DATA"]).iterdir()) == ["nyu_splits.json"]
    assert not list(Path(env["DEPTHKIT_RUNS"]).rglob("*.pt"))
    assert not list(Path(env["DEPTHKIT_FIGURES"]).rglob("*.*"))


# ----- the switch, and report's default -----------------------------------------------------


@pytest.mark.parametrize("flag, expected", [(None, True), ("yes", True), ("no", False), ("auto", "auto")])
def test_pretrained_switch_maps_onto_the_profile(flag, expected):
    argv = ["train", "--profile", "report", "--model", "lraspp", "--stage", "nyu"] + (["--pretrained", flag] if flag else [])
    pretrained = profile_of(build_parser().parse_args(argv)).pretrained
    assert pretrained == expected and type(pretrained) is type(expected)
    assert get_profile("report").pretrained is True  # report: the weights, or a stop


@pytest.mark.parametrize("argv, cache", [
    (["train", "--profile", "report", "--model", "lraspp", "--stage", "nyu"], "torch"),
    (["train", "--profile", "smoke", "--pretrained", "yes", "--model", "lraspp", "--stage", "nyu"], "torch"),
    (["reproduce", "--profile", "smoke", "--pretrained", "yes", "--models", "unetpp_mnv2"], "hf"),
], ids=["report-train", "smoke-yes-train", "smoke-yes-reproduce-hf"])
@pytest.mark.slow
def test_offline_pretrained_yes_stops_with_one_line_before_any_work(offline_env, tmp_path, argv, cache):
    """Catches: a report run that falls back to random weights offline (and trains, and prints its numbers
    beside the report's), or one that stops only after preparing the data, or with a traceback."""
    done = _depthkit(offline_env, *argv)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith(f"depthkit {argv[0]}: error: ") and "cannot be reached" in line
    assert str(tmp_path / cache) in line  # the cache path the weights belong in
    assert "run once with internet access" in line and "--pretrained no" in line  # the two ways out
    assert "epoch" not in done.stdout.lower()
    _untouched(offline_env)


# ----- what the results say ---------------------------------------------------------------------


def _lraspp_cache_file() -> Path:
    from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights

    return models._torch_hub_file(LRASPP_MobileNet_V3_Large_Weights.DEFAULT.url)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """Empty torch-hub and Hugging Face caches under a temporary TORCH_HOME / HF cache, for the whole module."""
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("weights_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(root / "torch"))
        patch.setattr(torch.hub, "_hub_dir", None)  # torch.hub.get_dir() then follows TORCH_HOME
        patch.setattr(constants, "HF_HUB_CACHE", str(root / "hf" / "hub"))
        yield root


def _reproduce_cli(root: Path, name: str, pretrained: str) -> dict:
    """``python -m depthkit reproduce --profile smoke --pretrained P --models lraspp`` in this process; its results.json."""
    out = root / f"figures_{name}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPTHKIT_RUNS", str(root / f"runs_{name}"))  # its own runs: never another test's
        assert main(["reproduce", "--profile", "smoke", "--pretrained", pretrained, "--models", "lraspp",
                     "--out", str(out), "--device", "cpu"]) == 0
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def random_run(caches) -> dict:
    return _reproduce_cli(caches, "random", "no")


@pytest.fixture(scope="module")
def pretrained_run(caches) -> dict:
    """The run with the COCO file in the cache: a random state_dict of LR-ASPP saved where torchvision looks."""
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(5)
    path = _lraspp_cache_file()
    assert str(caches) in str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).state_dict(), path)
    try:  # the library call, capped at one step and one evaluation batch per stage: the labels, not the numbers
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DEPTHKIT_RUNS", str(caches / "runs_pretrained"))
            return reproduce(get_profile("smoke").replace(pretrained=True), models=("lraspp",),
                             out=caches / "figures_pretrained", device="cpu", progress=False, max_steps=1)
    finally:
        path.unlink()  # from here on offline and not cached again


@pytest.mark.slow
def test_random_init_chosen_knowingly_is_named_in_every_table(random_run, caches):
    """Catches: results.json / results.md / the figure caption that never say the weights were random."""
    assert random_run["models"]["lraspp"]["weights"] == "random init"
    md = (caches / "figures_random" / "results.md").read_text()
    assert f"  - {LRASPP_LABEL}: random init" in md  # the line per model
    assert f"Weights — ours: {LRASPP_LABEL}: random init. The report's: pretrained" in md  # the table's caption
    assert "differs from the report's by design" in md
    for stage in ("nyu", "diw"):
        assert load_checkpoint(caches / "runs_random" / "smoke" / f"lraspp_{stage}" / "best.pt")["weights"] == "random init"


@pytest.mark.slow
def test_a_local_file_in_the_real_format_loads_and_is_labelled_pretrained(pretrained_run, caches):
    """Catches: a label that says what was asked for rather than what loaded, or one lost in the DIW stage."""
    label = models.pretrained_label("lraspp")
    assert label.startswith("pretrained: COCO-VOC (torchvision LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1")
    assert pretrained_run["models"]["lraspp"]["weights"] == label
    assert pretrained_run["histories"]["lraspp NYU"]["weights_source"][0] == "coco"
    md = (caches / "figures_pretrained" / "results.md").read_text()
    assert f"  - {LRASPP_LABEL}: {label}" in md and f"Weights — ours: {LRASPP_LABEL}: {label}." in md
    assert "differs from the report's by design" not in md
    runs = caches / "runs_pretrained" / "smoke"
    for stage in ("nyu", "diw"):  # each checkpoint records where the weights started from
        state = load_checkpoint(runs / f"lraspp_{stage}" / "best.pt")
        assert state["weights"] == label, stage
        assert load_model(runs / f"lraspp_{stage}" / "best.pt").weights_label == label


@pytest.mark.slow
def test_a_finished_pretrained_run_is_reused_offline_without_its_weights_file(pretrained_run, caches, nyu_splits,
                                                                               monkeypatch):
    """Catches: a finished or resumed run that asks for the download again (offline: a stop for nothing),
    or that relabels its weights after the rebuild."""
    assert not _lraspp_cache_file().exists()
    monkeypatch.setenv("DEPTHKIT_RUNS", str(caches / "runs_pretrained"))
    profile = get_profile("smoke").replace(pretrained=True)
    check_initial_weights(profile, ("lraspp",))  # the finished run needs no weights file: no stop
    model, history, _ = train_stage(profile, "lraspp", "nyu", nyu_splits, device="cpu", progress=False)
    assert model.weights_label == models.pretrained_label("lraspp")
    assert history["weights_source"] == pretrained_run["histories"]["lraspp NYU"]["weights_source"]
    with pytest.raises(models.WeightsUnavailableError, match="cannot be reached"):  # a fresh run does need it
        check_initial_weights(profile, ("lraspp",), out_dir=caches / "fresh")


@pytest.mark.slow
def test_compare_says_the_weights_differ_by_design(random_run, pretrained_run, caches, capsys):
    """Catches: a random-init run against a pretrained committed one reported as a plain "differs"."""
    report = compare_results(random_run, pretrained_run)
    assert report["weights"]["lraspp"] == {"run": "random init", "committed": models.pretrained_label("lraspp"),
                                           "unknown": False, "by_design": True}
    assert all(r["verdict"] in ("within noise", BY_DESIGN, "no band") for r in report["rows"])
    text = format_comparison(report)
    assert "WEIGHTS DIFFER BY DESIGN: lraspp: this run random init, the committed one pretrained: COCO-VOC" in text
    # a number far beyond its band, of a model whose weights differ: labelled, not a plain difference
    shifted = json.loads(json.dumps(pretrained_run))
    shifted["models"]["lraspp"]["nyu"]["normalized_mse"] += 1.0
    folder = caches / "committed_shifted"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(shifted))
    spread = {"0": 0.10, "1": 0.11, "2": 0.09}  # a seed spread, as tools.seeds writes it: the number gets a band
    (folder / "seed_spread.json").write_text(json.dumps({"fingerprint": shifted["fingerprint"], "models": {
        "lraspp": {"nyu.normalized_mse": spread_summary(spread)}}}))
    assert main(["compare", str(caches / "figures_random" / "results.json"), "--against", str(folder)]) == 3
    out = capsys.readouterr().out
    row = next(l for l in out.splitlines() if "nyu.normalized_mse" in l)
    assert row.endswith(BY_DESIGN)
    assert "DIFFERS BY DESIGN: " in out and "\nDIFFERS: " not in out
    # the same weights on both sides: no label
    same = format_comparison(compare_results(pretrained_run, pretrained_run))
    assert "BY DESIGN" not in same and f"weights lraspp: {models.pretrained_label('lraspp')} (this run and" in same


@pytest.mark.slow
def test_results_and_checkpoints_without_the_field_still_load_and_say_unknown(random_run, caches, tmp_path):
    """Catches: an older results.json or checkpoint that fails to load, or whose weights are guessed."""
    committed = json.loads((REPO / "figures" / "results.json").read_text())
    for entry in committed["models"].values():  # as results.json was written before the field existed
        entry.pop("weights", None)
    assert results_weights(committed, "lraspp") == "random init (not in the results; from the NYU training history)"
    committed.pop("histories")
    assert results_weights(committed, "lraspp") == models.UNKNOWN_WEIGHTS
    text = format_comparison(compare_results(random_run, committed))
    assert f"the committed one {models.UNKNOWN_WEIGHTS}: unknown weights" in text and "BY DESIGN" not in text

    state = load_checkpoint(caches / "runs_random" / "smoke" / "lraspp_nyu" / "best.pt")
    assert state["weights"] == "random init"
    for drop in (("weights",), ("weights", "weights_source")):  # as older depthkit wrote them
        old = dict(state, config=dict(state["config"]))
        for key in drop:
            old.pop(key, None)
            old["config"].pop(key, None)
        save_checkpoint(tmp_path / "old.pt", old)
        expected = "random init" if drop == ("weights",) else models.UNKNOWN_WEIGHTS
        assert load_model(tmp_path / "old.pt").weights_label == expected
