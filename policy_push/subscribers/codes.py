"""One-time SMS codes: 6 digits, valid 5 minutes, 5 attempts, stored only as a keyed hash.

Requests are limited per phone (1 a minute, 5 an hour, 10 a day) and per client address (30 an hour),
counted from the code rows themselves so every node of a cluster sees the same counts. Counting and
taking a slot are one step (:func:`reserve_code`): the row is written, as ``pending``, in the transaction
that counted, under a lock of the phone and of the address (PostgreSQL advisory locks; SQLite's write
lock), before the SMS goes; so two requests racing on two nodes cannot both take the last slot. Answers never
say whether a phone has an account: a code is sent the same way to a new phone and a known one, and
every failed check reads the same. A code is compared in constant time (``hmac.compare_digest`` over
the keyed hashes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import InvalidInput, TooManyRequests
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus
from policy_push.storage.sql import begin_write, is_postgres
from policy_push.storage.subscriber_tables import SubscriberCodeRow

__all__ = ["BIND_LINK", "BIND_PENDING", "CODE_DIGITS", "CODE_TTL", "MAX_ATTEMPTS", "PENDING", "WRONG_CODE", "CodeLimits",
           "check_code", "check_limits", "code_hash", "mark_sent", "new_code", "purge_codes", "reserve_code"]

CODE_DIGITS = 6
CODE_TTL = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 5
_c = SubscriberCodeRow.__table__.c  # type: ignore[attr-defined]
#: how long code rows are kept: the longest window of the limits
_KEEP = dt.timedelta(days=1)
WRONG_CODE = "the code is wrong or has expired; ask for a new code"


@dataclass(frozen=True, slots=True)
class CodeLimits:
    """Most code requests per phone and per client address in each window (count, seconds)."""

    per_phone: tuple[tuple[int, int], ...] = ((1, 60), (5, 3600), (10, 86400))
    per_client: tuple[tuple[int, int], ...] = ((30, 3600),)
    #: failed checks of one phone's codes in an hour before every check is refused for that hour
    failures_per_hour: int = 10


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(cipher: PiiCipher, phone_hash: str, code: str) -> str:
    # keyed and tied to the phone: a copy of the table does not give the codes back
    return cipher.lookup_hash("sms_code", f"{phone_hash}:{code}")


#: ``sent`` of the rows that are WeChat binding links (``wechat_bind``), not sign-in codes
BIND_LINK = "bind_link"
#: ``sent`` of a row whose SMS is on its way (a sign-in code, a binding link): it counts for the limits and
#: is never accepted as a code (a code is checked only once its row says "sent")
PENDING = "pending"
BIND_PENDING = "bind_pending"
_BIND_ROWS = (BIND_LINK, BIND_PENDING)


async def _count_since(
    session: AsyncSession, column: str, value: str, since: dt.datetime, purpose: str | None
) -> tuple[int, dt.datetime | None]:
    conditions = [_c[column] == value, _c.created_at >= since]
    if purpose is not None:
        conditions.append(_c.sent.in_(_BIND_ROWS) if purpose == "bind" else _c.sent.not_in(_BIND_ROWS))
    row = (await session.execute(select(func.count(), func.min(_c.created_at)).where(*conditions))).one()
    return int(row[0] or 0), row[1]


async def check_limits(
    session: AsyncSession, *, phone_hash: str, client_hash: str, now: dt.datetime, limits: CodeLimits, purpose: str = "code"
) -> None:
    """429 (with the seconds to wait) when another SMS of ``purpose`` (``code`` or ``bind``) may not be sent
    now. The per-phone limits count that purpose's SMS; the per-address limit counts every SMS asked for."""
    for column, rules in (("phone_hash", limits.per_phone), ("client_hash", limits.per_client)):
        value = phone_hash if column == "phone_hash" else client_hash
        for count, seconds in rules:
            n, oldest = await _count_since(session, column, value, now - dt.timedelta(seconds=seconds),
                                           purpose if column == "phone_hash" else None)  # fmt: skip
            if n >= count:
                oldest = oldest or now
                wait = max(1, int((oldest + dt.timedelta(seconds=seconds) - now).total_seconds()) + 1)
                who = "this phone number" if column == "phone_hash" else "this address"
                raise TooManyRequests(
                    f"too many codes asked for {who}; try again in {wait} seconds", loc=["body", "phone"], retry_after_s=wait
                )


