"""What a recipient reaches from a message, and opt-outs recorded by staff.

Public (no token): ``GET /p/{policy_id}?d=<delivery>`` shows the policy and, for a known
delivery id, "why you got this" with the 有用 / 不相关 / 已申报 / 退订 buttons;
``POST /p/{policy_id}/feedback`` records the button (form fields ``d`` and ``kind``);
``GET /s/{code}`` is where the SMS short link lands.  None of them shows who the recipient is.

Token: ``POST /api/v1/opt-outs`` for staff (e.g. an SMS "回复TD" uplink, by phone number).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from policy_push.campaigns import (
    benefit_text,
    find_delivery,
    recipient_context,
    record_feedback,
    record_opt_out,
)
from policy_push.errors import InvalidInput, NotFound
from policy_push.statuses import FeedbackKind
from policy_push.storage import PolicyRepository, contacts, profile_repository

from ..bodies import json_response, read_form
from ..keys import cipher_key
from ..pages import render_page
from ._common import staff_member, transaction
from .campaigns import OptOutIn, _body

__all__ = ["FEEDBACK_LABELS", "create_opt_out", "policy_page", "post_feedback", "short_link"]

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
_DELIVERY_RE = re.compile(r"^[A-Za-z0-9-]{1,36}$")


async def _render(request: web.Request, policy_id: str, delivery_id: str, *, thanks: str = "", status: int = 200) -> web.Response:
    async with transaction(request) as session:
        stored = await PolicyRepository(session).get(policy_id)
        if stored is None:
            raise NotFound.of("policy", policy_id, loc=["path", "policy_id"])
        recipient = None
        if delivery_id and _DELIVERY_RE.match(delivery_id):
            recipient = await recipient_context(session, policy_id, delivery_id)
    return render_page(
        "policy_page.html", status=status, policy=stored.policy, benefit=benefit_text(stored.policy),
        recipient=recipient, thanks=thanks, feedback_kinds=list(FEEDBACK_LABELS.items()),
    )  # fmt: skip


async def policy_page(request: web.Request) -> web.Response:
    return await _render(request, request.match_info["policy_id"], request.query.get("d", ""))


async def post_feedback(request: web.Request) -> web.Response:
    policy_id = request.match_info["policy_id"]
    form = await read_form(request)
    delivery_id, kind = form.get("d", ""), form.get("kind", "")
    if not _DELIVERY_RE.match(delivery_id):
        raise InvalidInput("the form needs the delivery id of your message link (d)", loc=["form", "d"])
    if kind not in FEEDBACK_LABELS:
        raise InvalidInput(f"kind must be one of {', '.join(FEEDBACK_LABELS)}", loc=["form", "kind"])
    async with transaction(request) as session:
        await record_feedback(session, policy_id=policy_id, delivery_id=delivery_id, kind=FeedbackKind(kind))
    return await _render(request, policy_id, delivery_id, thanks=_THANKS[kind])


async def short_link(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    async with transaction(request) as session:
        delivery = await find_delivery(session, code) if _DELIVERY_RE.match(code) else None
    if delivery is None:
        raise NotFound("this link is unknown or has expired", loc=["path", "code"])
    raise web.HTTPFound(f"/p/{delivery.policy_id}?d={delivery.id}")


async def create_opt_out(request: web.Request) -> web.Response:
    actor = staff_member(request)
    body: OptOutIn = await _body(request, OptOutIn)
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
