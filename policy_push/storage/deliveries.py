"""The outbox: the rows of ``deliveries`` and ``delivery_events``, and every write of them, in
notifications-api's ``dao_`` style (what the rows say about the past is read in :mod:`.delivery_history`).

Every status change goes through :func:`move`: the rows are locked (``FOR UPDATE`` on PostgreSQL; on
SQLite the write transaction holds the database lock from ``BEGIN IMMEDIATE``), each row's current
status is checked against the caller's ``allowed_from`` and :data:`DELIVERY_TRANSITIONS` (and, when the
move names one, against the claim the caller holds), the UPDATE repeats the status condition, and one
``delivery_events`` row records the change, or that it was refused (a late receipt, a lost lease).
Claims are moves too (``created -> sending``). Final statuses never change (invariant 4).

Leases (``claim_id``, ``claimed_by``, ``lease_until``) are set and compared on the database's clock
(:func:`~policy_push.storage.sql.database_now`), never on a worker's or the demo's simulated one.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.render import link_code
from policy_push.statuses import (
    DELIVERY_FINAL,
    DELIVERY_TRANSITIONS,
    DeliveryStatus,
    EventSource,
    Waiting,
)

from .campaign_tables import deliveries, provider_switches
from .campaign_tables import delivery_events as events
from .sql import among, chunks, insert_append, insert_ignore, is_postgres

__all__ = [
    "Delivery",
    "Move",
    "awaiting_report",
    "by_ids",
    "by_link_code",
    "by_message_ids",
    "find",
    "hold",
    "insert",
    "lapsed",
    "move",
    "new_delivery_id",
    "new_row",
    "record_events",
    "renew",
    "select_due",
    "sent_awaiting_receipt",
    "set_values",
    "unsent_of_policies",
    "unsent_of_profiles",
]

_d = deliveries.c


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery row, as the pipeline reads it (the one row type of the outbox)."""

    id: str
    campaign_id: str
    policy_id: str
    profile_kind: str
    profile_id: str
    channel: str
    purpose: str
    status: DeliveryStatus
    attempts: int
    provider: str | None
    provider_message_id: str | None
    claim_id: str | None
    claimed_at: dt.datetime | None
    unsure_since: dt.datetime | None
    fallback_of: str | None
    #: the code of the SMS link (``/s/<code>``); None only for a row made outside ``new_row``
    link_code: str | None = None
    #: when the row was made: a link expires a fixed time after it
    created_at: dt.datetime | None = None


_COLUMNS = [
    _d.id, _d.campaign_id, _d.policy_id, _d.profile_kind, _d.profile_id, _d.channel, _d.purpose, _d.status,
    _d.attempts, _d.provider, _d.provider_message_id, _d.claim_id, _d.claimed_at, _d.unsure_since, _d.fallback_of,
    _d.link_code, _d.created_at,
]  # fmt: skip


def _row(r: Any) -> Delivery:
    return Delivery(*r[:7], DeliveryStatus(r[7]), *r[8:])


def new_delivery_id() -> str:
    """32 hex characters: short enough for an SMS variable (it is the link code too), and never
    15 digits in a row, which a message filter could take for an ID number."""
    while True:
        candidate = uuid.uuid4().hex
        if not re.search(r"\d{15}", candidate):
            return candidate


