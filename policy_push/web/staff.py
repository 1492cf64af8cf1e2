"""Who the acting staff member is.  The one place intake's views ask it, so that staff accounts
(the staff-console issue) replace the bearer token + ``X-Staff-Member`` header here alone."""

from __future__ import annotations

from aiohttp import web

from .views.campaigns import STAFF_HEADER, staff_member

__all__ = ["STAFF_HEADER", "acting_staff"]


def acting_staff(request: web.Request) -> str:
    """The staff member behind this request (the auth middleware has checked the token);
    422 when the ``X-Staff-Member`` header is missing or malformed."""
    return staff_member(request)
