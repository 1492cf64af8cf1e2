"""Shapes of the API's responses, as pydantic models: the OpenAPI document is generated from
them, and the tests validate real responses against that document.

Request bodies are the domain records themselves (:mod:`policy_push.domain`), so what the API
documents is exactly what it validates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policy_push.domain import EnterpriseProfile, Policy, ResidentProfile

__all__ = ["SCHEMA_MODELS", "RequestModel", "ResponseModel"]


class RequestModel(BaseModel):
    """A request body: a field the API does not know is refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """A response body: fields beyond those documented may be added without breaking clients."""

    model_config = ConfigDict(extra="allow")


_Out = ResponseModel


class ErrorItem(_Out):
    loc: list[str | int] = Field(description="Where the problem is: body, query, path or header, then the field path.")
    msg: str = Field(description="What is wrong, in words a person can act on.")
    field: str | None = Field(None, description="The field path joined with dots, e.g. `contact.phone`.")
    record: str | None = Field(None, description="The id of the record the error belongs to, when known.")
    request_id: str | None = Field(None, description="Quote this when reporting an internal error.")


class ErrorBody(_Out):
    errors: list[ErrorItem]


class WriteResult(_Out):
    id: str
    outcome: Literal["created", "updated", "unchanged"]
    version: int | None = Field(None, description="The policy version now current (policies only).")


class PolicyEnvelope(_Out):
    policy: Policy = Field(description="The record as stored, in the formats.md shape (valid input for PUT).")
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    is_open: bool = Field(description="No deadline, or `apply_until` not yet passed today (Asia/Shanghai).")


class PolicyPage(_Out):
    items: list[PolicyEnvelope]
    total: int
    limit: int
    offset: int


class PolicyVersionOut(_Out):
    version: int
    content_hash: str
    actor: str
    created_at: dt.datetime
    policy: Policy


class PolicyVersions(_Out):
    id: str
    versions: list[PolicyVersionOut] = Field(description="Newest first; the first is the current version.")


class EnterpriseEnvelope(_Out):
    enterprise: EnterpriseProfile = Field(description="The whole record, personal data included (token holders only).")


class ResidentEnvelope(_Out):
    resident: ResidentProfile = Field(description="The whole record, personal data included (token holders only).")


class MaskedProfilePage(_Out):
    items: list[dict[str, Any]] = Field(
        description="Profiles in the formats.md shape with phone, openids, app ids and ID numbers masked "
        "(e.g. `138****5678`); fetch one profile by id to see it whole."
    )
    total: int
    limit: int
    offset: int


class RejectedLineOut(_Out):
    line: int = Field(description="1-based line number in the uploaded file.")
    id: str | None
    errors: list[ErrorItem]


class ImportReportOut(_Out):
    kind: Literal["policy", "enterprise", "resident"]
    total: int = Field(description="Non-blank lines read.")
    created: int
    updated: int
    unchanged: int
    rejected: int
    phone_source: str | None = Field(
        description="The official register the import named for its phones (`?phone_source=`); null: the phones "
        "are unproven and never pushed to until their holders prove them by SMS code."
    )
    errors: list[RejectedLineOut] = Field(description="One entry per rejected line; those lines changed nothing.")


class Health(_Out):
    status: Literal["ok", "unavailable"]
    database: dict[str, Any] = Field(description="`ok`, the dialect, and whether the schema is current.")
    counts: dict[str, Any] = Field(
        default_factory=dict,
        description="Stored policies, enterprises and residents; `deliveries`: rows per channel and status.",
    )
    match_index: dict[str, Any] | None = Field(
        None, description="The match index: `ready`, `failed`, profiles per audience, policies, build progress, "
        "the last change number applied.",
    )
    ticks: dict[str, Any] | None = Field(
        None, description="This process's ticks: per tick `runs`, `failures`, `last_run`, `last_duration_s`, "
        "`last_error` (the error's type); `leader` when it holds a lead; `leads`: each lead it competes for "
        "(`send`: settle, report pulls, closing; `serve`: drafting, intake) and whether it holds it.",
    )
    dispatch: dict[str, Any] | None = Field(
        None, description="Present when this process sends: rows claimed and accepted, leases lost, calls fenced, "
        "heartbeats, rows in flight.",
    )
    pii_key: dict[str, Any] | None = Field(
        None, description="The configured PII key's `fingerprint`, whether it `matches_data` (the key the stored data is "
        "under), and keys a rotation is still `rotating_from`.",
    )


class OpenApiDocument(_Out):
    openapi: str


class Probe(_Out):
    status: Literal["ok", "unavailable"]
    problems: list[str] = Field(default_factory=list, description="Why the process is not ready (readiness only).")


#: every named schema the routes table may refer to
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        Policy,
        EnterpriseProfile,
        ResidentProfile,
        ErrorBody,
        WriteResult,
        PolicyEnvelope,
        PolicyPage,
        PolicyVersions,
        EnterpriseEnvelope,
        ResidentEnvelope,
        MaskedProfilePage,
        ImportReportOut,
        Health,
        OpenApiDocument,
        Probe,
    )
}
