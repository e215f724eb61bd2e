"""The Colab set-up cell (``notebooks/colab_cell.txt``) run for real, off Colab: ``google.colab`` is faked in
``sys.modules``, the checkout goes to a temporary folder, clones come from a local repository and ``pip`` is
a local script that logs its arguments, so nothing is downloaded or installed. Plus notebook 00's Drive
switch and ``python -m depthkit publish-url``, which rewrites the repository address everywhere.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from depthkit.cli import main
from depthkit.course.colab import address_files, address_pattern, current_slug

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
COLAB_CELL = (NB_DIR / "colab_cell.txt").read_text(encoding="utf-8")
REPO_DIR_LINE = 'REPO_DIR = "/content/depthkit"'
FAKE_COLAB = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"]


def cell_at(repo_dir: Path) -> str:
    """The set-up cell with its checkout at ``repo_dir`` instead of Colab's /content/depthkit."""
    assert COLAB_CELL.count(REPO_DIR_LINE) == 1, "the cell names its checkout in one line"
    return COLAB_CELL.replace(REPO_DIR_LINE, f"REPO_DIR = {str(repo_dir)!r}")


def run_python(code: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the cell changes the working directory and sys.path)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_a_failed_clone_stops_with_its_message_only(tmp_path):
    """IPython prints an exception's ``_render_traceback_`` lines instead of a traceback (and no SystemExit noise)."""
    (tmp_path / "cell.py").write_text(cell_at(tmp_path / "checkout"), encoding="utf-8")
    bad = tmp_path / "not-a-repository"
    bad.mkdir()
    code = FAKE_COLAB + (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        f"result = InteractiveShell.instance().run_cell(open({str(tmp_path / 'cell.py')!r}).read())\n"
        "sys.exit(0 if result.error_in_exec is not None else 3)\n")
    out = run_python(code, env={"DEPTHKIT_REPO": str(bad)}, cwd=tmp_path)
    assert out.returncode == 0, f"the cell did not stop: {out.stdout}{out.stderr}"
    lines = out.stdout.splitlines()
    assert lines[0] == f"Could not clone {bad}:" and lines[1].startswith("  fatal:"), out.stdout
    assert lines[2:] == ["Set DEPTHKIT_REPO to a depthkit repository you can reach, then run this cell again:",
                         "  %env DEPTHKIT_REPO=<https address of your fork or copy>",
                         f"(or put a checkout, with its depthkit/ folder, at {tmp_path / 'checkout'})."]
    for noise in ("Traceback", "%tb", "To exit", "SystemExit", "CloneFailed"):
        assert noise not in out.stdout + out.stderr, noise
    assert not (tmp_path / "checkout").exists()


