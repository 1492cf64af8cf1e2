"""What every view needs: a transaction, the validation context, the actor, local times."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import LOCAL_TZ, ValidationContext
from policy_push.runtime import validation_context

from ..keys import refdata_key, session_factory_key, settings_key

__all__ = ["API_ACTOR", "local_iso", "request_context", "transaction"]

#: who the audit log names for a write; one shared token until staff accounts arrive
API_ACTOR = "api-token"


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
