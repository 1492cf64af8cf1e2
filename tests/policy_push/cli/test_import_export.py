"""`policy-push import` / `export` / `db` / `serve` pre-flight, through the real CLI entry point,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from policy_push.cli import main
from policy_push.config import Settings
from policy_push.storage import create_engine

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BAD = SAMPLE / "bad"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_settings: Settings, pii_key: str) -> Settings:
    monkeypatch.setenv("POLICY_PUSH_DATABASE_URL", db_settings.effective_database_url)
    monkeypatch.setenv("POLICY_PUSH_PII_KEY", pii_key)
    monkeypatch.setenv("POLICY_PUSH_DATA_DIR", str(db_settings.data_dir))
    return db_settings


def _count(url: str, table: str) -> int:
    async def run() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                from sqlalchemy import text

                return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _snapshot(url: str) -> dict[str, int]:
    return {t: _count(url, t) for t in ("policies", "policy_versions", "enterprises", "residents")}


def test_sample_imports_idempotently_and_exports_back(cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = cli_env.effective_database_url
    for kind in ("policies", "enterprises", "residents"):
        assert main(["import", kind, str(SAMPLE / f"{kind}.jsonl"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "24 created" in out and "400 created" in out and "600 created" in out
    first = _snapshot(url)
    assert first == {"policies": 24, "policy_versions": 24, "enterprises": 400, "residents": 600}

    # the same files again change nothing
    for kind in ("policies", "enterprises", "residents"):
        assert main(["import", kind, str(SAMPLE / f"{kind}.jsonl"), "--quiet"]) == 0
    assert "0 created, 0 updated, 24 unchanged" in capsys.readouterr().out
    assert _snapshot(url) == first

    # export writes the same records back (formats.md shapes, PII decrypted)
    for kind in ("policies", "enterprises", "residents"):
        target = tmp_path / f"{kind}.out.jsonl"
        assert main(["export", kind, "-o", str(target)]) == 0
        exported = {r["id"]: r for r in map(json.loads, target.read_text(encoding="utf-8").splitlines())}
        original = [json.loads(line) for line in (SAMPLE / f"{kind}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(exported) == len(original)
        for record in original:
            got = exported[record["id"]]
            for key, value in record.items():
                assert got[key] == value, (kind, record["id"], key)


def test_changed_policy_becomes_a_new_version(cli_env: Settings, tmp_path: Path) -> None:
    lines = (SAMPLE / "policies.jsonl").read_text(encoding="utf-8").splitlines()
    first = tmp_path / "one.jsonl"
    first.write_text(lines[0] + "\n", encoding="utf-8")
    assert main(["import", "policies", str(first), "--quiet"]) == 0
    changed = json.loads(lines[0])
    changed["summary"] = "修订后的摘要"
    first.write_text(json.dumps(changed, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["import", "policies", str(first), "--quiet"]) == 0
    url = cli_env.effective_database_url
    assert (_count(url, "policies"), _count(url, "policy_versions")) == (1, 2)


CASES = [
    ("01_malformed_json.jsonl", "enterprises", 2, "(line)", "invalid JSON"),
    ("02_unknown_criteria_field.jsonl", "policies", 1, "criteria", "registered_capital_wan"),
    ("03_unknown_operator.jsonl", "policies", 1, "criteria", "one_of"),
    ("04_wrong_value_type.jsonl", "policies", 1, "criteria", "expected a number"),
    ("05_invalid_uscc_check_char.jsonl", "enterprises", 1, "id", "check character"),
    ("06_invalid_id_check_digit.jsonl", "residents", 1, "id_number", "check digit"),
    ("07_impossible_birth_date.jsonl", "residents", 1, "id_number", "1997-02-30"),
    ("08_unknown_region_code.jsonl", "enterprises", 1, "region", "211105"),
    ("09_unknown_industry_code.jsonl", "enterprises", 1, "industry", "3519"),
    ("10_duplicate_id.jsonl", "enterprises", 2, "id", "duplicate id"),
    ("11_apply_until_before_apply_from.jsonl", "policies", 1, "apply_until", "before apply_from"),
    ("12_phone_10_digits.jsonl", "residents", 1, "contact.phone", "10 digits"),
    ("13_empty_title.jsonl", "policies", 1, "title", "empty"),
    ("14_text_5mb.jsonl", "policies", 1, "(record)", "too large"),
    ("15_criteria_nested_200.jsonl", "policies", 1, "criteria", "deeper than 32"),
]


@pytest.mark.parametrize(("name", "kind", "line", "field", "needle"), CASES, ids=[c[0][:2] for c in CASES])
def test_bad_files_report_line_field_reason_and_store_nothing_wrong(
    cli_env: Settings, tmp_path: Path, name: str, kind: str, line: int, field: str, needle: str
) -> None:
    url = cli_env.effective_database_url
    # a populated database, so "unchanged" means something
    assert main(["import", "policies", str(SAMPLE / "policies.jsonl"), "--quiet"]) == 0
    before = _snapshot(url)
    src = tmp_path / name
    shutil.copy(BAD / name, src)
    report = tmp_path / "report.jsonl"
    assert main(["import", kind, str(src), "--report", str(report), "--quiet"]) == 1
    rejected = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejected] == [line]
    errors = rejected[0]["errors"]
    assert any(e["field"] == field or e["field"].startswith(field + ".") for e in errors), errors
    assert any(needle in e["msg"] for e in errors), errors
    good_lines = sum(1 for x in (BAD / name).read_bytes().split(b"\n") if x.strip()) - 1
    after = _snapshot(url)
    table = {"policies": "policies", "enterprises": "enterprises", "residents": "residents"}[kind]
    assert after[table] - before[table] == good_lines
    assert {k: v for k, v in after.items() if k not in (table, "policy_versions")} == {
        k: v for k, v in before.items() if k not in (table, "policy_versions")
    }


def test_injection_strings_are_stored_verbatim(cli_env: Settings, tmp_path: Path) -> None:
    src = BAD / "16_injection_strings.jsonl"
    assert main(["import", "policies", str(src), "--quiet"]) == 0
    out = tmp_path / "out.jsonl"
    assert main(["export", "policies", "-o", str(out)]) == 0
    original = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    exported = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    for record in original:
        for key in ("title", "summary", "issuer", "doc_number", "text"):
            assert exported[record["id"]][key] == record[key]


def test_serve_refuses_an_out_of_date_schema(
    monkeypatch: pytest.MonkeyPatch, empty_db_url: str, pii_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLICY_PUSH_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("POLICY_PUSH_PII_KEY", pii_key)
    assert main(["serve", "--port", "0"]) == 6  # Exit.SCHEMA
    assert "policy-push db upgrade" in capsys.readouterr().err
    assert main(["db", "status"]) == 1
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "status"]) == 0


def test_refuses_to_start_without_a_pii_key(monkeypatch: pytest.MonkeyPatch, db_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POLICY_PUSH_DATABASE_URL", db_settings.effective_database_url)
    assert main(["import", "policies", str(SAMPLE / "policies.jsonl"), "--quiet"]) == 3  # Exit.CONFIG
    assert "POLICY_PUSH_PII_KEY" in capsys.readouterr().err


def _vouched(url: str, table: str) -> list[str | None]:
    async def run() -> list[str | None]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                from sqlalchemy import text

                return list((await conn.execute(text(f"SELECT DISTINCT phone_source FROM {table} WHERE phone_hash IS NOT NULL"))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_an_import_names_the_register_its_phones_come_from(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    url = cli_env.effective_database_url
    path = str(SAMPLE / "residents.jsonl")
    for bad in ("  ", "名册\t伪造", "x" * 201):
        assert main(["import", "residents", path, "--quiet", "--phone-source", bad]) == 2
        assert "--phone-source: phone_source must name the official register" in capsys.readouterr().err
    assert main(["import", "policies", str(SAMPLE / "policies.jsonl"), "--quiet", "--phone-source", "名册"]) == 2
    assert _count(url, "residents") == 0  # refused before anything was read
    assert main(["import", "residents", path, "--quiet"]) == 0
    assert _vouched(url, "residents") == [None]  # unproven: never pushed to (policy_push.reach)
    assert main(["import", "residents", path, "--quiet", "--phone-source", "盘锦市民政局救助对象名册"]) == 0
    assert _vouched(url, "residents") == ["盘锦市民政局救助对象名册"]
