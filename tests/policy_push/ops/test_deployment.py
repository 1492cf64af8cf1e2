"""deploy/compose.yaml as processes: its ``migrate``, ``api`` and ``worker`` services' commands and settings,
run against a new PostgreSQL database (the image's entrypoint is ``policy-push``): the schema is created, the
sample imported, the API node ready, the worker node running its ticks beside it (one scheduler leader
between them), and both stop with exit status 0 on SIGTERM. The Dockerfile and systemd units name the same
commands."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from policy_push.security import generate_key
from policy_push.storage import create_engine
from tests.conftest import run_async

from .cli_run import PG_URL, ROOT, clean_env, cli, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

COMPOSE = ROOT / "deploy" / "compose.yaml"


async def _ddl(statement: str) -> None:
    engine = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url() -> Any:
    name = f"i15_deploy_{secrets.token_hex(4)}"
    run_async(lambda: _ddl(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        run_async(lambda: _ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _service_env(service: dict[str, Any], **given: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in service["environment"].items():
        value = str(value)
        m = re.fullmatch(r"\$\{(\w+):\?.*\}", value)
        env[key] = given[key] if m else value
    return env


def test_compose_services_run_as_a_two_node_setup_on_postgresql(database_url: str, tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    port = free_port()
    given = {"POLICY_PUSH_PII_KEY": generate_key(), "POLICY_PUSH_API_TOKEN": "deploy-test-token"}
    procs: dict[str, subprocess.Popen[str]] = {}

    def env_of(name: str) -> dict[str, str]:
        env = clean_env(**_service_env(services[name], **given))
        env["POLICY_PUSH_DATABASE_URL"] = database_url  # the compose file's `db` host is this test's server
        env["POLICY_PUSH_DATA_DIR"] = str(tmp_path / name)
        env["POLICY_PUSH_PORT"] = str(port)  # the container's 8080, moved off a port this machine may use
        return env

    migrate = cli(services["migrate"]["command"], env=env_of("migrate"), cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    sample = cli(["sample", "--out", "."], env=env_of("migrate"), cwd=tmp_path)
    assert sample.returncode == 0
    for kind in ("policies", "enterprises", "residents"):
        done = cli(["import", kind, f"{kind}.jsonl", "--quiet"], env=env_of("migrate"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    try:
        for name in ("api", "worker"):
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "policy_push", *services[name]["command"]], env=env_of(name), cwd=tmp_path,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if json.load(r)["status"] == "ok":
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as h:
                            health = json.load(h)
                        break
            except OSError:
                pass
            assert procs["api"].poll() is None and procs["worker"].poll() is None
            time.sleep(0.5)
        assert health.get("status") == "ok", health
        assert health["database"]["dialect"] == "postgresql"
        assert health["counts"]["residents"] == 600 and health["pii_key"]["matches_data"] is True
        assert "dispatch_due_campaigns" in health["ticks"]  # the API node sends too
    finally:
        codes = {}
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for name, proc in procs.items():
            codes[name] = proc.wait(timeout=30)
            out = proc.stdout.read() if proc.stdout else ""
            if proc.stdout:
                proc.stdout.close()
            assert "Traceback" not in out, out[-3000:]
    assert codes == {"api": 0, "worker": 0}


def test_the_image_and_the_units_run_the_same_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["policy-push"]' in dockerfile and "STOPSIGNAL SIGTERM" in dockerfile
    for kind in ("serve", "worker"):
        unit = (ROOT / "deploy" / "systemd" / f"policy-push-{kind}.service").read_text(encoding="utf-8")
        assert f"ExecStart=/opt/policy_push/bin/policy-push {kind}\n" in unit and "KillSignal=SIGTERM" in unit
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert compose["services"]["api"]["command"] == ["serve"] and compose["services"]["worker"]["command"] == ["worker"]
