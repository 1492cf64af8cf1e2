"""The one way in for writes of policies and profiles: the web API, the CLI and the ticks all come here.

A write is validated (``policy_push.domain``), stored in one transaction that also numbers it in the
change feed (``storage.changes``), then handed to the match index of this process so it answers for the
new state at once, and a policy that changed materially gets a draft campaign (``campaigns.drafting``;
a failure there never fails the write: the leader's ``prepare_pending_campaigns`` tick catches up).

What other processes write (``policy-push import`` run beside a server, another node) reaches this
process's index through :meth:`Service.follow_changes`, a tick every ``follow_changes_s`` seconds that
applies the change feed since the last number seen, and drafts for the policies among it. A PostgreSQL
``LISTEN``/``NOTIFY`` could later wake it as soon as a write commits; the feed itself would not change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

from policy_push.campaigns import prepare_campaign, prepare_pending_campaigns
from policy_push.domain import (
    EnterpriseProfile,
    Policy,
    ResidentProfile,
    local_today,
    parse_policy,
    parse_record,
)
from policy_push.errors import AlreadyExists, InvalidInput, MatchIndexUnavailable, NotFound, PolicyPushError
from policy_push.importing import ImportReport, import_lines, normalise_kind, phone_source_name
from policy_push.intake.review import ReviewQueue
from policy_push.matching import MatchService
from policy_push.runtime import Runtime
from policy_push.storage import PolicyRepository, UpsertResult, profile_repository
from scheduler import Clock, Tick

__all__ = ["SERVE_LEAD", "SYSTEM_DRAFTER", "Service"]

log = logging.getLogger("policy_push.service")
#: who a draft made by a write names when the writer did not say who they are
SYSTEM_DRAFTER = "system:policy-write"
#: The lead of the leader-only ticks only ``serve`` runs (drafting from the match index, intake polling),
#: apart from the send pipeline's (``sending.ticks.SEND_LEAD``), which workers run without an index.
SERVE_LEAD = "serve"
Profile = EnterpriseProfile | ResidentProfile


def _with_id(data: Any, record_id: str) -> Any:
    """A PUT body: its id must be the path's, and may be left out."""
    if isinstance(data, dict) and "id" in data and data["id"] != record_id:
        raise InvalidInput(
            f"body id {str(data['id'])[:80]!r} does not match the id in the path {record_id[:80]!r}", loc=["body", "id"]
        )
    return {**data, "id": record_id} if isinstance(data, dict) and "id" not in data else data


