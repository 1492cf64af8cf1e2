"""Where one policy -> profiles query spends its CPU, stage by stage, on a saved index:
``python -m bench.matching.stages [--sizes 1000000] [--audiences enterprise resident] [--workdir DIR]``.

Loads ``DIR/index_<audience>_<size>`` (saved by ``python -m bench.matching``), answers the 20
benchmark policies ``--repeat`` times each (top-100) and times every call with
``time.thread_time`` (the CPU the query itself used, which neighbours on a shared machine barely
move).  Each stage is the engine method of that name, timed by a wrapper around it: the criteria
masks (``evaluate``), the query vector (``_query``), every row's score through the postings
(``_dense_scores``), the chosen rows' scores row by row (``_score``, a narrow filter), the two
top-k cuts (``top_rows``) and the explained records (``_ranked``).  A stage's figure is its CPU
summed over the calls, per query; a stage a query does not run counts 0 for it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matchers._policy_matching as policy_matching
from matchers import MatchEngine

from .against import ON
from .generate import policies
from .run import ROOT, hierarchies, pct

STAGES = {"evaluate": "criteria masks", "_query": "query vector", "_dense_scores": "scores, all rows",
          "_score": "scores, chosen rows", "top_rows": "top-k cuts", "_ranked": "explained records"}


def _timed(fn: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent.append(time.thread_time() - t)

    return wrapper


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.matching.stages")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--audiences", nargs="+", default=["enterprise", "resident"])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "policy_push_bench")
    args = ap.parse_args(argv)
    regions, industries = hierarchies()
    with open(ROOT / "tests" / "data" / "sample" / "policies.jsonl", encoding="utf-8") as f:
        sample = [json.loads(line) for line in f]
    print(f"# policy -> profiles, top-100, 20 policies x {args.repeat}: CPU (thread_time) per query, ms\n")
    print("| audience | profiles | query median / p99 | " + " | ".join(STAGES.values()) + " |")
    print("|---|---:|---:|" + "---:|" * len(STAGES))
    for n in args.sizes:
        for audience in args.audiences:
            eng = MatchEngine.load(args.workdir / f"index_{audience}_{n}", regions, industries)
            compiled = [eng.compile_policy(p) for p in policies(20, audience, sample)]
            for cp in compiled:  # warm: the compiled policy's query terms are remembered
                eng.match_policy(cp, on=ON, top_k=100)
            spent: dict[str, list[float]] = defaultdict(list)
            top_rows = policy_matching.top_rows
            for name in STAGES:
                owner = policy_matching if name == "top_rows" else eng.table_ if name == "evaluate" else eng
                setattr(owner, name, _timed(getattr(owner, name), spent[name]))
            calls = []
            try:
                for _ in range(args.repeat):
                    for cp in compiled:
                        t = time.thread_time()
                        eng.match_policy(cp, on=ON, top_k=100)
                        calls.append(time.thread_time() - t)
            finally:
                policy_matching.top_rows = top_rows
            cells = [f"{sum(spent[name]) / len(calls) * 1e3:.2f}" for name in STAGES]
            print(f"| {audience} | {n:,} | {pct(calls, 50) * 1e3:.2f} / {pct(calls, 99) * 1e3:.2f} | "
                  + " | ".join(cells) + " |", flush=True)
            del eng, compiled


if __name__ == "__main__":
    main()
