"""Explaining a ranked list a pattern at a time (``Explainer.rows``) gives every record exactly the
reasons that explaining it alone gives: the profile -> policies direction, which explains one
record at a time from the profile's own values, and ``explain`` with nothing remembered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from matchers import MatchEngine
from matchers._criteria import to_ymd
from matchers._reasons import Explainer, explain

from .test_properties import SETTINGS, scenario


@st.composite
def crowded(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], dt.date]:
    """A scenario whose profiles come again under other ids, so that rows share patterns and values."""
    audience, profiles, policies, on = draw(scenario())
    again = [dict(p, id=f"{p['id']}x{n}") for n in range(draw(st.integers(0, 3))) for p in profiles]
    return audience, profiles + again, policies, on


def _lines(m: Any) -> tuple[Any, ...]:
    return m.eligible, m.reasons, m.missing, m.details


@SETTINGS
@given(crowded())
def test_each_ranked_record_reads_as_when_explained_alone(regions, industries, tokenizer, case):
    audience, profiles, policies, on = case
    engine = MatchEngine(audience, regions, industries, tokenizer).fit(profiles)
    engine.set_policies(policies)
    alone = {}
    for r in profiles:
        res = engine.match_profile(r["id"], on=on, top_k=None, include_unknown=True)
        alone.update({(m.policy_id, r["id"]): _lines(m) for m in res.eligible + res.unknown})
    together = {}
    for p in policies:
        res = engine.match_policy(p, on=on, top_k=None)
        together.update({(p["id"], m.profile_id): _lines(m) for m in res.eligible + res.unknown})
    assert together == alone


@SETTINGS
@given(crowded())
def test_rows_equal_explain_per_row_even_when_the_cache_is_cleared(regions, industries, tokenizer, case):
    audience, profiles, policies, on = case
    engine = MatchEngine(audience, regions, industries, tokenizer).fit(profiles)
    hierarchies = engine.hierarchies
    for p in policies:
        criteria = engine.compile_policy(p).criteria
        if criteria.root is None:
            continue
        rows = np.arange(len(profiles))
        columns = engine.table_.values_of(engine._fields(criteria.fields), rows, to_ymd(on))
        keys = engine.table_.evaluate(criteria, to_ymd(on)).leaf_values(rows)
        for cache_max in (1, 3, 4096):
            got = Explainer(criteria, hierarchies, cache_max=cache_max).rows(columns, keys)
            for j, done in enumerate(got):
                details, missing = explain(criteria, {f: col[j] for f, col in columns.items()}, keys[j], hierarchies)
                assert (done.details, done.texts, done.missing) == (
                    tuple(details), tuple(d.text for d in details), tuple(missing)
                ), (p["criteria"], profiles[j])
