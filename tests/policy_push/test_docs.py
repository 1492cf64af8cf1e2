"""The README stays in step with the code (datasette's habit)."""

import re
from pathlib import Path

from policy_push.config import Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_generated_from_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings-table:start -->\n(.*)\n<!-- settings-table:end -->", readme, re.S)
    assert block, "README lost its settings table markers"
    assert block.group(1) == settings_table(), "regenerate the table: python -c 'from policy_push.config import settings_table; print(settings_table())'"
    for name in Settings.model_fields:
        assert f"POLICY_PUSH_{name.upper()}" in block.group(1)


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_command = ci.strip().splitlines()[-1]
    # CI adds -q to pip only
    assert ci_command.replace("pip install -q ", "pip install ") in readme


def test_every_document_the_code_names_exists() -> None:
    """A comment or docstring that says "see design.md" must lead somewhere (by path or file name)."""
    shipped = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts} | {
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.md") if ".venv" not in p.parts
    }
    missing = {}
    for folder in ("policy_push", "channels", "matchers", "scheduler", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in re.findall(r"[\w./-]*\w\.md\b", path.read_text(encoding="utf-8")):
                if name.lstrip("./") not in shipped and Path(name).name not in shipped:
                    missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, missing
    assert "shared/" not in "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
