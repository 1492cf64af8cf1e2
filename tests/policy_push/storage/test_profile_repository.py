from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.domain import ValidationContext, parse_enterprise, parse_resident
from policy_push.errors import AlreadyExists
from policy_push.errors import RecordConflict as Conflict
from policy_push.security import PiiCipher
from policy_push.storage import AuditLog, EnterpriseRepository, ResidentRepository
from tests.factories import enterprise_doc, make_enterprise, make_id_number, make_resident

Sessions = async_sessionmaker[AsyncSession]


async def test_enterprise_round_trip_with_pii(session_factory: Sessions, cipher: PiiCipher) -> None:
    ent = make_enterprise()
    async with session_factory() as s, s.begin():
        result = await EnterpriseRepository(s, cipher).upsert(ent, actor="alice")
    assert (result.id, result.outcome, result.version) == (ent.id, "created", None)
    async with session_factory() as s:
        back = await EnterpriseRepository(s, cipher).get(ent.id)
    assert back == ent
    assert back.contact.phone == ent.contact.phone and back.contact.wechat_openid is not None


async def test_resident_round_trip_with_id_number(session_factory: Sessions, cipher: PiiCipher) -> None:
    res = make_resident()
    bare = make_resident(
        id_number=None, contact={"phone": None, "wechat_openid": None, "app_registration_id": None}
    )
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert_many([res, bare], actor="t")
    async with session_factory() as s:
        repo = ResidentRepository(s, cipher)
        assert await repo.get(res.id) == res
        assert await repo.get(bare.id) == bare
        assert await repo.get("r-missing") is None
        assert await repo.find_by_id_number(res.id_number or "") == res.id


async def test_upsert_outcomes(session_factory: Sessions, cipher: PiiCipher) -> None:
    ent = make_enterprise()
    new_phone = ent.model_copy(update={"contact": ent.contact.model_copy(update={"phone": "13700000001"})})
    outcomes = []
    for version in (ent, ent, new_phone):
        async with session_factory() as s, s.begin():
            outcomes.append((await EnterpriseRepository(s, cipher).upsert(version, actor="t")).outcome)
    # a change of a personal value alone is a change
    assert outcomes == ["created", "unchanged", "updated"]
    async with session_factory() as s:
        assert (await EnterpriseRepository(s, cipher).get(ent.id)) == new_phone
        actions = [a.action for a in await AuditLog(s).list(entity_id=ent.id)]
    assert actions == ["enterprise.updated", "enterprise.created"]


async def test_create_refuses_existing_id(session_factory: Sessions, cipher: PiiCipher) -> None:
    ent = make_enterprise()
    async with session_factory() as s, s.begin():
        assert (await EnterpriseRepository(s, cipher).create(ent, actor="t")).outcome == "created"
    with pytest.raises(AlreadyExists, match=ent.id):
        async with session_factory() as s, s.begin():
            await EnterpriseRepository(s, cipher).create(ent.model_copy(update={"name": "另一家"}), actor="t")
    async with session_factory() as s:
        assert (await EnterpriseRepository(s, cipher).get(ent.id)) == ent


async def test_delete(session_factory: Sessions, cipher: PiiCipher) -> None:
    res = make_resident()
    async with session_factory() as s, s.begin():
        repo = ResidentRepository(s, cipher)
        await repo.upsert(res, actor="t")
        assert await repo.delete(res.id, actor="t") is True
        assert await repo.delete(res.id, actor="t") is False
        assert await repo.count() == 0
    # the ID number is free again
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert(res.model_copy(update={"id": "r-other"}), actor="t")


async def test_duplicate_id_number_is_a_conflict_and_stores_nothing(
    session_factory: Sessions, cipher: PiiCipher
) -> None:
    first = make_resident()
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert(first, actor="t")
    clash = make_resident(id_number=first.id_number)
    innocent = make_resident()
    with pytest.raises(Conflict) as info:
        async with session_factory() as s, s.begin():
            await ResidentRepository(s, cipher).upsert_many([innocent, clash], actor="t")
    assert info.value.field == "id_number" and info.value.entity_id == clash.id
    assert first.id_number is not None and first.id_number not in str(info.value)
    async with session_factory() as s:
        repo = ResidentRepository(s, cipher)
        assert await repo.count() == 1
        assert await repo.get(innocent.id) is None


async def test_duplicate_id_number_within_one_batch(session_factory: Sessions, cipher: PiiCipher) -> None:
    number = make_id_number(4242)
    a, b = make_resident(id_number=number), make_resident(id_number=number)
    with pytest.raises(Conflict, match="id_number"):
        async with session_factory() as s, s.begin():
            await ResidentRepository(s, cipher).upsert_many([a, b], actor="t")
    async with session_factory() as s:
        assert await ResidentRepository(s, cipher).count() == 0


