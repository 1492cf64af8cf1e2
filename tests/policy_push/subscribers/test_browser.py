"""The /me pages in a real browser (Debian's chromium driven by Playwright) at 390 px: a resident goes
from sign-up to policies, settings and data, and axe-core (axe-playwright-python) finds no WCAG 2.1
A/AA violation on any page, in the standard, large-text and high-contrast modes; nothing scrolls
sideways. The code is read from the SMS the simulator received."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, async_playwright

from channels.simulators import SimulatorSet

from .conftest import Client, last_code
from .test_journey import POLICY, STAFF_A

PHONE = "13800138000"
_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _chromium() -> str:
    path = os.environ.get("POLICY_PUSH_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium: install Debian's (apt-get install chromium) or set POLICY_PUSH_TEST_CHROMIUM", pytrace=False)
    return path


async def _check(page: Page, axe: Axe, where: str) -> None:
    result = await axe.run(page, options={"runOnly": {"type": "tag", "values": _TAGS}})
    found = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result.response["violations"]]
    assert found == [], f"{where}: {found}"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{where} scrolls sideways at 390 px ({width} px)"


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_pages_at_390px_have_no_axe_violations(client: Client, sims: SimulatorSet, db_kind: str) -> None:
    assert (await client.put(f"/api/v1/policies/{POLICY['id']}", json=POLICY, headers=STAFF_A)).status == 201
    base = str(client.make_url("")).rstrip("/")
    axe = Axe()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
            seen: list[str] = []

            async def visit(path: str, **_: Any) -> None:
                await page.goto(base + path)
                await _check(page, axe, path)
                seen.append(path)

            await visit("/me")
            await page.get_by_label("手机号").fill(PHONE)
            await page.get_by_role("button", name="获取验证码").click()
            await _check(page, axe, "code entry")
            await page.get_by_label("短信验证码（6 位数字）").fill(last_code(sims, PHONE))
            await page.get_by_role("button", name="登录").click()
            await _check(page, axe, "home, no profile yet")
            await visit("/me/profile")
            await visit("/me/profile?kind=resident")
            await page.get_by_label("姓名 *").fill("周明")
            await page.get_by_label("身份情况").fill("退役军人")
            await page.get_by_role("button", name="保存").click()
            assert "盘锦市退役军人创业补贴" in await page.content()
            await _check(page, axe, "home with policies")
            await visit("/me/preferences")
            await page.get_by_role("button", name="同意接收推送").click()
            await _check(page, axe, "consent given")
            await visit("/me/data")
            await visit("/me?big=1")
            await visit("/me?contrast=1")
            await visit("/me/preferences")
            # every control is reachable by keyboard: tabbing lands on the skip link first
            await page.goto(base + "/me")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "跳到正文"
            assert len(seen) >= 7
            # the check can fail: a page without a language or an image text is caught
            await page.set_content("<html><head><title>x</title></head><body><img src='x.png'></body></html>")
            with pytest.raises(AssertionError, match="image-alt"):
                await _check(page, axe, "a broken page")
        finally:
            await browser.close()
