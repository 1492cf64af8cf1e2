"""The engines never import the application or each other (design.md, "who may import whom")."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policy_push", "matchers", "channels", "scheduler")
ENGINES = ("matchers", "channels", "scheduler")


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_imports_no_other_package(engine: str) -> None:
    forbidden = set(PACKAGES) - {engine}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & forbidden)
        for path in (ROOT / engine).rglob("*.py")
        if imported_top_levels(path) & forbidden
    }
    assert offenders == {}


def test_the_check_can_see_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom policy_push.domain import Policy\nif True:\n    import channels.base\n")
    assert imported_top_levels(probe) == {"os", "policy_push", "channels"}
