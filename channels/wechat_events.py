"""What a WeChat official account's server URL receives, parsed into one ``WechatEvent``.

The same URL gets every push: follow and unfollow events, the template send result
(TEMPLATESENDJOBFINISH), the subscription-notification events and users' own messages. In plain
mode the XML arrives as is, signed by ``signature`` (see ``verify_wechat_push``); in safe mode
(``encrypt_type=aes``) it arrives encrypted and is first opened with ``WechatCrypto``.

The parser only reports what happened. What to do is the application's: an ``unsubscribe`` makes
the openid unreachable; a later ``subscribe`` is reported as a re-follow and must not, by itself,
restore consent that the person withdrew.
"""

from __future__ import annotations

import enum
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from channels.base import Outcome
from channels.errors import ProtocolError
from channels.receipts import Receipt, unix_time, verify_wechat_signature
from channels.safe_xml import parse_xml
from channels.wechat_crypto import WechatCrypto, check_timestamp

__all__ = [
    "WECHAT_PUSH_ACK",
    "SubscriptionChange",
    "WechatEvent",
    "WechatEventKind",
    "open_wechat_push",
    "parse_wechat_push",
]

#: What WeChat wants back from the server URL when there is nothing to reply (or ``success``).
WECHAT_PUSH_ACK = "success"


class WechatEventKind(enum.StrEnum):
    SUBSCRIBE = "subscribe"  # followed (again): reachable, but consent is the application's call
    UNSUBSCRIBE = "unsubscribe"  # unfollowed: the openid can no longer be reached
    TEMPLATE_SEND_FINISHED = "TEMPLATESENDJOBFINISH"  # the result of one template message
    SUBSCRIBE_MSG_SENT = "subscribe_msg_sent_event"  # the result of one subscription notification
    SUBSCRIBE_MSG_POPUP = "subscribe_msg_popup_event"  # accepted / rejected templates in a pop-up
    SUBSCRIBE_MSG_CHANGE = "subscribe_msg_change_event"  # the user turned templates off later
    TEXT = "text"  # the user wrote to the account (may say 退订)
    OTHER = "other"  # any other message or event: acknowledge and ignore


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """One template in a subscription pop-up or change event: ``accept`` or ``reject``."""

    template_id: str
    status: str


@dataclass(frozen=True, slots=True)
class WechatEvent:
    """One push to the account's server URL.

    ``receipt`` is set for the two send-result events; ``text`` for a user's text message;
    ``subscriptions`` for the subscription pop-up and change events; ``event`` is the raw
    ``Event`` (or ``MsgType``) value, for logging.
    """

    kind: WechatEventKind
    openid: str
    account: str
    created_at: datetime | None
    event: str
    receipt: Receipt | None = None
    text: str = ""
    subscriptions: tuple[SubscriptionChange, ...] = ()


_TEMPLATE_STATUS: Mapping[str, Outcome] = {
    "success": Outcome.ACCEPTED,
    "failed:user block": Outcome.UNREACHABLE,
    "failed: system failed": Outcome.RETRYABLE,
}
# subscribe_msg_sent_event ErrorCode: 0 delivered; 20001 system failure; 20002 the user refused
# (turned the notification off); 20003 the user is not reachable by this account. [R: codes recalled]
_SUBSCRIBE_SENT_CODES: Mapping[str, Outcome] = {
    "0": Outcome.ACCEPTED,
    "20001": Outcome.RETRYABLE,
    "20002": Outcome.UNREACHABLE,
    "20003": Outcome.UNREACHABLE,
}


