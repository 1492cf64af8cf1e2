"""Polling the configured sources: the body of the scheduler tick that brings policies in.

For each source: read the feed or list page (conditional GET), then each listed document
(conditional GET again).  A document is known by its address; one whose text is unchanged is
left alone, one whose text changed becomes a new version with a diff, and one whose text is
already stored under another address is recorded but not queued twice.  Every new or changed
document goes to the review queue with its suggestions — never further: a person confirms it.

Register the tick (leader-only, since two nodes would fetch twice) where the scheduler's ticks
are built, e.g. ``Tick("poll_intake_sources", poller.tick, settings.intake_poll_interval_s,
leader_only=True, lead=SERVE_LEAD, timeout_s=1800)`` (``policy_push.service.SERVE_LEAD``) with ``poller = SourcePoller.from_settings(settings, sessions, ref)``
(and ``await poller.close()`` at shutdown).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections import Counter
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.config import Settings
from policy_push.domain import ValidationContext
from policy_push.errors import RecordInvalid
from policy_push.refdata import ReferenceData
from policy_push.storage.intake_tables import FetchStateRow, IntakeDocumentRow, IntakeDocumentVersionRow
from policy_push.storage.tables import utcnow

from ..diffing import text_diff
from ..review import ReviewQueue
from ..suggest import suggest_policy
from .config import SourceConfig, parse_sources
from .fetch import Fetcher, FetchError, Page, RobotsDisallowed
from .parse import Detail, Entry, decode, parse_detail, parse_feed, parse_list

__all__ = ["PollReport", "Polled", "SourcePoller"]

log = logging.getLogger("policy_push.intake")

FEED_ACTOR = "intake-feed"


class Polled(enum.StrEnum):
    """What became of one document (or one listing page) a poll read."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    #: the server answered 304 Not Modified: nothing read again
    NOT_MODIFIED = "not_modified"
    #: the same text already stored under another address
    DUPLICATE = "duplicates"
    ROBOTS_SKIPPED = "robots_skipped"


@dataclass
class PollReport:
    """What one poll did: how many documents came to each :class:`Polled`, and the problems met."""

    outcomes: Counter[Polled] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  #: review item ids

    def as_dict(self) -> dict[str, int]:
        """Every outcome's count, in :class:`Polled` order, then the lists (errors, queued items) as their lengths."""
        return {**{o.value: self.outcomes[o] for o in Polled}, "errors": len(self.errors), "queued": len(self.queued)}


def _hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


