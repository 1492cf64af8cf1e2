"""A running ``policy-push serve`` sees what another process writes: a ``policy-push import`` into the
same database reaches the server's match index within seconds (the change feed), and a policy it imports
gets its draft campaign there. Real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from policy_push.config import Settings
from tests.factories import enterprise_doc, policy_doc

TOKEN = "serve-test-token"
HI_TECH = {"field": "qualifications", "op": "has_any", "value": ["高新技术企业"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(settings: Settings, pii_key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    env.update({
        "POLICY_PUSH_DATABASE_URL": settings.effective_database_url, "POLICY_PUSH_PII_KEY": pii_key,
        "POLICY_PUSH_DATA_DIR": str(settings.data_dir), "POLICY_PUSH_API_TOKEN": TOKEN, "POLICY_PUSH_LOG_LEVEL": "WARNING",
        **extra,
    })  # fmt: skip
    return env


async def _health(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/healthz") as resp:
        return await resp.json()  # type: ignore[no-any-return]


async def _wait(check: Any, *, timeout_s: float) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout_s``."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < timeout_s, "not seen in time"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def _import(env: dict[str, str], kind: str, path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policy_push", "import", kind, str(path), "--quiet", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()


async def test_an_import_by_another_process_reaches_the_running_index(db_settings: Settings, pii_key: str, tmp_path: Path) -> None:
    port = _free_port()
    env = _env(db_settings, pii_key)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policy_push", "serve", "--port", str(port), "--no-worker", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                try:
                    return bool((await _health(http, base)).get("match_index", {}).get("ready"))
                except aiohttp.ClientError:
                    return False

            await _wait(up, timeout_s=60)
            assert (await _health(http, base))["match_index"]["profiles"]["enterprise"] == 0

            # the CLI imports two enterprises into the same database, behind the server's back
            people = tmp_path / "enterprises.jsonl"
            people.write_text("\n".join(json.dumps(enterprise_doc(i, qualifications=["高新技术企业"])) for i in (1, 2)) + "\n")
            await _import(env, "enterprises", people)

            async def indexed() -> bool:
                return (await _health(http, base))["match_index"]["profiles"]["enterprise"] == 2

            seen_after = await _wait(indexed, timeout_s=10)
            # then a policy: the server's index holds it, and the server drafts its campaign
            policies = tmp_path / "policies.jsonl"
            policies.write_text(json.dumps(policy_doc(7, id="pj-follow-1", criteria=HI_TECH)) + "\n")
            await _import(env, "policies", policies)

            async def drafted() -> bool:
                async with http.get(f"{base}/api/v1/campaigns", params={"policy_id": "pj-follow-1"},
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as resp:  # fmt: skip
                    # a draft still being written (``drafting``) is listed too: wait for the finished one
                    return any(c["state"] != "drafting" for c in (await resp.json())["items"])

            drafted_after = await _wait(drafted, timeout_s=15)
            async with http.get(f"{base}/api/v1/campaigns", params={"policy_id": "pj-follow-1"},
                                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:  # fmt: skip
                [campaign] = (await resp.json())["items"]
            health = await _health(http, base)
        assert campaign["state"] == "draft" and campaign["summary"]["eligible"] == 2
        assert health["match_index"]["policies"] == 1 and health["match_index"]["change_seq"] >= 2
        assert health["ticks"]["follow_changes"]["runs"] >= 1 and health["ticks"]["follow_changes"]["failures"] == 0
        print(f"import seen by the server's index {seen_after:.1f} s after it ended; policy drafted after {drafted_after:.1f} s")
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
