"""The import direction the architecture promises, checked on the source: `rules/` at the bottom,
`common/` above it, the components above that, and the `edgewatch/` command line on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rules", "common", "agent", "telemetry", "collector", "server", "tickets", "edgewatch")

# package -> the edgewatch packages it may import (besides itself)
ALLOWED = {
    "rules": set(),
    "common": {"rules"},
    "agent": {"common", "rules"},
    "tickets": {"common", "rules"},
    "telemetry": {"common", "rules"},
    "collector": {"common", "rules", "telemetry", "tickets"},
    "server": {"common", "rules", "telemetry", "tickets"},
    "edgewatch": {"common", "rules", "agent", "telemetry", "collector", "server", "tickets"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_is_below_it(package: str) -> None:
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        extra = imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert not wrong, f"imports against the layering: {wrong}"


def test_the_agent_takes_only_the_metric_catalogue_from_rules() -> None:
    # Every megabyte on a gateway counts: the agent loads the catalogue, not the engine.
    for path in sorted((ROOT / "agent").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rules":
                assert node.module == "rules.metrics", f"{path.name} imports {node.module}"