@dataclass(eq=False)
class SourcePoller:
    """Polls the configured sources for new and changed documents and queues suggestions for review."""

    sources: list[SourceConfig]
    sessions: async_sessionmaker[AsyncSession]
    ref: ReferenceData
    fetcher: Fetcher
    _: KW_ONLY
    city: str
    min_confidence: float
    #: how suggested records are checked: against ``ref``
    ctx: ValidationContext = field(init=False, repr=False)
    #: the HTTP session ``from_settings`` opened for the fetcher, closed by ``close``
    _own_session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    #: the entries each source listed at its last full read, for polls answered with 304
    _listed: dict[str, list[Entry]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ctx = ValidationContext(ref=self.ref)

    @classmethod
    def from_settings(
        cls, settings: Settings, sessions: async_sessionmaker[AsyncSession], ref: ReferenceData
    ) -> SourcePoller:
        http = aiohttp.ClientSession()
        fetcher = Fetcher(
            http, user_agent=settings.intake_user_agent, timeout_s=settings.intake_fetch_timeout_s,
            host_delay_s=settings.intake_host_delay_s, max_bytes=settings.intake_max_page_bytes,
        )
        poller = cls(parse_sources(settings.intake_sources), sessions, ref, fetcher, city=settings.intake_city,
                     min_confidence=settings.intake_min_confidence)
        poller._own_session = http
        return poller

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()

    # -- the tick ----------------------------------------------------------------------------------
    async def tick(self) -> PollReport:
        report = PollReport()
        for source in self.sources:
            try:
                await self._poll(source, report)
            except FetchError as exc:
                report.errors.append(f"{source.name}: {exc}")
                log.warning("intake source %s: %s", source.name, exc)
        log.info("intake poll: %s", report.as_dict())
        return report

    async def _state(self, url: str) -> FetchStateRow | None:
        async with self.sessions() as session:
            return await session.get(FetchStateRow, url)

    async def _remember(self, url: str, page: Page | None, error: str | None = None, status: int | None = None) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(FetchStateRow, url, with_for_update=True)
            if row is None:
                row = FetchStateRow(url=url, checked_at=utcnow())
                session.add(row)
            row.checked_at = utcnow()
            row.last_status = page.status if page else status
            row.last_error = error
            if page is not None and not page.not_modified:
                row.etag, row.last_modified = page.etag, page.last_modified

    async def _fetch(self, url: str, report: PollReport, source: SourceConfig) -> Page | None:
        state = await self._state(url)
        try:
            page = await self.fetcher.get(url, etag=state.etag if state else None,
                                          last_modified=state.last_modified if state else None)
        except RobotsDisallowed as exc:
            report.outcomes[Polled.ROBOTS_SKIPPED] += 1
            log.info("intake source %s: %s", source.name, exc)
            return None
        except FetchError as exc:
            report.errors.append(f"{source.name}: {exc}")
            log.warning("intake source %s: %s", source.name, exc)
            await self._remember(url, None, exc.reason, exc.status)
            return None
        await self._remember(url, page)
        if page.redirects:
            log.info("intake source %s: %s moved to %s", source.name, url, page.url)
        return page

    async def _known(self, source: SourceConfig) -> list[Entry]:
        """The documents this source listed before, most recently changed first."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(IntakeDocumentRow.url, IntakeDocumentRow.title).where(IntakeDocumentRow.source == source.name)
                .order_by(IntakeDocumentRow.changed_at.desc()).limit(source.max_items)
            )).all()
        return [Entry(url, title) for url, title in rows]

    async def _poll(self, source: SourceConfig, report: PollReport) -> None:
        page = await self._fetch(source.url, report, source)
        if page is None:
            return
        if page.not_modified:
            report.outcomes[Polled.NOT_MODIFIED] += 1
            if source.kind == "html" or source.content:
                # the list is the same, but a listed page may have been corrected, or may answer
                # now after failing: ask each again (a conditional GET: an unchanged page costs a 304)
                for entry in self._listed.get(source.name) or await self._known(source):
                    await self._document(source, entry, report)
            return
        if source.kind == "rss":
            entries = parse_feed(page.body, page.url, source.max_items)
        else:
            entries = parse_list(decode(page.body, page.charset, source.encoding), page.url, source.links or "a",
                                 source.max_items)
        self._listed[source.name] = entries
        for entry in entries:
            await self._document(source, entry, report)

    async def _document(self, source: SourceConfig, entry: Entry, report: PollReport) -> None:
        if source.kind == "rss" and not source.content and entry.text:
            detail = Detail(entry.title, entry.text, entry.published_on)
            final_url = entry.url
        else:
            page = await self._fetch(entry.url, report, source)
            if page is None:
                return
            if page.not_modified:
                report.outcomes[Polled.NOT_MODIFIED] += 1
                return
            text = decode(page.body, page.charset, source.encoding)
            detail = parse_detail(text, page.url, title=source.title, content=source.content, date=source.date)
            if not detail.title:
                detail = Detail(entry.title, detail.text, detail.published_on)
            detail = Detail(detail.title, detail.text, detail.published_on or entry.published_on)
            final_url = page.url
        if not detail.text.strip() or not detail.title.strip():
            report.errors.append(f"{source.name}: {final_url}: no title or text found with the configured selectors")
            return
        await self._store(source, final_url, detail, report)

    async def _store(self, source: SourceConfig, url: str, detail: Detail, report: PollReport) -> None:
        digest = _hash(detail.title, detail.text)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            doc = (await session.execute(
                select(IntakeDocumentRow).where(IntakeDocumentRow.url == url).with_for_update()
            )).scalar_one_or_none()
            previous: IntakeDocumentVersionRow | None = None
            if doc is not None:
                if doc.content_hash == digest:
                    report.outcomes[Polled.UNCHANGED] += 1
                    return
                previous = await session.get(IntakeDocumentVersionRow, (doc.id, doc.version))
                doc.version += 1
                doc.content_hash, doc.title, doc.changed_at = digest, detail.title, now
            else:
                twin = (await session.execute(
                    select(IntakeDocumentRow.id).where(IntakeDocumentRow.content_hash == digest).limit(1)
                )).scalar_one_or_none()
                doc = IntakeDocumentRow(source=source.name, url=url, title=detail.title, content_hash=digest, version=1,
                                        first_seen_at=now, changed_at=now)
                session.add(doc)
                await session.flush()
                if twin is not None:
                    # the same text under another address (a mirror, a moved page): known, not queued twice
                    session.add(IntakeDocumentVersionRow(
                        document_id=doc.id, version=1, title=detail.title, text=detail.text, content_hash=digest,
                        published_on=detail.published_on.isoformat() if detail.published_on else None,
                        diff=None, fetched_at=now))
                    report.outcomes[Polled.DUPLICATE] += 1
                    return
            diff = None
            if previous is not None:
                diff = text_diff(f"{previous.title}\n{previous.text}", f"{detail.title}\n{detail.text}",
                                 old_label=f"version {previous.version}", new_label=f"version {doc.version}")
            session.add(IntakeDocumentVersionRow(
                document_id=doc.id, version=doc.version, title=detail.title, text=detail.text, content_hash=digest,
                published_on=detail.published_on.isoformat() if detail.published_on else None, diff=diff,
                fetched_at=now))
            result = await asyncio.to_thread(self._suggest, source, url, detail)
            if result is None:
                report.errors.append(f"{source.name}: {url}: no suggestion could be made")
                return
            item_id = await ReviewQueue(session).add(
                title=detail.title, text=detail.text, result=result, origin="feed", created_by=FEED_ACTOR,
                url=url, source=source.name, document_id=doc.id, document_version=doc.version, diff=diff, now=now,
            )
            report.queued.append(item_id)
            if previous is None:
                report.outcomes[Polled.NEW] += 1
            else:
                report.outcomes[Polled.CHANGED] += 1

    def _suggest(self, source: SourceConfig, url: str, detail: Detail) -> Any:
        record: dict[str, Any] = {"title": detail.title[:2000], "text": detail.text[: self.ctx.max_text_chars], "url": url}
        if len(url) > 2048:
            record.pop("url")
        if detail.published_on:
            record["published_on"] = detail.published_on.isoformat()
        if source.audience:
            record["audience"] = source.audience
        try:
            return suggest_policy(record, ref=self.ref, city=source.city or self.city,
                                  min_confidence=self.min_confidence, ctx=self.ctx)
        except RecordInvalid:
            record.pop("url", None)
            try:
                return suggest_policy(record, ref=self.ref, city=source.city or self.city,
                                      min_confidence=self.min_confidence, ctx=self.ctx)
            except RecordInvalid:
                return None

