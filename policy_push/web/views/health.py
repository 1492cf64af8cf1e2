"""``/healthz``: can we reach the database, is its schema current, how much is stored.
Public: it shows counts, never records.  503 when the service cannot do its work."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import text

from policy_push.storage import EnterpriseRepository, PolicyRepository, ResidentRepository, schema_status

from ..bodies import json_response
from ..keys import cipher_key, engine_key, match_service_key, pipeline_key
from ._common import transaction

__all__ = ["healthz"]

log = logging.getLogger("policy_push.web")


async def healthz(request: web.Request) -> web.Response:
    engine = request.app[engine_key]
    database: dict[str, Any] = {"ok": False, "dialect": engine.dialect.name}
    counts: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        database["ok"] = True
        status = await schema_status(engine)
        database["schema_current"] = bool(status.is_current)
        database["revision"] = status.current
        if status.is_current:
            cipher = request.app[cipher_key]
            async with transaction(request) as session:
                counts["policies"] = await PolicyRepository(session).count()
                counts["enterprises"] = await EnterpriseRepository(session, cipher).count()
                counts["residents"] = await ResidentRepository(session, cipher).count()
    except Exception as exc:  # a health check reports failure, it does not raise it
        log.warning("health check failed: %s", type(exc).__name__)
        database["error"] = type(exc).__name__
    healthy = database["ok"] and database.get("schema_current", False) and "error" not in database
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "database": database, "counts": counts}
    # the match index may still be building after a start: the service answers meanwhile,
    # match requests wait, and an operator sees the progress here
    service = request.app.get(match_service_key)
    if service is not None:
        body["match_index"] = service.stats()
    pipeline = request.app.get(pipeline_key)
    if pipeline is not None:
        body["worker"] = {"dispatch": True, "stats": dict(pipeline.stats)}
    return json_response(body, status=200 if healthy else 503)
