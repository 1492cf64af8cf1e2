"""WeChat pushes: the AES mode against published vectors, follow events over HTTP, subscription
notifications through the adapter, and the parser's refusals."""

from __future__ import annotations

import pytest

from channels import (
    Outcome,
    ProtocolError,
    Wechat,
    WechatConfig,
    WechatCrypto,
    WechatCryptoError,
    WechatEventKind,
    WechatTemplate,
    open_wechat_push,
    parse_wechat_push,
)
from channels.simulators import WechatSimConfig, WechatSimulator
from tests.channels.helpers import WECHAT_PARAMS, openid

# Published vectors (wechatpy's test suite, from WeChat's own sample): token, key and receiver id.
TOKEN, KEY, RECEIVER = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
    "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/T"
    "ywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5"
    "t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
PUSHED = f"<xml><ToUserName><![CDATA[{RECEIVER}]]></ToUserName>\n<Encrypt><![CDATA[{ENCRYPTED}]]></Encrypt>\n</xml>"
REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)


def crypto(**kw: object) -> WechatCrypto:
    return WechatCrypto(TOKEN, KEY, RECEIVER, clock=lambda: 1411525903.0, **kw)  # type: ignore[arg-type]


def test_published_decrypt_vector() -> None:
    plain = crypto().decrypt_message(PUSHED, msg_signature="74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
                                     timestamp="1411525903", nonce="461056294")  # fmt: skip
    event = parse_wechat_push(plain)
    assert (event.kind, event.text, event.openid) == (WechatEventKind.TEXT, "test", "messense")


def test_published_encrypt_vector() -> None:
    out = crypto().encrypt_message(REPLY, nonce="461056294", timestamp="1411525903", random16=b"1234567890123456")
    assert "<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk" in out
    assert "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>" in out


