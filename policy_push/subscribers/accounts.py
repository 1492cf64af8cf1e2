"""Accounts and the profiles they speak for: sign-up and sign-in with a proven phone, a resident's own
profile, an enterprise linked by its credit code (a second contact waits for the first one's or
staff's approval), and the one check every subscriber request passes: which profiles this account may
reach (:meth:`Accounts.profile_of`). Another person's profile id is answered as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import Contact
from policy_push.errors import Conflict, InvalidInput, NotAllowed, NotFound
from policy_push.runtime import Runtime
from policy_push.service import Service
from policy_push.storage import AuditLog, profile_repository
from policy_push.storage.subscriber_tables import SubscriberAccountRow, SubscriberLinkRow

__all__ = ["Accounts", "Link", "normalise_phone"]

_a = SubscriberAccountRow.__table__.c  # type: ignore[attr-defined]
_l = SubscriberLinkRow.__table__.c  # type: ignore[attr-defined]
#: what a subscriber may not set in their own profile: who they are and how to reach them is proven, not typed
_FIXED = ("id", "contact", "consent")


def normalise_phone(raw: Any) -> str:
    """An 11-digit mainland mobile number, or a 422 naming the field."""
    try:
        phone = Contact(phone=raw).phone
    except ValidationError as exc:
        raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, "), loc=["body", "phone"]) from None
    if phone is None:
        raise InvalidInput("phone is required", loc=["body", "phone"])
    return phone


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    profile_kind: str
    profile_id: str
    role: str
    state: str

    def as_json(self) -> dict[str, Any]:
        return {"link_id": self.id, "profile_kind": self.profile_kind, "profile_id": self.profile_id, "role": self.role,
                "state": self.state}  # fmt: skip


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Accounts:
    def __init__(self, runtime: Runtime, service: Service) -> None:
        self.runtime = runtime
        self.service = service

    @property
    def cipher(self):  # type: ignore[no-untyped-def]
        return self.runtime.cipher

    def phone_hash(self, phone: str) -> str:
        return self.cipher.lookup_hash("phone", phone)

    # ---- accounts ---------------------------------------------------------------------------------
    async def sign_up_or_in(self, session: AsyncSession, phone: str, *, now: dt.datetime) -> tuple[str, bool]:
        """The account of a phone just proven, made if new: (id, created)."""
        digest = self.phone_hash(phone)
        found = await session.scalar(select(_a.id).where(_a.phone_hash == digest))
        if found is not None:
            await session.execute(update(SubscriberAccountRow.__table__).where(_a.id == found)
                                  .values(phone_proven_at=now, updated_at=now))  # fmt: skip
            return found, False
        account_id = uuid.uuid4().hex
        session.add(SubscriberAccountRow(
            id=account_id, state="active", phone_enc=self.cipher.encrypt("phone", phone), phone_hash=digest,
            phone_proven_at=now, created_at=now, updated_at=now,
        ))  # fmt: skip
        await session.flush()
        await AuditLog(session).record(actor=f"subscriber:{account_id}", action="subscriber.sign_up",
                                       entity_type="subscriber", entity_id=account_id)  # fmt: skip
        return account_id, True

    async def phone_of(self, session: AsyncSession, account_id: str) -> str:
        blob = await session.scalar(select(_a.phone_enc).where(_a.id == account_id))
        if blob is None:
            raise NotFound("this account has been erased", loc=["header", "Authorization"])
        return self.cipher.decrypt("phone", blob)

    async def links(self, session: AsyncSession, account_id: str) -> list[Link]:
        rows = await session.execute(
            select(_l.id, _l.profile_kind, _l.profile_id, _l.role, _l.state).where(_l.account_id == account_id).order_by(_l.id)
        )
        return [Link(*r) for r in rows]

    async def profile_of(self, session: AsyncSession, account_id: str, kind: str | None = None,
                         profile_id: str | None = None) -> Link:  # fmt: skip
        """The active link this account has to the named profile (or its first one). Any profile the
        account is not an active contact of is a 404 worded like a missing one: no telling them apart."""
        for link in await self.links(session, account_id):
            if link.state != "active":
                continue
            if (kind is None or link.profile_kind == kind) and (profile_id is None or link.profile_id == profile_id):
                return link
        if profile_id is not None:
            raise NotFound.of(kind or "profile", profile_id, loc=["query", "profile_id"])
        raise NotFound("you have no profile yet: register as a resident or link your enterprise first", loc=["path"])

    # ---- profiles ---------------------------------------------------------------------------------
    def _record(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidInput("the profile must be a JSON object", loc=["body"])
        for key in _FIXED:
            if key in data and key != "id":
                raise InvalidInput(
                    f"{key} cannot be set here: your phone is the one you signed in with, and consent is given "
                    "at /api/v1/me/consent", loc=["body", key],
                )  # fmt: skip
        return {k: v for k, v in data.items() if k != "id"}

    async def _write(self, kind: str, profile_id: str, record: dict[str, Any], account_id: str) -> None:
        await self.service.put_profile(kind, profile_id, record, actor=f"subscriber:{account_id}")

    async def _existing(self, kind: str, profile_id: str) -> Any:
        async with self.runtime.sessions() as s:
            return await profile_repository(kind, s, self.cipher).get(profile_id)

    def _merge(self, old: Any, record: dict[str, Any], phone: str | None) -> dict[str, Any]:
        """The new record: what the person sent over what was stored; contact and consent as stored,
        but the phone always the proven one (``phone`` None: keep the stored phone)."""
        base = old.to_json() if old is not None else {}
        contact = dict(base.get("contact") or {})
        if phone is not None:
            contact["phone"] = phone
        merged = {**base, **record, "contact": contact, "consent": bool(base.get("consent", False))}
        return merged

    async def save_resident(self, account_id: str, data: Any) -> Link:
        record = self._record(data)
        async with self.runtime.sessions() as s, s.begin():
            phone = await self.phone_of(s, account_id)
            links = [x for x in await self.links(s, account_id) if x.profile_kind == "resident" and x.state == "active"]
        profile_id = links[0].profile_id if links else f"sub-{uuid.uuid4().hex[:20]}"
        old = await self._existing("resident", profile_id) if links else None
        await self._write("resident", profile_id, self._merge(old, record, phone), account_id)
        if links:
            return links[0]
        async with self.runtime.sessions() as s, s.begin():
            return await self._link(s, account_id, "resident", profile_id, role="owner", state="active")

    async def save_enterprise(self, account_id: str, data: Any) -> Link:
        """Register or update an enterprise by its credit code (the record's ``id``)."""
        record = self._record(data)
        credit = data.get("id") if isinstance(data, dict) else None
        if not isinstance(credit, str) or not credit.strip():
            raise InvalidInput("give the enterprise's unified social credit code as id", loc=["body", "id"])
        credit = credit.strip().upper()
        async with self.runtime.sessions() as s, s.begin():
            phone = await self.phone_of(s, account_id)
            mine = [x for x in await self.links(s, account_id) if (x.profile_kind, x.profile_id) == ("enterprise", credit)]
            others = (await s.execute(select(_l.account_id, _l.role, _l.state).where(
                _l.profile_kind == "enterprise", _l.profile_id == credit, _l.account_id != account_id))).all()  # fmt: skip
        if mine and mine[0].state != "active":
            raise Conflict(f"your link to enterprise {credit} is {mine[0].state}: its first contact or staff must approve it",
                           loc=["body", "id"], state=mine[0].state)  # fmt: skip
        old = await self._existing("enterprise", credit)
        if mine:  # an active contact updates the record; only the owner's phone is the enterprise's
            await self._write("enterprise", credit, self._merge(old, record, phone if mine[0].role == "owner" else None), account_id)
            return mine[0]
        has_owner = any(r.role == "owner" and r.state == "active" for r in others)
        if old is None and not has_owner:
            await self._write("enterprise", credit, self._merge(None, {"id": credit, **record}, phone), account_id)
            async with self.runtime.sessions() as s, s.begin():
                return await self._link(s, account_id, "enterprise", credit, role="owner", state="active")
        # an enterprise already known: its registered phone proven now makes this person its owner;
        # anyone else waits for the owner's (or, with no owner yet, staff's) approval
        registered = old is not None and old.contact.phone == phone
        async with self.runtime.sessions() as s, s.begin():
            if registered and not has_owner:
                link = await self._link(s, account_id, "enterprise", credit, role="owner", state="active")
            else:
                return await self._link(s, account_id, "enterprise", credit, role="contact", state="pending")
        await self._write("enterprise", credit, self._merge(old, record, phone), account_id)
        return link

    async def _link(self, s: AsyncSession, account_id: str, kind: str, profile_id: str, *, role: str, state: str) -> Link:
        row = SubscriberLinkRow(account_id=account_id, profile_kind=kind, profile_id=profile_id, role=role, state=state,
                                created_at=_now())  # fmt: skip
        s.add(row)
        await s.flush()
        await AuditLog(s).record(actor=f"subscriber:{account_id}", action=f"subscriber.link_{state}", entity_type=kind,
                                 entity_id=profile_id, detail={"role": role})  # fmt: skip
        return Link(row.id, kind, profile_id, role, state)

    # ---- second contacts --------------------------------------------------------------------------
    async def pending_for(self, session: AsyncSession, account_id: str) -> list[dict[str, Any]]:
        """Pending contacts of the enterprises this account owns (masked phones only)."""
        from policy_push.security import mask_contact

        owned = [x.profile_id for x in await self.links(session, account_id)
                 if x.profile_kind == "enterprise" and x.role == "owner" and x.state == "active"]  # fmt: skip
        if not owned:
            return []
        rows = await session.execute(
            select(_l.id, _l.profile_id, _l.created_at, _a.phone_enc).join_from(SubscriberLinkRow, SubscriberAccountRow,
                                                                               _a.id == _l.account_id)
            .where(_l.profile_kind == "enterprise", _l.profile_id.in_(owned), _l.state == "pending", _a.state == "active")
        )  # fmt: skip
        return [{"link_id": r.id, "profile_id": r.profile_id, "asked_at": r.created_at.isoformat(),
                 "phone": mask_contact(self.cipher.decrypt("phone", r.phone_enc))} for r in rows]  # fmt: skip

    async def decide(self, session: AsyncSession, link_id: int, *, approve: bool, by_account: str | None, staff: str | None) -> Link:
        """Approve or refuse a pending contact: by the enterprise's owner (``by_account``) or by staff."""
        row = (await session.execute(select(_l.id, _l.profile_kind, _l.profile_id, _l.role, _l.state)
                                     .where(_l.id == link_id))).first()  # fmt: skip
        if row is None:
            raise NotFound.of("contact request", str(link_id))
        if by_account is not None:
            owner = await session.scalar(select(_l.id).where(
                _l.account_id == by_account, _l.profile_kind == row.profile_kind, _l.profile_id == row.profile_id,
                _l.role == "owner", _l.state == "active"))  # fmt: skip
            if owner is None:  # not theirs to decide: look like a missing one
                raise NotFound.of("contact request", str(link_id))
        if row.state != "pending":
            raise Conflict(f"contact request {link_id} is {row.state} already", loc=["path", "id"], state=row.state)
        state = "active" if approve else "refused"
        actor = f"subscriber:{by_account}" if by_account else f"staff:{staff}"
        await session.execute(update(SubscriberLinkRow.__table__).where(_l.id == link_id)
                              .values(state=state, decided_at=_now(), decided_by=actor))  # fmt: skip
        await AuditLog(session).record(actor=actor, action=f"subscriber.link_{state}", entity_type=row.profile_kind,
                                       entity_id=row.profile_id, detail={"link_id": link_id})  # fmt: skip
        return Link(row.id, row.profile_kind, row.profile_id, row.role, state)

    def refuse_foreign(self, what: str) -> NotAllowed:
        return NotAllowed(f"{what} is not yours to change", loc=["path", "id"])
