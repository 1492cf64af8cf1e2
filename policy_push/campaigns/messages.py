"""The message of a campaign, per channel: rendered once for the approver, filled per recipient
by the dispatcher.

A ``campaign_messages.body`` (JSON) is the contract between the campaign (which writes it, and
whose approval hash covers it) and dispatch (which reads it)::

    {
      "v": 2,
      "channel": "sms" | "wechat" | "app",
      "template": "policy_notice",                 # logical template name (settings.message_template)
      "fields": {"title": …, "summary": …, "deadline": "2026-12-31" | null, "benefit": "最高50万元"},
      "link": "https://s.pj.gov.cn/{code}"          # SMS: the short link; {code} = the delivery's 8-character link code
            | "http://host/p/<policy>?t={token}",   # WeChat, app: a signed, expiring token (security.links)
      "layout": {…},                               # the channel's layout; SMS: "layouts", richest first
      "sensitive": false,                          # the policy names a sensitive fact: neutral title, no summary
      "preview": {"reason": …, "text": …, "length": n, "segments": k,   # as the approver saw it
                  "max_length": n, "max_segments": k, "segments_by_reason": [[reason, k], …],
                  "title": …, "params": {…}}     # the campaign view adds "billed_segments"
    }

Per recipient only two things change: the reason (the recipient's ``message_reason``: a line that
holds and names no sensitive fact, chosen by the match engine when the campaign was drafted; None
gives a neutral line or, in an SMS, a template without one) and the link.  An SMS takes the richest of
the one-segment templates that fits (``channels.render_sms_fitted``), never more than two segments.
Sensitive facts (低保, 特困, 残疾, health; ``matchers.is_sensitive``) never appear in a message: not in
the reason, not the summary (a summary that names one is left out), and a policy whose title names
one goes out under a neutral title without its summary.
Dispatch calls :func:`render_for_recipient` and never builds a text itself, so what goes out is what
was approved.  No message ever carries an ID number: the channel renderers refuse one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

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
from channels.errors import InvalidMessageError
from channels.render import NEUTRAL_TITLE, RenderedSms, compact_sms_layouts, fit_sms
from matchers import is_sensitive
from policy_push.config import Settings
from policy_push.domain import Policy

__all__ = [
    "BODY_VERSION",
    "NEUTRAL_REASON",
    "SAMPLE_CODE",
    "SAMPLE_DELIVERY_ID",
    "SAMPLE_TOKEN",
    "MessageSettings",
    "benefit_text",
    "best_reason",
    "build_message_bodies",
    "policy_is_sensitive",
    "quoted_reason",
    "render_for_recipient",
    "short_code",
    "shown_reasons",
]

BODY_VERSION = 2
#: the delivery id, link code and token used to render previews: as long as real ones, so lengths are exact
SAMPLE_DELIVERY_ID = "00000000000040008000000000000000"
SAMPLE_CODE = "aaaaaaaa"
SAMPLE_TOKEN = "aaaaaaaa.aaaaaa.aaaaaaaaaaaaaaaa"
#: what a WeChat or app message says when no reason may be quoted (issue 10: neutral, names nothing)
NEUTRAL_REASON = "您可能符合该项政策的条件"
_FIELDS = ("title", "summary", "reason", "deadline", "benefit", "link")


@dataclass(frozen=True, slots=True)
class MessageSettings:
    public_base_url: str
    sms_sign_name: str
    sms_link_base: str
    sms_opt_out: str
    template: str
    wechat_fields: Mapping[str, str]
    #: the one-segment SMS templates are registered with every SMS provider in use
    sms_compact: bool = True

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
        return cls(base, s.sms_sign_name, s.sms_link_base, s.sms_opt_out_text, s.message_template, fields,
                   sms_compact=_compact_registered(s))

    def sms_layout(self) -> SmsLayout:
        """The long template (every field; up to three segments): used only when the one-segment
        templates are not registered with the providers."""
        body = f"您可能符合${{title}}，${{benefit}}，申报截止${{deadline}}。${{reason}}。详见 {self.sms_link_base}${{link}} "
        return SmsLayout(self.template, self.sms_sign_name, body, self.sms_link_base, opt_out=self.sms_opt_out)

    def sms_layouts(self) -> list[SmsLayout]:
        """The SMS templates to fit a message into, richest first."""
        if not self.sms_compact:
            return [self.sms_layout()]
        return compact_sms_layouts(self.sms_sign_name, self.sms_link_base, self.sms_opt_out, self.template)


def _compact_registered(s: Settings) -> bool:
    # simulators hold the one-segment templates; live providers only when their codes are configured
    if s.provider_mode == "simulators":
        return True
    names = [part.strip() for part in s.sms_providers.split(",") if part.strip()]
    given = {"aliyun": s.aliyun_compact_template_codes, "tencent": s.tencent_compact_template_ids}
    return all(given.get(name, "").strip() for name in names)


def short_code(delivery_id: str) -> str:
    """The code of a delivery made before link codes existed (the id without dashes)."""
    return delivery_id.replace("-", "")


def benefit_text(policy: Policy) -> str:
    amount = policy.benefit_max_yuan
    if not amount or amount != amount or amount in (float("inf"), float("-inf")):
        return ""
    if amount >= 10_000:
        return f"最高{amount / 10_000:g}万元"
    return f"最高{amount:g}元"


def policy_is_sensitive(policy: Policy) -> bool:
    """The policy's title names a sensitive fact (低保, 特困, 残疾, health): telling a person about it
    tells whoever reads their phone that fact."""
    return is_sensitive(policy.title)


# for rows without the engine's choice: region lines hold for every recipient of a local policy, and
# age/gender lines say more about the person than a message needs
_WEAK_PREFIXES = ("注册地", "居住地", "户籍地")
_PRIVATE_PREFIXES = ("年龄", "性别", "成立日期")
_STRONG_PREFIXES = ("资质", "身份标签", "所属行业", "企业规模")


def best_reason(reasons: Sequence[str]) -> str | None:
    """For rows drafted without the engine's ``message_reason``: the most telling line that holds and
    names nothing sensitive (never a 缺少 line, never age or gender), or None."""
    usable = [r for r in reasons if not is_sensitive(r) and not r.startswith("缺少") and "不符合" not in r
              and not r.startswith(_PRIVATE_PREFIXES)]
    for line in usable:
        if line.startswith(_STRONG_PREFIXES):
            return line
    for line in usable:
        if not line.startswith(_WEAK_PREFIXES):
            return line
    return usable[0] if usable else None


class _Lines(Protocol):
    reasons: Any
    message_reason: str | None
    public_reasons: Any


def quoted_reason(lines: _Lines) -> str | None:
    """The line a message to this recipient quotes: the engine's choice, or for a row drafted before
    the engine made one (``public_reasons`` None), the first holding line that names nothing sensitive."""
    if lines.public_reasons is None:
        return best_reason(list(lines.reasons or []))
    return lines.message_reason


def shown_reasons(lines: _Lines) -> list[str]:
    """The lines a public page may show for this recipient: never a sensitive one."""
    if lines.public_reasons is None:
        return [r for r in lines.reasons or [] if not is_sensitive(r)]
    return [r for r in lines.public_reasons if not is_sensitive(r)]


def _link(body: Mapping[str, Any], code: str, token: str) -> str:
    return str(body["link"]).replace("{code}", code).replace("{token}", token).replace("{delivery_id}", token)


def _notification(body: Mapping[str, Any], reason: str, link: str) -> Notification:
    f = body["fields"]
    deadline = dt.date.fromisoformat(f["deadline"]) if f.get("deadline") else None
    return Notification(f["title"], f.get("summary") or "", reason, link, deadline, f.get("benefit") or "")


def _sms_layouts(body: Mapping[str, Any]) -> list[SmsLayout]:
    layout, template = body["layout"], body["template"]
    listed = layout.get("layouts") or [{**layout, "template": template}]
    return [SmsLayout(x["template"], x["sign_name"], x["body"], x["link_base"], opt_out=x["opt_out"],
                      sources=dict(x.get("sources") or {})) for x in listed]


#: per campaign body: (reason, link length) -> (index of the SMS layout, title shown) that fitted
SmsFits = dict[tuple[str, int], tuple[int, str]]


def _render_sms(body: Mapping[str, Any], n: Notification, fits: SmsFits | None = None) -> RenderedSms:
    layouts = _sms_layouts(body)
    key = (n.reason, len(n.link))
    if fits is not None and (hit := fits.get(key)) is not None:
        index, shown = hit  # what fitted for this reason fits again: only the link's characters differ
        return render_sms(replace(n, policy_title=shown), layouts[index])
    try:
        index, shown, rendered = fit_sms(n, layouts, max_segments=2, is_sensitive=is_sensitive)
    except InvalidMessageError:
        if len(layouts) > 1:
            raise
        return render_sms(n, layouts[0])  # the long template alone: as it was approved, however long
    if fits is not None:
        fits[key] = (index, shown)
    return rendered


def render_for_recipient(
    body: Mapping[str, Any], *, reason: str | None, delivery_id: str, address: str, code: str, token: str,
    fits: SmsFits | None = None,
) -> OutboundMessage:
    """The message for one recipient: ``body`` from ``campaign_messages``, ``reason`` the recipient's
    ``message_reason`` (None: none may be quoted), ``code`` the delivery's link code (SMS), ``token``
    its signed link token (WeChat, app), ``address`` the decrypted phone/openid/registration id.
    ``fits``: a dict kept by the caller for this one body, so an SMS is fitted once per reason.
    Raises ``channels.InvalidMessageError`` when the text breaks a channel rule (a permanent failure)."""
    if reason is not None and is_sensitive(reason):
        reason = None  # belt and braces: a stored line is checked again against today's word list
    channel = body["channel"]
    if channel == "sms":
        # the one-segment templates include one without a reason; the long template alone needs a line
        fallback = "" if len(_sms_layouts(body)) > 1 else NEUTRAL_REASON
        n = _notification(body, reason or fallback, _link(body, code, token))
        return _render_sms(body, n, fits).message(delivery_id, address)
    n = _notification(body, reason or NEUTRAL_REASON, _link(body, code, token))
    if body.get("sensitive"):
        n = Notification(NEUTRAL_TITLE, "", n.reason, n.link, n.deadline, n.benefit)
    layout, template = body["layout"], body["template"]
    if channel == "wechat":
        return render_wechat(n, WechatLayout(template, dict(layout["sources"])), delivery_id=delivery_id, openid=address)
    if channel == "app":
        app = AppLayout(layout["title_max"], layout["alert_max"])
        return render_app(n, app, delivery_id=delivery_id, registration_id=address)
    raise ValueError(f"unknown channel {channel!r} in a campaign message")


def _sample(body: Mapping[str, Any], reason: str | None) -> OutboundMessage:
    return render_for_recipient(body, reason=reason, delivery_id=SAMPLE_DELIVERY_ID, address="preview",
                                code=SAMPLE_CODE, token=SAMPLE_TOKEN)


def _preview(body: dict[str, Any], reason: str | None, all_reasons: Iterable[str | None]) -> dict[str, Any]:
    msg = _sample(body, reason)
    out: dict[str, Any] = {"reason": reason, "title": msg.title, "text": msg.text, "params": dict(msg.params)}
    if body["channel"] == "sms":
        # only the reason varies between recipients: each distinct one is rendered once; the campaign
        # view multiplies these by the recipients of each reason for the billed total
        lengths = {r: len(_sample(body, r).text) for r in {reason, *all_reasons}}
        by_reason = sorted(([r, sms_segments(n)] for r, n in lengths.items()), key=lambda x: (x[0] is not None, x[0] or ""))
        out.update(length=len(msg.text), segments=sms_segments(len(msg.text)),
                   max_length=max(lengths.values()), max_segments=max(s for _, s in by_reason),
                   segments_by_reason=by_reason)
    return out


def build_message_bodies(
    policy: Policy, channels: Iterable[str], ms: MessageSettings, *, sample_reasons: Sequence[str | None],
) -> dict[str, dict[str, Any]]:
    """One body per channel used.  ``sample_reasons``: the message reasons of the recipients, best
    first; the first is shown in the preview, all of them bound the SMS length.  Raises ``channels.InvalidMessageError`` when a text breaks a channel rule (e.g. contains
    an ID number, or no SMS template fits two segments)."""
    sensitive = policy_is_sensitive(policy)
    fields = {
        "title": policy.title,
        # a summary that names a sensitive fact ("失能老人每月…") stays on the policy page, out of messages
        "summary": "" if sensitive or is_sensitive(policy.summary or "") else policy.summary or "",
        "deadline": policy.apply_until.isoformat() if policy.apply_until else None,
        "benefit": benefit_text(policy),
    }
    page = f"{ms.public_base_url}/p/{policy.id}?t={{token}}"
    shown = sample_reasons[0] if sample_reasons else None
    distinct = set(sample_reasons)
    bodies: dict[str, dict[str, Any]] = {}
    for channel in sorted(set(channels)):
        if channel == "sms":
            layouts = [
                {"template": x.template, "sign_name": x.sign_name, "body": x.body, "link_base": x.link_base,
                 "opt_out": x.opt_out, "sources": dict(x.sources)}
                for x in ms.sms_layouts()
            ]
            layout: dict[str, Any] = {**{k: v for k, v in layouts[0].items() if k != "template"}, "layouts": layouts}
            link = f"{ms.sms_link_base}{{code}}"
        elif channel == "wechat":
            layout, link = {"sources": dict(ms.wechat_fields)}, page
        elif channel == "app":
            app = AppLayout()
            layout, link = {"title_max": app.title_max, "alert_max": app.alert_max}, page
        else:
            raise ValueError(f"unknown channel {channel!r}")
        body = {"v": BODY_VERSION, "channel": channel, "template": ms.template, "fields": fields, "link": link,
                "layout": layout, "sensitive": sensitive}
        body["preview"] = _preview(body, shown, distinct)
        bodies[channel] = body
    return bodies
