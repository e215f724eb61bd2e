"""``reproduce``'s numbers are those of the checkpoints it wrote (issue #12, section 3.5).

The CLI test (tests/test_cli.py) checks that ``reproduce`` writes its files; this one checks what
they say: every number of one model in ``results.json`` must come back when its ``best.pt`` is
loaded from disk and evaluated again on the same test split, with the same protocol.
"""
from __future__ import annotations

import json

import pytest

from depthkit.fingerprint import code_fingerprint
from depthkit.pipeline import load_stage_data
from depthkit.reproduce import _fmt, reproduce
from depthkit.checkpoints import load_model
from depthkit.evaluate import evaluate
from depthkit.runs import run_dir


@pytest.mark.slow
def test_results_json_matches_a_reevaluation_of_the_written_checkpoints(smoke_profile, smoke_prepared, tmp_path,
                                                                        monkeypatch):
    """Catches: results.json / results.md reporting numbers of another model than the checkpoint
    left on disk (e.g. the DIW accuracy of the model before fine-tuning, a stale checkpoint, the
    last epoch instead of best.pt), another split than the test split, or a protocol different
    from :func:`evaluate`'s (batch means, capped batches)."""
    monkeypatch.setenv("DEPTHKIT_RUNS", str(tmp_path / "runs"))  # train here, never reuse another test's runs
    out = tmp_path / "figures"
    results = reproduce(smoke_profile, models=("lraspp",), out=out, device="cpu", progress=False)
    saved = json.loads((out / "results.json").read_text())
    assert saved["models"]["lraspp"] == results["models"]["lraspp"]  # JSON keeps floats exactly

    nyu = load_stage_data(smoke_profile, "nyu", smoke_prepared)["test"]
    diw = load_stage_data(smoke_profile, "diw", smoke_prepared)["test"]
    nyu_best = load_model(run_dir(smoke_profile, "lraspp", "nyu") / "best.pt")
    diw_best = load_model(run_dir(smoke_profile, "lraspp", "diw") / "best.pt")
    expected = {"nyu": evaluate(nyu_best, nyu, "nyu", device="cpu"),
                "diw_after_nyu": evaluate(nyu_best, diw, "diw", device="cpu"),
                "diw": evaluate(diw_best, diw, "diw", device="cpu"),
                "nyu_after_diw": evaluate(diw_best, nyu, "nyu", device="cpu")}
    ours = saved["models"]["lraspp"]
    for key, metrics in expected.items():
        assert set(ours[key]) == set(metrics), key
        for name, value in metrics.items():
            assert ours[key][name] == pytest.approx(value, rel=1e-5, abs=1e-7), f"{key}.{name}"
    # the two checkpoints differ, so the NYU numbers above tell them apart (on the 3-image smoke
    # DIW test split their accuracies often coincide: the DIW numbers alone would not)
    assert any(a.ne(b).any() for a, b in zip(nyu_best.state_dict().values(), diw_best.state_dict().values())
               if a.is_floating_point())
    table = (out / "results.md").read_text()
    assert _fmt(expected["nyu"]["normalized_mse"]) in table
    assert _fmt(expected["diw"]["ordinal_accuracy"], pct=True) in table
    # what determines the numbers is recorded beside them (tests/test_freshness.py compares it with the tree)
    assert saved["fingerprint"] == code_fingerprint(smoke_profile)
    assert f"`{saved['fingerprint']['fingerprint']}`" in table
