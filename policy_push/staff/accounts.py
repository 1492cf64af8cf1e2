"""Staff accounts and API tokens in the database: add, list, disable, reset a password, log in (with
lockout), create / check / revoke tokens.  Every change is audited in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import AlreadyExists, InvalidInput, NotFound
from policy_push.storage import AuditLog
from policy_push.storage.staff_tables import StaffAccountRow, StaffTokenRow
from policy_push.storage.tables import utcnow

from .passwords import check_password_rules, generate_password, hash_password, needs_rehash, verify_password
from .roles import Role

__all__ = ["TOKEN_PREFIX", "LoginResult", "Principal", "StaffDirectory", "split_token"]

_NAME_RE = re.compile(r"^[\w.\-\u4e00-\u9fff]{2,64}$")
#: API tokens read ``ppt_<id>_<secret>``: the id finds the row, only a SHA-256 of the secret is stored
TOKEN_PREFIX = "ppt_"
_TOKEN_RE = re.compile(r"^ppt_([0-9a-f]{16})_([A-Za-z0-9_-]{32,64})$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: an account (by cookie session or API token), or the bootstrap token."""

    account_id: str
    name: str
    role: Role
    via: str  # "session" | "token" | "bootstrap"
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoginResult:
    account: StaffAccountRow | None
    #: "ok", "bad" (wrong name or password: one answer for both), "locked", "disabled"
    outcome: str


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(raw: str) -> tuple[str, str] | None:
    m = _TOKEN_RE.match(raw)
    return (m.group(1), m.group(2)) if m else None


