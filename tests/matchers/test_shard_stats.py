"""A shard's engine holds some profiles but weighs text with the whole corpus's statistics
(``count_outside`` + ``fit(outside=...)``): every profile it holds scores exactly as in one engine of
all profiles, and without those statistics it would not.  The statistics survive a save and load, and
a hand-over of regions (``hand_over``) leaves them those of a shard built afresh for its new regions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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



@dataclass
class Case:
    audience: str
    records: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    #: every (policy, profile) score of one engine of all the audience's profiles
    whole: dict[tuple[str, str], float]


@pytest.fixture(params=["enterprise", "resident"])
def case(request: pytest.FixtureRequest, regions: Hierarchy, industries: Hierarchy, tokenizer: Tokenizer,
         sample_records: dict[str, list[dict[str, Any]]], sample_policies: list[dict[str, Any]]) -> Case:
    audience = request.param
    records = sample_records[audience]
    policies = [p for p in sample_policies if p["audience"] == audience]
    whole = _scores(MatchEngine(audience, regions, industries, tokenizer).fit(records), policies)
    return Case(audience, records, policies, whole)


def _shard(case: Case, regions: Hierarchy, industries: Hierarchy, tokenizer: Tokenizer, prefix: str) -> MatchEngine:
    held = [r for r in case.records if str(r.get("region") or "").startswith(prefix)]
    stats = TextStats()
    engine = MatchEngine(case.audience, regions, industries, tokenizer)
    engine.count_outside(stats, [r for r in case.records if not str(r.get("region") or "").startswith(prefix)])
    return engine.fit(held, outside=stats)


def test_a_shard_saved_and_loaded_keeps_the_outside_count(case: Case, regions: Hierarchy, industries: Hierarchy,
                                                          tokenizer: Tokenizer, tmp_path: Path) -> None:
    shard = _shard(case, regions, industries, tokenizer, "211103")
    shard.save(tmp_path / "shard")
    loaded = MatchEngine.load(tmp_path / "shard", regions, industries, tokenizer)
    assert loaded.text_.outside_ == shard.text_.outside_ and loaded.text_.outside_ is not None
    loaded.compact()  # recomputes idf and avgdl from the rows and the loaded outside count
    assert all(v == pytest.approx(case.whole[k], abs=1e-6) for k, v in _scores(loaded, case.policies).items())


def test_a_shard_handed_other_regions_scores_as_the_whole(case: Case, regions: Hierarchy, industries: Hierarchy,
                                                          tokenizer: Tokenizer) -> None:
    engine = _shard(case, regions, industries, tokenizer, "211103")
    # 211103 goes elsewhere, 211102 comes here
    gained = [r for r in case.records if str(r.get("region") or "").startswith("211102")]
    lost = [str(r["id"]) for r in case.records if str(r.get("region") or "").startswith("211103")]
    assert gained and lost
    engine.hand_over(gained, lost)
    moved = _scores(engine, case.policies)
    assert {pid for _, pid in moved} <= {str(r["id"]) for r in gained}
    assert {pid for _, pid in moved} and all(v == pytest.approx(case.whole[k], abs=1e-6) for k, v in moved.items())
    assert engine.text_.outside_ is not None and engine.text_.outside_[1] == len(case.records) - len(gained)
    again = _shard(case, regions, industries, tokenizer, "211102")
    assert engine.text_.outside_ == again.text_.outside_  # the count a fresh shard of 211102 makes
