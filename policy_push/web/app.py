"""The application factory.  Long-lived objects (engine, sessions, PII cipher, reference data)
are made in a ``cleanup_ctx`` and hang off typed app keys; nothing lives in module globals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels import ReplayGuard
from policy_push.config import Settings
from policy_push.errors import ConfigurationError, PiiKeyMismatch
from policy_push.intake.sources.poll import SourcePoller
from policy_push.matching import MatchService, database_key, shared_tokenizer
from policy_push.matching.fanout import ShardRouter
from policy_push.matching.listen import OnWake, follow_notifications
from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher
from policy_push.security.links import LinkSigner
from policy_push.sending import build_scheduler, make_clock, open_pipeline
from policy_push.sending.providers import callback_secret, wechat_callback_token, with_run_secrets
from policy_push.service import SERVE_LEAD, Service
from policy_push.storage import create_engine, schema_status, session_factory
from policy_push.storage import shards as shard_store
from policy_push.storage.pii_keys import check_key
from policy_push.storage.rate_windows import SharedWindows
from policy_push.storage.shards import ShardMap
from policy_push.subscribers.signin import Subscribers
from scheduler import Tick

from .auth import (
    LoginLimiter,
    auth_middleware,
    login_limiter_key,
    security_headers_middleware,
    session_middleware_for,
    staff_clock_key,
)
from .keys import (
    cipher_key,
    engine_key,
    link_signer_key,
    link_throttle_key,
    match_service_key,
    openapi_key,
    pipeline_key,
    refdata_key,
    replay_guard_key,
    scheduler_key,
    service_key,
    session_factory_key,
    settings_key,
    shard_router_key,
    subscribers_key,
)
from .metrics import Metrics, metrics_key, metrics_middleware
from .middlewares import body_middleware, error_middleware, input_middleware
from .openapi import build_openapi
from .ops_state import OpsState, ops_state_key
from .routes import setup_routes
from .throttle import Throttle

__all__ = ["create_app"]

log = logging.getLogger("policy_push.web")


def create_app(
    settings: Settings, *, engine: AsyncEngine | None = None, worker: bool = False, index_wait_s: float = 2.0,
    staff_clock: Callable[[], float] = time.time,
) -> web.Application:
    """The aiohttp application for ``settings``.

    ``engine``: use this engine (tests, or a caller sharing one) instead of creating one; the
    caller then owns it and disposes of it.  ``staff_clock``: the staff sessions' clock (tests inject time).  ``index_wait_s``: how long start-up waits for the
    match index before serving without it (a big one goes on building in the background;
    match requests wait for it).  The PII cipher is built here, so a missing
    ``POLICY_PUSH_PII_KEY`` fails at once with a message naming the setting.
    """
    cipher = PiiCipher.from_settings(settings)
    # simulators mode: random callback secrets for this run, never the simulators' public defaults
    settings = with_run_secrets(settings)
    if not callback_secret(settings) or not wechat_callback_token(settings):
        log.warning("POLICY_PUSH_CALLBACK_SECRET or POLICY_PUSH_WECHAT_CALLBACK_TOKEN is not set: "
                    "the provider callbacks refuse every push until it is")  # fmt: skip
    app = web.Application(
        # security headers outermost (every answer gets them, errors too); the staff session before the
        # auth that reads it; bodies read (bounded in time) after the role check
        middlewares=[security_headers_middleware, metrics_middleware, error_middleware, input_middleware,
                     session_middleware_for(settings, cipher), auth_middleware, body_middleware],
        # aiohttp answers a larger body with 413 (the error middleware turns it into JSON)
        client_max_size=settings.max_body_bytes,
    )
    app[settings_key] = settings
    app[cipher_key] = cipher
    app[link_signer_key] = LinkSigner.from_settings(settings, cipher)
    app[link_throttle_key] = Throttle(settings.link_lookups_per_minute)
    app[replay_guard_key] = ReplayGuard(settings.callback_window_s)
    app[openapi_key] = build_openapi()
    app[login_limiter_key] = LoginLimiter(settings.staff_login_per_minute)
    app[staff_clock_key] = staff_clock
    app[metrics_key] = Metrics()
    app[ops_state_key] = OpsState(pii_key={"fingerprint": cipher.fingerprint, "matches_data": False, "rotating_from": []})
    setup_routes(app)
    app.on_shutdown.append(_stop_taking_work)
    app.cleanup_ctx.append(_resources(settings, engine))
    app.cleanup_ctx.append(_match_index(settings, index_wait_s))
    app.cleanup_ctx.append(_subscribers)
    app.cleanup_ctx.append(_ticks(worker))
    return app


def _resources(settings: Settings, given: AsyncEngine | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[refdata_key] = await asyncio.to_thread(load_reference_data, settings.regions_csv, settings.industries_csv)
        engine = given if given is not None else create_engine(settings)
        app[engine_key] = engine
        app[session_factory_key] = session_factory(engine)
        if engine.dialect.name == "postgresql":  # several processes may serve: one budget for all of them
            shared = SharedWindows(engine, lambda client: app[cipher_key].lookup_hash("rate_client", client))
            app[link_throttle_key].shared = shared
            app[login_limiter_key].shared = shared
        try:
            status = await schema_status(engine)
            if not status.is_current:
                log.warning("database schema is not current; /healthz reports 503 until `policy-push db upgrade`")
            else:
                # `serve` refused a wrong key before starting; here the state is kept for /healthz and /readyz
                state = await check_key(app[session_factory_key], app[cipher_key])
                app[ops_state_key].pii_key.update(state.as_dict())
        except PiiKeyMismatch as exc:
            log.error("%s", exc)
        except Exception as exc:  # the server still starts, and /healthz says what is wrong
            log.warning("could not read the schema status: %s: %s", type(exc).__name__, exc)
        yield
        if given is None:
            await engine.dispose()

    return ctx


async def _stop_taking_work(app: web.Application) -> None:
    """First step of a graceful stop (SIGTERM/SIGINT): /readyz says 503, the sender claims nothing new."""
    app[ops_state_key].stopping = True
    pipeline = app.get(pipeline_key)
    if pipeline is not None:
        pipeline.dispatcher.stopping = True
    log.info("stopping: no new claims; in-flight requests and ticks get %.0f s", app[settings_key].stop_grace_s)


def _match_index(settings: Settings, wait_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """The match index, loaded from ``data_dir/index`` or built.  A small one is ready before
    the first request; a big one goes on in the background while the server answers, and
    match requests wait until it is up."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        shard = await _shard_of(settings, app[session_factory_key]) if settings.shard else None
        service = MatchService(
            app[session_factory_key],
            app[cipher_key],
            app[refdata_key],
            index_dir=settings.data_dir / "index",
            database=database_key(app[engine_key].url),
            shard=shard,
        )
        app[match_service_key] = service
        app[service_key] = Service(_runtime(app), index=service)
        # jieba's dictionary loads in one call that holds the GIL for a good 100 ms: done now,
        # before the first request, so that no request ever waits behind it
        await asyncio.to_thread(shared_tokenizer)
        started = service.start_in_background(progress=_log_progress)
        await asyncio.wait([started], timeout=wait_s)
        async with contextlib.AsyncExitStack() as stack:
            if shard is not None:
                http = await stack.enter_async_context(aiohttp.ClientSession())
                token = settings.service_token.get_secret_value() if settings.service_token else ""
                app[shard_router_key] = ShardRouter(service, app[session_factory_key], app[refdata_key], http,
                                                    token=token, timeout_s=settings.shard_timeout_s)  # fmt: skip
            yield
        await service.close()

    return ctx


