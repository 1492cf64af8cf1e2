"""Campaign pages: the list, the preview (counts, charts, the recipient table with exclude / include,
send time, cancel, and approval with its confirmation), and the progress page."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from policy_push.campaigns import (
    approve,
    campaign_json,
    cancel,
    exclude_recipients,
    include_recipients,
    load_campaign_view,
    set_send_time,
)
from policy_push.domain import LOCAL_TZ
from policy_push.errors import InvalidInput, PolicyPushError
from policy_push.staff import Role
from policy_push.statuses import CAMPAIGN_EDITABLE, CampaignState, DeliveryStatus
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.contacts import masked_contacts

from ..auth import current_principal
from ..keys import cipher_key, refdata_key, settings_key
from ..pages import SKIP_LABELS
from ..views._common import staff_member, transaction
from .charts import bar_chart
from .labels import (
    CHANNEL_LABELS,
    STATE_LABELS,
    STATUS_LABELS,
    failure_reason,
    mask_name,
    names_of,
    wechat_labels,
)
from .queries import RecipientFilter, district_counts, progress, recipient_table
from .render import console_page, error_page, posted

__all__ = [
    "campaign_list",
    "campaign_preview",
    "campaign_progress",
    "post_approve",
    "post_cancel",
    "post_exclude",
    "post_include",
    "post_send_time",
]

_PAGE = 25


def _int(raw: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(raw or default)))
    except ValueError:
        return default


async def campaign_list(request: web.Request) -> web.Response:
    q = request.query
    state = q.get("state") or None
    if state is not None and state not in {s.value for s in CampaignState}:
        state = None
    policy_id = (q.get("policy_id") or "").strip()[:64] or None
    offset = _int(q.get("offset"), 0, 0, 10**9)
    async with transaction(request) as session:
        rows, total = await campaign_store.list_page(session, state=state, policy_id=policy_id, limit=_PAGE, offset=offset)
        items = []
        for r in rows:
            doc = await campaign_store.policy_document(session, r.policy_id, r.policy_version)
            items.append({**campaign_json(r, policy_title=(doc or {}).get("title")), "summary": r.summary or {}})
        people = await names_of(session, {i["prepared_by"] for i in items} | {i["approved_by"] or "" for i in items})
    base = {k: v for k, v in (("state", state), ("policy_id", policy_id)) if v}
    return await console_page(
        request, "console_campaigns.html", title="推送任务", items=items, total=total, offset=offset, page=_PAGE,
        state=state or "", policy_id=policy_id or "", states=STATE_LABELS, people=people,
        prev_q=urlencode({**base, "offset": max(0, offset - _PAGE)}), next_q=urlencode({**base, "offset": offset + _PAGE}),
    )  # fmt: skip


def _filter(q: Any) -> tuple[RecipientFilter, dict[str, str]]:
    eligible = {"true": True, "false": False}.get(q.get("eligible", ""))
    channel = q.get("channel") if q.get("channel") in CHANNEL_LABELS else None
    district = q.get("district", "").strip()
    district = district if district.isdigit() and len(district) <= 12 else None
    try:
        min_score = float(q["min_score"]) if q.get("min_score") else None
    except ValueError:
        min_score = None
    send = q.get("send") if q.get("send") in ("send", "skipped") else None
    f = RecipientFilter(eligible=eligible, channel=channel, district=district, min_score=min_score, send=send)
    echo = {"eligible": q.get("eligible", "") if eligible is not None else "", "channel": channel or "",
            "district": district or "", "min_score": q.get("min_score", "") if min_score is not None else "",
            "send": send or ""}  # fmt: skip
    return f, echo


def confirmation(summary: dict[str, Any], messages: dict[str, dict[str, Any]]) -> str:
    """ "N 条消息：短信 X 条（计费 Y 条），微信 Z 条，App W 条" — what approving will send."""
    to = summary.get("to_message") or {}
    sms = int(to.get("sms", 0))
    segments = int((messages.get("sms") or {}).get("max_segments") or (messages.get("sms") or {}).get("segments") or 1)
    total = int(summary.get("to_message_total") or sum(to.values()))
    return (f"共 {total} 条消息：短信 {sms} 条（最多计费 {sms * segments} 条），微信 {int(to.get('wechat', 0))} 条，"
            f"App {int(to.get('app', 0))} 条")  # fmt: skip


async def campaign_preview(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    campaign_id = request.match_info["id"]
    f, echo = _filter(request.query)
    offset = _int(request.query.get("offset"), 0, 0, 10**9)
    regions = request.app[refdata_key].regions
    async with transaction(request) as session:
        view = await load_campaign_view(session, request.app[cipher_key], campaign_id, top_n=1)
        kind = view.campaign["audience"]
        rows, total = await recipient_table(session, campaign_id, kind, f, limit=_PAGE, offset=offset)
        contacts = await masked_contacts(session, request.app[cipher_key], kind, [r["profile_id"] for r in rows])
        districts = await district_counts(session, campaign_id, kind)
        people = await names_of(session, {view.campaign["prepared_by"], view.campaign["approved_by"] or ""})
    for r in rows:
        r["contact"] = (contacts.get(r["profile_id"], {}) or {}).get(r["channel"] or "") or "—"
        r["shown_name"] = r["name"] if kind == "enterprise" else mask_name(r["name"])
        r["region_name"] = regions.names.get(r["region"] or "", r["region"] or "—")
    summary = view.summary
    hist = [(f"{b['from']:.1f}", int(b["count"])) for b in summary.get("histogram") or []]
    score_chart = bar_chart(hist, title="匹配度分布", x_title="匹配度（分段起点）", y_title="人数")
    district_chart = bar_chart(
        [(regions.names.get(code, code or "未知")[:6], send) for code, send, _ in districts[:12]],
        title="各区县将推送人数", x_title="区县", y_title="将推送人数", colours=["bar2"],
    )  # fmt: skip
    c = view.campaign
    base = {k: v for k, v in echo.items() if v}
    principal = current_principal(request)
    return await console_page(
        request, "console_campaign.html", status=status, title=f"推送预览 · {c.get('policy_title') or c['policy_id']}",
        view=view, c=c, summary=summary, rows=rows, total=total, offset=offset, page=_PAGE, echo=echo,
        score_chart=score_chart, district_chart=district_chart, districts=districts, region_names=regions.names,
        skip_labels=SKIP_LABELS, channels=CHANNEL_LABELS, states=STATE_LABELS, people=people,
        wechat=wechat_labels(request.app[settings_key]), confirm=confirmation(summary, view.messages),
        editable=CampaignState(c["state"]) in CAMPAIGN_EDITABLE, can_approve=c["state"] == CampaignState.DRAFT.value,
        may_approve=principal.role.allows(Role.APPROVER), may_edit=principal.role.allows(Role.EDITOR),
        is_preparer=principal.account_id == c["prepared_by"], error=error, done=request.query.get("done", ""),
        prev_q=urlencode({**base, "offset": max(0, offset - _PAGE)}), next_q=urlencode({**base, "offset": offset + _PAGE}),
        send_local=_local_input(c.get("send_at")),
    )  # fmt: skip


def _local_input(iso: str | None) -> str:
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def _back(campaign_id: str, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/staff/campaigns/{quote(campaign_id)}?done={done}")


async def _act(request: web.Request, action: Any, done: str) -> web.StreamResponse:
    campaign_id = request.match_info["id"]
    form = await posted(request)  # an unreadable body is the request's fault: the JSON error answers it
    try:
        async with transaction(request) as session:
            await action(session, campaign_id, form)
    except PolicyPushError as exc:
        return await error_page(request, exc)
    raise _back(campaign_id, done)


def _ids(form: Any) -> list[str]:
    ids = [str(v) for v in form.getall("profile_id", [])]
    if not ids:
        raise InvalidInput("请先勾选至少一个推送对象", loc=["form", "profile_id"])
    return ids


async def post_exclude(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)
    return await _act(request, lambda s, cid, form: exclude_recipients(s, cid, _ids(form), actor=actor), "excluded")


async def post_include(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)
    return await _act(request, lambda s, cid, form: include_recipients(s, cid, _ids(form), actor=actor), "included")


def _send_at(form: Any) -> dt.datetime | None:
    raw = str(form.get("send_at", "")).strip()
    if not raw:
        return None
    try:
        return dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M").replace(tzinfo=LOCAL_TZ)
    except ValueError:
        raise InvalidInput("发送时间格式应为 年-月-日 时:分", loc=["form", "send_at"]) from None


async def post_send_time(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)
    return await _act(request, lambda s, cid, form: set_send_time(s, cid, _send_at(form), actor=actor), "send_time")


async def post_cancel(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)
    return await _act(request, lambda s, cid, form: cancel(s, cid, actor=actor, reason="cancelled in the console"), CampaignState.CANCELLED.value)


async def post_approve(request: web.Request) -> web.StreamResponse:
    actor = staff_member(request)

    async def run(session: Any, cid: str, form: Any) -> Any:
        sha = str(form.get("sha256", ""))
        if len(sha) != 64:
            raise InvalidInput("审批表单缺少名单的 SHA-256，请刷新页面", loc=["form", "sha256"])
        return await approve(session, cid, approver=actor, and_schedule=form.get("schedule") == "on", expect_sha256=sha)

    return await _act(request, run, "approved")


async def campaign_progress(request: web.Request) -> web.Response:
    campaign_id = request.match_info["id"]
    async with transaction(request) as session:
        row = await campaign_store.get(session, campaign_id)
        doc = await campaign_store.policy_document(session, row.policy_id, row.policy_version)
        p = await progress(session, campaign_id)
    c = campaign_json(row, policy_title=(doc or {}).get("title"))
    statuses = [s.value for s in DeliveryStatus]  # in the order a row moves through them
    live = c["state"] in (CampaignState.SCHEDULED.value, CampaignState.SENDING.value, CampaignState.APPROVED.value)
    for fail in p["failures"]:
        fail["channel_label"] = CHANNEL_LABELS.get(fail["channel"], fail["channel"])
        fail["status_label"] = STATUS_LABELS.get(fail["status"], fail["status"])
        fail["reason"] = failure_reason(fail["provider_code"], fail["provider_text"])
    return await console_page(
        request, "console_progress.html", title=f"发送进度 · {c.get('policy_title') or c['policy_id']}", c=c, p=p,
        statuses=statuses, status_labels=STATUS_LABELS, channels=CHANNEL_LABELS, states=STATE_LABELS, refresh=live,
    )  # fmt: skip
