"""Signed, expiring tokens for the links in people's messages (issue 10, "people's links").

A message used to link to ``/p/<policy>?d=<delivery id>``: an unsigned id that never expired and was
also the SMS short code and the unsubscribe credential.  Now:

- a WeChat or app message links to ``/p/<policy>?t=<token>``; the token is
  ``<link code>.<expiry>.<mac>``: the delivery's 8-character link code, the expiry as base-36 Unix
  seconds, and 16 characters (96 bits) of HMAC-SHA256 over both.  Changing any character, or using it
  after the expiry, fails the check; the key is ``POLICY_PUSH_LINK_KEY`` or, when that is empty, a
  subkey HKDF-derived from the PII key (never the PII key itself);
- an SMS carries only the code (``/s/<code>``, 8 characters: one billed segment needs every
  character).  A code is random (55^8 ≈ 8·10^13), expires with the delivery's link age, and look-ups
  are rate-limited per client address, so it cannot be found by guessing;
- every form on a person's page posts a freshly signed token (never the code or the delivery id),
  so the state-changing POST stands on a signature, not on a guessable or forwarded id.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re

from policy_push.config import Settings
from policy_push.errors import ConfigurationError

from .pii import PiiCipher

__all__ = ["LinkRejected", "LinkSigner"]

_MAC_CHARS = 16
_TOKEN_RE = re.compile(r"^([A-Za-z0-9]{1,8})\.([0-9a-z]{1,8})\.([A-Za-z0-9_-]{16})$")


class LinkRejected(Exception):
    """A link token that is malformed, altered or expired; ``reason`` says which (never shown verbatim
    to the public: every rejected link gets the same page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


class LinkSigner:
    """Signs and checks link tokens with one key; ``ttl`` is how long a new token stays valid."""

    def __init__(self, key: bytes, ttl: dt.timedelta) -> None:
        if len(key) < 16:
            raise ConfigurationError("the link key must be at least 16 bytes")
        self._key = key
        self.ttl = ttl

    @classmethod
    def from_settings(cls, settings: Settings, cipher: PiiCipher) -> LinkSigner:
        ttl = dt.timedelta(days=settings.link_ttl_days)
        given = settings.link_key.get_secret_value().strip() if settings.link_key is not None else ""
        if not given:
            return cls(cipher.link_key, ttl)
        try:
            raw = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError("POLICY_PUSH_LINK_KEY is not valid base64; create one with `policy-push keygen`") from None
        if len(raw) != 32:
            raise ConfigurationError(f"POLICY_PUSH_LINK_KEY decodes to {len(raw)} bytes; it must be base64 of 32 bytes")
        return cls(raw, ttl)

    def _mac(self, payload: str) -> str:
        digest = hmac.digest(self._key, payload.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]

    def sign(self, code: str, *, now: dt.datetime, expires: dt.datetime | None = None) -> str:
        """A token for ``code`` valid until ``expires`` (default ``now + ttl``)."""
        until = expires or now + self.ttl
        payload = f"{code}.{_b36(int(until.timestamp()))}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, *, now: dt.datetime) -> str:
        """The link code a token stands for; :class:`LinkRejected` when it is malformed, altered or expired."""
        m = _TOKEN_RE.match(token)
        if m is None:
            raise LinkRejected("malformed")
        code, expiry, mac = m.groups()
        if not hmac.compare_digest(mac, self._mac(f"{code}.{expiry}")):
            raise LinkRejected("bad signature")
        if int(expiry, 36) < now.timestamp():
            raise LinkRejected("expired")
        return code
