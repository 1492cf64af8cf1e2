"""The four staff roles, in rising order: each role may do everything the ones below it may.

viewer reads (campaigns, policies, the audit log; personal data masked); editor prepares policies and
campaigns; approver approves them (never their own: four eyes compares account ids); admin manages
accounts and tokens and may reveal a masked value (audited)."""

from __future__ import annotations

import enum

__all__ = ["ROLE_LABELS", "Role"]


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def allows(self, needed: Role) -> bool:
        """May a holder of this role do what ``needed`` may?"""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, raw: str) -> Role:
        try:
            return cls(raw.strip().lower())
        except ValueError:
            raise ValueError(f"unknown role {raw[:40]!r}; one of: {', '.join(r.value for r in cls)}") from None


_ORDER = (Role.VIEWER, Role.EDITOR, Role.APPROVER, Role.ADMIN)

ROLE_LABELS = {Role.VIEWER: "查看", Role.EDITOR: "编辑", Role.APPROVER: "审批", Role.ADMIN: "管理员"}
