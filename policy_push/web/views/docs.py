"""The OpenAPI document, built once at app creation from the routes table."""

from __future__ import annotations

from aiohttp import web

from ..bodies import json_response
from ..keys import openapi_key

__all__ = ["openapi_json"]


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[openapi_key])
