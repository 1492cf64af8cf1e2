"""Turning a policy notification into each channel's message, with the providers' length rules.

SMS length is counted the way Chinese providers bill it: every character (Chinese, letter, digit,
punctuation) counts 1, and the signature with its 【】 is part of the text. Up to 70 characters is
one message; longer ones go out in 67-character segments. Aliyun variables must be 1-35 characters
and may not carry a URL, so a short link is split: the approved template holds the link's base and
the variable only its code.

No message may carry an ID number: rendering refuses any text that contains one.

Messages that cost one SMS (``render_sms_fitted``).  A message is rendered with the richest of a
few approved templates that fits one billed segment (70 characters, signature included),
shortening the policy title as far as the rules below allow.  Failing that, it takes the richest
template that fits two segments, and never more.  A title is shortened by ``shorten_title``,
which keeps its meaningful head and drops the wrapping a notice's title carries:

1. 《》, quotation marks and other book-title marks are dropped;
2. "关于印发《X》的通知" becomes X;
3. everything up to and including 关于 (the issuer: "辽宁省人力资源和社会保障厅关于…") is dropped;
4. leading action words (组织申报, 做好, 开展, 实施, 落实, 进一步, 继续, 兑现, 发放, 支持, 促进 …)
   and a leading place name ("盘锦市", "辽宁省") are dropped, repeatedly;
5. year phrases ("2026年度", "2025—2026年") are dropped;
6. trailing document words (的通知, 的公告, 实施办法, 实施细则, 若干措施, 工作, 政策, 专项资金, 申报 …)
   are dropped, repeatedly.

"关于组织申报2026年度盘锦市专精特新中小企业奖励资金的通知" becomes "专精特新中小企业奖励", and
"辽宁省人力资源和社会保障厅关于做好2026年失业保险稳岗返还工作的通知" becomes "失业保险稳岗返还".
When even that title does not fit, it is cut to the room left, with "…".  A title that names a
sensitive fact (the caller's ``is_sensitive``: 低保, 特困, 残疾, health) is replaced by a neutral
one, because a text on a phone is read by others too.  Link codes are at most 8 characters
(``link_code``).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from channels.base import OutboundMessage, contains_id_number
from channels.errors import InvalidMessageError

__all__ = [
    "LINK_CODE_LEN",
    "AppLayout",
    "Notification",
    "RenderedSms",
    "SmsLayout",
    "WechatLayout",
    "check_no_id_number",
    "check_sms_variable",
    "check_wechat_value",
    "compact_sms_layouts",
    "fit_sms",
    "link_code",
    "render_app",
    "render_sms",
    "render_sms_fitted",
    "render_wechat",
    "shorten_title",
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
        if name == "deadline_short":  # month and day: what an SMS has room for
            return f"{self.deadline.month}月{self.deadline.day}日" if self.deadline else "以通知为准"
        if name == "benefit":
            return self.benefit or "详见政策原文"
        if name in ("summary", "reason", "link"):
            return str(getattr(self, name))
        raise KeyError(f"unknown notification field {name!r}")

    def has(self, name: str) -> bool:
        """Whether the slot has text of its own (a template that needs an empty slot is skipped)."""
        if name in ("deadline", "deadline_short"):
            return self.deadline is not None
        return name not in ("reason", "summary", "benefit") or bool(getattr(self, name))


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


# -- messages that cost one SMS ---------------------------------------------------------------

#: the most characters a short-link code has: 62^8 codes, about 2.2 x 10^14
LINK_CODE_LEN = 8
_CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/l/I

#: a title no shorter than this is still worth sending whole; below it, a richer template is dropped
TITLE_MIN = 6
NEUTRAL_TITLE = "一项惠民补贴"

_BOOK = re.compile(r"[《》〈〉“”‘’\"'「」『』]")
_PRINTED = re.compile(r"^.*?印发(.+?)的?(?:通知|函)$")
_ISSUER = re.compile(r"^.{0,40}?关于")
_HEAD = re.compile(r"^(?:组织申报|组织开展|组织实施|做好|开展|继续实施|继续|实施|落实|进一步|兑现|申报|印发|发放|加快|推动"
                   r"|促进|支持|鼓励|全面|切实|认真|关于|向|为)")
_PLACE = re.compile(r"^[\u4e00-\u9fa5]{2,6}?(?:省|自治区|市|县|区|旗)(?=[\u4e00-\u9fa5]{4})")
_YEAR = re.compile(r"(?:19|20)\d{2}(?:\s*[—–\-~至]\s*(?:19|20)?\d{2,4})?\s*年度?")
_TAIL = re.compile(r"(?:的)?(?:通知|公告|通告|意见|决定|批复|函|实施方案|实施办法|实施细则|若干支持措施|若干措施"
                   r"|若干政策措施|若干政策|若干意见|管理办法|暂行办法|申领办法|发放办法|办法|细则|方案|有关事项|相关工作"
                   r"|工作|政策|专项资金|资金|项目|申报|申领|发放)$")


def shorten_title(title: str) -> str:
    """A policy title without its issuer, years and document words (module notes, rules 1-6).
    Never empty: when the rules would leave nothing, the title is returned as it was."""
    t = _BOOK.sub("", " ".join(title.split()))
    m = _PRINTED.match(t)
    if m:
        t = m.group(1)
    t = _ISSUER.sub("", t)
    prev = None
    while prev != t:
        prev = t
        t = _YEAR.sub("", _PLACE.sub("", _HEAD.sub("", t)))
    prev = None
    while prev != t:
        prev = t
        t = _TAIL.sub("", t).rstrip("的，,。、 ")
    return t or title.strip()


def link_code(n: int = LINK_CODE_LEN) -> str:
    """A random short-link code of ``n`` (at most 8) characters, unguessable by enumeration when
    the resolver limits its rate, and free of look-alike characters."""
    if not 1 <= n <= LINK_CODE_LEN:
        raise ValueError(f"a link code has 1..{LINK_CODE_LEN} characters, not {n}")
    # one read of the system's random source per code, not one per character (the outbox writes a code
    # per row); bytes at or above the largest multiple of the alphabet's size are skipped, so each
    # character stays uniform, as secrets.choice would give
    size = len(_CODE_ALPHABET)
    top = 256 - 256 % size
    out: list[str] = []
    while len(out) < n:
        out += [_CODE_ALPHABET[b % size] for b in secrets.token_bytes(2 * n) if b < top]
    return "".join(out[:n])


def compact_sms_layouts(sign_name: str, link_base: str, opt_out: str = "回复TD退订",
                        template: str = "policy_notice") -> list[SmsLayout]:
    """Three approved templates, richest first, worded to fit one SMS: with the reason and the
    deadline, with the deadline, and the bare invitation.  Each is registered with the providers
    under ``<template>_reason``, ``<template>_deadline`` and ``<template>_short``."""
    deadline = {"deadline": "deadline_short"}
    return [
        SmsLayout(f"{template}_reason", sign_name, f"您可申请${{title}}，${{deadline}}截止。${{reason}}。详见{link_base}${{link}} ",
                  link_base, opt_out, sources=deadline),
        SmsLayout(f"{template}_deadline", sign_name, f"您可申请${{title}}，${{deadline}}截止，详见{link_base}${{link}} ",
                  link_base, opt_out, sources=deadline),
        SmsLayout(f"{template}_short", sign_name, f"您可申请${{title}}，详见{link_base}${{link}} ", link_base, opt_out),
    ]


def render_sms_fitted(n: Notification, layouts: Sequence[SmsLayout], *, max_segments: int = 2,
                      is_sensitive: Callable[[str], bool] | None = None,
                      neutral_title: str = NEUTRAL_TITLE) -> RenderedSms:
    """The SMS for ``n`` in the richest of ``layouts`` (richest first) that fits one billed
    segment with the title shortened (``shorten_title``, then cut with "…" to the room left, no
    shorter than ``TITLE_MIN``); failing that, the richest that fits ``max_segments``.  A
    template whose slots ``n`` leaves empty (no reason given) is skipped.  Raises
    ``InvalidMessageError`` (code ``CONTENT_LENGTH``) when nothing fits ``max_segments``."""
    return fit_sms(n, layouts, max_segments=max_segments, is_sensitive=is_sensitive, neutral_title=neutral_title)[2]


def fit_sms(n: Notification, layouts: Sequence[SmsLayout], *, max_segments: int = 2,
            is_sensitive: Callable[[str], bool] | None = None,
            neutral_title: str = NEUTRAL_TITLE) -> tuple[int, str, RenderedSms]:
    """:func:`render_sms_fitted` with its choice: (index of the layout in ``layouts``, the title shown, the
    SMS). The choice depends on the lengths of ``n``'s fields, not on the characters of its link, so a
    sender may render the next recipient with the same reason and link length in that layout and title
    at once (``render_sms``, whose checks still run on the whole text)."""
    title = shorten_title(n.policy_title)
    if is_sensitive is not None and (is_sensitive(title) or is_sensitive(n.policy_title)):
        title = neutral_title
    usable = [(i, lay) for i, lay in enumerate(layouts)
              if all(n.has(lay.sources.get(v, v)) for v in lay.variables if v != "title")]
    for goal in dict.fromkeys((1, max_segments)):
        budget = SMS_SINGLE_MAX if goal == 1 else goal * SMS_SEGMENT
        for index, layout in usable:
            fixed = render_sms(replace(n, policy_title="题"), layout).length - 1  # all but the title
            room = min(budget - fixed, layout.max_var_len)
            if room < min(len(title), TITLE_MIN):
                continue
            shown = title if len(title) <= room else title[: room - 1] + _ELLIPSIS
            rendered = render_sms(replace(n, policy_title=shown), layout)
            if rendered.segments <= goal:
                return index, shown, rendered
    raise InvalidMessageError(f"no SMS template fits {max_segments} segments for {n.policy_title!r}",
                              code="CONTENT_LENGTH")
