"""Provider receipt endpoints: Aliyun SmsReport pushes and WeChat template events.

Each push is applied in one transaction (``sending.receipts``). A receipt that matches no delivery
yet (it outran our own record of the send) is stored in that transaction as an early receipt and
acknowledged: relying on the provider's re-push would lose it, as providers give up after a few
(WeChat: three, within seconds) and WeChat cannot be asked later. Only a receipt that could not be
kept (no message id to match it by) is refused with 500. JPush pushes no receipts (its delivery
statistics are pulled), so it has no endpoint here.

WeChat signs every request to the account's server URL with ``signature`` = sha1(sorted(token,
timestamp, nonce)); an unsigned or wrongly signed request gets 403 and changes nothing. The GET
with ``echostr`` is WeChat's check of the URL when it is configured. Aliyun's SmsReport carries no
signature: put this URL where only Aliyun can reach it (or behind the gateway's IP allow-list).
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from channels import (
    ALIYUN_RECEIPT_ACK,
    ProtocolError,
    Receipt,
    parse_aliyun_sms_report,
    parse_wechat_event,
    verify_wechat_signature,
)
from policy_push.sending.providers import wechat_callback_token
from policy_push.sending.receipts import ReceiptReport, apply_receipts
from policy_push.sending.rules import SendRules
from scheduler import SystemClock

from ..keys import cipher_key, pipeline_key, session_factory_key, settings_key

__all__ = ["CALLBACK_SCHEMAS", "aliyun_sms_report", "wechat_event", "wechat_verify"]

log = logging.getLogger("policy_push.callbacks")

#: OpenAPI schemas of the provider-defined bodies (not pydantic models: the providers define them)
CALLBACK_SCHEMAS = {
    "AliyunSmsReport": {
        "type": "array",
        "maxItems": 100,
        "description": "Aliyun SmsReport (HTTP batch push): one object per message.",
        "items": {
            "type": "object",
            "required": ["phone_number", "biz_id"],
            "properties": {
                "phone_number": {"type": "string"}, "send_time": {"type": "string"}, "report_time": {"type": "string"},
                "success": {"type": "boolean"}, "err_code": {"type": "string"}, "err_msg": {"type": "string"},
                "sms_size": {"type": "string"}, "biz_id": {"type": "string"}, "out_id": {"type": "string"},
            },
        },
    },
    "AliyunReceiptAck": {
        "type": "object",
        "description": 'The acknowledgement Aliyun expects: {"code": 0, "msg": "接收成功"}.',
        "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    },
    "WechatEventXml": {"type": "string", "contentMediaType": "text/xml", "description": "A WeChat event (XML)."},
    "PlainText": {"type": "string", "contentMediaType": "text/plain", "description": "Plain text."},
}


async def _apply(request: web.Request, receipts: list[Receipt]) -> ReceiptReport:
    app = request.app
    pipeline = app.get(pipeline_key)
    if pipeline is not None:  # the in-process worker: its clock (simulated in the demo) and rules
        return await pipeline.receipts(receipts)
    rules = SendRules.from_settings(app[settings_key])
    return await apply_receipts(app[session_factory_key], app[cipher_key], receipts, now=SystemClock().now(), rules=rules)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), status=status, content_type="application/json")


async def aliyun_sms_report(request: web.Request) -> web.Response:
    try:
        receipts = parse_aliyun_sms_report(await request.read())
    except ProtocolError as exc:
        return _json({"code": 400, "msg": str(exc)}, 400)
    report = await _apply(request, receipts)
    if report.unmatched:
        # a report that could not be kept: not acknowledged, so it is at least not dropped silently
        return _json({"code": 500, "msg": f"{report.unmatched} report(s) could not be matched or kept"}, 500)
    return _json(ALIYUN_RECEIPT_ACK)


def _signed(request: web.Request) -> bool:
    q = request.query
    token = wechat_callback_token(request.app[settings_key])
    return verify_wechat_signature(token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))


async def wechat_verify(request: web.Request) -> web.Response:
    if not _signed(request):
        return web.Response(status=403, text="bad signature")
    return web.Response(text=request.query.get("echostr", ""))


async def wechat_event(request: web.Request) -> web.Response:
    if not _signed(request):
        return web.Response(status=403, text="bad signature")
    try:
        receipt = parse_wechat_event(await request.read())
    except ProtocolError as exc:
        return web.Response(status=400, text=str(exc))
    if receipt is None:  # another event or message type: acknowledged, nothing to do
        return web.Response(text="success")
    report = await _apply(request, [receipt])
    if report.unmatched:  # no MsgID to keep it by: refused rather than dropped silently
        return web.Response(status=500, text="receipt could not be matched or kept")
    return web.Response(text="success")
