""""Policies for me now" (惠企政策"指尖查"): the open policies a profile qualifies for, best first, each
with the reasons that may be shown (``MatchRecord.public_reasons``: never a sensitive fact), its
deadline, benefit and how to apply; then those it may qualify for, each with the profile fields to
fill in and a link to each field. The match index answers (``MatchService.open_policies_for``); a
profile written a moment ago is in it already, since the write service updates the index at once.
The shaped answer (and, for the API, its JSON) is kept by the index (``MatchService.answer_for``)
until the profile, a policy or the text index changes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from matchers import MatchRecord, UnknownProfileError, field_label
from policy_push.campaigns import benefit_text
from policy_push.domain import Policy
from policy_push.errors import MatchIndexUnavailable
from policy_push.matching import MatchService

__all__ = ["policies_for_me", "policies_for_me_encoded"]

T = TypeVar("T")
Found = list[tuple[Policy, MatchRecord]]


def _item(policy: Policy, record: MatchRecord, on: dt.date) -> dict[str, Any]:
    until = policy.apply_until
    return {
        "policy_id": policy.id,
        "title": policy.title,
        "issuer": policy.issuer,
        "categories": list(policy.categories),
        "summary": policy.summary,
        "score": round(float(record.score), 4),
        "reasons": list(record.public_reasons),
        "deadline": until.isoformat() if until else None,
        "days_left": (until - on).days if until else None,
        "benefit": benefit_text(policy) or None,
        "how_to_apply": {"url": policy.url, "page": f"/p/{policy.id}", "issuer": policy.issuer},
    }


def _missing(record: MatchRecord, audience: str, fields_page: str) -> list[dict[str, str]]:
    return [{"field": f, "label": field_label(f, audience), "fill_in": f"{fields_page}#field-{f}"} for f in record.missing]


def _shaper(audience: str, profile_id: str, on: dt.date, fields_page: str) -> Callable[[Found], dict[str, Any]]:
    def shape(found: Found) -> dict[str, Any]:
        items = [_item(p, r, on) for p, r in found if r.eligible]
        may = []
        for p, r in found:
            if r.eligible:
                continue
            # advice lines of sensitive conditions stay off the page, like their reasons
            advice = list(dict.fromkeys(d.advice for d in r.details if d.advice and not d.sensitive))
            may.append({**_item(p, r, on), "add": _missing(r, audience, fields_page), "advice": advice})
        return {"profile_kind": audience, "profile_id": profile_id, "date": on.isoformat(), "items": items, "may_qualify": may}

    return shape


async def _answer(
    index: MatchService, audience: str, profile_id: str, *, on: dt.date, limit: int, tag: Hashable,
    shape: Callable[[Found], T], catch_up: Callable[[], Awaitable[Any]] | None,
) -> T:
    ask = functools.partial(index.answer_for, audience, profile_id, on=on, top_k=limit, tag=tag, shape=shape)
    try:
        return await ask()
    except UnknownProfileError:
        if catch_up is None:
            raise MatchIndexUnavailable("your profile is still being indexed; try again in a few seconds") from None
        await catch_up()
        try:
            return await ask()
        except UnknownProfileError:
            raise MatchIndexUnavailable("your profile is still being indexed; try again in a few seconds") from None


async def policies_for_me(
    index: MatchService, audience: str, profile_id: str, *, on: dt.date, limit: int = 20, fields_page: str = "/me/profile",
    catch_up: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """The answer as a dict, shared with other callers (kept by the index until the profile or a policy
    changes): read it, never change it. ``catch_up``: called once when the profile is not in this
    process's index yet (written by another process a moment ago), before asking again."""
    shape = _shaper(audience, profile_id, on, fields_page)
    return await _answer(index, audience, profile_id, on=on, limit=limit, tag=("for_me", fields_page), shape=shape,
                         catch_up=catch_up)  # fmt: skip


async def policies_for_me_encoded(
    index: MatchService, audience: str, profile_id: str, *, on: dt.date, encode: Callable[[dict[str, Any]], bytes],
    limit: int = 20, fields_page: str = "/me/profile", catch_up: Callable[[], Awaitable[Any]] | None = None,
) -> bytes:
    """As :func:`policies_for_me`, encoded by ``encode`` (the API's JSON): a repeated question costs a
    look-up, not a match, an explanation of every policy and an encoding."""
    shaper = _shaper(audience, profile_id, on, fields_page)

    def shape(found: Found) -> bytes:
        return encode(shaper(found))

    return await _answer(index, audience, profile_id, on=on, limit=limit, tag=("for_me", fields_page, encode), shape=shape,
                         catch_up=catch_up)  # fmt: skip