def new_row(
    campaign_id: str, policy_id: str, kind: str, profile_id: str, channel: str, purpose: str,
    not_before: dt.datetime, waiting: Waiting | None, now: dt.datetime, *, fallback_of: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A ``created`` row for :func:`insert`."""
    return {
        "id": new_delivery_id(), "campaign_id": campaign_id, "policy_id": policy_id, "profile_kind": kind,
        "profile_id": profile_id, "channel": channel, "purpose": purpose, "status": DeliveryStatus.CREATED.value,
        "attempts": 0, "not_before": not_before, "waiting_for": waiting.value if waiting else None,
        "fallback_of": fallback_of, "link_code": link_code(), "created_at": now, "updated_at": now,
    }  # fmt: skip


async def insert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: ``uq_deliveries_once`` makes a re-run (after a crash, or by a
    second node) create nothing twice, and keeps anyone from hearing of a policy twice per channel."""
    stmt = insert_ignore(session, deliveries)
    for part in chunks(rows):
        await session.execute(stmt, list(part))


@dataclass(slots=True)
class Move:
    """One wanted status change of one delivery, with the columns to set beside the status.

    ``claim_id``: move only if the row is still under this claim (the sender's own, or the one settle saw).
    """

    delivery_id: str
    to: DeliveryStatus
    values: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    text: str | None = None
    claim_id: str | None = None


async def move(
    session: AsyncSession,
    moves: Sequence[Move],
    *,
    allowed_from: Collection[DeliveryStatus],
    source: EventSource,
    now: dt.datetime,
    lapsed_before: dt.datetime | None = None,
    locked: Collection[Delivery] = (),
) -> dict[str, DeliveryStatus]:
    """Apply ``moves`` to rows currently in ``allowed_from``; return {id: previous status} of those applied.

    ``lapsed_before`` (a database time): move only rows whose lease ended before it (settle's moves).
    A move whose row is elsewhere (already final, moved or claimed by someone else, its lease renewed)
    changes nothing and is recorded as an event with ``to_status`` NULL, so duplicates stay visible.
    ``locked``: rows this transaction read and locked itself (``select_due``), whose state is then known
    without reading them again; the others are read and locked here.
    """
    if not moves:
        return {}
    current: dict[str, tuple[DeliveryStatus, str | None, dt.datetime | None]] = {}
    mine = {r.id: r for r in locked}
    for r in mine.values():
        current[r.id] = (r.status, r.claim_id, None)
    for part in chunks([m.delivery_id for m in moves if m.delivery_id not in mine]):
        stmt = select(_d.id, _d.status, _d.claim_id, _d.lease_until).where(among(session, _d.id, part))
        if is_postgres(session):
            stmt = stmt.with_for_update()
        current.update((i, (DeliveryStatus(s), c, lease)) for i, s, c, lease in await session.execute(stmt))
    applied: dict[str, DeliveryStatus] = {}
    # moves that set the same values (a claim, a cancellation) go as one UPDATE … WHERE id IN (…);
    # the others (each row its own message id, say) as one executemany per set of columns
    same: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[str]] = {}
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    event_rows: list[dict[str, Any]] = []
    for m in moves:
        was, claim, lease = current.get(m.delivery_id, (None, None, None))
        ok = (
            was is not None
            and was in allowed_from
            and m.to in DELIVERY_TRANSITIONS[was]
            and m.delivery_id not in applied
            and (m.claim_id is None or m.claim_id == claim)
            and (lapsed_before is None or lease is None or lease < lapsed_before)
        )
        values = dict(m.values)
        if m.to in DELIVERY_FINAL:
            values.setdefault("final_at", now)
        if ok:
            assert was is not None
            applied[m.delivery_id] = was
            key = (was.value, m.to.value, tuple(sorted(values.items())))
            try:
                same.setdefault(key, []).append(m.delivery_id)
            except TypeError:  # a value that cannot be compared (a dict): a row of its own
                groups.setdefault((was.value, tuple(sorted(values))), []).append(
                    {"b_id": m.delivery_id, "b_from": was.value, "b_to": m.to.value, **{f"v_{k}": v for k, v in values.items()}}
                )
        event_rows.append({
            "delivery_id": m.delivery_id, "at": now, "from_status": was.value if was is not None else None,
            "to_status": m.to.value if ok else None, "source": source.value,
            "code": m.code if ok else f"ignored:{m.to.value}", "text": m.text,
        })  # fmt: skip
    for (was_value, to_value, items), ids in same.items():
        if len(ids) == 1:
            groups.setdefault((was_value, tuple(k for k, _ in items)), []).append(
                {"b_id": ids[0], "b_from": was_value, "b_to": to_value, **{f"v_{k}": v for k, v in items}}
            )
            continue
        for part in chunks(ids):
            await session.execute(
                update(deliveries)
                .where(among(session, _d.id, part), _d.status == was_value)
                .values(status=to_value, updated_at=now, **dict(items))
                .execution_options(synchronize_session=False)
            )
    for (_, keys), params in groups.items():
        stmt = (
            update(deliveries)
            .where(and_(_d.id == bindparam("b_id"), _d.status == bindparam("b_from")))
            .values(status=bindparam("b_to"), updated_at=now, **{k: bindparam(f"v_{k}") for k in keys})
        )
        for part in chunks(params):
            await session.execute(stmt.execution_options(synchronize_session=False), list(part))
    await record_events(session, event_rows)
    return applied


