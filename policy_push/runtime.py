"""The long-lived objects a command or the web app needs, built from settings in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.config import Settings
from policy_push.domain import ValidationContext, local_today
from policy_push.refdata import ReferenceData, load_reference_data
from policy_push.security import PiiCipher
from policy_push.storage import create_engine, schema_status, session_factory
from policy_push.storage.pii_keys import check_key

__all__ = ["Runtime", "open_runtime", "validation_context"]


def validation_context(settings: Settings, ref: ReferenceData) -> ValidationContext:
    return ValidationContext(
        ref=ref,
        max_text_chars=settings.max_text_chars,
        max_short_text_chars=settings.max_short_text_chars,
        max_criteria_depth=settings.max_criteria_depth,
        today=local_today(),
    )


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cipher: PiiCipher
    ref: ReferenceData

    def validation_context(self) -> ValidationContext:
        return validation_context(self.settings, self.ref)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, require_current_schema: bool = True, check_pii_key: bool = True
) -> AsyncIterator[Runtime]:
    """Engine, sessions, cipher and reference data; refuses an out-of-date schema, and a PII key that is
    not the data's (``storage.pii_keys``), unless told not to."""
    cipher = PiiCipher.from_settings(settings)
    ref = load_reference_data(settings.regions_csv, settings.industries_csv)
    engine = create_engine(settings)
    try:
        if require_current_schema:
            status = await schema_status(engine)
            status.raise_if_outdated()
        sessions = session_factory(engine)
        if require_current_schema and check_pii_key:
            await check_key(sessions, cipher)
        yield Runtime(settings, engine, sessions, cipher, ref)
    finally:
        await engine.dispose()
