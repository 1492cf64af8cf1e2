from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.errors import RecordConflict as Conflict
from policy_push.storage import AuditLog, PolicyRepository
from tests.factories import make_policy

Sessions = async_sessionmaker[AsyncSession]


async def test_upsert_created_unchanged_updated(session_factory: Sessions) -> None:
    policy = make_policy(title="第一版")
    async with session_factory() as s, s.begin():
        first = await PolicyRepository(s).upsert(policy, actor="alice")
    assert (first.id, first.outcome, first.version) == (policy.id, "created", 1)

    async with session_factory() as s, s.begin():
        again = await PolicyRepository(s).upsert(policy, actor="alice")
    assert (again.outcome, again.version) == ("unchanged", 1)

    changed = policy.model_copy(update={"title": "第二版"})
    async with session_factory() as s, s.begin():
        second = await PolicyRepository(s).upsert(changed, actor="bob")
    assert (second.outcome, second.version) == ("updated", 2)

    async with session_factory() as s:
        repo = PolicyRepository(s)
        stored = await repo.get(policy.id)
        history = await repo.history(policy.id)
        assert await repo.count() == 1
        audit = await AuditLog(s).list(entity_type="policy", entity_id=policy.id)
    assert stored is not None
    assert stored.policy == changed and stored.version == 2
    assert stored.created_at.tzinfo is not None and stored.updated_at >= stored.created_at
    assert [(v.version, v.actor, v.policy.title) for v in history] == [
        (2, "bob", "第二版"),
        (1, "alice", "第一版"),
    ]
    assert history[0].content_hash == changed.content_hash()
    # the unchanged re-import wrote no audit entry
    assert [a.action for a in audit] == ["policy.update", "policy.create"]
    assert audit[0].detail == {"version": 2, "content_hash": changed.content_hash()}


async def test_get_missing_and_exists(session_factory: Sessions) -> None:
    async with session_factory() as s, s.begin():
        repo = PolicyRepository(s)
        assert await repo.get("nope") is None
        assert not await repo.exists("nope")
        assert await repo.history("nope") == []
        await repo.upsert(make_policy(id="yes"), actor="t")
        assert await repo.exists("yes")


async def test_upsert_many_mixed_outcomes_in_order(session_factory: Sessions) -> None:
    a, b, c = make_policy(), make_policy(), make_policy()
    async with session_factory() as s, s.begin():
        await PolicyRepository(s).upsert_many([a, b], actor="import")
    b2 = b.model_copy(update={"summary": "新摘要"})
    async with session_factory() as s, s.begin():
        results = await PolicyRepository(s).upsert_many([c, b2, a], actor="import")
    assert [(r.id, r.outcome, r.version) for r in results] == [
        (c.id, "created", 1),
        (b.id, "updated", 2),
        (a.id, "unchanged", 1),
    ]


async def test_same_id_twice_in_one_batch_is_a_conflict(session_factory: Sessions) -> None:
    p = make_policy()
    with pytest.raises(Conflict, match="twice"):
        async with session_factory() as s, s.begin():
            await PolicyRepository(s).upsert_many([p, p.model_copy(update={"title": "x"})], actor="t")
    async with session_factory() as s:
        assert await PolicyRepository(s).count() == 0


async def test_update_replaces_region_and_category_index(session_factory: Sessions) -> None:
    p = make_policy(
        categories=["资金奖补"], criteria={"field": "region", "op": "within", "value": ["211102"]}
    )
    async with session_factory() as s, s.begin():
        await PolicyRepository(s).upsert(p, actor="t")
    moved = make_policy(
        seq=0,
        id=p.id,
        categories=["稳岗就业"],
        criteria={"field": "region", "op": "within", "value": ["211104"]},
    )
    async with session_factory() as s, s.begin():
        await PolicyRepository(s).upsert(moved, actor="t")
    async with session_factory() as s:
        repo = PolicyRepository(s)
        assert (await repo.list(region="211102"))[1] == 0
        assert (await repo.list(region="211104"))[1] == 1
        assert (await repo.list(category="资金奖补"))[1] == 0
        assert (await repo.list(category="稳岗就业"))[1] == 1


def _ids(page: tuple[list, int]) -> set[str]:  # type: ignore[type-arg]
    return {sp.policy.id for sp in page[0]}


