"""Rate limits hold across processes (issue 10): on PostgreSQL every ``serve`` process draws on one budget.

Two app instances, each with its own engine (as two processes have), on one PostgreSQL database: the
look-ups of people's links and the staff logins they take together stop at the limit, where each
process's own memory used to give each the whole budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from policy_push.config import Settings
from policy_push.errors import TooManyRequests
from policy_push.security import PiiCipher
from policy_push.storage import create_engine
from policy_push.storage.rate_windows import SharedWindows
from policy_push.web import create_app
from policy_push.web.auth import LoginLimiter

from .conftest import Client

pytestmark = pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)


async def test_two_processes_share_one_link_look_up_budget(
    aiohttp_client: Callable[..., Awaitable[Client]], db_settings: Settings
) -> None:
    settings = db_settings.model_copy(update={"link_lookups_per_minute": 4})
    first, second = [await aiohttp_client(create_app(settings)) for _ in range(2)]
    answers = []
    for client in (first, second, first, second, first, second):
        answers.append((await client.get("/s/abcdefgh")).status)
    # four look-ups of an unknown code (404) between them, then both refuse; the minute may turn between
    # two of them, which only ever starts a new budget, so at most one more 404 is allowed
    assert answers[:4] == [404, 404, 404, 404], answers
    assert answers[4:].count(429) >= 1 and set(answers[4:]) <= {404, 429}, answers


async def test_two_processes_share_one_login_budget(db_settings: Settings) -> None:
    cipher = PiiCipher.from_settings(db_settings)
    engines = [create_engine(db_settings.database_url) for _ in range(2)]
    try:
        limiters = []
        for engine in engines:
            limiter = LoginLimiter(per_minute=3)
            limiter.shared = SharedWindows(engine, lambda client: cipher.lookup_hash("rate_client", client))
            limiters.append(limiter)
        now = 1_800_000_000.0  # one fixed window for every attempt
        for limiter in (limiters[0], limiters[1], limiters[0]):
            await limiter.check("198.51.100.7", now=now)
        for limiter in limiters:
            with pytest.raises(TooManyRequests):
                await limiter.check("198.51.100.7", now=now)
        await limiters[1].check("198.51.100.8", now=now)  # another address has its own budget
        await limiters[0].check("198.51.100.7", now=now + 60)  # and the next minute a new one
    finally:
        for engine in engines:
            await engine.dispose()

