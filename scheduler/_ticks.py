"""Periodic ticks on APScheduler 3.11's ``AsyncIOScheduler``.

APScheduler 3 must not share a job store between processes (design.md), so each node keeps its
jobs in memory and every job is a short, idempotent tick that claims its work from the
application's own tables. This module adds what the application needs around that:

* leader-only ticks run only while this node holds the lead (``_leader``); ticks may name different
  leads, so processes that run different leader-only ticks (``serve`` without a sender beside the
  workers) each compete only for the leads of the ticks they have, and none takes a lead whose
  ticks it would never run;
* a tick's exception is logged and counted, never allowed to stop the scheduler;
* one run of a tick at a time (APScheduler's ``max_instances=1`` for timer runs, plus our own guard
  so ``run_once`` from a CLI or a test cannot overlap a timer run);
* per-tick stats for the metrics page;
* intervals given in simulated seconds are divided by the clock's speed-up (``ScaledClock``), so
  the demo's ticks keep pace with its fast clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ._checks import positive
from ._clock import Clock, SystemClock
from ._leader import LeaderElection

__all__ = ["Tick", "TickOutcome", "TickScheduler", "TickStats"]

logger = logging.getLogger(__name__)

# Job id of the internal lead check (one per lead: "_leader:<lead>" for a named one); tick names may
# not start with "_", so it cannot collide.
_LEADER_JOB = "_leader"


#: a lead check still running after this many renewal intervals is failed (LockLeader's default lease)
_CHECK_TIMEOUT_RENEWALS = 3


def _lead_job(lead: str) -> str:
    return f"{_LEADER_JOB}:{lead}" if lead else _LEADER_JOB


@dataclass(frozen=True)
class Tick:
    """A periodic job: ``func`` is awaited every ``every_s`` simulated seconds.

    ``jitter_s`` delays each run by up to that much (simulated seconds), so nodes started together
    do not hit the database in step. ``timeout_s`` (real seconds) fails a run that hangs, because a
    hung run would otherwise block every later run of the tick (one run at a time). ``lead`` names
    the lead a leader-only tick needs when the scheduler has one election per lead (``TickScheduler``).
    """

    name: str
    func: Callable[[], Awaitable[Any]]
    every_s: float
    leader_only: bool = False
    jitter_s: float = 0.0
    timeout_s: float | None = None
    lead: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith("_"):
            raise ValueError(f"Tick name must be non-empty and not start with '_', got {self.name!r}")
        if not callable(self.func):
            raise TypeError(f"Tick {self.name!r}: func must be an async callable, got {self.func!r}")
        positive(self.every_s, f"Tick {self.name!r}: every_s")
        if not self.jitter_s >= 0:
            raise ValueError(f"Tick {self.name!r}: jitter_s must be >= 0, got {self.jitter_s!r}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"Tick {self.name!r}: timeout_s must be > 0 or None, got {self.timeout_s!r}")
        if self.lead and not self.leader_only:
            raise ValueError(
                f"Tick {self.name!r}: lead={self.lead!r} is for leader-only ticks (leader_only=True)"
            )


class TickOutcome(StrEnum):
    """What one attempt to run a tick did."""

    #: The tick ran and returned.
    RAN = "ran"
    #: The tick ran and raised (or timed out); logged and counted.
    FAILED = "failed"
    #: Leader-only tick on a node without the lead; nothing ran.
    SKIPPED_NOT_LEADER = "skipped-not-leader"
    #: The previous run of the tick had not finished; nothing ran.
    SKIPPED_BUSY = "skipped-busy"
    #: Still running when the shutdown's grace period ended: cancelled by the scheduler (logged once).
    CANCELLED_AT_SHUTDOWN = "cancelled-at-shutdown"


@dataclass
class TickStats:
    """Counters for one tick. ``runs`` counts finished runs, failed ones included."""

    runs: int = 0
    failures: int = 0
    skipped_not_leader: int = 0
    skipped_busy: int = 0
    #: Clock time (simulated, UTC) at which the last run started.
    last_started_at: datetime | None = None
    #: Real seconds the last run took.
    last_duration_s: float | None = None
    #: Real seconds of all finished runs together (a rate of it is the tick's share of the process).
    total_duration_s: float = 0.0
    #: ``"ExceptionType: message"`` of the last failure. Ticks must raise errors free of personal
    #: data (design.md invariant 6): this text reaches the metrics page and the log.
    last_error: str | None = None
    last_error_at: datetime | None = None


class TickScheduler:
    """Runs ``ticks`` on an ``AsyncIOScheduler`` on the running event loop.

    ``leader`` is required when any tick is leader-only: pass ``AlwaysLeader()`` for a single node
    (SQLite) or a ``LockLeader`` (PostgreSQL advisory lock); leaving it out is refused rather than
    guessed, since guessing "leader" would run leader-only ticks on every node. One election is the
    lead of every leader-only tick. A mapping ``{lead name: election}`` gives each ``Tick.lead`` its
    own: processes whose leader-only ticks differ must not share one lead, or the one that wins it
    leaves the others' ticks unrun on every node (a ``serve`` without a sender holding the lead
    meant no worker ever settled a dead worker's claim). ``shutdown_grace_s`` (real seconds) is how
    long ``shutdown`` waits for running ticks before cancelling them.

    A lead check that hangs (a connection that never answers) is failed after three renewal
    intervals (``LockLeader``'s default lease), so checks go on; a hung check would otherwise block
    every later one (one at a time) and the node could neither confirm nor give up its lead.
    """

    def __init__(
        self,
        ticks: Iterable[Tick],
        *,
        leader: LeaderElection | Mapping[str, LeaderElection] | None = None,
        clock: Clock | None = None,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        by_name: dict[str, Tick] = {}
        for tick in ticks:
            if tick.name in by_name:
                raise ValueError(f"two ticks are named {tick.name!r}; names identify jobs and stats")
            by_name[tick.name] = tick
        leader_only = sorted(name for name, tick in by_name.items() if tick.leader_only)
        if leader_only and leader is None:
            raise ValueError(
                f"leader-only ticks {leader_only} need a leader: AlwaysLeader() on a single node, "
                "LockLeader(...) when several nodes share a database"
            )
        # lead name -> its election; "" alone: one election for every leader-only tick
        self._leads: dict[str, LeaderElection] = {}
        self._one_lead = not isinstance(leader, Mapping)
        if isinstance(leader, Mapping):
            self._leads = dict(leader)
            missing = sorted(
                f"{t.name} (lead {t.lead!r})"
                for t in by_name.values()
                if t.leader_only and t.lead not in self._leads
            )
            if missing:
                raise ValueError(
                    f"leader-only ticks {missing} name a lead without an election; leads: {sorted(self._leads)}"
                )
        elif leader is not None:
            self._leads = {"": leader}
        self._ticks = by_name
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._grace_s = shutdown_grace_s
        self._stats = {name: TickStats() for name in by_name}
        self._leader_stats = {lead: TickStats() for lead in self._leads}
        # Name -> task of the run in progress; also the overlap guard (single-threaded event loop,
        # so check-and-set without an await in between cannot race).
        self._running: dict[str, asyncio.Task[Any]] = {}
        # ticks this scheduler cancelled itself at shutdown: their CancelledError is expected, not a failure
        self._cancelled_at_stop: set[asyncio.Task[Any]] = set()
        self._scheduler: AsyncIOScheduler | None = None

    # -- what the application reads ---------------------------------------------------------

    @property
    def ticks(self) -> Mapping[str, Tick]:
        return MappingProxyType(self._ticks)

    @property
    def is_leader(self) -> bool:
        """True while this node holds a lead (any of them, with one election per lead)."""
        return any(e.is_leader for e in self._leads.values())

    def leads(self) -> dict[str, bool]:
        """Each lead ("" for the one election of all leader-only ticks) and whether this node holds it."""
        return {lead: e.is_leader for lead, e in self._leads.items()}

    def _election(self, tick: Tick) -> LeaderElection:
        return self._leads[""] if self._one_lead else self._leads[tick.lead]

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def stats(self) -> dict[str, TickStats]:
        """A snapshot per tick (copies, so a reader never sees a run half-recorded)."""
        return {name: replace(stats) for name, stats in self._stats.items()}

    def leader_stats(self, lead: str | None = None) -> TickStats:
        """A snapshot of the checks of ``lead`` (the only one when None): ``runs`` checks made,
        ``failures`` checks that raised or timed out."""
        if lead is None:
            if len(self._leader_stats) != 1:
                raise ValueError(f"name the lead: {sorted(self._leader_stats)}")
            (lead,) = self._leader_stats
        return replace(self._leader_stats[lead])

    def interval_real_s(self, tick: Tick) -> float:
        """The tick's interval in real seconds under this scheduler's clock."""
        return self._clock.real_seconds(tick.every_s)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timers; must be called with the event loop running (APScheduler binds to it).

        The lead is checked at once, so a leader-only tick can run at its first interval.
        """
        if self._scheduler is not None:
            raise RuntimeError("TickScheduler.start() called twice; build a new one after shutdown()")
        # timezone given so APScheduler never asks tzlocal about the host (and never warns).
        scheduler = AsyncIOScheduler(timezone=UTC)
        for tick in self._ticks.values():
            real_s = self.interval_real_s(tick)
            jitter = self._clock.real_seconds(tick.jitter_s)
            scheduler.add_job(
                self._run_guarded,
                IntervalTrigger(seconds=real_s, jitter=jitter or None, timezone=UTC),
                args=(tick.name,),
                id=tick.name,
                name=tick.name,
                max_instances=1,
                coalesce=True,  # after a stall, one catch-up run, not a burst
                misfire_grace_time=_grace_s(real_s),
            )
        for lead, election in self._leads.items():
            scheduler.add_job(
                self._renew,
                IntervalTrigger(seconds=election.renew_every_s, timezone=UTC),
                args=(lead,),
                id=_lead_job(lead),
                name=_lead_job(lead),
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=_grace_s(election.renew_every_s),
            )
        scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        self._scheduler = scheduler

    async def shutdown(self) -> None:
        """Stop the timers, let running ticks finish (up to ``shutdown_grace_s``), then give up the lead.

        The lead goes last so no leader-only tick is still running here when another node takes over.
        """
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            scheduler.pause()
            await self._drain()
            scheduler.shutdown(wait=False)
            # AsyncIOScheduler.shutdown only queues the real shutdown on the loop; let it run, so
            # its timer is cancelled before the caller closes the loop.
            for _ in range(100):
                if not scheduler.running:
                    break
                await asyncio.sleep(0)
        for lead, election in self._leads.items():
            try:
                await election.release()
            except Exception:
                logger.exception("releasing the scheduler lead %r failed", lead)

    async def _drain(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._running.values() if t is not current]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._grace_s)
        for task in pending:
            logger.warning("cancelling a tick still running %s s into shutdown", self._grace_s)
            self._cancelled_at_stop.add(task)
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- running ------------------------------------------------------------------------------

    async def run_once(self, name: str) -> TickOutcome:
        """Run tick ``name`` now, under the same guards as a timer run (lead, one at a time).

        For tests and the CLI; works whether or not the scheduler is started. Failures are logged
        and counted, not raised: read ``stats()[name].last_error``.
        """
        if name not in self._ticks:
            raise KeyError(f"no tick named {name!r}; known ticks: {sorted(self._ticks)}")
        return await self._run_guarded(name)

    async def renew_lead(self, lead: str | None = None) -> bool:
        """Take or confirm ``lead`` (every lead when None) now; True while this node holds it (any
        of them). The timer does this every ``renew_every_s``."""
        held = False
        for name in self._leads if lead is None else [lead]:
            held = await self._renew(name) or held
        return held

    async def _renew(self, lead: str) -> bool:
        election = self._leads[lead]
        stats = self._leader_stats[lead]
        job = _lead_job(lead)
        if job in self._running:
            stats.skipped_busy += 1
            return election.is_leader
        with self._timed(job, stats):
            try:
                async with asyncio.timeout(_CHECK_TIMEOUT_RENEWALS * election.renew_every_s):
                    return await election.try_acquire()
            except Exception as exc:  # TimeoutError included: the election must then act as "not held"
                self._record_failure(stats, exc)
                logger.exception("scheduler lead check failed%s", f" ({lead})" if lead else "")
                return False
            finally:
                stats.runs += 1

    async def _run_guarded(self, name: str) -> TickOutcome:
        tick = self._ticks[name]
        stats = self._stats[name]
        if tick.leader_only and not self._election(tick).is_leader:
            stats.skipped_not_leader += 1
            return TickOutcome.SKIPPED_NOT_LEADER
        if name in self._running:
            stats.skipped_busy += 1
            return TickOutcome.SKIPPED_BUSY
        with self._timed(name, stats):
            try:
                async with asyncio.timeout(tick.timeout_s):
                    await tick.func()
            except asyncio.CancelledError:
                task = _current_task()
                if task not in self._cancelled_at_stop:
                    raise
                # our own cancel at the end of the grace period (already logged): the job ends quietly
                # instead of apscheduler printing a traceback on every deploy
                self._cancelled_at_stop.discard(task)
                task.uncancel()
                outcome = TickOutcome.CANCELLED_AT_SHUTDOWN
            except Exception as exc:  # a tick's failure must never stop the scheduler
                self._record_failure(stats, exc)
                logger.exception("tick %s failed", name)
                outcome = TickOutcome.FAILED
            else:
                outcome = TickOutcome.RAN
        stats.runs += 1
        return outcome

    @contextlib.contextmanager
    def _timed(self, job: str, stats: TickStats) -> Iterator[None]:
        """Hold ``job`` as running (one run at a time) and time it into ``stats``, however it ends."""
        self._running[job] = _current_task()
        stats.last_started_at = self._clock.now()
        started = time.perf_counter()
        try:
            yield
        finally:
            del self._running[job]
            stats.last_duration_s = time.perf_counter() - started
            stats.total_duration_s += stats.last_duration_s

    def _record_failure(self, stats: TickStats, exc: Exception) -> None:
        stats.failures += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"
        stats.last_error_at = self._clock.now()

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        # APScheduler skipped a timer run because the previous one is still going; it logs a
        # warning itself, we only count it.
        leads = {_lead_job(lead): st for lead, st in self._leader_stats.items()}
        stats = leads.get(event.job_id) or self._stats.get(event.job_id)
        if stats is not None:
            stats.skipped_busy += 1


def _grace_s(interval_real_s: float) -> int:
    # A run later than one interval is superseded by the next (coalesce=True), so one interval of
    # grace means a late run still happens once. APScheduler wants a positive integer.
    return max(1, math.ceil(interval_real_s))


def _current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("TickScheduler runs ticks inside asyncio tasks only")
    return task
