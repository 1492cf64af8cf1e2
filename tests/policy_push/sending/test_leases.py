"""Leases: a send slower than the lease keeps its rows while its worker lives; a worker that loses the
database stops sending before its lease can lapse; a result whose record failed is recorded later.

A slow provider is a MockChannel whose answer takes a while per message; the lease is a second or so,
so the tests take seconds, not minutes. ``settle_lapsed`` runs beside the sender all along, as the
leader's tick does."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from channels import MockChannel, Outcome, Router
from policy_push.sending import Dispatcher, SendRules, claims
from policy_push.sending.dispatch import SLICE_S
from policy_push.sending.settle import SettleReport, settle_lapsed
from policy_push.sending.starting import start_due_campaigns
from policy_push.statuses import Code, DeliveryStatus
from policy_push.storage import deliveries
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow
from scheduler import FrozenClock

from .fixtures import DAYTIME
from .seed import seed_campaign

N = 6
PER_MESSAGE_S = 0.4  # the batch takes N * 0.4 = 2.4 s at the provider


def _slow_router(log: list[float]) -> tuple[Router, MockChannel]:
    async def slow(msg):  # type: ignore[no-untyped-def]
        log.append(time.monotonic())
        await asyncio.sleep(PER_MESSAGE_S)
        return Outcome.ACCEPTED

    channel = MockChannel(slow, name="slow_wechat", kind="wechat")
    return Router([channel]), channel


def _dispatcher(settings, sessions, cipher, router, *, lease_s: float) -> Dispatcher:  # type: ignore[no-untyped-def]
    rules = SendRules(windows=SendRules.from_settings(settings).windows, lease_s=lease_s)
    return Dispatcher(sessions=sessions, cipher=cipher, router=router, clock=FrozenClock(DAYTIME), rules=rules,
                      worker_id="w", batch_size=50, concurrency=1, rng=random.Random(1))  # fmt: skip


async def _statuses(sessions) -> Counter[str]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return Counter((await s.execute(select(DeliveryRow.status))).scalars().all())


async def _settle_beside(d: Dispatcher, until: asyncio.Event) -> list[SettleReport]:
    """The leader's settle tick, every 0.2 s, while the sender works."""
    reports = []
    while not until.is_set():
        reports.append(await settle_lapsed(d.sessions, d.cipher, d.router, clock=d.clock, rules=d.rules))
        await asyncio.sleep(0.2)
    return reports


async def _send_with_settle_beside(d: Dispatcher) -> list[SettleReport]:
    stop = asyncio.Event()
    settler = asyncio.create_task(_settle_beside(d, stop))
    try:
        await d.send_due()
    finally:
        stop.set()
    return await settler


async def test_a_heartbeat_keeps_a_send_slower_than_the_lease(dispatch_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=N, channel_of=lambda i: "wechat", fallbacks=False)
    calls: list[float] = []
    router, channel = _slow_router(calls)
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, lease_s=1.0)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    d.start()
    try:
        reports = await _send_with_settle_beside(d)
    finally:
        await d.close()
    assert calls[-1] - calls[0] > 2 * d.rules.lease_s  # the send outlasted the lease twice over
    assert sum(r.examined for r in reports) == 0  # settle never saw a lapsed lease
    assert await _statuses(session_factory) == Counter({DeliveryStatus.SENT: N})
    assert len(channel.sent) == N and d.stats.heartbeats >= 2


async def test_without_the_heartbeat_the_lease_lapses_mid_send(dispatch_settings, session_factory, cipher) -> None:
    """The control: the same send with no heartbeat loses its rows to settle while still sending, which
    is the duplicate the lease exists to prevent (here the mock cannot be asked, so settle gives up on it)."""
    await seed_campaign(session_factory, cipher, dispatch_settings, n=N, channel_of=lambda i: "wechat", fallbacks=False)
    router, _ = _slow_router([])
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, lease_s=1.0)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    reports = await _send_with_settle_beside(d)  # no d.start(): nothing renews the lease
    assert sum(r.examined for r in reports) > 0
    assert (await _statuses(session_factory))[DeliveryStatus.TECHNICAL_FAILURE] > 0  # settled while being sent


