"""Where a profile's build time goes: ``python -m bench.batch.stages [--n 5000]``.

Runs each stage of what a build worker does to a profile (``policy_push.matching.stream``), one
stage at a time over the same ``n`` realistic enterprise and resident profiles
(``bench.batch.data``), in this one process, and prints CPU microseconds per profile (CPU time,
not wall time, so that other work on a shared machine does not inflate it).  The tokenizer
starts with an empty block cache; a second pass over the same texts shows what the cache saves
when text repeats.  The last column turns the per-profile CPU into the build rate of 1,000,000
profiles on ``--cores`` worker processes, assuming they scale (the main process's own share,
measured by ``python -m bench.batch``, is not included).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matchers import Ranking, Tokenizer, encode_rows
from matchers._ranking import joined_fields
from policy_push.config import Settings
from policy_push.domain import parse_record
from policy_push.matching.engines import engine_record
from policy_push.refdata import load_reference_data
from policy_push.runtime import validation_context

from .data import write_enterprises, write_residents


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    ref = load_reference_data()
    ctx = dataclasses.replace(validation_context(Settings(), ref), today=dt.date(2026, 11, 30))
    ranking = Ranking()
    print(f"# build stages, CPU µs per profile, {args.n:,} profiles each, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print()
    print("| audience | JSON parse | validate (pydantic) | engine record + normalise | jieba cut, cold cache "
          "| cut, warm cache (same texts again) | weighted terms + encode | total, cold | chars / profile "
          f"| jieba chars/s | 1M profiles on {args.cores} cores, s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for audience, write in (("enterprise", write_enterprises), ("resident", write_residents)):
            path = Path(tmp) / f"{audience}.jsonl"
            write(path, args.n)
            lines = path.read_bytes().splitlines()
            t_json, data = _cpu(lambda lines=lines: [json.loads(x) for x in lines])
            t_val, records = _cpu(lambda data=data, audience=audience: [parse_record(audience, d, ctx) for d in data])
            t_rec, recs = _cpu(lambda records=records: [engine_record(r, ref) for r in records])
            texts = [joined_fields(ranking.profile_texts(r)) for r in recs]
            tok = Tokenizer()
            t_cut, _ = _cpu(lambda texts=texts, tok=tok: [tok.tokens(t) for t in texts])
            t_warm, _ = _cpu(lambda texts=texts, tok=tok: [tok.tokens(t) for t in texts])
            # encode_rows cuts again (warm): its own share is its time less a warm cut
            t_enc, _ = _cpu(lambda recs=recs, tok=tok, audience=audience: encode_rows(recs, audience, ranking, tok))
            t_terms = max(t_enc - t_warm, 0.0)
            total = t_json + t_val + t_rec + t_cut + t_terms
            chars = sum(map(len, texts)) / args.n
            us = [x / args.n * 1e6 for x in (t_json, t_val, t_rec, t_cut, t_warm, t_terms, total)]
            print(f"| {audience} | " + " | ".join(f"{x:,.0f}" for x in us)
                  + f" | {chars:.0f} | {chars * args.n / t_cut:,.0f} | {total / args.n * 1e6 / args.cores:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
