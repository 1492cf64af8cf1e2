"""Campaigns, their recipients and messages: every query of those tables, in the ``dao_`` style.

A campaign's state changes only through :func:`move_state`, an UPDATE guarded by
:data:`~policy_push.statuses.CAMPAIGN_TRANSITIONS` (and by the caller's expected states), so two staff
members or two nodes acting at once cannot both move it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import NotFound
from policy_push.statuses import (
    CAMPAIGN_TRANSITIONS,
    DELIVERY_UNSENT,
    CampaignState,
    DeliveryStatus,
    Purpose,
)

from .campaign_tables import CampaignRecipientRow, CampaignRow, campaigns, messages, recipients
from .campaign_tables import deliveries as _deliveries
from .sql import among, chunks, is_postgres
from .tables import PolicyRow, PolicyVersionRow

__all__ = [
    "NOT_SKIPPED",
    "RecipientLines",
    "bodies",
    "due_scheduled",
    "get",
    "insert_campaign",
    "latest_announcement",
    "move_state",
    "open_of_policies",
    "policies_without_campaign",
    "recipient_page",
    "recipient_rows",
    "recipients_after",
    "recount",
    "sms_reason_counts",
    "stream_recipients",
]

_c, _r, _m = campaigns.c, recipients.c, messages.c
#: the ``skip_reason`` filter value for recipients who will be messaged
NOT_SKIPPED = "none"


async def get(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> CampaignRow:
    """The campaign (``FOR UPDATE`` with ``lock``, so two staff members acting at once take turns); NotFound."""
    stmt = select(CampaignRow).where(CampaignRow.id == campaign_id).execution_options(populate_existing=True)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    campaign = await session.scalar(stmt)
    if campaign is None:
        raise NotFound.of("campaign", campaign_id)
    return campaign


async def move_state(
    session: AsyncSession,
    campaign_id: str,
    to: CampaignState,
    *,
    now: dt.datetime,
    expect: Collection[CampaignState] | None = None,
    **values: Any,
) -> bool:
    """Move the campaign to ``to`` if its state allows it (and is in ``expect``); True when it moved."""
    sources = [s for s, targets in CAMPAIGN_TRANSITIONS.items() if to in targets and (expect is None or s in expect)]
    result = await session.execute(
        update(campaigns)
        .where(_c.id == campaign_id, _c.state.in_([s.value for s in sources]))
        .values(state=to.value, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def insert_campaign(
    session: AsyncSession,
    row: dict[str, Any],
    recipient_rows: Sequence[dict[str, Any]],
    bodies_by_channel: dict[str, dict[str, Any]],
) -> None:
    await session.execute(insert(campaigns), [row])
    for part in chunks(recipient_rows, 5000):
        await session.execute(insert(recipients), list(part))
    if bodies_by_channel:
        await session.execute(
            insert(messages), [{"campaign_id": row["id"], "channel": ch, "body": b} for ch, b in bodies_by_channel.items()]
        )


async def bodies(session: AsyncSession, campaign_id: str) -> dict[str, dict[str, Any]]:
    """channel -> the approved message body."""
    rows = await session.execute(select(_m.channel, _m.body).where(_m.campaign_id == campaign_id).order_by(_m.channel))
    return dict(rows.all())


async def put_bodies(session: AsyncSession, campaign_id: str, new: dict[str, dict[str, Any]]) -> None:
    stored = await bodies(session, campaign_id)
    for channel, body in new.items():
        if channel in stored:
            await session.execute(
                update(messages).where(_m.campaign_id == campaign_id, _m.channel == channel).values(body=body)
            )
        else:
            await session.execute(insert(messages), [{"campaign_id": campaign_id, "channel": channel, "body": body}])


async def policy_document(session: AsyncSession, policy_id: str, version: int) -> dict[str, Any] | None:
    """The formats.md record of one version of a policy (what a campaign was drafted from)."""
    return await session.scalar(  # type: ignore[no-any-return]
        select(PolicyVersionRow.document).where(PolicyVersionRow.policy_id == policy_id, PolicyVersionRow.version == version)
    )


async def latest_announcement(session: AsyncSession, policy_id: str, *, states: Collection[CampaignState] = ()) -> Any:
    """The newest announcement campaign of a policy (in ``states`` when given), or None."""
    stmt = select(campaigns).where(_c.policy_id == policy_id, _c.purpose == Purpose.ANNOUNCE.value)
    if states:
        stmt = stmt.where(_c.state.in_([s.value for s in states]))
    return (await session.execute(stmt.order_by(_c.created_at.desc(), _c.policy_version.desc()).limit(1))).first()


async def has_campaign(session: AsyncSession, policy_id: str, purpose: Purpose) -> bool:
    n = await session.scalar(select(func.count()).select_from(campaigns).where(_c.policy_id == policy_id, _c.purpose == purpose.value))
    return bool(n)


async def ids_in_state(session: AsyncSession, state: CampaignState, *, policy_id: str | None = None) -> list[str]:
    stmt = select(_c.id).where(_c.state == state.value)
    if policy_id is not None:
        stmt = stmt.where(_c.policy_id == policy_id)
    return list((await session.execute(stmt)).scalars())


async def open_of_policies(session: AsyncSession, policy_ids: Collection[str]) -> list[tuple[str, str]]:
    """(campaign id, policy id) of the campaigns of these policies not done or cancelled."""
    open_states = [s.value for s, targets in CAMPAIGN_TRANSITIONS.items() if targets]
    rows = await session.execute(select(_c.id, _c.policy_id).where(_c.policy_id.in_(list(policy_ids)), _c.state.in_(open_states)))
    return [(c, p) for c, p in rows]


async def due_scheduled(session: AsyncSession, *, now: dt.datetime) -> list[tuple[str, str]]:
    """(id, purpose) of ``scheduled`` campaigns whose send time has come, earliest first."""
    rows = await session.execute(
        select(_c.id, _c.purpose)
        .where(_c.state == CampaignState.SCHEDULED.value, or_(_c.send_at.is_(None), _c.send_at <= now))
        .order_by(_c.send_at, _c.id)
    )
    return [(i, p) for i, p in rows]


async def policies_without_campaign(session: AsyncSession, *, on: dt.date) -> list[str]:
    """Open policies whose current version has no campaign (oldest change first)."""
    has = exists().where(and_(CampaignRow.policy_id == PolicyRow.id, CampaignRow.policy_version == PolicyRow.version))
    rows = await session.execute(
        select(PolicyRow.id)
        .where(or_(PolicyRow.apply_until.is_(None), PolicyRow.apply_until >= on), ~has)
        .order_by(PolicyRow.updated_at, PolicyRow.id)
    )
    return list(rows.scalars())


async def finish(session: AsyncSession, campaign_ids: Iterable[str], *, now: dt.datetime, receipt_horizon: dt.datetime,
                 receipt_channels: Collection[str]) -> list[str]:  # fmt: skip
    """Move ``sending`` campaigns with nothing left to do to ``done``; returns those moved.

    Nothing left: no row created or sending, and no row of ``receipt_channels`` sent after
    ``receipt_horizon`` (its receipt may still report a failure, which starts a fallback)."""
    d = _deliveries.c
    done = []
    for campaign_id in sorted(set(campaign_ids)):
        busy = exists().where(
            d.campaign_id == campaign_id,
            or_(
                d.status.in_([s.value for s in DELIVERY_UNSENT]),
                and_(d.status == DeliveryStatus.SENT.value, d.channel.in_(list(receipt_channels)), d.sent_at > receipt_horizon),
            ),
        )
        result = await session.execute(
            update(campaigns)
            .where(_c.id == campaign_id, _c.state == CampaignState.SENDING.value, ~busy)
            .values(state=CampaignState.DONE.value, updated_at=now)
        )
        if getattr(result, "rowcount", 0):
            done.append(campaign_id)
    return done


async def count_by_purpose(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(_c.purpose, func.count()).group_by(_c.purpose))
    return {p: int(n) for p, n in rows}


async def list_page(session: AsyncSession, *, state: str | None, policy_id: str | None, limit: int, offset: int
                    ) -> tuple[list[CampaignRow], int]:  # fmt: skip
    conditions: list[ColumnElement[bool]] = []
    if state is not None:
        conditions.append(CampaignRow.state == state)
    if policy_id is not None:
        conditions.append(CampaignRow.policy_id == policy_id)
    total = await session.scalar(select(func.count()).select_from(CampaignRow).where(*conditions))
    rows = await session.scalars(
        select(CampaignRow).where(*conditions).order_by(CampaignRow.created_at.desc(), CampaignRow.id).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


# -- recipients -----------------------------------------------------------------------------------------


async def recipient_rows(session: AsyncSession, campaign_id: str, profile_ids: Sequence[str]) -> dict[str, CampaignRecipientRow]:
    """The recipient rows (ORM, for changes) of these profiles."""
    found: dict[str, CampaignRecipientRow] = {}
    for part in chunks(list(profile_ids), 500):
        rows = await session.scalars(
            select(CampaignRecipientRow)
            .where(CampaignRecipientRow.campaign_id == campaign_id, CampaignRecipientRow.profile_id.in_(part))
            .execution_options(populate_existing=True)
        )
        found.update({r.profile_id: r for r in rows})
    return found


async def stream_recipients(session: AsyncSession, campaign_id: str) -> AsyncIterator[Any]:
    """(kind, profile id, channel, skip reason, reasons, message reason) of every recipient by profile
    id, streamed."""
    rows = await session.stream(
        select(_r.profile_kind, _r.profile_id, _r.channel, _r.skip_reason, _r.reasons, _r.message_reason)
        .where(_r.campaign_id == campaign_id)
        .order_by(_r.profile_id)
    )
    async for row in rows:
        yield row


async def recipients_after(session: AsyncSession, campaign_id: str, after: str, limit: int) -> list[Any]:
    """The next ``limit`` messaged recipients (kind, profile id, channel) with profile id > ``after``."""
    rows = await session.execute(
        select(_r.profile_kind, _r.profile_id, _r.channel)
        .where(_r.campaign_id == campaign_id, _r.channel.is_not(None), _r.skip_reason.is_(None), _r.profile_id > after)
        .order_by(_r.profile_id)
        .limit(limit)
    )
    return list(rows)


class RecipientLines(NamedTuple):
    """A recipient's reason lines: all of them (staff), the one a message may quote, and those a
    public page may show (None for rows drafted before the engine flagged sensitive lines)."""

    reasons: list[str]
    message_reason: str | None = None
    public_reasons: list[str] | None = None


async def reasons_of(session: AsyncSession, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], RecipientLines]:
    """(campaign id, profile id) -> the recipient's reason lines."""
    out: dict[tuple[str, str], RecipientLines] = {}
    for campaign_id in {c for c, _ in pairs}:
        ids = sorted({p for c, p in pairs if c == campaign_id})
        for part in chunks(ids):
            for pid, reasons, quoted, public in await session.execute(
                select(_r.profile_id, _r.reasons, _r.message_reason, _r.public_reasons)
                .where(_r.campaign_id == campaign_id, among(session, _r.profile_id, part))
            ):
                out[(campaign_id, pid)] = RecipientLines(
                    list(reasons or []), quoted, None if public is None else list(public)
                )
    return out