async def test_a_worker_that_cannot_renew_stops_sending_before_its_lease_ends(
    dispatch_settings, session_factory, cipher, monkeypatch
) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=N, channel_of=lambda i: "wechat", fallbacks=False)
    calls: list[float] = []
    router, channel = _slow_router(calls)
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, lease_s=1.2)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    renew = claims.renew
    confirmed: list[float] = []

    async def database_lost_after_the_confirm(*args, **kwargs):  # type: ignore[no-untyped-def]
        if confirmed:
            raise OperationalError("SELECT 1", {}, ConnectionResetError("the database went away"))
        confirmed.append(time.monotonic())
        return await renew(*args, **kwargs)

    monkeypatch.setattr(claims, "renew", database_lost_after_the_confirm)
    d.start()
    try:
        await d.send_due()
    finally:
        monkeypatch.setattr(claims, "renew", renew)
        await d.close()
    assert d.stats.fenced >= 1 and d.stats.heartbeat_failures >= 1
    assert len(channel.sent) < N  # the call was cancelled part-way
    assert calls[-1] < confirmed[0] + d.rules.lease_s  # no message started after the lease could have ended
    assert d.in_flight == 0  # abandoned: the rows' lease lapses and settle decides
    assert (await _statuses(session_factory))[DeliveryStatus.SENDING] == N


async def test_a_result_whose_record_failed_is_recorded_again(dispatch_settings, session_factory, cipher, monkeypatch) -> None:
    """A dropped connection after the provider accepted: the results stay in memory, the lease stays
    renewed, and the next round records them; nothing is sent again."""
    await seed_campaign(session_factory, cipher, dispatch_settings, n=N, channel_of=lambda i: "wechat", fallbacks=False)
    channel = MockChannel(lambda m: Outcome.ACCEPTED, name="quick", kind="wechat")
    d = _dispatcher(dispatch_settings, session_factory, cipher, Router([channel]), lease_s=30)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    move = deliveries.move
    failures: list[int] = []

    async def drop_once(session, moves, **kw):  # type: ignore[no-untyped-def]
        if kw.get("source") == "dispatch" and not failures:
            failures.append(len(moves))
            raise OperationalError("UPDATE deliveries", {}, ConnectionResetError("server closed the connection"))
        return await move(session, moves, **kw)

    monkeypatch.setattr(deliveries, "move", drop_once)
    assert await d.send_due() == N
    assert failures == [N] and d.in_flight == N
    assert await _statuses(session_factory) == Counter({DeliveryStatus.SENDING: N})
    await d.beat()  # the heartbeat renews the held rows and records the results
    assert await _statuses(session_factory) == Counter({DeliveryStatus.SENT: N})
    assert d.in_flight == 0 and d.stats.recorded_late == N and len(channel.sent) == N


async def test_rows_claimed_but_never_sent_are_handed_back(dispatch_settings, session_factory, cipher, monkeypatch) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=3, channel_of=lambda i: "wechat", fallbacks=False)
    channel = MockChannel(lambda m: Outcome.ACCEPTED, name="quick", kind="wechat")
    d = _dispatcher(dispatch_settings, session_factory, cipher, Router([channel]), lease_s=30)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    renew = claims.renew

    async def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE deliveries", {}, ConnectionResetError("the database went away"))

    monkeypatch.setattr(claims, "renew", down)  # the confirm before the call fails: nothing is sent
    assert await d.send_due() == 3
    assert channel.sent == [] and d.in_flight == 3
    monkeypatch.setattr(claims, "renew", renew)
    await d.flush()
    assert await _statuses(session_factory) == Counter({DeliveryStatus.CREATED: 3}) and d.in_flight == 0
    async with session_factory() as s:
        codes = Counter((await s.execute(select(DeliveryEventRow.code))).scalars().all())
    assert codes[Code.RELEASED] == 3
    assert await d.send_due() == 3 and len(channel.sent) == 3  # sent once, by the next round


async def test_each_slice_is_confirmed_right_before_its_call(dispatch_settings, session_factory, cipher) -> None:
    """At 1 message a second a slice is 2 messages (SLICE_S): when a slice is called, its rows are marked
    unsure and the rows of later slices are not, so a crash now would leave only this slice in doubt."""
    await seed_campaign(session_factory, cipher, dispatch_settings, n=N, channel_of=lambda i: "wechat", fallbacks=False)
    seen: list[tuple[str, set[str]]] = []

    async def handler(msg):  # type: ignore[no-untyped-def]
        async with session_factory() as s:
            marked = (await s.execute(select(DeliveryRow.id).where(DeliveryRow.unsure_since.is_not(None)))).scalars()
            seen.append((msg.delivery_id, set(marked)))
        return Outcome.ACCEPTED

    router = Router([MockChannel(handler, name="paced_wechat", kind="wechat", pace=1.0)])
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, lease_s=30.0)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    order = [i for i, _ in seen]
    assert len(order) == N and await _statuses(session_factory) == Counter({DeliveryStatus.SENT: N})
    size = int(1.0 * SLICE_S)
    for k, (delivery_id, marked) in enumerate(seen):
        this_slice = set(order[k - k % size : k - k % size + size])
        assert delivery_id in marked and this_slice <= marked
        assert not marked & set(order[k - k % size + size :]), "a later slice was marked before its call"
