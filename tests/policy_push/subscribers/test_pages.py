"""The /me pages in a real HTTP exchange: sign in by the code of the simulator's SMS, a cookie session
(``pp_sub``, encrypted, HttpOnly), forms that need their CSRF token, mobile layout and labels."""

from __future__ import annotations

import re

from channels.simulators import SimulatorSet

from .conftest import Client, last_code
from .test_journey import POLICY, STAFF_A

PHONE = "13800138000"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


async def _signed_in(client: Client, sims: SimulatorSet) -> None:
    page = await client.post("/me/code", data={"phone": PHONE})
    assert page.status == 200
    html = await page.text()
    assert 'autocomplete="one-time-code"' in html and "138****8000" in html
    resp = await client.post("/me/sign-in", data={"phone": PHONE, "code": last_code(sims, PHONE)}, allow_redirects=False)
    assert resp.status == 303
    cookie = resp.cookies["pp_sub"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert PHONE not in cookie.value  # sealed, not readable


async def test_sign_in_register_and_see_policies_in_pages(client: Client, sims: SimulatorSet) -> None:
    assert (await client.put(f"/api/v1/policies/{POLICY['id']}", json=POLICY, headers=STAFF_A)).status == 201
    first = await client.get("/me")
    html = await first.text()
    assert first.status == 200 and 'name="viewport"' in html and 'for="phone"' in html and 'lang="zh-CN"' in html
    await _signed_in(client, sims)
    home = await (await client.get("/me")).text()
    assert "填写资料" in home
    form = await (await client.get("/me/profile?kind=resident")).text()
    for name in ("name", "tags", "birth_date"):
        assert f'<label for="field-{name}">' in form and f'id="field-{name}"' in form
    saved = await client.post("/me/profile", data={"csrf": _csrf(form), "kind": "resident", "name": "周明", "tags": "退役军人、高校毕业生"},
                              allow_redirects=False)  # fmt: skip
    assert saved.status == 303, await saved.text()
    home = await (await client.get("/me?done=profile")).text()
    assert "盘锦市退役军人创业补贴" in home and "资料已保存" in home


async def test_forms_need_the_pages_csrf_token(client: Client, sims: SimulatorSet) -> None:
    await _signed_in(client, sims)
    resp = await client.post("/me/profile", data={"csrf": "forged", "kind": "resident", "name": "x"})
    assert resp.status == 422
    resp = await client.post("/me/data/delete", data={"confirm": "yes"})
    assert resp.status == 422
    assert (await client.get("/me/data")).status == 200  # still signed in, nothing erased


async def test_consent_preferences_export_and_erase_from_the_pages(client: Client, sims: SimulatorSet) -> None:
    await _signed_in(client, sims)
    form = await (await client.get("/me/profile?kind=resident")).text()
    await client.post("/me/profile", data={"csrf": _csrf(form), "kind": "resident", "name": "周明"})
    prefs = await (await client.get("/me/preferences")).text()
    assert "同意接收推送" in prefs
    done = await (await client.post("/me/consent", data={"csrf": _csrf(prefs), "given": "1"})).text()
    assert "已开启推送" in done and "不再接收推送" in done
    done = await (await client.post("/me/preferences", data={"csrf": _csrf(done), "channel_0": "sms", "categories": "养老服务、就业创业",
                                                            "weekly_max": "2"})).text()  # fmt: skip
    assert "设置已保存" in done and 'value="2"' in done
    export = await client.get("/me/data/export.json")
    data = await export.json()
    assert data["account"]["phone"] == PHONE
    assert data["profiles"][0]["preferences"] == {"channels": ["sms"], "categories": ["养老服务", "就业创业"], "weekly_max": 2,
                                                   "consent": True}  # fmt: skip
    assert [c["channel"] for c in data["consents"]] == ["web"]
    page = await (await client.get("/me/data")).text()
    gone = await client.post("/me/data/delete", data={"csrf": _csrf(page), "confirm": "yes"})
    assert gone.status == 200 and "账号已注销" in await gone.text()
    assert 'for="phone"' in await (await client.get("/me")).text()  # signed out


async def test_display_modes_and_plain_errors(client: Client) -> None:
    big = await client.get("/me?big=1&contrast=1")
    html = await big.text()
    assert '<body class="big contrast">' in html
    assert "大字模式" not in html and "标准字号" in html
    again = await (await client.get("/me")).text()
    assert '<body class="big contrast">' in again  # remembered
    bad = await client.post("/me/code", data={"phone": "123"})
    assert bad.status == 422 and 'role="alert"' in await bad.text()
