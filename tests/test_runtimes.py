"""The notebooks' run times: measured by executing them (``python -m depthkit.course.runtimes``), stored in
``notebooks/run_times.json``, printed by each notebook's opening (``describe``). Nothing typed by hand."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from depthkit.course import runtimes

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
STEMS = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_the_committed_times_cover_every_notebook_under_smoke_on_a_cpu():
    """Catches: a notebook added or renamed without measuring it (its opening would print "not measured yet")."""
    times = runtimes.load_times()
    smoke = times["smoke"]["cpu"]
    assert sorted(smoke["seconds"]) == STEMS, "measure again: python -m depthkit.course.runtimes --profile smoke"
    assert all(0 < s < 3600 for s in smoke["seconds"].values()), smoke["seconds"]
    assert smoke["folders"] == "fresh" and "CPU" in smoke["machine"] and len(smoke["date"]) == 10
    for profile, kinds in times.items():  # what the lead adds later (demo, a GPU) has the same shape
        assert profile in runtimes.PROFILES and set(kinds) <= set(runtimes.KINDS), times.keys()


def test_describe_prints_what_was_measured_and_says_what_was_not(tmp_path):
    path = tmp_path / "run_times.json"
    measured = {"kind": "cpu", "machine": "2-core CPU (x86_64)", "date": "2026-12-03", "folders": "fresh",
                "seconds": {"02_losses_and_metrics": 12.4, "03_lraspp": 250.0}}
    runtimes.record("smoke", measured, path)
    runtimes.record("demo", {**measured, "folders": "reused", "seconds": {"03_lraspp": 6000.0}}, path)
    text = runtimes.describe("03_lraspp", path)
    assert "on a CPU: smoke 4.2 min (2-core CPU (x86_64), 2026-12-03, from a fresh clone); " \
           "demo not measured from a fresh clone yet" in text, text  # a reused run's 1.7 h is not a reader's time
    assert "1.7 h" not in text
    assert "on a GPU: smoke not measured yet; demo not measured yet" in text
    assert "smoke 12 s" in runtimes.describe("02_losses_and_metrics", path)
    assert "demo not measured yet" in runtimes.describe("02_losses_and_metrics", path)
    assert "smoke not measured yet" in runtimes.describe("08_depth_cues", path)
    assert "not measured yet" in runtimes.describe("03_lraspp", tmp_path / "missing.json")


def test_record_keeps_the_other_profiles_and_devices_and_merges_a_partial_run(tmp_path):
    path = tmp_path / "run_times.json"
    base = {"machine": "2-core CPU (x86_64)", "date": "2026-12-03", "folders": "reused"}
    runtimes.record("smoke", {"kind": "cpu", **base, "seconds": {"00_setup": 10.0, "01_data_exploration": 6.0}}, path)
    runtimes.record("smoke", {"kind": "cuda", **base, "machine": "NVIDIA H200", "seconds": {"00_setup": 4.0}}, path)
    runtimes.record("smoke", {"kind": "cpu", **base, "seconds": {"01_data_exploration": 7.5}}, path)
    stored = json.loads(path.read_text())
    assert stored["smoke"]["cpu"]["seconds"] == {"00_setup": 10.0, "01_data_exploration": 7.5}
    assert stored["smoke"]["cuda"]["seconds"] == {"00_setup": 4.0} and "kind" not in stored["smoke"]["cpu"]
    fresh = {"kind": "cpu", **base, "folders": "fresh", "seconds": {"00_setup": 11.0}}
    runtimes.record("smoke", fresh, path)  # another kind of measurement replaces the whole entry
    assert json.loads(path.read_text())["smoke"]["cpu"]["seconds"] == {"00_setup": 11.0}


def test_a_damaged_times_file_is_named(tmp_path):
    path = tmp_path / "run_times.json"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"run_times.json: not a run-times file .*--profile smoke"):
        runtimes.describe("02_losses_and_metrics", path)


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # two kernels
def test_run_notebook_times_a_real_execution_and_names_a_failing_cell(tmp_path):
    """Catches: a time that is not the notebook's (measured around nothing), a failure recorded as a time."""
    seconds = runtimes.run_notebook(_notebook(tmp_path / "ok.ipynb", "import time", "time.sleep(1.5)"), timeout=60)
    assert 1.5 <= seconds < 60
    bad = _notebook(tmp_path / "bad.ipynb", "x = 1", "raise RuntimeError('boom')", "y = 2")
    with pytest.raises(ValueError, match=r"bad.ipynb: cell .* failed, nothing recorded \(RuntimeError: boom\)"):
        runtimes.run_notebook(bad, timeout=60)


def test_a_fresh_measurement_runs_the_whole_series():
    with pytest.raises(ValueError, match="fresh folders measure the whole series"):
        runtimes.measure("smoke", fresh=True, only=["02"])
    with pytest.raises(ValueError, match="no notebook 42"):
        runtimes.measure("smoke", fresh=False, only=["42"])
