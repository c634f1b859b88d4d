"""The house's layers: imports inside `helpers/` only go downward, the pipeline takes any
embedder, and the embedded engine lives apart, known to `helpers.connect` alone."""

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, Path]:
    """Dotted name -> file, for every module of a top-level package of the checkout."""
    found = {}
    for path in (PROJECT / package).rglob("*.py"):
        parts = path.relative_to(PROJECT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, known: set[str]) -> set[str]:
    """What a module imports, anywhere in it (functions and TYPE_CHECKING blocks included):
    `from pkg import sub` counts as `pkg.sub` when that is a module, else as `pkg`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            }
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    found = modules(package)
    return {name: imported(path, set(found)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the path that closes it (depth-first search)."""
    found, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if target not in graph:
                continue
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_cycles_finds_a_circle() -> None:
    """The detector itself: a planted circle is found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_inside_helpers() -> None:
    assert cycles(import_graph("helpers")) == []


def test_the_pipeline_imports_neither_embedder() -> None:
    """Following `embedder` from `index_folder` goes only downward: index and the pipeline
    know the `Embedder` protocol, not the in-process or the server implementation."""
    graph = import_graph("helpers")
    implementations = {"helpers.clip", "helpers._remote"}
    for module in ("helpers._pipeline", "helpers.index", "helpers.embedder", "helpers.search"):
        assert graph[module] & implementations == set(), module


def test_only_connect_knows_the_engine() -> None:
    """`helpers/` holds no engine code and one of its modules imports it; the engine imports
    nothing of `helpers` (it is an Elasticsearch stand-in, not part of the tutorial's code)."""
    users = {
        name
        for name, targets in import_graph("helpers").items()
        if any(t.split(".")[0] == "embedded_es" for t in targets)
    }
    assert users == {"helpers.connect"}
    engine = {name: targets for name, targets in import_graph("embedded_es").items() if ".tests" not in name}
    assert {name for name, targets in engine.items() if any(t.split(".")[0] == "helpers" for t in targets)} == set()
    assert not (PROJECT / "helpers" / "_engine").exists()
