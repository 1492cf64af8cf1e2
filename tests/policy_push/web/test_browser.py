"""The staff console in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser), against the real app with its send pipeline pointed at the provider simulators.

One officer (``approver2``) logs in, finds a policy by search, opens its campaign preview, excludes a
recipient and is refused approving what they prepared; another (``approver``) approves; the progress
page changes as the simulators deliver.  A page holding the injection strings shows them escaped.
Replies and a pending enterprise contact are on their pages, and the contact is approved there.
axe-core (vendored, tests/policy_push/web/browser) finds no WCAG 2.1 A/AA violation on any page
visited; screenshots are kept under ``tmp/artefacts/browser`` (or POLICY_PUSH_TEST_ARTEFACTS); and
no password, token, cookie or CSRF value appears in the access log or the application log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from channels.simulators import SimulatorSet, start_all
from policy_push.config import Settings
from policy_push.sending.providers import callback_urls
from policy_push.web import create_app
from policy_push.web.keys import settings_key
from tests.factories import enterprise_doc, policy_doc
from tests.policy_push.sending.fixtures import sim_settings

from .conftest import BAD, PASSWORD, StaffFixture
from .test_inbox_pages import seed_inbox

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = os.environ.get("POLICY_PUSH_TEST_CHROMIUM", "/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
AXE = (HERE / "browser" / "axe.min.js").read_text(encoding="utf-8")
ROOT = HERE.parents[2]
ARTEFACTS = Path(os.environ.get("POLICY_PUSH_TEST_ARTEFACTS", ROOT / "tmp" / "artefacts")) / "browser"
INJECTION = json.loads((BAD / "16_injection_strings.jsonl").read_text(encoding="utf-8").splitlines()[0])
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CALLBACK_SECRET = "browser-test-callback-secret-000000"

pytestmark = pytest.mark.slow


class Visits:
    """Every page visited: axe-checked and photographed."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.violations: dict[str, list[str]] = {}
        self.n = 0
        ARTEFACTS.mkdir(parents=True, exist_ok=True)

    async def check(self, page: Any, name: str) -> None:
        self.n += 1
        await page.screenshot(path=str(ARTEFACTS / f"{self.tag}-{self.n:02d}-{name}.png"), full_page=True)
        # evaluated through the DevTools protocol: the page's CSP (no inline script) stays as it is
        await page.evaluate(AXE)
        found = await page.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
            ".map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))",
            WCAG,
        )
        if found:
            self.violations[f"{name} ({page.url})"] = found


async def _login(page: Any, base: str, name: str, visits: Visits | None = None) -> None:
    await page.goto(f"{base}/staff/login")
    if visits is not None:
        await visits.check(page, "login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/staff")


async def _setup(base_client: TestClient, staff: StaffFixture) -> dict[str, Any]:
    admin, preparer = staff.headers("admin"), staff.headers("approver2")
    docs = [enterprise_doc(channels=["sms", "wechat"]), enterprise_doc(channels=["sms"]), enterprise_doc(channels=["wechat"])]
    for d in docs:
        assert (await base_client.post("/api/v1/enterprises", json=d, headers=admin)).status == 201
    policy = policy_doc(title="关于组织申报专精特新中小企业奖励资金的通知")
    assert (await base_client.post("/api/v1/policies", json=policy, headers=preparer)).status == 201
    injected = {**INJECTION, "criteria": {"all": [{"field": "region", "op": "within", "value": ["211100"]}]}}
    assert (await base_client.post("/api/v1/policies", json=injected, headers=preparer)).status == 201
    # prepared explicitly by approver2 (the write's own draft may be redone by the change-feed tick, as the system)
    made = await base_client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=preparer)
    assert made.status == 201, await made.text()
    return {"policy": policy, "injected": injected, "profiles": docs, "campaign": (await made.json())["id"]}


async def _delivered(page: Any) -> int:
    cells = await page.locator("table").first.locator("tr").all_inner_texts()
    total = 0
    for row in cells[1:]:
        parts = row.split("\t")
        if len(parts) > 4 and parts[4].strip().isdigit():
            total += int(parts[4])
    return total


