"""The access log without secrets: the callback secret in ``/callbacks/<provider>/<secret>/…`` and every
query string (WeChat's signature material, people's link ids) are left out of each line."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["SafeAccessLogger", "safe_path"]

_CALLBACK_SECRET = re.compile(r"^(/callbacks/[a-z]+/)[^/]+(/)")


def safe_path(path: str) -> str:
    """``request.path`` as a log line may show it: the callback secret replaced by ``***``."""
    return _CALLBACK_SECRET.sub(r"\1***\2", path)


class SafeAccessLogger(AbstractAccessLogger):
    """One line per request: method, path (secret masked, no query), status, size and time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs', request.remote, request.method, safe_path(request.path), response.status,
            response.body_length, time,
        )  # fmt: skip
