"""The outbox: delivery rows, their guarded status moves and the event trail.

Every status change goes through :func:`move`: the rows are locked (``FOR UPDATE`` on PostgreSQL;
on SQLite the whole write transaction holds the database lock from ``BEGIN IMMEDIATE``), each row's
current status is checked against the allowed ones and :data:`DELIVERY_TRANSITIONS`, the UPDATE
repeats that condition, and one ``delivery_events`` row records the change, or records that a
change was refused (a late or duplicate receipt). Final statuses never change (invariant 4).

Time is the caller's ``now`` (the dispatch clock, simulated in the demo), always UTC.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.config import Settings
from policy_push.statuses import (
    DELIVERY_FAILED_FOR_GOOD,
    DELIVERY_FINAL,
    DELIVERY_TRANSITIONS,
    DeliveryStatus,
)
from policy_push.storage.campaign_tables import (
    CampaignMessageRow,
    CampaignRow,
    DeliveryEventRow,
    DeliveryRow,
    OptOutRow,
)
from policy_push.storage.tables import EnterpriseRow, ResidentRow
from scheduler import FrequencyCap, QuietHours, SendWindows, earliest_send_time, next_send_time

__all__ = [
    "CONTACT_COLUMN",
    "EventSource",
    "Move",
    "SendRules",
    "Waiting",
    "begin_write",
    "chunks",
    "create_fallbacks",
    "deliveries",
    "fall_back_after",
    "is_postgres",
    "move",
    "new_delivery_id",
    "parse_quiet_hours",
    "previous_sends",
    "profile_table",
]

deliveries: Table = DeliveryRow.__table__  # type: ignore[assignment]
events: Table = DeliveryEventRow.__table__  # type: ignore[assignment]
campaigns: Table = CampaignRow.__table__  # type: ignore[assignment]
opt_outs: Table = OptOutRow.__table__  # type: ignore[assignment]
messages: Table = CampaignMessageRow.__table__  # type: ignore[assignment]
#: which encrypted column holds the address of each channel
CONTACT_COLUMN = {"sms": "phone", "wechat": "wechat_openid", "app": "app_registration_id"}
#: rows per IN (...) list and per executemany
CHUNK = 1000
_COUNTS = frozenset({DeliveryStatus.CREATED, DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.DELIVERED})


class EventSource(enum.StrEnum):
    """Who moved a delivery (``delivery_events.source``)."""

    CLAIM = "claim"
    DISPATCH = "dispatch"
    RECEIPT = "receipt"
    SETTLE = "settle"
    CANCEL = "cancel"
    CLOSE = "close"
    OPT_OUT = "opt_out"


class Waiting(enum.StrEnum):
    """Why a delivery's ``not_before`` was pushed on (``deliveries.waiting_for``)."""

    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    RETRY = "retry"
    THROTTLED = "throttled"


