"""The baseline of the batch benchmark: a plain per-profile loop, as one would first write it.

``python -m bench.batch.naive --policies P --enterprises E --residents R --date D > pairs.jsonl``

Every profile is read and validated (as ``policy-push match`` does), cut by the same tokenizer one
text at a time in one process, and kept with a dict of tf-idf weights; then each policy loops
over every profile of its audience: the criteria through the engine's per-profile evaluator
(the same three-valued logic, so the pairs are comparable), a dict cosine for the score.
It writes policy_id, profile_id, eligible and score per pair (no reasons: less work than the
engine does), per policy the eligible best first, then those that may qualify.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
from collections import Counter
from pathlib import Path

from matchers import MatchEngine, profile_text
from matchers._criteria import TRUE, UNKNOWN, to_ymd
from matchers._table import DERIVED_YEARS, normalise_profile
from policy_push.config import Settings
from policy_push.matching import read_jsonl
from policy_push.matching.engines import Hierarchies, engine_record, policy_source, shared_tokenizer
from policy_push.refdata import load_reference_data
from policy_push.runtime import validation_context


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=Path, required=True)
    ap.add_argument("--enterprises", type=Path)
    ap.add_argument("--residents", type=Path)
    ap.add_argument("--date", type=dt.date.fromisoformat, required=True)
    args = ap.parse_args(argv)
    ref = load_reference_data()
    ctx = dataclasses.replace(validation_context(Settings(), ref), today=args.date)
    hier = Hierarchies.from_ref(ref)
    tok = shared_tokenizer()
    on_ymd = to_ymd(args.date)
    policies, _ = read_jsonl(args.policies, "policy", ctx)
    out = sys.stdout
    for audience, path in (("enterprise", args.enterprises), ("resident", args.residents)):
        if path is None:
            continue
        profiles, _ = read_jsonl(path, audience, ctx)
        records = [engine_record(p, ref) for p in profiles]
        del profiles
        values = [normalise_profile(r, audience) for r in records]
        for v in values:
            for name, src in DERIVED_YEARS.items():
                if src in v:
                    v[name] = None if v[src] is None else (on_ymd - v[src]) // 10000
        counts = [Counter(tok.tokens(profile_text(r))) for r in records]
        ids = [r["id"] for r in records]
        del records
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(counts)
        idf = {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items()}
        vectors = []
        for c in counts:
            w = {t: k * idf[t] for t, k in c.items()}
            norm = math.sqrt(sum(x * x for x in w.values())) or 1.0
            vectors.append({t: x / norm for t, x in w.items()})
        del counts
        engine = MatchEngine(audience, hier.regions, hier.industries, tok)
        mine = [engine.compile_policy(policy_source(p)) for p in policies if p.audience == audience]
        engine.policies_.put(mine)
        catalog, order, _ = engine.policies_.catalog()
        found: list[tuple[list[tuple[float, str]], list[tuple[float, str]]]] = [([], []) for _ in order]
        queries = _queries(order, idf)
        for pid, v, vec in zip(ids, values, vectors, strict=True):  # the per-profile loop
            truth, _leaf = catalog.evaluate(v)
            for i, t in enumerate(truth.tolist()):
                if t in (TRUE, UNKNOWN):
                    q = queries[i]
                    s = sum(x * q.get(term, 0.0) for term, x in vec.items())
                    found[i][0 if t == TRUE else 1].append((s, pid))
        by_id = {p.id: i for i, p in enumerate(order)}
        for p in policies:
            i = by_id.get(p.id)
            if i is None:
                continue
            for k, lst in enumerate(found[i]):
                lst.sort(key=lambda x: (-x[0], x[1]))
                for s, pid in lst:
                    out.write(json.dumps({"policy_id": p.id, "profile_id": pid, "eligible": k == 0,
                                          "score": round(s, 4)}, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def _queries(order: list, idf: dict[str, float]) -> list[dict[str, float]]:
    """Each policy's unit tf-idf vector over its compiled terms."""
    got = []
    for p in order:
        w = {t: idf.get(t, 0.0) * float(k) for t, k in p.terms.items()}
        norm = math.sqrt(sum(x * x for x in w.values())) or 1.0
        got.append({t: x / norm for t, x in w.items()})
    return got


if __name__ == "__main__":
    raise SystemExit(main())
