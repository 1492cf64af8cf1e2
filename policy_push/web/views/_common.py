"""What every view needs: a transaction, the validation context, the acting account, local times, a stored
policy or its 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import LOCAL_TZ, ValidationContext
from policy_push.errors import Loc, NotFound
from policy_push.runtime import validation_context
from policy_push.storage import PolicyRepository, StoredPolicy, UpsertResult

from ..auth import current_principal, maybe_principal
from ..keys import refdata_key, session_factory_key, settings_key

__all__ = [
    "drafter",
    "local_iso",
    "request_context",
    "staff_member",
    "stored_policy",
    "transaction",
    "write_result",
]



@asynccontextmanager
async def transaction(request: web.Request) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: committed when the block ends, rolled back on any error."""
    async with request.app[session_factory_key]() as session, session.begin():
        yield session


def request_context(request: web.Request) -> ValidationContext:
    """Limits from settings, the app's reference tables, and today's date in Asia/Shanghai."""
    return validation_context(request.app[settings_key], request.app[refdata_key])


def local_iso(moment: dt.datetime) -> str:
    """An ISO 8601 time with the Asia/Shanghai offset (storage keeps UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL_TZ).isoformat()


def write_result(result: UpsertResult) -> dict[str, Any]:
    return {"id": result.id, "outcome": result.outcome, "version": result.version}


def staff_member(request: web.Request) -> str:
    """The acting principal's account id (the bootstrap token: ``bootstrap``): campaigns and the audit
    log record it, and four eyes compares it.  The routes table has already required a principal."""
    return current_principal(request).account_id


def drafter(request: web.Request) -> str | None:
    """Who a draft made by this policy write names: the acting account."""
    principal = maybe_principal(request)
    return principal.account_id if principal is not None else None


async def stored_policy(request: web.Request, policy_id: str, *, loc: Loc | None = None) -> StoredPolicy:
    """The stored policy ``policy_id`` (read in its own transaction); a 404 naming ``loc`` when there is none."""
    async with transaction(request) as session:
        stored = await PolicyRepository(session).get(policy_id)
    if stored is None:
        raise NotFound.of("policy", policy_id, loc=loc)
    return stored
