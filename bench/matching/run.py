"""Benchmarks of the matching engine (not tests): ``python -m bench.matching [--sizes 100000 1000000]``.

For each size: generate seeded synthetic profiles to JSONL, build the engine from the JSONL
(tokenising included), measure policy -> profiles (median, p99), the same policies through a
naive Python loop and SQLite FTS5, memory, save/reload, profile -> 5,000 policies, and
incremental updates.  Prints one table per size.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from matchers import Hierarchy, MatchEngine, Tokenizer

from .generate import REFDATA, policies, write_enterprises, write_residents
from .naive import fts_build, fts_match, naive_match, vector_dicts

ROOT = Path(__file__).resolve().parents[2]
ON = dt.date(2026, 11, 26)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hierarchies() -> tuple[Hierarchy, Hierarchy]:
    with open(REFDATA / "regions.csv", encoding="utf-8") as f:
        regions = Hierarchy.from_pairs((r["code"], r["parent_code"], r["name"]) for r in csv.DictReader(f))
    with open(REFDATA / "industries.csv", encoding="utf-8") as f:
        industries = Hierarchy.from_pairs((r["code"], r["parent"], r["name"]) for r in csv.DictReader(f))
    return regions, industries


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench(audience: str, n: int, workdir: Path, tok: Tokenizer, regions: Hierarchy, industries: Hierarchy,
          sample: list[dict[str, Any]], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def put(name: str, value: str, target: str = "") -> None:
        rows.append((name, value, target))
        print(f"  {name:<58} {value:>22}  {target}", flush=True)

    path = workdir / f"{audience}_{n}.jsonl"
    if not path.exists():
        (write_enterprises if audience == "enterprise" else write_residents)(path, n)
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    t_read = time.perf_counter() - t0
    eng = MatchEngine(audience, regions, industries, tok, n_jobs=args.jobs).fit(records)
    t_build = time.perf_counter() - t0
    put("build from JSONL, tokenising included (s)", f"{t_build:.1f} (read {t_read:.1f})", "≤ 120 s")
    gc.collect()
    nb = eng.nbytes()
    sample_texts = [(r.get("business_scope") or "") + " " + (r.get("interests") or "") for r in records[:5000]]
    cold = Tokenizer(cache_size=0)
    t = time.perf_counter()
    for text in sample_texts:
        cold.tokens(text)
    rate = sum(map(len, sample_texts)) / (time.perf_counter() - t)
    put("jieba without block cache, chars/s in one process", f"{rate:,.0f}",
        f"all-unique texts: ~{sum(map(len, sample_texts)) / 5000 * n / rate / max(args.jobs, 1):.0f} s of cutting on {args.jobs} procs")
    put("index arrays bytes / profile", f"{nb['arrays'] / n:.0f}", "≤ 1024")
    put("index arrays + ids + vocab bytes / profile", f"{sum(nb.values()) / n:.0f}", "≤ 1024")
    put("tokens (nnz) / profile", f"{eng.text_.nnz / n:.1f}")
    rss_eng = rss_mb()
    put("RSS after build, records still held (MB)", f"{rss_eng:.0f} (+{rss_eng - rss0:.0f})")

    pols = policies(args.policies, audience, sample)
    compiled = [eng.compile_policy(p) for p in pols]
    times, cold, counts = [], [], []
    for p in pols[: min(10, len(pols))]:
        t = time.perf_counter()
        eng.match_policy(p, on=ON, top_k=100)
        cold.append(time.perf_counter() - t)
    for _ in range(args.repeat):
        for cp in compiled:
            t = time.perf_counter()
            res = eng.match_policy(cp, on=ON, top_k=100)
            times.append(time.perf_counter() - t)
            counts.append(res.n_eligible)
    med, p99 = pct(times, 50) * 1e3, pct(times, 99) * 1e3
    put(f"policy -> profiles top-100, median ms ({len(times)} runs)", f"{med:.2f}", "≤ 10 ms")
    put("policy -> profiles top-100, p99 ms", f"{p99:.2f}", "≤ 30 ms")
    put("  eligible per policy (median / max)", f"{statistics.median(counts):.0f} / {max(counts)}")
    every = [eng.text_.postings_cost(eng.policies_.query_terms_in_space(cp, eng.text_)[0]) for cp in compiled]
    read = [eng.text_.postings_cost(eng._query(cp).ids) for cp in compiled]
    put("  postings a query reads, median (all its terms)", f"{statistics.median(read):,.0f} ({statistics.median(every):,.0f})",
        "frequent terms skipped (docs/ranking.md)")
    put("  incl. cutting the policy text, median ms", f"{pct(cold, 50) * 1e3:.2f}")

    # baselines on the same data and policies (a few, they are slow)
    parents = regions.parents
    base_pols = [p for p in pols[: args.baseline] if p.get("criteria")]
    t = time.perf_counter()
    vectors = vector_dicts(eng)
    put("  (naive: building per-profile vector dicts, s)", f"{time.perf_counter() - t:.1f}")
    nv = []
    for p, cp in zip(base_pols, compiled, strict=False):
        q_terms, q_w = eng.policies_.query_terms(cp)
        query = {t: float(w) for t, w in zip(q_terms, q_w, strict=True)}
        t = time.perf_counter()
        naive_match(p, records, vectors, query, ON, parents)
        nv.append(time.perf_counter() - t)
    del vectors
    gc.collect()
    put("naive Python loop, median ms", f"{pct(nv, 50) * 1e3:.0f}", f"×{pct(nv, 50) * 1e3 / med:.0f} engine")
    t = time.perf_counter()
    texts = [" ".join(t for i, c in zip(*eng.text_.row_terms(r), strict=True) for t in [eng.text_.terms_[i]] * round(c))
             for r in range(eng.text_.n_rows)]
    db = fts_build(records, texts)
    del texts
    put("  (FTS5: building the SQLite database, s)", f"{time.perf_counter() - t:.1f}")
    fv = []
    for cp in compiled[: len(base_pols)]:
        terms = sorted({t for t in cp.tokens if t in eng.text_.vocabulary_})
        t = time.perf_counter()
        fts_match(db, cp.source, terms, ON)
        fv.append(time.perf_counter() - t)
    db.close()
    gc.collect()
    put("SQLite FTS5 bm25 + WHERE, median ms", f"{pct(fv, 50) * 1e3:.0f}", f"×{pct(fv, 50) * 1e3 / med:.0f} engine")

    # persistence
    idx = workdir / f"index_{audience}_{n}"
    t = time.perf_counter()
    eng.save(idx)
    put("save index (s)", f"{time.perf_counter() - t:.1f}")
    t = time.perf_counter()
    eng2 = MatchEngine.load(idx, regions, industries, tok)
    put("reload persisted index (s)", f"{time.perf_counter() - t:.1f}", "≤ 10 s")
    assert len(eng2) == len(eng)
    del eng2
    gc.collect()
    code = ("import sys, csv; from bench.matching.run import hierarchies, rss_mb; from matchers import MatchEngine;"
            f"r, i = hierarchies(); base = rss_mb(); e = MatchEngine.load({str(idx)!r}, r, i);"
            "print(f'{rss_mb():.0f} {rss_mb() - base:.0f}')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    total, added = out.stdout.split()
    put("fresh process after reload: RSS MB (index share)", f"{total} (+{added})",
        f"{int(added) * 1e6 / n:.0f} B/profile")

    # profile -> policies
    many = policies(5000, audience, sample, seed=11)
    t = time.perf_counter()
    eng.set_policies(many)
    put("set 5,000 policies (compile + cut texts, s)", f"{time.perf_counter() - t:.1f}")
    rng = np.random.default_rng(3)
    pids = [eng.row_ids_[int(r)] for r in rng.integers(0, n, 1000)]
    eng.match_profile(pids[0], on=ON)
    for label in ("", " (gc.freeze)"):
        if label:
            # the benchmark itself holds every parsed JSON record; freezing them keeps the
            # collector from re-scanning a million dicts inside the timed calls
            gc.collect()
            gc.freeze()
        pt = []
        for pid in pids:
            t = time.perf_counter()
            eng.match_profile(pid, on=ON, top_k=20)
            pt.append(time.perf_counter() - t)
        put(f"profile -> 5,000 policies top-20, median ms{label}", f"{pct(pt, 50) * 1e3:.3f}", "≤ 2 ms")
        put(f"profile -> 5,000 policies top-20, p99 ms{label}", f"{pct(pt, 99) * 1e3:.3f}")
    times = []
    for _ in range(args.repeat):
        for cp in compiled:
            t = time.perf_counter()
            eng.match_policy(cp, on=ON, top_k=100)
            times.append(time.perf_counter() - t)
    put("policy -> profiles top-100, median / p99 ms (gc.freeze)", f"{pct(times, 50) * 1e3:.2f} / {pct(times, 99) * 1e3:.2f}")
    gc.unfreeze()

    # incremental
    ut = []
    for i, rec in enumerate(records[:500]):
        changed = dict(rec, interests=(rec.get("interests") or "") + f" 变更{i % 7}")
        t = time.perf_counter()
        eng.upsert(changed)
        ut.append(time.perf_counter() - t)
    put("upsert one profile (changed text), median ms", f"{pct(ut, 50) * 1e3:.3f}")
    t = time.perf_counter()
    eng.remove(records[600]["id"])
    put("remove one profile, ms", f"{(time.perf_counter() - t) * 1e3:.3f}")
    after = eng.match_policy(compiled[0], on=ON, top_k=100)
    t = time.perf_counter()
    eng.compact()
    put("compaction (merge) of all rows (s)", f"{time.perf_counter() - t:.1f}")
    merged = eng.match_policy(compiled[0], on=ON, top_k=100)
    put("  eligible count unchanged by compaction", str(after.n_eligible == merged.n_eligible))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.matching")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--audiences", nargs="+", default=["enterprise", "resident"])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--policies", type=int, default=20, help="distinct policies timed")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--baseline", type=int, default=3, help="policies run through the slow baselines")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "policy_push_bench")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.platform()} | {os.cpu_count()} cpus | Python {sys.version.split()[0]} | {dt.date.today()}")
    t = time.perf_counter()
    tok = Tokenizer()
    print(f"tokenizer start-up {time.perf_counter() - t:.2f} s")
    regions, industries = hierarchies()
    with open(ROOT / "tests" / "data" / "sample" / "policies.jsonl", encoding="utf-8") as f:
        sample = [json.loads(line) for line in f]
    for n in args.sizes:
        for aud in args.audiences:
            print(f"\n## {aud}, {n:,} profiles")
            bench(aud, n, args.workdir, tok, regions, industries, sample, args)
            gc.collect()


if __name__ == "__main__":
    main()
