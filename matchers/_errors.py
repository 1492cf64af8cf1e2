"""Errors raised by the matching engine.

::

    MatcherError                 (base; catch this to catch everything below)
      + CriteriaError            (ValueError: a criteria tree the engine cannot evaluate)
      + NotFittedError           (the engine was used before ``fit`` / ``load``)
      + UnknownProfileError      (KeyError: no profile with that id in the index)
"""

from __future__ import annotations

__all__ = ["CriteriaError", "MatcherError", "NotFittedError", "UnknownProfileError"]


class MatcherError(Exception):
    """Base class of every error the engine raises on purpose."""


class CriteriaError(MatcherError, ValueError):
    """A criteria tree names an unknown field or operator, or has a malformed value.

    ``path`` locates the offending node ("criteria.all[2].value") so the application can
    turn it into a 422 naming the field.
    """

    def __init__(self, message: str, *, path: str = "criteria") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class NotFittedError(MatcherError, AttributeError):
    """The object has no learned state yet: call ``fit`` (or ``load``) first."""


class UnknownProfileError(MatcherError, KeyError):
    """No profile with this id is in the index."""
