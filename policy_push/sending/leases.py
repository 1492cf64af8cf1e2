"""Keeping a dispatcher's claims alive: what it holds, the heartbeat that renews the leases, the fence that
cancels provider calls whose lease may lapse, and handing back or recording again what a failure left
behind. ``Dispatcher`` (``sending.dispatch``) claims and sends; this is the part that runs beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import ProviderSwitch, SendResult
from policy_push.logs import describe
from scheduler import Clock

from . import claims
from .claims import Outgoing
from .rules import SendRules

__all__ = ["DispatchStats", "LeaseKeeper"]

log = logging.getLogger("policy_push.dispatch")


@dataclass
class DispatchStats:
    """Counters since the dispatcher was made (``/healthz``)."""

    claimed: int = 0
    accepted: int = 0
    #: results recorded after their first record failed
    recorded_late: int = 0
    #: rows found settled or reclaimed before their provider call (not sent)
    lease_lost: int = 0
    #: provider calls cancelled because the lease could not be renewed
    fenced: int = 0
    heartbeats: int = 0
    heartbeat_failures: int = 0


@dataclass(slots=True)
class _Held:
    """A claim this process holds: its rows still to be recorded, and when its lease was last renewed."""

    ids: set[str]
    renewed: float
    calls: set[asyncio.Future[Any]] = field(default_factory=set)
    #: rows whose provider call has started (not to be released unsent)
    called: set[str] = field(default_factory=set)
    #: rows whose results are being recorded: a renewal that misses them found them recorded, not lost
    recording: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Unrecorded:
    claim_id: str
    rows: list[Outgoing]
    results: dict[str, SendResult]
    switches: list[ProviderSwitch]


class LeaseKeeper:
    """The claims a dispatcher holds and their heartbeat (its state is set up by ``Dispatcher``)."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    rules: SendRules
    stats: DispatchStats
    _writes: asyncio.Lock | contextlib.nullcontext[None]
    _held: dict[str, _Held]
    _unrecorded: list[_Unrecorded]
    _unreleased: dict[str, set[str]]
    _heartbeat: asyncio.Task[None] | None
    _stop_beating: asyncio.Event

    async def _record(
        self, claim_id: str, rows: list[Outgoing], results: Mapping[str, SendResult], switches: list[ProviderSwitch],
        *, retry: bool = False,
    ) -> bool:  # fmt: skip
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        """Rows this process holds a claim on and has not recorded yet."""
        return sum(len(h.ids) for h in self._held.values())

    def start(self) -> None:
        """Start the heartbeat (idempotent); it renews leases, records held results and fences."""
        if self._heartbeat is None or self._heartbeat.done():
            self._stop_beating.clear()
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat_forever(), name="dispatch-heartbeat")

    async def close(self) -> None:
        """Stop the heartbeat, record what is held and hand back rows claimed but never sent."""
        if self._heartbeat is not None:
            # asked to stop, not cancelled: a cancel landing inside a beat's database call would leak
            # its connection; a beat in progress finishes first
            self._stop_beating.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for claim_id, held in self._held.items():
            if not held.calls:
                self._unreleased.setdefault(claim_id, set()).update(held.ids - held.called)
        await self.flush()

    async def _beat_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_beating.wait(), self.rules.lease_s / 4)
            if self._stop_beating.is_set():
                return
            try:
                await self.beat()
            except Exception:  # the heartbeat must outlive any one failure
                log.exception("dispatch heartbeat failed")

    async def beat(self) -> None:
        """One heartbeat: renew held leases, fence claims that could not be renewed, flush held results."""
        held = {cid: set(h.ids) for cid, h in self._held.items() if h.ids}
        if held:
            started = time.monotonic()
            self.stats.heartbeats += 1
            try:
                async with self._writes:
                    mine = await claims.renew(self.sessions, held, lease_s=self.rules.lease_s)
            except Exception as exc:
                self.stats.heartbeat_failures += 1
                log.warning("could not renew %d lease(s): %s", sum(map(len, held.values())), describe(exc))
            else:
                for cid, ids in held.items():
                    h = self._held.get(cid)
                    if h is not None:
                        h.renewed = started
                        self._drop(cid, ids - mine - h.recording, why="lease lost")
        self._fence()
        await self.flush()

    def _fence(self) -> None:
        """Cancel the provider calls of claims whose lease may lapse before they end."""
        limit = self.rules.lease_s * 0.6
        for cid, h in self._held.items():
            if h.calls and time.monotonic() - h.renewed > limit:
                log.warning("claim %s: lease not renewed for %.0f s; cancelling its provider calls", cid, time.monotonic() - h.renewed)
                for call in list(h.calls):
                    call.cancel()
                    self.stats.fenced += 1

    def _drop(self, claim_id: str, ids: set[str], *, why: str) -> None:
        h = self._held.get(claim_id)
        if h is None:
            return
        ids = ids & h.ids  # rows dropped meanwhile (recorded, say) are not dropped twice
        if not ids:
            return
        h.ids -= ids
        if why == "lease lost":
            self.stats.lease_lost += len(ids)
            log.warning("claim %s: %d row(s) settled or reclaimed elsewhere; not ours to send", claim_id, len(ids))

    async def flush(self) -> None:
        """Record results whose first record failed, and hand back rows claimed but never sent."""
        for item in list(self._unrecorded):
            if await self._record(item.claim_id, item.rows, item.results, item.switches, retry=True):
                self._unrecorded.remove(item)
        for claim_id, ids in list(self._unreleased.items()):
            try:
                async with self._writes:
                    await claims.release(self.sessions, claim_id, ids, now=self.clock.now())
            except Exception as exc:
                log.warning("could not hand back %d unsent row(s): %s", len(ids), describe(exc))
                continue
            del self._unreleased[claim_id]
            self._drop(claim_id, ids, why="released")
            self._forget_if_done(claim_id)

    def _forget_if_done(self, claim_id: str) -> None:
        h = self._held.get(claim_id)
        if h is not None and not h.ids and claim_id not in self._unreleased:
            del self._held[claim_id]
