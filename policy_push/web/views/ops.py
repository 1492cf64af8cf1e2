"""Operations pages: liveness and readiness, Prometheus metrics, and the API documentation.

``/livez`` answers 200 while the process runs (a container platform restarts it otherwise);
``/readyz`` answers 200 only when the process should get traffic: database reachable, schema
current, PII key the data's, match index not failed, and not stopping (503 from the moment a
SIGTERM arrives, so a load balancer drains it first).  ``/docs`` renders the OpenAPI document as
one HTML page on the server: nothing is fetched from a CDN, no script runs.
"""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web
from sqlalchemy import text

from policy_push.storage import schema_status

from ..bodies import json_response
from ..keys import engine_key, match_service_key, openapi_key
from ..metrics import metrics_page
from ..ops_state import ops_state_key

__all__ = ["api_docs", "livez", "metrics", "readyz"]


async def livez(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    problems: list[str] = []
    state = app.get(ops_state_key)
    if state is not None and state.stopping:
        problems.append("stopping")
    try:
        engine = app[engine_key]
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        if not (await schema_status(engine)).is_current:
            problems.append("schema not current: run `policy-push db upgrade`")
    except Exception as exc:
        problems.append(f"database unreachable ({type(exc).__name__})")
    if state is not None and state.pii_key and not state.pii_key.get("matches_data", False):
        problems.append("PII key is not the data's key")
    service = app.get(match_service_key)
    if service is not None and service.failed:
        problems.append("match index failed")
    if problems:
        return json_response({"status": "unavailable", "problems": problems}, status=503)
    return json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return await metrics_page(request)


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else schema.get("type", "")


def _render(doc: dict[str, Any]) -> str:
    e = html.escape
    info = doc.get("info", {})
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if isinstance(op, dict) and "responses" in op:
                by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method.upper(), path, op))
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{e(info.get('title', 'API'))} — API documentation</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:0 auto;padding:1rem;color:#222}",
        "h2{border-bottom:1px solid #ddd;margin-top:2rem}.op{border:1px solid #e3e3e3;border-radius:6px;margin:.8rem 0;padding:.6rem}",
        ".m{font-weight:bold;display:inline-block;min-width:4.5rem}.auth{color:#a15c00;font-size:.85rem}",
        "table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #eee}",
        "nav a{margin-right:.8rem}code{background:#f4f6f8;padding:0 .2rem}pre{background:#f7f7f7;padding:.5rem;overflow:auto;max-height:20rem}",
        "</style></head><body>",
        f"<h1>{e(info.get('title', 'API'))} <small>{e(str(info.get('version', '')))}</small></h1>",
        f"<p>{e(info.get('description', ''))}</p>",
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a> (OpenAPI 3.1).</p><nav>",
        *(f"<a href='#tag-{e(tag)}'>{e(tag)}</a>" for tag in sorted(by_tag)),
        "</nav>",
    ]
    for tag in sorted(by_tag):
        out.append(f"<h2 id='tag-{e(tag)}'>{e(tag)}</h2>")
        for method, path, op in by_tag[tag]:
            secured = " <span class='auth'>bearer token</span>" if op.get("security") else ""
            out.append(f"<div class='op' id='{e(op.get('operationId', ''))}'><div><span class='m'>{e(method)}</span>"
                       f"<code>{e(path)}</code>{secured}</div><p>{e(op.get('summary', ''))}</p>")  # fmt: skip
            if op.get("description"):
                out.append(f"<p>{e(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>meaning</th></tr>")
                for p in params:
                    out.append(f"<tr><td><code>{e(p.get('name', ''))}</code>{' *' if p.get('required') else ''}</td>"
                               f"<td>{e(p.get('in', ''))}</td><td>{e(_schema_name(p.get('schema')))}</td>"
                               f"<td>{e(p.get('description', ''))}</td></tr>")  # fmt: skip
                out.append("</table>")
            body = op.get("requestBody", {}).get("content", {})
            for ctype, media in body.items():
                out.append(f"<p>Body <code>{e(ctype)}</code>: <a href='#schema-{e(_schema_name(media.get('schema')))}'>"
                           f"{e(_schema_name(media.get('schema')))}</a></p>")  # fmt: skip
            out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
            for status, reply in op.get("responses", {}).items():
                schemas = [_schema_name(m.get("schema")) for m in reply.get("content", {}).values()]
                links = ", ".join(f"<a href='#schema-{e(s)}'>{e(s)}</a>" for s in schemas if s)
                out.append(f"<tr><td>{e(str(status))}</td><td>{e(reply.get('description', ''))}</td><td>{links}</td></tr>")
            out.append("</table></div>")
    out.append("<h2 id='schemas'>Schemas</h2>")
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        out.append(f"<details id='schema-{e(name)}'><summary><code>{e(name)}</code> {e(schema.get('description', '')[:200])}"
                   f"</summary><pre>{e(json.dumps(schema, ensure_ascii=False, indent=2))}</pre></details>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out)


async def api_docs(request: web.Request) -> web.Response:
    return web.Response(text=_render(request.app[openapi_key]), content_type="text/html")
