"""Sign-up and sign-in with one-time SMS codes sent through the real adapters to the simulators."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.config import Settings
from policy_push.errors import TooManyRequests
from policy_push.storage import create_engine
from policy_push.storage import session_factory as make_session_factory
from policy_push.storage.subscriber_tables import SubscriberAccountRow, SubscriberCodeRow
from policy_push.subscribers.codes import CodeLimits, reserve_code
from policy_push.web import create_app

from .conftest import Client, bearer, last_code, sign_in

PHONE = "13800138000"


async def test_code_arrives_by_sms_and_signs_up_then_in(client: Client, sims: SimulatorSet) -> None:
    resp = await client.post("/api/v1/me/codes", json={"phone": PHONE})
    assert resp.status == 202
    assert await resp.json() == {"sent": True, "expires_in_s": 300}
    sms = [r for r in sims.aliyun.records if r.recipient.endswith(PHONE)]
    assert len(sms) == 1 and "验证码" in sms[0].text
    code = sms[0].params["code"]
    assert len(code) == 6 and code.isdigit() and code in sms[0].text
    resp = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": code})
    assert resp.status == 201
    first = await resp.json()
    assert first["created"] is True and len(first["token"]) >= 40
    me = await client.get("/api/v1/me", headers=bearer(first["token"]))
    assert me.status == 200
    assert (await me.json())["phone"] == PHONE
    # a used code does not work twice
    again = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": code})
    assert again.status == 403


async def test_codes_are_stored_hashed_and_phones_encrypted(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await sign_in(client, sims, PHONE)
    code = last_code(sims, PHONE)
    async with session_factory() as s:
        rows = (await s.execute(select(SubscriberCodeRow.__table__))).all()
        accounts = (await s.execute(select(SubscriberAccountRow.__table__))).all()
    flat = repr(rows) + repr(accounts)
    assert code not in flat and PHONE not in flat


async def test_five_wrong_guesses_end_the_code(client: Client, sims: SimulatorSet) -> None:
    await client.post("/api/v1/me/codes", json={"phone": PHONE})
    code = last_code(sims, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = set()
    for _ in range(5):
        resp = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": wrong})
        assert resp.status == 403
        answers.add((await resp.json())["errors"][0]["msg"])
    resp = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": code})
    assert resp.status == 403  # locked out: the right code no longer opens it
    answers.add((await resp.json())["errors"][0]["msg"])
    assert len(answers) == 1  # one wording for wrong, used up, expired


async def test_expired_code_is_refused(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await client.post("/api/v1/me/codes", json={"phone": PHONE})
    async with session_factory() as s, s.begin():
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await s.execute(update(SubscriberCodeRow.__table__).values(expires_at=past))
    resp = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": last_code(sims, PHONE)})
    assert resp.status == 403


async def test_rate_limit_per_phone_and_per_address(client: Client, sims: SimulatorSet) -> None:
    assert (await client.post("/api/v1/me/codes", json={"phone": PHONE})).status == 202
    resp = await client.post("/api/v1/me/codes", json={"phone": PHONE})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert len([r for r in sims.aliyun.records if r.recipient.endswith(PHONE)]) == 1
    # a flood from one address over many phones stops at the per-address limit
    statuses = [(await client.post("/api/v1/me/codes", json={"phone": f"139{i:08d}"})).status for i in range(31)]
    assert statuses.count(202) == 29 and statuses[-1] == 429


async def test_enumeration_answers_the_same(client: Client, sims: SimulatorSet) -> None:
    await sign_in(client, sims, PHONE)  # PHONE now has an account
    known = await client.post("/api/v1/me/codes", json={"phone": "13800138001"})
    unknown_body = await known.json()
    other = await client.post("/api/v1/me/codes", json={"phone": "13800138002"})
    assert known.status == other.status == 202 and unknown_body == await other.json()
    bad = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": "000000"})
    none = await client.post("/api/v1/me/sessions", json={"phone": "13800138009", "code": "000000"})
    assert bad.status == none.status == 403
    assert (await bad.json()) == (await none.json())


async def test_bad_input_is_a_clear_422(client: Client) -> None:
    resp = await client.post("/api/v1/me/codes", json={"phone": "12345"})
    assert resp.status == 422 and "11" in (await resp.json())["errors"][0]["msg"]
    resp = await client.post("/api/v1/me/sessions", json={"phone": PHONE, "code": "12ab56"})
    assert resp.status == 422
    resp = await client.get("/api/v1/me")
    assert resp.status == 401
    resp = await client.get("/api/v1/me", headers=bearer("test-token"))  # the staff token is not a session
    assert resp.status == 401


async def test_sign_out_ends_the_session(client: Client, sims: SimulatorSet) -> None:
    token = await sign_in(client, sims, PHONE)
    assert (await client.delete("/api/v1/me/sessions/current", headers=bearer(token))).status == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401


async def test_code_rows_older_than_a_day_go(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await client.post("/api/v1/me/codes", json={"phone": PHONE})
    async with session_factory() as s, s.begin():
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=1, minutes=1)
        await s.execute(update(SubscriberCodeRow.__table__).values(created_at=old, expires_at=old))
    await client.post("/api/v1/me/codes", json={"phone": "13900139000"})
    async with session_factory() as s:
        left = (await s.execute(select(SubscriberCodeRow.created_at))).scalars().all()
    assert len(left) == 1 and left[0] > old


async def test_racing_code_requests_on_two_nodes_take_one_slot(
    aiohttp_client: Any, me_settings: Settings, make_me_client: Callable[..., Awaitable[Client]], db_url: str,
    sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Two service instances, each with its own engine (two `serve` processes on one database), asked for a
    code for the same phone at the same moment: the limit (1 a minute) lets exactly one SMS go. Counting
    and writing were two steps with the SMS between them, so both passed the count."""
    other_engine = create_engine(db_url)
    try:
        first = await make_me_client()
        second = await aiohttp_client(create_app(me_settings, engine=other_engine))
        phones = [f"1390000{i:04d}" for i in range(4)]  # a few rounds, so a lucky ordering cannot hide a race
        for phone in phones:
            answers = await asyncio.gather(*(c.post("/api/v1/me/codes", json={"phone": phone}) for c in (first, second)))
            assert sorted(r.status for r in answers) == [202, 429], phone
            assert len([r for r in sims.aliyun.records if r.recipient.endswith(phone)]) == 1
        async with session_factory() as s:
            rows = (await s.execute(select(SubscriberCodeRow.sent))).scalars().all()
        assert rows == ["sent"] * len(phones)  # each slot's row, its SMS recorded as sent
    finally:
        await other_engine.dispose()


async def test_a_slot_is_counted_under_a_lock_until_its_row_commits(engine: AsyncEngine, db_url: str) -> None:
    """The lock itself: while one transaction has counted and written its row but not committed, another
    (on another engine, as another node) waits, then sees that row and is refused. Without the lock both
    count zero rows (PostgreSQL's READ COMMITTED) and both take the last slot."""
    limits = CodeLimits()
    now = dt.datetime.now(dt.UTC)
    slot = {"phone_hash": "p" * 64, "client_hash": "c" * 64, "now": now, "expires_at": now + dt.timedelta(minutes=5),
            "limits": limits}  # fmt: skip
    other_engine = create_engine(db_url)
    try:
        first, second = make_session_factory(engine), make_session_factory(other_engine)
        async with first() as a, a.begin():
            await reserve_code(a, code_hash="a" * 64, **slot)

            async def race() -> None:
                async with second() as b, b.begin():
                    await reserve_code(b, code_hash="b" * 64, **slot)

            waiting = asyncio.create_task(race())
            await asyncio.sleep(0.5)
            assert not waiting.done(), "the second request counted while the first one's row was uncommitted"
        with pytest.raises(TooManyRequests):
            await asyncio.wait_for(waiting, 10)
    finally:
        await other_engine.dispose()
