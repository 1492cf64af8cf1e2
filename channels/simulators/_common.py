"""What every provider simulator shares: the server lifecycle, records, faults and callback pushes."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from aiohttp import web

from channels.masking import mask_recipient

__all__ = ["CONTROL_PREFIX", "CallbackPusher", "Faults", "SentRecord", "Simulator", "json_response", "read_control"]

_log = logging.getLogger("channels.simulators")
#: Control endpoints live under this prefix, which no provider uses: an SDK pointed at a simulator
#: can never reach them, and a client pointed at the real provider gets a 404 for them.
CONTROL_PREFIX = "/_sim"


@dataclass(frozen=True, slots=True)
class SentRecord:
    """A message the simulated provider accepted, as a test or a trainer would want to see it."""

    provider: str
    message_id: str
    recipient: str
    delivery_id: str
    template: str
    params: Mapping[str, str]
    text: str
    at: float

    def describe(self) -> str:
        """A log line with the recipient masked."""
        return f"[{self.provider}] to {mask_recipient(self.recipient)} id={self.message_id}: {self.text}"


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults to inject: ``error_rates`` maps a provider code (or ``HTTP_500``) to a probability.

    ``timeout_rate`` makes the simulator accept and record a message, then hold the answer for
    ``hang_s``: the caller times out although the message went out, the case SMS settling is for.
    """

    error_rates: Mapping[str, float] = field(default_factory=dict)
    latency_s: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    lost_receipt_rate: float = 0.0
    seed: int | None = None

    def pick_error(self, rng: random.Random) -> str | None:
        if not self.error_rates:
            return None
        roll = rng.random()
        for code, rate in self.error_rates.items():
            if roll < rate:
                return code
            roll -= rate
        return None

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Faults:
        """From CLI words: ``CODE=RATE``, ``latency=S``, ``timeout=RATE``, ``lost_receipts=RATE``."""
        rates: dict[str, float] = {}
        extra: dict[str, float] = {}
        names = {"latency": "latency_s", "timeout": "timeout_rate", "lost_receipts": "lost_receipt_rate"}
        for spec in specs:
            key, _, value = spec.partition("=")
            if key in names:
                extra[names[key]] = float(value)
            else:
                rates[key] = float(value)
        return cls(error_rates=rates, **extra)


