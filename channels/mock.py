"""``MockChannel``: a channel whose verdicts come from a function, for testing the application."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from channels.base import Channel, OutboundMessage, Outcome, SendResult

__all__ = ["MockChannel"]

Handler = Callable[[OutboundMessage], SendResult | Outcome | Awaitable[SendResult | Outcome]]


class MockChannel(Channel):
    """Calls ``handler`` (sync or async) for each message and records what it was given.

    The handler may return a full ``SendResult`` or just an ``Outcome``::

        MockChannel(lambda msg: Outcome.ACCEPTED)
        MockChannel(lambda msg: Outcome.UNREACHABLE if msg.recipient == "13800000000" else Outcome.ACCEPTED)
    """

    name = "mock"
    kind = "sms"
    code_table: ClassVar = {o.value: o for o in Outcome}

    def __init__(self, handler: Handler, *, name: str = "mock", kind: str = "sms", pace: float | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self._handler = handler
        self._pace = pace
        self.sent: list[OutboundMessage] = []
        self._ids = 0

    def pace(self) -> float | None:
        """Messages per second, as a rate-limited adapter would say (None: unlimited)."""
        return self._pace

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        results = []
        for msg in batch:
            self.sent.append(msg)
            verdict = self._handler(msg)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if isinstance(verdict, Outcome):
                self._ids += 1
                pid = f"{self.name}-{self._ids}" if verdict is Outcome.ACCEPTED else ""
                verdict = self.result(msg, verdict.value, verdict.value, provider_message_id=pid, outcome=verdict)
            results.append(verdict)
        return results
