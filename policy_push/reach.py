"""May this person be messaged on this channel? The one home of that rule, and of the channels' names.

Consent, opt-outs and reachability decide it, in that order, the same way when a campaign is drafted
(``campaigns.recipients``), when a row is claimed for sending (``sending.claims``), when a fallback
picks the next channel (``sending.fallbacks``) and when a reminder picks its recipients
(``campaigns.reminders``):

1. no consent                                   -> ``no_consent``
2. opted out of this channel, or of all ("*"),
   or the policy is of no category the person
   chose (when categories are given)            -> ``opted_out``
3. no address for this channel               -> ``unreachable``
4. a phone nobody proved (see below)          -> ``phone_unproven`` (an unproven openid: ``unreachable``)

Nothing is ever pushed to a phone that was not proven. A phone is proven when

- a subscriber proved it with an SMS code: a profile a subscriber speaks for (``policy_push.subscribers``)
  is messaged only at contacts proven by its subscribers -- its phone when it is one of theirs, its
  openid when bound by them; or
- no subscriber speaks for the profile and the staff who imported the phone named the official register
  it came from (``phone_source``: ``policy-push import --phone-source``, ``?phone_source=`` on the
  import and profile API, the staff import form). The name is kept on the row and in the audit log; a
  later write that changes the phone without naming a register leaves it unproven.

An imported WeChat openid or app registration id needs no such proof: WeChat issues an openid only to
a follower of the city's own account and the app issues a registration id only to an installed app, so
either already proves its holder's say-so; a phone typed into a spreadsheet proves nothing. A person's own cap (``weekly_max``, most messages in any 7 days) is applied when rows are
claimed (``sending.claims``).

A profile's channels are tried in its own order of preference. Deciding needs no personal value:
``addressed`` comes from the presence of the keyed contact hashes (``storage.contacts.load_reach``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from policy_push.domain import CHANNELS
from policy_push.statuses import SkipReason

__all__ = ["ALL_CHANNELS", "CHANNELS", "CONTACT_FIELD", "OPT_OUT_CHANNELS", "Reach", "contact_field"]

#: an opt-out row with this channel covers every channel
ALL_CHANNELS = "*"
#: what an opt-out may name: one channel, or all
OPT_OUT_CHANNELS = (ALL_CHANNELS, *CHANNELS)
#: the formats.md ``contact`` field (and the encrypted column, ``<field>_enc``) that holds each channel's address
CONTACT_FIELD = {"sms": "phone", "wechat": "wechat_openid", "app": "app_registration_id"}


def contact_field(channel: str) -> str:
    try:
        return CONTACT_FIELD[channel]
    except KeyError:
        raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(CHANNELS)}") from None


@dataclass(frozen=True, slots=True)
class Reach:
    """What the rules need to know of one profile, without any personal value."""

    profile_kind: str
    profile_id: str
    consent: bool
    #: the profile's channels in its order of preference
    preference: tuple[str, ...]
    #: channels the profile has an address for
    addressed: frozenset[str]
    #: channels opted out of ("*" for all)
    opted_out: frozenset[str] = frozenset()
    #: channels whose address exists but was never proven (by the profile's subscribers, or for a
    #: phone no subscriber speaks for, by a register named at import)
    unproven: frozenset[str] = frozenset()
    #: categories of interest (the profile's ``categories``); empty: every category
    categories: frozenset[str] = frozenset()
    #: the person's own most messages in any 7 days; None: the service's cap alone
    weekly_max: int | None = None

    def wants(self, categories: Collection[str] | None) -> bool:
        """Does a policy of ``categories`` interest the person? (None: not asked.)"""
        return categories is None or not self.categories or bool(self.categories.intersection(categories))

    def refusal(self, channel: str, categories: Collection[str] | None = None) -> SkipReason | None:
        """None when the person may be messaged on ``channel`` now (about a policy of ``categories``,
        when given); otherwise why not."""
        if not self.consent:
            return SkipReason.NO_CONSENT
        if ALL_CHANNELS in self.opted_out or channel in self.opted_out or not self.wants(categories):
            return SkipReason.OPTED_OUT
        if channel not in self.addressed:
            return SkipReason.UNREACHABLE
        if channel in self.unproven:
            return SkipReason.PHONE_UNPROVEN if channel == "sms" else SkipReason.UNREACHABLE
        return None

    def open_channels(self, categories: Collection[str] | None = None) -> tuple[list[str], SkipReason | None]:
        """The preferred channels the person may be messaged on, in order; when there is none, why."""
        usable = [ch for ch in self.preference if self.refusal(ch, categories) is None]
        if usable:
            return usable, None
        if not self.consent:
            return [], SkipReason.NO_CONSENT
        if ALL_CHANNELS in self.opted_out or not self.wants(categories):
            return [], SkipReason.OPTED_OUT
        reachable = [ch for ch in self.preference if ch in self.addressed and ch not in self.unproven]
        if reachable:
            return [], SkipReason.OPTED_OUT
        # a phone would have reached them, had anyone proved it: staff see that apart from "no address"
        phone_only = "sms" in self.preference and "sms" in self.addressed and "sms" in self.unproven
        return [], SkipReason.PHONE_UNPROVEN if phone_only else SkipReason.UNREACHABLE

    def next_channel(self, *, used: Collection[str], allowed: Collection[str]) -> str | None:
        """The first open channel not ``used`` yet (for this policy) among ``allowed`` (those with an approved text)."""
        usable, _ = self.open_channels()
        return next((ch for ch in usable if ch not in used and ch in allowed), None)
