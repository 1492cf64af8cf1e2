"""A polite fetcher: robots.txt rules, a least interval per host, conditional GET, size and time
limits.  Redirects (301/302) are followed and the final address reported."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.robotparser
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from ..errors import SourceError

__all__ = ["FetchError", "Fetcher", "Page", "RobotsDisallowed"]

log = logging.getLogger("policy_push.intake")


class FetchError(SourceError):
    """A page could not be fetched (network error, timeout, 5xx, too large)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class RobotsDisallowed(FetchError):
    """The site's robots.txt asks crawlers like ours not to fetch this address."""


@dataclass(frozen=True, slots=True)
class Page:
    url: str  #: the final address, after redirects
    requested: str
    status: int
    body: bytes
    content_type: str
    charset: str | None
    etag: str | None
    last_modified: str | None
    #: the redirects followed on the way (status, from address)
    redirects: tuple[tuple[int, str], ...] = ()

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0
    robots: urllib.robotparser.RobotFileParser | None = None
    robots_checked: float = -1.0
    #: robots.txt could not be read (5xx or no answer): fetch nothing from this host for now
    robots_unreachable: bool = False


class Fetcher:
    """Fetch pages for the source poller.  One per process: the per-host pacing and robots.txt
    cache live here."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        user_agent: str,
        timeout_s: float,
        host_delay_s: float,
        max_bytes: int,
        robots_ttl_s: float = 3600.0,
    ) -> None:
        self.session = session
        self.user_agent = user_agent
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.host_delay_s = host_delay_s
        self.max_bytes = max_bytes
        self.robots_ttl_s = robots_ttl_s
        self._hosts: dict[str, _Host] = {}
        self.requests: list[tuple[float, str]] = []  #: (monotonic time, url) of every request made

    def _host(self, url: str) -> tuple[str, _Host]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        return origin, self._hosts.setdefault(origin, _Host())

    async def _paced(self, host: _Host, delay: float) -> None:
        now = time.monotonic()
        if host.next_at > now:
            await asyncio.sleep(host.next_at - now)
        host.next_at = time.monotonic() + delay

    async def _robots(self, origin: str, host: _Host) -> None:
        if host.robots_checked >= 0 and time.monotonic() - host.robots_checked < self.robots_ttl_s:
            return
        parser = urllib.robotparser.RobotFileParser()
        host.robots_unreachable = False
        try:
            await self._paced(host, self.host_delay_s)
            self.requests.append((time.monotonic(), origin + "/robots.txt"))
            async with self.session.get(
                origin + "/robots.txt", timeout=self.timeout, headers={"User-Agent": self.user_agent}
            ) as resp:
                if resp.status >= 500:
                    host.robots_unreachable = True
                elif resp.status >= 400:
                    parser.parse([])  # no robots.txt: everything is allowed
                else:
                    text = (await resp.content.read(512 * 1024)).decode("utf-8", errors="replace")
                    parser.parse(text.splitlines())
        except (aiohttp.ClientError, TimeoutError):
            host.robots_unreachable = True
        host.robots = parser
        host.robots_checked = time.monotonic()

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Page:
        origin, host = self._host(url)
        async with host.lock:
            await self._robots(origin, host)
            if host.robots_unreachable:
                raise FetchError(url, "robots.txt could not be read; the host is skipped until it can")
            assert host.robots is not None
            if not host.robots.can_fetch(self.user_agent, url):
                raise RobotsDisallowed(url, "robots.txt disallows it")
            delay = max(self.host_delay_s, float(host.robots.crawl_delay(self.user_agent) or 0))
            await self._paced(host, delay)
            headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            self.requests.append((time.monotonic(), url))
            try:
                async with self.session.get(url, headers=headers, timeout=self.timeout, max_redirects=5) as resp:
                    redirects = tuple((r.status, str(r.url)) for r in resp.history)
                    if resp.status == 304:
                        return Page(str(resp.url), url, 304, b"", "", None, etag, last_modified, redirects)
                    if resp.status >= 400:
                        raise FetchError(url, f"HTTP {resp.status}", resp.status)
                    body = await resp.content.read(self.max_bytes + 1)
                    if len(body) > self.max_bytes:
                        raise FetchError(url, f"larger than {self.max_bytes} bytes (POLICY_PUSH_INTAKE_MAX_PAGE_BYTES)")
                    return Page(
                        url=str(resp.url),
                        requested=url,
                        status=resp.status,
                        body=body,
                        content_type=resp.content_type,
                        charset=resp.charset,
                        etag=resp.headers.get("ETag"),
                        last_modified=resp.headers.get("Last-Modified"),
                        redirects=redirects,
                    )
            except TimeoutError:
                raise FetchError(url, f"no answer within {self.timeout.total:g} s") from None
            except aiohttp.TooManyRedirects:
                raise FetchError(url, "more than 5 redirects") from None
            except aiohttp.ClientError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from None
