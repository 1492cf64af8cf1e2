"""Intake's errors, in the application's one error tree (:mod:`policy_push.errors`)."""

from __future__ import annotations

from policy_push.errors import Conflict, InvalidInput, NotFound, PolicyPushError

__all__ = ["DecisionInvalid", "ItemNotFound", "ItemNotPending", "SourceError", "SuggestionNotFound", "SuggestionsUndecided"]


class ItemNotFound(NotFound):
    """No review item with this id."""


class ItemNotPending(Conflict):
    """The item was already confirmed or rejected."""


class DecisionInvalid(InvalidInput):
    """A reviewer's decision edits a value into something the validators refuse."""


class SuggestionNotFound(NotFound):
    """A decision names a suggestion the item does not hold (404, like any unknown record)."""


class SuggestionsUndecided(Conflict):
    """The item holds suggestions the decisions leave open: the request is well formed, but does not
    match the item as it stands (409; which suggestions there are is the item's state, not the body's shape)."""


class SourceError(PolicyPushError):
    """A configured source could not be read (bad address, unreadable feed); logged per source,
    never stops the other sources."""
