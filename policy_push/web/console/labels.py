"""Chinese labels of states, statuses and channels, and names as staff see them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.config import Settings
from policy_push.staff import StaffDirectory

__all__ = ["CHANNEL_LABELS", "STATE_LABELS", "STATUS_LABELS", "failure_reason", "mask_name", "names_of", "wechat_labels"]

CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "app": "App"}
STATE_LABELS = {"drafting": "生成中", "draft": "草稿", "approved": "已审批", "scheduled": "已排期", "sending": "发送中", "done": "已完成",
                "cancelled": "已取消"}  # fmt: skip
STATUS_LABELS = {
    "created": "待发送", "sending": "发送中", "sent": "已发出（待回执）", "delivered": "已送达",
    "permanent_failure": "失败（号码或用户无效）", "unreachable": "无法触达", "technical_failure": "技术故障",
    "cancelled": "已取消",
}  # fmt: skip
#: what each notification field is called on a WeChat template card
_WECHAT_FIELD_LABELS = {"title": "政策名称", "deadline": "申报截止", "benefit": "支持标准", "reason": "推送理由",
                        "summary": "政策摘要"}  # fmt: skip


#: what the providers' codes mean, in the words an officer uses (codes from the providers' documentation)
_PROVIDER_CODES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "手机号码不正确", "isv.BUSINESS_LIMIT_CONTROL": "发送过于频繁，被运营商限流",
    "isv.DAY_LIMIT_CONTROL": "超过当日发送上限", "isv.MONTH_LIMIT_CONTROL": "超过当月发送上限",
    "isv.SMS_CONTENT_ILLEGAL": "短信内容不合规", "isv.SMS_TEMPLATE_ILLEGAL": "短信模板未通过审核",
    "isv.SMS_SIGNATURE_ILLEGAL": "短信签名不合规", "isv.SMS_SIGN_ILLEGAL": "短信签名不合规",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板参数缺失", "isv.PARAM_NOT_SUPPORT_URL": "短信变量中不允许出现链接",
    "40001": "微信接口凭证无效", "40003": "微信用户标识（openid）无效", "40014": "微信接口凭证无效",
    "42001": "微信接口凭证已过期", "43004": "用户未关注公众号", "43101": "用户拒收订阅消息",
    "43108": "用户未授权订阅消息", "45009": "超过微信接口调用上限", "47003": "模板参数不符合要求",
    "1011": "App 中不存在该设备（注册 ID 无效）", "1003": "App 推送参数错误",
}  # fmt: skip


def failure_reason(code: str | None, text: str | None) -> str:
    """A failure in Chinese: the meaning of the provider's code when known, else its own text."""
    if code and code in _PROVIDER_CODES:
        return _PROVIDER_CODES[code]
    return text or (f"服务商代码 {code}" if code else "未说明")


def wechat_labels(settings: Settings) -> dict[str, str]:
    """Template key (``thing1``) -> the label an officer understands (政策名称)."""
    out = {}
    for pair in settings.wechat_template_fields.split(","):
        if "=" in pair:
            key, field = (p.strip() for p in pair.split("=", 1))
            out[key] = _WECHAT_FIELD_LABELS.get(field, field)
    return out


def mask_name(name: str | None) -> str:
    """A person's name in a staff list: the family name and stars (张**)."""
    if not name:
        return "—"
    return name[0] + "*" * max(1, len(name) - 1)


async def names_of(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    """Account id -> login name (records keep ids; pages show names). Unknown ids show as themselves."""
    ids = {i for i in ids if i}
    found = await StaffDirectory(session).names(ids)
    return {i: found.get(i, i) for i in ids}
