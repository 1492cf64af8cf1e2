"""Erasing contact data past the retention period (invariant 6: keep no more than needed), and pruning
the change feed.

A profile not updated for ``retention_days``, in no open campaign (draft … sending) and with no delivery
still to send loses its phone, openid and registration id: the ciphertexts and their look-up hashes are
set to NULL, with an audit entry per profile. The rest of the record stays (it still matches policies; it
just cannot be messaged until the person registers contact data again). Inbound messages (SMS replies,
WeChat follows and messages) older than ``retention_days`` are deleted; the opt-outs they made stay.
Subscriber sessions that can sign nobody in any more (expired or ended) are deleted, and so are SMS
sign-in codes older than the longest window of the request limits (a day: younger ones, used or
expired, are what the limits count). Idempotent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.storage import changes, contacts
from policy_push.storage import inbound as inbound_store
from policy_push.storage.sql import begin_write
from policy_push.subscribers.codes import purge_codes
from policy_push.subscribers.sessions import purge_sessions

__all__ = ["purge_contact_data"]

log = logging.getLogger("policy_push.retention")


async def purge_contact_data(sessions: async_sessionmaker[AsyncSession], *, now: datetime, retention_days: int) -> int:
    """Erase the contact data of stale profiles; returns how many profiles lost it."""
    cutoff = now - timedelta(days=retention_days)
    total = 0
    for kind in contacts.PROFILE_KINDS:
        async with sessions() as s, s.begin():
            await begin_write(s)
            total += len(await contacts.purge_stale_contacts(s, kind, cutoff=cutoff, detail={"retention_days": retention_days}))
    async with sessions() as s, s.begin():
        await begin_write(s)
        pruned = await changes.prune(s)
        replies = await inbound_store.purge_before(s, cutoff)
        ended = await purge_sessions(s, now=now)
        codes = await purge_codes(s, now=now)
    if total:
        log.info("erased the contact data of %d profile(s) past %d days", total, retention_days)
    if replies:
        log.info("deleted %d inbound message(s) older than %d days", replies, retention_days)
    if ended or codes:
        log.info("deleted %d ended or expired subscriber session(s) and %d sign-in code(s) older than a day", ended, codes)
    if pruned:
        log.info("pruned %d change(s) older than %s from the change feed", pruned, changes.KEEP)
    return total