async def _shard_of(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> tuple[str, ShardMap]:
    """This node's shard and the map it is in; a node whose shard is not in the map does not start."""
    if settings.service_token is None or not settings.service_token.get_secret_value():
        raise ConfigurationError("POLICY_PUSH_SHARD needs POLICY_PUSH_SERVICE_TOKEN: the shard nodes ask each other with it")
    async with sessions() as session:
        current = await shard_store.load(session)
    if current.get(settings.shard) is None:
        known = ", ".join(s.name for s in current.shards) or "none"
        raise ConfigurationError(f"POLICY_PUSH_SHARD={settings.shard!r} is not in the shard map (shards: {known}); "
                                 "add it with `policy-push shards set`")  # fmt: skip
    return settings.shard, current


def _log_progress(phase: str, done: int, total: int) -> None:
    log.info("%s %d/%d", phase, done, total)


async def _subscribers(app: web.Application) -> AsyncIterator[None]:
    """Sign-in codes go out through SMS adapters of their own, on an HTTP session of their own."""
    async with aiohttp.ClientSession() as http:
        app[subscribers_key] = Subscribers(_runtime(app), app[service_key], http)
        yield


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
                ticks.append(Tick("intake_poll", poller.tick, every, leader_only=True, lead=SERVE_LEAD,
                                  timeout_s=max(60.0, settings.intake_poll_interval_s)))  # fmt: skip
            scheduler = build_scheduler(settings, ticks, clock=clock)
            app[scheduler_key] = scheduler
            scheduler.start()
            # on PostgreSQL a write anywhere wakes this index at once; the tick stays the catch-up
            follower = OnWake(app[service_key].follow_changes)
            stop_listening = asyncio.Event()
            listener = asyncio.create_task(follow_notifications(app[engine_key], follower.wake, stop=stop_listening),
                                           name="change-notifications")
            try:
                yield
            finally:
                # asked, not cancelled: a cancel inside connect/LISTEN would leak the connection;
                # cancelled only if the database keeps it hanging past the grace period
                stop_listening.set()
                await asyncio.wait([listener], timeout=settings.stop_grace_s)
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
                await follower.stop()
                await scheduler.shutdown()

    return ctx