@pytest.fixture
async def catalogue(session_factory: Sessions) -> dict[str, str]:
    """Policies covering the region cases of the list filter; returns name -> id."""
    specs = {
        "everywhere": {"criteria": None},
        "liaoning": {"criteria": {"field": "region", "op": "within", "value": ["210000"]}},
        "panjin": {"criteria": {"all": [{"field": "region", "op": "within", "value": ["211100"]}]}},
        "xinglongtai": {"criteria": {"field": "region", "op": "in", "value": ["211103"]}},
        "street": {"criteria": {"field": "region", "op": "eq", "value": "211103001"}},
        "dawa": {"criteria": {"any": [{"field": "region", "op": "within", "value": ["211104"]}]}},
        "beijing": {"criteria": {"field": "region", "op": "within", "value": ["110000"]}},
        # a negated region condition does not say where the policy applies
        "not_dawa": {"criteria": {"not": {"field": "region", "op": "within", "value": ["211104"]}}},
        "resident_panjin": {
            "audience": "resident",
            "categories": ["社会救助"],
            "apply_until": "2026-05-31",
            "criteria": {"field": "region", "op": "within", "value": ["211100"]},
        },
    }
    ids = {}
    async with session_factory() as s, s.begin():
        repo = PolicyRepository(s)
        for name, overrides in specs.items():
            p = make_policy(id=f"pol-{name}", **overrides)
            await repo.upsert(p, actor="t")
            ids[name] = p.id
    return ids


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        # a county: itself, the areas containing it, the places inside it, and unscoped policies
        (
            "211103",
            {"everywhere", "not_dawa", "liaoning", "panjin", "xinglongtai", "street", "resident_panjin"},
        ),
        # a street: every level above it
        (
            "211103001",
            {"everywhere", "not_dawa", "liaoning", "panjin", "xinglongtai", "street", "resident_panjin"},
        ),
        # the city: everything inside it too
        (
            "211100",
            {
                "everywhere",
                "not_dawa",
                "liaoning",
                "panjin",
                "xinglongtai",
                "street",
                "dawa",
                "resident_panjin",
            },
        ),
        ("110105", {"everywhere", "not_dawa", "beijing"}),
    ],
)
async def test_list_region_filter(
    session_factory: Sessions, catalogue: dict[str, str], region: str, expected: set[str]
) -> None:
    async with session_factory() as s:
        page = await PolicyRepository(s).list(region=region, limit=100)
    assert _ids(page) == {catalogue[n] for n in expected}
    assert page[1] == len(expected)


async def test_list_audience_category_status(session_factory: Sessions, catalogue: dict[str, str]) -> None:
    async with session_factory() as s:
        repo = PolicyRepository(s)
        assert _ids(await repo.list(audience="resident")) == {catalogue["resident_panjin"]}
        assert (await repo.list(audience="enterprise"))[1] == len(catalogue) - 1
        assert _ids(await repo.list(category="社会救助")) == {catalogue["resident_panjin"]}
        assert (await repo.list(category="资金奖补"))[1] == len(catalogue) - 1
        june = dt.date(2026, 6, 1)
        assert _ids(await repo.list(status="closed", today=june)) == {catalogue["resident_panjin"]}
        assert (await repo.list(status="open", today=june))[1] == len(catalogue) - 1
        # the deadline day itself is still open
        assert (await repo.list(status="closed", today=dt.date(2026, 5, 31)))[1] == 0
        assert _ids(
            await repo.list(audience="resident", status="open", today=dt.date(2026, 5, 31), region="211104")
        ) == {catalogue["resident_panjin"]}
        with pytest.raises(ValueError, match="status"):
            await repo.list(status="pending")  # type: ignore[arg-type]


async def test_list_paging_is_stable_and_counts_all(session_factory: Sessions) -> None:
    async with session_factory() as s, s.begin():
        await PolicyRepository(s).upsert_many(
            [make_policy(id=f"page-{i:02d}", published_on=f"2026-01-{i + 1:02d}") for i in range(7)]
            + [make_policy(id="undated", published_on=None)],
            actor="t",
        )
    async with session_factory() as s:
        repo = PolicyRepository(s)
        pages = [await repo.list(limit=3, offset=o) for o in (0, 3, 6)]
    assert [total for _, total in pages] == [8, 8, 8]
    order = [sp.policy.id for items, _ in pages for sp in items]
    # newest publication first, undated last
    assert order == [f"page-{i:02d}" for i in range(6, -1, -1)] + ["undated"]


async def test_region_filter_value_is_a_literal(session_factory: Sessions, catalogue: dict[str, str]) -> None:
    async with session_factory() as s:
        page = await PolicyRepository(s).list(region="%")
    assert _ids(page) == {catalogue["everywhere"], catalogue["not_dawa"]}
