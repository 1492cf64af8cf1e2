"""Application errors.  Each HTTP-facing class carries its status, so one middleware maps
them all (datasette's ``Base400`` habit).

    PolicyPushError
      + ConfigurationError        (refuse to start: missing key, bad setting)
      + HttpError                 (status on the class)
          + BadRequest 400
          + Unauthorized 401
          + Forbidden 403
          + NotFound 404
          + ConflictError 409
          + PayloadTooLarge 413
          + Unprocessable 422
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "ConfigurationError",
    "ConflictError",
    "Forbidden",
    "HttpError",
    "NotFound",
    "PayloadTooLarge",
    "PolicyPushError",
    "Unauthorized",
    "Unprocessable",
]


class PolicyPushError(Exception):
    pass


class ConfigurationError(PolicyPushError):
    """The service cannot start as configured; the message says which setting to fix."""


class HttpError(PolicyPushError):
    status: ClassVar[int] = 500

    def __init__(self, msg: str, *, loc: list[str | int] | None = None, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc = loc or []
        self.extra = extra

    def as_body(self) -> dict[str, Any]:
        return {"errors": [{"loc": self.loc, "msg": self.msg, **self.extra}]}


class BadRequest(HttpError):
    status = 400


class Unauthorized(HttpError):
    status = 401


class Forbidden(HttpError):
    status = 403


class NotFound(HttpError):
    status = 404


class ConflictError(HttpError):
    status = 409


class PayloadTooLarge(HttpError):
    status = 413


class Unprocessable(HttpError):
    status = 422
