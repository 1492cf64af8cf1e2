"""Binding a WeChat openid to an account: a signed, expiring link sent by SMS to the proven phone.

1. ``POST /api/v1/me/wechat`` (or the page's button): an SMS goes to the account's proven phone with the
   link ``https://s.pj.gov.cn/w/<code>`` (the approved template fixes everything but the code: SMS
   providers refuse URLs in template variables; the short-link host forwards ``/w/<code>`` to
   ``PUBLIC_BASE_URL/me/wechat/bind/<code>``). The code is 12 random bytes and an 8-byte HMAC of them
   (key derived from the PII key): a forged one is refused without a look-up. Its keyed hash is stored
   as a ``subscriber_codes`` row of the phone (``sent = "bind_link"``), so it expires (30 minutes),
   works once, and counts towards the phone's SMS limits like a sign-in code.
2. Opened inside WeChat, that page sends the person to WeChat's web authorisation (snsapi_base) with
   the code as ``state``; WeChat sends them back to ``/me/wechat/callback`` with its own one-time code.
3. The service exchanges that for the openid at WeChat (``/sns/oauth2/access_token``): the openid comes
   from WeChat itself, so nobody can bind another person's openid by typing it in. An openid bound to
   another active account is refused. The openid is stored encrypted on the account and put on the
   profiles it owns, which may then be messaged on WeChat (``policy_push.reach``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import os
import uuid
from urllib.parse import quote, urlencode

import aiohttp
from sqlalchemy import select, update

from channels import OutboundMessage, Outcome, Router
from policy_push.errors import Conflict, InvalidInput, NotAllowed
from policy_push.sending.providers import endpoints
from policy_push.storage import AuditLog, profile_repository
from policy_push.storage.subscriber_tables import SubscriberAccountRow, SubscriberCodeRow

from .accounts import Accounts
from .codes import BIND_LINK, CodeLimits, mark_sent, reserve_code
from .sms import BIND_TEMPLATE

__all__ = ["BIND_SENT", "BIND_TTL", "WechatBinding"]

BIND_TTL = dt.timedelta(minutes=30)
#: ``subscriber_codes.sent`` of a binding link the provider accepted (sign-in looks only at "sent")
BIND_SENT = BIND_LINK
_a = SubscriberAccountRow.__table__.c  # type: ignore[attr-defined]
_c = SubscriberCodeRow.__table__.c  # type: ignore[attr-defined]
_INVALID = "this binding link is not valid, was used already or has expired (30 minutes); ask for a new one"


class WechatBinding:
    def __init__(self, accounts: Accounts, router: Router, http: aiohttp.ClientSession, limits: CodeLimits) -> None:
        self.accounts = accounts
        self.router = router
        self.http = http
        self.limits = limits
        self.settings = accounts.runtime.settings
        self._key = bytes.fromhex(accounts.cipher.lookup_hash("wechat-bind/v1", "signing-key"))

    def _base(self) -> str:
        s = self.settings
        return (s.public_base_url or f"http://{s.host}:{s.port}").rstrip("/")

    # ---- the code ---------------------------------------------------------------------------------------
    def new_code(self) -> str:
        body = os.urandom(12)
        return base64.urlsafe_b64encode(body + hmac.digest(self._key, body, "sha256")[:8]).decode().rstrip("=")

    def well_formed(self, code: str) -> bool:
        """Does the code carry our signature? (no database needed to refuse a forged one)"""
        try:
            raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)) if 0 < len(code) <= 40 else b""
        except (binascii.Error, ValueError):
            return False
        return len(raw) == 20 and hmac.compare_digest(hmac.digest(self._key, raw[:12], "sha256")[:8], raw[12:])

    def _hash(self, code: str) -> str:
        return self.accounts.cipher.lookup_hash("wechat_bind", code)

    async def account_of(self, code: str, now: dt.datetime) -> str:
        """The active account a live, unused binding code was sent to; one refusal for every other case."""
        if not self.well_formed(code):
            raise NotAllowed(_INVALID, loc=["path", "code"])
        async with self.accounts.runtime.sessions() as s:
            account = await s.scalar(
                select(_a.id).join_from(SubscriberCodeRow, SubscriberAccountRow, _a.phone_hash == _c.phone_hash).where(
                    _c.code_hash == self._hash(code), _c.sent == BIND_SENT, _c.used_at.is_(None), _c.expires_at > now,
                    _a.state == "active")
            )  # fmt: skip
        if account is None:
            raise NotAllowed(_INVALID, loc=["path", "code"])
        return str(account)

    # ---- 1: the SMS -------------------------------------------------------------------------------------
    async def send_link(self, account_id: str, client_hash: str) -> None:
        now = dt.datetime.now(dt.UTC)
        async with self.accounts.runtime.sessions() as s:
            phone = await self.accounts.phone_of(s, account_id)
        phone_hash = self.accounts.phone_hash(phone)
        code = self.new_code()
        # the slot is taken (counted and written) before the SMS goes: two racing requests cannot both pass
        async with self.accounts.runtime.sessions() as s, s.begin():
            row_id = await reserve_code(s, phone_hash=phone_hash, client_hash=client_hash, code_hash=self._hash(code), now=now,
                                        expires_at=now + BIND_TTL, limits=self.limits, purpose="bind")  # fmt: skip
        msg = OutboundMessage(delivery_id=uuid.uuid4().hex, recipient=phone, template=BIND_TEMPLATE,
                              params={"link": f"w/{code}", "minutes": str(int(BIND_TTL.total_seconds() // 60))})  # fmt: skip
        [result] = await self.router.send("sms", [msg])
        sent = BIND_SENT if result.outcome is Outcome.ACCEPTED else (result.code or result.outcome.value)[:64]
        async with self.accounts.runtime.sessions() as s, s.begin():
            await mark_sent(s, row_id, sent)

    # ---- 2: to WeChat -------------------------------------------------------------------------------------
    def authorize_url(self, token: str) -> str:
        appid = endpoints(self.settings).wechat_app[0]
        query = urlencode({"appid": appid, "redirect_uri": f"{self._base()}/me/wechat/callback", "response_type": "code",
                           "scope": "snsapi_base", "state": token}, quote_via=quote)  # fmt: skip
        return f"{self.settings.wechat_oauth_url.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"

    # ---- 3: back from WeChat ---------------------------------------------------------------------------------
    async def _openid(self, code: str) -> str:
        e = endpoints(self.settings)
        params = {"appid": e.wechat_app[0], "secret": e.wechat_app[1], "code": code, "grant_type": "authorization_code"}
        async with self.http.get(f"{e.wechat_url.rstrip('/')}/sns/oauth2/access_token", params=params,
                                 timeout=aiohttp.ClientTimeout(total=self.settings.provider_timeout_s)) as resp:
            body = await resp.json(content_type=None)
        openid = body.get("openid") if isinstance(body, dict) else None
        if not isinstance(openid, str) or not openid:
            raise NotAllowed("WeChat did not confirm who you are; open the binding link in WeChat again", loc=["query", "code"])
        return openid

    async def complete(self, token: str, code: str) -> str:
        """Bind the openid WeChat names for ``code`` to the account the binding ``token`` was sent to."""
        if not code or len(code) > 128:
            raise InvalidInput("WeChat sent no authorisation code; open the binding link in WeChat again", loc=["query", "code"])
        now = dt.datetime.now(dt.UTC)
        account_id = await self.account_of(token, now)
        openid = await self._openid(code)
        cipher = self.accounts.cipher
        digest = cipher.lookup_hash("wechat_openid", openid)
        async with self.accounts.runtime.sessions() as s, s.begin():
            other = await s.scalar(select(_a.id).where(_a.wechat_openid_hash == digest, _a.id != account_id, _a.state == "active"))
            if other is not None:
                raise Conflict("this WeChat account is bound to another person's account already", loc=["query", "code"])
            used = await s.execute(update(SubscriberCodeRow.__table__).where(_c.code_hash == self._hash(token), _c.used_at.is_(None))
                                   .values(used_at=now))  # fmt: skip
            if not getattr(used, "rowcount", 0):  # a second tab won the race
                raise NotAllowed(_INVALID, loc=["query", "state"])
            await s.execute(update(SubscriberAccountRow.__table__).where(_a.id == account_id).values(
                wechat_openid_enc=cipher.encrypt("wechat_openid", openid), wechat_openid_hash=digest, wechat_bound_at=now,
                updated_at=now))  # fmt: skip
            await AuditLog(s).record(actor=f"subscriber:{account_id}", action="subscriber.wechat_bound", entity_type="subscriber",
                                     entity_id=account_id)  # fmt: skip
            owned = [x for x in await self.accounts.links(s, account_id) if x.role == "owner" and x.state == "active"]
        for link in owned:
            async with self.accounts.runtime.sessions() as s:
                profile = await profile_repository(link.profile_kind, s, cipher).get(link.profile_id)
            if profile is None:
                continue
            record = profile.to_json()
            record["contact"] = {**(record.get("contact") or {}), "wechat_openid": openid}
            await self.accounts.service.put_profile(link.profile_kind, link.profile_id, record, actor=f"subscriber:{account_id}")
        return account_id