def recipient_filters(campaign_id: str, *, eligible: bool | None = None, skip_reason: str | None = None,
                      channel: str | None = None) -> list[ColumnElement[bool]]:  # fmt: skip
    out: list[ColumnElement[bool]] = [CampaignRecipientRow.campaign_id == campaign_id]
    if eligible is not None:
        out.append(CampaignRecipientRow.eligible.is_(eligible))
    if skip_reason == NOT_SKIPPED:
        out.append(CampaignRecipientRow.skip_reason.is_(None))
    elif skip_reason is not None:
        out.append(CampaignRecipientRow.skip_reason == skip_reason)
    if channel is not None:
        out.append(CampaignRecipientRow.channel == channel)
    return out


async def recipient_page(session: AsyncSession, conditions: list[ColumnElement[bool]], *, limit: int, offset: int
                         ) -> tuple[list[CampaignRecipientRow], int]:  # fmt: skip
    """A page of recipients, best score first, and the total for the conditions."""
    total = await session.scalar(select(func.count()).select_from(CampaignRecipientRow).where(*conditions))
    rows = await session.scalars(
        select(CampaignRecipientRow).where(*conditions)
        .order_by(CampaignRecipientRow.score.desc(), CampaignRecipientRow.profile_id).limit(limit).offset(offset)
    )  # fmt: skip
    return list(rows), int(total or 0)


