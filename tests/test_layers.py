"""The architecture holds: layers the folders show, imports down only, no circles, small functions.

Every ``import`` and ``from ... import`` of every depthkit module is read from its syntax tree,
those inside functions included (a lazy import is still a dependency). docs/design.md, "Layers",
draws the same rule.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "depthkit"
MAX_TOP_LEVEL_MODULES = 18  # the core a student reads; course tooling and tools live in subpackages
MAX_FUNCTION_LINES = 80
MAX_TRAIN_LINES = 300

# The layer of every core module and subpackage: a module may import only from a lower layer
# (or, inside a subpackage, from its own subpackage). course and tools share a layer and never
# import each other; cli (and __main__) sit on top of everything.
LAYERS = {
    "depthkit.config": 0, "depthkit.files": 0, "depthkit.distributed": 0, "depthkit.device": 0,
    "depthkit.tensors": 0, "depthkit.fingerprint": 1,
    "depthkit.synthetic": 1, "depthkit.data": 2,
    "depthkit.losses": 2, "depthkit.models": 3, "depthkit.metrics": 3, "depthkit.viz": 3,
    "depthkit.runs": 2, "depthkit.stages": 4, "depthkit.checkpoints": 4, "depthkit.pipeline": 5,
    "depthkit.evaluate": 5, "depthkit.train": 6, "depthkit.reproduce": 7,
    "depthkit.course": 8, "depthkit.tools": 8, "depthkit.cli": 9, "depthkit.__main__": 10,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The depthkit modules ``name`` imports, anywhere in its file (``from pkg import submodule`` counts as the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                base = name.split(".")[: -node.level if not MODULES[name].name == "__init__.py" else None]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
            targets = submodules if submodules and len(submodules) == len(node.names) else [module] + submodules
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name and t != "depthkit"}
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> tuple[int, str]:
    """(layer, group): the entry of LAYERS that names the module or its package."""
    for key in sorted(LAYERS, key=len, reverse=True):
        if name == key or name.startswith(key + "."):
            return LAYERS[key], key
    raise AssertionError(f"{name} has no layer: add it to LAYERS (and to docs/design.md, 'Layers')")


def test_every_module_has_a_layer():
    for name in MODULES:
        if name != "depthkit":
            layer_of(name)


def test_imports_go_down_only():
    upward = []
    for name, targets in GRAPH.items():
        if name == "depthkit":
            continue
        mine, group = layer_of(name)
        for target in targets:
            theirs, other = layer_of(target)
            if other == group:  # inside one subpackage (data/, synthetic/, course/, tools/): its own order, no circle
                continue
            if theirs >= mine:
                upward.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not upward, "imports that do not go down:\n" + "\n".join(upward)


def test_course_and_tools_never_import_each_other():
    crossing = [f"{a} -> {b}" for a, ts in GRAPH.items() for b in ts
                if {a.split(".")[1:2][0] if "." in a else "", b.split(".")[1]} == {"course", "tools"}]
    assert not crossing, crossing


def test_no_two_modules_depend_on_each_other():
    """No circle, direct or through others (Tarjan's strongly connected components)."""
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_top_level_holds_the_core_only():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} modules at depthkit/'s top level: {top}"
    assert {"course", "tools"} <= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_over_80_lines(name):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{name}: {long}"


def test_train_is_torchvision_sized():
    lines = len((PACKAGE / "train.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_TRAIN_LINES, f"depthkit/train.py has {lines} lines"


def test_one_per_image_evaluation_loop():
    """Only ``evaluate.predictions`` iterates over batches to run a model for scores; the others call it."""
    loops = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.For) and "batches(" in ast.unparse(node.iter):
                    body = "\n".join(ast.unparse(stmt) for stmt in node.body)
                    if "predict(" in body or "model(" in body:
                        loops.append(f"{name}.{fn.name}")
    assert loops == ["depthkit.evaluate.predictions"], loops


def test_the_graph_sees_lazy_imports():
    """The reader finds imports inside functions: the test above would pass vacuously otherwise."""
    assert "depthkit.course.capstone" in GRAPH["depthkit.cli"]  # imported inside cmd_evaluate
    assert "depthkit.stages" in GRAPH["depthkit.pipeline"]
