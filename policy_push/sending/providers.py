"""Provider adapters, their limiters and the ``Router``, built from settings: the one place the
application wires providers.

``provider_mode = "simulators"`` (the default, for the demo and the tests): every URL or credential
left unset falls back to the local simulators' defaults (``channels.simulators``), so a fresh
checkout sends to loopback and nowhere else. ``provider_mode = "live"``: URLs fall back to the real
endpoints and credentials are required; a missing one is a configuration error naming the setting.

SMS has one adapter per name in ``sms_providers`` (Aliyun, Tencent), in that order: the first is
the router's primary, the next its failover target. "wechat" and "app" (JPush) have one each. Tencent
settings are resolved (and, live, required) only when ``tencent`` is in ``sms_providers``. The router makes
one call per batch: retries belong to the outbox (``not_before`` backoff, attempts counted in the row, as
``SendRules.retry`` says), so a slow retry never holds a claimed batch or a sender's slot.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import aiohttp
from pydantic import SecretStr

from channels import (
    AliyunSms,
    AliyunSmsConfig,
    Channel,
    JPush,
    JPushConfig,
    JPushReports,
    RateLimit,
    Router,
    TencentSms,
    TencentSmsConfig,
    TencentTemplate,
    Wechat,
    WechatConfig,
    WechatTemplate,
)
from channels.simulators import (
    DEFAULT_PORTS,
    AliyunSimConfig,
    JPushSimConfig,
    TencentSimConfig,
    WechatSimConfig,
)
from policy_push.config import Settings
from policy_push.errors import ConfigurationError

__all__ = [
    "COMPACT_SUFFIXES",
    "TENCENT_PARAMS",
    "ProviderEndpoints",
    "build_channels",
    "build_jpush_reports",
    "build_router",
    "callback_secret",
    "callback_urls",
    "endpoints",
    "sms_providers",
    "wechat_callback_token",
    "with_run_secrets",
]

_LIVE_URLS = {
    "aliyun": "https://dysmsapi.aliyuncs.com/",
    "tencent": "https://sms.tencentcloudapi.com/",
    "wechat": "https://api.weixin.qq.com",
    "jpush": "https://api.jpush.cn",
}
#: the SMS params (``campaigns.messages.render_for_recipient``) that fill the Tencent template's {1}..{5}, in order
TENCENT_PARAMS = ("title", "benefit", "deadline", "reason", "link")
#: the one-segment templates' name suffixes (``channels.compact_sms_layouts``) and their Tencent slots
COMPACT_SUFFIXES = ("_reason", "_deadline", "_short")
TENCENT_COMPACT_PARAMS = (("title", "deadline", "reason", "link"), ("title", "deadline", "link"), ("title", "link"))


@dataclass(frozen=True, slots=True)
class ProviderEndpoints:
    """Where each provider is and who we are there (secrets included: never log this)."""

    aliyun_url: str
    aliyun_key: tuple[str, str]
    aliyun_template_code: str
    wechat_url: str
    wechat_app: tuple[str, str]
    wechat_template_id: str
    jpush_url: str
    jpush_app: tuple[str, str]
    #: empty strings when ``tencent`` is not in ``sms_providers``
    tencent_url: str = ""
    tencent_key: tuple[str, str] = ("", "")
    tencent_sdk_app_id: str = ""
    tencent_template_id: str = ""
    #: the one-segment templates (reason, deadline, short); empty: only the long template is registered
    aliyun_compact: tuple[str, ...] = ()
    tencent_compact: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the dataclass repr would print the secrets
        return (
            f"ProviderEndpoints(aliyun={self.aliyun_url}, tencent={self.tencent_url or '-'}, "
            f"wechat={self.wechat_url}, jpush={self.jpush_url})"
        )


def sms_providers(settings: Settings) -> list[str]:
    """The SMS provider names of ``settings.sms_providers``, most preferred first."""
    return [part.strip() for part in settings.sms_providers.split(",") if part.strip()]


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else ""  # type: ignore[attr-defined]


def endpoints(settings: Settings) -> ProviderEndpoints:
    """Resolve URLs and credentials, filling gaps from the simulators (simulators mode) or failing (live)."""
    sim = settings.provider_mode == "simulators"
    a, t, w, j = AliyunSimConfig(), TencentSimConfig(), WechatSimConfig(), JPushSimConfig()

    def pick(value: str, sim_default: str, setting: str) -> str:
        if value:
            return value
        if sim:
            return sim_default
        raise ConfigurationError(f"POLICY_PUSH_{setting.upper()} is required when provider_mode is live")

    def url(value: str, provider: str) -> str:
        if value:
            return value
        slash = "/" if provider in ("aliyun", "tencent") else ""
        return f"http://127.0.0.1:{DEFAULT_PORTS[provider]}{slash}" if sim else _LIVE_URLS[provider]

    (ak, asecret), (appid, wsecret), (app_key, master) = (
        next(iter(a.access_keys.items())),
        next(iter(w.apps.items())),
        next(iter(j.apps.items())),
    )
    tencent: dict[str, object] = {}
    if "tencent" in sms_providers(settings):
        tid, tkey = next(iter(t.secrets.items()))
        tencent = {
            "tencent_url": url(settings.tencent_sms_url, "tencent"),
            "tencent_key": (
                pick(settings.tencent_secret_id, tid, "tencent_secret_id"),
                pick(_secret(settings.tencent_secret_key), tkey, "tencent_secret_key"),
            ),
            "tencent_sdk_app_id": pick(settings.tencent_sdk_app_id, t.sdk_app_id, "tencent_sdk_app_id"),
            "tencent_template_id": pick(settings.tencent_template_id, next(iter(t.templates)), "tencent_template_id"),
            "tencent_compact": _compact(settings.tencent_compact_template_ids, tuple(t.templates)[1:4] if sim else ()),
        }
    return ProviderEndpoints(
        aliyun_url=url(settings.aliyun_sms_url, "aliyun"),
        aliyun_key=(
            pick(settings.aliyun_access_key_id, ak, "aliyun_access_key_id"),
            pick(_secret(settings.aliyun_access_key_secret), asecret, "aliyun_access_key_secret"),
        ),
        aliyun_template_code=pick(settings.aliyun_template_code, next(iter(a.templates)), "aliyun_template_code"),
        aliyun_compact=_compact(settings.aliyun_compact_template_codes, tuple(a.templates)[1:4] if sim else ()),
        wechat_url=url(settings.wechat_url, "wechat"),
        wechat_app=(pick(settings.wechat_appid, appid, "wechat_appid"), pick(_secret(settings.wechat_secret), wsecret, "wechat_secret")),
        wechat_template_id=pick(settings.wechat_template_id, next(iter(w.templates)), "wechat_template_id"),
        jpush_url=url(settings.jpush_url, "jpush"),
        jpush_app=(pick(settings.jpush_app_key, app_key, "jpush_app_key"), pick(_secret(settings.jpush_master_secret), master, "jpush_master_secret")),
        **tencent,  # type: ignore[arg-type]
    )


def _compact(setting: str, sim_default: tuple[str, ...]) -> tuple[str, ...]:
    given = tuple(part.strip() for part in setting.split(",") if part.strip())
    if given and len(given) != len(COMPACT_SUFFIXES):
        raise ConfigurationError(
            f"the compact SMS template setting names {len(given)} templates; give {len(COMPACT_SUFFIXES)}, comma-separated"
        )
    return given or sim_default


def _sms_templates(template: str, main: str, compact: tuple[str, ...]) -> dict[str, str]:
    return {template: main, **{f"{template}{sfx}": code for sfx, code in zip(COMPACT_SUFFIXES, compact, strict=False)}}


def with_run_secrets(settings: Settings) -> Settings:
    """``settings`` with the callback secrets filled for this run where simulators mode leaves them unset.

    The simulators' own default WeChat token (``sim-callback-token``) is public: anyone could sign an event
    with it. So in simulators mode an unset WeChat token or callback secret becomes a random one for this
    process; the demo hands the same values to the simulators it starts. Live mode fills in nothing (the
    callbacks then refuse everything; see :func:`callback_secret`)."""
    if settings.provider_mode != "simulators":
        return settings
    update: dict[str, SecretStr] = {}
    if not _secret(settings.wechat_callback_token):
        update["wechat_callback_token"] = SecretStr(secrets.token_urlsafe(24))
    if not _secret(settings.callback_secret):
        update["callback_secret"] = SecretStr(secrets.token_urlsafe(24))
    return settings.model_copy(update=update) if update else settings


def wechat_callback_token(settings: Settings) -> str:
    """The token WeChat signs event pushes with; "" when none is set (every push is then refused)."""
    return _secret(settings.wechat_callback_token)


def callback_secret(settings: Settings) -> str:
    """The secret path segment of the unsigned callbacks; "" when none is set (every push is then refused:
    ``channels.callback_auth.secret_path_matches`` never matches a short or empty secret)."""
    return _secret(settings.callback_secret)


def callback_urls(settings: Settings, base: str) -> dict[str, str]:
    """The callback URLs of a service at ``base`` (``http://host:port``), as ``channels.simulators.start_all``
    names them; they carry the callback secret: hand them to the simulators, never to a log."""
    secret = callback_secret(settings)
    return {
        "aliyun": f"{base}/callbacks/aliyun/{secret}/sms-report",
        "aliyun_reply": f"{base}/callbacks/aliyun/{secret}/sms-up",
        "tencent": f"{base}/callbacks/tencent/{secret}/sms-status",
        "tencent_reply": f"{base}/callbacks/tencent/{secret}/sms-reply",
        "wechat": f"{base}/callbacks/wechat",
    }


def _wechat_keys(settings: Settings) -> tuple[str, ...]:
    return tuple(part.split("=", 1)[0].strip() for part in settings.wechat_template_fields.split(",") if part.strip())


def _rate(per_s: float, quota: int) -> RateLimit:
    # burst of a tenth of a second's worth: a batch may start at once, never a second's worth early
    return RateLimit(requests_per_s=per_s, burst=max(1.0, per_s / 10), messages_per_day=quota or None)


def build_channels(settings: Settings, session: aiohttp.ClientSession, *, ends: ProviderEndpoints | None = None) -> list[Channel]:
    """The SMS adapters in ``sms_providers`` order, then WeChat and JPush; each with its own limiter
    (shared by every sender in this process)."""
    e = ends or endpoints(settings)
    template = settings.message_template
    timeout = settings.provider_timeout_s
    sms: list[Channel] = []
    for name in sms_providers(settings):
        if name == "aliyun":
            sms.append(AliyunSms(
                AliyunSmsConfig(
                    e.aliyun_key[0], e.aliyun_key[1], settings.sms_sign_name,
                    _sms_templates(template, e.aliyun_template_code, e.aliyun_compact),
                    base_url=e.aliyun_url, timeout_s=timeout, rate=_rate(settings.sms_rate_per_s, settings.sms_daily_quota),
                ),
                session,
            ))
        elif name == "tencent":
            sms.append(TencentSms(
                TencentSmsConfig(
                    e.tencent_key[0], e.tencent_key[1], e.tencent_sdk_app_id, settings.sms_sign_name,
                    {template: TencentTemplate(e.tencent_template_id, TENCENT_PARAMS),
                     **{f"{template}{sfx}": TencentTemplate(tid, slots)
                        for sfx, tid, slots in zip(COMPACT_SUFFIXES, e.tencent_compact, TENCENT_COMPACT_PARAMS, strict=False)}},
                    base_url=e.tencent_url, timeout_s=timeout, rate=_rate(settings.sms_rate_per_s, settings.sms_daily_quota),
                    report_wait_s=settings.tencent_report_wait_s,
                ),
                session,
            ))
        else:  # the settings validator lets no other name through
            raise ConfigurationError(f"POLICY_PUSH_SMS_PROVIDERS: unknown provider {name!r}")
    return [
        *sms,
        Wechat(
            WechatConfig(
                e.wechat_app[0], e.wechat_app[1], {template: WechatTemplate(e.wechat_template_id, _wechat_keys(settings))},
                base_url=e.wechat_url, timeout_s=timeout,
                rate=_rate(settings.wechat_rate_per_s, settings.wechat_daily_quota),
            ),
            session,
        ),
        JPush(
            JPushConfig(
                e.jpush_app[0], e.jpush_app[1], base_url=e.jpush_url, timeout_s=timeout,
                batch_single=settings.jpush_batch_single, rate=_rate(settings.app_rate_per_s, settings.app_daily_quota),
            ),
            session,
        ),
    ]  # fmt: skip


def build_router(settings: Settings, session: aiohttp.ClientSession, *, ends: ProviderEndpoints | None = None) -> Router:
    return Router(build_channels(settings, session, ends=ends))


def build_jpush_reports(settings: Settings, session: aiohttp.ClientSession, router: Router) -> JPushReports | None:
    """The JPush report client for the router's JPush adapter (same app key), or None without one."""
    if not router.has("app", JPush.name):
        return None
    channel = router.channel("app", JPush.name)
    assert isinstance(channel, JPush)
    url = settings.jpush_report_url or (
        endpoints(settings).jpush_url if settings.provider_mode == "simulators" else "https://report.jpush.cn"
    )
    return JPushReports(channel.config, session, report_url=url)
