"""The aiohttp -> channel error translation, unit by unit and over real sockets."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
from aiohttp import web

from channels import (
    ChannelError,
    JPush,
    JPushConfig,
    Outcome,
    PermanentError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RetryableError,
    provider_errors,
)
from channels.errors import AuthError, InvalidMessageError, ProtocolError, QuotaExhaustedError, ThrottledError
from tests.channels.helpers import push


def _connector_error() -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    ("raised", "expected", "maybe_sent"),
    [
        (_connector_error(), ProviderUnavailable, False),
        (aiohttp.ConnectionTimeoutError(), ProviderUnavailable, False),
        (aiohttp.SocketTimeoutError(), ProviderTimeout, True),
        (TimeoutError(), ProviderTimeout, True),
        (aiohttp.ServerDisconnectedError(), ProviderServerError, True),
        (aiohttp.ClientPayloadError("cut"), ProviderServerError, True),
        (json.JSONDecodeError("bad", "x", 0), ProviderServerError, True),
        (aiohttp.ClientOSError(), ProviderServerError, True),
    ],
)
def test_translation(raised: Exception, expected: type[ChannelError], maybe_sent: bool) -> None:
    with pytest.raises(expected) as err, provider_errors("p"):
        raise raised
    assert err.value.maybe_sent is maybe_sent and err.value.__cause__ is raised


def test_channel_errors_pass_through_and_others_propagate() -> None:
    original = ThrottledError("slow down", code="2001")
    with pytest.raises(ThrottledError) as err, provider_errors("p"):
        raise original
    assert err.value is original
    with pytest.raises(KeyError), provider_errors("p"):
        raise KeyError("bug")


def test_hierarchy() -> None:
    assert issubclass(QuotaExhaustedError, ThrottledError) and issubclass(ThrottledError, RetryableError)
    for cls in (AuthError, ProtocolError, InvalidMessageError):
        assert issubclass(cls, PermanentError)
    assert ChannelError("x").code == "ChannelError"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connection_is_retryable_and_certainly_not_sent(session) -> None:
    ch = JPush(JPushConfig("k", "s", base_url=f"http://127.0.0.1:{_free_port()}"), session)
    [res] = await ch.send([push(1)])
    assert res.outcome is Outcome.RETRYABLE and not res.maybe_sent and res.code == "ProviderUnavailable"


async def test_dropped_connection_may_have_sent(session) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response()

    async def cids(request: web.Request) -> web.Response:
        return web.json_response({"cidlist": [f"k-{i}" for i in range(int(request.query["count"]))]})

    app = web.Application()
    app.router.add_get("/v3/push/cid", cids)
    app.router.add_post("/v3/push/batch/regid/single", drop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        ch = JPush(JPushConfig("k", "s", base_url=f"http://127.0.0.1:{runner.addresses[0][1]}"), session)
        [res] = await ch.send([push(1)])
    finally:
        await runner.cleanup()
    assert res.outcome is Outcome.RETRYABLE and res.maybe_sent