async def test_an_officer_takes_a_campaign_from_search_to_delivered(
    aiohttp_client: Any, db_settings: Settings, engine: Any, staff: StaffFixture, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    # the access log's own logger too: an earlier in-process run of the CLI's logging set may have quietened it
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    port = _free_port()
    base_settings = db_settings.model_copy(update={"callback_secret": SecretStr(CALLBACK_SECRET)})
    # the SMS simulators push their receipts to this app, as Aliyun and Tencent do
    urls = callback_urls(base_settings, f"http://127.0.0.1:{port}")
    sims = await start_all(time_factor=0.01, callback_urls=urls)
    try:
        settings = sim_settings(base_settings, sims, staff_cookie_secure=False, api_token="test-token")
        client: TestClient = await aiohttp_client(TestServer(create_app(settings, engine=engine, worker=True), port=port))
        await _flow(client, engine, staff, caplog, sims)
    finally:
        await sims.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _funnel(page: Any, base: str, policy_id: str = "") -> dict[str, int]:
    """The dashboard's funnel table as the browser shows it, overall or for one policy."""
    await page.goto(f"{base}/staff" + (f"?policy_id={policy_id}" if policy_id else ""))
    table = page.locator("table:has(caption:text-is('触达漏斗（人数）'))")
    labels = await table.locator("tr >> nth=0 >> th").all_inner_texts()
    counts = await table.locator("tr >> nth=1 >> td").all_inner_texts()
    return {label.strip(): int(n) for label, n in zip(labels, counts, strict=True)}


async def _open_sms_link(base: str, link_base: str, sims: SimulatorSet) -> str:
    """Follow the link of one SMS the simulators accepted, as its reader would: the short-link host sends
    ``<link_base><code>`` on to ``/s/<code>``; a plain HTTP client without any staff cookie."""
    texts = [r.text for name in ("aliyun", "tencent") for r in sims.records[name]]
    codes = [m.group(1) for t in texts if (m := re.search(re.escape(link_base) + r"([0-9A-Za-z-]+)", t))]
    assert codes, texts
    async with aiohttp.ClientSession() as person, person.get(f"{base}/s/{codes[0]}") as resp:
        assert resp.status == 200, await resp.text()
        assert "为什么推送给您" in await resp.text()
    return codes[0]


async def _flow(client: TestClient, engine: Any, staff: StaffFixture, caplog: pytest.LogCaptureFixture,
                sims: SimulatorSet) -> None:  # fmt: skip
    world = await _setup(client, staff)
    base = str(client.make_url("")).rstrip("/")
    tag = "pg" if "postgres" in str(engine.url) else "sqlite"
    visits = Visits(tag)
    dialogs: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx = await browser.new_context(locale="zh-CN")
            page = await ctx.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
            await _login(page, base, "approver2", visits)
            await visits.check(page, "dashboard")
            # find the policy by search
            await page.click("nav a[href='/staff/policies']")
            await page.fill("input[name=q]", "专精特新 奖励")
            await page.click("button:has-text('搜索')")
            await visits.check(page, "policy-search")
            await page.click(f"text={world['policy']['title']}")
            await visits.check(page, "policy-detail")
            assert "注册地 属于 盘锦市" in await page.content()
            # its campaign preview
            await page.click(f"main a[href='/staff/campaigns?policy_id={world['policy']['id']}']")
            await visits.check(page, "campaign-list")
            await page.click(f"a[href='/staff/campaigns/{world['campaign']}']")
            await visits.check(page, "campaign-preview")
            html = await page.content()
            for d in world["profiles"]:
                assert d["contact"]["phone"] not in html
            # exclude one recipient
            await page.check("#pick-1")
            await page.click("button:has-text('排除所选')")
            await page.wait_for_url(re.compile(r"done=excluded"))
            assert "已排除所选对象" in await page.content()
            # the preparer may not approve: no form, and a forged post is refused
            preview = await page.inner_text("main")
            assert "四眼原则" in preview and await page.locator("text=确认审批").count() == 0, preview[:600]
            csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
            forged = await page.request.post(f"{base}/staff/campaigns/{world['campaign']}/approve",
                                             form={"csrf": csrf or "", "sha256": "0" * 64})  # fmt: skip
            assert forged.status == 403
            # the injection strings render inert
            await page.goto(f"{base}/staff/policies/{world['injected']['id']}")
            await visits.check(page, "injection")
            assert "<script>" in await page.inner_text("main") and not dialogs

            # another officer approves, with the confirmation in front of them
            ctx2 = await browser.new_context(locale="zh-CN")
            page2 = await ctx2.new_page()
            page2.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
            await _login(page2, base, "approver")
            await page2.goto(f"{base}/staff/campaigns/{world['campaign']}")
            confirm = await page2.inner_text(".note >> nth=-1")
            assert re.search(r"共 \d+ 条消息：短信 \d+ 条（最多计费 \d+ 条），微信 \d+ 条，App \d+ 条", confirm), confirm
            await page2.check("input[name=schedule]")
            await page2.click("button:has-text('确认审批')")
            await page2.wait_for_url(re.compile(r"done=approved"))
            await visits.check(page2, "approved")
            # the progress page changes as the simulators deliver
            await page2.goto(f"{base}/staff/campaigns/{world['campaign']}/progress")
            await visits.check(page2, "progress-start")
            began, delivered, answered = time.monotonic(), 0, 0
            while time.monotonic() - began < 60:
                await page2.reload()
                delivered = await _delivered(page2)
                answered = int(await page2.inner_text("#final"))
                if delivered:
                    break
                await asyncio.sleep(1.0)
            # the simulators' answers show up (a WeChat refusal is final at once; an SMS is final when its
            # receipt comes back)
            assert answered > 0, await page2.inner_text("main")
            await visits.check(page2, "progress-delivered")
            # the dashboard's funnel counts what was delivered, overall and by district
            await page2.goto(f"{base}/staff")
            await visits.check(page2, "dashboard-after")
            funnel = await page2.locator("table:has(caption:text-is('触达漏斗（人数）')) tr >> nth=1 >> td").all_inner_texts()
            assert int(funnel[1]) > 0 and int(funnel[2]) == delivered, funnel  # told; delivered as the progress page says
            by_district = await page2.locator("table:has(caption:text-is('各区县触达漏斗（人数）')) tr").all_inner_texts()
            assert any(int(row.split("\t")[2]) > 0 for row in by_district[1:]), by_district
            # a person opens the link in their SMS: 打开链接 goes up by one, overall and for the policy
            before = await _funnel(page2, base), await _funnel(page2, base, world["policy"]["id"])
            await _open_sms_link(base, client.app[settings_key].sms_link_base, sims)
            after = await _funnel(page2, base), await _funnel(page2, base, world["policy"]["id"])
            await visits.check(page2, "dashboard-opened")
            for was, now in zip(before, after, strict=True):
                assert now["打开链接"] == was["打开链接"] + 1, (was, now)
                assert {k: v for k, v in now.items() if k != "打开链接"} == {k: v for k, v in was.items() if k != "打开链接"}
            await _open_sms_link(base, client.app[settings_key].sms_link_base, sims)  # the same person again
            assert (await _funnel(page2, base))["打开链接"] == after[0]["打开链接"]
            # what people sent back, and a second enterprise contact approved on the page
            pending = (await seed_inbox(client.app))["pending"]
            await page2.goto(f"{base}/staff/inbound")
            await visits.check(page2, "inbound")
            assert "问补贴进度" in await page2.inner_text("main")
            await page2.goto(f"{base}/staff/contacts")
            await visits.check(page2, "contacts")
            await page2.click(f"form[action='/staff/contacts/{pending[0]}/approve'] button")
            await page2.wait_for_url(re.compile(r"done=approved"))
            await visits.check(page2, "contact-approved")
            assert await page2.locator(f"form[action='/staff/contacts/{pending[0]}/approve']").count() == 0
            assert await page2.locator(f"form[action='/staff/contacts/{pending[1]}/approve']").count() == 1
            for path, name in (("/staff/review", "review"), ("/staff/audit", "audit"), ("/staff/profiles", "profiles"),
                               ("/staff/policies/new", "policy-new"), ("/staff/policies/import", "policy-import"),
                               (f"/staff/policies/{world['policy']['id']}/edit", "policy-edit")):
                await page2.goto(base + path)
                await visits.check(page2, name)
            # a form with errors shows them next to their fields
            await page2.goto(f"{base}/staff/policies/new")
            await page2.fill("#f-id", "pj-browser-1")
            await page2.fill("#f-criteria", "{not json")
            await page2.click("button:has-text('保存')")
            assert await page2.locator("#e-criteria").count() == 1 and await page2.locator("#e-title").count() == 1
            await visits.check(page2, "policy-errors")
            # a pasted text becomes a review item with its suggestions
            await page2.goto(f"{base}/staff/review")
            await page2.fill("#r-title", "关于申报中小企业奖励资金的通知")
            await page2.fill("#r-text", "申报对象：在盘锦市注册的小型和微型企业。纳税信用等级不为C级或D级。最高奖励50万元。")
            await page2.click("button:has-text('提交')")
            await page2.wait_for_url(re.compile(r"/staff/review/[0-9a-f-]{36}$"))
            await visits.check(page2, "review-item")
            # a profile found by its full phone number, shown masked
            await page2.goto(f"{base}/staff/profiles")
            await page2.fill("#q", world["profiles"][0]["contact"]["phone"])
            await page2.click("button:has-text('查询')")
            assert world["profiles"][0]["id"] in await page2.content()
            assert world["profiles"][0]["contact"]["phone"] not in await page2.inner_text("main")
            await visits.check(page2, "profile-found")
            await ctx2.close()
            await ctx.close()
        finally:
            await browser.close()
    assert not dialogs
    assert visits.violations == {}, json.dumps(visits.violations, ensure_ascii=False, indent=1)
    # no secret in the access log or any log line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/staff/campaigns" in logged  # the access log was captured
    # (the callback secret is in the test server's own access log: `serve` logs route templates instead)
    secrets = [PASSWORD, "test-token", *staff.tokens.values(), csrf or "x" * 40]
    secrets += [d["contact"]["phone"] for d in world["profiles"] if d["contact"].get("phone")]
    for secret in secrets:
        assert secret not in logged
    assert "token=" not in logged and "password=" not in logged
