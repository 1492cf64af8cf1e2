"""Provider callbacks: receipts, SMS replies and WeChat events, each authenticated before it is read.

=========================================  ===================================================================
route                                      what arrives, how it is authenticated
=========================================  ===================================================================
POST /callbacks/aliyun/{secret}/sms-report  Aliyun SmsReport (receipts). Unsigned by Aliyun: the secret path
POST /callbacks/aliyun/{secret}/sms-up      Aliyun SmsUp (replies)      segment (``callback_secret``, compared in
POST /callbacks/tencent/{secret}/sms-status Tencent status callback     constant time; a wrong one is a 404, as if
POST /callbacks/tencent/{secret}/sms-reply  Tencent reply callback      the URL did not exist) and the optional
                                                                        source allow-list (403)
GET/POST /callbacks/wechat                  WeChat server URL: every    ``signature`` (plain) or ``msg_signature``
                                            event (receipts, follows,   (safe mode, AES) with the configured token;
                                            unfollows, texts)           timestamp within ``callback_window_s``; a
                                                                        push applied before is acknowledged
                                                                        and not applied again
=========================================  ===================================================================

Every body is read only after the check, and only up to ``CALLBACK_MAX_BYTES``; a JSON push carries at
most ``CALLBACK_MAX_ITEMS`` items (the providers' own batch size): more is a 413 and nothing is applied.
A receipt changes only a row of its own provider and channel whose recipient hash matches
(``sending.receipts``); a reply or an event changes only the profiles with that phone or openid
(``sending.inbound``). Each push is applied in one transaction. A receipt that matches no delivery yet
is kept (bounded) and acknowledged; one that cannot be kept is not acknowledged (500), so the provider
pushes it again rather than it being dropped silently. The secret never appears in a log line: logs name
the route, not the path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from channels import (
    ALIYUN_RECEIPT_ACK,
    ALIYUN_SMS_UP_ACK,
    TENCENT_CALLBACK_ACK,
    WECHAT_PUSH_ACK,
    ProtocolError,
    Receipt,
    ReplayGuard,
    Reply,
    SourceAllowList,
    WechatCrypto,
    WechatEvent,
    open_wechat_push,
    parse_aliyun_sms_report,
    parse_aliyun_sms_up,
    parse_tencent_reply,
    parse_tencent_status_callback,
    secret_path_matches,
    verify_wechat_signature,
)
from channels.wechat_crypto import check_timestamp
from channels.wechat_events import WechatPushUnreadable
from policy_push.errors import NotAllowed, NotFound, PayloadTooLarge, RequestRefused
from policy_push.sending.inbound import InboundReport, apply_replies, apply_wechat_event
from policy_push.sending.providers import callback_secret, endpoints, wechat_callback_token
from policy_push.sending.receipts import ReceiptReport, apply_receipts
from policy_push.sending.rules import SendRules
from scheduler import SystemClock

from ..bodies import read_body
from ..keys import cipher_key, pipeline_key, replay_guard_key, session_factory_key, settings_key

__all__ = [
    "CALLBACK_MAX_BYTES",
    "CALLBACK_MAX_ITEMS",
    "CALLBACK_SCHEMAS",
    "aliyun_sms_report",
    "aliyun_sms_up",
    "tencent_sms_reply",
    "tencent_sms_status",
    "wechat_event",
    "wechat_verify",
]

log = logging.getLogger("policy_push.callbacks")

#: the largest callback body read: 100 reports are ~30 KiB; anything near this is not a provider's push
CALLBACK_MAX_BYTES = 256 * 1024
#: items per JSON push: Aliyun pushes at most 100 reports (or replies) per request, Tencent the same
CALLBACK_MAX_ITEMS = 100

_REPORT_ITEM = {
    "phone_number": {"type": "string"}, "send_time": {"type": "string"}, "report_time": {"type": "string"},
    "success": {"type": "boolean"}, "err_code": {"type": "string"}, "err_msg": {"type": "string"},
    "sms_size": {"type": "string"}, "biz_id": {"type": "string"}, "out_id": {"type": "string"},
}  # fmt: skip
#: OpenAPI schemas of the provider-defined bodies (not pydantic models: the providers define them)
CALLBACK_SCHEMAS = {
    "AliyunSmsReport": {
        "type": "array", "maxItems": CALLBACK_MAX_ITEMS,
        "description": "Aliyun SmsReport (HTTP batch push): one object per message.",
        "items": {"type": "object", "required": ["phone_number", "biz_id"], "properties": _REPORT_ITEM},
    },
    "AliyunSmsUp": {
        "type": "array", "maxItems": CALLBACK_MAX_ITEMS,
        "description": "Aliyun SmsUp (HTTP batch push): one object per up-message (reply).",
        "items": {
            "type": "object", "required": ["phone_number", "content"],
            "properties": {k: {"type": "string"} for k in
                           ("phone_number", "send_time", "content", "sign_name", "dest_code", "sequence_id")},
        },
    },
    "AliyunReceiptAck": {
        "type": "object",
        "description": 'The acknowledgement Aliyun expects: {"code": 0, "msg": "接收成功"}.',
        "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    },
    "TencentSmsStatus": {
        "type": "array", "maxItems": CALLBACK_MAX_ITEMS,
        "description": "Tencent SMS status callback: one report per message.",
        "items": {
            "type": "object", "required": ["sid", "report_status", "mobile"],
            "properties": {
                "user_receive_time": {"type": "string"}, "nationcode": {"type": "string"}, "mobile": {"type": "string"},
                "report_status": {"type": "string"}, "errmsg": {"type": "string"}, "description": {"type": "string"},
                "sid": {"type": "string"},
            },
        },
    },
    "TencentSmsReply": {
        "type": "object", "required": ["mobile", "text"],
        "description": "Tencent SMS reply callback: one up-message.",
        "properties": {
            "extend": {"type": "string"}, "mobile": {"type": "string"}, "nationcode": {"type": "string"},
            "sign": {"type": "string"}, "text": {"type": "string"}, "time": {"type": "integer"},
        },
    },
    "TencentCallbackAck": {
        "type": "object", "description": 'The acknowledgement Tencent expects: {"result": 0, "errmsg": "OK"}.',
        "properties": {"result": {"type": "integer"}, "errmsg": {"type": "string"}},
    },
    "WechatEventXml": {"type": "string", "contentMediaType": "text/xml", "description": "A WeChat push (XML)."},
    "PlainText": {"type": "string", "contentMediaType": "text/plain", "description": "Plain text."},
}  # fmt: skip


# ---- shared steps ------------------------------------------------------------------------------------


def _check_secret(request: web.Request) -> None:
    """The secret path segment, then the source allow-list; nothing of the body is read before."""
    settings = request.app[settings_key]
    if not secret_path_matches(callback_secret(settings), request.match_info.get("secret", "")):
        # the URL does not exist, as far as a prober can tell (and the path is never logged)
        raise NotFound("no such callback", loc=["path", "secret"])
    allowed = SourceAllowList.parse(settings.callback_allow_sources.split(","))
    if not allowed.allows(request.remote):
        log.warning("%s: a push from outside callback_allow_sources refused", request.match_info.route.name)
        raise NotAllowed("this source may not push to the callbacks", loc=["header", "source address"])


async def _body(request: web.Request) -> bytes:
    """The body, at most ``CALLBACK_MAX_BYTES`` (413 past it, before reading more than that)."""
    if request.content_length is not None and request.content_length > CALLBACK_MAX_BYTES:
        raise PayloadTooLarge(f"a callback body is at most {CALLBACK_MAX_BYTES} bytes", loc=["body"])
    # read_body, not request.content: body_middleware has usually read (and cached) the body already,
    # under the size and time limits, and the stream is then empty
    body = await read_body(request)
    if len(body) > CALLBACK_MAX_BYTES:
        raise PayloadTooLarge(f"a callback body is at most {CALLBACK_MAX_BYTES} bytes", loc=["body"])
    return body


def _parse(parse: Callable[[bytes], Any], body: bytes, what: str) -> Any:
    """A provider parser's result; every malformed body (deeply nested JSON included) is a 400."""
    if body.lstrip()[:1] == b"[":
        try:
            count = len(json.loads(body))
        except (ValueError, RecursionError):
            count = 0
        if count > CALLBACK_MAX_ITEMS:
            raise PayloadTooLarge(f"{what}: at most {CALLBACK_MAX_ITEMS} items per push, got {count}", loc=["body"])
    try:
        return parse(body)
    except ProtocolError as exc:
        raise RequestRefused(f"{what}: {exc}", loc=["body"]) from None
    except (RecursionError, ValueError, OverflowError, TypeError) as exc:
        raise RequestRefused(f"{what}: not a body this provider sends ({type(exc).__name__})", loc=["body"]) from None


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), status=status, content_type="application/json")