def parse_quiet_hours(spec: str, tz: str) -> QuietHours | None:
    """``"21:00-08:00"`` -> QuietHours; empty -> None (no quiet hours)."""
    spec = spec.strip()
    if not spec:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", spec)
    if m is None:
        raise ValueError(f"quiet hours {spec!r}: expected HH:MM-HH:MM, e.g. 21:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return QuietHours(time(h1, m1), time(h2, m2), tz)


@dataclass(frozen=True)
class SendRules:
    """Quiet hours, the cap and the retry policy: what the outbox needs from the settings."""

    windows: SendWindows = field(default_factory=SendWindows)
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    max_attempts: int = 5
    backoff_base_s: float = 60.0
    backoff_max_s: float = 3600.0
    #: real seconds a row may sit in ``sending`` before settle looks at it
    stuck_after_s: float = 120.0
    #: simulated seconds a sent SMS/WeChat row waits for its receipt before its campaign may finish
    receipt_wait_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SendRules:
        tz = settings.local_timezone
        default = parse_quiet_hours(settings.quiet_hours, tz)
        per = {ch: parse_quiet_hours(v, tz) for ch, v in settings.quiet_hours_by_channel.items()}
        return cls(
            windows=SendWindows(per, default=default),
            cap=FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_cap_days)),
            max_attempts=settings.retry_max_attempts,
            backoff_base_s=settings.retry_base_delay_s,
            backoff_max_s=settings.retry_max_delay_s,
            stuck_after_s=settings.stuck_sending_timeout_s,
            receipt_wait_s=settings.receipt_wait_s,
        )

    def plan(
        self, now: datetime, channel: str, previous: Sequence[datetime], *, urgent: bool
    ) -> tuple[datetime, Waiting | None]:
        """The earliest send time of a new delivery, and why it is later than ``now`` (if it is)."""
        quiet = self.windows.for_channel(channel)
        outside_quiet = next_send_time(now, quiet, urgent=urgent)
        if len(previous) < self.cap.limit:  # the cap cannot bite: skip its search
            at = outside_quiet
        else:
            at = earliest_send_time(now, quiet=quiet, cap=self.cap, previous_sends=previous, urgent=urgent)
        if at <= now:
            return now, None
        return at, Waiting.QUIET_HOURS if at == outside_quiet else Waiting.FREQUENCY_CAP

    def backoff_s(self, attempts: int, roll: float) -> float:
        """Equal-jitter backoff before attempt ``attempts + 1``; ``roll`` in [0, 1)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, attempts - 1))
        return ceiling / 2 + roll * ceiling / 2


def new_delivery_id() -> str:
    """32 hex characters: short enough for an SMS variable (it is the link code too), and never
    15 digits in a row, which a message filter could take for an ID number."""
    while True:
        candidate = uuid.uuid4().hex
        if not re.search(r"\d{15}", candidate):
            return candidate


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def begin_write(session: AsyncSession) -> None:
    """Make the transaction a writer from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock now, so no other writer can slip between our
    read and our write, and a lock wait happens here (under busy_timeout) rather than failing as a
    deadlock on upgrade. Must be the transaction's first statement. PostgreSQL: nothing to do;
    row locks are taken per statement.
    """
    if not is_postgres(session):
        await session.execute(text("BEGIN IMMEDIATE"))


def profile_table(kind: str) -> Table:
    return (EnterpriseRow if kind == "enterprise" else ResidentRow).__table__  # type: ignore[return-value]


@dataclass(slots=True)
class Move:
    """One wanted status change of one delivery, with the columns to set beside the status."""

    delivery_id: str
    to: DeliveryStatus
    values: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    text: str | None = None


async def move(
    session: AsyncSession,
    moves: Sequence[Move],
    *,
    allowed_from: Collection[DeliveryStatus],
    source: EventSource,
    now: datetime,
) -> dict[str, DeliveryStatus]:
    """Apply ``moves`` to rows currently in ``allowed_from``; return {id: previous status} of those applied.

    A move whose row is elsewhere (already final, moved by someone else) changes nothing and is
    recorded as an event with ``to_status`` NULL, so duplicates stay visible.
    """
    if not moves:
        return {}
    current: dict[str, DeliveryStatus] = {}
    pg = is_postgres(session)
    for part in chunks([m.delivery_id for m in moves]):
        stmt = select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(part))
        if pg:
            stmt = stmt.with_for_update()
        current.update((i, DeliveryStatus(s)) for i, s in await session.execute(stmt))
    applied: dict[str, DeliveryStatus] = {}
    groups: dict[tuple[DeliveryStatus, tuple[str, ...]], list[dict[str, Any]]] = {}
    event_rows: list[dict[str, Any]] = []
    for m in moves:
        was = current.get(m.delivery_id)
        ok = was is not None and was in allowed_from and m.to in DELIVERY_TRANSITIONS[was] and m.delivery_id not in applied
        values = dict(m.values)
        if m.to in DELIVERY_FINAL:
            values.setdefault("final_at", now)
        if ok:
            assert was is not None
            applied[m.delivery_id] = was
            groups.setdefault((was, tuple(sorted(values))), []).append(
                {"b_id": m.delivery_id, "b_from": was.value, "b_to": m.to.value, **{f"v_{k}": v for k, v in values.items()}}
            )
        event_rows.append(
            {
                "delivery_id": m.delivery_id,
                "at": now,
                "from_status": was.value if was is not None else None,
                "to_status": m.to.value if ok else None,
                "source": source.value,
                "code": m.code if ok else f"ignored:{m.to.value}",
                "text": m.text,
            }
        )
    for (_, keys), params in groups.items():
        stmt = (
            update(deliveries)
            .where(and_(deliveries.c.id == bindparam("b_id"), deliveries.c.status == bindparam("b_from")))
            .values(status=bindparam("b_to"), updated_at=now, **{k: bindparam(f"v_{k}") for k in keys})
        )
        for part in chunks(params):
            await session.execute(stmt.execution_options(synchronize_session=False), list(part))
    for part in chunks(event_rows):
        await session.execute(events.insert(), list(part))
    return applied


def _insert(session: AsyncSession) -> Any:
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(deliveries)


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: ``uq_deliveries_once`` makes a re-run (after a crash, or by a
    second node) create nothing twice, and keeps anyone from hearing of a policy twice per channel."""
    stmt = _insert(session).on_conflict_do_nothing()
    for part in chunks(rows):
        await session.execute(stmt, list(part))


