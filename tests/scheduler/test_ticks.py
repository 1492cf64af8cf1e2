"""TickScheduler on a real APScheduler AsyncIOScheduler, with short real intervals."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from scheduler import (
    AlwaysLeader,
    FrozenClock,
    LockLeader,
    ScaledClock,
    Tick,
    TickOutcome,
    TickScheduler,
    reminder_due,
)

Start = Callable[..., TickScheduler]


async def until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start schedulers for a test and always shut them down (no stray timers or warnings)."""
    started: list[TickScheduler] = []

    def _start(ticks: Iterable[Tick], **kwargs: Any) -> TickScheduler:
        scheduler = TickScheduler(ticks, **kwargs)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield _start
    for scheduler in started:
        await scheduler.shutdown()


class Counter:
    def __init__(self, sleep_s: float = 0.0, error: Exception | None = None) -> None:
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.sleep_s = sleep_s
        self.error = error

    async def __call__(self) -> None:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.sleep_s)
            if self.error is not None:
                raise self.error
        finally:
            self.active -= 1


async def test_ticks_run_on_their_interval(start: Start) -> None:
    fast, slow = Counter(), Counter()
    scheduler = start([Tick("fast", fast, every_s=0.03), Tick("slow", slow, every_s=10)])
    await until(lambda: fast.calls >= 3)
    assert slow.calls == 0
    stats = scheduler.stats()
    assert stats["fast"].runs >= 3
    assert stats["fast"].failures == 0
    assert stats["fast"].last_duration_s is not None
    assert stats["slow"].runs == 0


async def test_one_run_at_a_time(start: Start) -> None:
    busy = Counter(sleep_s=0.25)
    scheduler = start([Tick("busy", busy, every_s=0.03)])
    await until(lambda: busy.active == 1)
    assert await scheduler.run_once("busy") is TickOutcome.SKIPPED_BUSY
    await until(lambda: scheduler.stats()["busy"].skipped_busy >= 3)
    assert busy.max_active == 1


async def test_exceptions_are_counted_and_do_not_stop_the_scheduler(start: Start) -> None:
    broken, healthy = Counter(error=RuntimeError("boom")), Counter()
    scheduler = start([Tick("broken", broken, every_s=0.03), Tick("healthy", healthy, every_s=0.03)])
    await until(lambda: broken.calls >= 3 and healthy.calls >= 3)
    stats = scheduler.stats()["broken"]
    assert stats.failures == stats.runs >= 3
    assert stats.last_error == "RuntimeError: boom"
    assert stats.last_error_at is not None
    assert scheduler.running


async def test_a_hung_tick_times_out() -> None:
    hung = Counter(sleep_s=5)
    scheduler = TickScheduler([Tick("hung", hung, every_s=60, timeout_s=0.05)])
    assert await scheduler.run_once("hung") is TickOutcome.FAILED
    last_error = scheduler.stats()["hung"].last_error
    assert last_error is not None
    assert last_error.startswith("TimeoutError")


async def test_leader_only_ticks_wait_for_the_lead(start: Start) -> None:
    held = [False]
    released = []

    async def acquire() -> bool:
        return held[0]

    async def release() -> None:
        released.append(True)

    leader = LockLeader(acquire, release, renew_every_s=0.05)
    purge, dispatch = Counter(), Counter()
    scheduler = start(
        [Tick("purge", purge, every_s=0.03, leader_only=True), Tick("dispatch", dispatch, every_s=0.03)],
        leader=leader,
    )
    await until(lambda: dispatch.calls >= 3 and scheduler.stats()["purge"].skipped_not_leader >= 2)
    assert purge.calls == 0  # dispatch runs on any node; purge only on the leader
    assert not scheduler.is_leader

    held[0] = True  # the other node went away
    await until(lambda: purge.calls >= 2)
    assert scheduler.is_leader

    held[0] = False  # lost the lock: purge stops after the next check
    await until(lambda: not scheduler.is_leader)
    await asyncio.sleep(0.05)  # a run already started when the lead went may still finish
    calls = purge.calls
    await asyncio.sleep(0.2)
    assert purge.calls == calls
    assert scheduler.leader_stats().runs >= 3

    await scheduler.shutdown()
    assert released


async def test_a_failing_lead_check_is_counted(start: Start) -> None:
    async def acquire() -> bool:
        raise ConnectionError("server closed the connection")

    async def release() -> None:
        return None

    scheduler = start([], leader=LockLeader(acquire, release, renew_every_s=0.05))
    await until(lambda: scheduler.leader_stats().failures >= 2)
    assert not scheduler.is_leader
    assert scheduler.leader_stats().last_error == "ConnectionError: server closed the connection"


async def test_a_hung_lead_check_is_timed_out_and_the_next_one_runs(start: Start) -> None:
    # a lead check awaiting a connection that never answers: without a bound, max_instances=1 skips every
    # later check, and the node neither confirms nor gives up its lead
    calls = [0]

    async def acquire() -> bool:
        calls[0] += 1
        if calls[0] == 1:
            await asyncio.sleep(3600)
        return True

    async def release() -> None:
        return None

    leader = LockLeader(acquire, release, renew_every_s=0.1)
    purge = Counter()
    scheduler = start([Tick("purge", purge, every_s=0.03, leader_only=True)], leader=leader)
    await until(lambda: purge.calls >= 1, timeout_s=3.0)
    stats = scheduler.leader_stats()
    assert (
        stats.failures == 1 and stats.last_error is not None and stats.last_error.startswith("TimeoutError")
    )
    assert calls[0] >= 2 and scheduler.is_leader


