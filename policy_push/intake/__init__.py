"""Policies that come in by themselves: suggestions from a policy's text, source feeds that
fetch published policies, and the review queue where staff confirm what the machine proposed.

Nothing here saves a policy on its own: a suggestion becomes a policy only when a person
confirms it (:mod:`policy_push.intake.review`)."""

from .suggest import DEFAULT_CITY, SUGGESTED_FIELDS, Suggestion, SuggestionResult, suggest_policy

__all__ = ["DEFAULT_CITY", "SUGGESTED_FIELDS", "Suggestion", "SuggestionResult", "suggest_policy"]
