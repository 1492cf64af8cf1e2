"""``MatchService`` directly, on SQLite and PostgreSQL: the interface campaigns code against."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import UnknownProfileError
from policy_push.errors import MatchIndexUnavailable
from policy_push.matching import MatchService
from policy_push.refdata import load_reference_data
from policy_push.security import PiiCipher
from policy_push.storage import (
    EnterpriseRepository,
    PolicyRepository,
    ResidentRepository,
    create_engine,
)
from policy_push.storage import session_factory as make_sessions
from tests.factories import make_enterprise, make_policy, make_resident

from .conftest import EVAL_DAY, import_sample

MakeService = Callable[..., Awaitable[MatchService]]
HI_TECH = {"all": [{"field": "qualifications", "op": "has_any", "value": ["高新技术企业"]}]}


async def _store(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, *records: object) -> None:
    async with sessions() as session, session.begin():
        for r in records:
            if r.__class__.__name__ == "Policy":
                await PolicyRepository(session).upsert(r, actor="test")  # type: ignore[arg-type]
            elif r.__class__.__name__ == "EnterpriseProfile":
                await EnterpriseRepository(session, cipher).upsert(r, actor="test")  # type: ignore[arg-type]
            else:
                await ResidentRepository(session, cipher).upsert(r, actor="test")  # type: ignore[arg-type]


async def test_match_policy_counts_histogram_and_cuts(
    make_service: MakeService, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    await import_sample(session_factory, cipher)
    service = await make_service()
    async with session_factory() as session:
        stored = await PolicyRepository(session).get("ln-rst-2026-003")
    assert stored is not None
    full = await service.match_policy(stored.policy, on=EVAL_DAY)
    assert full.counts == {"eligible": 387, "unknown": 5, "profiles": 400}
    assert len(full.eligible) == 387 and len(full.unknown) == 5 and not full.no_criteria
    assert [b["count"] for b in full.histogram] and sum(b["count"] for b in full.histogram) == 387
    assert [(b["from"], b["to"]) for b in full.histogram][:2] == [(0.0, 0.1), (0.1, 0.2)]

    threshold = full.eligible[30]["score"]
    cut = await service.match_policy(stored.policy, on=EVAL_DAY, top_k=10, min_score=threshold)
    assert len(cut.eligible) == 10 and cut.eligible == full.eligible[:10]
    assert cut.counts == full.counts and cut.histogram == full.histogram  # counts are before the cut
    assert cut.eligible_total == sum(1 for r in full.eligible if r["score"] >= threshold) >= 31

    # a draft (not stored) is previewed the same way: campaigns preview before publishing
    draft = stored.policy.model_copy(update={"id": "draft-1", "criteria": None})
    preview = await service.match_policy(draft, on=EVAL_DAY, top_k=5)
    assert preview.no_criteria and preview.counts["eligible"] == 400 and len(preview.eligible) == 5


async def test_policies_for_profile_are_open_ones_ranked(
    make_service: MakeService, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    await import_sample(session_factory, cipher)
    service = await make_service()
    found = await service.policies_for_profile("resident", "r-000001", on=EVAL_DAY)
    assert found and all(r["eligible"] for r in found)
    assert not {"pj-mzj-2025-015", "pj-rsj-2025-016", "pj-sthjj-2025-007"} & {r["policy_id"] for r in found}
    assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
    assert await service.audiences_of("r-000001") == ["resident"]
    with pytest.raises(UnknownProfileError):
        await service.policies_for_profile("enterprise", "r-000001", on=EVAL_DAY)


async def test_writes_during_the_start_are_applied_not_lost(
    make_service: MakeService, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> None:
    await _store(session_factory, cipher, make_policy(1, id="p", criteria=HI_TECH), *[make_enterprise(i) for i in range(1, 300)])
    service = await make_service(start=False)
    starting = service.start_in_background()
    late = make_enterprise(900)
    await _store(session_factory, cipher, late)
    await service.profile_written(late)  # returns at once: queued until the index is up
    await service.profile_deleted("enterprise", make_enterprise(1).id)
    await starting
    async with session_factory() as session:
        policy = (await PolicyRepository(session).get("p")).policy  # type: ignore[union-attr]
    ids = {r["profile_id"] for r in (await service.match_policy(policy, on=EVAL_DAY)).eligible}
    assert late.id in ids and make_enterprise(1).id not in ids and len(ids) == 299


async def test_a_policy_moving_audience_leaves_the_other_catalogue(make_service: MakeService, session_factory, cipher) -> None:
    resident = make_resident(7)
    await _store(session_factory, cipher, resident, make_enterprise(7))
    service = await make_service()
    policy = make_policy(3, id="mover", criteria=None, audience="enterprise")
    await service.policy_written(policy)
    assert await service.policies_for_profile("resident", resident.id, on=EVAL_DAY) == []
    await service.policy_written(policy.model_copy(update={"audience": "resident"}))
    assert [r["policy_id"] for r in await service.policies_for_profile("resident", resident.id, on=EVAL_DAY)] == ["mover"]
    assert await service.policies_for_profile("enterprise", make_enterprise(7).id, on=EVAL_DAY) == []


async def test_follow_changes_catches_up_on_writes_it_was_not_told_of(make_service: MakeService, session_factory, cipher) -> None:
    await _store(session_factory, cipher, *[make_enterprise(i) for i in range(1, 6)])
    service = await make_service()
    # as `policy-push import` would, behind the service's back
    await _store(session_factory, cipher, make_policy(4, id="quiet", criteria=HI_TECH), make_enterprise(6),
                 make_enterprise(2, qualifications=["专精特新中小企业"]))
    async with session_factory() as session, session.begin():
        await EnterpriseRepository(session, cipher).delete(make_enterprise(3).id, actor="test")
    assert await service.follow_changes() == ["quiet"]
    assert await service.follow_changes() == []  # nothing new since
    found = await service.match_policy(make_policy(4, id="quiet", criteria=HI_TECH), on=EVAL_DAY)
    assert {r["profile_id"] for r in found.eligible} == {make_enterprise(i).id for i in (1, 4, 5, 6)}
    assert found.counts["profiles"] == 5


async def test_an_index_of_another_database_or_a_damaged_one_is_rebuilt(
    make_service: MakeService, session_factory, cipher, settings
) -> None:
    await _store(session_factory, cipher, make_enterprise(1))
    first = await make_service(database="db-a")
    assert first.start_report is not None and first.start_report.mode == "built"
    await first.close()
    other = await make_service(database="db-b")
    assert other.start_report is not None and other.start_report.mode == "built"
    await other.close()
    same = await make_service(database="db-b")
    assert same.start_report is not None and same.start_report.mode == "loaded"
    await same.close()
    current = (settings.data_dir / "index" / "CURRENT").read_text(encoding="utf-8")
    assert [p.name for p in (settings.data_dir / "index").glob("gen-*")] == [current]  # older ones removed
    (settings.data_dir / "index" / current / "enterprise" / "meta.json").write_text("{broken", encoding="utf-8")
    damaged = await make_service(database="db-b")
    assert damaged.start_report is not None and damaged.start_report.mode == "built"
    assert len(await asyncio.gather(damaged.wait_ready())) == 1


async def test_a_start_that_fails_says_so_to_readers_and_never_to_writers(empty_db_url, cipher, tmp_path) -> None:

    engine = create_engine(empty_db_url)  # no tables: the build cannot read anything
    try:
        service = MatchService(make_sessions(engine), cipher, load_reference_data(), index_dir=tmp_path / "index")
        assert await service.start_in_background() is None
        with pytest.raises(MatchIndexUnavailable):
            await service.match_policy(make_policy(9), on=EVAL_DAY)
        await service.profile_written(make_enterprise(9))  # the write itself already succeeded
        await service.close()
    finally:
        await engine.dispose()
