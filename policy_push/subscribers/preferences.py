"""Push preferences and consent, as the person sets them.

Channel order and categories of interest are the profile's own ``channels`` and ``categories``
(formats.md: empty categories means all), which the send rules read (``policy_push.reach``); the most
messages in any 7 days is ``subscriber_preferences.weekly_max``. Consent is a log of rows (what, when,
through which channel, which version of the wording was shown); the profile's ``consent`` flag
follows the latest row. Withdrawing takes one request, like giving.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import CHANNELS
from policy_push.errors import InvalidInput
from policy_push.storage import AuditLog, profile_repository
from policy_push.storage.sql import insert_ignore
from policy_push.storage.subscriber_tables import SubscriberConsentRow, SubscriberPreferenceRow

from .accounts import Accounts, Link

__all__ = ["CONSENT_CHANNELS", "consent_history", "preferences_of", "record_consent", "set_preferences"]

CONSENT_CHANNELS = ("web", "app", "sms", "wechat")
_p = SubscriberPreferenceRow.__table__.c  # type: ignore[attr-defined]
_c = SubscriberConsentRow.__table__.c  # type: ignore[attr-defined]
WEEKLY_MAX_LIMIT = 50


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_preferences(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("preferences must be a JSON object", loc=["body"])
    unknown = sorted(set(data) - {"channels", "categories", "weekly_max"})
    if unknown:
        raise InvalidInput(f"unknown preference {unknown[0]!r}; known: channels, categories, weekly_max", loc=["body", unknown[0]])
    out: dict[str, Any] = {}
    if "channels" in data:
        ch = data["channels"]
        if not isinstance(ch, list) or any(c not in CHANNELS for c in ch) or len(set(ch)) != len(ch):
            raise InvalidInput(f"channels is a list of distinct channels in your order of preference, from {', '.join(CHANNELS)}",
                               loc=["body", "channels"])  # fmt: skip
        out["channels"] = ch
    if "categories" in data:
        cats = data["categories"]
        if not isinstance(cats, list) or any(not isinstance(c, str) or not c.strip() or len(c) > 32 for c in cats) or len(cats) > 50:
            raise InvalidInput("categories is a list of category names (empty: every category)", loc=["body", "categories"])
        out["categories"] = list(dict.fromkeys(c.strip() for c in cats))
    if "weekly_max" in data:
        n = data["weekly_max"]
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= WEEKLY_MAX_LIMIT):
            raise InvalidInput(f"weekly_max is a whole number from 1 to {WEEKLY_MAX_LIMIT}, or null for no limit of yours",
                               loc=["body", "weekly_max"])  # fmt: skip
        out["weekly_max"] = n
    return out


async def preferences_of(session: AsyncSession, accounts: Accounts, link: Link) -> dict[str, Any]:
    profile = await profile_repository(link.profile_kind, session, accounts.cipher).get(link.profile_id)
    row = (await session.execute(select(_p.weekly_max).where(_p.profile_kind == link.profile_kind,
                                                              _p.profile_id == link.profile_id))).first()  # fmt: skip
    return {
        "channels": list(profile.channels) if profile else [],
        "categories": list(profile.categories) if profile else [],
        "weekly_max": row.weekly_max if row else None,
        "consent": bool(profile.consent) if profile else False,
    }


async def _rewrite_profile(accounts: Accounts, link: Link, account_id: str, **changes: Any) -> None:
    async with accounts.runtime.sessions() as s:
        profile = await profile_repository(link.profile_kind, s, accounts.cipher).get(link.profile_id)
    if profile is None:
        return
    record = {**profile.to_json(), **changes}
    await accounts.service.put_profile(link.profile_kind, link.profile_id, record, actor=f"subscriber:{account_id}")


async def set_preferences(accounts: Accounts, link: Link, account_id: str, data: Any) -> None:
    prefs = check_preferences(data)
    profile_changes = {k: prefs[k] for k in ("channels", "categories") if k in prefs}
    if profile_changes:
        await _rewrite_profile(accounts, link, account_id, **profile_changes)
    async with accounts.runtime.sessions() as s, s.begin():
        t = SubscriberPreferenceRow.__table__
        existing = (await s.execute(select(_p.categories, _p.weekly_max).where(
            _p.profile_kind == link.profile_kind, _p.profile_id == link.profile_id))).first()  # fmt: skip
        values = {
            "categories": prefs.get("categories", existing.categories if existing else []),
            "weekly_max": prefs.get("weekly_max", existing.weekly_max if existing else None),
            "updated_at": _now(),
        }
        if existing is None:
            await s.execute(insert_ignore(s, t, ["profile_kind", "profile_id"]).values(
                profile_kind=link.profile_kind, profile_id=link.profile_id, **values))  # fmt: skip
        else:
            await s.execute(t.update().where(_p.profile_kind == link.profile_kind, _p.profile_id == link.profile_id).values(**values))
        await AuditLog(s).record(actor=f"subscriber:{account_id}", action="subscriber.preferences", entity_type=link.profile_kind,
                                 entity_id=link.profile_id, detail={"set": sorted(prefs)})  # fmt: skip


async def record_consent(
    accounts: Accounts, link: Link, account_id: str, *, give: bool, text_version: str, channel: str, scope: str = "push"
) -> dict[str, Any]:
    """Record consent given or withdrawn and set the profile's flag to match."""
    if channel not in CONSENT_CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CONSENT_CHANNELS)}", loc=["body", "channel"])
    if not text_version or len(text_version) > 32:
        raise InvalidInput("text_version names the version of the consent wording shown (1-32 characters)",
                           loc=["body", "text_version"])  # fmt: skip
    now = _now()
    async with accounts.runtime.sessions() as s, s.begin():
        s.add(SubscriberConsentRow(account_id=account_id, profile_kind=link.profile_kind, profile_id=link.profile_id, scope=scope,
                                   action="give" if give else "withdraw", text_version=text_version, channel=channel, at=now))  # fmt: skip
        await AuditLog(s).record(actor=f"subscriber:{account_id}", action=f"subscriber.consent_{'give' if give else 'withdraw'}",
                                 entity_type=link.profile_kind, entity_id=link.profile_id,
                                 detail={"text_version": text_version, "channel": channel})  # fmt: skip
    await _rewrite_profile(accounts, link, account_id, consent=give)
    return {"consent": give, "text_version": text_version, "channel": channel, "at": now.isoformat()}


async def consent_history(session: AsyncSession, account_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(_c.profile_kind, _c.profile_id, _c.scope, _c.action, _c.text_version, _c.channel, _c.at)
                                 .where(_c.account_id == account_id).order_by(_c.at, _c.id))  # fmt: skip
    return [{"profile_kind": r.profile_kind, "profile_id": r.profile_id, "scope": r.scope, "action": r.action,
             "text_version": r.text_version, "channel": r.channel, "at": r.at.isoformat()} for r in rows]  # fmt: skip
