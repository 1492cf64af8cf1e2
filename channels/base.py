"""The one small interface every provider adapter implements.

A caller hands ``Channel.send`` a batch of ``OutboundMessage`` and gets back one ``SendResult`` per
message, in the same order. ``send`` never raises for provider trouble: errors from the adapter's
``_send`` become results, so the caller only ever looks at ``SendResult.outcome``.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

from channels.errors import ChannelError, InvalidMessageError, PermanentError, ThrottledError
from channels.outcome import Outcome

if TYPE_CHECKING:
    from channels.query import Answer, Inquiry

__all__ = ["Channel", "OutboundMessage", "Outcome", "SendResult", "chunked", "contains_id_number"]

_log = logging.getLogger("channels")


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for one recipient, already rendered for its channel.

    ``delivery_id`` is the caller's idempotency key; adapters pass it to the provider where the
    protocol has a place for it (Aliyun ``OutId``, WeChat ``client_msg_id``, JPush ``sendno``).
    ``template`` is a logical template name that each adapter's configuration maps to its own
    provider template; ``params`` are that template's variables, in the template's order.
    """

    delivery_id: str
    recipient: str
    template: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    text: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider's verdict on one message.

    ``maybe_sent`` marks a retryable result where the provider may nevertheless have sent the message
    (a timeout after the request went out): ask ``Channel.query`` before sending it again.
    ``provider_fault`` marks errors that are the provider's own trouble (system errors, 5xx,
    timeouts) as opposed to throttling or the message itself; the router fails over on these.
    """

    delivery_id: str
    outcome: Outcome
    provider: str
    provider_message_id: str = ""
    code: str = ""
    text: str = ""
    retry_after_s: float | None = None
    maybe_sent: bool = False
    provider_fault: bool = False

    @property
    def is_final(self) -> bool:
        return self.outcome is not Outcome.RETRYABLE


_T = TypeVar("_T")
# 18-digit resident ID (region, birth date, sequence, check) and the old 15-digit form; a last line of
# defence under the renderer, because no message may ever carry an ID number (design.md invariant 6).
_ID_NUMBER = re.compile(
    r"(?<![0-9])(?:[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
    r"|[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})(?![0-9Xx])"
)


def contains_id_number(text: str) -> bool:
    return _ID_NUMBER.search(text) is not None


def _refuse_id_numbers(batch: Sequence[OutboundMessage]) -> dict[str, InvalidMessageError]:
    refused = {}
    for m in batch:
        if contains_id_number("\n".join((m.title, m.text, m.url, *m.params.values()))):
            refused[m.delivery_id] = InvalidMessageError("message contains an ID number", code="CONTAINS_ID_NUMBER")
    return refused


def chunked(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    """Split ``items`` into consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Channel(ABC):
    """A provider adapter: subclasses implement ``_send`` (the protocol) and nothing else is required.

    ``send`` adds what every provider needs: timing, logging without personal data, and turning
    ``ChannelError`` into results. ``code_table`` (provider code -> outcome) is the adapter's data;
    ``throttle_codes`` are retryable codes that mean "slow down", not "the provider is failing".
    ``query`` and ``resend_window_s`` say what can be learnt of an unknown outcome (``channels.query``).
    """

    name: ClassVar[str]
    kind: ClassVar[str]  # "sms", "wechat" or "app": which recipients the channel can reach
    code_table: ClassVar[Mapping[str, Outcome]] = {}
    throttle_codes: ClassVar[frozenset[str]] = frozenset()
    #: seconds after a send during which the provider drops a repeat carrying the same delivery id, so
    #: a message of unknown outcome may be sent again; 0: it does not (or not for a new sender)
    resend_window_s: ClassVar[float] = 0.0
    #: most messages, each with its own content, that one request of this adapter carries
    messages_per_request: int = 1

    async def send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send ``batch``; return one result per message, in order. Never raises ``ChannelError``."""
        if not batch:
            return []
        started = time.perf_counter()
        refused = _refuse_id_numbers(batch)
        to_send = [m for m in batch if m.delivery_id not in refused] if refused else batch
        try:
            results = await self._send(to_send) if to_send else []
        except ChannelError as exc:
            results = [self.result_from_error(m, exc) for m in to_send]
        if refused:
            sent = iter(results)
            results = [
                self.result_from_error(m, refused[m.delivery_id]) if m.delivery_id in refused else next(sent)
                for m in batch
            ]
        elapsed = time.perf_counter() - started
        if len(results) != len(batch):
            raise RuntimeError(f"{self.name}._send returned {len(results)} results for {len(batch)} messages")
        by_outcome: dict[str, int] = {}
        for r in results:
            by_outcome[r.outcome] = by_outcome.get(r.outcome, 0) + 1
        _log.debug("%s sent %d message(s) in %.3fs: %s", self.name, len(batch), elapsed, by_outcome)
        return results

    @abstractmethod
    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        """Speak the provider protocol for ``batch``; may raise ``ChannelError`` for the whole batch."""
        raise NotImplementedError(f"{type(self).__name__}._send")

    def resend_window_for(self, template: str) -> float:
        """``resend_window_s`` for messages of the logical ``template`` (an adapter may differ per template)."""
        return self.resend_window_s

    def answer_wait_s(self) -> float:
        """How long after a send ``query`` may still come to find it though it cannot yet (0: the provider's
        records show a send at once or never). Tencent lists a send only once the carrier has reported
        it, so "no record" a minute after the call proves nothing; asked again later it may."""
        return 0.0

    async def query(self, items: Sequence[Inquiry]) -> list[Answer]:
        """What became of messages whose send outcome is unknown: one ``Answer`` per item, in order.
        Never raises for provider trouble (a failed query answers "cannot tell"). The default: this
        provider cannot be asked."""
        from channels.query import Answer

        return [Answer(i.delivery_id, self.name, None) for i in items]

    def pace(self) -> float | None:
        """Messages per second this adapter's rate limit lets through (None: it has none). A caller that
        marks messages as handed over right before the call can send slices of a second or two, so a
        crash leaves only a slice of unknown outcome, not a whole batch still queued behind the limit."""
        limiter = getattr(self, "_limiter", None)
        if limiter is None:
            return None
        return float(limiter.config.requests_per_s) * self.messages_per_request

    async def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release what the adapter owns (the HTTP session belongs to the caller)."""

    # ---- helpers for adapters -------------------------------------------------------------------

    def outcome_for(self, code: str, *, default: Outcome = Outcome.PERMANENT) -> Outcome:
        return self.code_table.get(code, default)

    def result(
        self,
        msg: OutboundMessage,
        code: str,
        text: str = "",
        *,
        provider_message_id: str = "",
        outcome: Outcome | None = None,
        retry_after_s: float | None = None,
    ) -> SendResult:
        """Build a result from a provider code, classifying it through ``code_table``."""
        verdict = outcome if outcome is not None else self.outcome_for(code)
        return SendResult(
            delivery_id=msg.delivery_id,
            outcome=verdict,
            provider=self.name,
            provider_message_id=provider_message_id,
            code=code,
            text=text,
            retry_after_s=retry_after_s,
            provider_fault=verdict is Outcome.RETRYABLE and code not in self.throttle_codes,
        )

    def result_from_error(self, msg: OutboundMessage, exc: ChannelError) -> SendResult:
        if isinstance(exc, PermanentError):
            outcome = Outcome.PERMANENT
        else:
            outcome = self.code_table.get(exc.code, Outcome.RETRYABLE)
        return SendResult(
            delivery_id=msg.delivery_id,
            outcome=outcome,
            provider=self.name,
            code=exc.code,
            text=str(exc),
            retry_after_s=exc.retry_after_s,
            maybe_sent=exc.maybe_sent,
            provider_fault=outcome is Outcome.RETRYABLE and not isinstance(exc, ThrottledError),
        )
