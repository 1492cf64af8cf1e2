"""Rendering a console page: the layout's context (who is logged in, the CSRF token, the menu), and
errors as pages rather than JSON for a person at a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from policy_push.errors import PolicyPushError
from policy_push.staff import ROLE_LABELS, Role

from ..auth import csrf_token, maybe_principal
from ..bodies import read_form
from ..middlewares import status_of
from ..pages import render_page

__all__ = ["MENU", "console_page", "error_page", "posted", "static_file"]

#: (path, label, least role)
MENU = (
    ("/staff", "总览", Role.VIEWER),
    ("/staff/campaigns", "推送任务", Role.VIEWER),
    ("/staff/policies", "政策", Role.VIEWER),
    ("/staff/review", "待审核", Role.VIEWER),
    ("/staff/profiles", "档案查询", Role.VIEWER),
    ("/staff/inbound", "收到的回复", Role.VIEWER),
    ("/staff/contacts", "联系人审批", Role.VIEWER),
    ("/staff/audit", "审计日志", Role.VIEWER),
)


async def console_page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    principal = maybe_principal(request)
    session = await get_session(request)
    menu = [(p, label) for p, label, role in MENU if principal is not None and principal.role.allows(role)]
    return render_page(
        template, status=status, me=principal, role_label=ROLE_LABELS.get(principal.role) if principal else "",
        csrf=csrf_token(session), menu=menu, here=request.path, **context,
    )  # fmt: skip


async def posted(request: web.Request) -> Any:
    """The form of a console POST: read first through ``read_form`` (bounded in size and time; a broken
    multipart body is a 400, another content type a 415), then as aiohttp's multidict (repeated fields
    such as ticked ``profile_id`` boxes, and uploaded files), from the body already read."""
    await read_form(request)
    return await request.post()


async def error_page(request: web.Request, exc: PolicyPushError, *, title: str = "操作未完成") -> web.Response:
    return await console_page(request, "console_error.html", status=status_of(exc), title=title, message=exc.msg)


_STATIC = Path(__file__).resolve().parent.parent / "static"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".txt": "text/plain"}


async def static_file(request: web.Request) -> web.StreamResponse:
    """The console's CSS and its one small script (files shipped in the package; names checked)."""
    name = request.match_info["name"]
    path = _STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(
        body=path.read_bytes(), content_type=_TYPES[path.suffix], charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )  # fmt: skip