async def purge_codes(session: AsyncSession, *, now: dt.datetime) -> int:
    """Delete the code rows older than the longest window of the limits (used, expired or not): the
    retention tick's sweep, for when nobody asks for a code for a while. A younger row stays even when
    used or expired, because the limits are counted from it. Returns how many went."""
    result = await session.execute(delete(SubscriberCodeRow.__table__).where(_c.created_at < now - _KEEP))
    return int(getattr(result, "rowcount", 0) or 0)


def _lock_key(kind: str, value: str) -> int:
    # a signed 64-bit advisory lock key of our own for one phone or one address (keys are hashes already)
    return int.from_bytes(hashlib.sha256(f"subscriber_codes:{kind}:{value}".encode()).digest()[:8], "big", signed=True)


async def _lock_slots(session: AsyncSession, *, phone_hash: str, client_hash: str) -> None:
    """Hold the phone's and the address's slots until the transaction ends: counts read after this are
    not changed by another request before ours is written (or rolled back)."""
    if is_postgres(session):
        # in one order everywhere (by key), so two requests sharing a phone or an address never deadlock
        for key in sorted({_lock_key("phone", phone_hash), _lock_key("client", client_hash)}):
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    else:  # SQLite has one writer at a time: take the write lock before counting
        await begin_write(session)


async def reserve_code(
    session: AsyncSession, *, phone_hash: str, client_hash: str, code_hash: str, now: dt.datetime, expires_at: dt.datetime,
    limits: CodeLimits, purpose: str = "code",
) -> int:
    """Count and take one slot of ``purpose`` (``code`` or ``bind``) atomically: 429 when the limits are
    reached, else a ``pending`` row is written (it counts from now on) and its id returned; the caller
    sends the SMS after this transaction and then records the outcome with :func:`mark_sent`.

    Must open the transaction (SQLite's write lock is taken by its first statement)."""
    await _lock_slots(session, phone_hash=phone_hash, client_hash=client_hash)
    await check_limits(session, phone_hash=phone_hash, client_hash=client_hash, now=now, limits=limits, purpose=purpose)
    # rows older than the longest window of the limits have done their work: they go now, so the
    # table holds about one day of requests (no personal value is in it; the hashes are keyed)
    await purge_codes(session, now=now)
    row = SubscriberCodeRow(
        phone_hash=phone_hash, client_hash=client_hash, code_hash=code_hash, created_at=now, expires_at=expires_at,
        attempts=0, used_at=None, sent=BIND_PENDING if purpose == "bind" else PENDING,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    return int(row.id)


async def mark_sent(session: AsyncSession, row_id: int, sent: str) -> None:
    """The SMS outcome of a reserved row: ``sent`` (or the binding link's mark) makes the code usable; a
    provider's refusal code leaves it unusable and still counted."""
    await session.execute(update(SubscriberCodeRow.__table__).where(_c.id == row_id).values(sent=sent[:64]))


async def check_code(
    session: AsyncSession, cipher: PiiCipher, *, phone_hash: str, code: str, now: dt.datetime, limits: CodeLimits
) -> bool:
    """True: ``code`` is the phone's live code, now used up. False: it is not (the caller commits the
    spent attempt, then answers :data:`WRONG_CODE`, the same words whatever went wrong).

    Only the newest live code counts; each check spends one of its attempts, right or wrong, so five
    guesses end it. Too many failures on one phone in an hour lock the phone's checks for the hour."""
    if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
        raise InvalidInput(f"the code is {CODE_DIGITS} digits, as in the SMS", loc=["body", "code"])
    failed = await session.scalar(
        select(func.coalesce(func.sum(_c.attempts), 0)).where(
            _c.phone_hash == phone_hash, _c.created_at >= now - dt.timedelta(hours=1), _c.used_at.is_(None)
        )
    )
    if int(failed or 0) >= limits.failures_per_hour:
        raise TooManyRequests("too many wrong codes for this phone number; try again in an hour", loc=["body", "code"],
                              retry_after_s=3600)  # fmt: skip
    row = (await session.execute(
        select(_c.id, _c.code_hash, _c.attempts).where(
            _c.phone_hash == phone_hash, _c.used_at.is_(None), _c.expires_at > now, _c.sent == DeliveryStatus.SENT
        ).order_by(_c.created_at.desc(), _c.id.desc()).limit(1)
    )).first()  # fmt: skip
    if row is None or row.attempts >= MAX_ATTEMPTS:
        return False
    table = SubscriberCodeRow.__table__
    ok = hmac.compare_digest(row.code_hash, code_hash(cipher, phone_hash, code))
    values = {"used_at": now} if ok else {"attempts": row.attempts + 1}
    await session.execute(update(table).where(_c.id == row.id, _c.attempts == row.attempts).values(**values))
    return ok
