"""What staff see of a campaign: counts, the score histogram, the messages as rendered, the top
recipients and the may-qualify list, with every contact masked.  One read model for the JSON
API, the HTML page and the CLI demo (:func:`render_preview_text`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from matchers import field_label
from policy_push.domain import LOCAL_TZ
from policy_push.errors import InvalidInput
from policy_push.security import PiiCipher
from policy_push.statuses import CampaignState, SkipReason
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaign_tables import CampaignRecipientRow, CampaignRow
from policy_push.storage.campaigns import NOT_SKIPPED, RankCursor
from policy_push.storage.contacts import masked_contacts

from .approval import shown_hash

__all__ = [
    "NOT_SKIPPED",
    "CampaignView",
    "RankCursor",
    "RecipientLine",
    "campaign_json",
    "campaign_preview_text",
    "counted_total",
    "cursor_of",
    "decode_cursor",
    "encode_cursor",
    "list_recipients",
    "load_campaign_view",
    "render_preview_text",
]

def _local(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL_TZ).isoformat()


@dataclass(frozen=True, slots=True)
class RecipientLine:
    profile_id: str
    profile_kind: str
    eligible: bool
    score: float
    reasons: list[str]
    missing: list[str]
    channel: str | None
    skip_reason: str | None
    excluded_by: str | None
    #: channel -> masked address (``138****5678``); never a plaintext value
    contacts: dict[str, str | None]

    @property
    def missing_labels(self) -> list[str]:
        """``missing`` in the Chinese names staff read ("企业规模", not ``size``)."""
        return [field_label(f, self.profile_kind) for f in self.missing]

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id, "profile_kind": self.profile_kind, "eligible": self.eligible,
            "score": round(self.score, 4), "reasons": self.reasons, "missing": self.missing,
            "missing_labels": self.missing_labels, "channel": self.channel,
            "skip_reason": self.skip_reason, "excluded_by": self.excluded_by, "contacts": self.contacts,
        }  # fmt: skip


@dataclass(slots=True)
class CampaignView:
    campaign: dict[str, Any]
    summary: dict[str, Any]
    #: channel -> the stored preview (text, title, length, segments, max_length …)
    messages: dict[str, dict[str, Any]]
    top: list[RecipientLine] = field(default_factory=list)
    may_qualify: list[RecipientLine] = field(default_factory=list)
    #: SHA-256 of the list and texts as they are now (campaigns.approval.approval_hash): an approval
    #: that names it is refused (409) once anything changed
    list_sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.campaign,
            "list_sha256": self.list_sha256,
            "summary": self.summary,
            "messages": self.messages,
            "top_recipients": [r.as_dict() for r in self.top],
            "may_qualify": [r.as_dict() for r in self.may_qualify],
        }


def campaign_json(row: CampaignRow, *, policy_title: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id, "policy_id": row.policy_id, "policy_version": row.policy_version, "policy_title": policy_title,
        "audience": row.audience, "purpose": row.purpose, "state": row.state, "urgent": row.urgent,
        "prepared_by": row.prepared_by, "approved_by": row.approved_by, "approved_at": _local(row.approved_at),
        "approval_sha256": row.approval_sha256, "send_at": _local(row.send_at),
        "created_at": _local(row.created_at), "updated_at": _local(row.updated_at),
    }  # fmt: skip


async def _lines(
    session: AsyncSession, cipher: PiiCipher, kind: str, rows: list[CampaignRecipientRow]
) -> list[RecipientLine]:
    contacts = await masked_contacts(session, cipher, kind, [r.profile_id for r in rows])
    return [
        RecipientLine(
            r.profile_id, r.profile_kind, r.eligible, r.score, list(r.reasons or []), list(r.missing or []),
            r.channel, r.skip_reason, r.excluded_by, contacts.get(r.profile_id, {}),
        )
        for r in rows
    ]


async def list_recipients(
    session: AsyncSession,
    cipher: PiiCipher,
    campaign_id: str,
    *,
    eligible: bool | None = None,
    skip_reason: str | None = None,
    channel: str | None = None,
    limit: int = 50,
    offset: int = 0,
    after: RankCursor | None = None,
    with_total: bool = True,
) -> tuple[list[RecipientLine], int]:
    """A page of recipients, best score first (ties by id), contacts masked; and the total for the
    filters (0 without ``with_total``). ``after``: the page after this recipient (keyset; the next
    page's cursor is the last line's :func:`cursor_of`), the same cost at any depth of the list."""
    campaign = await campaign_store.get(session, campaign_id)
    conditions = campaign_store.recipient_filters(campaign_id, eligible=eligible, skip_reason=skip_reason, channel=channel)
    rows = await campaign_store.recipient_page(session, conditions, limit=limit, offset=offset, after=after)
    total = 0
    if with_total:
        known = counted_total(campaign, eligible=eligible, skip_reason=skip_reason, channel=channel)
        total = known if known is not None else await campaign_store.recipient_count(session, conditions)
    return await _lines(session, cipher, campaign.audience, rows), total


def cursor_of(line: RecipientLine) -> RankCursor:
    return RankCursor(line.score, line.profile_id)


def encode_cursor(cursor: RankCursor) -> str:
    """A page's ``next``: the last recipient's exact score and id, opaque to the caller (base64url JSON;
    JSON keeps the float's every digit, so the keyset compares equal to the stored score)."""
    return base64.urlsafe_b64encode(json.dumps([cursor.score, cursor.profile_id]).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> RankCursor:
    """The inverse of :func:`encode_cursor`; 422 for anything it did not make."""
    try:
        score, profile_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if isinstance(score, bool) or not isinstance(score, int | float) or not isinstance(profile_id, str):
            raise ValueError("not a cursor")
    except (ValueError, TypeError) as exc:
        raise InvalidInput("after must be the `next` of a previous page", loc=["query", "after"]) from exc
    return RankCursor(float(score), profile_id)


def counted_total(campaign: CampaignRow, *, eligible: bool | None, skip_reason: str | None, channel: str | None) -> int | None:
    """The number of recipients for these filters from the counts kept in an announcement's summary
    (written with the draft, recounted after each exclude/include), or None when they do not say it.
    Counting a million rows per page is what this spares."""
    s = campaign.summary or {}
    if campaign.state == CampaignState.DRAFTING.value or "to_message_total" not in s or eligible is not None:
        return None
    if skip_reason is None and channel is None:
        return int(s.get("recipients", 0))
    if skip_reason == NOT_SKIPPED:
        return int(s.get("to_message_total", 0)) if channel is None else int((s.get("to_message") or {}).get(channel, 0))
    if skip_reason is not None and channel is None:
        return int((s.get("skipped") or {}).get(skip_reason, 0))
    return None


async def load_campaign_view(session: AsyncSession, cipher: PiiCipher, campaign_id: str, *, top_n: int = 10) -> CampaignView:
    campaign = await campaign_store.get(session, campaign_id)
    doc = await campaign_store.policy_document(session, campaign.policy_id, campaign.policy_version)
    messages = {channel: dict(body.get("preview", {})) for channel, body in (await campaign_store.bodies(session, campaign_id)).items()}
    sms = messages.get("sms")
    if sms is not None:
        sms["billed_segments"] = await _billed_segments(session, campaign, sms)
    top, _ = await list_recipients(session, cipher, campaign_id, skip_reason=NOT_SKIPPED, limit=top_n, with_total=False)
    maybe, _ = await list_recipients(session, cipher, campaign_id, eligible=False, limit=top_n, with_total=False)
    return CampaignView(
        campaign_json(campaign, policy_title=(doc or {}).get("title")), dict(campaign.summary or {}), messages, top, maybe,
        list_sha256=await shown_hash(session, campaign),
    )


async def _billed_segments(session: AsyncSession, campaign: CampaignRow, preview: dict[str, Any]) -> int:
    """The SMS segments the campaign's first-choice SMS recipients will be billed, by the segments of
    each recipient's quoted reason (a reason the preview did not render counts at the longest). The
    counts kept in the summary when it has them (every edit recounts them), else counted now."""
    by_reason = {reason: n for reason, n in preview.get("segments_by_reason") or []}
    worst = int(preview.get("max_segments") or preview.get("segments") or 1)
    total = 0
    kept = (campaign.summary or {}).get("sms_reasons")
    counted = kept if kept is not None else await campaign_store.sms_reason_counts(session, campaign.id)
    for reason, count in counted:
        total += count * int(by_reason.get(reason, worst))
    return total


def _reasons(line: RecipientLine, limit: int = 3) -> str:
    return "；".join(line.reasons[:limit]) or "—"


def render_preview_text(view: CampaignView, *, top_n: int = 5) -> str:
    """A plain-text preview for the terminal: counts, the top recipients with masked contacts and
    reasons, the may-qualify ones with what is missing, and the rendered SMS with its length."""
    c, s = view.campaign, view.summary
    out = [
        f"campaign {c['id']} [{c['state']}]  policy {c['policy_id']} v{c['policy_version']}",
        f"  {c.get('policy_title') or ''}",
        f"  matched: {s.get('eligible', 0)} eligible, {s.get('may_qualify', 0)} may qualify"
        f" (of {s.get('profiles', 0)} profiles){'  — NO CRITERIA: every profile matches' if s.get('no_criteria') else ''}",
        "  to message: " + (", ".join(f"{ch} {n}" for ch, n in s.get("to_message", {}).items()) or "nobody")
        + f"  (total {s.get('to_message_total', 0)})",
        "  skipped: " + (", ".join(f"{k} {v}" for k, v in s.get("skipped", {}).items()) or "none"),
    ]
    if view.top:
        out.append("  top recipients:")
        for line in view.top[:top_n]:
            contact = (line.contacts or {}).get(line.channel or "") or "—"
            out.append(f"    {line.score:.3f}  {line.profile_id}  {line.channel}:{contact}  {_reasons(line)}")
    if view.may_qualify:
        out.append("  may qualify (missing data):")
        for line in view.may_qualify[:top_n]:
            out.append(f"    {line.profile_id}  缺少 {'、'.join(line.missing_labels) or '—'}  [{line.skip_reason or 'included'}]")
    sms = view.messages.get("sms")
    if sms:
        out.append(
            f"  SMS ({sms.get('length')} characters, {sms.get('segments')} segment(s); "
            f"longest with any recipient's reason {sms.get('max_length')} / {sms.get('max_segments')}; "
            f"billed for all SMS recipients: {sms.get('billed_segments', '?')} segment(s)):"
        )
        out.append(f"    {sms.get('text')}")
    for channel in ("wechat", "app"):
        msg = view.messages.get(channel)
        if msg:
            out.append(f"  {channel}: {msg.get('title')} — {' / '.join(str(v) for v in (msg.get('params') or {}).values()) or msg.get('text')}")
    skipped = s.get("skipped", {})
    if SkipReason.MAY_QUALIFY.value in skipped:
        out.append(f"  ({skipped[SkipReason.MAY_QUALIFY.value]} may-qualify profiles are listed, not messaged, unless included)")
    return "\n".join(out)


async def campaign_preview_text(session: AsyncSession, cipher: PiiCipher, campaign_id: str, *, top_n: int = 5) -> str:
    """:func:`render_preview_text` of a stored campaign (for the CLI demo)."""
    return render_preview_text(await load_campaign_view(session, cipher, campaign_id, top_n=top_n), top_n=top_n)
