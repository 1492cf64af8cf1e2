"""Every error policy_push raises on purpose, in one tree.

Each carries one line (``msg``) that names what is wrong and what to do, and where (``loc``, e.g.
``["body", "profile_ids"]``), so the web API, the CLI and the import report can show it as it is.
No class knows about HTTP: ``policy_push.web.middlewares`` holds the one table from error class to
status, and the CLI maps a few of them to exit codes::

    PolicyPushError
      + ConfigurationError          the service cannot start as configured (names the setting)
  |   + PiiKeyMismatch          the PII key is not the one the data is encrypted with (fingerprints)
      + InvalidInput                the input is wrong as given (a field, a query parameter)
      |   + RecordInvalid           a record failed validation: one FieldError per field
      + NotFound                    no such record (policy, profile, campaign, message link)
      + Conflict                    the request contradicts what is stored
      |   + AlreadyExists           create of an id that is taken
      |   + RecordConflict          a value collides with another record (an ID number registered twice)
      |   + WrongState              the record's state does not allow this (a sent campaign, a changed policy)
      + NotAllowed                  this person may not do this
      |   + SelfApproval            the approver prepared the campaign (four eyes)
      |   + NotAuthenticated        no credentials (the web layer)
      + RequestRefused              the request itself cannot be read (the web layer)
      |   + PayloadTooLarge         a body over the limit
      |   + UnsupportedMediaType    a body of the wrong type
      + TooManyRequests             a rate limit was reached (``retry_after_s`` says when to try again)
      + StorageError                the database is not in a state this code can use
      |   + SchemaOutOfDate         the schema is older than the code (run `policy-push db upgrade`)
      |       + SchemaAhead         the schema is newer than the code
      + PiiDecryptError             a stored ciphertext does not decrypt under this key
      + MatchIndexUnavailable       the match index failed to build or load

Messages never quote a personal value (phone, ID number, openid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExists",
    "ConfigurationError",
    "Conflict",
    "FieldError",
    "HeldByAnotherShard",
    "InvalidInput",
    "MatchIndexUnavailable",
    "NotAllowed",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PiiDecryptError",
    "PiiKeyMismatch",
    "PolicyPushError",
    "RecordConflict",
    "RecordInvalid",
    "RequestRefused",
    "RequestTimeout",
    "SchemaAhead",
    "SchemaOutOfDate",
    "SelfApproval",
    "ShardUnavailable",
    "StorageError",
    "TooManyRequests",
    "UnsupportedMediaType",
    "WrongState",
]

Loc = list[str | int]


class PolicyPushError(Exception):
    """Base of the tree. ``extra`` holds more fields for the JSON error (``record``, ``missing`` …)."""

    def __init__(self, msg: str, *, loc: Loc | None = None, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc: Loc = list(loc or [])
        self.extra = extra

    def as_errors(self) -> list[dict[str, Any]]:
        """The ``errors`` list of the JSON error shape."""
        return [{"loc": self.loc, "msg": self.msg, **self.extra}]


class ConfigurationError(PolicyPushError):
    """The service cannot start as configured; the message says which setting to fix."""


class InvalidInput(PolicyPushError):
    """The input is wrong as given: a field, a parameter, a list too long."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field of a record and what is wrong with it."""

    loc: tuple[str | int, ...]
    msg: str

    @property
    def field(self) -> str:
        """Dotted path such as ``contact.phone`` or ``criteria.all.0.op``."""
        return ".".join(str(p) for p in self.loc) or "(record)"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "field": self.field, "msg": self.msg}


class RecordInvalid(InvalidInput, ValueError):
    """A record failed validation; ``errors`` names each field and reason (a ValueError too, so
    pydantic validators may raise it)."""

    def __init__(self, errors: Sequence[FieldError], record_id: str | None = None) -> None:
        self.errors = list(errors)
        self.record_id = record_id
        super().__init__("; ".join(f"{e.field}: {e.msg}" for e in self.errors))

    def as_errors(self) -> list[dict[str, Any]]:
        extra = {} if self.record_id is None else {"record": self.record_id}
        return [{**e.as_dict(), **extra} for e in self.errors]


class NotFound(PolicyPushError):
    """No such record; ``what`` and ``ident`` name it (the id is cut to 80 characters)."""

    @classmethod
    def of(cls, what: str, ident: str, *, loc: Loc | None = None) -> NotFound:
        return cls(f"no {what} {ident[:80]!r}", loc=loc or ["path", "id"])


class Conflict(PolicyPushError):
    """The request contradicts what is stored."""


