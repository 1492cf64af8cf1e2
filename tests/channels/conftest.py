from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.channels.helpers import CallbackReceiver


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    r = await CallbackReceiver().start()
    yield r
    await r.close()


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start a simulator of the given class on loopback; every one started is closed after the test."""
    started: list[Any] = []

    async def start(cls: type, *args: Any, **kw: Any) -> Any:
        sim = cls(*args, **kw)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.close()
