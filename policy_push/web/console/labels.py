"""Chinese labels of states, statuses and channels, and names as staff see them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.config import Settings
from policy_push.staff import StaffDirectory

__all__ = ["CHANNEL_LABELS", "STATE_LABELS", "STATUS_LABELS", "mask_name", "names_of", "wechat_labels"]

CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "app": "App"}
STATE_LABELS = {"draft": "草稿", "approved": "已审批", "scheduled": "已排期", "sending": "发送中", "done": "已完成",
                "cancelled": "已取消"}  # fmt: skip
STATUS_LABELS = {
    "created": "待发送", "sending": "发送中", "sent": "已发出（待回执）", "delivered": "已送达",
    "permanent_failure": "失败（号码或用户无效）", "unreachable": "无法触达", "technical_failure": "技术故障",
    "cancelled": "已取消",
}  # fmt: skip
#: what each notification field is called on a WeChat template card
_WECHAT_FIELD_LABELS = {"title": "政策名称", "deadline": "申报截止", "benefit": "支持标准", "reason": "推送理由",
                        "summary": "政策摘要"}  # fmt: skip


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
