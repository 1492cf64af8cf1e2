"""``/redoc``: an interactive reference of the API (Swagger UI, ReDoc's equivalent), served entirely by
this service from the ``swagger-ui-bundle-v2`` package: no CDN, nothing fetched at run time.

The page loads the package's ``swagger-ui.css`` and ``swagger-ui-bundle.js`` from ``/api-docs/`` and a
small starter of our own (``/static/api-explorer.js``), so the Content-Security-Policy stays as strict
as everywhere else (scripts from this origin only, no inline script).  ``/docs`` stays the plain page
that needs no JavaScript."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "api_explorer", "api_explorer_asset"]

_DIR = Path(swagger_ui_path)
#: the package's files the page uses, and their types; nothing else is served from the package
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>policy_push API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
<main><div id="swagger-ui"></div></main>
<noscript><p>This page needs JavaScript; <a href="/docs">/docs</a> is the same reference without it.</p></noscript>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/static/api-explorer.js"></script>
</body>
</html>
"""


async def api_explorer(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")


async def api_explorer_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(_DIR / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "public, max-age=86400"})
