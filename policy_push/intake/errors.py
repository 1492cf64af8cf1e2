"""Intake's errors, in the application's one error tree (:mod:`policy_push.errors`)."""

from __future__ import annotations

from policy_push.errors import Conflict, InvalidInput, NotFound, PolicyPushError

__all__ = ["DecisionInvalid", "ItemNotFound", "ItemNotPending", "SourceError"]


class ItemNotFound(NotFound):
    """No review item with this id."""


class ItemNotPending(Conflict):
    """The item was already confirmed or rejected."""


class DecisionInvalid(InvalidInput):
    """A reviewer's decision names an unknown suggestion, leaves one undecided, or edits a value
    into something the validators refuse."""


class SourceError(PolicyPushError):
    """A configured source could not be read (bad address, unreadable feed); logged per source,
    never stops the other sources."""
