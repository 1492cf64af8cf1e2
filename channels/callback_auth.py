"""Authenticating the providers' pushes to our callback URLs.

* WeChat signs every push: ``signature`` (plain mode) or ``msg_signature`` (safe mode), with a
  timestamp; ``channels.wechat_events.open_wechat_push`` checks both and the time window.
* Aliyun (SmsReport, SmsUp) and Tencent (status and reply callbacks) sign nothing. What protects
  those endpoints is a secret path segment, long and random, configured on the provider's console
  and compared in constant time (``secret_path_matches``), plus, where the operator knows the
  provider's egress ranges, a source allow-list (``SourceAllowList``). The application answers
  404 for a wrong secret (the URL does not exist as far as a prober can tell) and 403 for a source
  outside the list. The secret never appears in logs: log the route name, not the path.
* A signed push can still be replayed inside its timestamp window: ``ReplayGuard`` remembers the
  signed requests already applied for that window, so the same one is not applied again.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ReplayGuard", "SourceAllowList", "new_callback_secret", "secret_path_matches"]

_MIN_SECRET_CHARS = 24


def new_callback_secret() -> str:
    """A fresh secret for a callback path: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def secret_path_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of the secret path segment; a short or empty secret never matches."""
    if len(expected) < _MIN_SECRET_CHARS:
        return False
    return hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass(frozen=True, slots=True)
class SourceAllowList:
    """Networks a provider's pushes may come from; empty means "any source" (rely on the secret)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str]) -> SourceAllowList:
        """From ``"203.0.113.0/24"``-style strings; a bad entry raises ``ValueError`` naming it."""
        nets = []
        for item in items:
            item = item.strip()
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"not an IP network: {item!r}") from exc
        return cls(tuple(nets))

    def allows(self, address: str | None) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


class ReplayGuard:
    """Signed WeChat pushes already applied, remembered for the time window: the same signed request
    again is not applied again. Bounded: the oldest are forgotten first (the window refuses them anyway)."""

    def __init__(self, window_s: float, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def _forget_old(self) -> None:
        horizon = self._clock() - 2 * self.window_s
        while self._seen and (len(self._seen) > self.max_entries or next(iter(self._seen.values())) < horizon):
            self._seen.popitem(last=False)

    def seen(self, key: tuple[str, str, str]) -> bool:
        self._forget_old()
        return key in self._seen

    def remember(self, key: tuple[str, str, str]) -> None:
        self._seen[key] = self._clock()
        self._forget_old()
