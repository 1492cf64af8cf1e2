"""``policy-push serve``: the HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from policy_push.config import Settings
from policy_push.errors import SchemaOutOfDate
from policy_push.runtime import open_runtime
from policy_push.security import DEMO_PII_KEY


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


def uses_demo_key(settings: Settings) -> bool:
    """The PII key in force is the public demo key (demo mode without a key of its own, or the demo
    key configured by hand): anyone can read data encrypted with it."""
    given = settings.pii_key.get_secret_value().strip() if settings.pii_key is not None else ""
    return given == DEMO_PII_KEY or (not given and settings.demo)


def refuse_demo_key(command: str, settings: Settings) -> str | None:
    """The one line that refuses to run ``command`` on the public demo key (only ``demo`` may), or None."""
    if not uses_demo_key(settings):
        return None
    return (
        f"policy-push {command}: refusing the public demo PII key (POLICY_PUSH_DEMO=1 or the demo key as "
        "POLICY_PUSH_PII_KEY): anyone can decrypt data stored with it. Set POLICY_PUSH_PII_KEY to a key of your "
        "own (`policy-push keygen`), or use `policy-push demo` for the synthetic demo."
    )


def run_server(settings: Settings, *, banner: str = "", worker: bool = True) -> None:
    from policy_push.web import create_app
    from policy_push.web.access_log import RedactingAccessLogger

    app = create_app(settings, worker=worker)
    url = f"http://{settings.host}:{settings.port}"

    def say(_msg: str) -> None:
        print(f"{banner}policy_push API on {url}/api/v1  (OpenAPI: {url}/api/v1/openapi.json, health: {url}/healthz)")
        print("Press Ctrl+C to stop.")

    # the access log names routes, never paths: a person's link code is a credential (web.access_log)
    # an idle or half-sent request is dropped after keepalive_timeout (aiohttp's timer starts at connect)
    web.run_app(
        app, host=settings.host, port=settings.port, print=say, access_log_class=RedactingAccessLogger,
        keepalive_timeout=settings.request_header_timeout_s,
    )


def _serve(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args, host=args.host, port=args.port)
    refused = refuse_demo_key("serve", settings)
    if refused:
        print(refused, file=sys.stderr)
        return 2
    try:
        asyncio.run(preflight(settings))
    except SchemaOutOfDate as exc:
        print(f"policy-push serve: {exc}", file=sys.stderr)
        return 2
    run_server(settings, worker=not args.no_worker)
    return 0
