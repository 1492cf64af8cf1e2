"""Policy routes: create, get, update (versions), list with paging and filters."""

from __future__ import annotations

import datetime as dt

from policy_push.domain import LOCAL_TZ

from .conftest import AUTH, Client, sample_policy, sample_records


async def test_create_then_get_returns_the_record_unchanged(client: Client) -> None:
    record = sample_policy()
    resp = await client.post("/api/v1/policies", json=record, headers=AUTH)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == f"/api/v1/policies/{record['id']}"
    assert await resp.json() == {"id": record["id"], "outcome": "created", "version": 1}

    resp = await client.get(f"/api/v1/policies/{record['id']}")  # public: no token
    assert resp.status == 200
    body = await resp.json()
    assert body["policy"]["id"] == record["id"]
    assert body["policy"]["title"] == record["title"]
    assert body["policy"]["criteria"] == record["criteria"]
    assert body["version"] == 1
    created = dt.datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == dt.timedelta(hours=8)  # shown in Asia/Shanghai
    assert isinstance(body["is_open"], bool)


async def test_create_existing_id_is_409(client: Client) -> None:
    record = sample_policy()
    assert (await client.post("/api/v1/policies", json=record, headers=AUTH)).status == 201
    resp = await client.post("/api/v1/policies", json={**record, "title": "另一个标题"}, headers=AUTH)
    assert resp.status == 409
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["body", "id"]
    assert "already exists" in error["msg"]
    stored = await (await client.get(f"/api/v1/policies/{record['id']}")).json()
    assert stored["policy"]["title"] == record["title"]


async def test_put_creates_updates_and_keeps_history(client: Client) -> None:
    record = sample_policy()
    url = f"/api/v1/policies/{record['id']}"
    resp = await client.put(url, json=record, headers=AUTH)
    assert resp.status == 201
    assert (await resp.json())["outcome"] == "created"

    resp = await client.put(url, json=record, headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"id": record["id"], "outcome": "unchanged", "version": 1}

    changed = {**record, "summary": "最高奖励提高到60万元"}
    resp = await client.put(url, json=changed, headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"id": record["id"], "outcome": "updated", "version": 2}

    current = await (await client.get(url)).json()
    assert current["version"] == 2
    assert current["policy"]["summary"] == "最高奖励提高到60万元"

    resp = await client.get(f"{url}/versions")
    assert resp.status == 200
    history = await resp.json()
    assert history["id"] == record["id"]
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert history["versions"][1]["policy"]["summary"] == record["summary"]
    assert history["versions"][0]["actor"]
    assert history["versions"][0]["content_hash"] != history["versions"][1]["content_hash"]


async def test_put_without_id_in_body_takes_the_path_id(client: Client) -> None:
    record = sample_policy()
    del record["id"]
    resp = await client.put("/api/v1/policies/pj-new-001", json=record, headers=AUTH)
    assert resp.status == 201
    assert (await (await client.get("/api/v1/policies/pj-new-001")).json())["policy"]["id"] == "pj-new-001"


async def test_put_with_mismatched_body_id_is_422(client: Client) -> None:
    record = sample_policy()
    resp = await client.put("/api/v1/policies/another-id", json=record, headers=AUTH)
    assert resp.status == 422
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["body", "id"]
    assert "does not match" in error["msg"]
    assert (await client.get("/api/v1/policies/another-id")).status == 404


async def test_unknown_policy_is_404_naming_it(client: Client) -> None:
    for url in ("/api/v1/policies/no-such", "/api/v1/policies/no-such/versions"):
        resp = await client.get(url)
        assert resp.status == 404
        assert await resp.json() == {"errors": [{"loc": ["path", "id"], "msg": "no policy 'no-such'"}]}


async def _load(client: Client, records: list[dict]) -> None:
    for record in records:
        resp = await client.post("/api/v1/policies", json=record, headers=AUTH)
        assert resp.status == 201, await resp.text()


async def test_list_pages_through_every_policy(client: Client) -> None:
    records = sample_records("policies.jsonl")
    await _load(client, records)
    seen: list[str] = []
    for offset in range(0, len(records), 10):
        resp = await client.get("/api/v1/policies", params={"limit": 10, "offset": offset})
        assert resp.status == 200
        page = await resp.json()
        assert page["total"] == len(records)
        assert (page["limit"], page["offset"]) == (10, offset)
        seen.extend(item["policy"]["id"] for item in page["items"])
    assert sorted(seen) == sorted(r["id"] for r in records)
    assert len(seen) == len(set(seen))


async def test_list_filters_by_audience_category_and_region(client: Client) -> None:
    records = sample_records("policies.jsonl")
    await _load(client, records)

    page = await (await client.get("/api/v1/policies", params={"audience": "resident", "limit": 500})).json()
    assert page["total"] == sum(r["audience"] == "resident" for r in records)
    assert {i["policy"]["audience"] for i in page["items"]} == {"resident"}

    category = records[0]["categories"][0]
    page = await (await client.get("/api/v1/policies", params={"category": category, "limit": 500})).json()
    assert page["total"] == sum(category in r["categories"] for r in records)
    assert all(category in i["policy"]["categories"] for i in page["items"])

    # a province-wide policy (210000) covers a Panjin county; the county filter keeps it
    page = await (await client.get("/api/v1/policies", params={"region": "211122", "limit": 500})).json()
    ids = {i["policy"]["id"] for i in page["items"]}
    assert "ln-rst-2026-003" in ids
    assert 0 < page["total"] <= len(records)


async def test_list_filters_open_and_closed_by_local_date(client: Client) -> None:
    today = dt.datetime.now(LOCAL_TZ).date()
    past = (today - dt.timedelta(days=1)).isoformat()
    future = (today + dt.timedelta(days=30)).isoformat()
    base = sample_policy()
    await _load(
        client,
        [
            {**base, "id": "p-closed", "apply_from": "2020-01-01", "apply_until": past},
            {**base, "id": "p-open", "apply_from": "2020-01-01", "apply_until": future},
            {**base, "id": "p-today", "apply_from": "2020-01-01", "apply_until": today.isoformat()},
            {**base, "id": "p-no-deadline", "apply_from": "2020-01-01", "apply_until": None},
        ],
    )
    open_ = await (await client.get("/api/v1/policies", params={"status": "open"})).json()
    closed = await (await client.get("/api/v1/policies", params={"status": "closed"})).json()
    assert {i["policy"]["id"] for i in open_["items"]} == {"p-open", "p-today", "p-no-deadline"}
    assert all(i["is_open"] for i in open_["items"])
    assert {i["policy"]["id"] for i in closed["items"]} == {"p-closed"}
    assert not closed["items"][0]["is_open"]


async def test_bad_query_parameters_are_422_naming_the_parameter(client: Client) -> None:
    cases = {
        "limit=0": "limit",
        "limit=501": "limit",
        "limit=ten": "limit",
        "offset=-1": "offset",
        "status=expired": "status",
        "audience=everyone": "audience",
        "region=21110": "region",
        "stauts=open": "stauts",
        "limit=5&limit=6": "limit",
    }
    for query, name in cases.items():
        resp = await client.get(f"/api/v1/policies?{query}")
        assert resp.status == 422, query
        errors = (await resp.json())["errors"]
        assert errors[0]["loc"] == ["query", name], query
        assert errors[0]["msg"], query


async def test_limit_bounds_are_accepted(client: Client) -> None:
    for query in ("limit=1", "limit=500", "offset=0", "offset=100000"):
        assert (await client.get(f"/api/v1/policies?{query}")).status == 200, query
