"""What every HTTP provider adapter holds and does alike: its configuration, the caller's session, a rate
limiter, the request timeout, and one JSON exchange with the provider's errors translated."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from channels.base import Channel
from channels.errors import ProviderServerError, provider_errors
from channels.rate_limit import Limiter, RateLimit

__all__ = ["HttpChannel"]


class _HttpConfig(Protocol):
    @property
    def rate(self) -> RateLimit: ...

    @property
    def timeout_s(self) -> float: ...


_C = TypeVar("_C", bound=_HttpConfig)


def _below_500(status: int) -> bool:
    return status < 500


class HttpChannel(Channel, Generic[_C]):
    """A ``Channel`` that speaks HTTP. ``now`` is the wall clock the adapter signs and dates requests with."""

    def __init__(
        self, config: _C, session: aiohttp.ClientSession, *, limiter: Limiter | None = None, now: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._session = session  # the caller's: ``close`` leaves it open
        self._limiter = limiter or Limiter(config.rate)
        self._now = now
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)

    async def _post_json(
        self, url: str, *, answered: Callable[[int], bool] = _below_500, **request: Any
    ) -> tuple[Any, int]:
        """POST ``request`` to ``url``; the decoded JSON answer and the HTTP status. A status that
        ``answered`` refuses (default: 5xx) raises ``ProviderServerError``, as do transport troubles."""
        with provider_errors(self.name):
            async with self._session.post(url, timeout=self._timeout, **request) as resp:
                if not answered(resp.status):
                    raise ProviderServerError(f"{self.name}: HTTP {resp.status}", code=f"HTTP_{resp.status}")
                return await resp.json(content_type=None), resp.status
