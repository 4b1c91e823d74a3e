"""The layout holds: imports flow one way (features -> models -> pipelines), never in a circle,
and the pure logic in features/ and models/ never imports Dagster, so it runs and is tested without
it."""

from __future__ import annotations

import ast
import graphlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models", "pipelines", "demo")
# what each package may import from the others: the product's layers, and the demo beside them
MAY_IMPORT = {
    "features": set(),
    "models": {"features"},
    "pipelines": {"features", "models", "demo"},
    "demo": {"features"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, wherever in the file (an import inside a function counts)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """First-party module -> the first-party modules it imports."""
    files = {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    return {
        name: {m for m in imported_modules(path) if m in files and m != name}
        for name, path in files.items()
    }


def test_the_import_graph_has_no_cycle(graph):
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the modules in a cycle


def test_features_and_models_never_import_dagster():
    offenders = {
        module_name(path): sorted(
            m for m in imported_modules(path) if m.split(".")[0].startswith("dagster")
        )
        for package in ("features", "models")
        for path in (REPO / package).rglob("*.py")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_each_package_imports_only_the_layers_below_it(graph):
    crossing = {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if (source := module.split(".")[0]) != (into := target.split(".")[0])
        and into not in MAY_IMPORT[source]
    }
    assert crossing == set()


def module_level_imports(path: Path) -> set[str]:
    """The modules a file imports when it is imported: its top-level import statements."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_demo_stays_out_of_the_wheel_and_only_the_demo_command_imports_it(graph):
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert not any(pattern.startswith("demo") for pattern in find["find"]["include"])
    users = {
        module
        for module, targets in graph.items()
        if not module.startswith("demo") and any(t.startswith("demo") for t in targets)
    }
    assert users <= {"pipelines.cli"}, "only `python -m pipelines.cli demo` may import the demo"
    on_import = {
        module_name(path)
        for package in ("features", "models", "pipelines")
        for path in (REPO / package).rglob("*.py")
        if any(m.split(".")[0] == "demo" for m in module_level_imports(path))
    }
    assert on_import == set(), "the demo is imported inside the demo command, not at import time"
