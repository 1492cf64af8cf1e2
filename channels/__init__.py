"""Sending notifications: one adapter per provider protocol behind one small interface.

``Channel.send(batch) -> list[SendResult]`` is the interface (``Channel.query`` asks about an unknown
outcome); ``Router`` is the one place that chooses providers, fails over and asks them;
``RetryPolicy`` says when a message deserves another attempt; ``render`` turns a ``Notification`` into each channel's
message; ``receipts`` parses what providers push back. Simulators live in ``channels.simulators``.
"""

from channels.aliyun_sms import ALIYUN_CODES, AliyunSms, AliyunSmsConfig, SendDetail
from channels.base import Channel, OutboundMessage, Outcome, SendResult
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
from channels.masking import mask_recipient
from channels.mock import MockChannel
from channels.query import Answer, Inquiry
from channels.rate_limit import CHINA_TZ, DailyQuota, Limiter, RateLimit, TokenBucket, seconds_to_midnight
from channels.receipts import (
    ALIYUN_RECEIPT_ACK,
    Receipt,
    parse_aliyun_sms_report,
    parse_wechat_event,
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
from channels.retry import RetryPolicy
from channels.router import FailoverPolicy, ProviderSwitch, Router
from channels.tencent_sms import TENCENT_CODES, TencentSms, TencentSmsConfig, TencentTemplate
from channels.wechat import WECHAT_CODES, Wechat, WechatConfig, WechatTemplate

__all__ = [  # noqa: RUF022 - plain sorted(), which tests/channels/test_exports.py pins
    "ALIYUN_CODES",
    "ALIYUN_RECEIPT_ACK",
    "AliyunSms",
    "AliyunSmsConfig",
    "Answer",
    "AppLayout",
    "AuthError",
    "CHINA_TZ",
    "Channel",
    "ChannelError",
    "DailyQuota",
    "FailoverPolicy",
    "Inquiry",
    "InvalidMessageError",
    "JPUSH_CODES",
    "JPush",
    "JPushConfig",
    "Limiter",
    "MockChannel",
    "Notification",
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
    "RenderedSms",
    "RetryPolicy",
    "RetryableError",
    "Router",
    "SendDetail",
    "SendResult",
    "SmsLayout",
    "TENCENT_CODES",
    "TencentSms",
    "TencentSmsConfig",
    "TencentTemplate",
    "ThrottledError",
    "TokenBucket",
    "WECHAT_CODES",
    "Wechat",
    "WechatConfig",
    "WechatLayout",
    "WechatTemplate",
    "mask_recipient",
    "parse_aliyun_sms_report",
    "parse_wechat_event",
    "provider_errors",
    "render_app",
    "render_sms",
    "render_wechat",
    "seconds_to_midnight",
    "sms_length",
    "sms_segments",
    "verify_wechat_signature",
]
