"""``policy-push serve``: the HTTP API (with the dispatch ticks unless ``--no-worker``).

Serves the JSON API under /api/v1, the API documentation at /docs, Prometheus metrics at /metrics and health
at /healthz (liveness /livez, readiness /readyz). The port and the database are checked before the match index
is built. SIGTERM or SIGINT stops it gracefully within POLICY_PUSH_STOP_GRACE_S.

Example::

  export POLICY_PUSH_PII_KEY=...            # the key the data was imported with
  export POLICY_PUSH_API_TOKEN=change-me
  policy-push serve --port 8080             # API, /docs, /metrics, /healthz; dispatch ticks in process
  policy-push serve --no-worker             # HTTP only; run `policy-push worker` elsewhere
"""

from __future__ import annotations

import argparse
import asyncio
import socket

from aiohttp import web

from policy_push.config import Settings
from policy_push.runtime import open_runtime
from policy_push.security import DEMO_PII_KEY

from .failures import CommandFailed, Exit
from .help import add_documented
from .listen import bind_listener


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "serve", "serve the HTTP API", __doc__)
    p.add_argument("--host", help="address to listen on (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default from settings: 8080; 0 = any free port)")
    p.add_argument("--no-worker", action="store_true", help="do not run the dispatch ticks in this process")
    p.set_defaults(handler=_serve)


async def preflight(settings: Settings) -> None:
    """Refuse to start without a PII key, on an unreachable database, an out-of-date schema or a wrong
    PII key (the message says the fix)."""
    async with open_runtime(settings, require_current_schema=True):
        pass


def uses_demo_key(settings: Settings) -> bool:
    """The PII key in force is the public demo key (demo mode without a key of its own, or the demo
    key configured by hand): anyone can read data encrypted with it."""
    given = settings.pii_key.get_secret_value().strip() if settings.pii_key is not None else ""
    return given == DEMO_PII_KEY or (not given and settings.demo)


def refuse_demo_key(settings: Settings) -> None:
    """Refuse (exit status 2) to run on the public demo key: only ``demo`` may."""
    if uses_demo_key(settings):
        raise CommandFailed(
            Exit.USAGE,
            "refusing the public demo PII key (POLICY_PUSH_DEMO=1 or the demo key as POLICY_PUSH_PII_KEY): anyone "
            "can decrypt data stored with it. Set POLICY_PUSH_PII_KEY to a key of your own (`policy-push keygen`), "
            "or use `policy-push demo` for the synthetic demo.",
        )


def run_server(settings: Settings, *, banner: str = "", worker: bool = True, sock: socket.socket | None = None) -> None:
    from policy_push.web import create_app

    sock = sock or bind_listener(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    app = create_app(settings, worker=worker)
    url = f"http://{host}:{port}"

    def say(_msg: str) -> None:
        print(f"{banner}policy_push API on {url}/api/v1  (docs: {url}/docs, metrics: {url}/metrics, "
              f"health: {url}/healthz)", flush=True)  # fmt: skip
        print("Press Ctrl+C to stop.", flush=True)

    from policy_push.web.access import AccessLogger

    web.run_app(
        app, sock=sock, print=say, access_log_class=AccessLogger,
        # HTTP connections get a third of the grace, the ticks (app cleanup) the rest
        shutdown_timeout=settings.stop_grace_s / 3, handle_signals=True,
        # an idle or half-sent request is dropped after keepalive_timeout (aiohttp's timer starts at connect)
        keepalive_timeout=settings.request_header_timeout_s,
    )  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args, host=args.host, port=args.port)
    refuse_demo_key(settings)
    sock = bind_listener(settings.host, settings.port)  # before anything slow
    try:
        asyncio.run(preflight(settings))
    except BaseException:
        sock.close()
        raise
    run_server(settings, worker=not args.no_worker, sock=sock)
    return 0
