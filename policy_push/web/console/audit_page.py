"""The audit log page: newest first, filtered by account or action, with the chain checked on demand."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from policy_push.staff import StaffDirectory
from policy_push.storage import AuditLog
from policy_push.storage.audit import verify_chain

from ..views._common import transaction
from .labels import names_of
from .render import console_page

__all__ = ["audit_log_page"]

_PAGE = 50
ACTIONS = {
    "login": "登录", "login.failed": "登录失败", "logout": "退出", "policy": "政策变更", "campaign": "推送任务",
    "campaign.approve": "审批", "campaign.exclude": "排除", "profile.reveal": "查看完整信息", "export": "导出",
    "token": "API 令牌", "staff": "账号管理", "review": "政策审核",
}  # fmt: skip


async def audit_log_page(request: web.Request) -> web.Response:
    q = request.query
    action = q.get("action") if q.get("action") in ACTIONS else None
    actor_name = (q.get("actor") or "").strip()[:64] or None
    offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
    async with transaction(request) as session:
        actor = None
        if actor_name:
            found = await StaffDirectory(session).by_name(actor_name)
            actor = found.id if found else actor_name
        entries = await AuditLog(session).list(actor=actor, action=action, limit=_PAGE, offset=offset)
        people = await names_of(session, {e.actor for e in entries})
        chain = await verify_chain(session) if q.get("verify") == "1" else None
    base = {k: v for k, v in (("action", action), ("actor", actor_name)) if v}
    return await console_page(
        request, "console_audit.html", title="审计日志", entries=entries, people=people, actions=ACTIONS,
        action=action or "", actor=actor_name or "", chain=chain, offset=offset, page=_PAGE,
        prev_q=urlencode({**base, "offset": max(0, offset - _PAGE)}), next_q=urlencode({**base, "offset": offset + _PAGE}),
    )  # fmt: skip
