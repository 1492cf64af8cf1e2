"""What people sent back (SMS replies, WeChat follows, unfollows and messages), for staff to read.

Opt-outs among them already took effect (``sending.inbound``); the rest, a reply such as "不要退订" or a
question, waits here for a person. The sender is masked; the text is shown as written.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from policy_push.statuses import InboundKind
from policy_push.storage import inbound as inbound_store

from ..bodies import json_response
from ..keys import cipher_key
from ..params import MAX_PAGE_SIZE, QueryParam, enum_param, int_param, parse_query
from ._common import transaction

__all__ = ["INBOUND_PARAMS", "INBOUND_SCHEMAS", "list_inbound"]


class InboundMessageOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    provider: str = Field(description="aliyun_sms, tencent_sms or wechat.")
    channel: str = Field(description="sms or wechat.")
    kind: str = Field(description="opt_out (took effect), message, follow, unfollow (took effect) or subscription.")
    sender: str = Field(description="The phone number or openid, masked.")
    text: str = Field(description="What was written (subscription events: template:accept|reject, …).")
    profiles: int = Field(description="Profiles an opt-out reached (0: the sender matches no profile).")
    sent_at: str | None = Field(description="When the person sent it, as the provider says (ISO 8601).")
    received_at: str = Field(description="When it reached us (ISO 8601).")


class InboundPage(BaseModel):
    items: list[InboundMessageOut]
    total: int
    limit: int
    offset: int


INBOUND_SCHEMAS: dict[str, type[BaseModel]] = {m.__name__: m for m in (InboundMessageOut, InboundPage)}
INBOUND_PARAMS: tuple[QueryParam, ...] = (
    enum_param("kind", "Only messages of this kind.", [k.value for k in InboundKind]),
    int_param("limit", f"Page size, 1-{MAX_PAGE_SIZE}.", minimum=1, maximum=MAX_PAGE_SIZE, default=50),
    int_param("offset", "Number of items to skip.", minimum=0, default=0),
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_inbound(request: web.Request) -> web.Response:
    q = parse_query(request, INBOUND_PARAMS)
    async with transaction(request) as session:
        items, total = await inbound_store.listed(
            session, request.app[cipher_key], kind=InboundKind(q["kind"]) if q["kind"] else None,
            limit=q["limit"], offset=q["offset"],
        )  # fmt: skip
    out = [{**i, "sent_at": _iso(i["sent_at"]), "received_at": _iso(i["received_at"])} for i in items]
    return json_response({"items": out, "total": total, "limit": q["limit"], "offset": q["offset"]})
