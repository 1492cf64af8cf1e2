"""JPush's report API: did a push reach its devices? JPush pushes no receipts; they are pulled.

* ``GET /v3/received/detail?msg_ids=…`` (and the older ``/v3/received``): delivery counts per
  ``msg_id``, at most 100 ids a call, kept about a month. For a push to one registration id a
  count above zero means delivered. ``parse_jpush_received`` reads both shapes.
* ``POST /v3/status/message`` ``{"msg_id", "registration_ids", "date"}``: per device, 0 delivered,
  1 not delivered (yet), 2 not a registration id of this app, 3 not a target of that message,
  4 system error. ``parse_jpush_status`` reads it; ``JPushReports.receipts`` turns it into
  ``Receipt``s: delivered, or (once the push's ``time_to_live`` has passed) not delivered.

The report API lives on its own host (``https://report.jpush.cn``) with the same Basic auth as
pushes. Rate limits and errors are answered as for ``/v3/push``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from channels.base import Outcome, chunked
from channels.errors import (
    AuthError,
    PermanentError,
    ProtocolError,
    ProviderServerError,
    ThrottledError,
    provider_errors,
)
from channels.jpush import JPushConfig
from channels.json_body import load_json
from channels.receipts import Receipt
from channels.signing import basic_auth_header

__all__ = ["DeviceStatus", "JPushReports", "ReceivedCount", "parse_jpush_received", "parse_jpush_status"]

_RECEIVED_FIELDS = (
    "android_received", "jpush_received", "android_pns_received", "ios_apns_received", "ios_msg_received",
    "quickapp_jpush_received", "hmos_hmpns_received", "live_acivity_received",
)  # fmt: skip


class DeviceStatus(enum.IntEnum):
    DELIVERED = 0
    NOT_DELIVERED = 1
    NOT_OF_THIS_APP = 2
    NOT_A_TARGET = 3
    SYSTEM_ERROR = 4


@dataclass(frozen=True, slots=True)
class ReceivedCount:
    """Delivery count of one push; ``received`` is None while JPush has no data for it."""

    msg_id: str
    received: int | None

    @property
    def delivered(self) -> bool:
        return bool(self.received)


def parse_jpush_received(body: bytes | str | list[Any]) -> list[ReceivedCount]:
    """Parse ``/v3/received`` or ``/v3/received/detail``: a JSON array, one object per msg_id."""
    items = load_json(body, "JPush received report", list)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "msg_id" not in item:
            raise ProtocolError(f"JPush received item {i} lacks msg_id")
        counts = [item[f] for f in _RECEIVED_FIELDS if isinstance(item.get(f), int)]
        out.append(ReceivedCount(str(item["msg_id"]), sum(counts) if counts else None))
    return out


def parse_jpush_status(body: bytes | str | Mapping[str, Any]) -> dict[str, DeviceStatus]:
    """Parse ``/v3/status/message``: ``{registration_id: {"status": n}}``."""
    data = load_json(body, "JPush status answer", dict)
    out = {}
    for reg_id, value in data.items():
        status = value.get("status") if isinstance(value, Mapping) else None
        try:
            out[str(reg_id)] = DeviceStatus(int(status))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"JPush status for one device is {status!r}") from exc
    return out


class JPushReports:
    """Pull delivery reports for pushes made with the same app key (see the module docstring)."""

    name = "jpush"

    def __init__(
        self, config: JPushConfig, session: aiohttp.ClientSession, *, report_url: str = "https://report.jpush.cn"
    ) -> None:
        self.config = config
        self.report_url = report_url.rstrip("/")
        self._session = session
        self._auth = basic_auth_header(config.app_key, config.master_secret)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        with provider_errors(self.name):
            async with self._session.request(
                method, f"{self.report_url}{path}", headers={"Authorization": self._auth}, timeout=self._timeout, **kw
            ) as resp:
                status = resp.status
                text = await resp.text()
        if status == 200:
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ProviderServerError(f"{self.name}: unreadable report ({exc})", code="BAD_ANSWER") from exc
        try:
            error = json.loads(text).get("error", {})
        except (json.JSONDecodeError, AttributeError):
            error = {}
        code = str(error.get("code", f"HTTP_{status}")) if isinstance(error, dict) else f"HTTP_{status}"
        message = f"{self.name} report: HTTP {status} {error.get('message', '') if isinstance(error, dict) else ''}"
        if status == 401:
            raise AuthError(message, code=code)
        if status == 429:
            raise ThrottledError(message, code=code)
        if status >= 500:
            raise ProviderServerError(message, code=code)
        raise PermanentError(message, code=code)

    async def received(self, msg_ids: Sequence[str], *, detail: bool = True) -> list[ReceivedCount]:
        """Delivery counts for ``msg_ids`` (any number; asked 100 at a time)."""
        path = "/v3/received/detail" if detail else "/v3/received"
        out: list[ReceivedCount] = []
        for part in chunked(list(msg_ids), 100):
            out += parse_jpush_received(await self._call("GET", path, params={"msg_ids": ",".join(part)}))
        return out

    async def message_status(
        self, msg_id: str, registration_ids: Sequence[str], *, date: str | None = None
    ) -> dict[str, DeviceStatus]:
        """Per-device status of one push (``date`` ``YYYY-MM-DD`` of the push; default today)."""
        out: dict[str, DeviceStatus] = {}
        for part in chunked(list(registration_ids), 1000):
            body: dict[str, Any] = {"msg_id": int(msg_id), "registration_ids": list(part)}
            if date:
                body["date"] = date
            out.update(parse_jpush_status(await self._call("POST", "/v3/status/message", json=body)))
        return out

    async def receipts(
        self, msg_id: str, registration_ids: Sequence[str], *, final: bool, date: str | None = None
    ) -> list[Receipt]:
        """Receipts for the devices of one push: delivered ones always; the others only when
        ``final`` (the push's time_to_live has passed, so an offline device will not get it now).

        Raises ``ChannelError`` when the report cannot be had; the caller asks again later.
        """
        statuses = await self.message_status(msg_id, registration_ids, date=date)
        out = []
        for reg_id, status in statuses.items():
            if status is DeviceStatus.DELIVERED:
                outcome = Outcome.ACCEPTED
            elif status is DeviceStatus.NOT_OF_THIS_APP or (status is DeviceStatus.NOT_DELIVERED and final):
                outcome = Outcome.UNREACHABLE
            else:
                continue  # not yet known, or not a device of that push
            out.append(
                Receipt(
                    provider=self.name, provider_message_id=str(msg_id), recipient=reg_id,
                    delivered=outcome is Outcome.ACCEPTED, outcome=outcome, code=status.name,
                )
            )
        return out
