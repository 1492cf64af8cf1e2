"""Pins the public surface of ``channels``: nothing leaks in or drops out unnoticed."""

from __future__ import annotations

import channels

EXPECTED = [
    "ALIYUN_CODES", "ALIYUN_RECEIPT_ACK", "AliyunSms", "AliyunSmsConfig", "Answer", "AppLayout", "AuthError", "CHINA_TZ",
    "Channel", "ChannelError", "DailyQuota", "FailoverPolicy", "Inquiry", "InvalidMessageError", "JPUSH_CODES", "JPush",
    "JPushConfig", "Limiter", "MockChannel", "Notification", "OutboundMessage", "Outcome", "PermanentError",
    "ProtocolError", "ProviderServerError", "ProviderSwitch", "ProviderTimeout", "ProviderUnavailable",
    "QuotaExhaustedError", "RateLimit", "Receipt", "RenderedSms", "RetryPolicy", "RetryableError", "Router",
    "SendDetail", "SendResult", "SmsLayout", "TENCENT_CODES", "TencentSms", "TencentSmsConfig", "TencentTemplate",
    "ThrottledError", "TokenBucket", "WECHAT_CODES", "Wechat", "WechatConfig", "WechatLayout", "WechatTemplate",
    "mask_recipient", "parse_aliyun_sms_report", "parse_wechat_event", "provider_errors", "render_app", "render_sms",
    "render_wechat", "seconds_to_midnight", "sms_length", "sms_segments", "verify_wechat_signature",
]  # fmt: skip


def test_all_is_sorted_and_pinned() -> None:
    assert channels.__all__ == sorted(channels.__all__)
    assert channels.__all__ == sorted(EXPECTED)


def test_every_exported_name_exists_and_every_public_name_is_exported() -> None:
    submodules = {
        "aliyun_sms", "base", "errors", "jpush", "masking", "mock", "outcome", "query", "rate_limit", "receipts", "render", "retry",
        "router", "signing", "simulators", "tencent_sms", "wechat",
    }  # fmt: skip
    assert all(hasattr(channels, name) for name in channels.__all__)
    public = {n for n in vars(channels) if not n.startswith("_")} - submodules
    assert public == set(channels.__all__)


def test_masking() -> None:
    assert channels.mask_recipient("13800000000") == "138****0000"
    assert channels.mask_recipient("+8613800000000") == "138****0000"
    assert channels.mask_recipient("o6_bmjrPTlm6_2sgVt7hMZOPfL2M") == "o6_****L2M"
