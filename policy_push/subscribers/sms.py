"""Sending sign-in codes through the normal SMS adapters (Aliyun, then Tencent on failover), with the
providers' verification-code templates. Codes are not deliveries: they skip the outbox, quiet hours
and the frequency cap (a person waiting at a form needs the code now), and are sent once; a person
who does not get one asks again, within the rate limits of ``codes``.
"""

from __future__ import annotations

import logging
import uuid

import aiohttp

from channels import (
    AliyunSms,
    AliyunSmsConfig,
    Channel,
    OutboundMessage,
    Outcome,
    Router,
    TencentSms,
    TencentSmsConfig,
    TencentTemplate,
)
from policy_push.config import Settings
from policy_push.errors import ConfigurationError
from policy_push.sending.providers import endpoints, sms_providers

__all__ = ["BIND_TEMPLATE", "CODE_TEMPLATE", "CodeSender"]

log = logging.getLogger("policy_push.subscribers")
CODE_TEMPLATE = "sign_in_code"
#: the SMS with the signed link that binds a WeChat account (``wechat_bind``)
BIND_TEMPLATE = "wechat_bind_link"
_SIM_ALIYUN, _SIM_TENCENT = "SMS_900005", "2000005"
_SIM_ALIYUN_BIND, _SIM_TENCENT_BIND = "SMS_900006", "2000006"


def _template(settings: Settings, value: str, sim_default: str, name: str) -> str:
    if value:
        return value
    if settings.provider_mode == "simulators":
        return sim_default
    raise ConfigurationError(f"POLICY_PUSH_{name.upper()} is required when provider_mode is live")


def code_channels(settings: Settings, http: aiohttp.ClientSession) -> list[Channel]:
    e = endpoints(settings)
    out: list[Channel] = []
    for name in sms_providers(settings):
        if name == "aliyun":
            code = _template(settings, settings.aliyun_code_template_code, _SIM_ALIYUN, "aliyun_code_template_code")
            bind = _template(settings, settings.aliyun_bind_template_code, _SIM_ALIYUN_BIND, "aliyun_bind_template_code")
            out.append(AliyunSms(AliyunSmsConfig(e.aliyun_key[0], e.aliyun_key[1], settings.sms_sign_name,
                                                 {CODE_TEMPLATE: code, BIND_TEMPLATE: bind},
                                                 base_url=e.aliyun_url, timeout_s=settings.provider_timeout_s), http))
        elif name == "tencent":
            tid = _template(settings, settings.tencent_code_template_id, _SIM_TENCENT, "tencent_code_template_id")
            bid = _template(settings, settings.tencent_bind_template_id, _SIM_TENCENT_BIND, "tencent_bind_template_id")
            out.append(TencentSms(TencentSmsConfig(
                e.tencent_key[0], e.tencent_key[1], e.tencent_sdk_app_id, settings.sms_sign_name,
                {CODE_TEMPLATE: TencentTemplate(tid, ("code", "minutes")), BIND_TEMPLATE: TencentTemplate(bid, ("link", "minutes"))},
                base_url=e.tencent_url,
                timeout_s=settings.provider_timeout_s), http))  # fmt: skip
    return out


class CodeSender:
    """Sends one code SMS through a router of its own (the policy messages' router keeps its own state)."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.router = Router(code_channels(settings, http))

    async def send(self, phone: str, code: str, minutes: int) -> str:
        """"sent", or the provider's code when it refused or failed (the code is then not usable)."""
        msg = OutboundMessage(delivery_id=uuid.uuid4().hex, recipient=phone, template=CODE_TEMPLATE,
                              params={"code": code, "minutes": str(minutes)})  # fmt: skip
        [result] = await self.router.send("sms", [msg])
        if result.outcome is Outcome.ACCEPTED:
            return "sent"
        log.warning("sign-in code SMS not sent: %s %s", result.provider, result.code)
        return (result.code or result.outcome.value)[:64]
