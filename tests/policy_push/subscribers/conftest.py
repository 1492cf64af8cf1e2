"""The real app over the test databases, its SMS adapters pointed at the provider simulators on
loopback: codes are read from the SMS the simulator received, as a person reads them off the phone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.simulators import SimulatorSet
from policy_push.config import Settings
from policy_push.web import create_app
from tests.policy_push.sending.fixtures import sim_settings

Client = TestClient  # type: ignore[type-arg]
STAFF = {"Authorization": "Bearer test-token", "X-Staff-Member": "王审核"}


def last_code(sims: SimulatorSet, phone: str) -> str:
    """The code in the newest sign-in SMS the simulators accepted for ``phone``."""
    for rec in reversed([*sims.aliyun.records, *sims.tencent.records]):
        if rec.recipient.endswith(phone) and "code" in rec.params:
            return rec.params["code"]
    raise AssertionError(f"no code SMS for {phone}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def me_settings(db_settings: Settings, sims: SimulatorSet) -> Settings:
    return sim_settings(db_settings, sims)


@pytest.fixture
def make_me_client(
    aiohttp_client: Callable[..., Awaitable[Client]], me_settings: Settings, engine: AsyncEngine
) -> Callable[..., Awaitable[Client]]:
    async def make(**overrides: Any) -> Client:
        s = me_settings.model_copy(update=overrides) if overrides else me_settings
        return await aiohttp_client(create_app(s, engine=engine))

    return make


@pytest.fixture
async def client(make_me_client: Callable[..., Awaitable[Client]]) -> Client:
    return await make_me_client()


async def sign_in(client: Client, sims: SimulatorSet, phone: str) -> str:
    """Ask a code, read it off the simulator, sign in; the session token."""
    resp = await client.post("/api/v1/me/codes", json={"phone": phone})
    assert resp.status == 202, await resp.text()
    resp = await client.post("/api/v1/me/sessions", json={"phone": phone, "code": last_code(sims, phone)})
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["token"])
