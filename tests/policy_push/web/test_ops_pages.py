"""/metrics, /livez, /readyz, /docs and /redoc of the real app, on both databases; /healthz names the PII key,
and an app started with another key than the data's reports it and is not ready."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from policy_push.config import Settings
from policy_push.security import generate_key
from policy_push.web import create_app

from .conftest import AUTH, Client, sample_policy, sample_resident


def _value(page: str, name: str, **labels: str) -> float:
    for line in page.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{page[:3000]}")


async def test_metrics_count_requests_by_route_and_show_the_index(client: Client) -> None:
    assert (await client.post("/api/v1/policies", json=sample_policy(), headers=AUTH)).status == 201
    assert (await client.post("/api/v1/residents", json=sample_resident(), headers=AUTH)).status == 201
    for _ in range(3):
        assert (await client.get("/api/v1/policies/no-such-policy")).status == 404
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    page = await resp.text()
    # routes by template, never the id in the path
    assert _value(page, "policy_push_http_requests_total", method="GET", route="/api/v1/policies/{id}", status="404") == 3
    assert "no-such-policy" not in page
    assert _value(page, "policy_push_http_request_duration_seconds_count", method="POST", route="/api/v1/policies") == 1
    assert _value(page, "policy_push_match_index_policies") >= 0
    assert _value(page, "policy_push_database_up") == 1
    assert "policy_push_tick_runs_total" in page and "policy_push_tick_seconds_total" in page
    # the sample resident's phone and ID number appear nowhere
    person = sample_resident()
    assert person["contact"]["phone"] not in page and person["id_number"] not in page
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", page)


async def test_probes_docs_and_healthz_key(client: Client, settings: Settings) -> None:
    assert (await (await client.get("/livez")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200, await ready.text()
    docs = await client.get("/docs")
    assert docs.status == 200 and docs.content_type == "text/html"
    html = await docs.text()
    assert "list_policies" in html and "/api/v1/policies/{id}" in html and "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing from a CDN
    # /redoc: the interactive reference, every file of it from this service (a browser renders it: test_api_explorer)
    redoc = await client.get("/redoc", allow_redirects=False)
    page = await redoc.text()
    assert redoc.status == 200 and redoc.content_type == "text/html"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") or s == "data:," for s in sources), sources
    for src in sources:
        if src not in ("/docs", "data:,"):
            asset = await client.get(src)
            assert asset.status == 200 and asset.content_type in ("text/css", "text/javascript"), src
            assert len(await asset.read()) > 1000 or src.startswith("/static/"), src
    assert (await client.get("/api-docs/swagger-ui.js.map")).status == 404  # only the files the page uses
    assert (await client.get("/api-docs/..%2F..%2F__init__.py")).status == 404
    health = await (await client.get("/healthz")).json()
    from policy_push.security import PiiCipher

    assert health["pii_key"]["fingerprint"] == PiiCipher.from_settings(settings).fingerprint
    assert health["pii_key"]["matches_data"] is True


async def test_another_key_is_reported_and_not_ready(client: Client, aiohttp_client, settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/api/v1/residents", json=sample_resident(), headers=AUTH)).status == 201
    other = settings.model_copy(update={"pii_key": SecretStr(generate_key())})
    second: TestClient = await aiohttp_client(create_app(other, engine=engine))  # type: ignore[type-arg]
    health = await second.get("/healthz")
    assert health.status == 503
    body = await health.json()
    assert body["pii_key"]["matches_data"] is False
    ready = await second.get("/readyz")
    assert ready.status == 503 and "PII key is not the data's key" in (await ready.json())["problems"]
