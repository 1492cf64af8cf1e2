"""`policy-push staff …`, `policy-push audit verify` and the audited, owner-only export, through the
real CLI entry point on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from policy_push.cli import main
from policy_push.cli.audit import EXIT_BROKEN
from policy_push.cli.staff import EXIT_REFUSED
from policy_push.config import Settings
from policy_push.storage import create_engine


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_settings: Settings, pii_key: str) -> Settings:
    monkeypatch.setenv("POLICY_PUSH_DATABASE_URL", db_settings.effective_database_url)
    monkeypatch.setenv("POLICY_PUSH_PII_KEY", pii_key)
    monkeypatch.setenv("POLICY_PUSH_DATA_DIR", str(db_settings.data_dir))
    return db_settings


def _sql(url: str, statement: str) -> list[tuple]:
    async def run() -> list[tuple]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement))
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_staff_commands(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", "王科员", "--role", "editor"]) == 0
    out = capsys.readouterr().out
    assert "added 王科员 (editor" in out and "password: " in out
    password = out.split("password: ")[1].strip()
    assert len(password) >= 12
    stored = _sql(cli_env.effective_database_url, "SELECT password_hash FROM staff_accounts")[0][0]
    assert stored.startswith("$argon2id$") and password not in stored
    assert main(["staff", "add", "王科员", "--role", "viewer"]) == EXIT_REFUSED  # the name is taken
    with pytest.raises(SystemExit):
        main(["staff", "add", "x1", "--role", "boss"])
    assert main(["staff", "token", "create", "王科员", "--client", "import-job", "--days", "7"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("ppt_")
    hashes = _sql(cli_env.effective_database_url, "SELECT secret_sha256 FROM staff_tokens")
    assert len(hashes) == 1 and token.split("_", 2)[2] not in hashes[0][0]
    assert main(["staff", "token", "create", "王科员", "--client", "x", "--role", "admin"]) == EXIT_REFUSED
    assert main(["staff", "list", "--tokens"]) == 0
    listed = capsys.readouterr().out
    assert "王科员  editor" in listed and "client import-job" in listed and token not in listed
    assert main(["staff", "reset-password", "王科员"]) == 0
    assert main(["staff", "token", "revoke", token.split("_")[1]]) == 0
    assert main(["staff", "disable", "王科员"]) == 0
    assert main(["staff", "disable", "nobody"]) == EXIT_REFUSED
    capsys.readouterr()
    assert main(["staff", "list"]) == 0 and "disabled" in capsys.readouterr().out


def test_audit_verify_finds_edited_inserted_and_deleted_rows(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    url = cli_env.effective_database_url
    for name in ("甲科员", "乙科员", "丙科员"):
        assert main(["staff", "add", name, "--role", "viewer"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 3 rows" in capsys.readouterr().out
    # edited
    _sql(url, "UPDATE audit_log SET actor = 'someone-else' WHERE id = (SELECT min(id) FROM audit_log)")
    assert main(["audit", "verify"]) == EXIT_BROKEN
    assert "edited" in capsys.readouterr().err
    # start again from an empty log (and anchor: emptying both is beyond the anchor) for the next tampers
    _sql(url, "DELETE FROM audit_log")
    _sql(url, "DELETE FROM audit_head")
    for name in ("丁科员", "戊科员", "己科员"):
        assert main(["staff", "add", name, "--role", "viewer"]) == 0
    assert main(["audit", "verify"]) == 0
    rows = _sql(url, "SELECT id FROM audit_log ORDER BY id")
    # deleted (a row in the middle)
    _sql(url, f"DELETE FROM audit_log WHERE id = {rows[1][0]}")
    capsys.readouterr()
    assert main(["audit", "verify"]) == EXIT_BROKEN
    assert "deleted or inserted" in capsys.readouterr().err
    # inserted (a forged row with a hash of its own, between the first and the last)
    _sql(url, f"INSERT INTO audit_log (id, at, actor, action, entity_type, entity_id, prev_hash, row_hash) VALUES "
              f"({rows[1][0]}, CURRENT_TIMESTAMP, 'x', 'login', 'staff', 'x', '{'0' * 64}', '{'1' * 64}')")  # fmt: skip
    assert main(["audit", "verify"]) == EXIT_BROKEN


def test_audit_verify_finds_the_newest_rows_deleted(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("甲科员", "乙科员", "丙科员"):
        assert main(["staff", "add", name, "--role", "viewer"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 3 rows, as its anchor counts" in capsys.readouterr().out
    _sql(cli_env.effective_database_url, "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)")
    assert main(["audit", "verify"]) == EXIT_BROKEN
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("audit log NOT intact: the log ends after 2 rows"), err
    assert "anchor counts 3" in err[0] and "1 row(s) missing, the newest deleted?" in err[0]


def test_export_is_audited_and_owner_only(cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "enterprises.jsonl"
    old = os.umask(0o022)
    try:
        assert main(["export", "enterprises", "-o", str(out), "--actor", "审计测试"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = _sql(cli_env.effective_database_url, "SELECT actor, action, entity_type FROM audit_log WHERE action = 'export'")
    assert rows == [("审计测试", "export", "enterprise")]
    assert main(["audit", "verify"]) == 0