async def _receipts(request: web.Request, receipts: Sequence[Receipt]) -> ReceiptReport:
    app = request.app
    pipeline = app.get(pipeline_key)
    if pipeline is not None:  # the in-process worker: its clock (simulated in the demo) and rules
        return await pipeline.receipts(receipts)
    settings = app[settings_key]
    return await apply_receipts(
        app[session_factory_key], app[cipher_key], receipts, now=SystemClock().now(), rules=SendRules.from_settings(settings),
        early_cap=settings.early_receipt_cap,
    )  # fmt: skip


async def _replies(request: web.Request, replies: Sequence[Reply]) -> InboundReport:
    pipeline = request.app.get(pipeline_key)
    if pipeline is not None:
        return await pipeline.replies(replies)
    return await apply_replies(request.app[session_factory_key], request.app[cipher_key], replies, now=SystemClock().now())


# ---- Aliyun and Tencent (unsigned: secret path) --------------------------------------------------------


async def _take_receipts(
    request: web.Request, parse: Callable[[bytes], Sequence[Receipt]], what: str, ack: object,
    refusal: Callable[[str], object],
) -> web.Response:  # fmt: skip
    """A pushed batch of SMS receipts: applied, then acknowledged in the provider's own shape."""
    _check_secret(request)
    report = await _receipts(request, _parse(parse, await _body(request), what))
    if report.unmatched:
        # a report that could not be kept: not acknowledged, so it is at least not dropped silently
        return _json(refusal(f"{report.unmatched} report(s) could not be matched or kept"), 500)
    return _json(ack)


