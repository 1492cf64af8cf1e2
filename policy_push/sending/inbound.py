"""What people send back through the providers, applied: SMS replies and WeChat follows, unfollows and messages.

====================================  ======================================================================
arrives                               does (one transaction per push; a repeated push records nothing twice)
====================================  ======================================================================
an SMS reply that opts out            an SMS opt-out for every profile with that phone (matched by keyed
(TD, T, N, R, 退订, 取消:               hash: enterprises and residents alike), source ``sms_uplink``; their
``channels.classify_reply``)          queued SMS (``created``) cancelled at once, code OPTED_OUT
any other SMS reply                   stored for staff (``inbound_messages``, kind ``message``)
a WeChat unfollow                     a WeChat opt-out for every profile with that openid (source
                                      ``wechat_unfollow``), queued WeChat rows cancelled
a WeChat send answered 43004          the same as an unfollow (source ``wechat_not_following``), in the
("require subscribe": ``sending.      transaction that records the send's result: the person unfollowed,
recording``)                          though WeChat gave up pushing us the event (it stops after its retries)
a WeChat follow                       recorded only: a re-follow does not silently restore what the person
                                      withdrew (staff or the person's own preferences can)
a WeChat text that opts out           a WeChat opt-out (source ``wechat_message``); other texts stored
subscription pop-up / change events   recorded (which templates were accepted or rejected)
====================================  ======================================================================

The claim re-checks opt-outs before every send (``sending.claims``), so a row this misses (claimed a moment
before) is the only one that can still go out; cancelled rows start no fallback: the person said stop on
that channel, and their other channels get the policy only if the campaign had them first.
Send results (TEMPLATESENDJOBFINISH, subscribe_msg_sent_event) are receipts: ``sending.receipts``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import Reply, ReplyKind, WechatEvent, WechatEventKind, classify_reply
from policy_push.reach import contact_field
from policy_push.security import PiiCipher
from policy_push.statuses import Code, DeliveryStatus, EventSource, InboundKind, OptOutSource
from policy_push.storage import contacts, deliveries
from policy_push.storage import inbound as inbound_store
from policy_push.storage.deliveries import Move
from policy_push.storage.sql import begin_write

__all__ = ["WECHAT_NOT_FOLLOWING", "InboundReport", "apply_not_following", "apply_replies", "apply_wechat_event"]

log = logging.getLogger("policy_push.inbound")

#: WeChat's answer to a send to someone who does not follow the account (需要接收者关注, "require subscribe")
WECHAT_NOT_FOLLOWING = "43004"


@dataclass(frozen=True, slots=True)
class InboundReport:
    recorded: int = 0
    #: pushes recorded before (the provider pushed again, or a pull returned what a callback brought)
    duplicates: int = 0
    #: opt-outs newly recorded (one per profile and channel)
    opt_outs: int = 0
    #: queued deliveries cancelled by them
    cancelled: int = 0


async def _profiles(session: AsyncSession, cipher: PiiCipher, channel: str, address: str) -> list[tuple[str, str]]:
    return await contacts.profiles_by_hash(session, channel, cipher.lookup_hash(contact_field(channel), address))


async def _opt_out(
    session: AsyncSession, profiles: Sequence[tuple[str, str]], *, channel: str, source: OptOutSource, actor: str,
    now: datetime,
) -> tuple[int, int]:  # fmt: skip
    """Opt ``profiles`` out of ``channel`` and cancel their queued rows there; returns (new opt-outs, cancelled)."""
    new = 0
    for kind, pid in profiles:
        new += await contacts.record_opt_out(
            session, profile_kind=kind, profile_id=pid, channel=channel, source=source, actor=actor, at=now
        )
    queued = await deliveries.unsent_of_profiles(session, profiles, channel) if profiles else []
    moves = [Move(r.id, DeliveryStatus.CANCELLED, code=Code.OPTED_OUT, text=f"opted out ({source.value})") for r in queued]
    applied = await deliveries.move(session, moves, allowed_from={DeliveryStatus.CREATED}, source=EventSource.OPT_OUT, now=now)
    return new, len(applied)


async def apply_replies(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, replies: Sequence[Reply], *, now: datetime
) -> InboundReport:
    """Record one push of SMS replies; opt-outs take effect in the same transaction."""
    recorded = dupes = opt_outs = cancelled = 0
    async with sessions() as s, s.begin():
        await begin_write(s)
        for reply in replies:
            kind = InboundKind.OPT_OUT if reply.kind is ReplyKind.OPT_OUT else InboundKind.MESSAGE
            phone = reply.phone[-11:]  # a pulled reply may carry +86; profiles store the 11 digits
            people = await _profiles(s, cipher, "sms", phone) if kind is InboundKind.OPT_OUT else []
            new = await inbound_store.record(
                s, cipher, provider=reply.provider, channel="sms", kind=kind, sender=phone, text=reply.text,
                dedupe="\x1f".join(("sms", reply.provider, phone, *reply.key[2:])), profiles=len(people),
                sent_at=reply.received_at, now=now,
            )  # fmt: skip
            if not new:
                dupes += 1
                continue
            recorded += 1
            if people:
                n, c = await _opt_out(
                    s, people, channel="sms", source=OptOutSource.SMS_UPLINK, actor=f"{reply.provider} reply", now=now
                )
                opt_outs, cancelled = opt_outs + n, cancelled + c
    report = InboundReport(recorded, dupes, opt_outs, cancelled)
    if recorded:
        log.info("SMS replies: %s", report)
    return report


_EVENT_KIND = {
    WechatEventKind.SUBSCRIBE: InboundKind.FOLLOW,
    WechatEventKind.UNSUBSCRIBE: InboundKind.UNFOLLOW,
    WechatEventKind.SUBSCRIBE_MSG_POPUP: InboundKind.SUBSCRIPTION,
    WechatEventKind.SUBSCRIBE_MSG_CHANGE: InboundKind.SUBSCRIPTION,
}


async def apply_wechat_event(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, event: WechatEvent, *, now: datetime
) -> InboundReport:
    """Record a WeChat push that is not a send result; an unfollow (or a 退订 text) stops WeChat messages."""
    if event.kind is WechatEventKind.TEXT:
        kind = InboundKind.OPT_OUT if classify_reply(event.text) is ReplyKind.OPT_OUT else InboundKind.MESSAGE
    else:
        kind = _EVENT_KIND.get(event.kind)  # type: ignore[assignment]
    if kind is None or not event.openid:
        return InboundReport()  # of no interest (menu clicks, locations …), or no sender to hold it to
    text = event.text or ",".join(f"{c.template_id}:{c.status}" for c in event.subscriptions)
    stamp = event.created_at.isoformat() if event.created_at else ""
    async with sessions() as s, s.begin():
        await begin_write(s)
        stops = kind in (InboundKind.UNFOLLOW, InboundKind.OPT_OUT)
        people = await _profiles(s, cipher, "wechat", event.openid) if stops else []
        # WeChat's own rule for a repeated push: the same sender and CreateTime (and event)
        new = await inbound_store.record(
            s, cipher, provider="wechat", channel="wechat", kind=kind, sender=event.openid, text=text,
            dedupe="\x1f".join(("wechat", event.openid, stamp, event.event, text)), profiles=len(people),
            sent_at=event.created_at, now=now,
        )  # fmt: skip
        if not new:
            return InboundReport(duplicates=1)
        if stops:
            source = OptOutSource.WECHAT_UNFOLLOW if kind is InboundKind.UNFOLLOW else OptOutSource.WECHAT_MESSAGE
            n, c = await _opt_out(s, people, channel="wechat", source=source, actor="wechat", now=now)
            log.info("WeChat %s: %d opt-out(s), %d queued message(s) cancelled", kind.value, n, c)
            return InboundReport(1, 0, n, c)
    return InboundReport(1)


async def apply_not_following(session: AsyncSession, people: Sequence[tuple[str, str]], *, now: datetime) -> InboundReport:
    """WeChat answered 43004 "require subscribe" to a send to ``people`` ((kind, id)): they unfollowed, whether
    or not the unfollow event reached us (WeChat stops pushing it after its last retry, and a ``serve`` that
    was down or overloaded all that time never learns of it). Recorded as an unfollow event is, in the
    caller's transaction: a WeChat opt-out for every profile with that openid and their queued WeChat rows
    cancelled; a later follow does not undo it."""
    hashes = await contacts.contact_hashes(session, people) if people else {}
    everyone: set[tuple[str, str]] = set()
    for digest in {h["wechat"] for h in hashes.values() if "wechat" in h}:
        everyone.update(await contacts.profiles_by_hash(session, "wechat", digest))
    if not everyone:
        return InboundReport()
    n, c = await _opt_out(
        session, sorted(everyone), channel="wechat", source=OptOutSource.WECHAT_NOT_FOLLOWING,
        actor=f"wechat {WECHAT_NOT_FOLLOWING}", now=now,
    )  # fmt: skip
    if n or c:
        log.info("WeChat %s (not following): %d opt-out(s), %d queued message(s) cancelled", WECHAT_NOT_FOLLOWING, n, c)
    return InboundReport(0, 0, n, c)
