"""The match API over the real app, on SQLite and PostgreSQL: the sample's expected pairs exactly,
every write reflected at once, restarts without re-tokenising, and a loop that never stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.security import PiiCipher
from policy_push.storage import EnterpriseRepository, PolicyRepository
from policy_push.web.keys import match_service_key
from tests.factories import enterprise_doc, make_enterprise, make_policy, policy_doc

from .conftest import (
    AUTH,
    EVAL_DAY,
    SAMPLE,
    Client,
    expected_pairs,
    import_sample,
    matched_pairs,
    sample_docs,
)

MakeClient = Callable[..., Awaitable[Client]]
EXPIRED = {"pj-rsj-2025-016", "pj-sthjj-2025-007", "pj-mzj-2025-015"}
NO_CRITERIA = {"pj-scjgj-2026-008", "pj-mzj-2026-009"}


async def test_api_reproduces_the_sample_exactly(
    make_client: MakeClient, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    # policies and enterprises are in the database at start (a build); residents arrive through
    # the import endpoint while the app runs (a catch-up)
    await import_sample(session_factory, cipher, ("policies", "enterprises"))
    client = await make_client()
    resp = await client.post(
        "/api/v1/import/residents", data=(SAMPLE / "residents.jsonl").read_bytes(),
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
    )
    assert (await resp.json())["created"] == 600

    expected = expected_pairs()
    got: dict[tuple[str, str], str] = {}
    for policy in sample_docs("policies.jsonl"):
        pairs, first = await matched_pairs(client, policy["id"])
        got.update(pairs)
        counts = first["counts"]
        assert counts["eligible"] + counts["unknown"] == len(pairs) == first["total"]
        assert counts["profiles"] == (400 if policy["audience"] == "enterprise" else 600)
        assert sum(b["count"] for b in first["histogram"]) == counts["eligible"]
        assert first["no_criteria"] is (policy["id"] in NO_CRITERIA)
        assert (first["note"] is not None) is first["no_criteria"]
        assert all(set(item) == {"policy_id", "profile_id", "eligible", "score", "reasons", "missing"} for item in first["items"])
    assert got == expected

    # profile -> policies: the expected pairs of the open policies, eligible ones ranked
    for profile_id in ["91211104MAE147YE5N", *[r["id"] for r in sample_docs("residents.jsonl")[:40]]]:
        resp = await client.get(f"/api/v1/profiles/{profile_id}/policies", params={"date": EVAL_DAY.isoformat()}, headers=AUTH)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        want = {p for (p, who), v in expected.items() if who == profile_id and v == "eligible" and p not in EXPIRED}
        maybe = {p for (p, who), v in expected.items() if who == profile_id and v == "unknown" and p not in EXPIRED}
        assert {r["policy_id"] for r in body["items"]} == want
        assert {r["policy_id"] for r in body["may_qualify"]} == maybe
        scores = [r["score"] for r in body["items"]]
        assert scores == sorted(scores, reverse=True)


async def test_profile_policies_leave_out_expired_but_matches_include_them(make_client: MakeClient) -> None:
    client = await make_client()
    await _post(client, "/api/v1/policies", policy_doc(1, id="old", apply_from="2025-01-01", apply_until="2025-12-31"))
    await _post(client, "/api/v1/policies", policy_doc(2, id="open", apply_until=None, title="石油钻采设备制造企业技术改造补助"))
    await _post(client, "/api/v1/policies", policy_doc(3, id="other", apply_until="2027-01-31", title="餐饮住宿业纾困补助"))
    enterprise = enterprise_doc(10)
    await _post(client, "/api/v1/enterprises", enterprise)

    body = await _get(client, f"/api/v1/enterprises/{enterprise['id']}/policies?date=2026-11-26")
    assert [r["policy_id"] for r in body["items"]] == ["open", "other"]  # best text match first
    assert body["items"][0]["score"] > body["items"][1]["score"]
    pairs, _ = await matched_pairs(client, "old")
    assert pairs == {("old", enterprise["id"]): "eligible"}  # matching ignores apply windows
    # on a day before its deadline the old policy is offered too
    body = await _get(client, f"/api/v1/profiles/{enterprise['id']}/policies?date=2025-06-01")
    assert "old" in {r["policy_id"] for r in body["items"]}


async def test_every_write_is_reflected_at_once(make_client: MakeClient) -> None:
    client = await make_client()
    criteria = {"all": [{"field": "region", "op": "within", "value": ["211100"]},
                        {"field": "qualifications", "op": "has_any", "value": ["高新技术企业"]}]}
    await _post(client, "/api/v1/policies", policy_doc(1, id="hi-tech", criteria=criteria))
    a, b = enterprise_doc(21), enterprise_doc(22, qualifications=[])
    await _post(client, "/api/v1/enterprises", a)
    await _post(client, "/api/v1/enterprises", b)
    assert (await matched_pairs(client, "hi-tech"))[0] == {("hi-tech", a["id"]): "eligible"}

    await _put(client, f"/api/v1/enterprises/{b['id']}", {**b, "qualifications": ["高新技术企业"]})
    assert set((await matched_pairs(client, "hi-tech"))[0]) == {("hi-tech", a["id"]), ("hi-tech", b["id"])}

    await _put(client, f"/api/v1/enterprises/{a['id']}", {**a, "qualifications": None})
    pairs, first = await matched_pairs(client, "hi-tech")
    assert pairs[("hi-tech", a["id"])] == "unknown"
    unknown = next(i for i in first["items"] if i["profile_id"] == a["id"])
    assert unknown["missing"] == ["qualifications"]
    body = await _get(client, f"/api/v1/profiles/{a['id']}/policies")
    assert body["items"] == [] and [r["policy_id"] for r in body["may_qualify"]] == ["hi-tech"]

    await _put(client, f"/api/v1/enterprises/{a['id']}", {**a, "region": "210202"})  # moved to Dalian
    assert ("hi-tech", a["id"]) not in (await matched_pairs(client, "hi-tech"))[0]

    resp = await client.delete(f"/api/v1/enterprises/{b['id']}", headers=AUTH)
    assert resp.status == 204
    assert (await matched_pairs(client, "hi-tech"))[0] == {}
    assert (await client.get(f"/api/v1/profiles/{b['id']}/policies", headers=AUTH)).status == 404

    # a new version of the policy's criteria changes who matches
    await _put(client, "/api/v1/policies/hi-tech", policy_doc(1, id="hi-tech", criteria={
        "all": [{"field": "region", "op": "within", "value": ["210200"]}]}))
    assert (await matched_pairs(client, "hi-tech"))[0] == {("hi-tech", a["id"]): "eligible"}
    body = await _get(client, f"/api/v1/enterprises/{a['id']}/policies")
    assert [r["policy_id"] for r in body["items"]] == ["hi-tech"]


async def test_restart_loads_the_saved_index_without_retokenising(
    make_client: MakeClient, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    async with session_factory() as session, session.begin():
        await EnterpriseRepository(session, cipher).upsert_many(
            [make_enterprise(100 + i, business_scope=f"石油装备制造 技术服务{i}") for i in range(60)], actor="test")
        await PolicyRepository(session).upsert(make_policy(1, id="p1"), actor="test")
    first = await make_client()
    service = first.app[match_service_key]
    assert service.start_report is not None and service.start_report.mode == "built"
    assert service.start_report.texts_cut == 61  # 60 profiles and one policy
    written = enterprise_doc(500, business_scope="稻米加工")
    await _post(first, "/api/v1/enterprises", written)
    before, _ = await matched_pairs(first, "p1")
    await first.close()

    second = await make_client()
    service = second.app[match_service_key]
    report = service.start_report
    assert report is not None and report.mode == "loaded"
    assert report.texts_cut == 0 and service.tokenizer.texts_cut == 0
    assert report.profiles["enterprise"] == 61
    assert (await matched_pairs(second, "p1"))[0] == before
    await second.close()

    # written while no server ran (as `policy-push import` does): caught up at the next start,
    # and only the changed text is cut
    async with session_factory() as session, session.begin():
        await EnterpriseRepository(session, cipher).upsert(make_enterprise(100, business_scope="河蟹养殖"), actor="cli")
    third = await make_client()
    report = third.app[match_service_key].start_report
    assert report is not None and report.mode == "loaded" and report.texts_cut == 1


async def test_health_answers_while_a_big_index_builds(
    make_client: MakeClient, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    scopes = ["石油钻采专用设备制造", "稻米加工 粮食收购", "河蟹养殖 水产品销售", "软件开发 信息技术咨询", "餐饮服务 住宿"]
    # big enough that the build lasts well over a second: a build on the loop would then be one
    # stall far past the GIL pauses a thread's jieba and numpy work cause (a few hundred ms)
    n = 8000
    profiles = [make_enterprise(1000 + i, business_scope=f"{scopes[i % 5]} 第{i}号", qualifications=[]) for i in range(n)]
    async with session_factory() as session, session.begin():
        await EnterpriseRepository(session, cipher).upsert_many(profiles, actor="test")
        await PolicyRepository(session).upsert(make_policy(2, id="p2", criteria=None), actor="test")

    client = await make_client(index_wait_s=0)  # serve at once, build in the background
    service = client.app[match_service_key]
    stalls: list[float] = []
    started = time.perf_counter()

    async def watch_loop() -> None:
        while not service.is_ready:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - began)

    watcher = asyncio.create_task(watch_loop())
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["counts"]["enterprises"] == n
    answered_while_building = not service.is_ready
    pairs, first = await matched_pairs(client, "p2")  # waits for the index
    await watcher
    build_s = time.perf_counter() - started
    assert answered_while_building
    assert len(pairs) == n and first["no_criteria"]
    assert "没有设定条件" in first["note"]
    # the loop kept turning: no single stall anywhere near the length of the build (a build on
    # the loop would be one stall as long as the build; a loaded machine stretches both alike)
    assert stalls and max(stalls) < max(0.25, build_s / 3), (max(stalls), build_s)


async def test_errors_are_json_and_the_routes_need_the_token(make_client: MakeClient) -> None:
    client = await make_client()
    await _post(client, "/api/v1/policies", policy_doc(5, id="p5"))
    assert (await client.get("/api/v1/policies/p5/matches")).status == 401
    assert (await client.get("/api/v1/profiles/x/policies")).status == 401
    resp = await client.get("/api/v1/policies/nope/matches", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["errors"][0]["loc"] == ["path", "id"]
    for url in ("/api/v1/profiles/nope/policies", "/api/v1/enterprises/nope/policies", "/api/v1/residents/nope/policies"):
        assert (await client.get(url, headers=AUTH)).status == 404
    for query, field in [("limit=0", "limit"), ("date=2026-02-30", "date"), ("min_score=2", "min_score"),
                         ("eligible=maybe", "eligible"), ("colour=red", "colour")]:
        resp = await client.get(f"/api/v1/policies/p5/matches?{query}", headers=AUTH)
        assert resp.status == 422, query
        assert (await resp.json())["errors"][0]["loc"] == ["query", field]
    # every spelling of a number the document's `number` allows is read; nan and inf are not numbers there
    for score in ("1e-3", "0.5E0", ".25", "1.", "0"):
        assert (await client.get(f"/api/v1/policies/p5/matches?min_score={score}", headers=AUTH)).status == 200, score
    for score in ("nan", "inf", "1e1", "-0.1", "0x1"):
        assert (await client.get(f"/api/v1/policies/p5/matches?min_score={score}", headers=AUTH)).status == 422, score


async def test_an_id_both_kinds_use_is_a_conflict_on_the_shared_route(make_client: MakeClient) -> None:
    client = await make_client()
    enterprise = enterprise_doc(31)
    await _post(client, "/api/v1/enterprises", enterprise)
    resident = {**sample_docs("residents.jsonl")[0], "id": enterprise["id"]}
    await _post(client, "/api/v1/residents", resident)
    assert (await client.get(f"/api/v1/profiles/{enterprise['id']}/policies", headers=AUTH)).status == 409
    for kind in ("enterprises", "residents"):
        body = await _get(client, f"/api/v1/{kind}/{enterprise['id']}/policies")
        assert body["audience"] == kind[:-1]


# -- helpers -------------------------------------------------------------------------------------
async def _post(client: Client, url: str, doc: dict) -> None:
    resp = await client.post(url, json=doc, headers=AUTH)
    assert resp.status == 201, await resp.text()


async def _put(client: Client, url: str, doc: dict) -> None:
    resp = await client.put(url, json=doc, headers=AUTH)
    assert resp.status in (200, 201), await resp.text()


async def _get(client: Client, url: str) -> dict:
    resp = await client.get(url, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_profile_stored_behind_the_apps_back_is_found(
    make_client: MakeClient, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    client = await make_client()
    await _post(client, "/api/v1/policies", policy_doc(6, id="p6", apply_until=None))
    quiet = make_enterprise(61)
    async with session_factory() as session, session.begin():  # as `policy-push import` would
        await EnterpriseRepository(session, cipher).upsert(quiet, actor="cli")
    body = await _get(client, f"/api/v1/profiles/{quiet.id}/policies")
    assert [r["policy_id"] for r in body["items"]] == ["p6"]


async def test_responses_fit_their_documented_schemas(make_client: MakeClient) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    client = await make_client()
    doc = await _get(client, "/api/v1/openapi.json")
    await _post(client, "/api/v1/policies", policy_doc(7, id="p7", criteria=None))
    enterprise = enterprise_doc(71)
    await _post(client, "/api/v1/enterprises", enterprise)
    for template, url in [
        ("/api/v1/policies/{id}/matches", "/api/v1/policies/p7/matches?min_score=0"),
        ("/api/v1/profiles/{id}/policies", f"/api/v1/profiles/{enterprise['id']}/policies"),
        ("/api/v1/enterprises/{id}/policies", f"/api/v1/enterprises/{enterprise['id']}/policies?date=2026-11-26"),
    ]:
        schema = doc["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(await _get(client, url))
