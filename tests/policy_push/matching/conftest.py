"""The match index over the conftest databases: services, the real web app, the sample data."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.config import Settings
from policy_push.domain import ValidationContext
from policy_push.importing import import_lines
from policy_push.matching import MatchService, database_key
from policy_push.refdata import load_reference_data
from policy_push.security import PiiCipher
from policy_push.web import create_app

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
EVAL_DAY = dt.date(2026, 11, 26)
AUTH = {"Authorization": "Bearer test-token"}

Client = TestClient  # type: ignore[type-arg]


def expected_pairs() -> dict[tuple[str, str], str]:
    lines = (SAMPLE / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {(x["policy_id"], x["profile_id"]): x["expected"] for x in map(json.loads, lines)}


def sample_docs(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


async def import_sample(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, kinds: tuple[str, ...] = ("policies", "enterprises", "residents")
) -> None:
    """Store sample files through the real import path (validation, encryption, batches)."""
    for kind in kinds:
        report = await import_lines(
            kind, [(SAMPLE / f"{kind}.jsonl").read_bytes()], session_factory=sessions, cipher=cipher,
            ctx=ValidationContext(), actor="test", max_line_bytes=1 << 20,
        )
        assert not report.rejected, report.rejected[:3]


@pytest.fixture
async def make_service(
    settings: Settings, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> AsyncIterator[Callable[..., Awaitable[MatchService]]]:
    """Build (start) a service over the test database, saving under ``settings.data_dir/index``;
    every service made is closed before the database goes."""
    made: list[MatchService] = []

    async def make(*, start: bool = True, **options: Any) -> MatchService:
        options.setdefault("index_dir", settings.data_dir / "index")
        options.setdefault("database", database_key(engine.url))
        service = MatchService(session_factory, cipher, load_reference_data(), **options)
        made.append(service)
        if start:
            await service.start()
        return service

    yield make
    for service in made:
        await service.close()


@pytest.fixture
def make_client(
    settings: Settings, engine: AsyncEngine, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Callable[..., Awaitable[Client]]:
    """The real app on the test database.  ``aiohttp_client`` comes after ``engine`` so that the
    app (and its match index) shuts down before the database engine is disposed."""

    async def make(**options: Any) -> Client:
        return await aiohttp_client(create_app(settings, engine=engine, **options))

    return make


async def matched_pairs(client: Client, policy_id: str, *, day: dt.date = EVAL_DAY, page: int = 500) -> tuple[dict[tuple[str, str], str], dict[str, Any]]:
    """Every (policy, profile) -> eligible|unknown of ``/matches``, paging through; and the first page."""
    got: dict[tuple[str, str], str] = {}
    first: dict[str, Any] | None = None
    offset = 0
    while True:
        resp = await client.get(
            f"/api/v1/policies/{policy_id}/matches", params={"date": day.isoformat(), "limit": page, "offset": offset},
            headers=AUTH,
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        first = first or body
        for item in body["items"]:
            key = (item["policy_id"], item["profile_id"])
            assert key not in got, f"{key} on two pages"
            got[key] = "eligible" if item["eligible"] else "unknown"
        offset += len(body["items"])
        if not body["items"] or offset >= body["total"]:
            assert first is not None
            return got, first
