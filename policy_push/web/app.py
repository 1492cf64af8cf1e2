"""The application factory.  Long-lived objects (engine, sessions, PII cipher, reference data)
are made in a ``cleanup_ctx`` and hang off typed app keys; nothing lives in module globals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.config import Settings
from policy_push.intake.sources.poll import SourcePoller
from policy_push.matching import MatchService, database_key, shared_tokenizer
from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher
from policy_push.sending import build_scheduler, make_clock, open_pipeline
from policy_push.service import Service
from policy_push.storage import create_engine, schema_status, session_factory
from scheduler import Tick

from .auth import (
    LoginLimiter,
    auth_middleware,
    login_limiter_key,
    security_headers_middleware,
    session_middleware_for,
)
from .keys import (
    cipher_key,
    engine_key,
    match_service_key,
    openapi_key,
    pipeline_key,
    refdata_key,
    scheduler_key,
    service_key,
    session_factory_key,
    settings_key,
)
from .middlewares import error_middleware
from .openapi import build_openapi
from .routes import setup_routes

__all__ = ["create_app"]

log = logging.getLogger("policy_push.web")


def create_app(
    settings: Settings, *, engine: AsyncEngine | None = None, worker: bool = False, index_wait_s: float = 2.0
) -> web.Application:
    """The aiohttp application for ``settings``.

    ``engine``: use this engine (tests, or a caller sharing one) instead of creating one; the
    caller then owns it and disposes of it.  ``index_wait_s``: how long start-up waits for the
    match index before serving without it (a big one goes on building in the background;
    match requests wait for it).  The PII cipher is built here, so a missing
    ``POLICY_PUSH_PII_KEY`` fails at once with a message naming the setting.
    """
    cipher = PiiCipher.from_settings(settings)
    app = web.Application(
        # headers outermost (every answer gets them, errors too); the session before the auth that reads it
        middlewares=[security_headers_middleware, error_middleware, session_middleware_for(settings, cipher), auth_middleware],
        # aiohttp answers a larger body with 413 (the error middleware turns it into JSON)
        client_max_size=settings.max_body_bytes,
    )
    app[settings_key] = settings
    app[cipher_key] = cipher
    app[openapi_key] = build_openapi()
    app[login_limiter_key] = LoginLimiter(settings.staff_login_per_minute)
    setup_routes(app)
    app.cleanup_ctx.append(_resources(settings, engine))
    app.cleanup_ctx.append(_match_index(settings, index_wait_s))
    app.cleanup_ctx.append(_ticks(worker))
    return app


def _resources(settings: Settings, given: AsyncEngine | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[refdata_key] = await asyncio.to_thread(load_reference_data, settings.regions_csv, settings.industries_csv)
        engine = given if given is not None else create_engine(settings)
        app[engine_key] = engine
        app[session_factory_key] = session_factory(engine)
        try:
            status = await schema_status(engine)
            if not status.is_current:
                log.warning("database schema is not current; /healthz reports 503 until `policy-push db upgrade`")
        except Exception as exc:  # the server still starts, and /healthz says what is wrong
            log.warning("could not read the schema status: %s", type(exc).__name__)
        yield
        if given is None:
            await engine.dispose()

    return ctx


def _match_index(settings: Settings, wait_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """The match index, loaded from ``data_dir/index`` or built.  A small one is ready before
    the first request; a big one goes on in the background while the server answers, and
    match requests wait until it is up."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        service = MatchService(
            app[session_factory_key],
            app[cipher_key],
            app[refdata_key],
            index_dir=settings.data_dir / "index",
            database=database_key(app[engine_key].url),
        )
        app[match_service_key] = service
        app[service_key] = Service(_runtime(app), index=service)
        # jieba's dictionary loads in one call that holds the GIL for a good 100 ms: done now,
        # before the first request, so that no request ever waits behind it
        await asyncio.to_thread(shared_tokenizer)
        started = service.start_in_background(progress=_log_progress)
        await asyncio.wait([started], timeout=wait_s)
        yield
        await service.close()

    return ctx


def _log_progress(phase: str, done: int, total: int) -> None:
    log.info("%s %d/%d", phase, done, total)


def _runtime(app: web.Application) -> Runtime:
    return Runtime(app[settings_key], app[engine_key], app[session_factory_key], app[cipher_key], app[refdata_key])


def _ticks(worker: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    """This process's ticks: following the change feed (and drafting) always; the send pipeline's too
    with ``worker`` (``serve`` unless ``--no-worker``), receipts then using its clock."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[settings_key]
        clock = make_clock(settings)
        ticks: list[Tick] = list(app[service_key].ticks(clock))
        async with contextlib.AsyncExitStack() as stack:
            if worker:
                pipeline = await stack.enter_async_context(open_pipeline(_runtime(app), clock=clock))
                app[pipeline_key] = pipeline
                ticks += pipeline.ticks()
            if settings.intake_sources:
                # issue 14: configured feeds are polled by the leader; what they bring waits in the review queue
                poller = SourcePoller.from_settings(settings, app[session_factory_key], app[refdata_key])
                stack.push_async_callback(poller.close)
                every = settings.intake_poll_interval_s / clock.real_seconds(1.0)  # real seconds, in clock seconds
                ticks.append(Tick("intake_poll", poller.tick, every, leader_only=True,
                                  timeout_s=max(60.0, settings.intake_poll_interval_s)))  # fmt: skip
            scheduler = build_scheduler(settings, ticks, clock=clock)
            app[scheduler_key] = scheduler
            scheduler.start()
            try:
                yield
            finally:
                await scheduler.shutdown()

    return ctx
