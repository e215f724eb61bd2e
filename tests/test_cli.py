"""Every ``python -m depthkit`` command at smoke size, plus ``reproduce`` end to end."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from depthkit.cli import build_parser, main

COMMANDS = ("prepare", "train", "evaluate", "reproduce", "plan", "compare", "bench", "rehearse", "download", "publish-url", "student")
PROFILE_COMMANDS = ("prepare", "train", "evaluate", "reproduce", "plan", "bench")


def test_the_command_list_is_the_parsers_and_the_docstring_names_each():
    """Catches: a command added to the parser but missing from the tests and ``cli``'s docstring."""
    import depthkit.cli as cli
    from depthkit.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert tuple(sub.choices) == COMMANDS
    assert cli.__doc__.splitlines()[0].endswith(": " + ", ".join(COMMANDS) + ".")
    takes_profile = tuple(name for name, p in sub.choices.items() if any(a.dest == "profile" for a in p._actions))
    assert takes_profile == PROFILE_COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "depthkit", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)


def test_unknown_profile_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--profile", "huge"])
    assert "invalid choice" in capsys.readouterr().err


def test_prepare_prints_statistics(capsys):
    assert main(["prepare", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    stats = json.loads(out[:out.rindex("}") + 1])
    assert stats["profile"] == "smoke" and stats["size"] == 64
    assert stats["nyu"]["train"] > 0 and stats["diw"]["test"] > 0
    assert 0 < stats["nyu_depth_m"]["min"] < stats["nyu_depth_m"]["max"] <= 20


def test_train_then_evaluate_then_finetune(tmp_path, capsys):
    nyu_out, diw_out = tmp_path / "nyu", tmp_path / "diw"
    assert main(["train", "--model", "lraspp", "--stage", "nyu", "--profile", "smoke", "--out", str(nyu_out)]) == 0
    assert (nyu_out / "best.pt").exists()
    capsys.readouterr()
    metrics_file = tmp_path / "m.json"
    assert main(["evaluate", str(nyu_out / "best.pt"), "--data", "nyu", "--profile", "smoke",
                 "--json", str(metrics_file)]) == 0
    out = capsys.readouterr().out
    assert "normalized_mse" in out
    record = json.loads(metrics_file.read_text())
    assert record["split"] == "test" and record["metrics"]["normalized_mse"] > 0
    assert main(["train", "--model", "lraspp", "--stage", "diw", "--init", str(nyu_out / "best.pt"),
                 "--profile", "smoke", "--out", str(diw_out)]) == 0
    assert (diw_out / "history.json").exists()


def test_evaluate_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    # a missing file is an OSError: exit status 1 (2 is for usage and data errors)
    assert main(["evaluate", str(tmp_path / "missing.pt"), "--data", "nyu", "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "missing.pt" in err and err.count("\n") == 1


def test_evaluate_wrong_kind_of_file_is_status_2(tmp_path, capsys):
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    assert main(["evaluate", str(bogus), "--data", "nyu", "--profile", "smoke"]) == 2
    assert "notes.pt" in capsys.readouterr().err


def test_bench_prints_a_table(capsys):
    assert main(["bench", "--model", "lraspp", "--size", "64", "--batch", "2", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "train img/s" in out and "data wait" in out and "of matmul" in out and "train_one_epoch" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("lraspp")]
    assert [r[1] for r in rows] == ["nyu", "diw"] and "disk," in rows[1]


def test_reproduce_smoke_writes_results_and_figures(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["reproduce", "--profile", "smoke", "--out", str(out)]) == 0
    results = (out / "results.md").read_text()
    assert "smoke profile" in results and "synthetic" in results
    assert "0.058" in results and "65.32" in results  # the report's numbers stand beside ours
    for name in ("nyu_samples.png", "diw_samples.png", "comparison_table.png", "training_curves.png",
                 "predictions_after_nyu_lraspp.png", "predictions_after_diw_unetpp.png"):
        assert (out / name).stat().st_size > 1000, name
    data = json.loads((out / "results.json").read_text())
    assert set(data["models"]) == {"lraspp", "unetpp"}
    assert data["provenance"]["profile"] == "smoke"


def test_parser_lists_every_model():
    from depthkit.models import MODEL_NAMES

    parser = build_parser()
    args = parser.parse_args(["train", "--model", MODEL_NAMES[-1], "--stage", "nyu"])
    assert args.model == MODEL_NAMES[-1]
