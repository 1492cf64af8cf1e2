import ast
from pathlib import Path

import matchers


def test_all_is_the_sorted_public_names():
    assert matchers.__all__ == sorted(n for n in vars(matchers) if not n.startswith("_"))


def test_engine_never_imports_the_app_or_other_engines():
    forbidden = {"policy_push", "channels", "scheduler"}
    for path in Path(matchers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not {n.split(".")[0] for n in names} & forbidden, path
