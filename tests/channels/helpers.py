"""Plain factory functions and a callback receiver for the channel tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from aiohttp import web

from channels import Notification, OutboundMessage

POLICY_PARAMS: Mapping[str, str] = {
    "title": "专精特新中小企业奖励",
    "benefit": "最高30万元",
    "deadline": "2024年6月30日",
    "reason": "您的企业是专精特新中小企业",
    "link": "Ab3x",
}
WECHAT_PARAMS: Mapping[str, str] = {
    "thing1": "专精特新中小企业奖励",
    "time2": "2024年6月30日",
    "thing3": "您的企业是专精特新中小企业",
    "thing4": "最高30万元",
}


def phone(i: int) -> str:
    return f"138{i:08d}"


def openid(i: int) -> str:
    return f"o6_bmjrPTlm6_2sgVt7hM{i:07d}"


def reg_id(i: int) -> str:
    return f"1a0018970a{i:08x}"


def sms(i: int, *, recipient: str | None = None, template: str = "policy_notice", **params: str) -> OutboundMessage:
    return OutboundMessage(f"d-{i}", recipient or phone(i), template, {**POLICY_PARAMS, **params})


def wechat(i: int, *, recipient: str | None = None, **params: str) -> OutboundMessage:
    return OutboundMessage(
        f"w-{i}", recipient or openid(i), "policy_notice", {**WECHAT_PARAMS, **params}, url="https://s.pj.gov.cn/Ab3x"
    )


def push(i: int, *, recipient: str | None = None, text: str = "对新认定的专精特新中小企业给予奖励") -> OutboundMessage:
    return OutboundMessage(f"p-{i}", recipient or reg_id(i), title="专精特新奖励", text=text, url="https://s.pj.gov.cn/Ab3x")


def notification(**overrides: object) -> Notification:
    values: dict[str, object] = {
        "policy_title": "关于组织申报2024年度盘锦市专精特新中小企业奖励资金的通知",
        "summary": "对新认定的专精特新中小企业给予最高30万元奖励",
        "reason": "您的企业是专精特新中小企业",
        "link": "https://s.pj.gov.cn/Ab3x",
        "deadline": date(2024, 6, 30),
        "benefit": "最高30万元",
    }
    values.update(overrides)
    return Notification(**values)  # type: ignore[arg-type]


@dataclass
class CallbackReceiver:
    """A loopback server standing in for our receipt/event endpoint; fails the first ``fail_first`` pushes."""

    answer_body: bytes = b'{"code":0,"msg":"\xe6\x8e\xa5\xe6\x94\xb6\xe6\x88\x90\xe5\x8a\x9f"}'
    fail_first: int = 0
    bodies: list[bytes] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500, text="busy")
        self.bodies.append(body)
        self.queries.append(dict(request.query))
        self.arrived.set()
        return web.Response(body=self.answer_body, content_type="application/json")

    async def start(self) -> CallbackReceiver:
        app = web.Application()
        app.router.add_post("/cb", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/cb"
        return self

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.bodies) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeClock:
    """A settable clock for the simulators and the adapters."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
