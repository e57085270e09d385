"""Who may import whom: the domain code never needs Dagster, and the service never touches the pipeline."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _imports(folder: Path) -> dict[str, set[str]]:
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(REPO_ROOT))] = names
    return found


@pytest.mark.parametrize("room", ["core", "sources", "storage"])
def test_domain_code_does_not_import_dagster(room):
    offenders = {path: sorted(n for n in names if n.split(".")[0].startswith("dagster") or n.startswith(("pm_assets.defs", "pm_assets.drivers")))
                 for path, names in _imports(REPO_ROOT / "pm_assets" / room).items()}
    assert not {path: names for path, names in offenders.items() if names}


def test_core_imports_no_storage_and_serving_only_core_and_storage():
    core = {path: sorted(n for n in names if n.startswith("pm_assets.") and not n.startswith("pm_assets.core"))
            for path, names in _imports(REPO_ROOT / "pm_assets" / "core").items()}
    assert not {path: names for path, names in core.items() if names}
    serving = {path: sorted(n for n in names if n.startswith("pm_assets") and not n.startswith(("pm_assets.core", "pm_assets.storage")))
               for path, names in _imports(REPO_ROOT / "pm_serving").items()}
    assert not {path: names for path, names in serving.items() if names}


def test_nothing_imports_dagster_s_private_modules():
    """Private `dagster._…` names are the first thing a Dagster upgrade breaks: the public `dagster` API only."""
    private = {path: sorted(n for n in names if n.startswith("dagster._"))
               for folder in ("pm_assets", "pm_serving") for path, names in _imports(REPO_ROOT / folder).items()}
    assert not {path: names for path, names in private.items() if names}


def test_asset_modules_import_no_other_asset_module_and_drivers_no_asset_module():
    """An asset module holds its assets: what two of them share (tables, metrics, label reads) lives in `core` or
    `storage`, so assets never import each other, and the drivers reach the pipeline through jobs and runs only."""
    assets = {path: sorted(n for n in names if n.startswith(("pm_assets.defs.assets", "pm_assets.drivers")))
              for path, names in _imports(REPO_ROOT / "pm_assets" / "defs" / "assets").items()}
    assert not {path: names for path, names in assets.items() if names}
    drivers = {path: sorted(n for n in names if n.startswith("pm_assets.defs.assets"))
               for path, names in _imports(REPO_ROOT / "pm_assets" / "drivers").items()}
    assert not {path: names for path, names in drivers.items() if names}


def test_only_the_cli_reaches_the_research_harnesses():
    """`experiments/` measures the platform; no run, training or request depends on it (the CLI dispatches to it)."""
    users = {path: sorted(n for n in names if n.startswith("pm_assets.experiments"))
             for folder in ("pm_assets", "pm_serving") for path, names in _imports(REPO_ROOT / folder).items()
             if not path.startswith("pm_assets/experiments/") and path != "pm_assets/drivers/cli.py"}
    assert not {path: names for path, names in users.items() if names}


def test_no_import_circles_in_the_package():
    """Two modules that need each other are one module or a missing third (type-only imports count too)."""
    graph = {path.removesuffix(".py").replace("/", "."): {n for n in names if n.startswith(("pm_assets", "pm_serving"))}
             for folder in ("pm_assets", "pm_serving") for path, names in _imports(REPO_ROOT / folder).items()}
    circles = sorted((a, b) for a, deps in graph.items() for b in deps if a < b and a in graph.get(b, ()))
    assert not circles
