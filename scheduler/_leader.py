"""Leader election: which node runs the leader-only ticks.

The engine knows no database. ``AlwaysLeader`` is for a single node (SQLite). ``LockLeader`` wraps
two callables the application supplies; on PostgreSQL they take and give back a session-level
advisory lock. ``TickScheduler`` calls ``try_acquire`` every ``renew_every_s`` real seconds (the
lead is about connection liveness, not the business calendar, so a ScaledClock does not speed
it up), and runs leader-only ticks only while ``is_leader`` is true.

How a lost lead is detected
---------------------------
PostgreSQL drops a session-level advisory lock when the session ends: the connection breaks, the
server restarts, an idle-session timeout fires, a pooler recycles the connection. Nothing tells
the holder, so the app's ``acquire`` callable must re-verify on every call:

* hold the lock on one dedicated connection, never one from the request pool and never through a
  transaction-mode pooler (either hands the session, and the lock, to someone else);
* if that connection is open, check it still works (``SELECT 1``; for belt and braces
  ``SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
  AND granted)``) and return True; do **not** call ``pg_try_advisory_lock`` again on it: session
  locks are re-entrant, every extra success must be matched by its own unlock;
* if that check fails, the session is gone (a cut connection, a restarted server) and its lock with it:
  drop the connection and go on to the next point in the same call, so a cut costs the lead one
  round trip, not one renewal interval;
* otherwise open a fresh connection and return ``pg_try_advisory_lock(key)``;
* on any error return False or raise: both count as "not leader".

``release`` runs ``pg_advisory_unlock(key)`` and closes the connection (closing alone also frees it);
it is called on shutdown even when the last check failed, so it must be a no-op without a lock.

A check that hangs is failed by ``TickScheduler`` after three ``renew_every_s`` (cancelled: the callable
must then forget the connection it was using, closing it without waiting on it). When processes run
different leader-only ticks, give each kind its own lead (``TickScheduler(leader={name: election})``,
``Tick.lead``): a process that won a shared lead without the others' ticks would leave them unrun.

Between losing the session and the next check, the old node may still believe it leads while a
new node has taken the lock: at most ``lease_s`` (by default three renewals). That is why
leader-only ticks must be idempotent and claim rows conditionally (design.md), which makes an
overlap wasteful, never harmful.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ._checks import positive

__all__ = ["AlwaysLeader", "LeaderElection", "LockLeader"]

logger = logging.getLogger(__name__)


@runtime_checkable
class LeaderElection(Protocol):
    """What ``TickScheduler`` needs to decide whether this node runs leader-only ticks."""

    #: How often (real seconds) the scheduler calls ``try_acquire`` to take or confirm the lead.
    renew_every_s: float

    async def try_acquire(self) -> bool:
        """Take the lead, or confirm it is still held; True while this node leads."""
        ...

    async def release(self) -> None:
        """Give the lead up (on shutdown)."""
        ...

    @property
    def is_leader(self) -> bool: ...


class AlwaysLeader:
    """The only node there is (SQLite is single-node, design.md): always the leader."""

    renew_every_s: float = 60.0

    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    @property
    def is_leader(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "AlwaysLeader()"


class LockLeader:
    """The lead is a lock the application takes and gives back through two callables.

    ``acquire`` returns True when this node holds the lock (newly taken or re-verified; see the
    module docstring for what it must check), False when another node holds it. ``is_leader`` is
    true only if the last successful check is younger than ``lease_s`` real seconds, so a node
    whose checks hang (a stuck connection) stops acting as leader on its own.
    """

    def __init__(
        self,
        acquire: Callable[[], Awaitable[bool]],
        release: Callable[[], Awaitable[None]],
        renew_every_s: float = 10.0,
        *,
        lease_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renew_every_s = positive(renew_every_s, "renew_every_s")
        self.lease_s = float(lease_s) if lease_s is not None else 3 * self.renew_every_s
        if not self.lease_s >= self.renew_every_s:
            raise ValueError(f"lease_s ({self.lease_s}) must be >= renew_every_s ({self.renew_every_s})")
        self._acquire = acquire
        self._release = release
        self._monotonic = monotonic
        self._held = False
        self._confirmed_at = 0.0

    @property
    def is_leader(self) -> bool:
        return self._held and self._monotonic() - self._confirmed_at <= self.lease_s

    async def try_acquire(self) -> bool:
        was_leader = self._held
        try:
            held = bool(await self._acquire())
        except BaseException:
            # Unable to verify means unable to lead: stop before the caller logs the error. Cancelled
            # too (the scheduler times a hung check out): a check that never answered confirms nothing.
            self._held = False
            if was_leader:
                logger.warning("lost the scheduler lead: the lock check failed")
            raise
        self._held = held
        if held:
            self._confirmed_at = self._monotonic()
            if not was_leader:
                logger.info("took the scheduler lead")
        elif was_leader:
            logger.warning("lost the scheduler lead: the lock is no longer held")
        return held

    async def release(self) -> None:
        """Stop leading and call the app's ``release``, even if the last check said "not held":
        the check may have failed on a connection that still holds the lock, so ``release`` must
        be safe to call whether or not the lock is held (``pg_advisory_unlock`` on a session that
        does not hold it only returns false)."""
        was_leader = self._held
        # Stop leading first: a failing release must not leave this node believing it leads.
        self._held = False
        await self._release()
        if was_leader:
            logger.info("gave up the scheduler lead")

    def __repr__(self) -> str:
        return f"LockLeader(renew_every_s={self.renew_every_s}, is_leader={self.is_leader})"
