"""The committed results are what today's code produces, and the fingerprint that says so is meaningful.

Part 1 compares the committed ``figures/results.json`` and notebook 06's saved output with the working
tree: they fail (with the command that regenerates everything) whenever the code that decides the
numbers changed since they were made. Part 2 shows that the fingerprint is blind to docstrings,
comments, layout and plot labels, and sees a changed loss, loader, optimizer, profile or generator,
each edit planted in a copy of the source. Part 3: ``reproduce`` reuses a run only when it was
trained by the same code; otherwise it moves the run aside and retrains, saying why in one line.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthkit import fingerprint as fp
from depthkit.config import get_profile
from depthkit.fingerprint import REGENERATE, code_fingerprint, describe_changes, stale_message
from depthkit.runs import ConfigChangedError, check_resume_config, retire_stale_run

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_06 = REPO / "notebooks" / "06_comparison.ipynb"
LINE = re.compile(r"code fingerprint \((\w+) profile\): ([0-9a-f]{12})")


# --------------------------------------------------------------------------------------------
# 1. COMMITTED OUTPUTS ARE FRESH: fail after a change to the code that decides the numbers, until
#    `make reproduce && make notebooks` regenerates figures/ and the notebooks' outputs
# --------------------------------------------------------------------------------------------
def committed_results() -> dict:
    """The committed ``figures/results.json``."""
    return json.loads((REPO / "figures" / "results.json").read_text(encoding="utf-8"))


def test_committed_results_json_is_fresh():
    """figures/results.json was written by the code and profile in this working tree."""
    results = committed_results()
    profile = get_profile(results["provenance"]["profile"])
    problem = stale_message("figures/results.json", results.get("fingerprint"), code_fingerprint(profile))
    if problem:
        pytest.fail(problem, pytrace=False)


def test_committed_seed_spread_is_of_the_committed_results():
    """figures/seed_spread.json (``make seeds``) carries the fingerprint of figures/results.json and covers both models."""
    path = REPO / "figures" / "seed_spread.json"
    if not path.exists():
        pytest.fail("figures/seed_spread.json is missing: measure it with `make seeds` (about an hour)", pytrace=False)
    spread = json.loads(path.read_text(encoding="utf-8"))
    results = committed_results()
    problem = stale_message("figures/seed_spread.json", spread.get("fingerprint"),
                            code_fingerprint(get_profile(results["provenance"]["profile"])),
                            regenerate="make reproduce && make seeds && make notebooks")
    if problem:
        pytest.fail(problem, pytrace=False)
    assert spread["profile"] == results["provenance"]["profile"]
    assert set(spread["models"]) >= {"lraspp", "unetpp"}
    assert len(spread["seeds"]["lraspp"]) >= 5 and len(spread["seeds"]["unetpp"]) >= 3


def test_committed_notebook_06_outputs_are_fresh():
    """Notebook 06's saved outputs were made by the code and profile in this working tree."""
    cells = json.loads(NOTEBOOK_06.read_text(encoding="utf-8"))["cells"]
    printed = [m for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
               for m in LINE.finditer("".join(o.get("text", "")))]
    if not printed:
        pytest.fail(f"notebooks/06_comparison.ipynb has no saved fingerprint line (its outputs predate it): "
                    f"regenerate with `{REGENERATE}`", pytrace=False)
    profile, digest = printed[-1].group(1), printed[-1].group(2)
    saved = committed_results().get("fingerprint") or {}
    recorded = saved if saved.get("fingerprint") == digest else {"fingerprint": digest}  # results.json names the parts
    problem = stale_message("notebooks/06_comparison.ipynb (its saved outputs)", recorded,
                            code_fingerprint(get_profile(profile)))
    if problem:
        pytest.fail(problem, pytrace=False)


def test_a_stale_record_fails_in_one_line_with_what_changed_and_the_command():
    now = code_fingerprint(get_profile("demo"))
    assert stale_message("figures/results.json", now, now) is None
    old = json.loads(json.dumps(now))
    old["fingerprint"], old["components"]["depthkit/losses.py"] = "0" * 12, "f" * 12
    message = stale_message("figures/results.json", old, now)
    assert "\n" not in message and "depthkit/losses.py changed" in message and REGENERATE in message
    assert "no code fingerprint recorded" in stale_message("figures/results.json", None, now)


