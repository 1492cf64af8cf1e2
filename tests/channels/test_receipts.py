"""Parsers of what providers push back: Aliyun SmsReport and the WeChat TEMPLATESENDJOBFINISH event."""

from __future__ import annotations

import json

import pytest

from channels import (
    ALIYUN_RECEIPT_ACK,
    Outcome,
    ProtocolError,
    parse_aliyun_sms_report,
    parse_wechat_event,
    verify_wechat_signature,
)
from channels.signing import wechat_callback_signature

# The protocol document's examples, copied.
SMS_REPORT = (
    '[{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00",'
    '"success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1",'
    '"biz_id":"12345********","out_id":"67890**"}]'
)
EVENT = b"""<xml>
  <ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
  <FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>
  <CreateTime>1395658920</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
  <MsgID>200163836</MsgID>
  <Status><![CDATA[success]]></Status>
</xml>"""


def test_sms_report_example() -> None:
    [r] = parse_aliyun_sms_report(SMS_REPORT.encode())
    assert (r.provider_message_id, r.recipient, r.delivery_id) == ("12345********", "1381111****", "67890**")
    assert r.delivered and r.outcome is Outcome.ACCEPTED and r.code == "DELIVERED"
    assert r.reported_at is not None and r.reported_at.isoformat() == "2017-01-01T00:00:00+08:00"
    assert r.key == ("aliyun_sms", "12345********", "1381111****")


def test_sms_report_failure_and_several_items() -> None:
    items = json.loads(SMS_REPORT) * 2
    items[1] = {**items[1], "success": False, "err_code": "MK:0001", "phone_number": "13800000000"}
    items.append({**items[0], "success": False, "err_code": "SOME:OTHER"})
    a, b, c = parse_aliyun_sms_report(json.dumps(items))
    assert a.delivered and not b.delivered and b.outcome is Outcome.UNREACHABLE
    assert c.outcome is Outcome.PERMANENT


@pytest.mark.parametrize("body", [b"not json", b'{"a":1}', b'[{"phone_number":"1"}]'])
def test_sms_report_rejects_malformed(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_aliyun_sms_report(body)


def test_receipt_ack_has_a_numeric_code() -> None:
    assert ALIYUN_RECEIPT_ACK["code"] == 0


def test_event_example() -> None:
    event = parse_wechat_event(EVENT)
    assert event is not None
    assert (event.provider_message_id, event.recipient, event.code) == ("200163836", "oia2TjuEGTNoeX76QEjQNrcURxG8", "success")
    assert event.delivered and event.reported_at is not None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("failed:user block", Outcome.UNREACHABLE), ("failed: system failed", Outcome.RETRYABLE)],
)
def test_event_failures(status: str, outcome: Outcome) -> None:
    event = parse_wechat_event(EVENT.replace(b"[success]", f"[{status}]".encode()))
    assert event is not None and not event.delivered and event.outcome is outcome


def test_other_events_are_ignored() -> None:
    assert parse_wechat_event(EVENT.replace(b"TEMPLATESENDJOBFINISH", b"subscribe")) is None


@pytest.mark.parametrize(
    "body",
    [b"<xml><unclosed></xml>", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>', b"<xml>" + b"a" * 70000 + b"</xml>"],
)
def test_event_rejects_malformed_or_dangerous_xml(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_wechat_event(body)


def test_callback_signature_check() -> None:
    sig = wechat_callback_signature("tok", "1395658920", "123456")
    assert verify_wechat_signature("tok", sig, "1395658920", "123456")
    assert not verify_wechat_signature("tok", sig, "1395658921", "123456")
    assert not verify_wechat_signature("tok", "", "1395658920", "123456")