def test_the_cell_installs_once_per_commit(tmp_path):
    """Clone and install; run again at the same commit: no pip; after a new commit: pip again."""
    origin = tmp_path / "origin"
    (origin / "depthkit").mkdir(parents=True)
    (origin / "depthkit" / "__init__.py").write_text("")
    (origin / "depthkit" / "course").mkdir()
    (origin / "depthkit" / "course" / "__init__.py").write_text("")
    (origin / "depthkit" / "course" / "colab.py").write_text("def reattach_drive(use):\n    pass\n")
    subprocess.run([*GIT, "init", "-q", str(origin)], check=True)
    subprocess.run([*GIT, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(origin), "commit", "-q", "-m", "first"], check=True)
    # stand-ins found first on PYTHONPATH: a pip that logs its arguments, and torch and smp that import in
    # milliseconds (the real smp's version is checked against the cell's pin in test_notebooks_meta.py)
    fake = tmp_path / "fake"
    for package, init in [("pip", ""), ("torch", "class cuda:\n    is_available = staticmethod(lambda: False)\n"),
                          ("segmentation_models_pytorch", "__version__ = '0.6.0'\n")]:
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text(init)
    (fake / "pip" / "__main__.py").write_text(
        "import os, sys\nwith open(os.environ['FAKE_PIP_LOG'], 'a') as f:\n    f.write(' '.join(sys.argv[1:]) + '\\n')\n")
    log, checkout = tmp_path / "pip.log", tmp_path / "checkout"
    (tmp_path / "cell.py").write_text(cell_at(checkout), encoding="utf-8")
    code = FAKE_COLAB + (
        "import subprocess\n"
        f"def run_cell(): exec(open({str(tmp_path / 'cell.py')!r}).read(), {{'__name__': '__main__'}})\n"
        f"def editable_installs(): return sum(' -e ' in line for line in open({str(log)!r}))\n"
        "run_cell(); print(editable_installs())\n"
        "run_cell(); print(editable_installs())\n"
        f"subprocess.run({GIT!r} + ['-C', {str(checkout)!r}, 'commit', '-q', '--allow-empty', '-m', 'next'], check=True)\n"
        "run_cell(); print(editable_installs())\n")
    env = {"DEPTHKIT_REPO": str(origin), "FAKE_PIP_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    out = run_python(code, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if not line.startswith("GPU:")] == ["1", "1", "2"], out.stdout
    assert log.read_text().splitlines() == [f"install -q --no-deps -e {checkout}"] * 2  # smp 0.6 present: not installed
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert Path(f"{checkout}.installed").read_text() == head
    assert not (checkout / ".installed").exists()  # the marker stays out of the checkout (and out of `git status`)


def test_off_colab_the_cell_does_nothing(tmp_path):
    out = run_python(f"exec(open({str(NB_DIR / 'colab_cell.txt')!r}).read()); print(IN_COLAB, 'REPO_DIR' in globals())",
                     cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == "False False\n", out.stderr
    assert list(tmp_path.iterdir()) == []


def test_drive_is_off_by_default_and_only_mounted_when_asked():
    """One switch, ``USE_DRIVE = False``, in the set-up cell of every notebook; 00's Drive cell obeys it too."""
    tree = ast.parse(COLAB_CELL)
    switch = [n for n in tree.body if isinstance(n, ast.Assign) and [t.id for t in n.targets] == ["USE_DRIVE"]]
    assert len(switch) == 1 and ast.literal_eval(switch[0].value) is False, "USE_DRIVE = False, one switch"
    calls = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call) and "drive" in ast.unparse(n.func)]
    assert calls == ["reattach_drive(USE_DRIVE)"], calls  # Drive is touched only through the switch
    cells = [c.source for c in jupytext.read(NB_DIR / "00_setup.py").cells if c.cell_type == "code"]
    cell = ast.parse(next(src for src in cells if "use_drive(" in src))
    guarded = set()
    for node in ast.walk(cell):
        if isinstance(node, ast.If) and "USE_DRIVE" in ast.unparse(node.test):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    mounts = [n for n in ast.walk(cell) if isinstance(n, ast.Call) and ast.unparse(n.func) == "use_drive"]
    assert mounts and all(id(n) in guarded for n in mounts)
    assert not any(isinstance(n, ast.Assign) and "USE_DRIVE" in ast.unparse(n) for n in cell.body)  # no second switch
    text = "\n".join(c.source for c in jupytext.read(NB_DIR / "00_setup.py").cells if c.cell_type == "markdown")
    assert "`USE_DRIVE = True`" in text  # the section says what turning it on does


FAKE_DRIVE = """
import json, os, pathlib, sys, types
google, colab, drive = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.drive"))
def mount(path):  # Colab's drive.mount: asks the user, then shows their Drive under path
    print("MOUNT", path)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).symlink_to(os.environ["FAKE_DRIVE"], target_is_directory=True)
drive.mount, colab.drive, google.colab = mount, drive, colab
sys.modules.update({"google": google, "google.colab": colab, "google.colab.drive": drive})
import depthkit.course.colab
depthkit.course.colab.CONTENT = pathlib.Path(os.environ["FAKE_CONTENT"])
"""


def fake_packages(folder: Path) -> Path:
    """Stand-ins found first on PYTHONPATH: a pip that does nothing, torch and smp that import in milliseconds."""
    for package, init in [("pip", ""), ("torch", "class cuda:\n    is_available = staticmethod(lambda: False)\n"),
                          ("segmentation_models_pytorch", "__version__ = '0.6.0'\n")]:
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text(init)
    (folder / "pip" / "__main__.py").write_text("")
    return folder


