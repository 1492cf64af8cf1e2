"""What people sent back, and who asks to join an enterprise: the inbound messages (SMS replies, WeChat
follows, unfollows and messages; opt-outs among them already took effect) and the pending second
contacts, which staff approve or refuse when the enterprise has no owner to (or the owner is slow).

Senders are masked, and phones, ID numbers and openids typed into a free-text reply too."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from policy_push.errors import InvalidInput, PolicyPushError
from policy_push.logs import mask_personal
from policy_push.staff import Role
from policy_push.statuses import InboundKind
from policy_push.storage import inbound as inbound_store

from ..auth import current_principal
from ..keys import cipher_key, subscribers_key
from ..views._common import staff_member, transaction
from .labels import CHANNEL_LABELS
from .render import console_page, error_page, posted

__all__ = ["CONTACT_DECIDER", "contact_decide", "contacts_page", "inbound_page"]

#: the least role that approves or refuses a second contact, on the page and through the API alike
CONTACT_DECIDER = Role.EDITOR

_PAGE = 50
KIND_LABELS = {
    InboundKind.OPT_OUT.value: "退订（已生效）", InboundKind.MESSAGE.value: "回复", InboundKind.FOLLOW.value: "关注",
    InboundKind.UNFOLLOW.value: "取消关注（已生效）", InboundKind.SUBSCRIPTION.value: "订阅消息授权",
}  # fmt: skip
PROVIDER_LABELS = {"aliyun_sms": "阿里云短信", "tencent_sms": "腾讯云短信", "wechat": "微信公众号"}


async def inbound_page(request: web.Request) -> web.Response:
    q = request.query
    kind = q.get("kind") if q.get("kind") in KIND_LABELS else None
    offset = int(q["offset"]) if q.get("offset", "").isdigit() and len(q["offset"]) < 9 else 0
    async with transaction(request) as session:
        items, total = await inbound_store.listed(session, request.app[cipher_key], kind=InboundKind(kind) if kind else None,
                                                  limit=_PAGE, offset=offset)  # fmt: skip
    for item in items:
        item["text"] = mask_personal(item["text"])  # the one free-text masking rule, as in the logs
    base = {"kind": kind} if kind else {}
    return await console_page(
        request, "console_inbound.html", title="收到的回复", items=items, total=total, kind=kind or "",
        kinds=KIND_LABELS, providers=PROVIDER_LABELS, channels=CHANNEL_LABELS, offset=offset, page=_PAGE,
        prev_q=urlencode({**base, "offset": max(0, offset - _PAGE)}), next_q=urlencode({**base, "offset": offset + _PAGE}),
    )  # fmt: skip


async def contacts_page(request: web.Request) -> web.Response:
    async with transaction(request) as session:
        items = await request.app[subscribers_key].accounts.pending_all(session)
    done = request.query.get("done", "")
    principal = current_principal(request)
    return await console_page(request, "console_contacts.html", title="待审批的企业联系人", items=items,
                              done=done if done in ("approved", "refused") else "",
                              can_decide=principal.role.allows(CONTACT_DECIDER))  # fmt: skip


async def contact_decide(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)
    await posted(request)  # an unreadable body is the request's fault: the JSON error answers it
    raw, decision = request.match_info["id"], request.match_info["decision"]
    try:
        if not raw.isdigit() or len(raw) > 18:
            raise InvalidInput("联系人申请编号应为数字", loc=["path", "id"])
        if decision not in ("approve", "refuse"):
            raise InvalidInput("只能批准（approve）或拒绝（refuse）", loc=["path", "decision"])
        async with transaction(request) as session:
            await request.app[subscribers_key].accounts.decide(session, int(raw), approve=decision == "approve",
                                                              by_account=None, staff=actor)  # fmt: skip
    except PolicyPushError as exc:
        return await error_page(request, exc)
    raise web.HTTPSeeOther("/staff/contacts?done=" + ("approved" if decision == "approve" else "refused"))
