"""wechatpy against the WeChat simulator: tokens, template and subscription sends, errors, and the
events the simulator pushes (plain and safe mode), read with wechatpy's own parser and crypto.

wechatpy fetches its token from ``/cgi-bin/token`` at a hard-coded https address; pointing it at a
test environment means overriding ``API_BASE_URL`` and ``fetch_access_token``, as below.
"""

from __future__ import annotations

import pytest
import requests
from wechatpy import WeChatClient, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import APILimitedException, WeChatClientException

from channels.simulators import Faults, WechatSimConfig, WechatSimulator
from channels.wechat_crypto import WechatCrypto
from channels.wechat_events import WechatEventKind, open_wechat_push
from tests.channels.helpers import openid

APPID, SECRET = "wxsimappid0000001", "sim-app-secret"
TEMPLATE = "TPL-policy-notice-0000000000000000000000000"
SUBSCRIBE_TEMPLATE = "SUB-policy-notice-000000000000000000000000"
DATA = {"thing1": {"value": "专精特新奖励"}, "time2": {"value": "2024年6月30日"}, "thing3": {"value": "您是专精特新企业"},
        "thing4": {"value": "最高30万元"}}  # fmt: skip
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def client(url: str, secret: str = SECRET, timeout: float | None = None) -> WeChatClient:
    class SimClient(WeChatClient):
        API_BASE_URL = f"{url}/cgi-bin/"

        def fetch_access_token(self):  # type: ignore[no-untyped-def]
            return self._fetch_access_token(
                url=f"{url}/cgi-bin/token", params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
            )

    return SimClient(APPID, secret, timeout=timeout)


async def test_token_template_send_and_subscription_send(start_sim, in_thread) -> None:
    sim = await start_sim(WechatSimulator)
    c = client(sim.url)
    answer = await in_thread(c.message.send_template, openid(1), TEMPLATE, DATA, url="https://s.pj.gov.cn/Ab3x")
    assert answer["errcode"] == 0 and answer["msgid"]
    sub_data = {k: DATA[k] for k in ("thing1", "time2", "thing3")}
    sub = await in_thread(c.message.send_subscribe_message, openid(2), SUBSCRIBE_TEMPLATE, sub_data)
    assert sub == {"errcode": 0, "errmsg": "ok"}  # bizsend answers without a msgid, as the real API
    assert [(r.recipient, r.template) for r in sim.records] == [(openid(1), TEMPLATE), (openid(2), SUBSCRIBE_TEMPLATE)]
    assert sim.token_requests == 1


async def test_errors_become_wechat_client_exceptions(start_sim, in_thread) -> None:
    sim = await start_sim(
        WechatSimulator,
        WechatSimConfig(users={openid(3): "not_following", openid(4): "refused"}, subscribe_credits=1),
    )
    with pytest.raises(WeChatClientException) as err:
        await in_thread(client(sim.url, secret="wrong").message.send_template, openid(1), TEMPLATE, DATA)
    assert err.value.errcode == 40125
    c = client(sim.url)
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_template, openid(3), TEMPLATE, DATA)
    assert err.value.errcode == 43004
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_template, "not-an-openid", TEMPLATE, DATA)
    assert err.value.errcode == 40003
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_template, openid(1), TEMPLATE, {**DATA, "thing1": {"value": ""}})
    assert err.value.errcode == 47003 and "data.thing1.value" in err.value.errmsg
    sub_data = {k: DATA[k] for k in ("thing1", "time2", "thing3")}
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_subscribe_message, openid(4), SUBSCRIBE_TEMPLATE, sub_data)
    assert err.value.errcode == 43101
    await in_thread(c.message.send_subscribe_message, openid(5), SUBSCRIBE_TEMPLATE, sub_data)
    with pytest.raises(WeChatClientException) as err:  # the one-time subscription is spent
        await in_thread(c.message.send_subscribe_message, openid(5), SUBSCRIBE_TEMPLATE, sub_data)
    assert err.value.errcode == 43101


