"""Fixtures of the send tests: simulators on loopback, settings pointing at them, a dispatcher.

Registered for the dispatch and fault tests by ``tests/conftest.py`` (``pytest_plugins``), so the
campaign tests in this folder keep their own fixtures and nothing needs importing by name.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet, start_all
from policy_push.config import Settings
from policy_push.security import PiiCipher
from policy_push.sending import Dispatcher, SendRules
from policy_push.sending.providers import build_router, callback_urls, wechat_callback_token
from scheduler import FrozenClock

__all__ = ["callback_app", "dispatch_settings", "http", "make_dispatcher", "service", "sim_settings", "sims"]

#: a Wednesday 10:00 in Shanghai: outside quiet hours
DAYTIME = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def sim_settings(base: Settings, sims: SimulatorSet, **overrides: object) -> Settings:
    """``base`` pointed at the running simulators, with fast retries and no quiet hours unless overridden."""
    values: dict[str, object] = {
        "aliyun_sms_url": sims.aliyun.url + "/",
        "tencent_sms_url": sims.tencent.url + "/",
        "wechat_url": sims.wechat.url,
        "jpush_url": sims.jpush.url,
        "quiet_hours": "",
        "retry_base_delay_s": 1.0,
        "retry_max_delay_s": 10.0,
        "provider_timeout_s": 2.0,
        "sms_rate_per_s": 1000.0,
        "wechat_rate_per_s": 2000.0,
        "app_rate_per_s": 100.0,
    }
    values.update(overrides)
    return base.model_copy(update=values)


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorSet]:
    s = await start_all(time_factor=0.001)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def dispatch_settings(db_settings: Settings, sims: SimulatorSet) -> Settings:
    return sim_settings(db_settings, sims)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def service(aiohttp_client, db_settings: Settings, engine) -> AsyncIterator[tuple[TestClient, SimulatorSet, Settings]]:  # type: ignore[no-untyped-def]
    """The app on loopback (random callback secrets of its own) and simulators pushing to it."""
    from policy_push.web import create_app
    from policy_push.web.keys import settings_key

    client = await aiohttp_client(create_app(db_settings.model_copy(update={"quiet_hours": ""}), engine=engine))
    app_settings: Settings = client.app[settings_key]
    base = str(client.make_url("")).rstrip("/")
    sims = await start_all(callback_urls=callback_urls(app_settings, base), time_factor=0.001,
                           wechat_token=wechat_callback_token(app_settings))  # fmt: skip
    try:
        yield client, sims, sim_settings(app_settings, sims)
    finally:
        await sims.close()


def make_dispatcher(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    http: aiohttp.ClientSession,
    *,
    clock: object | None = None,
    worker_id: str = "test-worker",
    batch_size: int = 200,
) -> Dispatcher:
    return Dispatcher(
        sessions=sessions,
        cipher=cipher,
        router=build_router(settings, http),
        clock=clock or FrozenClock(DAYTIME),  # type: ignore[arg-type]
        rules=SendRules.from_settings(settings),
        worker_id=worker_id,
        batch_size=batch_size,
        concurrency=2,
        rng=random.Random(7),
    )


def callback_app(settings: Settings, sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> web.Application:
    """Just the provider callback routes of the routes table, with the error middleware and what they read
    from the app. ``settings`` should carry the callback secrets (``providers.with_run_secrets``)."""
    from channels import ReplayGuard
    from policy_push.web.keys import cipher_key, replay_guard_key, session_factory_key, settings_key
    from policy_push.web.middlewares import error_middleware
    from policy_push.web.routes import ROUTES

    app = web.Application(middlewares=[error_middleware])
    app[settings_key] = settings
    app[session_factory_key] = sessions
    app[cipher_key] = cipher
    app[replay_guard_key] = ReplayGuard(settings.callback_window_s)
    for route in ROUTES:
        if route.tag == "callbacks":
            app.router.add_route(route.method, route.path, route.handler, name=route.operation_id)
    return app
