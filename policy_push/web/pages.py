"""HTML rendering shared by the public page a message links to and the staff console (web.console).

Jinja2 with autoescape on for every template (and for strings), so policy texts, reasons and
staff names are always escaped: the injection-strings sample renders inert.  Pictures beat tables:
the score distribution is an inline SVG histogram.

"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from policy_push.statuses import SkipReason

__all__ = ["SKIP_LABELS", "histogram_bars", "render_page"]

SKIP_LABELS = {
    SkipReason.NO_CONSENT.value: "未授权推送",
    SkipReason.OPTED_OUT.value: "已退订",
    SkipReason.UNREACHABLE.value: "无可用渠道",
    SkipReason.PHONE_UNPROVEN.value: "无可用渠道：手机号未经验证",
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
