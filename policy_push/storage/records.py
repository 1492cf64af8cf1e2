"""What the repositories return: plain dataclasses, detached from any session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

from policy_push.domain import Policy

__all__ = ["AuditEntry", "Outcome", "PolicyVersion", "StoredPolicy", "UpsertResult", "detached"]

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    id: str
    outcome: Outcome
    #: the policy version now current; None for profiles, which keep no versions
    version: int | None


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy: Policy
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    content_hash: str
    actor: str
    created_at: dt.datetime
    policy: Policy


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    detail: dict[str, Any] | None


_R = TypeVar("_R")


def detached(cls: type[_R], row: object, **values: Any) -> _R:
    """A record ``cls`` from an ORM row: each field from the row's attribute of the same name, unless given."""
    return cls(**{f.name: values[f.name] if f.name in values else getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]
