"""Pins the public surface of ``channels``: nothing leaks in or drops out unnoticed."""

from __future__ import annotations

import channels

EXPECTED = [
    "ALIYUN_CODES", "ALIYUN_RECEIPT_ACK", "ALIYUN_SMS_UP_ACK", "AliyunSms", "AliyunSmsConfig", "Answer", "AppLayout",
    "AuthError", "CHINA_TZ", "Channel", "ChannelError", "DailyQuota", "DeviceStatus", "FailoverPolicy",
    "Inquiry", "InvalidMessageError", "JPUSH_CODES", "JPush", "JPushConfig", "JPushReports", "Limiter", "MockChannel",
    "Notification", "OPT_OUT_WORDS", "OutboundMessage", "Outcome", "PermanentError", "ProtocolError",
    "ProviderServerError", "ProviderSwitch", "ProviderTimeout", "ProviderUnavailable", "QuotaExhaustedError",
    "RateLimit", "Receipt", "ReceivedCount", "RenderedSms", "ReplayGuard", "Reply", "ReplyKind", "RetryPolicy",
    "RetryableError", "Router", "SendDetail", "SendResult", "SmsLayout", "SourceAllowList",
    "SubscriptionChange", "TENCENT_CALLBACK_ACK", "TENCENT_CODES", "TencentSms", "TencentSmsConfig",
    "TencentTemplate", "ThrottledError", "TokenBucket", "WECHAT_CODES", "WECHAT_PUSH_ACK", "Wechat",
    "WechatConfig", "WechatCrypto", "WechatCryptoError", "WechatEvent", "WechatEventKind", "WechatLayout",
    "WechatTemplate", "classify_reply", "delivery_ids_of_context", "mask_recipient", "new_callback_secret",
    "open_wechat_push", "parse_aliyun_sms_report", "parse_aliyun_sms_up", "parse_jpush_received",
    "parse_jpush_status", "parse_tencent_pulled_status", "parse_tencent_reply",
    "parse_tencent_status_callback", "parse_wechat_event", "parse_wechat_push", "provider_errors",
    "render_app", "render_sms", "render_wechat", "seconds_to_midnight", "secret_path_matches",
    "session_context_for", "sms_length", "sms_segments", "verify_wechat_signature", "wechat_msg_signature",
]  # fmt: skip


def test_all_is_sorted_and_pinned() -> None:
    assert channels.__all__ == sorted(channels.__all__)
    assert channels.__all__ == sorted(EXPECTED)


def test_every_exported_name_exists_and_every_public_name_is_exported() -> None:
    submodules = {
        "aliyun_sms", "base", "errors", "jpush", "masking", "mock", "rate_limit", "receipts", "render", "retry",
        "router", "signing", "simulators", "tencent_sms", "wechat", "callback_auth", "jpush_reports", "replies",
        "wechat_crypto", "wechat_events", "safe_xml", "outcome", "query", "http_channel", "json_body",
    }  # fmt: skip
    assert all(hasattr(channels, name) for name in channels.__all__)
    public = {n for n in vars(channels) if not n.startswith("_")} - submodules
    assert public == set(channels.__all__)


def test_masking() -> None:
    assert channels.mask_recipient("13800000000") == "138****0000"
    assert channels.mask_recipient("+8613800000000") == "138****0000"
    assert channels.mask_recipient("o6_bmjrPTlm6_2sgVt7hMZOPfL2M") == "o6_****L2M"
