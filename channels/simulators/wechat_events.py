"""The WeChat simulator's pushed events: send results (TEMPLATESENDJOBFINISH, subscribe_msg_sent_event) and
follows/unfollows, signed with the callback token and, in safe mode, encrypted (WXBizMsgCrypt).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.signing import wechat_callback_signature
from channels.simulators._common import CallbackPusher, json_response, read_control
from channels.wechat_crypto import WechatCrypto, wechat_msg_signature

__all__ = ["WechatEvents"]


class WechatEvents:
    """Event pushing (mixed into ``WechatSimulator``, which holds the configuration and the users)."""

    config: Any
    clock: Callable[[], float]
    crypto: WechatCrypto | None
    pusher: CallbackPusher
    users: dict[str, str]

    def _push_event(self, openid: str, msgid: str, status: str) -> None:
        self._push(
            openid,
            f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID><Status><![CDATA[{status}]]></Status>",
        )

    def _push(self, openid: str, event_xml: str, *, delay: bool = True) -> str:
        """Push one event to the callback URL, signed (and encrypted in safe mode); returns its XML."""
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(5)
        xml = (
            f"<xml><ToUserName><![CDATA[{self.config.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{timestamp}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>{event_xml}</xml>"
        )
        query = {
            "signature": wechat_callback_signature(self.config.callback_token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        body = xml
        if self.crypto is not None:
            encrypt = self.crypto.encrypt(xml.encode())
            query["encrypt_type"] = "aes"
            query["msg_signature"] = wechat_msg_signature(self.config.callback_token, timestamp, nonce, encrypt)
            body = f"<xml><ToUserName><![CDATA[{self.config.account}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        sep = "&" if "?" in self.config.callback_url else "?"
        url = f"{self.config.callback_url}{sep}{urlencode(query)}"
        self.pusher.push(
            url,
            body.encode(),
            content_type="text/xml",
            is_ack=lambda st, answer: st == 200 and answer.strip() in (b"", b"success"),
            delay_s=self.config.event_delay_s if delay else 0.0,
        )
        return xml

    def follow_event(self, openid: str, event: str) -> str:
        """A user follows (``subscribe``) or unfollows (``unsubscribe``) the account: push the event. From the
        unfollow on, a template send to that user is answered 43004 "require subscribe", as WeChat does."""
        if event not in ("subscribe", "unsubscribe"):
            raise ValueError(f"event must be subscribe or unsubscribe, not {event!r}")
        self.users[openid] = "follower" if event == "subscribe" else "not_following"
        if not self.config.callback_url:
            return ""
        extra = "<EventKey><![CDATA[]]></EventKey>" if event == "subscribe" else ""
        return self._push(openid, f"<Event><![CDATA[{event}]]></Event>{extra}", delay=False)

    async def _control_event(self, request: web.Request) -> web.Response:
        data = await read_control(request, ("openid", "event"))
        if isinstance(data, web.Response):
            return data
        try:
            xml = self.follow_event(str(data["openid"]), str(data["event"]))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 422)
        return json_response(
            {"pushed_to": self.config.callback_url, "encrypted": self.crypto is not None, "xml": xml}
        )