class StaffDirectory:
    def __init__(self, session: AsyncSession, *, lockout_failures: int = 5, lockout_minutes: int = 15) -> None:
        self.session = session
        self.lockout_failures = lockout_failures
        self.lockout = dt.timedelta(minutes=lockout_minutes)

    # -- accounts ---------------------------------------------------------------------------------
    async def add(self, name: str, role: Role, *, actor: str, password: str | None = None) -> tuple[StaffAccountRow, str]:
        """A new account; returns it and its password (generated when not given)."""
        name = name.strip()
        if not _NAME_RE.match(name):
            raise InvalidInput("登录名为 2-64 个汉字、字母、数字或 . _ -", loc=["name"])
        if await self.by_name(name) is not None:
            raise AlreadyExists("staff account", name)
        password = password or generate_password()
        problem = check_password_rules(password)
        if problem:
            raise InvalidInput(problem, loc=["password"])
        row = StaffAccountRow(
            id="st_" + secrets.token_hex(8), name=name, role=role.value, password_hash=hash_password(password),
            active=True, failed_logins=0, session_epoch=0, created_at=utcnow(),
        )  # fmt: skip
        self.session.add(row)
        await self.session.flush()
        await AuditLog(self.session).record(
            actor=actor, action="staff.add", entity_type="staff", entity_id=row.id, detail={"name": name, "role": role.value}
        )
        return row, password

    async def get(self, account_id: str) -> StaffAccountRow | None:
        return await self.session.get(StaffAccountRow, account_id)

    async def by_name(self, name: str) -> StaffAccountRow | None:
        stmt = select(StaffAccountRow).where(StaffAccountRow.name == name.strip())
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def require(self, name_or_id: str) -> StaffAccountRow:
        row = await self.get(name_or_id) or await self.by_name(name_or_id)
        if row is None:
            raise NotFound(f"no staff account {name_or_id[:64]!r}; see `policy-push staff list`", loc=["name"])
        return row

    async def list(self) -> list[StaffAccountRow]:
        return list((await self.session.execute(select(StaffAccountRow).order_by(StaffAccountRow.created_at))).scalars())

    async def names(self, ids: set[str]) -> dict[str, str]:
        """Account id -> login name, for the ids given (pages show names, records keep ids)."""
        if not ids:
            return {}
        stmt = select(StaffAccountRow.id, StaffAccountRow.name).where(StaffAccountRow.id.in_(ids))
        return {i: n for i, n in (await self.session.execute(stmt)).all()}

    async def has_active_admin(self) -> bool:
        stmt = select(func.count()).select_from(StaffAccountRow).where(
            StaffAccountRow.active.is_(True), StaffAccountRow.role == Role.ADMIN.value
        )
        return bool((await self.session.execute(stmt)).scalar_one())

    async def disable(self, name_or_id: str, *, actor: str) -> StaffAccountRow:
        row = await self.require(name_or_id)
        row.active = False
        row.session_epoch += 1  # every cookie session of the account ends
        await self.session.execute(
            update(StaffTokenRow).where(StaffTokenRow.account_id == row.id, StaffTokenRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )  # fmt: skip
        await AuditLog(self.session).record(actor=actor, action="staff.disable", entity_type="staff", entity_id=row.id)
        return row

    async def reset_password(self, name_or_id: str, *, actor: str, password: str | None = None) -> str:
        row = await self.require(name_or_id)
        password = password or generate_password()
        problem = check_password_rules(password)
        if problem:
            raise InvalidInput(problem, loc=["password"])
        row.password_hash = hash_password(password)
        row.failed_logins = 0
        row.locked_until = None
        row.session_epoch += 1
        await AuditLog(self.session).record(actor=actor, action="staff.reset_password", entity_type="staff", entity_id=row.id)
        return password

    async def login(self, name: str, password: str, *, now: dt.datetime | None = None) -> LoginResult:
        """Check a name and password; a wrong password counts towards the lockout, and every attempt is
        audited (the name tried, never the password)."""
        now = now or utcnow()
        row = await self.by_name(name[:64]) if name else None
        audit = AuditLog(self.session)
        if row is None:
            verify_password(None, password)  # as slow as a real check
            await audit.record(actor="anonymous", action="login.failed", entity_type="staff", entity_id="-",
                               detail={"name": name[:64], "why": "unknown name"})  # fmt: skip
            return LoginResult(None, "bad")
        if not row.active:
            verify_password(None, password)
            await audit.record(actor=row.id, action="login.failed", entity_type="staff", entity_id=row.id,
                               detail={"why": "disabled"})  # fmt: skip
            return LoginResult(row, "disabled")
        if row.locked_until is not None and row.locked_until > now:
            await audit.record(actor=row.id, action="login.failed", entity_type="staff", entity_id=row.id,
                               detail={"why": "locked"})  # fmt: skip
            return LoginResult(row, "locked")
        if not verify_password(row.password_hash, password):
            row.failed_logins += 1
            locked = row.failed_logins >= self.lockout_failures
            if locked:
                row.locked_until = now + self.lockout
                row.failed_logins = 0
            await audit.record(actor=row.id, action="login.failed", entity_type="staff", entity_id=row.id,
                               detail={"why": "wrong password", "locked": locked})  # fmt: skip
            return LoginResult(row, "locked" if locked else "bad")
        row.failed_logins = 0
        row.locked_until = None
        row.last_login_at = now
        if needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
        await audit.record(actor=row.id, action="login", entity_type="staff", entity_id=row.id)
        return LoginResult(row, "ok")

    # -- API tokens -------------------------------------------------------------------------------
    async def create_token(
        self, name_or_id: str, *, client: str, role: Role | None, days: int, actor: str
    ) -> tuple[StaffTokenRow, str]:
        """A token for one client of an account; the secret is returned once and stored only hashed."""
        account = await self.require(name_or_id)
        if not account.active:
            raise InvalidInput(f"account {account.name} is disabled", loc=["name"])
        own = Role(account.role)
        scope = role or own
        if not own.allows(scope):
            raise InvalidInput(f"a token cannot have more than its account's role ({own.value})", loc=["role"])
        if not 1 <= days <= 366:
            raise InvalidInput("a token lives 1-366 days", loc=["days"])
        if not client.strip() or len(client) > 64:
            raise InvalidInput("name the client the token is for (1-64 characters)", loc=["client"])
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = utcnow()
        row = StaffTokenRow(
            id=token_id, account_id=account.id, client=client.strip(), role=scope.value, secret_sha256=_sha(secret),
            created_at=now, expires_at=now + dt.timedelta(days=days),
        )  # fmt: skip
        self.session.add(row)
        await self.session.flush()
        await AuditLog(self.session).record(
            actor=actor, action="token.create", entity_type="token", entity_id=token_id,
            detail={"account": account.id, "client": row.client, "role": scope.value, "days": days},
        )  # fmt: skip
        return row, f"{TOKEN_PREFIX}{token_id}_{secret}"

    async def revoke_token(self, token_id: str, *, actor: str) -> StaffTokenRow:
        row = await self.session.get(StaffTokenRow, token_id.removeprefix(TOKEN_PREFIX)[:16])
        if row is None:
            raise NotFound(f"no API token {token_id[:20]!r}; see `policy-push staff list --tokens`", loc=["token"])
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await AuditLog(self.session).record(actor=actor, action="token.revoke", entity_type="token", entity_id=row.id)
        return row

    async def tokens(self) -> list[StaffTokenRow]:
        return list((await self.session.execute(select(StaffTokenRow).order_by(StaffTokenRow.created_at))).scalars())

    async def check_token(self, raw: str, *, now: dt.datetime | None = None) -> Principal | None:
        """The principal of a valid token (role: the lower of the token's and the account's), else None.
        Its use is audited once an hour per token (every request would drown the log)."""
        parts = split_token(raw)
        if parts is None:
            return None
        token_id, secret = parts
        now = now or utcnow()
        row = await self.session.get(StaffTokenRow, token_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha(secret)):
            return None
        if row.revoked_at is not None or row.expires_at <= now:
            return None
        account = await self.get(row.account_id)
        if account is None or not account.active:
            return None
        role = min(Role(row.role), Role(account.role), key=lambda r: r.rank)
        if row.last_used_at is None or now - row.last_used_at > dt.timedelta(hours=1):
            row.last_used_at = now
            await AuditLog(self.session).record(
                actor=account.id, action="token.use", entity_type="token", entity_id=row.id, detail={"client": row.client}
            )
        return Principal(account.id, account.name, role, "token", token_id=row.id)
