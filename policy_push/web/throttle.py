"""A per-client limit on link look-ups: an 8-character SMS code is unguessable only while guessing is slow.

A fixed one-minute window per client address.  On PostgreSQL the windows are counted in the database
(:class:`policy_push.storage.rate_windows.SharedWindows`, set as ``shared`` at start), so every ``serve``
process on it draws on one budget; on SQLite (one process) they are kept in memory, bounded: past
``max_clients`` addresses the oldest windows go.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from aiohttp import web

from policy_push.errors import TooManyRequests
from policy_push.storage.rate_windows import SharedWindows

__all__ = ["Throttle"]


class Throttle:
    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.shared: SharedWindows | None = None

    async def check(self, request: web.Request, *, now: float | None = None) -> None:
        """Count one look-up by the request's client; :class:`TooManyRequests` past the limit."""
        client = request.remote or "-"
        if self.shared is not None:
            self._refuse_past(await self.shared.hit("link", client, now=now))
            return
        minute = int((time.monotonic() if now is None else now) // 60)
        start, used = self._windows.pop(client, (minute, 0))
        if start != minute:
            start, used = minute, 0
        used += 1
        self._windows[client] = (start, used)
        while len(self._windows) > self.max_clients:
            self._windows.popitem(last=False)
        self._refuse_past(used)

    def _refuse_past(self, used: int) -> None:
        if used > self.per_minute:
            raise TooManyRequests(
                f"too many link look-ups from this address; try again in a minute "
                f"(limit {self.per_minute} a minute, POLICY_PUSH_LINK_LOOKUPS_PER_MINUTE)",
                loc=["path"],
            )
