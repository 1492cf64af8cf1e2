from __future__ import annotations

from collections.abc import AsyncIterator

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
