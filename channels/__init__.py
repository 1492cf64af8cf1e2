"""Sending notifications: one adapter per provider protocol behind one small interface.

``Channel.send(batch) -> list[SendResult]`` is the interface (``Channel.query`` asks about an unknown
outcome); ``Router`` is the one place that chooses providers, fails over and asks them;
``RetryPolicy`` says when a message deserves another attempt; ``render`` turns a ``Notification`` into
each channel's message; ``receipts`` parses what providers push back, ``replies`` the SMS up-messages
(and decides what is an opt-out), ``wechat_events`` and ``wechat_crypto`` what a WeChat account's server
URL receives, ``jpush_reports`` pulls JPush delivery reports, ``callback_auth`` helps guard the unsigned
callbacks. The HTTP adapters share ``http_channel.HttpChannel`` (session, limiter, timeout, one JSON POST)
and read bodies through ``json_body.load_json``. Simulators live in ``channels.simulators``.
"""

from channels.aliyun_sms import ALIYUN_CODES, AliyunSms, AliyunSmsConfig, SendDetail
from channels.base import Channel, OutboundMessage, Outcome, SendResult
from channels.callback_auth import ReplayGuard, SourceAllowList, new_callback_secret, secret_path_matches
from channels.errors import (
    AuthError,
    ChannelError,
    InvalidMessageError,
    PermanentError,
    ProtocolError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhaustedError,
    RetryableError,
    ThrottledError,
    provider_errors,
)
from channels.jpush import JPUSH_CODES, JPush, JPushConfig
from channels.jpush_reports import (
    DeviceStatus,
    JPushReports,
    ReceivedCount,
    parse_jpush_received,
    parse_jpush_status,
)
from channels.masking import mask_recipient
from channels.mock import MockChannel
from channels.query import Answer, Inquiry
from channels.rate_limit import CHINA_TZ, DailyQuota, Limiter, RateLimit, TokenBucket, seconds_to_midnight
from channels.receipts import (
    ALIYUN_RECEIPT_ACK,
    Receipt,
    delivery_ids_of_context,
    parse_aliyun_sms_report,
    parse_tencent_pulled_status,
    parse_tencent_status_callback,
    parse_wechat_event,
    session_context_for,
    verify_wechat_signature,
)
from channels.render import (
    AppLayout,
    Notification,
    RenderedSms,
    SmsLayout,
    WechatLayout,
    render_app,
    render_sms,
    render_wechat,
    sms_length,
    sms_segments,
)
from channels.replies import (
    ALIYUN_SMS_UP_ACK,
    OPT_OUT_WORDS,
    TENCENT_CALLBACK_ACK,
    Reply,
    ReplyKind,
    classify_reply,
    parse_aliyun_sms_up,
    parse_tencent_reply,
)
from channels.retry import RetryPolicy
from channels.router import FailoverPolicy, ProviderSwitch, Router
from channels.tencent_sms import TENCENT_CODES, TencentSms, TencentSmsConfig, TencentTemplate
from channels.wechat import WECHAT_CODES, Wechat, WechatConfig, WechatTemplate
from channels.wechat_crypto import WechatCrypto, WechatCryptoError, wechat_msg_signature
from channels.wechat_events import (
    WECHAT_PUSH_ACK,
    SubscriptionChange,
    WechatEvent,
    WechatEventKind,
    open_wechat_push,
    parse_wechat_push,
)

__all__ = [  # noqa: RUF022 - plain sorted(), which tests/channels/test_exports.py pins
    "ALIYUN_CODES",
    "ALIYUN_RECEIPT_ACK",
    "ALIYUN_SMS_UP_ACK",
    "AliyunSms",
    "AliyunSmsConfig",
    "Answer",
    "AppLayout",
    "AuthError",
    "CHINA_TZ",
    "Channel",
    "ChannelError",
    "DailyQuota",
    "DeviceStatus",
    "FailoverPolicy",
    "Inquiry",
    "InvalidMessageError",
    "JPUSH_CODES",
    "JPush",
    "JPushConfig",
    "JPushReports",
    "Limiter",
    "MockChannel",
    "Notification",
    "OPT_OUT_WORDS",
    "OutboundMessage",
    "Outcome",
    "PermanentError",
    "ProtocolError",
    "ProviderServerError",
    "ProviderSwitch",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QuotaExhaustedError",
    "RateLimit",
    "Receipt",
    "ReceivedCount",
    "RenderedSms",
    "ReplayGuard",
    "Reply",
    "ReplyKind",
    "RetryPolicy",
    "RetryableError",
    "Router",
    "SendDetail",
    "SendResult",
    "SmsLayout",
    "SourceAllowList",
    "SubscriptionChange",
    "TENCENT_CALLBACK_ACK",
    "TENCENT_CODES",
    "TencentSms",
    "TencentSmsConfig",
    "TencentTemplate",
    "ThrottledError",
    "TokenBucket",
    "WECHAT_CODES",
    "WECHAT_PUSH_ACK",
    "Wechat",
    "WechatConfig",
    "WechatCrypto",
    "WechatCryptoError",
    "WechatEvent",
    "WechatEventKind",
    "WechatLayout",
    "WechatTemplate",
    "classify_reply",
    "delivery_ids_of_context",
    "mask_recipient",
    "new_callback_secret",
    "open_wechat_push",
    "parse_aliyun_sms_report",
    "parse_aliyun_sms_up",
    "parse_jpush_received",
    "parse_jpush_status",
    "parse_tencent_pulled_status",
    "parse_tencent_reply",
    "parse_tencent_status_callback",
    "parse_wechat_event",
    "parse_wechat_push",
    "provider_errors",
    "render_app",
    "render_sms",
    "render_wechat",
    "seconds_to_midnight",
    "secret_path_matches",
    "session_context_for",
    "sms_length",
    "sms_segments",
    "verify_wechat_signature",
    "wechat_msg_signature",
]