class CallbackPusher:
    """POSTs receipts/events to a callback URL in the background, retrying on the provider's schedule.

    ``retry_delays_s`` are the provider's real waits; ``time_factor`` scales them (0.001 turns
    minutes into tenths of a second) so tests and demos need not wait real minutes.
    """

    def __init__(self, *, retry_delays_s: Sequence[float], time_factor: float = 1.0, timeout_s: float = 5.0) -> None:
        self.retry_delays_s = tuple(retry_delays_s)
        self.time_factor = time_factor
        self._timeout = aiohttp.ClientTimeout(total=timeout_s * min(1.0, max(time_factor, 0.2)))
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: (url, attempt number, HTTP status or 0 on failure) for every push, oldest first
        self.attempts: list[tuple[str, int, int]] = []
        #: (url, body) of every push given up after the last retry (the provider never pushes it again)
        self.given_up: list[tuple[str, bytes]] = []

    def push(
        self, url: str, body: bytes, *, content_type: str, is_ack: Callable[[int, bytes], bool], delay_s: float = 0.0
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(url, body, content_type, is_ack, delay_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, body: bytes, content_type: str, is_ack: Callable[[int, bytes], bool], delay_s: float
    ) -> None:
        if delay_s:
            await asyncio.sleep(delay_s * self.time_factor)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        waits = (0.0, *self.retry_delays_s)
        for attempt, wait in enumerate(waits, start=1):
            if wait:
                await asyncio.sleep(wait * self.time_factor)
            status = 0
            try:
                async with self._session.post(url, data=body, headers={"Content-Type": content_type}) as resp:
                    status = resp.status
                    answer = await resp.read()
                    if is_ack(status, answer):
                        self.attempts.append((url, attempt, status))
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                _log.debug("callback push to %s failed: %s", url, exc)
            self.attempts.append((url, attempt, status))
        self.given_up.append((url, body))
        _log.warning("giving up on a callback to %s after %d pushes", url, len(waits))

    async def drain(self) -> None:
        """Wait until every scheduled push has been delivered or given up (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


#: a simulator's settings type
C = TypeVar("C")


class Simulator(Generic[C]):
    """Base of the provider simulators: an aiohttp app on loopback with records and fault injection."""

    provider: str = "simulator"

    def __init__(self, config: C, *, faults: Faults | None = None, clock: Callable[[], float] = time.time) -> None:
        #: the provider's own settings
        self.config = config
        self.faults = faults or Faults()
        self.clock = clock
        self.rng = random.Random(self.faults.seed)
        self.records: list[SentRecord] = []
        #: every HTTP request received (token, cid pool and query calls included)
        self.http_requests = 0
        #: send requests that passed authentication
        self.requests = 0
        #: monotonic arrival times of requests that passed authentication, for rate assertions
        self.request_times: list[float] = []
        #: called with every accepted message, e.g. to print it for someone watching a demo
        self.listeners: list[Callable[[SentRecord], None]] = []
        self.app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[self._count])
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.app.router.add_get(f"{CONTROL_PREFIX}/records", self._control_records)
        self.app.router.add_post(f"{CONTROL_PREFIX}/scenario", self._control_scenario)

    def set_scenario(self, recipient: str, what: str) -> None:
        """Script one recipient's fate (the codes each simulator understands are in its ``set_scenario``)."""
        raise ValueError(f"{self.provider} has no per-recipient scenarios")

    def reply(self, phone: str, text: str, *, sign_name: str = "") -> Any:
        """A handset answers ``text`` (SMS simulators only); returns what was pushed."""
        raise ValueError(f"{self.provider} receives no SMS replies")

    #: where ``reply`` pushes, for the control answer (SMS simulators set it from their config)
    reply_url: str = ""

    async def _control_reply(self, request: web.Request) -> web.Response:
        data = await read_control(request, ("phone", "text"))
        if isinstance(data, web.Response):
            return data
        try:
            pushed = self.reply(str(data["phone"]), str(data["text"]), sign_name=str(data.get("sign_name", "")))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 422)
        return json_response({"pushed_to": self.reply_url, "body": pushed})

    async def _control_records(self, request: web.Request) -> web.Response:
        """Every accepted message, oldest first: what a test or a trainer checks after a run."""
        return json_response(
            {
                "provider": self.provider,
                "records": [
                    {
                        "message_id": r.message_id, "recipient": r.recipient, "delivery_id": r.delivery_id,
                        "template": r.template, "params": dict(r.params), "text": r.text, "at": r.at,
                    }
                    for r in self.records
                ],
            }
        )  # fmt: skip

    async def _control_scenario(self, request: web.Request) -> web.Response:
        data = await read_control(request, ("recipient", "scenario"))
        if isinstance(data, web.Response):
            return data
        try:
            self.set_scenario(str(data["recipient"]), str(data["scenario"]))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 422)
        return json_response({"recipient": data["recipient"], "scenario": data["scenario"]})

    @web.middleware
    async def _count(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.http_requests += 1
        return await handler(request)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def record(self, rec: SentRecord) -> None:
        self.records.append(rec)
        for listener in self.listeners:
            listener(rec)

    async def inject(self) -> str | None:
        """Apply configured latency; return a code to fail with, "TIMEOUT" to hang, or None."""
        self.requests += 1
        self.request_times.append(time.monotonic())
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.timeout_rate and self.rng.random() < self.faults.timeout_rate:
            return "TIMEOUT"
        return self.faults.pick_error(self.rng)

    async def hang(self) -> None:
        await asyncio.sleep(self.faults.hang_s)

    def lose_receipt(self) -> bool:
        return bool(self.faults.lost_receipt_rate) and self.rng.random() < self.faults.lost_receipt_rate


async def read_control(request: web.Request, required: Sequence[str]) -> dict[str, Any] | web.Response:
    """The JSON object of a control request, or a 400/422 answer naming what is wrong."""
    try:
        data = await request.json()
    except ValueError:
        return json_response({"error": "the body must be a JSON object"}, 400)
    if not isinstance(data, dict):
        return json_response({"error": "the body must be a JSON object"}, 400)
    missing = [name for name in required if not data.get(name)]
    if missing:
        return json_response({"error": f"missing {', '.join(missing)}"}, 422)
    return data


def json_response(body: Mapping[str, Any] | Sequence[Any], status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