async def test_each_lead_runs_only_its_own_ticks(start: Start) -> None:
    # two kinds of process, one tick each behind a lead of its own: this node holds "send" only, so its
    # "send" tick runs and its "serve" tick waits; one lead for both would let a node that has only the
    # "serve" tick win it and leave the "send" tick unrun everywhere
    held = {"send": True, "serve": False}

    def lead(name: str) -> LockLeader:
        async def acquire() -> bool:
            return held[name]

        async def release() -> None:
            return None

        return LockLeader(acquire, release, renew_every_s=0.05)

    settle, draft = Counter(), Counter()
    scheduler = start(
        [
            Tick("settle", settle, every_s=0.03, leader_only=True, lead="send"),
            Tick("draft", draft, every_s=0.03, leader_only=True, lead="serve"),
        ],
        leader={"send": lead("send"), "serve": lead("serve")},
    )
    await until(lambda: settle.calls >= 3 and scheduler.stats()["draft"].skipped_not_leader >= 2)
    assert draft.calls == 0
    assert scheduler.leads() == {"send": True, "serve": False} and scheduler.is_leader
    held["serve"] = True
    await until(lambda: draft.calls >= 1)
    assert scheduler.leader_stats("serve").runs >= 1
    with pytest.raises(ValueError, match="name the lead"):
        scheduler.leader_stats()


def test_a_lead_needs_an_election_and_a_leader_only_tick() -> None:
    async def noop() -> None:
        return None

    with pytest.raises(ValueError, match="lead without an election"):
        TickScheduler(
            [Tick("settle", noop, every_s=1, leader_only=True, lead="send")], leader={"serve": AlwaysLeader()}
        )
    with pytest.raises(ValueError, match="leader-only"):
        Tick("dispatch", noop, every_s=1, lead="send")


async def test_scaled_clock_fires_at_the_scaled_rate(start: Start) -> None:
    clock = ScaledClock(600)  # one simulated minute every 0.1 real seconds
    seen: list[datetime] = []

    async def minutely() -> None:
        seen.append(clock.now())

    scheduler = start([Tick("minutely", minutely, every_s=60)], clock=clock)
    assert scheduler.interval_real_s(scheduler.ticks["minutely"]) == pytest.approx(0.1)
    await until(lambda: len(seen) >= 4)  # unscaled, the first run would be a real minute away
    mean_gap = (seen[3] - seen[0]) / 3
    assert timedelta(seconds=40) <= mean_gap <= timedelta(seconds=100)  # about a simulated minute


async def test_run_once_with_a_frozen_clock_for_reminders() -> None:
    """The reminder pattern the app will wire: a tick that acts once reminder_due has passed."""
    clock = FrozenClock(datetime(2025, 6, 26, 12, 0, tzinfo=UTC))
    due = reminder_due(date(2025, 6, 30), days_before=3)  # 2025-06-27 09:00 Shanghai
    sent: list[datetime] = []

    async def remind() -> None:
        if clock.now() >= due and not sent:
            sent.append(clock.now())

    scheduler = TickScheduler(
        [Tick("remind", remind, every_s=60, leader_only=True)], leader=AlwaysLeader(), clock=clock
    )
    assert await scheduler.run_once("remind") is TickOutcome.RAN
    assert sent == []
    clock.set(due)
    assert await scheduler.run_once("remind") is TickOutcome.RAN
    assert await scheduler.run_once("remind") is TickOutcome.RAN
    assert sent == [due]
    assert scheduler.stats()["remind"].runs == 3
    assert scheduler.stats()["remind"].last_started_at == due


async def test_run_once_respects_the_lead() -> None:
    async def never() -> bool:
        return False

    async def release() -> None:
        return None

    tick = Counter()
    scheduler = TickScheduler(
        [Tick("close", tick, every_s=60, leader_only=True)], leader=LockLeader(never, release)
    )
    assert not await scheduler.renew_lead()
    assert await scheduler.run_once("close") is TickOutcome.SKIPPED_NOT_LEADER
    assert tick.calls == 0
    with pytest.raises(KeyError, match="close"):
        await scheduler.run_once("nope")


async def test_shutdown_lets_a_running_tick_finish(start: Start) -> None:
    slow = Counter(sleep_s=0.1)
    scheduler = start([Tick("slow", slow, every_s=0.02)])
    await until(lambda: slow.active == 1)
    await scheduler.shutdown()
    assert slow.active == 0
    assert scheduler.stats()["slow"].runs >= 1
    assert not scheduler.running


async def test_shutdown_cancels_a_tick_past_the_grace(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    stuck = Counter(sleep_s=30)
    scheduler = start([Tick("stuck", stuck, every_s=0.02)], shutdown_grace_s=0.05)
    await until(lambda: stuck.active == 1)
    began = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING):
        await scheduler.shutdown()
    assert asyncio.get_running_loop().time() - began < 1.0
    assert stuck.active == 0
    # one warning line, and no "job raised an exception" traceback for the cancel the scheduler made itself
    assert [r.levelno for r in caplog.records] == [logging.WARNING], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info]
    assert scheduler.stats()["stuck"].failures == 0


async def test_start_twice_is_refused(start: Start) -> None:
    scheduler = start([Tick("a", Counter(), every_s=60)])
    with pytest.raises(RuntimeError, match="twice"):
        scheduler.start()


def test_construction_errors() -> None:
    tick = Tick("a", Counter(), every_s=1)
    with pytest.raises(ValueError, match="named 'a'"):
        TickScheduler([tick, tick])
    with pytest.raises(ValueError, match="AlwaysLeader"):
        TickScheduler([Tick("purge", Counter(), every_s=1, leader_only=True)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "_leader"},
        {"every_s": 0},
        {"jitter_s": -1},
        {"timeout_s": 0},
    ],
)
def test_bad_ticks(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"name": "a", "func": Counter(), "every_s": 1.0, **kwargs}
    with pytest.raises(ValueError):
        Tick(**fields)
