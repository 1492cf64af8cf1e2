"""HTML pages: the staff preview of a campaign, and the public page a message links to.

Jinja2 with autoescape on for every template (and for strings), so policy texts, reasons and
staff names are always escaped: the injection-strings sample renders inert.  Pictures beat tables:
the score distribution is an inline SVG histogram.

Staff pages take the API token as ``Authorization: Bearer …`` or ``?token=…`` (a browser cannot
send a header from a link) until staff accounts exist; the approve form posts the token and the
staff member's name.  The token is compared in constant time like the API's.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from policy_push.campaigns import approve, load_campaign_view
from policy_push.errors import NotAllowed, NotAuthenticated, NotFound, PolicyPushError
from policy_push.statuses import CampaignState, SkipReason

from .bodies import read_form
from .keys import cipher_key, settings_key
from .middlewares import check_token, status_of
from .views._common import transaction, valid_staff_name

__all__ = ["SKIP_LABELS", "histogram_bars", "render_page", "staff_approve", "staff_campaign"]

SKIP_LABELS = {
    SkipReason.NO_CONSENT.value: "未授权推送",
    SkipReason.OPTED_OUT.value: "已退订",
    SkipReason.UNREACHABLE.value: "无可用渠道",
    SkipReason.ALREADY_NOTIFIED.value: "已通知过",
    SkipReason.EXCLUDED.value: "人工排除",
    SkipReason.MAY_QUALIFY.value: "可能符合（缺数据）",
    SkipReason.FEEDBACK.value: "已反馈",
}
_CHART_W, _CHART_H, _PAD = 420, 140, 20


@functools.cache
def _environment() -> Environment:
    # templates ship inside the package and never change while running: one environment per
    # process, like the reference tables
    return Environment(
        loader=PackageLoader("policy_push.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(template: str, *, status: int = 200, **context: Any) -> web.Response:
    html = _environment().get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def histogram_bars(histogram: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SVG rectangles (x, y, width, height) and labels for score buckets."""
    if not histogram:
        return []
    top = max((b["count"] for b in histogram), default=0) or 1
    width = (_CHART_W - 2 * _PAD) / len(histogram)
    bars = []
    for i, b in enumerate(histogram):
        h = (_CHART_H - 2 * _PAD) * b["count"] / top
        bars.append({
            "x": round(_PAD + i * width + 1, 1), "y": round(_CHART_H - _PAD - h, 1), "w": round(width - 2, 1),
            "h": round(h, 1), "count": b["count"], "label": f"{b['from']:.1f}", "cx": round(_PAD + (i + 0.5) * width, 1),
        })  # fmt: skip
    return bars


def _staff_token(request: web.Request, given: str | None) -> str:
    """Check the token (``given`` from a query or form, else the header); returns the token to
    carry in the page's own links and form, or "" when it came in a header."""
    if given is None:
        check_token(request)
        return ""
    configured = request.app[settings_key].api_token
    secret = configured.get_secret_value() if configured is not None else ""
    if not secret:
        raise NotAllowed("this service has no API token configured; set POLICY_PUSH_API_TOKEN", loc=["query", "token"])
    if not given:
        raise NotAuthenticated("a token is required", loc=["query", "token"])
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise NotAllowed("the token is not valid", loc=["query", "token"])
    return given


async def _page(request: web.Request, campaign_id: str, token: str, *, error: str = "", status: int = 200) -> web.Response:
    async with transaction(request) as session:
        view = await load_campaign_view(session, request.app[cipher_key], campaign_id, top_n=20)
    summary = view.summary
    return render_page(
        "staff_campaign.html",
        status=status,
        view=view,
        c=view.campaign,
        summary=summary,
        bars=histogram_bars(summary.get("histogram") or []),
        chart={"w": _CHART_W, "h": _CHART_H, "pad": _PAD},
        skip_labels=SKIP_LABELS,
        can_approve=view.campaign["state"] == CampaignState.DRAFT.value,
        token=token,
        token_query=f"?token={quote(token)}" if token else "",
        error=error,
        done=request.query.get("done", ""),
    )


async def staff_campaign(request: web.Request) -> web.Response:
    token = _staff_token(request, request.query.get("token"))
    return await _page(request, request.match_info["id"], token)


async def staff_approve(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    token = _staff_token(request, form.get("token"))
    campaign_id = request.match_info["id"]
    staff = str(form.get("staff_member", "")).strip()
    if not staff or not valid_staff_name(staff):
        return await _page(request, campaign_id, token, error="请填写审批人姓名（staff member）", status=422)
    try:
        async with transaction(request) as session:
            await approve(session, campaign_id, approver=staff, and_schedule=form.get("schedule") == "on")
    except NotFound:
        raise
    except PolicyPushError as exc:
        return await _page(request, campaign_id, token, error=exc.msg, status=status_of(exc))
    sep = "&" if token else "?"
    raise web.HTTPSeeOther(f"/staff/campaigns/{quote(campaign_id)}{'?token=' + quote(token) if token else ''}{sep}done=approved")