async def sms_reason_counts(session: AsyncSession, campaign_id: str) -> list[tuple[str | None, int]]:
    """(message reason, recipients) of the campaign's first-choice SMS recipients who will be messaged."""
    rows = await session.execute(
        select(_r.message_reason, func.count())
        .where(_r.campaign_id == campaign_id, _r.channel == "sms", _r.skip_reason.is_(None))
        .group_by(_r.message_reason)
    )
    return [(reason, int(n)) for reason, n in rows]


async def recount(session: AsyncSession, campaign_id: str) -> list[tuple[str | None, str | None, int]]:
    """(channel, skip reason, recipients) groups of a campaign."""
    grouped = await session.execute(
        select(_r.channel, _r.skip_reason, func.count()).where(_r.campaign_id == campaign_id).group_by(_r.channel, _r.skip_reason)
    )
    return [(ch, skip, int(n)) for ch, skip, n in grouped]


async def recipients_of(session: AsyncSession, campaign_id: str) -> dict[tuple[str, str], tuple[bool, RecipientLines]]:
    """(kind, profile id) -> (eligible, reason lines) of every recipient."""
    rows = await session.execute(
        select(_r.profile_kind, _r.profile_id, _r.eligible, _r.reasons, _r.message_reason, _r.public_reasons)
        .where(_r.campaign_id == campaign_id)
    )
    return {
        (k, p): (bool(e), RecipientLines(list(reasons or []), quoted, None if public is None else list(public)))
        for k, p, e, reasons, quoted, public in rows
    }