async def test_resident_may_keep_its_own_id_number_on_update(
    session_factory: Sessions, cipher: PiiCipher
) -> None:
    res = make_resident()
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert(res, actor="t")
    async with session_factory() as s, s.begin():
        result = await ResidentRepository(s, cipher).upsert(
            res.model_copy(update={"name": "改名"}), actor="t"
        )
    assert result.outcome == "updated"


async def test_find_by_phone(session_factory: Sessions, cipher: PiiCipher) -> None:
    shared = "13912345678"
    a = make_enterprise(contact={"phone": shared})
    b = make_enterprise(contact={"phone": shared})
    c = make_enterprise()
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert_many([a, b, c], actor="t")
    async with session_factory() as s:
        repo = EnterpriseRepository(s, cipher)
        assert await repo.find_by_phone(shared) == sorted([a.id, b.id])
        assert await repo.find_by_phone("+86 139-1234-5678") == sorted([a.id, b.id])
        assert await repo.find_by_phone("13800000000") == []
        assert await repo.find_by_phone("not a phone") == []


async def test_list_by_region_and_paging(session_factory: Sessions, cipher: PiiCipher) -> None:
    ents = [make_enterprise(region=r) for r in ("211103", "211103001", "211104", "211102", None)]
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert_many(ents, actor="t")
    async with session_factory() as s:
        repo = EnterpriseRepository(s, cipher)
        items, total = await repo.list(region="211103")
        assert total == 2 and {e.region for e in items} == {"211103", "211103001"}
        assert (await repo.list(region="211100"))[1] == 4
        assert (await repo.list(region="210000"))[1] == 4
        first, total = await repo.list(limit=2)
        second, _ = await repo.list(limit=2, offset=2)
        assert total == 5 and len(first) == 2
        assert [e.id for e in first + second] == sorted(e.id for e in ents)[:4]


async def test_iter_all_and_count(session_factory: Sessions, cipher: PiiCipher) -> None:
    residents = [make_resident() for _ in range(25)]
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert_many(residents, actor="t")
    async with session_factory() as s:
        repo = ResidentRepository(s, cipher)
        assert await repo.count() == 25
        seen = [r async for r in repo.iter_all(chunk=7)]
    assert seen == sorted(residents, key=lambda r: r.id)


async def test_upsert_many_crosses_chunks(session_factory: Sessions, cipher: PiiCipher) -> None:
    ents = [make_enterprise() for _ in range(2300)]
    async with session_factory() as s, s.begin():
        results = await EnterpriseRepository(s, cipher).upsert_many(ents, actor="bulk")
    assert [r.id for r in results] == [e.id for e in ents]
    assert {r.outcome for r in results} == {"created"}
    changed = [*ents[:1000], ents[1500].model_copy(update={"employees": 46}), *ents[2000:]]
    async with session_factory() as s, s.begin():
        results = await EnterpriseRepository(s, cipher).upsert_many(changed, actor="bulk")
    assert [r.outcome for r in results].count("updated") == 1
    async with session_factory() as s:
        repo = EnterpriseRepository(s, cipher)
        assert await repo.count() == 2300
        assert (await repo.get(ents[1500].id)).employees == 46  # type: ignore[union-attr]


async def test_reads_survive_withdrawn_codes(session_factory: Sessions, cipher: PiiCipher) -> None:
    """A code withdrawn from the reference tables after storing must not break reads."""
    ctx = ValidationContext(trusted=True)
    ent = parse_enterprise(enterprise_doc(region="219999", industry="9999"), ctx)
    res = parse_resident({**make_resident().to_json(), "region": "219999001"}, ctx)
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert(ent, actor="t")
        await ResidentRepository(s, cipher).upsert(res, actor="t")
    async with session_factory() as s:
        assert await EnterpriseRepository(s, cipher).get(ent.id) == ent
        assert await ResidentRepository(s, cipher).get(res.id) == res


async def test_wrong_key_cannot_read(session_factory: Sessions, cipher: PiiCipher) -> None:
    from policy_push.errors import PiiDecryptError
    from policy_push.security import generate_key

    ent = make_enterprise()
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert(ent, actor="t")
    async with session_factory() as s:
        with pytest.raises(PiiDecryptError, match="POLICY_PUSH_PII_KEY"):
            await EnterpriseRepository(s, PiiCipher(generate_key())).get(ent.id)
