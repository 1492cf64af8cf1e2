"""Settings from the environment and a TOML file, environment first; unknown keys are refused."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from policy_push.cli import main
from policy_push.config import load_settings


def test_toml_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "pp.toml"
    toml.write_text('port = 9100\nquiet_hours = "22:00-07:00"\ndatabase_url = "sqlite+aiosqlite:///x.db"\n')
    s = load_settings(toml)
    assert (s.port, s.quiet_hours, s.effective_database_url) == (9100, "22:00-07:00", "sqlite+aiosqlite:///x.db")
    monkeypatch.setenv("POLICY_PUSH_PORT", "9200")
    assert load_settings(toml).port == 9200  # the environment wins over the file


def test_defaults_are_embedded_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.is_sqlite and s.effective_database_url.endswith(str(tmp_path / "policy_push.db"))


def test_a_misspelt_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "pp.toml"
    toml.write_text("prot = 9100\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(toml)
    assert main(["--config", str(toml), "db", "status"]) == 3  # Exit.CONFIG
    err = capsys.readouterr().err
    assert "unknown setting" in err and "prot" in err and "Traceback" not in err
