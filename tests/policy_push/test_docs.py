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
