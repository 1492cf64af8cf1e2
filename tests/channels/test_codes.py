"""Every provider code in the protocol document's tables is mapped, and the key ones map as documented."""

from __future__ import annotations

import pytest

from channels import ALIYUN_CODES, JPUSH_CODES, TENCENT_CODES, WECHAT_CODES, Outcome

# Copied from the protocol document's tables (sections 1.1, 1.3, 1.5, 2.6, 3.1 and 4).
DOC_WECHAT = [
    "-1", "40001", "40002", "40013", "40125", "40164", "40243", "41002", "41004", "45009", "89503",
    "40014", "42001", "40003", "40037", "40036", "43004", "47003", "43116", "43101", "43107", "43108", "45168",
]  # fmt: skip
DOC_ALIYUN = [
    "OK", "isv.BUSINESS_LIMIT_CONTROL", "isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
    "isv.PARAM_NOT_SUPPORT_URL", "isv.AMOUNT_NOT_ENOUGH", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL", "isv.SIGN_STATE_ILLEGAL", "isv.EXTEND_CODE_ERROR",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "isv.DENY_IP_RANGE", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL",
    "isv.SMS_CONTENT_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.OUT_OF_SERVICE", "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.PRODUCT_UNSUBSCRIBE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL", "isp.RAM_PERMISSION_DENY",
    "isp.SYSTEM_ERROR", "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "InvalidTimeStamp.Format", "InvalidTimeStamp.Expired", "SignatureNonceUsed", "Missing{ParameterName}",
    "InvalidSignatureMethod", "Throttling.User", "InvalidApi.NotFound",
]  # fmt: skip
DOC_TENCENT = [
    "Ok", "AuthFailure.SignatureFailure", "AuthFailure.SignatureExpire", "AuthFailure.SecretIdNotFound",
    "AuthFailure.InvalidAuthorization", "InvalidParameter", "InvalidParameterValue", "MissingParameter",
    "LimitExceeded", "RequestLimitExceeded", "RequestLimitExceeded.IPLimitExceeded", "IpNotInWhitelist",
    "InternalError", "FailedOperation.SignatureIncorrectOrUnapproved", "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.PhoneNumberInBlacklist", "FailedOperation.ContainSensitiveWord",
    "InvalidParameterValue.IncorrectPhoneNumber", "InvalidParameterValue.ContentLengthLimit",
    "InvalidParameterValue.SdkAppIdNotExist", "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.PhoneNumberDailyLimit", "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit", "FailedOperation.InsufficientBalanceInSmsPackage",
    "InvalidParameterValue.TemplateParameterFormatError", "InvalidParameterValue.TemplateParameterLengthLimit",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
]  # fmt: skip
DOC_JPUSH = ["1000", "1001", "1002", "1003", "1004", "1005", "1008", "1011", "1020", "1030",
             "2001", "2002", "2003", "2004", "2005", "2008"]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "codes"),
    [(WECHAT_CODES, DOC_WECHAT), (ALIYUN_CODES, DOC_ALIYUN), (TENCENT_CODES, DOC_TENCENT), (JPUSH_CODES, DOC_JPUSH)],
    ids=["wechat", "aliyun", "tencent", "jpush"],
)
def test_every_documented_code_is_mapped(table: dict[str, Outcome], codes: list[str]) -> None:
    missing = [c for c in codes if c not in table]
    assert not missing
    assert all(isinstance(v, Outcome) for v in table.values())


@pytest.mark.parametrize(
    ("table", "code", "outcome"),
    [
        (WECHAT_CODES, "0", Outcome.ACCEPTED),
        (WECHAT_CODES, "43004", Outcome.UNREACHABLE),
        (WECHAT_CODES, "40003", Outcome.UNREACHABLE),
        (WECHAT_CODES, "43101", Outcome.UNREACHABLE),
        (WECHAT_CODES, "45009", Outcome.RETRYABLE),
        (WECHAT_CODES, "-1", Outcome.RETRYABLE),
        (WECHAT_CODES, "47003", Outcome.PERMANENT),
        (ALIYUN_CODES, "isp.SYSTEM_ERROR", Outcome.RETRYABLE),
        (ALIYUN_CODES, "isv.MOBILE_NUMBER_ILLEGAL", Outcome.UNREACHABLE),
        (ALIYUN_CODES, "isv.SMS_TEMPLATE_ILLEGAL", Outcome.PERMANENT),
        (ALIYUN_CODES, "SignatureDoesNotMatch", Outcome.PERMANENT),
        (TENCENT_CODES, "FailedOperation.PhoneNumberInBlacklist", Outcome.UNREACHABLE),
        (TENCENT_CODES, "InternalError", Outcome.RETRYABLE),
        (JPUSH_CODES, "1011", Outcome.UNREACHABLE),
        (JPUSH_CODES, "2001", Outcome.RETRYABLE),
        (JPUSH_CODES, "1004", Outcome.PERMANENT),
    ],
)
def test_documented_meanings(table: dict[str, Outcome], code: str, outcome: Outcome) -> None:
    assert table[code] is outcome
