"""Keep an executed notebook's saved widget state small: widgets yes, the pictures drawn into them no.

When nbconvert executes a notebook it saves every widget's state in the notebook's metadata, so that
GitHub and nbviewer can show the controls. An ``ipywidgets.Output`` area keeps *everything displayed
in it* there too: notebook 07 draws its depth picture into one, about 70 KB of PNG that the saved
notebook already shows in an ordinary output cell. ``make notebooks`` runs this module after
executing the notebooks::

    python -m depthkit.course.widget_state notebooks/07_your_own_image.ipynb

It empties the ``outputs`` of every saved ``OutputModel`` and leaves everything else as it was; the
live notebook is unaffected (a kernel redraws the area). ``tests/test_notebooks_meta.py`` checks the
committed notebook.
"""
from __future__ import annotations

import sys
from pathlib import Path

from depthkit.files import atomic_write

OUTPUT_MODEL = "OutputModel"


def trim_output_widgets(notebook: dict) -> int:
    """Empty the saved outputs of every ``Output`` widget in ``notebook`` (in place); returns how many were emptied."""
    state = notebook.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    trimmed = 0
    for model in state.get("state", {}).values():
        if model.get("model_name") == OUTPUT_MODEL and model.get("state", {}).get("outputs"):
            model["state"]["outputs"] = []
            trimmed += 1
    return trimmed


def trim_file(path: str | Path) -> int:
    """Trim the ``Output`` widgets saved in the notebook at ``path``, rewriting it atomically only if one changed."""
    import nbformat  # installed with Jupyter; writes the same layout nbconvert does

    path = Path(path)
    try:
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # missing, not JSON, not a notebook
        raise ValueError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from None
    trimmed = trim_output_widgets(notebook)
    if trimmed:
        atomic_write(path, lambda tmp: nbformat.write(notebook, str(tmp)))  # as depthkit.course.student writes its copies
    return trimmed


def main(argv: list[str] | None = None) -> int:
    """``python -m depthkit.course.widget_state NOTEBOOK...``: trim each; prints what it did."""
    paths = sys.argv[1:] if argv is None else argv
    for path in paths:
        try:
            print(f"{path}: emptied {trim_file(path)} Output widget(s) in the saved widget state")
        except ValueError as exc:
            print(f"depthkit.course.widget_state: error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
