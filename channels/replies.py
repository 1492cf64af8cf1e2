"""SMS replies (up-messages) from the providers, and the one rule that decides what a reply means.

* Aliyun SmsUp, HTTP batch push: a JSON array of ``phone_number``, ``send_time``, ``content``,
  ``sign_name``, ``dest_code``, ``sequence_id``; answer ``ALIYUN_SMS_UP_ACK`` with HTTP 200 or it
  is pushed again. Unsigned: the application protects the URL (see ``channels.callback_auth``).
* Tencent reply callback: one JSON object ``extend``, ``mobile``, ``nationcode``, ``sign``,
  ``text``, ``time``; answer ``TENCENT_CALLBACK_ACK``. Also unsigned. The same replies can be
  pulled with ``TencentSms.pull_replies``.

``classify_reply`` is the only place that decides whether a text is an opt-out: TD, T, N, R, 退订
or 取消, in either width and any case, alone apart from spaces and punctuation. Anything else is a
reply for staff to read; a person who writes "不要退订" has not opted out.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from channels.errors import ProtocolError
from channels.json_body import load_json
from channels.rate_limit import CHINA_TZ

__all__ = [
    "ALIYUN_SMS_UP_ACK",
    "OPT_OUT_WORDS",
    "TENCENT_CALLBACK_ACK",
    "Reply",
    "ReplyKind",
    "classify_reply",
    "parse_aliyun_sms_up",
    "parse_tencent_reply",
]

#: What Aliyun expects back for an SmsUp push (the same shape as for SmsReport).
ALIYUN_SMS_UP_ACK = {"code": 0, "msg": "接收成功"}
#: What Tencent expects back for a status or reply callback.
TENCENT_CALLBACK_ACK = {"result": 0, "errmsg": "OK"}
#: Replies that mean "stop sending me these", compared after normalising (see ``classify_reply``).
OPT_OUT_WORDS = frozenset({"TD", "T", "N", "R", "退订", "取消"})
_MAX_BODY = 256 * 1024
# Everything that may surround the word: whitespace and punctuation of both widths (after NFKC the
# full-width forms are ASCII), plus the CJK punctuation NFKC leaves alone.
_AROUND = re.compile(r"[\s\W_]+", re.UNICODE)


class ReplyKind(enum.StrEnum):
    OPT_OUT = "opt_out"  # stop SMS to every profile with this phone
    MESSAGE = "message"  # anything else: store it for staff


@dataclass(frozen=True, slots=True)
class Reply:
    """One up-message: who wrote (an 11-digit mainland number), what, when, through which sign."""

    provider: str
    phone: str
    text: str
    kind: ReplyKind
    received_at: datetime | None
    sign_name: str = ""
    extend_code: str = ""
    #: the provider's id of this up-message, for deduplicating a repeated push ("" if it has none)
    provider_id: str = ""

    @classmethod
    def read(cls, provider: str, phone: str, text: str, received_at: datetime | None, **where: str) -> Reply:
        """An up-message whose kind is read from its text (``classify_reply``); ``where``: sign_name,
        extend_code, provider_id."""
        return cls(provider, phone, text, classify_reply(text), received_at, **where)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Deduplication key: providers push again when our answer was lost."""
        stamp = self.received_at.isoformat() if self.received_at else ""
        return (self.provider, self.phone, self.provider_id or stamp, self.text)


def classify_reply(text: str) -> ReplyKind:
    """OPT_OUT when the whole reply, ignoring width, case, spaces and punctuation, is an opt-out word."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    core = _AROUND.sub("", folded)
    return ReplyKind.OPT_OUT if core in OPT_OUT_WORDS else ReplyKind.MESSAGE


_MAINLAND = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")


def _mainland(phone: object, where: str) -> str:
    m = _MAINLAND.match(str(phone or "").strip())
    if not m:
        raise ProtocolError(f"{where}: not a mainland mobile number")
    return m.group(1)


def parse_aliyun_sms_up(body: bytes | str) -> list[Reply]:
    """Parse an Aliyun SmsUp push (a JSON array); raises ``ProtocolError`` naming the bad item."""
    items = load_json(body, "SmsUp", list, max_bytes=_MAX_BODY)
    replies = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "content" not in item:
            raise ProtocolError(f"SmsUp item {i} lacks phone_number or content")
        text = str(item["content"] or "")
        sent = item.get("send_time")
        try:
            at = datetime.strptime(str(sent), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ) if sent else None
        except ValueError:
            at = None
        replies.append(
            Reply.read(
                "aliyun_sms", _mainland(item.get("phone_number"), f"SmsUp item {i}"), text, at,
                sign_name=str(item.get("sign_name") or ""), extend_code=str(item.get("dest_code") or ""),
                provider_id=str(item.get("sequence_id") or ""),
            )
        )  # fmt: skip
    return replies


def parse_tencent_reply(body: bytes | str) -> Reply:
    """Parse one Tencent reply callback (a JSON object)."""
    item = load_json(body, "Tencent reply", max_bytes=_MAX_BODY)
    if not isinstance(item, dict) or "text" not in item:
        raise ProtocolError("Tencent reply must be a JSON object with mobile and text")
    if str(item.get("nationcode", "86")) != "86":
        raise ProtocolError("Tencent reply from outside the mainland (nationcode is not 86)")
    text = str(item["text"] or "")
    stamp = item.get("time")
    at = datetime.fromtimestamp(int(stamp), CHINA_TZ) if isinstance(stamp, int | str) and str(stamp).isdigit() else None
    return Reply.read(
        "tencent_sms", _mainland(item.get("mobile"), "Tencent reply"), text, at,
        sign_name=str(item.get("sign") or ""), extend_code=str(item.get("extend") or ""),
    )  # fmt: skip
