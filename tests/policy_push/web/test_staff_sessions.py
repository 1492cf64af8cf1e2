"""A staff login ends after ``staff_session_idle_minutes`` without a request (each request renews it) and
after ``staff_session_minutes`` however active; the sessions' clock is injected, nothing sleeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.config import Settings
from policy_push.web import create_app

from .conftest import Client, StaffFixture, login


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed_client(aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings, engine: AsyncEngine,
                       clock: Clock) -> Client:  # fmt: skip
    app_settings = settings.model_copy(update={"staff_cookie_secure": False, "staff_session_minutes": 120,
                                               "staff_session_idle_minutes": 20})  # fmt: skip
    return await aiohttp_client(create_app(app_settings, engine=engine, staff_clock=clock))


async def _status(client: Client, path: str = "/staff") -> tuple[int, str]:
    resp = await client.get(path, allow_redirects=False)
    return resp.status, resp.headers.get("Location", "")


async def test_idle_limit_slides_with_activity(timed_client: Client, staff: StaffFixture, clock: Clock) -> None:
    await login(timed_client, "viewer")
    for _ in range(5):  # 5 x 19 minutes = 95 minutes, each request within the idle limit of the one before
        clock.advance(19)
        assert await _status(timed_client) == (200, "")
    clock.advance(20)  # 20 minutes without a request
    status, location = await _status(timed_client, "/staff/campaigns")
    assert status == 303 and location == "/staff/login?next=/staff/campaigns&ended=idle"
    login_page = await (await timed_client.get(location)).text()
    assert "长时间未操作" in login_page
    # over for good: the cookie was cleared, coming back sooner changes nothing
    clock.advance(-10)
    assert (await _status(timed_client))[0] == 303


async def test_absolute_limit_holds_however_active(timed_client: Client, staff: StaffFixture, clock: Clock) -> None:
    await login(timed_client, "viewer")
    for _ in range(11):  # 11 x 10 = 110 minutes of steady work
        clock.advance(10)
        assert await _status(timed_client) == (200, "")
    clock.advance(10)  # 120 minutes after login
    status, location = await _status(timed_client)
    assert status == 303 and location.endswith("&ended=absolute")
    assert "登录已到期" in await (await timed_client.get(location)).text()
    # an API call with the cookie gets one clear 401 line, not a redirect
    await login(timed_client, "viewer")
    clock.advance(21)
    resp = await timed_client.get("/api/v1/enterprises", allow_redirects=False)
    body = await resp.json()
    assert resp.status == 401 and "idle" in str(body), body


async def test_a_fresh_login_starts_both_limits_again(timed_client: Client, staff: StaffFixture, clock: Clock) -> None:
    await login(timed_client, "viewer")
    clock.advance(119)
    await login(timed_client, "viewer")  # a new session replaces the old one: its limits count from now
    clock.advance(19)
    assert await _status(timed_client) == (200, "")


def test_idle_limit_may_not_exceed_the_absolute_one(settings: Settings) -> None:
    with pytest.raises(ValidationError, match=r"staff_session_idle_minutes .* must not exceed"):
        Settings(**{**settings.model_dump(), "staff_session_minutes": 30, "staff_session_idle_minutes": 31})


def test_defaults_are_consistent() -> None:
    fields: dict[str, Any] = Settings.model_fields
    assert fields["staff_session_idle_minutes"].default <= fields["staff_session_minutes"].default
