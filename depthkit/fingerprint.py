"""A fingerprint of the code and settings that determine the numbers, to tell fresh results from stale ones.

:func:`code_fingerprint` hashes three things, each a named component so a mismatch can say what
changed (:func:`describe_changes`):

* ``profile <name>``: the profile's settings (every field of :class:`depthkit.config.Profile` except
  ``num_workers``, which changes no result);
* ``synthetic generator``: its version numbers (``SYNTHETIC_VERSION`` / ``GENERATOR_VERSION``);
* ``depthkit/<file>.py``: each source file on the training and evaluation path (:data:`SOURCES`),
  hashed as its syntax tree with docstrings removed, so a comment, a docstring, a line break or a
  plot's title changes nothing, while any change to a loss, a metric, the loader, the optimizer or
  the generator changes the fingerprint. ``viz.py`` (plots) is left out.

``reproduce`` writes the record into ``figures/results.json``, ``fit`` into every checkpoint's
config; ``tests/test_freshness.py`` compares the committed ones with the working tree.
"""
from __future__ import annotations

import ast
import dataclasses
import fnmatch
import functools
import hashlib
import json
from pathlib import Path

from depthkit.config import Profile, repo_root

# The files whose code decides the numbers (globs relative to the repository root): the synthetic
# generator is a module or a package, both are matched.
SOURCES = ("depthkit/config.py", "depthkit/tensors.py", "depthkit/losses.py", "depthkit/metrics.py",
           "depthkit/models.py", "depthkit/stages.py", "depthkit/device.py", "depthkit/checkpoints.py",
           "depthkit/evaluate.py", "depthkit/train.py", "depthkit/distributed.py", "depthkit/pipeline.py",
           "depthkit/reproduce.py", "depthkit/data/*.py", "depthkit/synthetic.py", "depthkit/synthetic/**/*.py")
# Top-level names left out of a file's hash: the profile table (each profile is its own component),
# the generator's version numbers (their own component), and what only formats results.md.
EXCLUDED_NAMES = {
    "depthkit/config.py": {"PROFILES"},
    "depthkit/synthetic*": {"SYNTHETIC_VERSION", "GENERATOR_VERSION"},
    "depthkit/reproduce.py": {"write_results_md", "_fmt", "_epochs_text", "_device_name", "PROTOCOLS",
                              "ZERO_SHOT_DIW_WHDR", "PER_IMAGE_PROTOCOLS", "_NYU_PER_IMAGE", "_DIW_PER_IMAGE",
                              "_sample_figures", "_comparison_table", "read_figures_json",
                              "_seed_spread_of", "_seed_cell"},
}
VERSION_NAMES = ("SYNTHETIC_VERSION", "GENERATOR_VERSION")
PROFILE_FIELDS_IGNORED = frozenset({"num_workers"})  # worker processes do not change a result
REGENERATE = "make reproduce && make notebooks"


def _is_text(node: ast.AST) -> bool:
    """A string literal or an f-string."""
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


class _Normalize(ast.NodeTransformer):
    """Drop what cannot change a number: docstrings and other bare strings, and the text passed to ``viz`` calls."""

    def visit_Expr(self, node: ast.Expr):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # a docstring, or a string used as a comment
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "viz":
            node.args = [ast.Constant("") if _is_text(a) else a for a in node.args]
            for kw in node.keywords:
                kw.value = ast.Constant("") if _is_text(kw.value) else kw.value
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        if isinstance(getattr(node, "body", None), list) and not node.body:  # a body that was only a docstring
            node.body = [ast.Pass()]
        return node


