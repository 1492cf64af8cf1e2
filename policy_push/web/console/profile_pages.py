"""Profile look-up: by credit code (an enterprise's id), by profile id, or by a phone or ID number typed
in full and matched through its keyed hash — always in a POST body, never in a URL.  It shows the
profile masked, its deliveries and its feedback; an admin may reveal the full values (audited)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from sqlalchemy import select

from policy_push.errors import InvalidInput, NotFound
from policy_push.security.masking import mask_profile_json
from policy_push.staff import Role
from policy_push.storage import AuditLog, profile_repository
from policy_push.storage.campaign_tables import DeliveryRow, FeedbackRow

from ..auth import current_principal
from ..keys import cipher_key
from ..views._common import staff_member, transaction
from .labels import CHANNEL_LABELS, STATUS_LABELS, mask_name
from .render import console_page, posted

__all__ = ["profile_lookup", "profile_reveal", "profile_search"]

_PHONE = re.compile(r"^1\d{10}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
_KINDS = ("enterprise", "resident")


async def profile_lookup(request: web.Request) -> web.Response:
    return await console_page(request, "console_profiles.html", title="档案查询", found=[], searched=False, error="")


async def _find(session: Any, cipher: Any, raw: str) -> list[tuple[str, str]]:
    """(kind, id) of the profiles the typed value names."""
    value = raw.strip().replace(" ", "")
    if _ID_NUMBER.match(value):
        rid = await profile_repository("resident", session, cipher).find_by_id_number(value.upper())
        if rid:
            return [("resident", rid)]
    if _PHONE.match(value):
        out = []
        for kind in _KINDS:
            out += [(kind, pid) for pid in await profile_repository(kind, session, cipher).find_by_phone(value)]
        return out
    return [(kind, value) for kind in _KINDS if await profile_repository(kind, session, cipher).get(value) is not None]


async def _card(session: Any, cipher: Any, kind: str, pid: str, *, reveal: bool) -> dict[str, Any]:
    stored = await profile_repository(kind, session, cipher).get(pid)
    if stored is None:
        raise NotFound.of(kind, pid)
    doc = stored.to_json() if hasattr(stored, "to_json") else stored.model_dump(mode="json")
    shown = doc if reveal else mask_profile_json(doc)
    if kind == "resident" and not reveal:
        shown["name"] = mask_name(shown.get("name"))
    deliveries = (await session.execute(
        select(DeliveryRow.policy_id, DeliveryRow.channel, DeliveryRow.status, DeliveryRow.sent_at, DeliveryRow.purpose)
        .where(DeliveryRow.profile_kind == kind, DeliveryRow.profile_id == pid).order_by(DeliveryRow.created_at.desc())
        .limit(50)
    )).all()  # fmt: skip
    feedback = (await session.execute(
        select(FeedbackRow.policy_id, FeedbackRow.kind, FeedbackRow.at)
        .where(FeedbackRow.profile_kind == kind, FeedbackRow.profile_id == pid).order_by(FeedbackRow.at.desc()).limit(50)
    )).all()  # fmt: skip
    return {"kind": kind, "id": pid, "doc": shown, "revealed": reveal,
            "deliveries": [{"policy_id": d.policy_id, "channel": CHANNEL_LABELS.get(d.channel, d.channel),
                            "status": STATUS_LABELS.get(d.status, d.status), "sent_at": d.sent_at, "purpose": d.purpose}
                           for d in deliveries],
            "feedback": [dict(f._mapping) for f in feedback]}  # fmt: skip


async def profile_search(request: web.Request) -> web.Response:
    raw = str((await posted(request)).get("q", ""))[:64]
    if not raw.strip():
        return await console_page(request, "console_profiles.html", status=422, title="档案查询", found=[],
                                  searched=False, error="请输入统一社会信用代码、档案编号、手机号或身份证号")  # fmt: skip
    cipher = request.app[cipher_key]
    async with transaction(request) as session:
        cards = [await _card(session, cipher, kind, pid, reveal=False) for kind, pid in await _find(session, cipher, raw)]
        await AuditLog(session).record(actor=staff_member(request), action="profile.lookup", entity_type="profile",
                                       entity_id="-", detail={"found": len(cards)})  # fmt: skip
    return await console_page(request, "console_profiles.html", title="档案查询", found=cards, searched=True, error="",
                              is_admin=current_principal(request).role.allows(Role.ADMIN))  # fmt: skip


async def profile_reveal(request: web.Request) -> web.Response:
    """Admins only (the routes table says so): the full values of one profile, recorded in the audit log."""
    kind, pid = request.match_info["kind"], request.match_info["id"]
    if kind not in _KINDS:
        raise InvalidInput("kind must be enterprise or resident", loc=["path", "kind"])
    cipher = request.app[cipher_key]
    async with transaction(request) as session:
        card = await _card(session, cipher, kind, pid, reveal=True)
        await AuditLog(session).record(actor=staff_member(request), action="profile.reveal", entity_type=kind,
                                       entity_id=pid, detail={"why": str((await posted(request)).get("why", ""))[:200]})  # fmt: skip
    return await console_page(request, "console_profiles.html", title="档案（完整信息）", found=[card], searched=True,
                              error="", is_admin=True)  # fmt: skip
