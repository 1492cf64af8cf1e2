"""The one module that chooses a provider, calls it, fails over, and asks it about unknown outcomes.

Each channel kind ("sms", "wechat", "app") has an ordered list of adapters; the first is primary. When
the active adapter keeps failing with its own faults (system errors, 5xx, timeouts) the router switches
to the next and records the switch and its reason (``switches``). After ``probe_after_s`` it tries the
primary again, since provider outages end and the primary is usually the cheaper contract.

``send`` makes one call per batch and never retries: a caller that keeps messages in a durable outbox
retries them there, with backoff it can survive a restart with (``channels.retry.RetryPolicy`` computes
it). What ``send`` does add: a result that may have gone out (``maybe_sent``) is looked up at once with
the adapter's ``query``, so the caller gets "accepted" or "certainly not sent" wherever the provider can
tell. ``query`` and ``resend_window_s`` answer the same questions later, for a named provider (the one
a message was sent through), which is what settling a message after a crash needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from channels.base import Channel, OutboundMessage, Outcome, SendResult
from channels.query import Answer, Inquiry

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
    """Sends batches by channel kind with failover (``FailoverPolicy``); asks providers about unknown outcomes."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        failover: FailoverPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failover = failover or FailoverPolicy()
        self._clock = clock
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

    def has(self, kind: str, name: str) -> bool:
        return kind in self._kinds and any(ch.name == name for ch in self._kinds[kind].channels)

    async def send(
        self, kind: str, batch: Sequence[OutboundMessage], *, provider: str | None = None
    ) -> list[SendResult]:
        """Send ``batch`` over ``kind`` in one call; one result per message, in order.

        ``provider`` pins the call to that adapter of ``kind`` (ValueError if unknown), so a caller that
        recorded where a message goes before calling is never wrong about it; its faults still count
        towards failover, which then applies to later calls."""
        if not batch:
            return []
        channel = self.channel(kind, provider) if provider is not None else self.active(kind)
        started = datetime.now(UTC)
        results = await channel.send(batch)
        self._observe(kind, channel, results)
        unsure = [(m, r) for m, r in zip(batch, results, strict=True) if r.maybe_sent]
        if not unsure:
            return results
        answers = await channel.query(
            [Inquiry(m.delivery_id, m.recipient, m.template, since=started) for m, _ in unsure]
        )
        known = {a.delivery_id: (r, a) for (_, r), a in zip(unsure, answers, strict=True) if a.sent is not None}
        return [_answered(*known[r.delivery_id]) if r.delivery_id in known else r for r in results]

    async def query(self, kind: str, provider: str | None, items: Sequence[Inquiry]) -> list[Answer]:
        """Ask the named provider (the kind's primary when None) about messages of unknown outcome; a
        provider this router does not have cannot tell."""
        if not items:
            return []
        if provider is None:
            provider = self._state(kind).channels[0].name
        if not self.has(kind, provider):
            return [Answer(i.delivery_id, provider, None) for i in items]
        return await self.channel(kind, provider).query(items)

    def pace(self, kind: str, provider: str) -> float | None:
        """Messages per second the named adapter's rate limit lets through (``Channel.pace``)."""
        return self.channel(kind, provider).pace()

    def resend_window_s(self, kind: str, provider: str | None, template: str = "") -> float:
        """How long after a send the named provider drops a repeat of the same delivery id (0: it does not),
        for messages of the logical ``template``."""
        if provider is None:
            provider = self._state(kind).channels[0].name
        return self.channel(kind, provider).resend_window_for(template) if self.has(kind, provider) else 0.0

    def answer_wait_s(self, kind: str, provider: str | None) -> float:
        """How long after a send the named provider's records may still come to show it (``Channel.answer_wait_s``)."""
        if provider is None:
            provider = self._state(kind).channels[0].name
        return self.channel(kind, provider).answer_wait_s() if self.has(kind, provider) else 0.0

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


def _answered(result: SendResult, answer: Answer) -> SendResult:
    """A ``maybe_sent`` result settled by the provider's answer."""
    if answer.sent:
        return replace(
            result, outcome=Outcome.ACCEPTED, code="OK", text="found at the provider after an unknown outcome",
            provider_message_id=answer.provider_message_id or result.provider_message_id, maybe_sent=False,
            provider_fault=False,
        )  # fmt: skip
    return replace(result, maybe_sent=False, text=f"{result.text}; the provider has no record of it")
