"""The dashboard: campaigns by state, today's sends per channel, recent failures, and the take-up
funnel (eligible -> told -> delivered -> opened the link -> 已申报) as a chart, overall or for one policy."""

from __future__ import annotations

from aiohttp import web

from ..keys import refdata_key
from ..views._common import transaction
from .charts import bar_chart
from .labels import CHANNEL_LABELS, STATE_LABELS, STATUS_LABELS, failure_reason
from .queries import campaign_funnel, campaigns_by_state, district_funnel, recent_failures, sends_today
from .render import console_page

__all__ = ["dashboard"]


async def dashboard(request: web.Request) -> web.Response:
    policy_id = (request.query.get("policy_id") or "").strip()[:64] or None
    async with transaction(request) as session:
        states = await campaigns_by_state(session)
        today = await sends_today(session)
        failures = await recent_failures(session)
        funnel = await campaign_funnel(session, policy_id=policy_id)
        districts = await district_funnel(session, policy_id=policy_id)
    chart = bar_chart(funnel, title="政策触达漏斗" + (f"（政策 {policy_id}）" if policy_id else "（全部政策）"),
                      x_title="阶段", y_title="人数", colours=["bar", "bar2", "bar3", "bar4", "bar5"])  # fmt: skip
    names = request.app[refdata_key].regions.names
    district_chart = bar_chart([(names.get(r, r or "未知")[:6], told) for r, _e, told, _d, _o, _a in districts],
                               title="各区县已通知人数", x_title="区县", y_title="已通知人数", colours=["bar2"])  # fmt: skip
    for f in failures:
        f["channel_label"] = CHANNEL_LABELS.get(f["channel"], f["channel"])
        f["status_label"] = STATUS_LABELS.get(f["status"], f["status"])
        f["reason"] = failure_reason(f["provider_code"], f["provider_text"])
    return await console_page(
        request, "console_dashboard.html", title="总览", states=states, state_labels=STATE_LABELS, today=today,
        channels=CHANNEL_LABELS, failures=failures, funnel=funnel, chart=chart, policy_id=policy_id or "",
        districts=districts, district_chart=district_chart, region_names=names,
    )  # fmt: skip
