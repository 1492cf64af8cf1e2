"""A local fake government portal: recorded pages served over real HTTP (aiohttp, port 0).

It serves an RSS feed and an HTML list page (GBK, broken markup) with their detail pages, and
the awkward cases a real portal has: robots.txt rules, a page moved for good (301) and one moved
for now (302), conditional GET answered with 304, a page that fails with 503 until it recovers,
a page slower than the fetcher waits, a page that changes between polls, and the same text under
two addresses.  Every request is recorded (path, conditional headers, time)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ROBOTS = "User-agent: *\nDisallow: /private/\nAllow: /\n"

POLICY_A = """一、申报对象
在盘锦市注册登记、成立满2年的中型、小型和微型企业。
二、申报条件
（一）纳税信用等级不为C级或D级；
（二）上年度营业收入500万元及以上。
三、支持标准
按实际投入的20%给予补助，单户企业最高30万元。
四、申报时间
2026年6月1日至2026年8月31日。"""

POLICY_B_V1 = """一、补贴对象
具有盘锦市户籍、年满80周岁的老年人。
二、补贴标准
每人每月100元。
三、申领时间
本办法长期有效，常年受理。"""

POLICY_B_V2 = POLICY_B_V1.replace("年满80周岁", "年满75周岁").replace("每人每月100元", "每人每月120元")

POLICY_C = """一、补贴对象
居住在大洼区的城乡低保对象和特困人员。
二、补贴标准
每户一次性补贴1000元。
三、发放时间
2026年12月31日前发放到户。"""

POLICY_RSS = """一、申报对象
在盘锦市注册的高新技术企业或科技型中小企业。
二、支持标准
单个企业最高奖励50万元。
三、申报时间
2026年5月1日至2026年6月30日。"""


def _html(title: str, body: str, charset: str = "utf-8", broken: bool = False) -> str:
    paragraphs = "".join(f"<p>{line}" + ("" if broken else "</p>") for line in body.splitlines())
    return (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
            f"<title>{title}</title></head><body><div class=nav>首页 &gt; 政策文件</div>"
            f'<h1 class="title">{title}</h1><span class=date>发布日期：2026-05-20</span>'
            f'<div class="article">{paragraphs}' + ("" if broken else "</div>") + "<script>var x='<p>忽略</p>';</script>"
            "<div class=footer>主办单位：盘锦市人民政府</div></body></html>")


@dataclass
class Portal:
    base: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    b_version: int = 1
    flaky_failures: int = 1  #: how many more times /gbk/flaky.html answers 503
    slow_s: float = 2.0

    def record(self, request: web.Request) -> None:
        self.requests.append({
            "path": request.path, "at": time.monotonic(), "if_none_match": request.headers.get("If-None-Match"),
            "if_modified_since": request.headers.get("If-Modified-Since"), "user_agent": request.headers.get("User-Agent"),
        })

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


def _conditional(request: web.Request, body: bytes, content_type: str, charset: str | None = None,
                 last_modified: str = "Wed, 20 May 2026 08:00:00 GMT") -> web.Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag or (
        request.headers.get("If-Modified-Since") == last_modified and request.headers.get("If-None-Match") is None
    ):
        return web.Response(status=304, headers={"ETag": etag})
    headers = {"ETag": etag, "Last-Modified": last_modified}
    ct = content_type + (f"; charset={charset}" if charset else "")
    return web.Response(body=body, headers={**headers, "Content-Type": ct})


def make_app(portal: Portal) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        portal.record(request)
        path = request.path
        if path == "/robots.txt":
            return web.Response(text=ROBOTS)
        if path == "/rss.xml":
            items = "".join(
                f"<item><title>{t}</title><link>{portal.base}{p}</link><pubDate>Wed, 20 May 2026 08:00:00 GMT</pubDate></item>"
                for t, p in (("关于高新技术企业奖励的通知", "/policy/rss1.html"), ("内部文件", "/private/secret.html"),
                             ("已迁移的通知", "/moved/old.html"))
            )
            xml = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>盘锦市政府信息公开</title>'
                   f"<link>{portal.base}/</link><description>政策</description>{items}</channel></rss>")
            return _conditional(request, xml.encode(), "application/rss+xml", "utf-8")
        if path == "/policy/rss1.html":
            return _conditional(request, _html("关于高新技术企业奖励的通知", POLICY_RSS).encode(), "text/html", "utf-8")
        if path == "/moved/old.html":
            raise web.HTTPMovedPermanently(portal.base + "/policy/rss3.html")
        if path == "/policy/rss3.html":
            return _conditional(request, _html("关于低保对象补贴的通知", POLICY_C).encode(), "text/html", "utf-8")
        if path == "/private/secret.html":
            return web.Response(text="secret")
        if path == "/list.html":
            links = "".join(f'<li><a href="{p}" title="{t}">{t}</a>' for t, p in (
                ("专项资金申报通知", "/gbk/a.html"), ("高龄津贴发放办法", "/gbk/b.html"), ("临时通知", "/gbk/flaky.html"),
                ("慢页面", "/gbk/slow.html"), ("临时迁移", "/moved/temp.html"), ("转载：专项资金申报通知", "/mirror/a.html"),
                ("外部链接", "javascript:void(0)")))
            html = (f'<html><head><meta charset="gbk"><title>政策文件</title></head><body><ul class="list">{links}'
                    "</ul><div class=pager>第1页</body></html>")  # unclosed <li>, <ul> closed, <div> open: broken on purpose
            return _conditional(request, html.encode("gbk"), "text/html")
        if path in ("/gbk/a.html", "/mirror/a.html"):
            return _conditional(request, _html("关于组织申报2026年度专项资金的通知", POLICY_A, "gbk", broken=True).encode("gbk"),
                                "text/html")
        if path == "/gbk/b.html":
            body = POLICY_B_V1 if portal.b_version == 1 else POLICY_B_V2
            return _conditional(request, _html("盘锦市高龄津贴发放办法", body, "gb2312").encode("gbk"), "text/html", "gbk",
                                last_modified=f"Wed, 2{portal.b_version} May 2026 08:00:00 GMT")
        if path == "/gbk/flaky.html":
            if portal.flaky_failures > 0:
                portal.flaky_failures -= 1
                return web.Response(status=503, text="busy")
            return _conditional(request, _html("关于困难群众取暖补贴的通知", POLICY_C.replace("大洼区", "盘山县")).encode(),
                                "text/html", "utf-8")
        if path == "/gbk/slow.html":
            await asyncio.sleep(portal.slow_s)
            return web.Response(text=_html("慢", POLICY_A), content_type="text/html")
        if path == "/moved/temp.html":
            raise web.HTTPFound(portal.base + "/gbk/c.html")
        if path == "/gbk/c.html":
            return _conditional(request, _html("大洼区低保对象一次性补贴通知", POLICY_C, "gbk").encode("gbk"), "text/html")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app
