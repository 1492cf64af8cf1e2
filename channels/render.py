"""Turning a policy notification into each channel's message, with the providers' length rules.

SMS length is counted the way Chinese providers bill it: every character (Chinese, letter, digit,
punctuation) counts 1, and the signature with its 【】 is part of the text. Up to 70 characters is
one message; longer ones go out in 67-character segments. Aliyun variables must be 1-35 characters
and may not carry a URL, so a short link is split: the approved template holds the link's base and
the variable only its code.

No message may carry an ID number: rendering refuses any text that contains one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from channels.base import OutboundMessage, contains_id_number
from channels.errors import InvalidMessageError

__all__ = [
    "AppLayout",
    "Notification",
    "RenderedSms",
    "SmsLayout",
    "WechatLayout",
    "check_no_id_number",
    "check_sms_variable",
    "check_wechat_value",
    "render_app",
    "render_sms",
    "render_wechat",
    "sms_length",
    "sms_segments",
    "wechat_field_limit",
]

SMS_SINGLE_MAX = 70
SMS_SEGMENT = 67
SMS_MAX_TOTAL = 500
SMS_VAR_MAX = 35
_ELLIPSIS = "…"

_URL = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.|\b[a-z0-9-]+\.(?:cn|com|net|org|gov|top|xyz|io)\b)")
_VAR = re.compile(r"\$\{(\w+)\}")

# WeChat category-template value limits by key type; the key name says its type ("thing3" -> thing).
# Values are the published rules for 订阅/类目模板 [R]; legacy keys (first, keywordN, remark) allow 200.
_WECHAT_LIMITS: Mapping[str, int] = {
    "thing": 20,
    "phrase": 5,
    "character_string": 32,
    "number": 32,
    "amount": 32,
    "date": 32,
    "time": 32,
    "phone_number": 17,
    "car_number": 8,
    "name": 10,
    "letter": 32,
    "symbol": 5,
    "const": 20,
}
_WECHAT_LEGACY_LIMIT = 200


def sms_length(text: str) -> int:
    """Characters as billed in mainland China: each counts 1, full- or half-width."""
    return len(text)


def sms_segments(length: int) -> int:
    """Billed messages for a text of ``length`` characters: 1 up to 70, else ceil(length / 67)."""
    if length <= 0:
        return 0
    return 1 if length <= SMS_SINGLE_MAX else math.ceil(length / SMS_SEGMENT)


def check_no_id_number(text: str) -> None:
    if contains_id_number(text):
        raise InvalidMessageError("message text contains an ID number", code="CONTAINS_ID_NUMBER")


def check_sms_variable(name: str, value: str, *, max_len: int = SMS_VAR_MAX) -> None:
    """Aliyun's variable rules: a string of 1..35 characters, no URL, and never an ID number."""
    if not 1 <= len(value) <= max_len:
        raise InvalidMessageError(
            f"SMS variable {name!r} has {len(value)} characters; 1..{max_len} allowed", code="PARAM_LENGTH"
        )
    if _URL.search(value):
        raise InvalidMessageError(f"SMS variable {name!r} contains a URL", code="PARAM_URL")
    check_no_id_number(value)


def wechat_field_limit(key: str) -> int:
    return _WECHAT_LIMITS.get(key.rstrip("0123456789"), _WECHAT_LEGACY_LIMIT)


def check_wechat_value(key: str, value: str) -> None:
    """A template value must be non-empty and within its key type's length (WeChat answers 47003)."""
    limit = wechat_field_limit(key)
    if not value.strip():
        raise InvalidMessageError(f"data.{key}.value is empty", code="47003")
    if len(value) > limit:
        raise InvalidMessageError(f"data.{key}.value has {len(value)} characters; at most {limit}", code="47003")
    check_no_id_number(value)


