""""Policies for me now" (惠企政策"指尖查"): the open policies a profile qualifies for, best first, each
with the reasons that may be shown (``MatchRecord.public_reasons``: never a sensitive fact), its
deadline, benefit and how to apply; then those it may qualify for, each with the profile fields to
fill in and a link to each field. The match index answers (``MatchService.open_policies_for``); a
profile written a moment ago is in it already, since the write service updates the index at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from matchers import MatchRecord, field_label
from policy_push.campaigns import benefit_text
from policy_push.domain import Policy
from policy_push.matching import MatchService

__all__ = ["policies_for_me"]


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


async def policies_for_me(
    index: MatchService, audience: str, profile_id: str, *, on: dt.date, limit: int = 20, fields_page: str = "/me/profile"
) -> dict[str, Any]:
    found = await index.open_policies_for(audience, profile_id, on=on, top_k=limit)
    items = [_item(p, r, on) for p, r in found if r.eligible]
    may = []
    for p, r in found:
        if r.eligible:
            continue
        # advice lines of sensitive conditions stay off the page, like their reasons
        advice = list(dict.fromkeys(d.advice for d in r.details if d.advice and not d.sensitive))
        may.append({**_item(p, r, on), "add": _missing(r, audience, fields_page), "advice": advice})
    return {"profile_kind": audience, "profile_id": profile_id, "date": on.isoformat(), "items": items, "may_qualify": may}
