"""The one module that chooses a provider and calls it: retries, settling and failover live here.

Each channel kind ("sms", "wechat", "app") has an ordered list of adapters; the first is primary.
When the active adapter keeps failing with its own faults (system errors, 5xx, timeouts) the router
switches to the next and records the switch and its reason. After ``probe_after_s`` it tries the
primary again, since provider outages end and the primary is usually the cheaper contract.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.base import Channel, OutboundMessage, Outcome, SendResult
from channels.retry import RetryPolicy, should_retry

__all__ = ["FailoverPolicy", "ProviderSwitch", "Router"]

_log = logging.getLogger("channels.router")


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    #: Consecutive send calls in which every message failed with a provider fault.
    fault_threshold: int = 3
    #: Seconds on a fallback provider before the primary is tried again.
    probe_after_s: float = 300.0


@dataclass(frozen=True, slots=True)
class ProviderSwitch:
    """A record of the router moving a channel kind from one provider to another."""

    kind: str
    from_provider: str
    to_provider: str
    reason: str
    at: datetime


@dataclass(slots=True)
class _KindState:
    channels: list[Channel]
    active: int = 0
    consecutive_faults: int = 0
    switched_at: float = 0.0
    last_fault: str = ""
    switches: list[ProviderSwitch] = field(default_factory=list)


class Router:
    """Sends batches by channel kind, with retries (``RetryPolicy``) and failover (``FailoverPolicy``)."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        retry: RetryPolicy | None = None,
        failover: FailoverPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.failover = failover or FailoverPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._kinds: dict[str, _KindState] = {}
        for ch in channels:
            self._kinds.setdefault(ch.kind, _KindState(channels=[])).channels.append(ch)
        self.switches: list[ProviderSwitch] = []

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def active(self, kind: str) -> Channel:
        """The adapter that the next send of ``kind`` will use (after any due probe of the primary)."""
        state = self._state(kind)
        if state.active != 0 and self._clock() - state.switched_at >= self.failover.probe_after_s:
            self._switch(state, kind, 0, f"probing primary after {self.failover.probe_after_s:.0f}s on fallback")
        return state.channels[state.active]

    def channel(self, kind: str, name: str) -> Channel:
        """The adapter of ``kind`` called ``name`` (active or not); ValueError if there is none."""
        for ch in self._state(kind).channels:
            if ch.name == name:
                return ch
        names = [ch.name for ch in self._state(kind).channels]
        raise ValueError(f"no provider {name!r} for kind {kind!r}; have {names}")

    async def send(
        self, kind: str, batch: Sequence[OutboundMessage], *, provider: str | None = None
    ) -> list[SendResult]:
        """Send ``batch`` over ``kind``; one result per message, in order, after retries and failover.

        ``provider`` pins every attempt of this call to that adapter of ``kind`` (ValueError if
        unknown), so a caller that recorded where a message goes before calling is never wrong about
        it; its faults still count towards failover, which then applies to later calls."""
        pinned = self.channel(kind, provider) if provider is not None else None
        final: dict[str, SendResult] = {}
        pending = list(batch)
        attempt = 0
        while pending:
            attempt += 1
            channel = pinned or self.active(kind)
            results = await channel.send(pending)
            self._observe(kind, channel, results)
            retry_msgs: list[OutboundMessage] = []
            retry_results: list[SendResult] = []
            unsure = [(m, r) for m, r in zip(pending, results, strict=True) if r.maybe_sent]
            settled = await self._settle(channel, unsure)
            for msg, res in zip(pending, results, strict=True):
                res = settled.get(msg.delivery_id, res)
                if should_retry(res, attempt, self.retry) and not res.maybe_sent:
                    retry_msgs.append(msg)
                    retry_results.append(res)
                else:
                    final[msg.delivery_id] = res
            if not retry_msgs:
                break
            delay = self.retry.delay_s(attempt, retry_results, self._rng)
            if delay is None:  # the provider wants a longer pause than we hold a message for
                final.update((r.delivery_id, r) for r in retry_results)
                break
            await self._sleep(delay)
            pending = retry_msgs
        return [final[m.delivery_id] for m in batch]

    async def _settle(
        self, channel: Channel, unsure: list[tuple[OutboundMessage, SendResult]]
    ) -> dict[str, SendResult]:
        """Ask the provider about messages that may have gone out; unanswered ones stay ``maybe_sent``."""
        if not unsure:
            return {}
        answers = await channel.settle([m for m, _ in unsure])
        return {m.delivery_id: a for (m, _), a in zip(unsure, answers, strict=True) if a is not None}

    def _observe(self, kind: str, channel: Channel, results: list[SendResult]) -> None:
        state = self._state(kind)
        if state.channels[state.active] is not channel:
            return  # another sender already switched; this call's results say nothing new
        if results and all(r.provider_fault for r in results):
            state.consecutive_faults += 1
            state.last_fault = results[0].code
        elif any(r.outcome is Outcome.ACCEPTED for r in results):
            state.consecutive_faults = 0
        if state.consecutive_faults >= self.failover.fault_threshold and len(state.channels) > 1:
            target = (state.active + 1) % len(state.channels)
            self._switch(
                state,
                kind,
                target,
                f"{state.consecutive_faults} consecutive failed calls to {channel.name} "
                f"(last code {state.last_fault or 'unknown'})",
            )

    def _switch(self, state: _KindState, kind: str, target: int, reason: str) -> None:
        before = state.channels[state.active].name
        state.active = target
        state.consecutive_faults = 0
        state.switched_at = self._clock()
        record = ProviderSwitch(kind, before, state.channels[target].name, reason, datetime.now(UTC))
        state.switches.append(record)
        self.switches.append(record)
        _log.warning("%s: switching %s -> %s: %s", kind, record.from_provider, record.to_provider, reason)

    def _state(self, kind: str) -> _KindState:
        try:
            return self._kinds[kind]
        except KeyError:
            raise KeyError(f"no channel configured for kind {kind!r}; have {self.kinds}") from None