@pytest.mark.parametrize(
    ("change", "late_s", "match"),
    [
        ({"msg_signature": "0" * 40}, 0, "msg_signature"),
        ({"nonce": "1"}, 0, "msg_signature"),
        ({"timestamp": "1411525904"}, 0, "msg_signature"),
        ({}, 301, "away from now"),  # a genuine push replayed six minutes later
    ],
)
def test_decrypt_refuses_bad_signature_and_stale_time(change: dict[str, str], late_s: int, match: str) -> None:
    args = {"msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "timestamp": "1411525903", "nonce": "461056294"}
    args.update(change)
    late = WechatCrypto(TOKEN, KEY, RECEIVER, clock=lambda: 1411525903.0 + late_s)
    with pytest.raises(WechatCryptoError, match=match):
        late.decrypt_message(PUSHED, **args)


def test_another_accounts_message_and_a_wrong_key_are_refused() -> None:
    with pytest.raises(WechatCryptoError, match="another appid"):
        WechatCrypto(TOKEN, KEY, "wx0000000000000000").decrypt(ENCRYPTED)
    other_key = "A" * 43
    with pytest.raises(WechatCryptoError):
        WechatCrypto(TOKEN, other_key, RECEIVER).decrypt(ENCRYPTED)
    with pytest.raises(ValueError, match="43 characters"):
        WechatCrypto(TOKEN, "short", RECEIVER)


def test_round_trip_any_length() -> None:
    c = crypto()
    for n in (0, 1, 11, 12, 31, 32, 33, 500):
        assert c.decrypt(c.encrypt(("退" * n).encode())) == ("退" * n).encode()


@pytest.mark.parametrize("aes", [False, True])
async def test_unfollow_and_follow_over_http(start_sim, receiver, session, aes: bool) -> None:
    key = KEY if aes else ""
    sim = await start_sim(WechatSimulator, WechatSimConfig(callback_url=receiver.url, encoding_aes_key=key))
    for event in ("unsubscribe", "subscribe"):
        async with session.post(f"{sim.url}/_sim/event", json={"openid": openid(1), "event": event}) as resp:
            assert resp.status == 200 and (await resp.json())["encrypted"] is aes
    await receiver.wait_for(2)
    ours = WechatCrypto("sim-callback-token", KEY, "wxsimappid0000001") if aes else None
    events = [open_wechat_push(q, b, token="sim-callback-token", crypto=ours) for b, q in zip(receiver.bodies, receiver.queries, strict=True)]
    assert [(e.kind, e.openid) for e in events] == [
        (WechatEventKind.UNSUBSCRIBE, openid(1)), (WechatEventKind.SUBSCRIBE, openid(1)),
    ]  # fmt: skip
    with pytest.raises(ProtocolError):  # a forged or replayed push with a bad signature
        open_wechat_push({**receiver.queries[0], "signature": "0" * 40, "msg_signature": "0" * 40},
                         receiver.bodies[0], token="sim-callback-token", crypto=ours)  # fmt: skip
    if aes:
        with pytest.raises(ProtocolError, match="no EncodingAESKey"):
            open_wechat_push(receiver.queries[0], receiver.bodies[0], token="sim-callback-token")


async def test_unfollowed_user_is_unreachable_until_following_again(start_sim, session) -> None:
    sim = await start_sim(WechatSimulator)
    config = WechatConfig("wxsimappid0000001", "sim-app-secret",
                          {"policy_notice": WechatTemplate(next(iter(sim.config.templates)), tuple(WECHAT_PARAMS))},
                          base_url=sim.url)  # fmt: skip
    ch = Wechat(config, session)
    from tests.channels.helpers import wechat

    sim.follow_event(openid(1), "unsubscribe")
    [res] = await ch.send([wechat(1)])
    assert (res.outcome, res.code) == (Outcome.UNREACHABLE, "43004")  # WeChat's "require subscribe"
    sim.follow_event(openid(1), "subscribe")
    assert (await ch.send([wechat(2, recipient=openid(1))]))[0].outcome is Outcome.ACCEPTED


async def test_subscription_notifications_through_the_adapter(start_sim, receiver, session) -> None:
    sim = await start_sim(WechatSimulator, WechatSimConfig(callback_url=receiver.url, event_delay_s=0, subscribe_credits=1,
                                                           users={openid(3): "blocked"}))  # fmt: skip
    sub_id = next(iter(sim.config.subscribe_templates))
    config = WechatConfig("wxsimappid0000001", "sim-app-secret",
                          {"policy_notice": WechatTemplate(sub_id, ("thing1", "time2", "thing3"), kind="subscribe")},
                          base_url=sim.url)  # fmt: skip
    ch = Wechat(config, session)
    from channels import OutboundMessage

    params = {k: WECHAT_PARAMS[k] for k in ("thing1", "time2", "thing3")}
    msgs = [OutboundMessage(f"s-{i}", openid(i), "policy_notice", params, url="https://s.pj.gov.cn/Ab3x") for i in (1, 3)]
    results = await ch.send(msgs)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert results[0].provider_message_id == ""  # bizsend answers no msgid
    [again] = await ch.send([OutboundMessage("s-9", openid(1), "policy_notice", params)])
    assert (again.outcome, again.code) == (Outcome.UNREACHABLE, "43101")  # the one subscription is spent
    # no client_msg_id: a resend is never known safe, while a template message may go again for 600 s
    assert ch.resend_window_for("policy_notice") == 0.0
    assert ch.resend_window_for("policy_notice") == 0.0
    await receiver.wait_for(2)
    events = {e.openid: e for e in (parse_wechat_push(b) for b in receiver.bodies)}
    assert events[openid(1)].kind is WechatEventKind.SUBSCRIBE_MSG_SENT
    assert events[openid(1)].receipt is not None and events[openid(1)].receipt.delivered
    assert events[openid(3)].receipt is not None and events[openid(3)].receipt.outcome is Outcome.UNREACHABLE
    assert events[openid(1)].receipt.text == sub_id


def test_subscription_popup_and_dtd() -> None:
    body = (
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
        b"<CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        b"<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>"
        b"<List><TemplateId><![CDATA[A]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
        b"<PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[B]]></TemplateId>"
        b"<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
        b"</SubscribeMsgPopupEvent></xml>"
    )
    event = parse_wechat_push(body)
    assert event.kind is WechatEventKind.SUBSCRIBE_MSG_POPUP
    assert [(c.template_id, c.status) for c in event.subscriptions] == [("A", "accept"), ("B", "reject")]
    with pytest.raises(ProtocolError, match="DTD"):
        parse_wechat_push(b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>')