async def hold(
    session: AsyncSession, held: Sequence[tuple[str, str | None]], *, until: dt.datetime, lapsed_before: dt.datetime,
    now: dt.datetime, code: str, text: str,
) -> list[str]:  # fmt: skip
    """Give lapsed ``sending`` rows (id, the claim settle saw) a new lease until ``until`` (a database time),
    so settle asks about them again then; a row renewed, moved or reclaimed meanwhile is left alone.
    Returns the ids held; each gets an event (``sending`` -> ``sending``, ``code``)."""
    done: list[str] = []
    for delivery_id, claim in held:
        stmt = (
            update(deliveries)
            .where(_d.id == delivery_id, _d.status == DeliveryStatus.SENDING.value,
                   _d.claim_id.is_(None) if claim is None else _d.claim_id == claim,
                   (_d.lease_until < lapsed_before) | _d.lease_until.is_(None))
            .values(lease_until=until, updated_at=now)
            .returning(_d.id)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        done += list((await session.execute(stmt)).scalars())
    await record_events(session, [
        {"delivery_id": i, "at": now, "from_status": DeliveryStatus.SENDING.value, "to_status": DeliveryStatus.SENDING.value,
         "source": EventSource.SETTLE.value, "code": code, "text": text} for i in done
    ])  # fmt: skip
    return done


async def record_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Events, appended (by COPY on PostgreSQL when there are many: a batch records one per row)."""
    await insert_append(session, events, rows)


async def set_values(session: AsyncSession, ids: Collection[str], *, status: DeliveryStatus, **values: Any) -> None:
    """Set columns other than the status on rows still in ``status`` (a postponed ``not_before``, a touch)."""
    for part in chunks(sorted(ids)):
        await session.execute(
            update(deliveries).where(among(session, _d.id, part), _d.status == status.value).values(**values)
            .execution_options(synchronize_session=False)
        )  # fmt: skip


# -- the sender's queries ------------------------------------------------------------------------------


async def select_due(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[Delivery]:
    """Up to ``limit`` ``created`` rows due at ``now``, oldest first; locked with SKIP LOCKED on PostgreSQL
    so any number of workers take disjoint batches without waiting on each other."""
    stmt = (
        select(*_COLUMNS)
        .where(_d.status == DeliveryStatus.CREATED.value, _d.not_before <= now)
        .order_by(_d.not_before)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return [_row(r) for r in await session.execute(stmt)]


async def renew(
    session: AsyncSession, held: Mapping[str, Collection[str]], *, until: dt.datetime, calling_at: dt.datetime | None = None
) -> set[str]:
    """Extend the leases of rows still ``sending`` under the claims in ``held`` (claim id -> delivery ids);
    returns the ids that are still ours. A row settled or reclaimed meanwhile is not touched.

    ``calling_at``: the rows are about to be handed to a provider; their ``unsure_since`` becomes this
    time unless an earlier call already set it (settle then knows a row without one was never sent)."""
    values: dict[str, Any] = {"lease_until": until}
    if calling_at is not None:
        values["unsure_since"] = func.coalesce(_d.unsure_since, bindparam("calling_at", calling_at, type_=_d.unsure_since.type))
    mine: set[str] = set()
    for claim_id, ids in held.items():
        for part in chunks(sorted(ids)):
            stmt = (
                update(deliveries)
                .where(_d.claim_id == claim_id, among(session, _d.id, part), _d.status == DeliveryStatus.SENDING.value)
                .values(**values)
                .returning(_d.id)
                .execution_options(synchronize_session=False)
            )
            mine.update((await session.execute(stmt)).scalars())
    return mine


async def lapsed(session: AsyncSession, *, db_now: dt.datetime, limit: int) -> list[Delivery]:
    """``sending`` rows whose lease ended before ``db_now`` (their worker died or lost the database)."""
    stmt = (
        select(*_COLUMNS)
        .where(_d.status == DeliveryStatus.SENDING.value, (_d.lease_until < db_now) | _d.lease_until.is_(None))
        .order_by(_d.lease_until)
        .limit(limit)
    )
    return [_row(r) for r in await session.execute(stmt)]


async def sent_awaiting_receipt(
    session: AsyncSession, *, channels: Collection[str], horizon: dt.datetime, limit: int
) -> list[Delivery]:
    """``sent`` rows of ``channels`` sent (and last looked at) before ``horizon``: their receipt is overdue."""
    stmt = (
        select(*_COLUMNS)
        .where(_d.status == DeliveryStatus.SENT.value, _d.channel.in_(list(channels)), _d.sent_at <= horizon,
               _d.updated_at <= horizon)
        .order_by(_d.sent_at)
        .limit(limit)
    )  # fmt: skip
    return [_row(r) for r in await session.execute(stmt)]


async def awaiting_report(
    session: AsyncSession, *, provider: str, horizon: dt.datetime, since: dt.datetime, limit: int
) -> list[tuple[Delivery, dt.datetime]]:
    """``sent`` rows of ``provider`` sent between ``since`` and ``horizon`` and not looked at since ``horizon``,
    with their ``sent_at``: the rows whose delivery report is to be pulled (JPush)."""
    stmt = (
        select(*_COLUMNS, _d.sent_at)
        .where(_d.status == DeliveryStatus.SENT.value, _d.provider == provider, _d.sent_at <= horizon,
               _d.sent_at >= since, _d.updated_at <= horizon, _d.provider_message_id.is_not(None))
        .order_by(_d.sent_at)
        .limit(limit)
    )  # fmt: skip
    return [(_row(r[:-1]), r[-1]) for r in await session.execute(stmt)]


async def by_ids(session: AsyncSession, ids: Collection[str]) -> list[Delivery]:
    out: list[Delivery] = []
    for part in chunks(sorted(ids)):
        out += [_row(r) for r in await session.execute(select(*_COLUMNS).where(_d.id.in_(part)))]
    return out


async def by_message_ids(session: AsyncSession, message_ids: Collection[str]) -> list[Delivery]:
    """Rows carrying these provider message ids (an Aliyun batch shares one BizId among its members)."""
    out: list[Delivery] = []
    for part in chunks(sorted(message_ids)):
        out += [_row(r) for r in await session.execute(select(*_COLUMNS).where(_d.provider_message_id.in_(part)))]
    return out


async def find(session: AsyncSession, ids: Sequence[str]) -> Delivery | None:
    """The row with one of these ids (a link's id, or the dashed and undashed forms of a short code)."""
    found = await session.execute(select(*_COLUMNS).where(_d.id.in_(list(ids))).limit(1))
    row = found.first()
    return None if row is None else _row(row)


async def by_link_code(session: AsyncSession, code: str) -> Delivery | None:
    """The row whose SMS link carries ``code``; None when none does, or when two do (codes are random
    and not unique: a rare clash opens neither row rather than the wrong one)."""
    found = (await session.execute(select(*_COLUMNS).where(_d.link_code == code).limit(2))).all()
    return _row(found[0]) if len(found) == 1 else None


async def mark_opened(session: AsyncSession, delivery_id: str, now: dt.datetime) -> None:
    """The first time the person opened the page their message links to (later visits change nothing)."""
    await session.execute(update(deliveries).where(_d.id == delivery_id, _d.opened_at.is_(None)).values(opened_at=now))


async def unsent_of_policies(session: AsyncSession, policy_ids: Collection[str], *, limit: int) -> list[str]:
    """Ids of ``created`` rows of these policies."""
    stmt = select(_d.id).where(_d.policy_id.in_(list(policy_ids)), _d.status == DeliveryStatus.CREATED.value)
    return list((await session.execute(stmt.limit(limit))).scalars())


async def unsent_of_profiles(session: AsyncSession, profiles: Collection[tuple[str, str]], channel: str) -> list[Delivery]:
    """``created`` rows of these profiles on ``channel`` (to cancel after an opt-out)."""
    out: list[Delivery] = []
    for kind, pid in sorted(set(profiles)):
        stmt = select(*_COLUMNS).where(
            _d.profile_kind == kind, _d.profile_id == pid, _d.channel == channel, _d.status == DeliveryStatus.CREATED.value
        )
        out += [_row(r) for r in await session.execute(stmt)]
    return out


async def resume_point(session: AsyncSession, campaign_id: str) -> str:
    """The last profile id with a first-choice row of the campaign ("" when none): rows are written in
    profile order, so writing resumes past it after a crash."""
    found = await session.scalar(select(func.max(_d.profile_id)).where(_d.campaign_id == campaign_id, _d.fallback_of.is_(None)))
    return found or ""


async def record_switches(session: AsyncSession, switches: Sequence[Any]) -> None:
    """Provider failovers (``channels.ProviderSwitch``), with their reasons."""
    if switches:
        await session.execute(
            provider_switches.insert(),
            [{"at": sw.at, "channel": sw.kind, "from_provider": sw.from_provider, "to_provider": sw.to_provider,
              "reason": sw.reason} for sw in switches],
        )  # fmt: skip
