"""What a recipient reaches from a message, and opt-outs recorded by staff.

Public (no token), all answered with ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``:

- ``GET /s/<code>``: where the SMS short link lands (the code is 8 random characters; look-ups are
  rate-limited per client).  Renders the person's page at once: no redirect, so nothing that opens
  the page ever travels in another URL.
- ``GET /p/<policy_id>?t=<token>``: the page a WeChat or app message links to; the token is signed
  and expires (``security.links``).  A missing, altered or expired token shows the public policy page
  without the personal part, never an error that would tell a guesser anything.
- ``POST /p/<policy_id>/feedback``: 有用 / 不相关 / 已申报 / 退订.  The form carries a freshly signed token
  (never the code or the delivery id), a CSRF token that must equal the page's cookie, and is refused
  when the browser says it comes from another site (``Origin`` / ``Referer``).  退订 asks for a second,
  confirming click.  有用 / 不相关 / 已申报 also teach the ranking (``MatchService.feedback_given``).

None of them shows who the recipient is, and of the reasons only lines that name no sensitive fact.

Token: ``POST /api/v1/opt-outs`` for staff (e.g. an SMS "回复TD" uplink, by phone number).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from policy_push.campaigns import (
    benefit_text,
    delivery_by_code,
    link_expires,
    recipient_context,
    record_feedback,
    record_opt_out,
)
from policy_push.campaigns.feedback import RecipientContext
from policy_push.domain import Policy
from policy_push.errors import InvalidInput, NotAllowed, NotFound
from policy_push.security.links import LinkRejected
from policy_push.statuses import FeedbackKind
from policy_push.storage import contacts, profile_repository
from policy_push.storage.deliveries import Delivery

from ..bodies import json_response, read_form, read_model
from ..keys import cipher_key, link_signer_key, link_throttle_key, match_service_key, settings_key
from ..pages import render_page
from ._common import staff_member, stored_policy, transaction
from .campaigns import OptOutIn

__all__ = ["CSRF_COOKIE", "FEEDBACK_LABELS", "create_opt_out", "policy_page", "post_feedback", "short_link"]

log = logging.getLogger("policy_push.web")

FEEDBACK_LABELS = {
    FeedbackKind.USEFUL.value: "有用",
    FeedbackKind.IRRELEVANT.value: "不相关",
    FeedbackKind.APPLIED.value: "已申报",
    FeedbackKind.UNSUBSCRIBE.value: "退订",
}
_THANKS = {
    FeedbackKind.USEFUL.value: "感谢反馈！",
    FeedbackKind.IRRELEVANT.value: "已记录：此政策与您无关，我们会改进推送。",
    FeedbackKind.APPLIED.value: "已记录：您已申报，不再提醒截止日期。",
    FeedbackKind.UNSUBSCRIBE.value: "已退订，您不会再收到政策推送。",
}
#: the double-submit cookie of the feedback form (SameSite=Strict: a cross-site form never carries it)
CSRF_COOKIE = "pp_link_csrf"
_CODE_RE = re.compile(r"^[A-Za-z0-9]{1,8}$")
_PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _policy(request: web.Request, policy_id: str) -> Policy:
    return (await stored_policy(request, policy_id, loc=["path", "policy_id"])).policy


def _ttl(request: web.Request) -> dt.timedelta:
    return dt.timedelta(days=request.app[settings_key].link_ttl_days)


async def _by_code(request: web.Request, code: str) -> Delivery | None:
    if not _CODE_RE.match(code):
        return None
    async with transaction(request) as session:
        return await delivery_by_code(session, code, ttl=_ttl(request), now=_now())


async def _by_token(request: web.Request, token: str) -> Delivery | None:
    try:
        code = request.app[link_signer_key].verify(token, now=_now())
    except LinkRejected:
        return None
    return await _by_code(request, code)


def _render(
    request: web.Request, policy: Policy, recipient: RecipientContext | None, *, thanks: str = "",
    confirm: str = "", expired: bool = False, status: int = 200,
) -> web.Response:  # fmt: skip
    form: dict[str, str] = {}
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", csrf):
        csrf = secrets.token_urlsafe(32)
    if recipient is not None:
        d = recipient.delivery
        # the form's token: signed now, valid as long as the link itself
        token = request.app[link_signer_key].sign(d.link_code or "", now=_now(), expires=link_expires(d, _ttl(request)))
        form = {"t": token, "csrf": csrf}
    response = render_page(
        "policy_page.html", status=status, policy=policy, benefit=benefit_text(policy), recipient=recipient,
        thanks=thanks, feedback_kinds=list(FEEDBACK_LABELS.items()), form=form, confirm=confirm, expired=expired,
        confirm_label=FEEDBACK_LABELS.get(confirm, ""),
    )  # fmt: skip
    response.headers.update(_PRIVATE_HEADERS)
    if form:
        secure = request.secure or request.app[settings_key].public_base_url.startswith("https://")
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Strict", secure=secure, path="/",
                            max_age=int(_ttl(request).total_seconds()))
    return response


async def _context(request: web.Request, policy: Policy, delivery: Delivery | None) -> RecipientContext | None:
    if delivery is None:
        return None
    async with transaction(request) as session:
        return await recipient_context(session, policy, delivery)


async def policy_page(request: web.Request) -> web.Response:
    policy = await _policy(request, request.match_info["policy_id"])
    token = request.query.get("t", "")
    delivery = await _by_token(request, token) if token else None
    recipient = await _context(request, policy, delivery)
    return _render(request, policy, recipient, expired=bool(token) and recipient is None)


async def short_link(request: web.Request) -> web.StreamResponse:
    await request.app[link_throttle_key].check(request)
    delivery = await _by_code(request, request.match_info["code"])
    if delivery is None:
        raise NotFound("this link is unknown or has expired", loc=["path", "code"])
    policy = await _policy(request, delivery.policy_id)
    return _render(request, policy, await _context(request, policy, delivery))


def _same_origin(request: web.Request) -> bool:
    """False when the browser says the form comes from another site (Origin, else Referer)."""
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if not claimed:
        return True  # no browser claim (curl, an old browser): the CSRF token still has to match
    if claimed == "null":
        return False
    parts = urlsplit(claimed)
    ours = {request.host.lower()}
    public = request.app[settings_key].public_base_url
    if public:
        ours.add(urlsplit(public).netloc.lower())
    return parts.netloc.lower() in ours


async def post_feedback(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise NotAllowed("this form may only be sent from this site's own page", loc=["header", "Origin"])
    await request.app[link_throttle_key].check(request)
    policy_id = request.match_info["policy_id"]
    form = await read_form(request)
    token, kind, csrf = form.get("t", ""), form.get("kind", ""), form.get("csrf", "")
    if kind not in FEEDBACK_LABELS:
        raise InvalidInput(f"kind must be one of {', '.join(FEEDBACK_LABELS)}", loc=["form", "kind"])
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not csrf or not cookie or not hmac.compare_digest(csrf.encode(), cookie.encode()):
        raise NotAllowed("the form has expired or was not sent from this site; open the link in your message again",
                         loc=["form", "csrf"])
    policy = await _policy(request, policy_id)
    delivery = await _by_token(request, token) if token else None
    if delivery is None or delivery.policy_id != policy_id:
        raise NotFound("this link is unknown or has expired; open the link in your message again", loc=["form", "t"])
    if kind == FeedbackKind.UNSUBSCRIBE.value and form.get("confirm") != "yes":
        # a forwarded message must not unsubscribe anyone with one tap: ask once more
        return _render(request, policy, await _context(request, policy, delivery), confirm=kind)
    async with transaction(request) as session:
        created = await record_feedback(session, delivery=delivery, kind=FeedbackKind(kind))
    if created:
        await _teach(request, delivery, kind)
    return _render(request, policy, await _context(request, policy, delivery), thanks=_THANKS[kind])


async def _teach(request: web.Request, delivery: Delivery, kind: str) -> None:
    service = request.app.get(match_service_key)
    if service is None:
        return
    try:
        await service.feedback_given(delivery.profile_kind, delivery.profile_id, delivery.policy_id, kind)
    except Exception as exc:  # recorded already; the ranking learns it again at the next start
        log.warning("feedback not applied to the match index: %s", type(exc).__name__)


async def create_opt_out(request: web.Request) -> web.Response:
    actor = staff_member(request)
    body: OptOutIn = await read_model(request, OptOutIn)
    targets: list[tuple[str, str]] = []
    async with transaction(request) as session:
        if body.profile_id is not None:
            if body.profile_kind is None or body.phone is not None:
                raise InvalidInput("give profile_kind with profile_id, or phone alone", loc=["body"])
            if not await contacts.profile_exists(session, body.profile_kind, body.profile_id):
                raise NotFound.of(body.profile_kind, body.profile_id, loc=["body", "profile_id"])
            targets.append((body.profile_kind, body.profile_id))
        elif body.phone is not None:
            for kind in contacts.PROFILE_KINDS:
                targets += [(kind, pid) for pid in await profile_repository(kind, session, request.app[cipher_key]).find_by_phone(body.phone)]
            if not targets:
                raise NotFound("no profile is registered with this phone number", loc=["body", "phone"])
        else:
            raise InvalidInput("give profile_kind and profile_id, or phone", loc=["body"])
        out: list[dict[str, Any]] = []
        for kind, pid in targets:
            created = await record_opt_out(
                session, profile_kind=kind, profile_id=pid, channel=body.channel, source=body.source, actor=actor
            )
            out.append({"profile_kind": kind, "profile_id": pid, "channel": body.channel, "created": created})
    return json_response({"opted_out": out}, status=201 if any(o["created"] for o in out) else 200)
