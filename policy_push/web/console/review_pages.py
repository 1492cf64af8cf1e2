"""The review queue in the console (issue 14): texts pasted here or fetched from the sources wait
for a person; each suggestion is shown beside the sentence it came from, to accept, edit or reject;
nothing becomes a policy until someone confirms, and the audit log names who confirmed what."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from policy_push.errors import InvalidInput, PolicyPushError
from policy_push.intake.review import ReviewQueue

from ..keys import service_key
from ..views._common import staff_member, transaction
from ..views.review import SuggestIn, _suggest
from .labels import names_of
from .render import console_page, error_page, posted

__all__ = ["review_confirm", "review_create", "review_item", "review_list", "review_reject"]

_STATUS = {"pending": "待审核", "confirmed": "已确认", "rejected": "已驳回"}
_PAGE = 25


async def review_list(request: web.Request, *, error: str = "", status: int = 200, values: dict[str, str] | None = None
                      ) -> web.Response:  # fmt: skip
    wanted = request.query.get("status", "pending")
    wanted = wanted if wanted in _STATUS else None
    async with transaction(request) as session:
        items, total = await ReviewQueue(session).list(status=wanted, limit=_PAGE, offset=0)
        people = await names_of(session, {i["created_by"] for i in items})
    return await console_page(request, "console_review_list.html", status=status, title="待审核的政策", items=items,
                              total=total, wanted=wanted or "", statuses=_STATUS, people=people, error=error,
                              values=values or {})  # fmt: skip


async def review_create(request: web.Request) -> web.StreamResponse:
    form = await posted(request)
    values = {k: str(form.get(k, "")).strip() for k in ("title", "text", "url")}
    if not values["title"] or not values["text"]:
        return await review_list(request, error="请填写标题并粘贴政策原文", status=422, values=values)
    try:
        body = SuggestIn(title=values["title"][:2000], text=values["text"][:200_000], url=values["url"][:2048] or None)
    except ValueError:
        return await review_list(request, error="标题、原文或链接过长", status=422, values=values)
    result = await _suggest(request, body)
    async with transaction(request) as session:
        item_id = await ReviewQueue(session).add(title=body.title, text=body.text, result=result, origin="paste",
                                                 created_by=staff_member(request), url=body.url)  # fmt: skip
    raise web.HTTPSeeOther(f"/staff/review/{item_id}")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def review_item(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    async with transaction(request) as session:
        item = await ReviewQueue(session).get(request.match_info["id"])
        people = await names_of(session, {item["created_by"], item.get("decided_by") or ""})
    suggestions = [{**s, "shown": _shown(s["value"])} for s in item["suggestions"]]
    return await console_page(request, "console_review_item.html", status=status, title=item["title"], item=item,
                              suggestions=suggestions, statuses=_STATUS, people=people, error=error,
                              suggested_id=(item.get("suggested") or {}).get("id", ""))  # fmt: skip


def _decisions(form: Any, item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in item["suggestions"]:
        action = str(form.get(f"d-{s['id']}", ""))
        if action in ("accept", "reject"):
            out[s["id"]] = action
        elif action == "edit":
            raw = str(form.get(f"v-{s['id']}", "")).strip()
            try:
                value = json.loads(raw) if raw[:1] in "[{\"0123456789-tfn" and raw else raw
            except json.JSONDecodeError:
                value = raw
            out[s["id"]] = {"edit": value}
    return out


async def review_confirm(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    form = await posted(request)
    async with transaction(request) as session:
        item = await ReviewQueue(session).get(item_id)
    fields = {k: str(form.get(k, "")).strip() for k in ("id", "summary") if str(form.get(k, "")).strip()}
    try:
        _, policy, _, _ = await request.app[service_key].confirm_review(
            item_id, staff=staff_member(request), decisions=_decisions(form, item), fields=fields
        )
    except InvalidInput as exc:
        errors = getattr(exc, "errors", None)
        msg = "；".join(f"{e.field}: {e.msg}" for e in errors) if errors else exc.msg
        return await review_item(request, error=msg, status=422)
    except PolicyPushError as exc:
        return await error_page(request, exc)
    raise web.HTTPSeeOther(f"/staff/policies/{policy.id}?saved=1")


async def review_reject(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    reason = str((await posted(request)).get("reason", "")).strip()[:500]
    if not reason:
        return await review_item(request, error="请写明驳回理由", status=422)
    try:
        async with transaction(request) as session:
            await ReviewQueue(session).reject(item_id, staff=staff_member(request), reason=reason)
    except PolicyPushError as exc:
        return await error_page(request, exc)
    raise web.HTTPSeeOther("/staff/review")
