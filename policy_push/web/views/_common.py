"""What every view needs: a transaction, the validation context, the actor, local times, the staff header."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import LOCAL_TZ, ValidationContext
from policy_push.errors import InvalidInput
from policy_push.runtime import validation_context
from policy_push.storage import UpsertResult

from ..keys import refdata_key, session_factory_key, settings_key

__all__ = [
    "API_ACTOR",
    "STAFF_HEADER",
    "drafter",
    "local_iso",
    "request_context",
    "staff_member",
    "transaction",
    "write_result",
]

#: who the audit log names for a write; one shared token until staff accounts arrive
API_ACTOR = "api-token"
#: the acting staff member, self-declared under the shared token (staff accounts come later)
STAFF_HEADER = "X-Staff-Member"
_STAFF_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


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


def valid_staff_name(raw: str) -> bool:
    return bool(_STAFF_RE.match(raw))


def staff_member(request: web.Request) -> str:
    """The acting staff member from ``X-Staff-Member``; 422 when missing or malformed."""
    raw = request.headers.get(STAFF_HEADER, "").strip()
    if not raw:
        raise InvalidInput(f"name the acting staff member in the {STAFF_HEADER} header", loc=["header", STAFF_HEADER])
    if not valid_staff_name(raw):
        raise InvalidInput(f"{STAFF_HEADER} must be 1-128 printable characters", loc=["header", STAFF_HEADER])
    return raw


def drafter(request: web.Request) -> str | None:
    """Who a draft made by this policy write names: the staff member when given, else the service's name."""
    raw = request.headers.get(STAFF_HEADER, "").strip()
    return raw if raw and valid_staff_name(raw) else None
