"""The messages of claimed rows: each recipient's text rendered from the campaign's approved bodies.

The approved bodies of a campaign are read once per process and kept (they never change once approved:
a change sends the campaign back to draft). A row that cannot be sent as it stands gets its result at
once, without a provider call: no address on its channel, no approved text for its channel, or a text
that breaks the channel's rules for this recipient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import ChannelError, OutboundMessage, Outcome, SendResult
from policy_push.campaigns import quoted_reason, render_for_recipient
from policy_push.campaigns.messages import SmsFits, short_code
from policy_push.security.links import LinkSigner
from policy_push.statuses import Code
from policy_push.storage import campaigns as campaign_store

from .claims import Outgoing

__all__ = ["Renderer"]


class Renderer:
    """Renders claimed rows into provider messages, with a cache of the campaigns' approved bodies.
    ``links`` signs each WeChat/app message's link token (expiring ``link_ttl_days`` after sending)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], links: LinkSigner) -> None:
        self.sessions = sessions
        self.links = links
        self._bodies: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        #: per (campaign, channel): the SMS layout and title that fitted each reason (``render_for_recipient``)
        self._fits: dict[tuple[str, str], SmsFits] = {}

    async def prepare(self, rows: Sequence[Outgoing]) -> tuple[dict[str, SendResult], dict[str, list[OutboundMessage]]]:
        """Each row's message, by channel kind; rows that cannot be sent get their result at once."""
        await self._load(rows)
        results: dict[str, SendResult] = {}
        by_kind: dict[str, list[OutboundMessage]] = {}
        for o in rows:
            row = o.row
            body = self._bodies.get((row.campaign_id, row.channel))
            if o.address is None:
                results[row.id] = SendResult(row.id, Outcome.UNREACHABLE, "", code=Code.NO_ADDRESS, text="no address for this channel")
                continue
            if body is None:
                results[row.id] = SendResult(row.id, Outcome.PERMANENT, "", code=Code.NO_APPROVED_MESSAGE,
                                             text="no approved message for this channel")  # fmt: skip
                continue
            try:
                code = row.link_code or short_code(row.id)
                token = self.links.sign(code, now=dt.datetime.now(dt.UTC))
                msg = render_for_recipient(body, reason=quoted_reason(o.reasons), delivery_id=row.id,
                                           address=o.address, code=code, token=token,
                                           fits=self._fits.setdefault((row.campaign_id, row.channel), {}))
            except ChannelError as exc:  # breaks a channel rule: never sendable as it is
                results[row.id] = SendResult(row.id, Outcome.PERMANENT, "", code=exc.code, text=str(exc))
                continue
            by_kind.setdefault(row.channel, []).append(msg)
        return results, by_kind

    async def _load(self, rows: Sequence[Outgoing]) -> None:
        missing = {(o.row.campaign_id, o.row.channel) for o in rows} - self._bodies.keys()
        if not missing:
            return
        async with self.sessions() as s:
            for campaign_id in {c for c, _ in missing}:
                found = await campaign_store.bodies(s, campaign_id)
                for cid, channel in missing:
                    if cid == campaign_id:
                        self._bodies[(cid, channel)] = found.get(channel)
