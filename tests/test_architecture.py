"""The package's imports run one way: leaves -> config -> core -> competitions -> task packages ->
evaluation -> tuning -> submission -> kaggle -> report -> cli, with no cycle between any two modules.

Imports are read from the source (function-level ones included), so nothing heavy is imported."""
import ast
from pathlib import Path

import pytest

import podium

ROOT = Path(podium.__file__).parent

# Lowest first. A module may import its own layer's modules and any lower layer's; packages that share
# a layer (the task packages) never import each other.
LAYERS = [
    ("podium", "podium.errors", "podium.files"),
    ("podium.config",),
    ("podium.core",),
    ("podium.competitions",),
    ("podium.vision", "podium.collab"),
    ("podium.evaluation",),
    ("podium.tuning",),
    ("podium.submission",),
    ("podium.kaggle",),
    ("podium.report",),
    ("podium.cli", "podium.__main__"),
]
TASK_PACKAGES = ("podium.vision", "podium.collab")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "podium"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; podium's modules import each other by full name"
            if node.module and node.module.split(".")[0] == "podium":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def owner(module: str) -> tuple[int, str]:
    """(layer index, the layer entry that holds `module`): the longest matching prefix."""
    best = None
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if module == entry or module.startswith(entry + "."):
                if best is None or len(entry) > len(best[1]):
                    best = (index, entry)
    assert best is not None, f"{module} is in no layer: add its package to LAYERS"
    return best


def test_every_import_points_down():
    upward = []
    for source, targets in GRAPH.items():
        source_layer, source_entry = owner(source)
        for target in targets:
            target_layer, target_entry = owner(target)
            if target_layer > source_layer or (source_entry != target_entry and {source_entry, target_entry} <= set(TASK_PACKAGES)):
                upward.append(f"{source} -> {target}")
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def strongly_connected(graph: dict) -> list[list[str]]:
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    cycles = [sorted(c) for c in strongly_connected(GRAPH) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("bad_edge", [("podium.core.table", "podium.vision.cache"),
                                      ("podium.vision.heads", "podium.vision.stages.finetune")])
def test_the_checks_catch_a_regression(bad_edge):
    """An upward import, or a cycle, put back into the graph is found."""
    source, target = bad_edge
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph[source].add(target)
    upward = owner(target)[0] > owner(source)[0]
    graph[target].add(source)  # and a cycle through it
    assert upward or source.split(".")[1] == target.split(".")[1]
    assert any(len(c) > 1 for c in strongly_connected(graph))


def test_packages_declare_their_public_names():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "podium":
            tree = ast.parse(path.read_text())
            assert ast.get_docstring(tree), f"{path}: say the package's purpose in its docstring"
            assert any(isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "__all__"
                                                            for target in node.targets) for node in tree.body), \
                f"{path}: declare the package's public face in __all__"


def test_no_private_names_cross_modules():
    crossing = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("podium"):
                crossing += [f"{name}: {alias.name} from {node.module}" for alias in node.names
                             if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not crossing, "\n".join(crossing)


def test_tests_are_laid_out_like_the_package():
    tests = Path(__file__).parent
    folders = {path.name for path in tests.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()}
    assert folders and folders <= packages, f"test folders without a package: {sorted(folders - packages)}"
