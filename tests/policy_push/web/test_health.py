"""``/healthz``: database reachable, schema current, counts."""

from __future__ import annotations

from .conftest import AUTH, Client, sample_enterprise, sample_policy


async def test_healthz_reports_database_and_counts(client: Client) -> None:
    await client.post("/api/v1/policies", json=sample_policy(), headers=AUTH)
    await client.post("/api/v1/enterprises", json=sample_enterprise(), headers=AUTH)
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["schema_current"] is True
    assert body["counts"] == {"policies": 1, "enterprises": 1, "residents": 0}
    index = body["match_index"]
    assert index["ready"] is True and index["profiles"]["enterprise"] == 1 and index["policies"] == 1


async def test_healthz_is_503_when_the_schema_is_missing(settings, aiohttp_client, tmp_path) -> None:
    from policy_push.storage import create_engine
    from policy_push.web import create_app

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
