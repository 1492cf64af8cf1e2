"""``/healthz``: database reachable, schema current, the match index up, and real counters."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from policy_push.security import generate_key
from policy_push.storage import create_engine
from policy_push.web import create_app

from .conftest import AUTH, Client, sample_enterprise, sample_policy, sample_resident


async def test_healthz_reports_database_counts_and_ticks(client: Client) -> None:
    await client.post("/api/v1/policies", json=sample_policy(), headers=AUTH)
    await client.post("/api/v1/enterprises", json=sample_enterprise(), headers=AUTH)
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["schema_current"] is True
    assert body["counts"] == {"policies": 1, "enterprises": 1, "residents": 0, "deliveries": {}}
    index = body["match_index"]
    assert index["ready"] is True and index["failed"] is False
    assert index["profiles"]["enterprise"] == 1 and index["policies"] == 1
    assert "follow_changes" in body["ticks"]
    # a serve without a sender competes only for its own lead ("" on SQLite: the one process leads everything)
    assert set(body["ticks"]["leads"]) in ({""}, {"serve"}), body["ticks"]["leads"]
    # the two writes were numbered 1 and 2 in the change feed; the follower tick catches the index up
    for _ in range(100):
        if (await (await client.get("/healthz")).json())["match_index"]["change_seq"] == 2:
            break
        await asyncio.sleep(0.1)
    assert (await (await client.get("/healthz")).json())["match_index"]["change_seq"] == 2


async def test_tick_counters_move(client: Client) -> None:
    """The counters are the scheduler's own: a tick that ran shows its runs and last run."""
    for _ in range(100):
        ticks = (await (await client.get("/healthz")).json())["ticks"]
        if ticks["follow_changes"]["runs"]:
            break
        await asyncio.sleep(0.1)
    assert ticks["follow_changes"]["runs"] >= 1 and ticks["follow_changes"]["last_run"]
    assert ticks["follow_changes"]["failures"] == 0


async def test_healthz_is_503_when_the_schema_is_missing(settings, aiohttp_client, tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        client = await aiohttp_client(create_app(settings, engine=engine))
        resp = await client.get("/healthz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable"
        assert body["database"]["ok"] is True and body["database"]["schema_current"] is False
    finally:
        await engine.dispose()


async def test_healthz_is_503_when_the_database_is_unreachable(settings, aiohttp_client) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        client = await aiohttp_client(create_app(settings, engine=engine, index_wait_s=0.1))
        resp = await client.get("/healthz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable" and body["database"]["ok"] is False
        assert body["database"]["error"]
    finally:
        await engine.dispose()


async def test_healthz_is_503_when_the_match_index_failed(make_client, settings) -> None:
    """A real failure: the service started with another PII key than the one the profiles were stored
    under cannot decrypt them, so its index cannot be built; /healthz says so instead of answering ok."""
    first = await make_client()
    assert (await first.post("/api/v1/residents", json=sample_resident(), headers=AUTH)).status == 201
    other = await make_client(pii_key=SecretStr(generate_key()), data_dir=settings.data_dir / "other")
    for _ in range(100):
        body = await (resp := await other.get("/healthz")).json()
        if body["match_index"]["failed"]:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 503 and body["status"] == "unavailable"
    assert body["match_index"]["failed"] is True and body["match_index"]["error"] == "PiiDecryptError"
    assert body["database"]["ok"] is True  # the database is fine: it is the index that is not