class Service:
    """Writes of policies and profiles for one process; ``index`` is its match index, if it has one."""

    def __init__(self, runtime: Runtime, *, index: MatchService | None = None) -> None:
        self.runtime = runtime
        self.index = index
        # one drafting at a time per policy in this process: a write's own draft and the change-feed
        # tick's would otherwise both find "no campaign for this version" (SQLite's reads take no lock;
        # on PostgreSQL the policy row lock in ``prepare_campaign`` also orders other processes)
        self._drafting: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ---- policies -----------------------------------------------------------------------------

    async def create_policy(self, data: Any, *, actor: str, drafter: str | None = None) -> UpsertResult:
        policy = parse_policy(data, self.runtime.validation_context())
        async with self.runtime.sessions() as session, session.begin():
            repo = PolicyRepository(session)
            if await repo.exists(policy.id):
                raise AlreadyExists("policy", policy.id, hint=f"send PUT /api/v1/policies/{policy.id} to update it")
            result = await repo.upsert(policy, actor=actor)
        await self._policy_written(policy, drafter)
        return result

    async def put_policy(self, policy_id: str, data: Any, *, actor: str, drafter: str | None = None) -> UpsertResult:
        """Create or update: changed content becomes a new version, identical content changes nothing."""
        policy = parse_policy(_with_id(data, policy_id), self.runtime.validation_context())
        async with self.runtime.sessions() as session, session.begin():
            result = await PolicyRepository(session).upsert(policy, actor=actor)
        if result.outcome != "unchanged":
            await self._policy_written(policy, drafter)
        return result

    async def confirm_review(
        self, item_id: str, *, staff: str, decisions: dict[str, Any], fields: dict[str, Any]
    ) -> tuple[dict[str, Any], Policy, str, int]:
        """A reviewer's confirmation of a review-queue item (``intake.review``): the policy is written in
        the same transaction that closes the item, then indexed and drafted like any other policy write.
        Returns the closed item, the policy, the outcome (created / updated / unchanged) and its version."""
        async with self.runtime.sessions() as session, session.begin():
            queue = ReviewQueue(session)
            policy, outcome, version = await queue.confirm(
                item_id, staff=staff, decisions=decisions, fields=fields, ctx=self.runtime.validation_context()
            )
            item = await queue.get(item_id)
        if outcome != "unchanged":
            await self._policy_written(policy, staff)
        return item, policy, outcome, version

    async def _policy_written(self, policy: Policy, drafter: str | None) -> None:
        if self.index is None:
            return  # no index here: a server's follow_changes tick picks it up
        await self._tell_index("a policy write", self.index.policy_written(policy))
        await self.draft(policy.id, drafter=drafter)

    async def draft(self, policy_id: str, *, drafter: str | None = None) -> None:
        """A new draft campaign when the policy changed materially (never fails the caller)."""
        if self.index is None:
            return
        lock = self._drafting.get(policy_id)
        if lock is None:
            lock = self._drafting[policy_id] = asyncio.Lock()
        async with lock:
            await self._draft_now(policy_id, drafter)

    async def _draft_now(self, policy_id: str, drafter: str | None) -> None:
        assert self.index is not None
        try:
            await prepare_campaign(
                self.runtime.sessions, self.index, policy_id, prepared_by=drafter or SYSTEM_DRAFTER,
                settings=self.runtime.settings, force=False,
            )  # fmt: skip
        except (PolicyPushError, MatchIndexUnavailable) as exc:
            log.warning("no draft campaign for policy %s after its write: %s", policy_id, exc)

    # ---- profiles -----------------------------------------------------------------------------

    def _parse_profile(self, kind: str, data: Any) -> Profile:
        return parse_record(kind, data, self.runtime.validation_context())  # type: ignore[arg-type,return-value]

    async def create_profile(self, kind: str, data: Any, *, actor: str, phone_source: str | None = None) -> UpsertResult:
        """``phone_source``: the official register staff vouch the phone came from (``policy_push.reach``)."""
        source = phone_source_name(phone_source, kind)
        profile = self._parse_profile(kind, data)
        async with self.runtime.sessions() as session, session.begin():
            repo = profile_repository(kind, session, self.runtime.cipher)
            try:
                result = await repo.create(profile, actor=actor, phone_source=source)
            except AlreadyExists:
                raise AlreadyExists(kind, profile.id, hint=f"send PUT /api/v1/{kind}s/{profile.id} to update it") from None
        await self._profile_written(profile)
        return result

    async def put_profile(
        self, kind: str, profile_id: str, data: Any, *, actor: str, phone_source: str | None = None
    ) -> UpsertResult:
        source = phone_source_name(phone_source, kind)
        profile = self._parse_profile(kind, _with_id(data, profile_id))
        async with self.runtime.sessions() as session, session.begin():
            repo = profile_repository(kind, session, self.runtime.cipher)
            result = await repo.upsert(profile, actor=actor, phone_source=source)
        if result.outcome != "unchanged":
            await self._profile_written(profile)
        return result

    async def delete_profile(self, kind: str, profile_id: str, *, actor: str) -> None:
        async with self.runtime.sessions() as session, session.begin():
            deleted = await profile_repository(kind, session, self.runtime.cipher).delete(profile_id, actor=actor)
        if not deleted:
            raise NotFound.of(kind, profile_id)
        if self.index is not None:
            await self._tell_index("a profile delete", self.index.profile_deleted(kind, profile_id))

    async def _profile_written(self, profile: Profile) -> None:
        if self.index is not None:
            await self._tell_index("a profile write", self.index.profile_written(profile))

    # ---- imports ------------------------------------------------------------------------------

    async def import_lines(
        self,
        kind: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        actor: str,
        drafter: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        phone_source: str | None = None,
    ) -> ImportReport:
        """A JSONL import (``policy_push.importing``); then this process's index catches up with it and
        the policies it changed get their drafts."""
        report = await import_lines(
            normalise_kind(kind), chunks, session_factory=self.runtime.sessions, cipher=self.runtime.cipher,
            ctx=self.runtime.validation_context(), actor=actor, max_line_bytes=self.runtime.settings.max_import_line_bytes,
            progress=progress, phone_source=phone_source,
        )  # fmt: skip
        if report.created or report.updated:
            await self.follow_changes(drafter=drafter)
        return report

    # ---- what other processes wrote -------------------------------------------------------------

    async def follow_changes(self, *, drafter: str | None = None) -> int:
        """Apply the change feed to this process's index; draft for the policies it names. Returns the
        number of policies changed."""
        if self.index is None or not self.index.is_ready:
            return 0
        try:
            policy_ids = await self.index.follow_changes()
        except Exception as exc:  # the index stays as it was; the next tick tries again
            log.warning("match index could not follow the change feed: %s", type(exc).__name__)
            raise
        for policy_id in policy_ids:
            await self.draft(policy_id, drafter=drafter)
        return len(policy_ids)

    async def prepare_pending(self, *, on: dt.date | None = None) -> int:
        """Drafts for open policies changed without one (the leader's catch-all)."""
        if self.index is None:
            return 0
        prepared = await prepare_pending_campaigns(
            self.runtime.sessions, self.index, settings=self.runtime.settings, on=on or local_today()
        )
        return len(prepared)

    def ticks(self, clock: Clock) -> list[Tick]:
        """The ticks of a process holding a match index (``serve``)."""
        if self.index is None:
            return []
        factor = 1.0 / clock.real_seconds(1.0)
        return [
            Tick("follow_changes", self.follow_changes, self.runtime.settings.follow_changes_s * factor, timeout_s=300),
            Tick("prepare_pending_campaigns", self.prepare_pending, self.runtime.settings.prepare_campaigns_s * factor,
                 leader_only=True, lead=SERVE_LEAD, timeout_s=600),
        ]  # fmt: skip

    async def _tell_index(self, what: str, update: Any) -> None:
        """The write has committed; an index that fails to take it catches up from the feed."""
        try:
            await update
        except Exception:
            log.exception("match index not updated after %s; the change feed will bring it", what)
