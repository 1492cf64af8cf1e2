"""What the two SMS simulators (Aliyun, Tencent) share: scenarios per phone (a number refused at send
time, a receipt that fails), carrier reports that come some time after a send, the handset-reply
control and the JSON callbacks.

Each accepted message waits its receipt delay; then the simulator's ``_settle`` gives it its verdict
and answers the report to push (the callback's item), and the reports due together go to the callback
URL in JSON arrays of up to 100, as both providers push them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web

from channels.simulators._common import CONTROL_PREFIX, CallbackPusher, Faults, Simulator

__all__ = ["DelayedReports", "SmsSimConfig", "SmsSimulator", "aliyun_templates", "json_answer", "push_json", "tencent_templates"]

#: The templates the simulated SMS accounts have registered, the same messages at both providers:
#: (Aliyun TemplateCode, Tencent TemplateId, body with ${name} slots). Tencent numbers the slots {1}, {2}…
#: in the order they stand.
_TEMPLATES = (
    ("SMS_900001", "2000001",
     "您可能符合${title}，${benefit}，申报截止${deadline}。${reason}。详见 https://s.pj.gov.cn/${link} 回复TD退订"),
    # the three one-segment templates (channels.render.compact_sms_layouts), richest first
    ("SMS_900002", "2000002", "您可申请${title}，${deadline}截止。${reason}。详见https://s.pj.gov.cn/${link} 回复TD退订"),
    ("SMS_900003", "2000003", "您可申请${title}，${deadline}截止，详见https://s.pj.gov.cn/${link} 回复TD退订"),
    ("SMS_900004", "2000004", "您可申请${title}，详见https://s.pj.gov.cn/${link} 回复TD退订"),
    # a verification-code template (Aliyun's 验证码 type), for sign-in codes
    ("SMS_900005", "2000005", "您的验证码为${code}，${minutes}分钟内有效，请勿告诉他人。"),
    # the link that binds a WeChat account to the proven phone
    ("SMS_900006", "2000006", "您正在绑定微信，请在微信中打开 https://s.pj.gov.cn/${link} 完成绑定，${minutes}分钟内有效。如非本人操作请忽略。"),
)  # fmt: skip
_SLOT = re.compile(r"\$\{(\w+)\}")


def aliyun_templates() -> dict[str, str]:
    """TemplateCode -> body with ${name} slots."""
    return {code: body for code, _, body in _TEMPLATES}


def tencent_templates() -> dict[str, str]:
    """TemplateId -> body with {1}, {2}… slots."""
    out = {}
    for _, template_id, body in _TEMPLATES:
        slots = iter(range(1, 100))
        out[template_id] = _SLOT.sub(lambda _m, n=slots: f"{{{next(n)}}}", body)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsSimConfig:
    """What both SMS simulators are configured with."""

    sign_names: frozenset[str] = frozenset({"盘锦政务"})
    #: phone -> the provider's code answered at send time (e.g. isv.MOBILE_NUMBER_ILLEGAL,
    #: FailedOperation.PhoneNumberInBlacklist)
    send_scenarios: Mapping[str, str] = field(default_factory=dict)
    #: phone -> the carrier's error of a failed receipt (e.g. MK:0001); other messages are delivered
    receipt_scenarios: Mapping[str, str] = field(default_factory=dict)
    daily_limit_per_phone: int = 10
    #: where delivery receipts are pushed (a JSON array of reports)
    callback_url: str = ""
    #: where handset replies (up-messages) are pushed
    reply_callback_url: str = ""
    #: the carrier's delay before a receipt exists (seconds, scaled by time_factor)
    receipt_delay_s: float = 5.0
    time_factor: float = 1.0


_S = TypeVar("_S")
#: an SMS simulator's settings type
_C = TypeVar("_C", bound=SmsSimConfig)
_BATCH = 100


def push_json(pusher: CallbackPusher, url: str, value: Any, is_ack: Callable[[int, bytes], bool]) -> None:
    """Push ``value`` as a JSON body to ``url`` (in the background, retried until ``is_ack``)."""
    body = json.dumps(value, ensure_ascii=False).encode()
    pusher.push(url, body, content_type="application/json", is_ack=is_ack)


def json_answer(status: int, body: bytes) -> Any:
    """The JSON a callback receiver answered with HTTP 200, or None (another status, or not JSON)."""
    if status != 200:
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class DelayedReports(Generic[_S]):
    """Sent messages waiting for their carrier report, settled by one background task in due order."""

    def __init__(
        self, settle: Callable[[_S, float], dict[str, Any]], clock: Callable[[], float],
        push: Callable[[list[dict[str, Any]]], None], pushes: Callable[[], bool],
    ) -> None:  # fmt: skip
        """``settle`` gives a message its verdict at wall-clock time ``now`` and returns its callback
        item; ``push`` sends a list of items; ``pushes`` is asked for each item, when it is settled:
        False keeps it from the callback (no callback URL, or a lost receipt)."""
        self._settle, self._clock, self._push, self._pushes = settle, clock, push, pushes
        self._pending: deque[tuple[float, _S]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, sent: _S, delay_s: float) -> None:
        self._pending.append((time.monotonic() + delay_s, sent))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _flush(self) -> None:
        while self._pending:
            wait = self._pending[0][0] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            now_m, now = time.monotonic(), self._clock()
            reports = []
            while self._pending and self._pending[0][0] <= now_m:
                item = self._settle(self._pending.popleft()[1], now)
                if self._pushes():
                    reports.append(item)
            for start in range(0, len(reports), _BATCH):
                self._push(reports[start : start + _BATCH])


class SmsSimulator(Simulator[_C]):
    """Base of the SMS simulators: a subclass says how it writes a phone (``phone_key``), serves the API
    (``_handle``), settles a message (``_settle``) and what a callback receiver must answer (``_is_ack``)."""

    def __init__(
        self, config: _C, retry_delays_s: Sequence[float], *, faults: Faults | None, clock: Callable[[], float]
    ) -> None:
        super().__init__(config, faults=faults, clock=clock)
        self.pusher = CallbackPusher(retry_delays_s=retry_delays_s, time_factor=config.time_factor)
        self.send_scenarios: dict[str, str] = {self.phone_key(k): v for k, v in config.send_scenarios.items()}
        self.receipt_scenarios: dict[str, str] = {self.phone_key(k): v for k, v in config.receipt_scenarios.items()}
        # the URL is read when a report is due, as the provider reads its console setting: a test may
        # replace ``config`` on a running simulator
        self._reports: DelayedReports[Any] = DelayedReports(
            self._settle, self.clock, lambda items: push_json(self.pusher, self.config.callback_url, items, self._is_ack),
            lambda: bool(self.config.callback_url) and not self.lose_receipt(),
        )
        self.app.router.add_route("*", "/", self._handle)
        self.app.router.add_post(f"{CONTROL_PREFIX}/reply", self._control_reply)
        self.reply_url = config.reply_callback_url

    @staticmethod
    def phone_key(phone: str) -> str:
        """How scenarios and records key a phone number."""
        raise NotImplementedError

    @staticmethod
    def _is_ack(status: int, body: bytes) -> bool:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def _settle(self, sent: Any, now: float) -> dict[str, Any]:
        raise NotImplementedError

    def set_scenario(self, recipient: str, what: str) -> None:
        """``receipt:CODE`` fails the carrier's receipt; any other code refuses the number at send time."""
        phone = self.phone_key(recipient)
        if what.startswith("receipt:"):
            self.receipt_scenarios[phone] = what.removeprefix("receipt:")
        else:
            self.send_scenarios[phone] = what

    async def close(self) -> None:
        await self._reports.close()
        await self.pusher.close()
        await super().close()
