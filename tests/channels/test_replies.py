"""SMS replies: the opt-out rule, and the Aliyun SmsUp / Tencent reply pushes the simulators send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import ALIYUN_SMS_UP_ACK, OPT_OUT_WORDS, ProtocolError, ReplyKind, classify_reply
from channels.replies import parse_aliyun_sms_up, parse_tencent_reply
from channels.simulators import AliyunSimConfig, AliyunSimulator, TencentSimConfig, TencentSimulator


@pytest.mark.parametrize(
    "text",
    ["TD", "td", "Td", " TD ", "ＴＤ", "ｔｄ", "T", "t", "N", "ｎ", "R", "r", "退订", "退订！", "退订。", "【退订】",
     " 取 消 ", "取消", "TD.", "“TD”", "T D", "\tR\n", "退订!!!"],
)  # fmt: skip
def test_opt_out_replies(text: str) -> None:
    assert classify_reply(text) is ReplyKind.OPT_OUT


@pytest.mark.parametrize(
    "text", ["不要退订", "TDD", "谢谢", "", "   ", "退订吧", "请问怎么申报", "TD 谢谢", "NO", "RT", "123", "退 订 了"]
)
def test_other_replies_are_messages_for_staff(text: str) -> None:
    assert classify_reply(text) is ReplyKind.MESSAGE


_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "TDNRtdnr"}
_AROUND = st.text(alphabet=" \t\u3000!！,，.。?？、~～()（）【】[]「」\"'“”", max_size=4)


@given(
    word=st.sampled_from(sorted(OPT_OUT_WORDS)),
    before=_AROUND,
    after=_AROUND,
    lower=st.booleans(),
    wide=st.booleans(),
)
def test_any_width_case_and_surrounding_punctuation(word: str, before: str, after: str, lower: bool, wide: bool) -> None:
    core = word.lower() if lower else word
    if wide:
        core = "".join(_FULL_WIDTH.get(c, c) for c in core)
    assert classify_reply(before + core + after) is ReplyKind.OPT_OUT


async def test_aliyun_sms_up_pushed_by_the_simulator(start_sim, receiver, session) -> None:
    sim = await start_sim(AliyunSimulator, AliyunSimConfig(reply_callback_url=receiver.url, time_factor=0.001))
    async with session.post(f"{sim.url}/_sim/reply", json={"phone": "+8613800000001", "text": "ＴＤ"}) as resp:
        assert resp.status == 200
    async with session.post(f"{sim.url}/_sim/reply", json={"phone": "13800000002", "text": "请问怎么申报？"}) as resp:
        assert resp.status == 200
    await receiver.wait_for(2)
    replies = [r for body in receiver.bodies for r in parse_aliyun_sms_up(body)]
    assert [(r.phone, r.kind, r.sign_name) for r in replies] == [
        ("13800000001", ReplyKind.OPT_OUT, "盘锦政务"), ("13800000002", ReplyKind.MESSAGE, "盘锦政务"),
    ]  # fmt: skip
    assert replies[0].extend_code == "1069000000" and replies[0].received_at is not None
    assert replies[0].key != replies[1].key
    # the simulator accepted our acknowledgement: no retries
    assert json.loads(receiver.answer_body) == ALIYUN_SMS_UP_ACK
    await sim.pusher.drain()
    assert [a[1] for a in sim.pusher.attempts] == [1, 1]


async def test_aliyun_sms_up_is_pushed_again_until_acknowledged(start_sim, receiver) -> None:
    receiver.fail_first = 2
    sim = await start_sim(AliyunSimulator, AliyunSimConfig(reply_callback_url=receiver.url, time_factor=0.0001))
    sim.reply("13800000001", "退订")
    await receiver.wait_for(1)
    await sim.pusher.drain()
    assert [(a[1], a[2]) for a in sim.pusher.attempts] == [(1, 500), (2, 500), (3, 200)]


async def test_tencent_reply_pushed_by_the_simulator(start_sim, receiver, session) -> None:
    receiver.answer_body = b'{"result": 0, "errmsg": "OK"}'
    sim = await start_sim(TencentSimulator, TencentSimConfig(reply_callback_url=receiver.url))
    async with session.post(f"{sim.url}/_sim/reply", json={"phone": "13800000003", "text": "取消"}) as resp:
        assert resp.status == 200
    await receiver.wait_for(1)
    reply = parse_tencent_reply(receiver.bodies[0])
    assert (reply.provider, reply.phone, reply.text, reply.kind) == ("tencent_sms", "13800000003", "取消", ReplyKind.OPT_OUT)
    assert reply.received_at is not None and reply.sign_name == "盘锦政务"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not JSON"),
        (b'{"phone_number": "13800000001"}', "JSON array"),
        (b'[{"phone_number": "12345", "content": "TD"}]', "item 0: not a mainland"),
        (b'[{"phone_number": "13800000001"}]', "item 0 lacks"),
    ],
)
def test_bad_sms_up_bodies_are_refused(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_aliyun_sms_up(body)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[]", "JSON object"),
        (b'{"mobile": "13800000001", "nationcode": "852", "text": "TD"}', "outside the mainland"),
        (b'{"mobile": "138", "nationcode": "86", "text": "TD"}', "not a mainland"),
    ],
)
def test_bad_tencent_replies_are_refused(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_tencent_reply(body)