async def previous_sends(
    session: AsyncSession, profiles: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[datetime]]:
    """Per (kind, id): the times of the profile's deliveries in flight or scheduled (all campaigns,
    all channels), which is what the frequency cap counts."""
    out: dict[tuple[str, str], list[datetime]] = {}
    wanted = set(profiles)
    ids = sorted({pid for _, pid in wanted})
    kinds = sorted({kind for kind, _ in wanted})
    d = deliveries.c
    for part in chunks(ids):
        # profile_kind first, so ix_deliveries_profile (kind, id, sent_at) serves the look-up
        rows = await session.execute(
            select(d.profile_kind, d.profile_id, d.sent_at, d.claimed_at, d.not_before).where(
                d.profile_kind.in_(kinds), d.profile_id.in_(part), d.status.in_([s.value for s in _COUNTS])
            )
        )
        for kind, pid, sent_at, claimed_at, not_before in rows:
            if (kind, pid) in wanted:
                out.setdefault((kind, pid), []).append(sent_at or claimed_at or not_before)
    return out


async def previous_sends_of_recipients(
    session: AsyncSession, recipients: Table, campaign_id: str, after: str, last: str
) -> dict[tuple[str, str], list[datetime]]:
    """``previous_sends`` for a campaign's recipients with ``after < profile_id <= last``: a join on a
    key range instead of a 1,000-item IN list, which PostgreSQL plans slowly at this size."""
    d, r = deliveries.c, recipients.c
    rows = await session.execute(
        select(d.profile_kind, d.profile_id, d.sent_at, d.claimed_at, d.not_before)
        .join(recipients, and_(r.profile_id == d.profile_id, r.profile_kind == d.profile_kind))
        .where(r.campaign_id == campaign_id, r.profile_id > after, r.profile_id <= last,
               d.status.in_([s.value for s in _COUNTS]))
    )  # fmt: skip
    out: dict[tuple[str, str], list[datetime]] = {}
    for kind, pid, sent_at, claimed_at, not_before in rows:
        out.setdefault((kind, pid), []).append(sent_at or claimed_at or not_before)
    return out


@dataclass(frozen=True, slots=True)
class Failed:
    """A delivery that failed for good: its recipient's next channel may be tried (invariant 2)."""

    delivery_id: str
    campaign_id: str
    policy_id: str
    profile_kind: str
    profile_id: str
    channel: str
    purpose: str


async def fall_back_after(
    session: AsyncSession,
    moves: Sequence[Move],
    applied: Mapping[str, Any],
    rows: Mapping[str, Any],
    *,
    now: datetime,
    rules: SendRules,
    skip: Callable[[Move], bool] = lambda _mv: False,
) -> int:
    """Fallbacks for the ``moves`` that took effect (``applied``) and failed for good; ``rows``
    maps delivery ids to objects with the delivery's columns (claimed or stuck rows)."""
    failed = [
        Failed(r.id, r.campaign_id, r.policy_id, r.profile_kind, r.profile_id, r.channel, r.purpose)
        for mv in moves
        if mv.delivery_id in applied and mv.to in DELIVERY_FAILED_FOR_GOOD and not skip(mv)
        for r in (rows[mv.delivery_id],)
    ]
    return await create_fallbacks(session, failed, now=now, rules=rules)