def _text(el: ET.Element, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip() if child is not None else ""


def parse_wechat_push(body: bytes) -> WechatEvent:
    """Parse a plain (already decrypted) push; refuses a DTD, entities and bodies over 64 KiB."""
    root = parse_xml(body, "WeChat push")
    openid, account = _text(root, "FromUserName"), _text(root, "ToUserName")
    created = _text(root, "CreateTime")
    created_at = unix_time(created, "CreateTime")
    msg_type = _text(root, "MsgType")
    if msg_type == "text":
        return WechatEvent(WechatEventKind.TEXT, openid, account, created_at, "text", text=_text(root, "Content"))
    if msg_type != "event":
        return WechatEvent(WechatEventKind.OTHER, openid, account, created_at, msg_type)
    event = _text(root, "Event")
    base = {"openid": openid, "account": account, "created_at": created_at, "event": event}
    if event == "subscribe":
        return WechatEvent(WechatEventKind.SUBSCRIBE, **base)
    if event == "unsubscribe":
        return WechatEvent(WechatEventKind.UNSUBSCRIBE, **base)
    if event == "TEMPLATESENDJOBFINISH":
        status = _text(root, "Status")
        outcome = _TEMPLATE_STATUS.get(status, Outcome.PERMANENT)
        receipt = Receipt(
            provider="wechat", provider_message_id=_text(root, "MsgID"), recipient=openid,
            delivered=outcome is Outcome.ACCEPTED, outcome=outcome, code=status, reported_at=created_at,
        )  # fmt: skip
        return WechatEvent(WechatEventKind.TEMPLATE_SEND_FINISHED, receipt=receipt, **base)
    if event == "subscribe_msg_sent_event":
        item = root.find("SubscribeMsgSentEvent/List")
        if item is None:
            raise ProtocolError("subscribe_msg_sent_event without SubscribeMsgSentEvent/List")
        code = _text(item, "ErrorCode")
        outcome = _SUBSCRIBE_SENT_CODES.get(code, Outcome.PERMANENT)
        receipt = Receipt(
            provider="wechat", provider_message_id=_text(item, "MsgID"), recipient=openid,
            delivered=outcome is Outcome.ACCEPTED, outcome=outcome, code=code or _text(item, "ErrorStatus"),
            text=_text(item, "TemplateId"), reported_at=created_at,
        )  # fmt: skip
        return WechatEvent(WechatEventKind.SUBSCRIBE_MSG_SENT, receipt=receipt, **base)
    if event in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        container = "SubscribeMsgPopupEvent" if event == "subscribe_msg_popup_event" else "SubscribeMsgChangeEvent"
        changes = tuple(
            SubscriptionChange(_text(item, "TemplateId"), _text(item, "SubscribeStatusString"))
            for item in root.findall(f"{container}/List")
        )
        kind = WechatEventKind(event)
        return WechatEvent(kind, subscriptions=changes, **base)
    return WechatEvent(WechatEventKind.OTHER, **base)


def open_wechat_push(
    query: Mapping[str, str],
    body: bytes,
    *,
    token: str,
    crypto: WechatCrypto | None = None,
    max_age_s: float = 300.0,
    clock: Callable[[], float] | None = None,
) -> WechatEvent:
    """Authenticate a push to the server URL and parse it, in plain or safe (AES) mode.

    ``query`` is the request's query string. With ``encrypt_type=aes`` the body is opened with
    ``crypto`` after checking ``msg_signature``; otherwise ``signature`` is checked. Either way the
    ``timestamp`` must be within ``max_age_s`` of now. Raises ``ProtocolError`` (a
    ``WechatCryptoError`` for the crypto checks) for anything that does not pass: answer 403.
    """
    now = (clock or time.time)()
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if query.get("encrypt_type") == "aes":
        if crypto is None:
            raise ProtocolError("an encrypted push arrived but no EncodingAESKey is configured")
        plain = crypto.decrypt_message(body, msg_signature=query.get("msg_signature", ""), timestamp=timestamp, nonce=nonce)
        return parse_wechat_push(plain)
    if crypto is not None and query.get("encrypt_type", "raw") != "raw":
        raise ProtocolError(f"unknown encrypt_type {query.get('encrypt_type')!r}")
    if not verify_wechat_signature(token, query.get("signature", ""), timestamp, nonce):
        raise ProtocolError("signature does not match")
    check_timestamp(timestamp, now, max_age_s)
    return parse_wechat_push(body)
