"""A per-client limit on link look-ups: an 8-character SMS code is unguessable only while guessing is slow.

A fixed one-minute window per client address, kept in this process (each node limits on its own; a
guesser spread over N nodes gets N times the rate, still ~10^11 years for half the code space at the
default 30 a minute).  The table is bounded: past ``max_clients`` addresses the oldest windows go.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from aiohttp import web

from policy_push.errors import TooManyRequests

__all__ = ["Throttle"]


class Throttle:
    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def check(self, request: web.Request, *, now: float | None = None) -> None:
        """Count one look-up by the request's client; :class:`TooManyRequests` past the limit."""
        client = request.remote or "-"
        minute = int((time.monotonic() if now is None else now) // 60)
        start, used = self._windows.pop(client, (minute, 0))
        if start != minute:
            start, used = minute, 0
        used += 1
        self._windows[client] = (start, used)
        while len(self._windows) > self.max_clients:
            self._windows.popitem(last=False)
        if used > self.per_minute:
            raise TooManyRequests(
                f"too many link look-ups from this address; try again in a minute "
                f"(limit {self.per_minute} a minute, POLICY_PUSH_LINK_LOOKUPS_PER_MINUTE)",
                loc=["path"],
            )
