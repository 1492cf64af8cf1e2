"""The data subject's rights (PIPL Art. 44-47): see everything held about me, and erase my account.

Export: the account (phone, when proven, WeChat binding), every profile it speaks for, whole, with its
preferences, the consent log, the sessions, and the deliveries, feedback and opt-outs of those profiles.

Erase: the phone and openid ciphertexts and hashes of the account are nulled and it is marked
``deleted``; its sessions end; its codes go; profiles it owns are deleted through the write service
(contact data, ID number and the match index with them); links are removed. What stays, because the
service must be able to show what it did: deliveries and feedback under the profile's opaque id (no
contact data is kept in them), the consent log (proof of consent, under the account's opaque id) and
an audit row of the erasure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy import delete, select, update

from policy_push.errors import NotFound
from policy_push.storage import AuditLog, profile_repository
from policy_push.storage.campaign_tables import DeliveryRow, FeedbackRow, OptOutRow
from policy_push.storage.subscriber_tables import (
    SubscriberAccountRow,
    SubscriberCodeRow,
    SubscriberLinkRow,
    SubscriberPreferenceRow,
    SubscriberSessionRow,
)

from .accounts import Accounts
from .preferences import consent_history, preferences_of
from .sessions import end_sessions

__all__ = ["erase_account", "export_account"]

_a = SubscriberAccountRow.__table__.c  # type: ignore[attr-defined]
_s = SubscriberSessionRow.__table__.c  # type: ignore[attr-defined]
_d = DeliveryRow.__table__.c  # type: ignore[attr-defined]
_f = FeedbackRow.__table__.c  # type: ignore[attr-defined]
_o = OptOutRow.__table__.c  # type: ignore[attr-defined]


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


async def export_account(accounts: Accounts, account_id: str) -> dict[str, Any]:
    cipher = accounts.cipher
    async with accounts.runtime.sessions() as s, s.begin():
        acc = (await s.execute(select(SubscriberAccountRow.__table__).where(_a.id == account_id))).first()
        if acc is None or acc.state != "active":
            raise NotFound("this account has been erased", loc=["header", "Authorization"])
        links = await accounts.links(s, account_id)
        profiles = []
        for link in links:
            if link.state != "active":
                continue
            profile = await profile_repository(link.profile_kind, s, cipher).get(link.profile_id)
            d_rows = await s.execute(select(_d.id, _d.policy_id, _d.channel, _d.purpose, _d.status, _d.created_at, _d.sent_at)
                                     .where(_d.profile_kind == link.profile_kind, _d.profile_id == link.profile_id)
                                     .order_by(_d.created_at))  # fmt: skip
            f_rows = await s.execute(select(_f.policy_id, _f.kind, _f.delivery_id, _f.at)
                                     .where(_f.profile_kind == link.profile_kind, _f.profile_id == link.profile_id)
                                     .order_by(_f.at))  # fmt: skip
            o_rows = await s.execute(select(_o.channel, _o.source, _o.at)
                                     .where(_o.profile_kind == link.profile_kind, _o.profile_id == link.profile_id))  # fmt: skip
            profiles.append({
                **link.as_json(),
                "profile": profile.to_json() if profile is not None else None,
                "preferences": await preferences_of(s, accounts, link),
                "deliveries": [{"id": r.id, "policy_id": r.policy_id, "channel": r.channel, "purpose": r.purpose,
                                "status": r.status, "created_at": _iso(r.created_at), "sent_at": _iso(r.sent_at)} for r in d_rows],
                "feedback": [{"policy_id": r.policy_id, "kind": r.kind, "delivery_id": r.delivery_id, "at": _iso(r.at)}
                             for r in f_rows],
                "opt_outs": [{"channel": r.channel, "source": r.source, "at": _iso(r.at)} for r in o_rows],
            })  # fmt: skip
        sessions = await s.execute(select(_s.client, _s.created_at, _s.expires_at, _s.revoked_at).where(_s.account_id == account_id))
        consents = await consent_history(s, account_id)
        await AuditLog(s).record(actor=f"subscriber:{account_id}", action="subscriber.export", entity_type="subscriber",
                                 entity_id=account_id)  # fmt: skip
    return {
        "account": {
            "id": account_id, "phone": cipher.decrypt("phone", acc.phone_enc) if acc.phone_enc else None,
            "phone_proven_at": _iso(acc.phone_proven_at),
            "wechat_openid": cipher.decrypt("wechat_openid", acc.wechat_openid_enc) if acc.wechat_openid_enc else None,
            "wechat_bound_at": _iso(acc.wechat_bound_at), "created_at": _iso(acc.created_at),
        },
        "links": [x.as_json() for x in links],
        "profiles": profiles,
        "consents": consents,
        "sessions": [{"client": r.client, "created_at": _iso(r.created_at), "expires_at": _iso(r.expires_at),
                      "ended_at": _iso(r.revoked_at)} for r in sessions],
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
    }  # fmt: skip


async def erase_account(accounts: Accounts, account_id: str) -> dict[str, Any]:
    """Erase the account and the profiles it owns; returns what was done (ids only)."""
    now = dt.datetime.now(dt.UTC)
    async with accounts.runtime.sessions() as s, s.begin():
        phone_hash = await s.scalar(select(_a.phone_hash).where(_a.id == account_id, _a.state == "active"))
        links = await accounts.links(s, account_id)
    owned = [x for x in links if x.role == "owner" and x.state == "active"]
    for link in owned:
        with contextlib.suppress(NotFound):  # deleted by staff meanwhile
            await accounts.service.delete_profile(link.profile_kind, link.profile_id, actor=f"subscriber:{account_id}")
    async with accounts.runtime.sessions() as s, s.begin():
        for link in owned:
            pc = SubscriberPreferenceRow.__table__.c
            await s.execute(delete(SubscriberPreferenceRow.__table__).where(pc.profile_kind == link.profile_kind,
                                                                             pc.profile_id == link.profile_id))  # fmt: skip
            # other contacts of an erased enterprise speak for nothing any more
            lc = SubscriberLinkRow.__table__.c
            await s.execute(delete(SubscriberLinkRow.__table__).where(lc.profile_kind == link.profile_kind,
                                                                       lc.profile_id == link.profile_id))  # fmt: skip
        await s.execute(delete(SubscriberLinkRow.__table__).where(SubscriberLinkRow.__table__.c.account_id == account_id))
        if phone_hash is not None:
            await s.execute(delete(SubscriberCodeRow.__table__).where(SubscriberCodeRow.__table__.c.phone_hash == phone_hash))
        await end_sessions(s, account_id, now=now)
        await s.execute(update(SubscriberAccountRow.__table__).where(_a.id == account_id).values(
            state="deleted", phone_enc=None, phone_hash=None, wechat_openid_enc=None, wechat_openid_hash=None,
            deleted_at=now, updated_at=now))  # fmt: skip
        detail = {"profiles_deleted": [f"{x.profile_kind}:{x.profile_id}" for x in owned]}
        await AuditLog(s).record(actor=f"subscriber:{account_id}", action="subscriber.erase", entity_type="subscriber",
                                 entity_id=account_id, detail=detail)  # fmt: skip
    return {"erased": True, **detail}
