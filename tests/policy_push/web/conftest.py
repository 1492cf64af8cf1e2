"""The real app over the conftest databases (SQLite and PostgreSQL), and helpers to read them."""

from __future__ import annotations

import copy
import json
import re
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
#: the query that vouches for a profile's phone as from an official register (policy_push.reach): a
#: test that sends SMS to profiles it wrote through the staff API names one, as staff would
VOUCHED = {"phone_source": "测试名册"}
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


# -- staff accounts --------------------------------------------------------------------------
ROLES = ("viewer", "editor", "approver", "admin")
#: the password every test account gets (long enough for the rules)
PASSWORD = "correct horse battery"


class StaffFixture:
    """Accounts made in the test database: one per role (named after it), each with an API token."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


async def add_staff(session_factory: Any, fixture: StaffFixture, name: str, role: str) -> None:
    from policy_push.staff import Role, StaffDirectory

    async with session_factory() as session, session.begin():
        directory = StaffDirectory(session)
        row, _ = await directory.add(name, Role(role), actor="test", password=PASSWORD)
        _, token = await directory.create_token(name, client="tests", role=None, days=1, actor="test")
    fixture.tokens[name] = token
    fixture.ids[name] = row.id


@pytest.fixture
async def staff(session_factory: Any) -> StaffFixture:
    """viewer, editor, approver, admin, and a second editor ``editor2`` and approver ``approver2``."""
    fixture = StaffFixture()
    for role in ROLES:
        await add_staff(session_factory, fixture, role, role)
    await add_staff(session_factory, fixture, "editor2", "editor")
    await add_staff(session_factory, fixture, "approver2", "approver")
    return fixture


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def login(client: Client, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the login form; returns the CSRF token of the new session."""
    form = await client.get("/staff/login")
    resp = await client.post("/staff/login", data={"csrf": csrf_of(await form.text()), "name": name, "password": password},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    return csrf_of(await (await client.get("/staff")).text())


@pytest.fixture
async def browser_client(make_client: Callable[..., Awaitable[Client]]) -> Client:
    """A client whose cookies travel over plain HTTP (the test server has no TLS)."""
    return await make_client(staff_cookie_secure=False)