def _fit(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + _ELLIPSIS


@dataclass(frozen=True, slots=True)
class Notification:
    """What a recipient is told about one policy, channel-independent."""

    policy_title: str
    summary: str
    reason: str
    link: str
    deadline: date | None = None
    benefit: str = ""

    def source(self, name: str) -> str:
        """The text for a template slot: title, summary, reason, deadline, benefit or link."""
        if name == "title":
            return self.policy_title
        if name == "deadline":
            return f"{self.deadline.year}年{self.deadline.month}月{self.deadline.day}日" if self.deadline else "以通知为准"
        if name == "benefit":
            return self.benefit or "详见政策原文"
        if name in ("summary", "reason", "link"):
            return str(getattr(self, name))
        raise KeyError(f"unknown notification field {name!r}")


@dataclass(frozen=True, slots=True)
class SmsLayout:
    """An approved SMS template: ``body`` uses ``${var}``; ``link_base`` is the fixed part of links.

    Variables are filled from notification fields named by ``sources`` (default: the variable name);
    ``${link}`` receives only the part of the link after ``link_base``.
    """

    template: str
    sign_name: str
    body: str
    link_base: str
    opt_out: str = "回复TD退订"
    sources: Mapping[str, str] = field(default_factory=dict)
    max_var_len: int = SMS_VAR_MAX

    @property
    def variables(self) -> list[str]:
        return _VAR.findall(self.body)

    @property
    def full_body(self) -> str:
        return f"{self.body}{self.opt_out}"


@dataclass(frozen=True, slots=True)
class RenderedSms:
    template: str
    params: dict[str, str]
    text: str  # as the handset shows it, signature included
    length: int
    segments: int

    def message(self, delivery_id: str, phone: str) -> OutboundMessage:
        return OutboundMessage(delivery_id, phone, self.template, self.params, text=self.text)


def render_sms(n: Notification, layout: SmsLayout) -> RenderedSms:
    params: dict[str, str] = {}
    for var in layout.variables:
        source = layout.sources.get(var, var)
        value = n.source(source)
        if source == "link":
            if not value.startswith(layout.link_base):
                raise InvalidMessageError(f"link {value!r} does not start with {layout.link_base!r}", code="LINK_BASE")
            value = value[len(layout.link_base) :]
        value = _fit(value, layout.max_var_len)
        check_sms_variable(var, value, max_len=layout.max_var_len)
        params[var] = value
    text = f"【{layout.sign_name}】" + _VAR.sub(lambda m: params[m.group(1)], layout.full_body)
    check_no_id_number(text)
    length = sms_length(text)
    if length > SMS_MAX_TOTAL:
        raise InvalidMessageError(f"SMS of {length} characters exceeds {SMS_MAX_TOTAL}", code="CONTENT_LENGTH")
    return RenderedSms(layout.template, params, text, length, sms_segments(length))


@dataclass(frozen=True, slots=True)
class WechatLayout:
    """A template message: ``sources`` maps each template key (e.g. ``thing1``) to a notification field."""

    template: str
    sources: Mapping[str, str]


def render_wechat(n: Notification, layout: WechatLayout, *, delivery_id: str, openid: str) -> OutboundMessage:
    params: dict[str, str] = {}
    for key, source in layout.sources.items():
        value = _fit(n.source(source), wechat_field_limit(key))
        check_wechat_value(key, value)
        params[key] = value
    text = "\n".join(params.values())
    return OutboundMessage(delivery_id, openid, layout.template, params, title=n.policy_title, text=text, url=n.link)


@dataclass(frozen=True, slots=True)
class AppLayout:
    title_max: int = 40
    alert_max: int = 200


def render_app(n: Notification, layout: AppLayout, *, delivery_id: str, registration_id: str) -> OutboundMessage:
    title = _fit(n.policy_title, layout.title_max)
    parts = [n.summary, n.benefit, f"申报截止{n.source('deadline')}", n.reason]
    alert = _fit("。".join(p.rstrip("。") for p in parts if p) + "。", layout.alert_max)
    check_no_id_number(title + alert + n.link)
    return OutboundMessage(delivery_id, registration_id, title=title, text=alert, url=n.link)
