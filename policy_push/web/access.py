"""Access lines: method, route template (never the raw path: link codes and ids of people live in
paths and query strings), status, size, duration and the request id, at INFO on ``policy_push.access``."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["AccessLogger", "route_template"]


def route_template(request: web.BaseRequest) -> str:
    """``/api/v1/policies/{policy_id}`` for a matched route; ``(unmatched)`` otherwise."""
    match_info = getattr(request, "match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "(unmatched)"


class AccessLogger(AbstractAccessLogger):
    def __init__(self, logger: logging.Logger, log_format: str) -> None:  # aiohttp's signature
        super().__init__(logging.getLogger("policy_push.access"), log_format)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_template(request)
        request_id = response.headers.get("X-Request-Id", "-")
        self.logger.info(
            "%s %s %d %dB %.1fms",
            request.method if request.method.isalpha() else "-", route, response.status, response.body_length, time * 1000,
            extra={
                "request_id": request_id, "method": request.method, "route": route, "status": response.status,
                "bytes": response.body_length, "duration_ms": round(time * 1000, 2),
            },
        )  # fmt: skip
