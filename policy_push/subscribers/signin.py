"""Sign-up and sign-in with a one-time SMS code, as one object the web layer holds: ask for a code,
prove it, get a session. A phone that has an account and one that has none get the same answers."""

from __future__ import annotations

import datetime as dt
import hashlib

import aiohttp

from policy_push.errors import InvalidInput, NotAllowed
from policy_push.runtime import Runtime
from policy_push.security.pii import DEMO_PII_KEY
from policy_push.service import Service

from .accounts import Accounts, normalise_phone
from .codes import CODE_TTL, WRONG_CODE, CodeLimits, check_code, code_hash, mark_sent, new_code, reserve_code
from .sessions import CookieSealer, open_session
from .sms import CodeSender
from .wechat_bind import WechatBinding

__all__ = ["Subscribers"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Subscribers:
    """What the /me pages and the /api/v1/me API share."""

    def __init__(self, runtime: Runtime, service: Service, http: aiohttp.ClientSession, *, limits: CodeLimits | None = None) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.accounts = Accounts(runtime, service)
        self.sender = CodeSender(settings, http)
        self.limits = limits or CodeLimits()
        key = settings.pii_key.get_secret_value() if settings.pii_key is not None and settings.pii_key.get_secret_value().strip() else DEMO_PII_KEY
        self.sealer = CookieSealer(key)
        self.wechat = WechatBinding(self.accounts, self.sender.router, http, self.limits)

    def client_hash(self, address: str) -> str:
        # keyed like any personal value: an IP address is one
        return self.runtime.cipher.lookup_hash("client_address", address or "?")

    async def request_code(self, raw_phone: object, client_address: str) -> int:
        """Send a code to the phone (rate limits first); returns its lifetime in seconds. The answer
        is the same for a phone the service knows and one it does not."""
        phone = normalise_phone(raw_phone)
        cipher, now = self.runtime.cipher, _now()
        phone_hash = self.accounts.phone_hash(phone)
        client = self.client_hash(client_address)
        code = new_code()
        # the slot is taken (counted and written) before the SMS goes: two racing requests cannot both pass
        async with self.runtime.sessions() as s, s.begin():
            row_id = await reserve_code(s, phone_hash=phone_hash, client_hash=client, code_hash=code_hash(cipher, phone_hash, code),
                                        now=now, expires_at=now + CODE_TTL, limits=self.limits)  # fmt: skip
        sent = await self.sender.send(phone, code, int(CODE_TTL.total_seconds() // 60))
        async with self.runtime.sessions() as s, s.begin():
            await mark_sent(s, row_id, sent)
        return int(CODE_TTL.total_seconds())

    async def sign_in(self, raw_phone: object, code: object, *, client: str) -> tuple[str, str, dt.datetime, bool]:
        """Prove the code; the phone's account (made now if new) gets a session:
        (account id, session token, expiry, account created)."""
        phone = normalise_phone(raw_phone)
        if not isinstance(code, str):
            raise InvalidInput("code must be the 6 digits of the SMS, as a string", loc=["body", "code"])
        now = _now()
        phone_hash = self.accounts.phone_hash(phone)
        async with self.runtime.sessions() as s, s.begin():
            ok = await check_code(s, self.runtime.cipher, phone_hash=phone_hash, code=code.strip(), now=now, limits=self.limits)
        if not ok:  # the spent attempt is committed above
            # a refused credential (403), not a malformed request: the request was well formed
            raise NotAllowed(WRONG_CODE, loc=["body", "code"])
        async with self.runtime.sessions() as s, s.begin():
            account_id, created = await self.accounts.sign_up_or_in(s, phone, now=now)
            token, expires = await open_session(s, account_id, client=client, now=now)
        return account_id, token, expires, created


def token_fingerprint(token: str) -> str:
    """A short, safe handle of a token for logs (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]