def colab_runtime(tmp_path: Path, content: str, use_drive: bool, then: str = "") -> dict:
    """Run the set-up cell (``USE_DRIVE`` as given) on a fresh Colab runtime whose own disk is ``tmp/content``,
    then ``then``; return the depthkit folders it left set and the mounts it asked for."""
    checkout = tmp_path / "checkout"
    if not checkout.exists():
        checkout.mkdir()
        (checkout / "depthkit").symlink_to(ROOT / "depthkit", target_is_directory=True)
        (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
        fake_packages(tmp_path / "fake")
    cell = cell_at(checkout).replace("USE_DRIVE = False", f"USE_DRIVE = {use_drive}", 1)
    (tmp_path / "cell.py").write_text(cell, encoding="utf-8")
    code = FAKE_DRIVE + (f"exec(open({str(tmp_path / 'cell.py')!r}).read(), {{'__name__': '__main__'}})\n{then}\n"
                         "print(json.dumps({k: os.environ.get(k) for k in depthkit.course.colab.FOLDERS}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPTHKIT_")}  # a fresh runtime sets none
    env.update(FAKE_DRIVE=str(tmp_path / "drive"), FAKE_CONTENT=str(tmp_path / content),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    (tmp_path / content).mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return {"folders": json.loads(lines[-1]), "mounts": [l for l in lines if l.startswith("MOUNT")], "out": out.stdout}


def test_every_notebook_reattaches_the_drive_folders_that_00_chose(tmp_path):
    """Catches: notebooks 03-05 on a new runtime finding no Drive (and falling back to demo); a restarted
    session losing the folders; Drive mounted without the switch."""
    content = tmp_path / "content0"
    chosen = tmp_path / "drive" / "MyDrive" / "course" / "depthkit"
    nb00 = colab_runtime(tmp_path, "content0", False,
                         then=f"depthkit.course.colab.use_drive({str(content / 'drive' / 'MyDrive' / 'course' / 'depthkit')!r})")
    assert nb00["mounts"] == [f"MOUNT {content / 'drive'}"]  # by 00's Drive cell, not by the set-up cell
    runs = str(content / "drive" / "MyDrive" / "course" / "depthkit" / "runs")
    assert nb00["folders"] == {"DEPTHKIT_DATA": str(content / "depthkit-data"), "DEPTHKIT_RUNS": runs,
                               "DEPTHKIT_FIGURES": runs.replace("/runs", "/figures")}
    assert (chosen / "runs").is_dir() and (content / "depthkit-data").is_dir()  # checkpoints on Drive, data local

    restarted = colab_runtime(tmp_path, "content0", False)  # Restart session: same disk, Drive still mounted
    assert restarted["folders"] == nb00["folders"] and restarted["mounts"] == []

    nb03 = colab_runtime(tmp_path, "content3", False)  # another notebook, its own runtime, switch off: nothing
    assert nb03["folders"] == dict.fromkeys(nb00["folders"]) and nb03["mounts"] == []

    nb03 = colab_runtime(tmp_path, "content3", True)  # switch on: Drive mounted, 00's folders found on it
    other = tmp_path / "content3"
    assert nb03["mounts"] == [f"MOUNT {other / 'drive'}"]
    assert nb03["folders"]["DEPTHKIT_RUNS"] == runs and nb03["folders"]["DEPTHKIT_DATA"] == str(content / "depthkit-data")
    assert "no real data on this runtime's disk yet" in nb03["out"] and "download nyu" in nb03["out"]
    assert (other / "depthkit_settings.json").is_file()  # a restart of this runtime needs no switch either


def test_without_00_the_switch_sets_up_the_default_layout(tmp_path):
    nb04 = colab_runtime(tmp_path, "content", True)
    content = tmp_path / "content"
    assert nb04["folders"] == {"DEPTHKIT_DATA": str(content / "depthkit-data"),
                               "DEPTHKIT_RUNS": str(content / "drive" / "MyDrive" / "depthkit" / "runs"),
                               "DEPTHKIT_FIGURES": str(content / "drive" / "MyDrive" / "depthkit" / "figures")}
    saved = json.loads((tmp_path / "drive" / "MyDrive" / "depthkit_settings.json").read_text())
    assert saved == {"use_drive": True, "folders": nb04["folders"]}


def _copy_checkout(dest: Path) -> None:
    """The cell, two notebook pairs and notebooks/README.md of this checkout, and a README with a badge."""
    (dest / "notebooks").mkdir(parents=True)
    for name in ("colab_cell.txt", "README.md", "00_setup.py", "00_setup.ipynb", "04_unetpp.py", "04_unetpp.ipynb"):
        shutil.copy2(NB_DIR / name, dest / "notebooks" / name)
    slug = current_slug(ROOT)
    (dest / "README.md").write_text(
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{slug}/blob/main/notebooks/00_setup.ipynb)\n"
        f"Clone https://github.com/{slug}.git or https://github.com/{slug}-extras (another repository).\n")


