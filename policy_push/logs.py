"""Logging set-up from settings: level, text or JSON lines, one time zone, request ids, no personal data.

Every command configures logging here once (``configure_logging``).  Times are shown in
``LOCAL_TIMEZONE`` with their offset, the zone the API answers in, so an access line and an API
answer about the same moment read the same.  The request id of the request being served (set by the
error middleware) is added to every line logged while it is served.  As a last line of defence a
filter masks anything shaped like a mainland mobile number or ID number in a message: a driver error
or a third-party library may quote a row.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pythonjsonlogger.json import JsonFormatter

from policy_push.config import Settings

__all__ = ["REQUEST_ID", "configure_logging", "mask_personal"]

#: the id of the HTTP request being served in this task (``-`` outside a request)
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("policy_push_request_id", default="-")

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
#: a WeChat openid (28 characters from "o"); WeChat's callbacks carry it in their query string
_OPENID = re.compile(r"(?<![0-9A-Za-z_-])(o[0-9A-Za-z_-]{3})[0-9A-Za-z_-]{24}(?![0-9A-Za-z_-])")
#: personal values that protocols put in query strings and form fields
_PARAM = re.compile(r"(?i)\b(openid|phone|mobile|phonenumbers?|registration_id|id_number)=([^&\s\"']+)")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def mask_personal(text: str) -> str:
    """Phones, ID numbers and openids in free text shown masked (138****1234, 211102********123X, oAbc****),
    and the values of query parameters that carry them."""
    text = _PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _OPENID.sub(lambda m: f"{m.group(1)}****", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


class _Context(logging.Filter):
    """Adds the request id; replaces the message by its masked rendering."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        masked = mask_personal(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


class _LocalTime:
    zone: ZoneInfo

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds")


class TextFormatter(_LocalTime, logging.Formatter):
    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__(_TEXT_FORMAT)
        self.zone = zone

    def formatException(self, ei: Any) -> str:
        return mask_personal(super().formatException(ei))


class JsonLineFormatter(_LocalTime, JsonFormatter):
    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
        self.zone = zone

    def formatException(self, ei: Any) -> str:
        return mask_personal(super().formatException(ei))


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Root logger: ``LOG_LEVEL``, ``LOG_FORMAT`` (text or json), times in ``LOCAL_TIMEZONE``."""
    zone = ZoneInfo(settings.local_timezone)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter(zone) if settings.log_format == "json" else TextFormatter(zone))
    handler.addFilter(_Context())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # aiohttp's access lines are written by policy_push.web.access instead (route template, request id)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosqlite logs every statement it runs at DEBUG: tens of thousands of lines that say nothing to an operator
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
