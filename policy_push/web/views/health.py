"""``/healthz``: can the service do its work, and what has it done. Public: counts only, never records.

503 when the database cannot be reached, its schema is not current, or the match index failed to build
or load; 200 otherwise (a match index still building is reported, not an error). The counters are the
process's own: its ticks (runs, failures, the last run), its sender's (claimed, accepted, leases), and the
deliveries in the database by channel and status.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import text

from policy_push.storage import PolicyRepository, delivery_history, profile_repository, schema_status
from policy_push.storage.contacts import PROFILE_KINDS

from ..bodies import json_response
from ..keys import cipher_key, engine_key, match_service_key, pipeline_key, scheduler_key
from ..ops_state import ops_state_key
from ._common import local_iso, transaction

__all__ = ["healthz"]

log = logging.getLogger("policy_push.web")


async def _database(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    engine = request.app[engine_key]
    database: dict[str, Any] = {"ok": False, "dialect": engine.dialect.name}
    counts: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        database["ok"] = True
        status = await schema_status(engine)
        database["schema_current"] = bool(status.is_current)
        database["revision"] = status.current
        if status.is_current:
            async with transaction(request) as session:
                counts["policies"] = await PolicyRepository(session).count()
                for kind in PROFILE_KINDS:
                    counts[f"{kind}s"] = await profile_repository(kind, session, request.app[cipher_key]).count()
                by_channel: dict[str, dict[str, int]] = {}
                for (channel, status_name), n in sorted((await delivery_history.counts(session)).items()):
                    by_channel.setdefault(channel, {})[status_name] = n
                counts["deliveries"] = by_channel
    except Exception as exc:  # a health check reports failure, it does not raise it
        log.warning("health check failed: %s: %s", type(exc).__name__, exc)  # the log filter masks personal values
        database["error"] = type(exc).__name__
    return database, counts


def _ticks(request: web.Request) -> dict[str, Any] | None:
    scheduler = request.app.get(scheduler_key)
    if scheduler is None:
        return None
    # "leader": holds any lead; "leads": each lead it competes for ("send": the send pipeline's leader-only
    # ticks, "serve": drafting and intake; "" on SQLite, where the one process leads everything)
    out: dict[str, Any] = {"leader": scheduler.is_leader, "leads": scheduler.leads()}
    for name, st in sorted(scheduler.stats().items()):
        out[name] = {
            "runs": st.runs, "failures": st.failures, "skipped_busy": st.skipped_busy,
            "last_run": local_iso(st.last_started_at) if st.last_started_at else None,
            "last_duration_s": None if st.last_duration_s is None else round(st.last_duration_s, 3),
            # the type only: a message may quote a value of a row
            "last_error": st.last_error.split(":", 1)[0] if st.last_error else None,
        }  # fmt: skip
    return out


async def healthz(request: web.Request) -> web.Response:
    database, counts = await _database(request)
    healthy = database["ok"] and database.get("schema_current", False) and "error" not in database
    body: dict[str, Any] = {"database": database, "counts": counts}
    service = request.app.get(match_service_key)
    if service is not None:
        # still building after a start: the service answers meanwhile and match requests wait
        body["match_index"] = service.stats()
        healthy = healthy and not service.failed
    ticks = _ticks(request)
    if ticks is not None:
        body["ticks"] = ticks
    state = request.app.get(ops_state_key)
    key = state.pii_key if state is not None else None
    if key:
        body["pii_key"] = key
        healthy = healthy and bool(key.get("matches_data"))
    pipeline = request.app.get(pipeline_key)
    if pipeline is not None:
        stats = pipeline.dispatcher.stats
        body["dispatch"] = {**vars(stats), "in_flight": pipeline.dispatcher.in_flight}
    return json_response({"status": "ok" if healthy else "unavailable", **body}, status=200 if healthy else 503)
