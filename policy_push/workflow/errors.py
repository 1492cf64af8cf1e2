"""Errors of the campaign workflow.  Each carries its HTTP status (see :mod:`policy_push.errors`),
so the web layer maps them without a table of its own::

    HttpError
      + CampaignNotFound   404  no such campaign (or policy)
      + WrongState         409  the campaign's state does not allow this; the message names it
      + SelfApproval       403  the approver prepared the campaign (four eyes, invariant 1)
      + BadWorkflowInput   422  unknown profile ids, a send time in the past, …
"""

from __future__ import annotations

from typing import Any

from policy_push.errors import ConflictError, Forbidden, NotFound, Unprocessable

__all__ = ["BadWorkflowInput", "CampaignNotFound", "SelfApproval", "WrongState"]


class CampaignNotFound(NotFound):
    def __init__(self, what: str, ident: str, *, loc: list[str | int] | None = None) -> None:
        super().__init__(f"no {what} {ident[:80]!r}", loc=loc or ["path", "id"])


class WrongState(ConflictError):
    def __init__(
        self, record: str, state: str, action: str, *, loc: list[str | int] | None = None, what: str = "campaign", **extra: Any
    ) -> None:
        super().__init__(f"{what} {record} is {state}; cannot {action}", loc=loc or ["path", "id"], state=state, **extra)


class SelfApproval(Forbidden):
    def __init__(self, campaign_id: str, staff: str) -> None:
        super().__init__(
            f"campaign {campaign_id} was prepared by {staff!r}; another staff member must approve it",
            loc=["header", "X-Staff-Member"],
        )


class BadWorkflowInput(Unprocessable):
    pass
