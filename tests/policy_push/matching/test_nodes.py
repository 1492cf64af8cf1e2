"""Two ``policy-push serve`` nodes on one PostgreSQL: a write through node A is in node B's match
index within seconds, woken by ``NOTIFY`` (the poll is set to ten minutes, so it cannot be what
brought it).  Real processes, real database."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
import pytest

from policy_push.config import Settings
from tests.factories import enterprise_doc, policy_doc
from tests.policy_push.cli.test_follow_changes import TOKEN, _env, _free_port, _health, _wait

HI_TECH = {"field": "qualifications", "op": "has_any", "value": ["高新技术企业"]}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _start(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policy_push", "serve", "--port", str(port), "--no-worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


async def _matched(http: aiohttp.ClientSession, base: str, policy_id: str) -> set[str]:
    async with http.get(f"{base}/api/v1/policies/{policy_id}/matches", headers=AUTH) as resp:
        if resp.status != 200:
            return set()
        body: dict[str, Any] = await resp.json()
    return {r["profile_id"] for r in body["items"] if r["eligible"]}


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgres"])
async def test_a_write_on_node_a_is_matched_on_node_b(db_settings: Settings, pii_key: str) -> None:
    env = _env(db_settings, pii_key, POLICY_PUSH_FOLLOW_CHANGES_S="600")
    nodes = [await _start(env), await _start(env)]
    (_, a), (_, b) = nodes
    try:
        async with aiohttp.ClientSession() as http:
            for _, base in nodes:

                async def up(base: str = base) -> bool:
                    try:
                        return bool((await _health(http, base)).get("match_index", {}).get("ready"))
                    except aiohttp.ClientError:
                        return False

                await _wait(up, timeout_s=90)
            await asyncio.sleep(1.0)  # both listening (the listener starts beside the ticks)

            policy = policy_doc(31, id="pj-nodes-1", criteria={"all": [HI_TECH]})
            async with http.post(f"{a}/api/v1/policies", json=policy, headers=AUTH) as resp:
                assert resp.status in (200, 201), await resp.text()
            firm = enterprise_doc(31, qualifications=["高新技术企业"])
            began = time.monotonic()
            async with http.post(f"{a}/api/v1/enterprises", json=firm, headers=AUTH) as resp:
                assert resp.status in (200, 201), await resp.text()

            async def on_b() -> bool:
                return firm["id"] in await _matched(http, b, "pj-nodes-1")

            await _wait(on_b, timeout_s=15)
            seen_s = time.monotonic() - began
            # and back: a change through B reaches A (the firm loses its qualification)
            changed = {**firm, "qualifications": []}
            async with http.put(f"{b}/api/v1/enterprises/{firm['id']}", json=changed, headers=AUTH) as resp:
                assert resp.status == 200, await resp.text()

            async def gone_on_a() -> bool:
                return firm["id"] not in await _matched(http, a, "pj-nodes-1")

            back_s = await _wait(gone_on_a, timeout_s=15)
            ticks = [(await _health(http, base))["ticks"]["follow_changes"]["runs"] for base in (a, b)]
        print(f"node A's write matched on node B after {seen_s:.2f} s; node B's change seen on A after {back_s:.2f} s")
        # far below the ten-minute poll: the notification brought it (2 s is the bar on a quiet machine)
        assert seen_s < 15 and back_s < 15
        assert ticks == [0, 0]  # no poll ran meanwhile: notifications alone carried both changes
    finally:
        for proc, _ in nodes:
            proc.terminate()
        for proc, _ in nodes:
            await asyncio.wait_for(proc.wait(), 30)
