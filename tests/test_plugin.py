"""The capstone without editing depthkit: ``train --plugin mine.py`` runs the student's hooks, records them,
refuses to resume under another plugin, and loads a changed head back for scoring."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from depthkit.checkpoints import load_checkpoint
from depthkit.checkpoints import load_model as plain_load_model
from depthkit.cli import main
from depthkit.course import plugin
from depthkit.runs import ConfigChangedError
from depthkit.train import train_stage

HEAD = '''
import torch

def model(net):
    """A 3x3 convolution instead of LR-ASPP's 1x1 head."""
    net.combine = torch.nn.Conv2d(net.combine.in_channels, 1, kernel_size=3, padding=1)
    return net

def learning_rate(base, epoch, total):
    return base / 4
'''
EXTRA = '''
def extra_loss(pred, batch):
    """A constant 1 added to every step's loss (with a path to pred, so backward works)."""
    return 1.0 + 0.0 * pred.sum()
'''


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow  # trains two smoke epochs
def test_a_plugins_hooks_run_in_training_and_are_recorded(tmp_path, smoke_profile, nyu_splits):
    """Catches: fit ignoring hooks.extra_loss or hooks.learning_rate, or not recording the plugin."""
    plain = train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=tmp_path / "plain", device="cpu",
                        progress=False)[1]
    both = plugin.hooks_from_source(HEAD + EXTRA, "mine.py")
    hooked = train_stage(smoke_profile, "lraspp", "nyu", nyu_splits, out_dir=tmp_path / "mine", device="cpu",
                         progress=False, hooks=both)[1]
    assert hooked["lr"][0] == pytest.approx(plain["lr"][0] / 4)  # the plugin's schedule
    assert all(s >= 1.0 for s in hooked["step_losses"]) and all(s < 1.0 for s in plain["step_losses"])
    config = load_checkpoint(tmp_path / "mine" / "best.pt")["config"]
    record = config["plugin"]
    assert record["file"] == "mine.py" and record["hooks"] == ["extra_loss", "learning_rate", "model"]
    assert record["source"] == HEAD + EXTRA and len(record["sha256"]) == 64
    assert load_checkpoint(tmp_path / "plain" / "best.pt")["config"]["plugin"] is None


@pytest.mark.slow  # trains one smoke epoch through the CLI
def test_train_plugin_through_the_cli_evaluate_rebuilds_the_head_and_resume_refuses_another(tmp_path, capsys):
    mine = _file(tmp_path, "mine.py", HEAD)
    out = tmp_path / "run"
    argv = ["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out", str(out), "--epochs", "1"]
    assert main(argv + ["--plugin", str(mine)]) == 0
    model = plugin.load_model(out / "best.pt")
    assert model.combine.kernel_size == (3, 3)  # the plugin's head, with its trained weights
    state = load_checkpoint(out / "best.pt")
    assert torch.equal(model.combine.weight, state["model"]["combine.weight"])
    with pytest.raises(ValueError, match=r"trained with the plugin mine.py, which changes the model"):
        plain_load_model(out / "best.pt")
    capsys.readouterr()
    assert main(["evaluate", str(out / "best.pt"), "--data", "nyu", "--profile", "smoke"]) == 0
    other = _file(tmp_path, "mine.py", HEAD.replace("base / 4", "base / 2"))  # the same file, edited
    with pytest.raises(ConfigChangedError, match="plugin"):
        from depthkit.config import get_profile
        from depthkit.pipeline import load_stage_data

        profile = get_profile("smoke").with_budget("nyu", epochs={"*": 2}, frozen_epochs={})
        train_stage(profile, "lraspp", "nyu", load_stage_data(profile, "nyu"), out_dir=out, device="cpu",
                    progress=False, hooks=plugin.load_plugin(other))


@pytest.mark.parametrize("text, message", [
    ("x = 1\n", r"defines none of augment, extra_loss, learning_rate, model"),
    ("def augment(batch, generator)\n    return batch\n", r"mine.py, line 1: not valid Python"),
    ("augment = 3\n", r"augment must be a function, got int"),
    ("import not_a_module_anywhere\n", r"running the plugin failed \(ModuleNotFoundError"),
])
def test_a_broken_plugin_is_one_line_status_2_before_any_work(tmp_path, capsys, text, message):
    path = _file(tmp_path, "mine.py", text)
    assert main(["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out", str(tmp_path / "r"),
                 "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("depthkit train: error: "), err
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_a_missing_plugin_file_is_status_1(tmp_path, capsys):
    assert main(["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke",
                 "--plugin", str(tmp_path / "nope.py")]) == 1
    assert "nope.py: no such plugin file" in capsys.readouterr().err


def test_the_worked_example_loads_and_its_hooks_keep_the_batch_contract(nyu_splits):
    """docs/capstone_plugin.py, the file students copy: its augment keeps images in [0, 1] and shapes; its loss is finite."""
    hooks = plugin.load_plugin(Path(__file__).resolve().parents[1] / "docs" / "capstone_plugin.py")
    assert hooks.record["hooks"] == ["augment", "extra_loss"]
    batch = {k: v[:3] for k, v in nyu_splits["train"].columns().items()}
    batch = dict(batch, images=batch["images"].float() / 255)
    out = hooks.augment(batch, torch.Generator().manual_seed(0))
    assert out["images"].shape == batch["images"].shape and 0 <= out["images"].min() and out["images"].max() <= 1
    assert math.isfinite(float(hooks.extra_loss(torch.randn(3, 1, 64, 64), out)))
    assert plugin.describe(hooks.record).startswith("plugin capstone_plugin.py (changes augment, extra_loss; sha256 ")