async def test_injected_faults(start_sim, in_thread) -> None:
    sim = await start_sim(WechatSimulator, faults=Faults(error_rates={"-1": 1.0}))
    c = client(sim.url, timeout=1)
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_template, openid(1), TEMPLATE, DATA)
    assert err.value.errcode == -1
    sim.faults = Faults(error_rates={"45009": 1.0})
    with pytest.raises(APILimitedException):
        await in_thread(c.message.send_template, openid(1), TEMPLATE, DATA)
    sim.faults = Faults(error_rates={"HTTP_502": 1.0})
    with pytest.raises(WeChatClientException) as err:
        await in_thread(c.message.send_template, openid(1), TEMPLATE, DATA)
    assert err.value.errcode is None and err.value.response.status_code == 502
    sim.faults = Faults(timeout_rate=1.0, hang_s=3.0)
    with pytest.raises(requests.Timeout):
        await in_thread(c.message.send_template, openid(1), TEMPLATE, DATA)
    assert [r.recipient for r in sim.records] == [openid(1)]


async def test_a_dropped_token_is_refetched_by_wechatpy_and_the_call_succeeds(start_sim, in_thread) -> None:
    sim = await start_sim(WechatSimulator, faults=Faults(error_rates={"42001": 1.0}))
    c = client(sim.url)
    for i in (1, 2, 3):
        assert (await in_thread(c.message.send_template, openid(i), TEMPLATE, DATA))["errcode"] == 0
    # send 1 used a fresh token; sends 2 and 3 each found theirs dropped, re-fetched once and succeeded
    assert sim.token_requests == 3 and len(sim.records) == 3


@pytest.mark.parametrize("aes", [False, True])
async def test_pushed_events_read_by_wechatpy_and_by_our_parser(start_sim, receiver, in_thread, aes: bool) -> None:
    config = WechatSimConfig(callback_url=receiver.url, event_delay_s=0, encoding_aes_key=AES_KEY if aes else "")
    sim = await start_sim(WechatSimulator, config)
    await in_thread(client(sim.url).message.send_template, openid(1), TEMPLATE, DATA)
    sim.follow_event(openid(1), "unsubscribe")
    sim.follow_event(openid(1), "subscribe")
    await receiver.wait_for(3)
    ours = WechatCrypto(config.callback_token, AES_KEY, APPID) if aes else None
    theirs = WeChatCrypto(config.callback_token, AES_KEY, APPID) if aes else None
    kinds = []
    for body, query in zip(receiver.bodies, receiver.queries, strict=True):
        event = open_wechat_push(query, body, token=config.callback_token, crypto=ours)
        kinds.append(event.kind)
        assert event.openid == openid(1)
        xml = theirs.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"]) if theirs else body
        message = parse_message(xml)
        assert message.source == openid(1) and message.type == "event"
        assert (query.get("encrypt_type") == "aes") is aes
        # the push URL carries signature material and the openid only, never the token or the key
        assert set(query) <= {"signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature"}
        assert config.callback_token not in str(query) and AES_KEY not in str(query)
    assert sorted(kinds) == sorted(
        [WechatEventKind.TEMPLATE_SEND_FINISHED, WechatEventKind.UNSUBSCRIBE, WechatEventKind.SUBSCRIBE]
    )


def test_our_encrypted_reply_is_read_by_wechatpy() -> None:
    ours = WechatCrypto("sim-callback-token", AES_KEY, APPID)
    envelope = ours.encrypt_message("<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[已退订]]></Content></xml>",
                                    nonce="461056294")  # fmt: skip
    fields = {line.split(">", 1)[0].lstrip("<"): line for line in envelope.splitlines()}
    assert set(fields) >= {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    # wechatpy checks msg_signature on the way in; hand it the envelope as if WeChat had pushed it
    import re

    encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    stamp = re.search(r"<TimeStamp>(\d+)</TimeStamp>", envelope).group(1)  # type: ignore[union-attr]
    inbound = f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    plain = WeChatCrypto("sim-callback-token", AES_KEY, APPID).decrypt_message(inbound, signature, stamp, "461056294")
    assert "已退订" in plain