async def create_fallbacks(session: AsyncSession, failed: Sequence[Failed], *, now: datetime, rules: SendRules) -> int:
    """Create a delivery on each recipient's next reachable, not yet used channel; returns how many.

    "Not yet used" is per policy and purpose across campaigns, as the unique constraint sees it, so
    a channel that already carried (or failed) this message is never tried again.
    """
    if not failed:
        return 0
    campaign_ids = {f.campaign_id for f in failed}
    urgent = dict((await session.execute(select(campaigns.c.id, campaigns.c.urgent).where(campaigns.c.id.in_(campaign_ids)))).all())
    # only a channel whose text the approver saw may carry the fallback (invariant 1)
    approved: dict[str, set[str]] = {}
    m = messages.c
    for cid, ch in await session.execute(select(m.campaign_id, m.channel).where(m.campaign_id.in_(campaign_ids))):
        approved.setdefault(cid, set()).add(ch)
    by_kind: dict[str, set[str]] = {}
    for f in failed:
        by_kind.setdefault(f.profile_kind, set()).add(f.profile_id)
    profiles: dict[tuple[str, str], tuple[bool, list[str], set[str]]] = {}
    for kind, ids in by_kind.items():
        t = profile_table(kind)
        for part in chunks(sorted(ids)):
            rows = await session.execute(
                select(t.c.id, t.c.consent, t.c.document, t.c.phone_hash, t.c.wechat_openid_hash, t.c.app_registration_id_hash).where(
                    t.c.id.in_(part)
                )
            )
            for pid, consent, doc, *hashes in rows:
                reachable = {ch for ch, h in zip(("sms", "wechat", "app"), hashes, strict=True) if h}
                profiles[(kind, pid)] = (bool(consent), list((doc or {}).get("channels") or []), reachable)
    d = deliveries.c
    used: dict[tuple[str, str, str, str], set[str]] = {}
    blocked: dict[tuple[str, str], set[str]] = {}
    ids_all = sorted({f.profile_id for f in failed})
    for part in chunks(ids_all):
        kinds = sorted({f.profile_kind for f in failed})
        for pol, kind, pid, purpose, ch in await session.execute(
            select(d.policy_id, d.profile_kind, d.profile_id, d.purpose, d.channel).where(
                d.profile_kind.in_(kinds), d.profile_id.in_(part)
            )
        ):
            used.setdefault((pol, kind, pid, purpose), set()).add(ch)
        for kind, pid, ch in await session.execute(
            select(opt_outs.c.profile_kind, opt_outs.c.profile_id, opt_outs.c.channel).where(opt_outs.c.profile_id.in_(part))
        ):
            blocked.setdefault((kind, pid), set()).add(ch)
    prev = await previous_sends(session, {(f.profile_kind, f.profile_id) for f in failed})
    rows: list[dict[str, Any]] = []
    for f in failed:
        consent, prefs, reachable = profiles.get((f.profile_kind, f.profile_id), (False, [], set()))
        no = blocked.get((f.profile_kind, f.profile_id), set())
        if not consent or "*" in no:
            continue
        taken = used.setdefault((f.policy_id, f.profile_kind, f.profile_id, f.purpose), set()) | {f.channel}
        ok = approved.get(f.campaign_id, set())
        nxt = next((ch for ch in prefs if ch in reachable and ch in ok and ch not in taken and ch not in no), None)
        if nxt is None:
            continue
        used[(f.policy_id, f.profile_kind, f.profile_id, f.purpose)].add(nxt)
        at, waiting = rules.plan(now, nxt, prev.get((f.profile_kind, f.profile_id), []), urgent=bool(urgent.get(f.campaign_id)))
        rows.append(
            new_row(f.campaign_id, f.policy_id, f.profile_kind, f.profile_id, nxt, f.purpose, at, waiting, now, fallback_of=f.delivery_id)
        )
    await insert_deliveries(session, rows)
    return len(rows)


def new_row(
    campaign_id: str,
    policy_id: str,
    kind: str,
    profile_id: str,
    channel: str,
    purpose: str,
    not_before: datetime,
    waiting: Waiting | None,
    now: datetime,
    *,
    fallback_of: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_delivery_id(),
        "campaign_id": campaign_id,
        "policy_id": policy_id,
        "profile_kind": kind,
        "profile_id": profile_id,
        "channel": channel,
        "purpose": purpose,
        "status": DeliveryStatus.CREATED.value,
        "attempts": 0,
        "not_before": not_before,
        "waiting_for": waiting.value if waiting else None,
        "fallback_of": fallback_of,
        "created_at": now,
        "updated_at": now,
    }
