"""``policy-push serve``: the HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from policy_push.config import Settings
from policy_push.errors import SchemaOutOfDate
from policy_push.runtime import open_runtime


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host", help="address to listen on (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default from settings: 8080)")
    p.add_argument("--no-worker", action="store_true", help="do not run the dispatch ticks in this process")
    p.set_defaults(handler=_serve)


async def preflight(settings: Settings) -> None:
    """Refuse to start without a PII key or on an out-of-date schema (the message says the fix)."""
    async with open_runtime(settings, require_current_schema=True):
        pass


def run_server(settings: Settings, *, banner: str = "", worker: bool = True) -> None:
    from policy_push.web import create_app
    from policy_push.web.access_log import SafeAccessLogger

    app = create_app(settings, worker=worker)
    url = f"http://{settings.host}:{settings.port}"

    def say(_msg: str) -> None:
        print(f"{banner}policy_push API on {url}/api/v1  (OpenAPI: {url}/api/v1/openapi.json, health: {url}/healthz)")
        print("Press Ctrl+C to stop.")

    # the default access log would print the callback secret in the path
    web.run_app(app, host=settings.host, port=settings.port, print=say, access_log_class=SafeAccessLogger)


def _serve(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args, host=args.host, port=args.port)
    try:
        asyncio.run(preflight(settings))
    except SchemaOutOfDate as exc:
        print(f"policy-push serve: {exc}", file=sys.stderr)
        return 2
    run_server(settings, worker=not args.no_worker)
    return 0
