"""Chunked building (``EngineBuilder``) and streamed answers (``stream_policy``) give exactly what
``fit`` and ``match_policy(top_k=None)`` give."""

from __future__ import annotations

import numpy as np

from matchers import EngineBuilder, MatchEngine, encode_rows

from .conftest import EVAL_DAY


def _built(aud, recs, regions, industries, tokenizer, size):
    engine = MatchEngine(aud, regions, industries, tokenizer)
    builder = EngineBuilder(engine)
    refused = []
    for at in range(0, len(recs), size):
        refused += [(at + i, first) for i, first in builder.add(encode_rows(recs[at : at + size], aud, engine.ranking,
                                                                           tokenizer))]
    return builder.finish(), refused


def test_chunked_build_answers_as_fit(regions, industries, tokenizer, sample_records, sample_policies):
    for aud, recs in sample_records.items():
        fitted = MatchEngine(aud, regions, industries, tokenizer).fit(recs)
        built, refused = _built(aud, recs, regions, industries, tokenizer, 7)
        assert refused == []
        assert built.row_ids_ == fitted.row_ids_
        assert np.array_equal(built.hashes_.a, fitted.hashes_.a)
        for p in (p for p in sample_policies if p["audience"] == aud):
            a = built.match_policy(p, on=EVAL_DAY, top_k=None)
            b = fitted.match_policy(p, on=EVAL_DAY, top_k=None)
            assert [r.to_dict() for r in a.eligible + a.unknown] == [r.to_dict() for r in b.eligible + b.unknown]
        # an upsert after a chunked build behaves as after fit
        rec = {**recs[0], "interests": "河蟹养殖 冷链物流"}
        built.upsert(rec)
        fitted.upsert(rec)
        p = next(p for p in sample_policies if p["audience"] == aud)
        assert [r.to_dict() for r in built.match_policy(p, on=EVAL_DAY).eligible] == \
            [r.to_dict() for r in fitted.match_policy(p, on=EVAL_DAY).eligible]


def test_a_repeated_id_is_refused_with_its_first_row(regions, industries, tokenizer, sample_records):
    recs = sample_records["enterprise"]
    twice = [*recs[:5], {**recs[2], "business_scope": "别的文字"}, *recs[5:8], recs[0]]
    built, refused = _built("enterprise", twice, regions, industries, tokenizer, 4)
    assert refused == [(5, 2), (9, 0)]
    assert len(built) == 8
    assert built.row_ids_ == [r["id"] for r in recs[:8]]
    # the first record's text was kept, not the repeat's
    assert built.hashes_.a[2] == MatchEngine("enterprise", regions, industries, tokenizer).fit([recs[2]]).hashes_.a[0]


def test_stream_policy_yields_what_match_policy_returns(sample_engines, sample_policies):
    for p in sample_policies:
        engine = sample_engines[p["audience"]]
        whole = engine.match_policy(p, on=EVAL_DAY, top_k=None)
        stream = engine.stream_policy(p, on=EVAL_DAY, batch=3)
        got = [r.to_dict() for r in stream.records()]
        assert got == [r.to_dict() for r in whole.eligible + whole.unknown]
        assert (stream.n_eligible, stream.n_unknown, stream.n_ineligible) == \
            (whole.n_eligible, whole.n_unknown, whole.n_ineligible)


def test_stream_refuses_to_read_across_a_compaction(sample_engines, sample_policies, regions, industries, tokenizer,
                                                   sample_records):
    import pytest

    engine = MatchEngine("resident", regions, industries, tokenizer).fit(sample_records["resident"])
    p = next(p for p in sample_policies if p["audience"] == "resident" and p.get("criteria"))
    stream = engine.stream_policy(p, on=EVAL_DAY, batch=1)
    records = stream.records()
    next(records)
    engine.compact()
    with pytest.raises(RuntimeError, match="compacted"):
        list(records)