class AlreadyExists(Conflict):
    """``create`` was asked for an id that is already stored."""

    def __init__(self, entity_type: str, entity_id: str, *, hint: str = "") -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        msg = f"{entity_type} {entity_id!r} already exists" + (f"; {hint}" if hint else "")
        super().__init__(msg, loc=["body", "id"], record=entity_id)


class RecordConflict(Conflict):
    """A value of the record collides with stored data or another record of the same batch, e.g. an
    ID number already registered to another resident. ``field`` names what collides (never its value)."""

    def __init__(self, entity_type: str, entity_id: str, field: str, reason: str) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.field = field
        self.reason = reason
        super().__init__(
            f"{entity_type} {entity_id!r}: {field} {reason}",
            loc=["body", *field.split(".")], field=field, record=entity_id,
        )  # fmt: skip


class WrongState(Conflict):
    """``what`` ``record`` is in a state (``state``) that does not allow ``action``."""

    def __init__(
        self, record: str, state: str, action: str, *, what: str = "campaign", loc: Loc | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{what} {record} is {state}; cannot {action}", loc=loc or ["path", "id"], state=state, **extra)


class NotAllowed(PolicyPushError):
    """This person may not do this (a wrong token, four eyes)."""


class SelfApproval(NotAllowed):
    def __init__(self, campaign_id: str, staff: str) -> None:
        super().__init__(
            f"campaign {campaign_id} was prepared by this same account ({staff}); another staff member must approve it",
            loc=["path", "id"],
        )


class NotAuthenticated(NotAllowed):
    """No credentials were given (the web layer answers 401 with ``WWW-Authenticate``)."""


class RequestRefused(PolicyPushError):
    """The request cannot be read as sent (the web layer)."""


class PayloadTooLarge(RequestRefused):
    pass


class UnsupportedMediaType(RequestRefused):
    pass


class RequestTimeout(RequestRefused):
    """The client sent its body too slowly (HTTP 408)."""


class TooManyRequests(RequestRefused):
    """Too many attempts from one client or for one phone in a short time (HTTP 429): guessing link codes,
    asking for sign-in codes.  ``retry_after_s`` (in the JSON error too) says when to try again."""

    def __init__(self, msg: str, *, loc: Loc | None = None, retry_after_s: int = 60) -> None:
        super().__init__(msg, loc=loc, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class StorageError(PolicyPushError):
    """The database is not in a state this code can use."""


class SchemaOutOfDate(StorageError):
    """The database schema is not the one this code was written for."""

    def __init__(self, current: str | None, head: str, *, msg: str = "") -> None:
        self.current = current
        self.head = head
        upgrade = "policy-push db upgrade"
        if not msg and current is None:
            msg = f"the database has no policy_push schema yet; the code needs revision {head}: run `{upgrade}`"
        elif not msg:
            msg = f"the database is at revision {current}, the code needs {head}: run `{upgrade}`"
        super().__init__(msg)


class SchemaAhead(SchemaOutOfDate):
    """The database was migrated by a newer policy_push than this one."""

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            current, head,
            msg=f"the database is at revision {current}, which this version of policy_push does not know "
            f"(its newest is {head}); upgrade policy_push instead of the database",
        )  # fmt: skip


class PiiKeyMismatch(ConfigurationError):
    """The configured PII key is not the key the stored data is encrypted with (by its fingerprint):
    refused before anything is read or written, so data is never re-encrypted under a wrong key."""


class PiiDecryptError(PolicyPushError):
    """A stored ciphertext does not decrypt under this key and kind (wrong key, tampering, or a value
    copied from another column). The message never contains the ciphertext."""


class MatchIndexUnavailable(PolicyPushError):
    """The match index could not be built or loaded (the log says why); matching is unavailable."""


class ShardUnavailable(MatchIndexUnavailable):
    """A shard holding some of a policy's regions, or the profile asked about, did not answer: the
    answer would be partial or another shard's guess, so there is none (``shard`` names it; ``policy-push shards list`` shows where it should be)."""

    @classmethod
    def of(cls, shard: str, url: str, why: str, *, instead: str = "a partial match list is never given") -> ShardUnavailable:
        return cls(f"shard {shard!r} ({url}) did not answer ({why}); {instead}, "
                   "try again when it is up", loc=["shard"], shard=shard)  # fmt: skip


class HeldByAnotherShard(Conflict):
    """A profile's policies were asked of a shard node that does not hold the profile's region: ask the
    node of the shard that does (``policy-push shards list``)."""
