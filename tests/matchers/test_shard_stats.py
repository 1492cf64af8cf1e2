"""A shard's engine holds some profiles but weighs text with the whole corpus's statistics
(``count_outside`` + ``fit(outside=...)``): every profile it holds scores exactly as in one engine of
all profiles, and without those statistics it would not."""

from __future__ import annotations

from typing import Any

import pytest

from matchers import Hierarchy, MatchEngine, TextStats, Tokenizer

from .conftest import EVAL_DAY


def _scores(engine: MatchEngine, policies: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    out = {}
    for p in policies:
        res = engine.match_policy(p, on=EVAL_DAY, top_k=None)
        out.update({(p["id"], m.profile_id): m.score for m in (*res.eligible, *res.unknown)})
    return out


@pytest.mark.parametrize("audience", ["enterprise", "resident"])
def test_a_shard_scores_as_the_whole(regions: Hierarchy, industries: Hierarchy, tokenizer: Tokenizer,
                                     sample_records: dict[str, list[dict[str, Any]]],
                                     sample_policies: list[dict[str, Any]], audience: str) -> None:
    records = sample_records[audience]
    policies = [p for p in sample_policies if p["audience"] == audience]
    held = [r for r in records if str(r.get("region") or "").startswith("211103")]
    elsewhere = [r for r in records if not str(r.get("region") or "").startswith("211103")]
    assert held and elsewhere
    whole = _scores(MatchEngine(audience, regions, industries, tokenizer).fit(records), policies)

    engine = MatchEngine(audience, regions, industries, tokenizer)
    stats = TextStats()
    for at in range(0, len(elsewhere), 100):  # counted a chunk at a time, as a shard node reads them
        engine.count_outside(stats, elsewhere[at : at + 100])
    assert stats.n == len(elsewhere)
    shard = _scores(engine.fit(held, outside=stats), policies)
    assert shard and all(shard[k] == pytest.approx(whole[k], abs=1e-6) for k in shard)
    # the compaction keeps the whole corpus's statistics
    engine.compact()
    assert all(v == pytest.approx(whole[k], abs=1e-6) for k, v in _scores(engine, policies).items())

    alone = _scores(MatchEngine(audience, regions, industries, tokenizer).fit(held), policies)
    assert any(abs(alone[k] - whole[k]) > 1e-3 for k in alone)  # what the statistics are for
