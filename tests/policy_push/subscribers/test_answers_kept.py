""""Policies for me now" is kept per profile (``matching.answers``) and never served stale: a repeated
question is answered from the cache; a policy written or closed, the profile changed through the API,
or changed by another process and seen through the change feed, each gives the new answer at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.matching.answers import AnswerCache
from policy_push.storage import profile_repository
from policy_push.web.keys import cipher_key, match_service_key, service_key
from tests.policy_push.web.conftest import sample_records

from .conftest import STAFF, Client, bearer, sign_in
from .test_profiles import DAY, _own

ALICE = "13800138000"
VETERANS = "pj-tyjrj-2026-002"  # a sample policy for veterans of Panjin


async def _ask(client: Client, token: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/me/policies?date={DAY}", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()  # type: ignore[no-any-return]


def _ids(answer: dict[str, Any]) -> set[str]:
    return {i["policy_id"] for i in answer["items"]}


async def _veteran(client: Client, sims: SimulatorSet) -> tuple[str, str]:
    for p in sample_records("policies.jsonl"):
        assert (await client.put(f"/api/v1/policies/{p['id']}", json=p, headers=STAFF)).status in (200, 201)
    token = await sign_in(client, sims, ALICE)
    record = {**_own(sample_records("residents.jsonl", 2)[1]), "tags": ["退役军人"], "birth_date": "1980-05-01", "id_number": None,
              "hukou_region": "211103"}  # fmt: skip
    resp = await client.put("/api/v1/me/resident", json=record, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    link = await resp.json()
    return token, link["profile_id"]


async def test_a_repeated_question_is_answered_from_the_cache_and_a_policy_change_is_seen(
    client: Client, sims: SimulatorSet
) -> None:
    token, _ = await _veteran(client, sims)
    # this process's own writes also come back through the change feed (on PostgreSQL as soon as the
    # notification arrives), and applying them forgets answers again: let that settle first
    await client.app[service_key].follow_changes()
    answers = client.app[match_service_key].answers
    first = await _ask(client, token)
    assert VETERANS in _ids(first)
    hits = answers.hits
    assert await _ask(client, token) == first
    assert answers.hits == hits + 1
    # a policy's title changes: the next answer has it
    policy = next(p for p in sample_records("policies.jsonl") if p["id"] == VETERANS)
    renamed = {**policy, "title": policy["title"] + "（修订）"}
    assert (await client.put(f"/api/v1/policies/{VETERANS}", json=renamed, headers=STAFF)).status == 200
    titles = {i["policy_id"]: i["title"] for i in (await _ask(client, token))["items"]}
    assert titles[VETERANS] == renamed["title"]
    # its deadline is brought forward to before the day asked: gone from the next answer
    closed = {**renamed, "apply_until": "2026-06-01"}
    assert (await client.put(f"/api/v1/policies/{VETERANS}", json=closed, headers=STAFF)).status == 200
    assert VETERANS not in _ids(await _ask(client, token))


async def test_a_profile_changed_by_another_process_is_seen_through_the_change_feed(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    token, pid = await _veteran(client, sims)
    assert VETERANS in _ids(await _ask(client, token))
    assert VETERANS in _ids(await _ask(client, token))  # kept
    # another process (a CLI import, another node) writes the profile: no veteran any more
    async with session_factory() as s, s.begin():
        repo = profile_repository("resident", s, client.app[cipher_key])
        stored = await repo.get(pid)
        assert stored is not None
        await repo.upsert(stored.model_copy(update={"tags": []}), actor="another process")
    assert VETERANS in _ids(await _ask(client, token))  # this process has not seen the change yet
    await client.app[service_key].follow_changes()  # what the follow-changes tick or a notification does
    assert VETERANS not in _ids(await _ask(client, token))


def test_the_cache_forgets_one_profile_or_all_and_keeps_its_size() -> None:
    cache = AnswerCache(size=3)
    for i in range(3):
        cache.put(("resident", f"r{i}"), "k", 1, i)
    assert cache.get(("resident", "r0"), "k", 1) == 0
    assert cache.get(("resident", "r0"), "k", 2) is None  # another text-index generation: not served
    cache.put(("resident", "r3"), "k", 1, 3)  # r1 is the least recently used: out
    assert cache.get(("resident", "r1"), "k", 1) is None and len(cache) == 3
    cache.forget_profile(("resident", "r0"))
    assert cache.get(("resident", "r0"), "k", 1) is None and cache.get(("resident", "r2"), "k", 1) == 2
    cache.forget_all()
    assert len(cache) == 0 and cache.get(("resident", "r3"), "k", 1) is None