async def aliyun_sms_report(request: web.Request) -> web.Response:
    return await _take_receipts(
        request, parse_aliyun_sms_report, "SmsReport", ALIYUN_RECEIPT_ACK, lambda msg: {"code": 500, "msg": msg}
    )


async def aliyun_sms_up(request: web.Request) -> web.Response:
    _check_secret(request)
    replies = _parse(parse_aliyun_sms_up, await _body(request), "SmsUp")
    await _replies(request, replies)
    return _json(ALIYUN_SMS_UP_ACK)


async def tencent_sms_status(request: web.Request) -> web.Response:
    return await _take_receipts(
        request, parse_tencent_status_callback, "Tencent status callback", TENCENT_CALLBACK_ACK,
        lambda msg: {"result": 1, "errmsg": msg},
    )  # fmt: skip


async def tencent_sms_reply(request: web.Request) -> web.Response:
    _check_secret(request)
    reply = _parse(parse_tencent_reply, await _body(request), "Tencent reply callback")
    await _replies(request, [reply])
    return _json(TENCENT_CALLBACK_ACK)


# ---- WeChat (signed) ---------------------------------------------------------------------------------


def _wechat_crypto(request: web.Request) -> WechatCrypto | None:
    settings = request.app[settings_key]
    key = settings.wechat_encoding_aes_key.get_secret_value() if settings.wechat_encoding_aes_key else ""
    if not key:
        return None
    return WechatCrypto(
        wechat_callback_token(settings), key, endpoints(settings).wechat_app[0], max_age_s=settings.callback_window_s
    )


def _replay_key(request: web.Request) -> tuple[str, str, str]:
    q = request.query
    return (q.get("msg_signature") or q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))


def _guard(request: web.Request) -> ReplayGuard | None:
    return request.app.get(replay_guard_key)


async def wechat_verify(request: web.Request) -> web.Response:
    """WeChat's check of the server URL: echo ``echostr`` when the signature and timestamp are right."""
    token = wechat_callback_token(request.app[settings_key])
    q = request.query
    if not token or not verify_wechat_signature(token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")):
        raise NotAllowed("the WeChat signature does not match", loc=["query", "signature"])
    try:
        check_timestamp(q.get("timestamp", ""), time.time(), request.app[settings_key].callback_window_s)
    except ProtocolError as exc:
        raise NotAllowed(f"WeChat push refused: {exc}", loc=["query", "timestamp"]) from None
    return web.Response(text=q.get("echostr", ""))


async def wechat_event(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    token = wechat_callback_token(settings)
    if not token:
        raise NotAllowed("no WeChat callback token is configured: every push is refused", loc=["query", "signature"])
    body = await _body(request)
    try:
        event: WechatEvent = open_wechat_push(
            request.query, body, token=token, crypto=_wechat_crypto(request), max_age_s=settings.callback_window_s
        )
    except WechatPushUnreadable as exc:  # signed and fresh, but the XML is not an event WeChat sends
        raise RequestRefused(f"WeChat push: {exc}", loc=["body"]) from None
    except ProtocolError as exc:
        # a bad signature, an old or future timestamp, an encrypted push without a key
        raise NotAllowed(f"WeChat push refused: {exc}", loc=["query", "signature"]) from None
    except (ValueError, OverflowError, OSError) as exc:  # e.g. a CreateTime no clock can hold
        raise RequestRefused(f"WeChat push: not an event WeChat sends ({type(exc).__name__})", loc=["body"]) from None
    guard = _guard(request)
    key = _replay_key(request)
    if guard is not None and guard.seen(key):
        # authentic and applied before: WeChat pushes again when our answer was slow; a copy gains nothing
        log.info("a signed WeChat push received before: acknowledged, not applied again")
        return web.Response(text=WECHAT_PUSH_ACK)
    pipeline = request.app.get(pipeline_key)
    if event.receipt is not None:
        report = await _receipts(request, [event.receipt])
        if report.unmatched:  # no MsgID or openid to keep it by: refused rather than dropped silently
            return web.Response(status=500, text="receipt could not be matched or kept")
    elif pipeline is not None:
        await pipeline.wechat_event(event)
    else:
        await apply_wechat_event(request.app[session_factory_key], request.app[cipher_key], event, now=SystemClock().now())
    if guard is not None:
        guard.remember(key)
    return web.Response(text=WECHAT_PUSH_ACK)
