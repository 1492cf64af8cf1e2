"""The real app over the conftest databases (SQLite and PostgreSQL), and helpers to read them."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.config import Settings
from policy_push.storage.tables import Base
from policy_push.web import create_app

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BAD = SAMPLE / "bad"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient  # type: ignore[type-arg]


@cache
def _sample_lines(name: str) -> tuple[str, ...]:
    return tuple((SAMPLE / name).read_text(encoding="utf-8").splitlines())


def sample_records(name: str, n: int | None = None) -> list[dict[str, Any]]:
    """Fresh copies of the first ``n`` records of a sample file (all when None)."""
    lines = _sample_lines(name)
    return [json.loads(line) for line in (lines if n is None else lines[:n])]


def sample_policy(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(sample_records("policies.jsonl", 1)[0]), **changes}


def sample_enterprise(**changes: Any) -> dict[str, Any]:
    return {**sample_records("enterprises.jsonl", 1)[0], **changes}


def sample_resident(**changes: Any) -> dict[str, Any]:
    return {**sample_records("residents.jsonl", 1)[0], **changes}


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so "the database is unchanged" can be checked exactly."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(tuple(repr(v) for v in row) for row in rows)
    return out


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings, engine: AsyncEngine
) -> Callable[..., Awaitable[Client]]:
    """Start the app on the test database; keyword arguments override settings."""

    async def make(**overrides: Any) -> Client:
        app_settings = settings.model_copy(update=overrides) if overrides else settings
        return await aiohttp_client(create_app(app_settings, engine=engine))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[Client]]) -> Client:
    return await make_client()
