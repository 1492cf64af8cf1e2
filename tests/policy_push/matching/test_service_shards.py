"""A shard's ``MatchService`` directly, on SQLite and PostgreSQL: its saved index is loaded only by a
node of the same shard under the same map, and a changed map is taken up by ``follow_changes`` (no
restart) with the answers of one service holding every profile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.matching import MatchService
from policy_push.matching.shards import merge, part_of
from policy_push.security import PiiCipher
from policy_push.storage import EnterpriseRepository
from policy_push.storage import shards as shard_store
from policy_push.storage.shards import ShardMap
from tests.factories import make_enterprise, make_policy

from .conftest import EVAL_DAY

MakeService = Callable[..., Awaitable[MatchService]]
#: within Panjin: both 211102 and 211104 qualify
POLICY = make_policy(1, id="panjin", criteria={"all": [{"field": "region", "op": "within", "value": ["211100"]}]})


async def _map(sessions: async_sessionmaker[AsyncSession], **prefixes: list[str]) -> ShardMap:
    async with sessions() as session, session.begin():
        for name, given in prefixes.items():
            await shard_store.put(session, shard_store.validate(name, "http://127.0.0.1:9", given))
        return await shard_store.load(session)


async def _firms(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> None:
    async with sessions() as session, session.begin():
        for i in range(1, 7):  # three in 双台子区, three in 大洼区
            firm = make_enterprise(i, region="211102" if i <= 3 else "211104")
            await EnterpriseRepository(session, cipher).upsert(firm, actor="test")


async def test_a_shard_loads_its_own_saved_index_only(make_service: MakeService, session_factory, cipher) -> None:
    await _firms(session_factory, cipher)
    shards = await _map(session_factory, a=["211104"], b=["211102"])
    first = await make_service(shard=("a", shards))
    assert first.start_report is not None and first.start_report.mode == "built"
    assert len(first._engines["enterprise"]) == 3
    await first.close()
    again = await make_service(shard=("a", shards))
    assert again.start_report is not None and again.start_report.mode == "loaded"
    assert again.start_report.texts_cut == 0 and len(again._engines["enterprise"]) == 3
    await again.close()
    other = await make_service(shard=("b", shards))  # the same data directory, another shard: not a's index
    assert other.start_report is not None and other.start_report.mode == "built"
    await other.close()
    unsharded = await make_service()  # nor an unsharded node's
    assert unsharded.start_report is not None and unsharded.start_report.mode == "built"
    assert len(unsharded._engines["enterprise"]) == 6


async def test_a_changed_map_is_taken_up_without_a_restart(make_service: MakeService, session_factory, cipher) -> None:
    await _firms(session_factory, cipher)
    shards = await _map(session_factory, a=["211104"], b=["211102"])
    service = await make_service(shard=("a", shards), index_dir=None)
    before = service.map_epoch
    assert service.part_map(before) == shards.fingerprint()
    # 211102 leaves b: no prefix covers it any more, so the first shard, a, holds it
    moved = await _map(session_factory, b=["211103"])
    await service.follow_changes()
    assert len(service._engines["enterprise"]) == 6
    assert service.part_map(before) is None  # an answer computed across the move is of no map
    assert service.part_map(service.map_epoch) == moved.fingerprint() != shards.fingerprint()
    whole = await make_service(index_dir=None)
    # a's part, merged as a node merges the parts (a holds every profile now), against one service's answer
    got = merge(POLICY.id, [part_of("a", await service.full_matches(POLICY, on=EVAL_DAY), top_k=4, min_score=None)], top_k=4)
    want = await whole.match_policy(POLICY, on=EVAL_DAY, top_k=4)
    assert len(want.eligible) == 4 and (got.counts, got.eligible, got.unknown) == (want.counts, want.eligible, want.unknown)
    # and back: a drops them again
    await _map(session_factory, b=["211102"])
    await service.follow_changes()
    assert len(service._engines["enterprise"]) == 3
