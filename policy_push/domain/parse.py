"""The one door for outside data: a JSON object in, a valid record or a list of field errors out."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from policy_push.errors import FieldError, RecordInvalid

from .context import ValidationContext
from .criteria import validate_criteria
from .policy import Policy
from .profiles import EnterpriseProfile, ResidentProfile

__all__ = ["RECORD_TYPES", "RecordKind", "parse_enterprise", "parse_policy", "parse_record", "parse_resident"]

RecordKind = Literal["policy", "enterprise", "resident"]
RECORD_TYPES: dict[str, type[BaseModel]] = {
    "policy": Policy,
    "enterprise": EnterpriseProfile,
    "resident": ResidentProfile,
}
M = TypeVar("M", bound=BaseModel)

# pydantic's messages for the common error types, said the way formats.md asks
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "literal_error": None,  # pydantic's own text names the allowed values
}


def _convert(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        msg = _MESSAGES.get(err["type"]) or err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        loc = tuple(err["loc"])
        out.append(FieldError(loc, msg))
    return out


def _record_id(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return data["id"][:64]
    return None


def _validate(model: type[M], data: Any, ctx: ValidationContext) -> M:
    if not isinstance(data, dict):
        raise RecordInvalid([FieldError((), f"expected a JSON object, got {type(data).__name__}")])
    try:
        return model.model_validate(data, context=ctx)
    except ValidationError as exc:
        raise RecordInvalid(_convert(exc), _record_id(data)) from None


def parse_policy(data: Any, ctx: ValidationContext | None = None) -> Policy:
    ctx = ctx or ValidationContext()
    errors: list[FieldError] = []
    policy: Policy | None = None
    try:
        policy = _validate(Policy, data, ctx)
    except RecordInvalid as exc:
        errors.extend(exc.errors)
    # the criteria tree is checked even when other fields failed, so one pass reports everything
    audience = data.get("audience") if isinstance(data, dict) else None
    criteria = data.get("criteria") if isinstance(data, dict) else None
    if criteria is not None and audience in ("enterprise", "resident") and not ctx.trusted:
        errors = [e for e in errors if e.loc[:1] != ("criteria",)]
        errors.extend(validate_criteria(criteria, audience, ctx.ref, max_depth=ctx.max_criteria_depth))
    if errors:
        raise RecordInvalid(errors, _record_id(data))
    assert policy is not None
    return policy


def parse_enterprise(data: Any, ctx: ValidationContext | None = None) -> EnterpriseProfile:
    return _validate(EnterpriseProfile, data, ctx or ValidationContext())


def parse_resident(data: Any, ctx: ValidationContext | None = None) -> ResidentProfile:
    return _validate(ResidentProfile, data, ctx or ValidationContext())


def parse_record(kind: RecordKind, data: Any, ctx: ValidationContext | None = None) -> BaseModel:
    """Validate ``data`` as a record of ``kind``; raises :class:`RecordInvalid`."""
    if kind == "policy":
        return parse_policy(data, ctx)
    if kind == "enterprise":
        return parse_enterprise(data, ctx)
    if kind == "resident":
        return parse_resident(data, ctx)
    raise ValueError(f"unknown record kind {kind!r}")