def test_publish_url_rewrites_the_cell_its_copies_the_badges_and_the_readme(tmp_path, capsys):
    _copy_checkout(tmp_path)
    old = current_slug(ROOT)
    assert main(["publish-url", "https://github.com/you/my-depthkit.git", "--root", str(tmp_path)]) == 0
    assert "you/my-depthkit" in capsys.readouterr().out
    assert current_slug(tmp_path) == "you/my-depthkit"
    cell = (tmp_path / "notebooks" / "colab_cell.txt").read_text().rstrip("\n")
    for py in sorted((tmp_path / "notebooks").glob("[0-9][0-9]_*.py")):
        source, stored = jupytext.read(py), jupytext.read(py.with_suffix(".ipynb"))
        assert [c.source for c in source.cells] == [c.source for c in stored.cells], py.name  # the pair still agrees
        assert [c.source for c in source.cells if c.cell_type == "code"][0] == cell, py.name
        badge = f"(https://colab.research.google.com/github/you/my-depthkit/blob/main/notebooks/{py.stem}.ipynb)"
        assert badge in source.cells[0].source, py.name
    readme = (tmp_path / "README.md").read_text()
    assert "github/you/my-depthkit/blob/main" in readme and "https://github.com/you/my-depthkit.git" in readme
    assert f"https://github.com/{old}-extras" in readme  # another repository's address is left alone
    for path in address_files(tmp_path):
        assert not address_pattern(old).search(path.read_text()), path.name
    assert main(["publish-url", "https://github.com/you/my-depthkit", "--root", str(tmp_path)]) == 0
    assert "nothing to change" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["github.com/you/depthkit", "https://gitlab.com/you/depthkit",
                                 "https://github.com/you", "https://github.com/you/depthkit/tree/main"])
def test_publish_url_refuses_other_addresses_in_one_line(tmp_path, capsys, url):
    _copy_checkout(tmp_path)
    before = {p: p.read_bytes() for p in address_files(tmp_path)}
    assert main(["publish-url", url, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and "https://github.com/OWNER/NAME" in err
    assert {p: p.read_bytes() for p in address_files(tmp_path)} == before


def project_files(root: Path) -> list[Path]:
    """The files of the project: tracked or new, never what git ignores (student/, runs/, data caches, .venv)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True)
    if listed.returncode == 0:
        return [root / name for name in listed.stdout.split("\0") if name and (root / name).is_file()]
    skip = {".git", ".venv", "data", "runs", "figures", "student", "node_modules", ".ipynb_checkpoints"}  # no git here
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        found += [Path(dirpath, name) for name in filenames]
    return found


def test_publish_url_covers_every_file_that_holds_the_address():
    """A new file naming the repository (a docs page, a badge) must be one that publish-url rewrites.

    Only the project's own files count: git-ignored outputs such as ``student/`` (``make student``) are not
    the project's, and a test must not depend on whether they exist."""
    pattern, covered = address_pattern(current_slug(ROOT)), set(address_files(ROOT))
    holders = set()
    for path in project_files(ROOT):
        if path.suffix in {".md", ".py", ".txt", ".ipynb", ".toml", ".cfg", ".yml", ".yaml", ".rst"}:
            if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
                holders.add(path)
    assert holders and holders <= covered, sorted(str(p.relative_to(ROOT)) for p in holders - covered)


def test_the_address_scan_ignores_what_git_ignores(tmp_path):
    """Catches: the scan walking into student/ (git-ignored, written by make student), which made the test above
    fail after ``make student``."""
    subprocess.run([*GIT, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("student/\n")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "02.ipynb").write_text("copy")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "02.py").write_text("source")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in project_files(tmp_path)) == [".gitignore", "notebooks/02.py"]


def test_the_notebooks_readme_describes_what_the_cell_does():
    readme = (NB_DIR / "README.md").read_text(encoding="utf-8")
    cell = COLAB_CELL + (NB_DIR / "00_setup.py").read_text(encoding="utf-8")
    for said, done in [("DEPTHKIT_REPO", "DEPTHKIT_REPO"), ("once per commit", "marker.read_text() != head"),
                       ("`USE_DRIVE`", "USE_DRIVE = False"), ("depthkit publish-url https://github.com/", "REPO_URL")]:
        assert said in readme and done in cell, said


def test_uploaded_file_reads_every_picker_shape():
    """07's photo: Colab's picker, ipywidgets 7's dict and 8's tuple of dicts all give (name, bytes)."""
    from types import SimpleNamespace

    from depthkit.course.colab import uploaded_file

    none = SimpleNamespace(value=())
    assert uploaded_file(none, {}) is None
    assert uploaded_file(none, {"a.jpg": b"\xff\xd8"}) == ("a.jpg", b"\xff\xd8")
    v7 = SimpleNamespace(value={"b.png": {"metadata": {"size": 2}, "content": b"\x89P"}})
    assert uploaded_file(v7, {}) == ("b.png", b"\x89P")
    v8 = SimpleNamespace(value=({"name": "c.png", "content": memoryview(b"\x89P"), "size": 2},))
    assert uploaded_file(v8, {}) == ("c.png", b"\x89P")