# --------------------------------------------------------------------------------------------
# 2. The fingerprint: edits planted in a copy of the source
# --------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the checkout's ``depthkit/`` package (Python files only)."""
    shutil.copytree(REPO / "depthkit", tmp_path / "depthkit", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``root/rel`` by ``new``."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{rel}: the text to plant over is not there once: {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def plant_regex(root: Path, pattern: str, new: str, glob: str) -> str:
    """Substitute ``pattern`` once in the one file under ``root`` matching ``glob`` that has it; return that file."""
    hits = [p for p in sorted(root.glob(glob)) if re.search(pattern, p.read_text(encoding="utf-8"), re.M)]
    assert len(hits) == 1, f"{pattern!r} is in {len(hits)} files of {glob}"
    hits[0].write_text(re.sub(pattern, new, hits[0].read_text(encoding="utf-8"), count=1, flags=re.M), encoding="utf-8")
    return hits[0].relative_to(root).as_posix()


def test_the_fingerprint_of_the_tree_is_the_one_of_its_copy(tree):
    profile = get_profile("demo")
    assert code_fingerprint(profile, tree) == code_fingerprint(profile)
    assert code_fingerprint(profile)["fingerprint"] != code_fingerprint(get_profile("smoke"))["fingerprint"]
    import depthkit.synthetic  # the version the generator declares is the one recorded
    versions = code_fingerprint(profile)["components"]["synthetic generator"]
    assert versions.get("SYNTHETIC_VERSION", 0) == getattr(depthkit.synthetic, "SYNTHETIC_VERSION", 0)
    assert "depthkit/viz.py" not in code_fingerprint(profile)["components"]


def test_docstrings_comments_layout_and_plot_labels_do_not_change_it(tree):
    profile, before = get_profile("demo"), code_fingerprint(get_profile("demo"))
    plant(tree, "depthkit/losses.py", "Chen et al.'s ranking loss, mean over pairs", "Chen et al.'s ranking loss (mean)")
    plant(tree, "depthkit/losses.py", "    diff = z_a - z_b\n", "    diff = z_a - z_b  # a comment\n    # another\n")
    plant(tree, "depthkit/train.py", "return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,",
          "return torch.optim.Adam(\n        model.parameters(), lr=lr,\n        weight_decay=weight_decay,")
    plant(tree, "depthkit/reproduce.py", 'f"Training curves ({tag})"', 'f"Learning curves, {tag}"')
    plant(tree, "depthkit/reproduce.py", '"- **Data:** ', '"- **Data used:** ')  # results.md's wording
    (tree / "depthkit" / "viz.py").write_text("def plots_are_left_out():\n    return 1\n", encoding="utf-8")
    after = code_fingerprint(profile, tree)
    assert after == before, describe_changes(before, after)


def _margin(root):  # a margin in Chen et al.'s ranking loss
    plant(root, "depthkit/losses.py", "F.softplus(-r * diff)", "F.softplus(0.5 - r * diff)")
    return "depthkit/losses.py changed"


def _sign(root):  # the ranking loss rewards the wrong order
    plant(root, "depthkit/losses.py", "F.softplus(-r * diff)", "F.softplus(r * diff)")
    return "depthkit/losses.py changed"


def _optimizer(root):
    plant(root, "depthkit/train.py", "return torch.optim.Adam(", "return torch.optim.AdamW(")
    return "depthkit/train.py changed"


def _loader(root):  # flip every other image less often
    rel = plant_regex(root, r"torch\.rand\(b, generator=generator, device=images\.device\) < 0\.5",
                      "torch.rand(b, generator=generator, device=images.device) < 0.25",
                      "depthkit/data/*.py")
    return f"{rel} changed"


def _generator(root):  # a new version of the synthetic scenes (module or package): SYNTHETIC_VERSION, else GENERATOR_VERSION
    files = sorted(root.glob("depthkit/synthetic.py")) + sorted(root.glob("depthkit/synthetic/**/*.py"))
    for name in ("SYNTHETIC_VERSION", "GENERATOR_VERSION"):
        for path in files:
            text = path.read_text(encoding="utf-8")
            if re.search(rf"^{name} = \d+", text, re.M):
                path.write_text(re.sub(rf"^{name} = (\d+)", lambda m: f"{name} = {int(m[1]) + 1}", text, count=1,
                                       flags=re.M), encoding="utf-8")
                return f"synthetic generator changed: {name}"
    raise AssertionError("no SYNTHETIC_VERSION or GENERATOR_VERSION in the synthetic generator's source")


@pytest.mark.parametrize("edit", [_margin, _sign, _optimizer, _loader, _generator])
def test_a_change_to_what_decides_the_numbers_changes_it_and_is_named(tree, edit):
    profile = get_profile("demo")
    before = code_fingerprint(profile)
    expected = edit(tree)
    after = code_fingerprint(profile, tree)
    assert after["fingerprint"] != before["fingerprint"]
    assert expected in "; ".join(describe_changes(before, after)), describe_changes(before, after)


def fingerprint_of_checkout(root: Path, profile: str) -> dict:
    """The fingerprint computed by the package under ``root``, in a fresh interpreter (its config.py is imported)."""
    code = ("import json; from depthkit.config import get_profile; from depthkit.fingerprint import code_fingerprint; "
            f"print(json.dumps(code_fingerprint(get_profile({profile!r}))))")
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_profile_edit_changes_that_profile_only(tree):
    before = code_fingerprint(get_profile("demo"))
    plant(tree, "depthkit/config.py", 'epochs={"*": 7, "unetpp": 6}', 'epochs={"*": 8, "unetpp": 6}')
    plant(tree, "depthkit/config.py", "        num_workers=0,\n    ),\n}", "        num_workers=0, seed=1,\n    ),\n}")  # report's
    after = fingerprint_of_checkout(tree, "demo")
    assert describe_changes(before, after) == ["profile demo changed: budgets.nyu.epochs"]
    assert fingerprint_of_checkout(tree, "report") != code_fingerprint(get_profile("report"))
    assert code_fingerprint(get_profile("demo").replace(num_workers=2)) == before  # workers change no result


# --------------------------------------------------------------------------------------------
# 3. Runs trained by other code are retrained, never resumed into a mix
# --------------------------------------------------------------------------------------------
def run_as_other_code(monkeypatch, tree: Path) -> None:
    """From now on the running code's fingerprint is that of ``tree`` (a copy with an edit planted)."""
    real = fp.code_fingerprint
    for where in ("depthkit.fingerprint.code_fingerprint", "depthkit.train.code_fingerprint",
                  "depthkit.runs.code_fingerprint"):
        monkeypatch.setattr(where, lambda profile, root=None: real(profile, tree))


@pytest.fixture(scope="module")
def killed_run(nyu_splits, smoke_profile, tmp_path_factory) -> Path:
    """A 2-epoch smoke LR-ASPP run killed after its first epoch, trained by the checkout's code."""
    from depthkit import models
    from depthkit.train import fit

    out = tmp_path_factory.mktemp("killed") / "run"
    fit(models.build_model("lraspp"), nyu_splits, "nyu", smoke_profile, out, epochs=(0, 2), device="cpu",
        progress=False, stop_after=1)
    return out


@pytest.fixture
def run(killed_run, tmp_path) -> Path:
    """A copy of :func:`killed_run` for one test to change."""
    return Path(shutil.copytree(killed_run, tmp_path / "run"))


def test_a_run_of_the_same_code_is_kept_to_resume(run, smoke_profile, capsys):
    out = run
    assert torch.load(out / "last.pt", weights_only=False)["config"]["code_fingerprint"] == code_fingerprint(smoke_profile)
    assert retire_stale_run(out, smoke_profile, strict=True) is None and (out / "last.pt").exists()
    assert capsys.readouterr().out == ""
    more = smoke_profile.with_budget("nyu", epochs={"*": 5})  # more epochs extend a run (train --epochs) ...
    assert retire_stale_run(out, more) is None and (out / "last.pt").exists()
    aside = retire_stale_run(out, more, strict=True)  # ... but reproduce retrains under a changed profile
    assert aside is not None and "profile smoke changed: budgets.nyu.epochs" in capsys.readouterr().out


@pytest.mark.slow  # trains an epoch
def test_a_half_finished_run_of_other_code_is_moved_aside_and_retrained(run, nyu_splits, smoke_profile, capsys,
                                                                        tree, monkeypatch):
    from depthkit import models
    from depthkit.train import fit

    out = run  # trained by the checkout's code, killed after epoch 1 ...
    _sign(tree)
    run_as_other_code(monkeypatch, tree)  # ... and resumed after the ranking loss's sign was flipped
    aside = retire_stale_run(out, smoke_profile)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and f"run {out.parent.name}/{out.name}: trained by other code (depthkit/losses.py changed)" in line
    assert str(out.parent) not in line  # no machine path (it would land in a notebook's saved output)
    assert "retraining" in line and aside.name in line
    assert [p.name for p in out.iterdir() if p.name != ".lock"] == []  # nothing of it left to resume
    assert torch.load(aside / "last.pt", weights_only=False)["epoch"] == 1  # nothing lost either
    history = fit(models.build_model("lraspp"), nyu_splits, "nyu", smoke_profile, out, epochs=(0, 2), device="cpu",
                  progress=False, stop_after=1)
    assert history["epoch"] == [1]  # started afresh (a resumed run would have trained epoch 2)
    assert torch.load(out / "last.pt", weights_only=False)["config"]["code_fingerprint"] == fp.code_fingerprint(smoke_profile)
    assert retire_stale_run(out, smoke_profile) is None  # and now reused


def test_a_checkpoint_without_a_fingerprint_is_retrained(run, smoke_profile, capsys):
    out = run
    state = torch.load(out / "last.pt", weights_only=False)
    del state["config"]["code_fingerprint"]  # as written before fingerprints
    torch.save(state, out / "last.pt")
    assert retire_stale_run(out, smoke_profile) is not None
    assert "no code fingerprint recorded" in capsys.readouterr().out


def test_fit_refuses_to_resume_a_checkpoint_of_other_code(smoke_profile, tree):
    now = dict(code_fingerprint=code_fingerprint(smoke_profile))
    _optimizer(tree)
    with pytest.raises(ConfigChangedError, match=r"code: depthkit/train\.py changed"):
        check_resume_config(dict(code_fingerprint=code_fingerprint(smoke_profile, tree)), now, "runs/x/last.pt")
    more = dict(code_fingerprint=code_fingerprint(smoke_profile.with_budget("nyu", epochs={"*": 5})))
    assert check_resume_config(now, more, "runs/x/last.pt")  # the profile's fields are compared as keys of their own
