"""Source feeds against the local fake portal: every fetch a real HTTP exchange on loopback."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.config import Settings
from policy_push.domain import parse_policy
from policy_push.intake.sources.config import SourceConfig
from policy_push.intake.sources.fetch import Fetcher
from policy_push.intake.sources.poll import Polled, SourcePoller
from policy_push.refdata import load_reference_data
from policy_push.storage.intake_tables import (
    FetchStateRow,
    IntakeDocumentRow,
    IntakeDocumentVersionRow,
    ReviewItemRow,
)
from policy_push.storage.tables import PolicyRow

from .criteria import criteria_leaves
from .portal import Portal, make_app

HOST_DELAY = 0.05
TIMEOUT = 0.6


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    state = Portal()
    server = TestServer(make_app(state), port=0)
    await server.start_server()
    state.base = str(server.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _poller(portal: Portal, http: aiohttp.ClientSession, sessions: async_sessionmaker[AsyncSession],
            sources: list[dict[str, Any]] | None = None) -> SourcePoller:
    sources = sources or [
        {"name": "pj-rss", "kind": "rss", "url": portal.base + "/rss.xml", "title": "h1.title", "content": "div.article"},
        {"name": "pj-list", "kind": "html", "url": portal.base + "/list.html", "links": "ul.list a",
         "title": "h1.title", "content": "div.article", "date": "span.date"},
    ]
    fetcher = Fetcher(http, user_agent="policy_push-intake-test", timeout_s=TIMEOUT, host_delay_s=HOST_DELAY,
                      max_bytes=1_000_000)
    return SourcePoller([SourceConfig.model_validate(s) for s in sources], sessions, load_reference_data(), fetcher,
                        city="211100", min_confidence=0.5)


@contextlib.asynccontextmanager
async def _host(handler: Any) -> AsyncIterator[str]:
    """``handler`` answering every GET path on a loopback port; yields the base URL."""
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _items(sessions: async_sessionmaker[AsyncSession]) -> list[ReviewItemRow]:
    async with sessions() as session:
        return list((await session.execute(select(ReviewItemRow).order_by(ReviewItemRow.created_at))).scalars())


async def test_first_poll_queues_every_readable_document_with_suggestions(
    portal: Portal, http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    report = await _poller(portal, http, session_factory).tick()
    # rss1, the page moved for good, a, b and the page moved for now; not the private one, the
    # failing one, the slow one, or the mirror of a
    assert report.outcomes[Polled.NEW] == 5, report
    assert report.outcomes[Polled.ROBOTS_SKIPPED] == 1
    assert report.outcomes[Polled.DUPLICATE] == 1
    assert len(report.errors) == 2
    assert any("HTTP 503" in e for e in report.errors) and any("no answer within" in e for e in report.errors)
    assert portal.hits("/private/secret.html") == []
    items = await _items(session_factory)
    assert {i.url.rsplit("/", 2)[-2] + "/" + i.url.rsplit("/", 1)[-1] for i in items} == {
        "policy/rss1.html", "policy/rss3.html", "gbk/a.html", "gbk/b.html", "gbk/c.html"}
    ref = load_reference_data()
    for item in items:
        assert item.status == "pending" and item.origin == "feed"
        parse_policy(item.suggested)  # every suggested record validates
        assert item.suggestions
    by_path = {i.url.rsplit("/", 1)[-1]: i for i in items}
    # the GBK page, broken markup and all, reads as the text it holds; scripts and navigation are left out
    a = by_path["a.html"]
    assert a.title == "关于组织申报2026年度专项资金的通知"
    assert "纳税信用等级不为C级或D级" in a.text and "忽略" not in a.text and "首页" not in a.text
    criteria = a.suggested["criteria"]
    assert {"field": "tax_credit_rating", "op": "not_in", "value": ["C", "D"]} in criteria["all"]
    assert {"field": "annual_revenue_wan", "op": "gte", "value": 500} in criteria["all"]
    assert a.suggested["benefit_max_yuan"] == 300000
    assert a.suggested["apply_from"] == "2026-06-01" and a.suggested["apply_until"] == "2026-08-31"
    b = by_path["b.html"]
    assert b.suggested["audience"] == "resident"
    assert {"field": "age", "op": "gte", "value": 80} in b.suggested["criteria"]["all"]
    del ref


async def test_nothing_changed_means_304s_and_no_new_items(
    portal: Portal, http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    poller = _poller(portal, http, session_factory)
    await poller.tick()
    before = len(await _items(session_factory))
    portal.requests.clear()
    portal.slow_s = 0.0
    report = await poller.tick()
    # only the two pages that failed before (503, too slow) are new now; nothing else changed
    assert report.outcomes[Polled.NEW] == 2 and report.outcomes[Polled.CHANGED] == 0 and report.outcomes[Polled.UNCHANGED] == 0
    # the feed and the list answered 304 to the validators the first poll stored
    assert portal.hits("/rss.xml")[0]["if_none_match"] is not None
    assert portal.hits("/list.html")[0]["if_none_match"] is not None
    assert report.outcomes[Polled.NOT_MODIFIED] >= 2
    assert len(await _items(session_factory)) == before + 2
    # every page read before answered 304 to its stored validators
    for path in ("/gbk/a.html", "/gbk/b.html", "/gbk/c.html", "/policy/rss1.html", "/policy/rss3.html"):
        assert [h["if_none_match"] is not None for h in portal.hits(path)] == [True], path
    async with session_factory() as session:
        states = {r.url.rsplit("/", 1)[-1]: r for r in (await session.execute(select(FetchStateRow))).scalars()}
    assert states["list.html"].last_status == 304 and states["list.html"].etag


async def test_a_changed_page_becomes_a_new_version_with_a_diff(
    portal: Portal, http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    poller = _poller(portal, http, session_factory)
    await poller.tick()
    portal.b_version = 2
    report = await poller.tick()
    assert report.outcomes[Polled.CHANGED] == 1
    items = [i for i in await _items(session_factory) if i.url.endswith("/gbk/b.html")]
    assert [i.document_version for i in items] == [1, 2]
    latest = items[-1]
    assert "-年满80周岁" in latest.diff.replace("具有盘锦市户籍、", "") or "年满80周岁" in latest.diff
    assert "+具有盘锦市户籍、年满75周岁的老年人。" in latest.diff
    assert {"field": "age", "op": "gte", "value": 75} in latest.suggested["criteria"]["all"]
    async with session_factory() as session:
        doc = (await session.execute(select(IntakeDocumentRow).where(IntakeDocumentRow.url == latest.url))).scalar_one()
        versions = (await session.execute(select(IntakeDocumentVersionRow).where(
            IntakeDocumentVersionRow.document_id == doc.id))).scalars().all()
    assert doc.version == 2 and len(versions) == 2
    # nothing fetched became a policy: everything waits in the queue for a person
    async with session_factory() as session:
        assert (await session.execute(select(PolicyRow))).first() is None


async def test_requests_to_one_host_keep_their_distance_and_name_us(
    portal: Portal, http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    poller = _poller(portal, http, session_factory)
    await poller.tick()
    times = [t for t, _ in poller.fetcher.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 10
    assert min(gaps) >= HOST_DELAY * 0.9
    assert {r["user_agent"] for r in portal.requests} == {"policy_push-intake-test"}


async def test_robots_crawl_delay_and_unreadable_robots(
    http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from aiohttp import web

    hits: list[str] = []

    async def robots(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=503)

    async with _host(robots) as base:
        poller = _poller(Portal(base=base), http, session_factory,
                         [{"name": "down", "kind": "rss", "url": base + "/rss.xml"}])
        report = await poller.tick()
    # robots.txt answering 5xx: the host is not crawled at all (RFC 9309 §2.3.1.3)
    assert hits == ["/robots.txt"]
    assert report.errors and "robots.txt could not be read" in report.errors[0]


def test_sources_are_checked_when_settings_load() -> None:
    with pytest.raises(ValueError, match=r"intake_sources\[0\]"):
        Settings(intake_sources=[{"name": "x", "kind": "html", "url": "https://example.gov.cn/"}])
    with pytest.raises(ValueError, match="not a CSS selector"):
        Settings(intake_sources=[{"name": "x", "kind": "html", "url": "https://e.gov.cn/", "links": "ul[["}])
    with pytest.raises(ValueError, match="used twice"):
        Settings(intake_sources=[{"name": "x", "kind": "rss", "url": "https://e.gov.cn/a"},
                                 {"name": "x", "kind": "rss", "url": "https://e.gov.cn/b"}])


ATOM_ENTRY = """一、申报对象
在盘锦市注册的专精特新中小企业。
二、支持标准
单户企业最高奖励20万元。
三、申报时间
2026年7月1日至2026年7月31日。"""


@pytest.fixture
async def atom_site() -> AsyncIterator[tuple[str, list[tuple[str, float]]]]:
    """A host with an Atom feed whose one entry carries its text (and links to a detail page holding the
    same text), and a robots.txt asking for a Crawl-delay of 1 s, longer than our own pacing."""
    from aiohttp import web

    seen: list[tuple[str, float]] = []
    paragraphs = "".join(f"<p>{line}</p>" for line in ATOM_ENTRY.splitlines())

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.path, time.monotonic()))
        base = f"{request.scheme}://{request.host}"
        if request.path == "/robots.txt":
            return web.Response(text="User-agent: *\nCrawl-delay: 1\n")
        if request.path == "/atom.xml":
            escaped = paragraphs.replace("<", "&lt;").replace(">", "&gt;")
            xml = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                   f"<title>盘锦市政策</title><id>tag:pj,2026:feed</id><updated>2026-05-20T08:00:00Z</updated>"
                   f'<entry><title>关于专精特新企业奖励的通知</title><link href="{base}/zjtx.html"/>'
                   f"<id>tag:pj,2026:1</id><updated>2026-05-20T08:00:00Z</updated>"
                   f'<content type="html">{escaped}</content></entry></feed>')  # fmt: skip
            return web.Response(body=xml.encode(), content_type="application/atom+xml", charset="utf-8")
        if request.path == "/zjtx.html":
            html = (f'<html><head><meta charset="utf-8"><title>x</title></head><body>'
                    f'<h1 class="title">关于专精特新企业奖励的通知</h1><div class="article">{paragraphs}</div></body></html>')  # fmt: skip
            return web.Response(text=html, content_type="text/html")
        return web.Response(status=404)

    async with _host(handler) as base:
        yield base, seen


async def _queued_atom_item(base: str, http: aiohttp.ClientSession, sessions: async_sessionmaker[AsyncSession],
                            **source: Any) -> ReviewItemRow:  # fmt: skip
    atom = [{"name": "pj-atom", "kind": "rss", "url": base + "/atom.xml", **source}]
    report = await _poller(Portal(base=base), http, sessions, atom).tick()
    assert (report.outcomes[Polled.NEW], report.errors) == (1, []), report
    [item] = await _items(sessions)
    assert (item.origin, item.url) == ("feed", base + "/zjtx.html")
    assert item.title == "关于专精特新企业奖励的通知"
    leaves = criteria_leaves(item.suggested["criteria"])
    assert {"field": "qualifications", "op": "has_any", "value": ["专精特新中小企业"]} in leaves
    assert item.suggested["benefit_max_yuan"] == 200000 and item.suggested["apply_until"] == "2026-07-31"
    parse_policy(item.suggested)
    return item


async def test_an_atom_feed_whose_entries_carry_their_text(
    atom_site: tuple[str, list[tuple[str, float]]],
    http: aiohttp.ClientSession,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    base, seen = atom_site
    await _queued_atom_item(base, http, session_factory)
    assert [p for p, _ in seen] == ["/robots.txt", "/atom.xml"]  # the entry's own content is the text


async def test_robots_crawl_delay_spaces_the_detail_pages(
    atom_site: tuple[str, list[tuple[str, float]]],
    http: aiohttp.ClientSession,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    base, seen = atom_site
    await _queued_atom_item(base, http, session_factory, title="h1.title", content="div.article")
    assert [p for p, _ in seen] == ["/robots.txt", "/atom.xml", "/zjtx.html"]
    assert seen[2][1] - seen[1][1] >= 0.95  # Crawl-delay: 1, though our own pacing is 0.05 s


async def test_a_host_that_gives_only_last_modified_is_asked_with_if_modified_since(
    http: aiohttp.ClientSession, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """No ETag: the second poll sends the stored Last-Modified back, and a 304 queues nothing new."""
    from aiohttp import web

    stamp = "Wed, 20 May 2026 08:00:00 GMT"
    asked: list[tuple[str, str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        since = request.headers.get("If-Modified-Since")
        asked.append((request.path, since, request.headers.get("If-None-Match")))
        if request.path == "/robots.txt":
            return web.Response(status=404)
        if since == stamp:
            return web.Response(status=304)
        if request.path == "/list.html":
            html = '<html><body><ul class="list"><li><a href="/a.html">专项资金申报通知</a></li></ul></body></html>'
            return web.Response(text=html, content_type="text/html", headers={"Last-Modified": stamp})
        if request.path == "/a.html":
            body = "".join(f"<p>{line}</p>" for line in ATOM_ENTRY.splitlines())
            html = f'<html><body><h1 class="title">专项资金申报通知</h1><div class="article">{body}</div></body></html>'
            return web.Response(text=html, content_type="text/html", headers={"Last-Modified": stamp})
        return web.Response(status=404)

    async with _host(handler) as base:
        source = [{"name": "lm", "kind": "html", "url": base + "/list.html", "links": "ul.list a",
                   "title": "h1.title", "content": "div.article"}]  # fmt: skip
        poller = _poller(Portal(base=base), http, session_factory, source)
        first = await poller.tick()
        asked.clear()
        second = await poller.tick()
    assert (first.outcomes[Polled.NEW], first.errors) == (1, [])
    assert (second.outcomes[Polled.NEW], second.outcomes[Polled.CHANGED], second.errors) == (0, 0, []) and second.outcomes[Polled.NOT_MODIFIED] >= 1
    assert ("/list.html", stamp, None) in asked  # the validator it was given, and no ETag it was not
    assert len(await _items(session_factory)) == 1
