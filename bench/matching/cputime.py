"""The engine against another revision of itself in CPU time, and whether they answer alike:
``python -m bench.matching.cputime REV [--sizes 300000] [--audiences enterprise resident]``.

Like ``bench.matching.against`` (both engines in one process, calls interleaved), but each call is
also timed with ``time.thread_time``: the CPU the query itself used, which neighbours on a shared
machine barely move, beside the wall time they do move.  Every pair of answers is compared in
full (profile ids, scores, reason texts, missing fields and the three counts); the last column
says in how many of the calls they were identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from .against import ON, build, load_revision
from .generate import policies, write_enterprises, write_residents
from .run import ROOT, pct


def _answer(res: Any) -> tuple[Any, ...]:
    def rows(recs: list[Any]) -> list[tuple[Any, ...]]:
        return [(m.profile_id, m.eligible, m.score, m.reasons, m.missing) for m in recs]

    return rows(res.eligible), rows(res.unknown), res.n_eligible, res.n_unknown, res.n_ineligible


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.matching.cputime")
    ap.add_argument("rev", help="a git revision, e.g. main")
    ap.add_argument("--sizes", type=int, nargs="+", default=[300_000])
    ap.add_argument("--audiences", nargs="+", default=["enterprise", "resident"])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "policy_push_bench")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    import matchers

    with open(ROOT / "tests" / "data" / "sample" / "policies.jsonl", encoding="utf-8") as f:
        sample = [json.loads(line) for line in f]
    with tempfile.TemporaryDirectory() as tmp:
        other = load_revision(args.rev, Path(tmp))
        print(f"# this tree against {args.rev}: policy -> profiles, top-100, 20 policies x {args.repeat}, "
              f"calls interleaved, CPU (thread_time) and wall ms | {dt.date.today()}\n")
        print(f"| audience | profiles | this tree CPU median / p99 | {args.rev} CPU median / p99 | "
              f"this tree wall median / p99 | {args.rev} wall median / p99 | identical answers |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for n in args.sizes:
            for audience in args.audiences:
                path = args.workdir / f"{audience}_{n}.jsonl"
                if not path.exists():
                    (write_enterprises if audience == "enterprise" else write_residents)(path, n)
                engines = {}
                for key, mod in (("this", matchers), ("other", other)):
                    with open(path, encoding="utf-8") as f:
                        records = [json.loads(line) for line in f]
                    engines[key] = build(mod, audience, records)
                    del records
                    gc.collect()
                pols = policies(20, audience, sample)
                compiled = {k: [e.compile_policy(p) for p in pols] for k, e in engines.items()}
                for k, e in engines.items():
                    for cp in compiled[k]:
                        e.match_policy(cp, on=ON, top_k=100)
                cpu: dict[str, list[float]] = {"this": [], "other": []}
                wall: dict[str, list[float]] = {"this": [], "other": []}
                same = 0
                for _ in range(args.repeat):
                    for i in range(len(pols)):
                        got = {}
                        for k, e in engines.items():
                            c, w = time.thread_time(), time.perf_counter()
                            got[k] = e.match_policy(compiled[k][i], on=ON, top_k=100)
                            cpu[k].append(time.thread_time() - c)
                            wall[k].append(time.perf_counter() - w)
                        same += _answer(got["this"]) == _answer(got["other"])
                cells = [f"{pct(d[k], 50) * 1e3:.2f} / {pct(d[k], 99) * 1e3:.2f}"
                         for d in (cpu, wall) for k in ("this", "other")]
                print(f"| {audience} | {n:,} | {' | '.join(cells)} | {same} / {len(cpu['this'])} |", flush=True)
                del engines
                gc.collect()


if __name__ == "__main__":
    main()
