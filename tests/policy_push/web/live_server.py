"""The real app on a loopback port, served by its own loop in a background thread: for tests that speak
HTTP to it as any client would (the hypothesis fuzz, schemathesis), with a few records and a draft
campaign so that ids hit real rows."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from policy_push.config import Settings
from policy_push.web import create_app

from .conftest import TOKEN, sample_enterprise, sample_policy, sample_resident

__all__ = ["LiveServer", "seeded_server"]


class LiveServer:
    """The app on 127.0.0.1:<free port>, served by a loop in a background thread."""

    def __init__(self, app_settings: Settings) -> None:
        self.settings = app_settings
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self.error: BaseException | None = None
        self.campaign_id = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # handed to the test through ``error``
            self.error = exc
            self._ready.set()
        finally:
            # a loop left open keeps its self-pipe sockets, which the garbage collector then reports
            # in whatever test runs next
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self.settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def request(self, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes | None) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()


@contextmanager
def seeded_server(db_settings: Settings) -> Iterator[LiveServer]:
    """A live server with policy ``pf-1`` (no criteria), one enterprise, one resident and a draft campaign."""
    app_settings = db_settings.model_copy(update={"request_body_timeout_s": 5.0, "link_lookups_per_minute": 100_000})
    with LiveServer(app_settings) as server:
        auth = [("Authorization", f"Bearer {TOKEN}".encode()), ("Content-Type", b"application/json"),
                ("X-Staff-Member", b"alice")]
        for path, doc in (("/api/v1/policies/pf-1", sample_policy(id="pf-1", criteria=None)),
                          ("/api/v1/enterprises/" + sample_enterprise()["id"], sample_enterprise()),
                          ("/api/v1/residents/" + sample_resident()["id"], sample_resident())):
            status, _, body = server.request("PUT", path, auth, json.dumps(doc).encode())
            assert status in (200, 201), body
        status, _, body = server.request("POST", "/api/v1/campaigns", auth, json.dumps({"policy_id": "pf-1"}).encode())
        assert status == 201, body
        server.campaign_id = json.loads(body)["id"]
        yield server
