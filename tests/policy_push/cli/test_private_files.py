"""Files with personal data are owner-only and never written through a planted symbolic link (issue 10)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from policy_push.cli import main
from policy_push.security.files import open_private, touch_private
from policy_push.storage import create_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_private_is_0600_and_refuses_links(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("keep me", encoding="utf-8")
    link = tmp_path / "report.jsonl"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_private(link)
    assert target.read_text(encoding="utf-8") == "keep me"
    out = tmp_path / "out.jsonl"
    with open_private(out) as fh:
        fh.write("x")
    assert _mode(out) == 0o600
    with pytest.raises(FileExistsError):
        open_private(out, overwrite=False)


async def test_the_sqlite_database_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pp.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x int)")
    finally:
        await engine.dispose()
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    link = tmp_path / "link.db"
    link.symlink_to(path)
    with pytest.raises(OSError):
        touch_private(link)


def test_import_report_through_a_symlink_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    (tmp_path / "bad.jsonl.rejected.jsonl").symlink_to(target)
    monkeypatch.setenv("POLICY_PUSH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POLICY_PUSH_DEMO", "1")
    assert main(["db", "upgrade"]) == 0
    assert main(["import", "policies", str(bad)]) == 2
    assert target.read_text(encoding="utf-8") == "keep me"
    assert "symbolic link" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("how", ["demo", "key"])
def test_only_the_demo_command_takes_the_demo_key(
    command: str, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_push.security import DEMO_PII_KEY

    monkeypatch.setenv("POLICY_PUSH_DATA_DIR", str(tmp_path / "data"))
    if how == "demo":
        monkeypatch.setenv("POLICY_PUSH_DEMO", "1")
    else:
        monkeypatch.setenv("POLICY_PUSH_PII_KEY", DEMO_PII_KEY)
    assert main([command]) == 2
    assert "refusing the public demo PII key" in capsys.readouterr().err
