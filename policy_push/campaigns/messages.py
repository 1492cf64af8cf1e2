"""The message of a campaign, per channel: rendered once for the approver, filled per recipient
by the dispatcher.

A ``campaign_messages.body`` (JSON) is the contract between the campaign (which writes it, and
whose approval hash covers it) and dispatch (which reads it)::

    {
      "v": 1,
      "channel": "sms" | "wechat" | "app",
      "template": "policy_notice",                 # logical template name (settings.message_template)
      "fields": {"title": …, "summary": …, "deadline": "2026-12-31" | null, "benefit": "最高50万元"},
      "link": "https://s.pj.gov.cn/{code}"          # SMS: the short link, {code} = short_code(delivery id)
            | "http://host/p/<policy>?d={delivery_id}",   # WeChat, app
      "layout": {…},                               # the channel's layout (SmsLayout / WechatLayout / AppLayout fields)
      "preview": {"reason": …, "text": …, "length": n, "segments": k,   # as the approver saw it
                  "max_length": n, "max_segments": k, "title": …, "params": {…}}
    }

Per recipient only two things change: ``{reason}`` (the best line of the recipient's reasons,
:func:`best_reason`) and the link's ``{delivery_id}``/``{code}``.  Dispatch calls
:func:`render_for_recipient` and never builds a text itself, so what goes out is what was approved.
No message ever carries an ID number: the channel renderers refuse one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels import (
    AppLayout,
    Notification,
    OutboundMessage,
    SmsLayout,
    WechatLayout,
    render_app,
    render_sms,
    render_wechat,
    sms_segments,
)
from policy_push.config import Settings
from policy_push.domain import Policy

__all__ = [
    "BODY_VERSION",
    "SAMPLE_DELIVERY_ID",
    "MessageSettings",
    "benefit_text",
    "best_reason",
    "build_message_bodies",
    "code_candidates",
    "render_for_recipient",
    "short_code",
]

BODY_VERSION = 1
#: the delivery id used to render previews: same length as a real one, so lengths are exact
SAMPLE_DELIVERY_ID = "00000000-0000-4000-8000-000000000000"
_FIELDS = ("title", "summary", "reason", "deadline", "benefit", "link")
# region lines hold for every recipient of a local policy, and age/gender lines say more about
# the person than a message needs: the reason a message quotes is the most telling other line
_WEAK_PREFIXES = ("注册地", "居住地", "户籍地")
_PRIVATE_PREFIXES = ("年龄", "性别", "成立日期")
_STRONG_PREFIXES = ("资质", "身份标签", "所属行业", "企业规模")


@dataclass(frozen=True, slots=True)
class MessageSettings:
    public_base_url: str
    sms_sign_name: str
    sms_link_base: str
    sms_opt_out: str
    template: str
    wechat_fields: Mapping[str, str]

    @classmethod
    def from_settings(cls, s: Settings) -> MessageSettings:
        base = (s.public_base_url or f"http://{s.host}:{s.port}").rstrip("/")
        fields: dict[str, str] = {}
        for pair in s.wechat_template_fields.split(","):
            key, _, source = pair.strip().partition("=")
            if not key or source not in _FIELDS:
                raise ValueError(
                    f"POLICY_PUSH_WECHAT_TEMPLATE_FIELDS: {pair.strip()!r} must be key=field, field one of {', '.join(_FIELDS)}"
                )
            fields[key] = source
        return cls(base, s.sms_sign_name, s.sms_link_base, s.sms_opt_out_text, s.message_template, fields)

    def sms_layout(self) -> SmsLayout:
        # the approved template: the providers hold the same text with ${…} slots
        body = f"您可能符合${{title}}，${{benefit}}，申报截止${{deadline}}。${{reason}}。详见 {self.sms_link_base}${{link}} "
        return SmsLayout(self.template, self.sms_sign_name, body, self.sms_link_base, opt_out=self.sms_opt_out)


def short_code(delivery_id: str) -> str:
    """The code an SMS carries for a delivery: the id without dashes (32 characters, within
    Aliyun's 35-character variable limit).  ``/s/<code>`` resolves it."""
    return delivery_id.replace("-", "")


def code_candidates(code: str) -> list[str]:
    """Delivery ids a short code may stand for (the dashed UUID form and the code itself)."""
    out = [code]
    if len(code) == 32 and all(c in "0123456789abcdefABCDEF" for c in code):
        out.append(str(uuid.UUID(hex=code)))
    return out


def benefit_text(policy: Policy) -> str:
    amount = policy.benefit_max_yuan
    if not amount:
        return ""
    if amount >= 10_000:
        return f"最高{amount / 10_000:g}万元"
    return f"最高{amount:g}元"


def best_reason(reasons: Sequence[str]) -> str:
    """The one reason line a message quotes (see the module notes on which and why)."""
    if not reasons:
        return "符合申报条件"
    for line in reasons:
        if line.startswith(_STRONG_PREFIXES):
            return line
    usable = [r for r in reasons if not r.startswith(_PRIVATE_PREFIXES)]
    for line in usable:
        if not line.startswith(_WEAK_PREFIXES):
            return line
    return usable[0] if usable else "符合申报条件"


def _notification(body: Mapping[str, Any], reason: str, delivery_id: str) -> Notification:
    f = body["fields"]
    link = str(body["link"]).replace("{delivery_id}", delivery_id).replace("{code}", short_code(delivery_id))
    deadline = dt.date.fromisoformat(f["deadline"]) if f.get("deadline") else None
    return Notification(f["title"], f.get("summary") or "", reason, link, deadline, f.get("benefit") or "")


def _sms_layout(layout: Mapping[str, Any], template: str) -> SmsLayout:
    return SmsLayout(template, layout["sign_name"], layout["body"], layout["link_base"], opt_out=layout["opt_out"])


def render_for_recipient(
    body: Mapping[str, Any], *, reasons: Sequence[str], delivery_id: str, address: str
) -> OutboundMessage:
    """The message for one recipient: ``body`` from ``campaign_messages``, ``reasons`` from the
    recipient's ``campaign_recipients`` row, ``address`` the decrypted phone/openid/registration id.
    Raises ``channels.InvalidMessageError`` when the text breaks a channel rule (a permanent failure)."""
    n = _notification(body, best_reason(reasons), delivery_id)
    layout, template = body["layout"], body["template"]
    channel = body["channel"]
    if channel == "sms":
        return render_sms(n, _sms_layout(layout, template)).message(delivery_id, address)
    if channel == "wechat":
        return render_wechat(n, WechatLayout(template, dict(layout["sources"])), delivery_id=delivery_id, openid=address)
    if channel == "app":
        app = AppLayout(layout["title_max"], layout["alert_max"])
        return render_app(n, app, delivery_id=delivery_id, registration_id=address)
    raise ValueError(f"unknown channel {channel!r} in a campaign message")


def _preview(body: dict[str, Any], reason: str, all_reasons: Iterable[str]) -> dict[str, Any]:
    msg = render_for_recipient(body, reasons=[reason], delivery_id=SAMPLE_DELIVERY_ID, address="preview")
    out: dict[str, Any] = {"reason": reason, "title": msg.title, "text": msg.text, "params": dict(msg.params)}
    if body["channel"] == "sms":
        layout = _sms_layout(body["layout"], body["template"])
        # only the reason varies between recipients: the longest reason line bounds the length
        longest = max(
            (render_sms(_notification(body, r, SAMPLE_DELIVERY_ID), layout) for r in {reason, *all_reasons}),
            key=lambda rendered: rendered.length,
        )
        out.update(length=len(msg.text), segments=sms_segments(len(msg.text)),
                   max_length=longest.length, max_segments=longest.segments)
    return out


def build_message_bodies(
    policy: Policy, channels: Iterable[str], ms: MessageSettings, *, sample_reasons: Sequence[Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """One body per channel used.  ``sample_reasons``: the reasons of the recipients, best first;
    the first is shown in the preview, all of them bound the SMS length.  Raises
    ``channels.InvalidMessageError`` when a text breaks a channel rule (e.g. contains an ID number)."""
    fields = {
        "title": policy.title,
        "summary": policy.summary or "",
        "deadline": policy.apply_until.isoformat() if policy.apply_until else None,
        "benefit": benefit_text(policy),
    }
    page = f"{ms.public_base_url}/p/{policy.id}?d={{delivery_id}}"
    lines = {best_reason(r) for r in sample_reasons}
    shown = best_reason(sample_reasons[0]) if sample_reasons else best_reason([])
    bodies: dict[str, dict[str, Any]] = {}
    for channel in sorted(set(channels)):
        if channel == "sms":
            sms = ms.sms_layout()
            layout: dict[str, Any] = {
                "sign_name": sms.sign_name, "body": sms.body, "link_base": sms.link_base, "opt_out": sms.opt_out,
            }
            link = f"{ms.sms_link_base}{{code}}"
        elif channel == "wechat":
            layout, link = {"sources": dict(ms.wechat_fields)}, page
        elif channel == "app":
            app = AppLayout()
            layout, link = {"title_max": app.title_max, "alert_max": app.alert_max}, page
        else:
            raise ValueError(f"unknown channel {channel!r}")
        body = {"v": BODY_VERSION, "channel": channel, "template": ms.template, "fields": fields, "link": link, "layout": layout}
        body["preview"] = _preview(body, shown, lines)
        bodies[channel] = body
    return bodies
