"""Each operator mistake of issue 15, made with the real command: one line on stderr that says what is wrong
and what to do, a distinct exit status, no traceback; the port and the database are checked before heavy work."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from policy_push.cli.failures import Exit
from policy_push.security import generate_key

from .cli_run import PG_URL, ROOT, clean_env, cli

SAMPLE = ROOT / "policy_push" / "sample"


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(POLICY_PUSH_DATA_DIR=str(tmp_path / "data"), POLICY_PUSH_PII_KEY=generate_key())


@pytest.fixture
def upgraded(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    assert cli(["db", "upgrade"], env=env, cwd=tmp_path).returncode == 0
    return env


def test_postgresql_down(env: dict[str, str], tmp_path: Path) -> None:
    env["POLICY_PUSH_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:1/test"
    proc = cli(["import", "policies", str(SAMPLE / "policies.jsonl"), "--quiet"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.DB_UNREACHABLE
    line = _one_line(proc.stderr)
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in line and "POLICY_PUSH_DATABASE_URL" in line


def test_unknown_database_host(env: dict[str, str], tmp_path: Path) -> None:
    env["POLICY_PUSH_DATABASE_URL"] = "postgresql+asyncpg://postgres@no-such-host.invalid:5432/test"
    proc = cli(["db", "upgrade"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.DB_UNREACHABLE
    assert "cannot resolve the database host" in _one_line(proc.stderr)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url at all", "postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h"])
def test_bad_database_url(env: dict[str, str], tmp_path: Path, url: str) -> None:
    env["POLICY_PUSH_DATABASE_URL"] = url
    proc = cli(["db", "upgrade"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.CONFIG
    assert "bad setting POLICY_PUSH_DATABASE_URL" in _one_line(proc.stderr)


@pytest.mark.postgres
def test_missing_database(env: dict[str, str], tmp_path: Path) -> None:
    env["POLICY_PUSH_DATABASE_URL"] = PG_URL.rsplit("/", 1)[0] + "/i15_no_such_database"
    proc = cli(["db", "upgrade"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.DB_MISSING
    line = _one_line(proc.stderr)
    assert "database 'i15_no_such_database' does not exist" in line and "createdb i15_no_such_database" in line


@pytest.mark.parametrize("command", [["import", "policies", str(SAMPLE / "policies.jsonl"), "--quiet"],
                                     ["export", "policies"], ["worker"]])  # fmt: skip
def test_commands_before_db_upgrade(env: dict[str, str], tmp_path: Path, command: list[str]) -> None:
    proc = cli(command, env=env, cwd=tmp_path)
    assert proc.returncode == Exit.SCHEMA
    assert "run `policy-push db upgrade`" in _one_line(proc.stderr)


def test_port_in_use_is_found_before_the_index_is_built(upgraded: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        started = time.monotonic()
        proc = cli(["serve", "--port", str(port)], env=upgraded, cwd=tmp_path)
        took = time.monotonic() - started
    assert proc.returncode == Exit.PORT_IN_USE
    assert f"port {port} on 127.0.0.1 is already in use" in _one_line(proc.stderr)
    assert "policy_push API on" not in proc.stdout and took < 30


def test_demo_checks_its_port_first(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = cli(["demo", "--exit", "--port", str(port)], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.PORT_IN_USE
    assert "already in use" in _one_line(proc.stderr)
    assert "importing" not in proc.stdout  # nothing was done before the check


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("POLICY_PUSH_QUIET_HOURS", "25:00-08:00", "hours run 00-23"),
        ("POLICY_PUSH_QUIET_HOURS", "nine to five", "expected HH:MM-HH:MM"),
        ("POLICY_PUSH_QUIET_HOURS_BY_CHANNEL", '{"fax": "22:00-07:00"}', "unknown channel 'fax'"),
        ("POLICY_PUSH_LOCAL_TIMEZONE", "Mars/Olympus", "not an IANA time zone"),
        ("POLICY_PUSH_PORT", "eighty", "POLICY_PUSH_PORT"),
        ("POLICY_PUSH_LOG_LEVEL", "LOUD", "expected one of DEBUG"),
        ("POLICY_PUSH_CLAIM_LEASE_S", "1", "greater than or equal to 3"),
    ],
)
def test_bad_settings_are_refused_at_load(env: dict[str, str], tmp_path: Path, variable: str, value: str, words: str) -> None:
    env[variable] = value
    proc = cli(["db", "status"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.CONFIG
    line = _one_line(proc.stderr)
    assert words in line and variable.removeprefix("POLICY_PUSH_") in line.upper()


def test_missing_config_file(env: dict[str, str], tmp_path: Path) -> None:
    proc = cli(["--config", "missing.toml", "db", "status"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.CONFIG
    assert "config file 'missing.toml' does not exist" in _one_line(proc.stderr)


def test_config_file_that_is_not_toml(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "pp.toml").write_text("port = \n", encoding="utf-8")
    proc = cli(["--config", "pp.toml", "db", "status"], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.CONFIG
    assert "is not valid TOML" in _one_line(proc.stderr)


def test_no_pii_key(env: dict[str, str], tmp_path: Path) -> None:
    del env["POLICY_PUSH_PII_KEY"]
    proc = cli(["db", "upgrade"], env=env, cwd=tmp_path)  # the schema needs no key
    assert proc.returncode == 0
    proc = cli(["import", "policies", str(SAMPLE / "policies.jsonl")], env=env, cwd=tmp_path)
    assert proc.returncode == Exit.CONFIG
    assert "POLICY_PUSH_PII_KEY" in _one_line(proc.stderr)


def test_missing_input_file_and_existing_output_file(upgraded: dict[str, str], tmp_path: Path) -> None:
    proc = cli(["import", "residents", "nope.jsonl"], env=upgraded, cwd=tmp_path)
    assert proc.returncode == Exit.FILES
    assert "no such file 'nope.jsonl'" in _one_line(proc.stderr)
    (tmp_path / "out.jsonl").write_text("keep me\n", encoding="utf-8")
    proc = cli(["export", "policies", "-o", "out.jsonl"], env=upgraded, cwd=tmp_path)
    assert proc.returncode == Exit.FILES
    assert "add --force" in _one_line(proc.stderr)
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == "keep me\n"
    assert cli(["export", "policies", "-o", "out.jsonl", "--force"], env=upgraded, cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == ""  # nothing imported yet


def test_version_and_help_with_examples(env: dict[str, str], tmp_path: Path) -> None:
    proc = cli(["--version"], env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("policy-push ")
    for command in ("serve", "worker", "demo", "import", "export", "match", "suggest", "db", "keys", "keygen", "sample"):
        out = cli([command, "--help"], env=env, cwd=tmp_path).stdout
        assert "example:" in out and f"policy-push {command}" in out, command
        assert "``" not in out, command  # no raw RST