async def stray_recipients(session: AsyncSession, campaign_id: str, reference_id: str) -> int:
    """Recipients of ``campaign_id`` who are not on ``reference_id``'s list."""
    a = recipients.alias("a")
    n = await session.scalar(
        select(func.count()).select_from(recipients)
        .where(_r.campaign_id == campaign_id, ~exists().where(and_(a.c.campaign_id == reference_id, a.c.profile_id == _r.profile_id)))
    )  # fmt: skip
    return int(n or 0)


async def policies_closing(session: AsyncSession, *, first: dt.date, last: dt.date) -> list[tuple[str, dt.date]]:
    """(policy id, apply_until) of the policies closing between ``first`` and ``last`` (inclusive)."""
    rows = await session.execute(
        select(PolicyRow.id, PolicyRow.apply_until).where(
            PolicyRow.apply_until.is_not(None), PolicyRow.apply_until >= first, PolicyRow.apply_until <= last
        )
    )
    return [(p, d) for p, d in rows]


async def policies_closed_by(session: AsyncSession, day: dt.date) -> list[tuple[str, dt.date]]:
    """(policy id, apply_until) of the policies whose last day is ``day`` or earlier."""
    rows = await session.execute(
        select(PolicyRow.id, PolicyRow.apply_until).where(PolicyRow.apply_until.is_not(None), PolicyRow.apply_until <= day)
    )
    return [(p, d) for p, d in rows]


async def channels_with_text(session: AsyncSession, campaign_ids: Collection[str]) -> dict[str, set[str]]:
    """campaign id -> the channels it has an approved text for (only those may carry a fallback)."""
    out: dict[str, set[str]] = {}
    for cid, ch in await session.execute(select(_m.campaign_id, _m.channel).where(_m.campaign_id.in_(list(campaign_ids)))):
        out.setdefault(cid, set()).add(ch)
    return out


async def urgent(session: AsyncSession, campaign_ids: Collection[str]) -> set[str]:
    """The urgent ones of these campaigns (their messages may go out in quiet hours)."""
    rows = await session.execute(select(_c.id).where(_c.id.in_(list(campaign_ids)), _c.urgent.is_(True)))
    return set(rows.scalars())


async def states(session: AsyncSession, campaign_ids: Collection[str]) -> dict[str, CampaignState]:
    rows = await session.execute(select(_c.id, _c.state).where(_c.id.in_(list(campaign_ids))))
    return {i: CampaignState(s) for i, s in rows}


async def announcement_funnel(session: AsyncSession) -> tuple[int, int, int]:
    """Over the announcement campaigns not cancelled: recipients eligible, may-qualify, and to be messaged."""
    live = select(_c.id).where(_c.purpose == Purpose.ANNOUNCE.value, _c.state != CampaignState.CANCELLED.value)
    base = select(func.count()).select_from(recipients).where(_r.campaign_id.in_(live))
    eligible = await session.scalar(base.where(_r.eligible.is_(True)))
    may = await session.scalar(base.where(_r.eligible.is_(False)))
    messaged = await session.scalar(base.where(_r.skip_reason.is_(None)))
    return int(eligible or 0), int(may or 0), int(messaged or 0)