def _top_level_name(node: ast.stmt) -> set[str]:
    """The names a module-level statement defines (functions, classes, assignments)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return {t.id for t in targets if isinstance(t, ast.Name)}


def source_hash(path: Path, rel: str) -> str:
    """Hash of a Python file's syntax tree without docstrings, comments, layout and excluded names (12 hex digits)."""
    stat = path.stat()
    return _source_hash(str(path), rel, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _source_hash(path: str, rel: str, mtime_ns: int, size: int) -> str:
    """:func:`source_hash`, computed again only when the file's time or size changed."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise ValueError(f"{rel}, line {err.lineno}: not valid Python, cannot fingerprint it ({err.msg})") from None
    excluded = set().union(*(names for pattern, names in EXCLUDED_NAMES.items() if fnmatch.fnmatch(rel, pattern)))
    tree.body = [node for node in tree.body if not (_top_level_name(node) & excluded)]
    tree = ast.fix_missing_locations(_Normalize().visit(tree))
    return hashlib.sha256(ast.unparse(tree).encode("utf-8")).hexdigest()[:12]


def source_files(root: Path) -> list[str]:
    """The files of :data:`SOURCES` under ``root``, as sorted POSIX paths relative to it."""
    found = {p.relative_to(root).as_posix() for pattern in SOURCES for p in root.glob(pattern) if p.is_file()}
    return sorted(found)


def generator_versions(root: Path) -> dict[str, int]:
    """The synthetic generator's version numbers, read from its source (module or package) without importing it."""
    versions = {}
    for rel in source_files(root):
        if not fnmatch.fnmatch(rel, "depthkit/synthetic*"):
            continue
        for node in ast.parse((root / rel).read_text(encoding="utf-8")).body:
            for name in _top_level_name(node) & set(VERSION_NAMES):
                versions[name] = ast.literal_eval(node.value)
    return dict(sorted(versions.items())) or {"SYNTHETIC_VERSION": 0}


def profile_settings(profile: Profile) -> dict:
    """The profile's settings that can change a result, JSON-ready (tuples as lists).

    Each stage's budget is spread into keys of its own (``budgets.nyu.epochs``, ``budgets.diw.lr``),
    so a changed setting is named exactly by :func:`describe_changes`.
    """
    fields = {k: v for k, v in dataclasses.asdict(profile).items() if k not in PROFILE_FIELDS_IGNORED}
    for stage, budget in fields.pop("budgets", {}).items():
        fields.update({f"budgets.{stage}.{key}": value for key, value in budget.items()})
    return json.loads(json.dumps(fields, sort_keys=True, default=str))


def code_fingerprint(profile: Profile, root: str | Path | None = None) -> dict:
    """``{"fingerprint": 12 hex digits, "profile": name, "components": {...}}`` for ``profile`` and the code under ``root``.

    ``root`` is a checkout (default: the one this package was imported from); tests point it at a
    copy with an edit planted.
    """
    root = Path(root) if root is not None else repo_root()
    components: dict = {f"profile {profile.name}": profile_settings(profile),
                        "synthetic generator": generator_versions(root)}
    components.update({rel: source_hash(root / rel, rel) for rel in source_files(root)})
    digest = hashlib.sha256(json.dumps(components, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    return {"fingerprint": digest, "profile": profile.name, "components": components}


def describe_changes(old: dict | None, new: dict, ignore_profile: bool = False) -> list[str]:
    """What differs between two fingerprint records, one short phrase each ("depthkit/losses.py changed")."""
    if not old or not old.get("fingerprint"):
        return ["no code fingerprint recorded"]
    if "components" not in old:  # only the digest is known (a notebook's printed line)
        return [f"fingerprint {old['fingerprint']} then, {new['fingerprint']} now"]
    before, after = old["components"], new["components"]
    changes = []
    for key in sorted(set(before) | set(after)):
        if ignore_profile and key.startswith("profile "):
            continue
        if key not in after:
            changes.append(f"{key} removed")
        elif key not in before:
            changes.append(f"{key} added")
        elif before[key] != after[key]:
            if isinstance(before[key], dict) and isinstance(after[key], dict):
                fields = sorted(k for k in set(before[key]) | set(after[key]) if before[key].get(k) != after[key].get(k))
                changes.append(f"{key} changed: {', '.join(fields)}")
            else:
                changes.append(f"{key} changed")
    if not changes and old.get("fingerprint") != new.get("fingerprint") and not ignore_profile:
        changes.append(f"fingerprint {old.get('fingerprint')} then, {new.get('fingerprint')} now")
    return changes


def fingerprint_line(profile: Profile, root: str | Path | None = None) -> str:
    """One line for notebooks and logs: ``code fingerprint (demo profile): 1a2b3c4d5e6f``."""
    return f"code fingerprint ({profile.name} profile): {code_fingerprint(profile, root)['fingerprint']}"


def stale_message(what: str, recorded: dict | None, now: dict, regenerate: str = REGENERATE) -> str | None:
    """None when ``recorded`` matches ``now``; else one line naming ``what`` is stale, what changed, and ``regenerate``."""
    if recorded and recorded.get("fingerprint") == now["fingerprint"]:
        return None
    changes = describe_changes(recorded, now)
    return f"{what} was made by other code ({'; '.join(changes)}): regenerate with `{regenerate}`"
