"""The engine against another revision of itself in CPU time, and whether they answer alike:
``python -m bench.matching.cputime REV [--sizes 300000] [--audiences enterprise resident]``.

Like ``bench.matching.against`` (both engines in one process, calls interleaved), but each call is
also timed with ``time.thread_time``: the CPU the query itself used, which neighbours on a shared
machine barely move, beside the wall time they do move.  Every pair of answers is compared in
full (profile ids, scores, reason texts, missing fields and the three counts); the last column
says in how many of the calls they were identical.
"""

from __future__ import annotations

import time
from typing import Any

from .against import ON, engine_pairs, ms, other_revision, parse_args, print_head


def _answer(res: Any) -> tuple[Any, ...]:
    def rows(recs: list[Any]) -> list[tuple[Any, ...]]:
        return [(m.profile_id, m.eligible, m.score, m.reasons, m.missing) for m in recs]

    return rows(res.eligible), rows(res.unknown), res.n_eligible, res.n_unknown, res.n_ineligible


def main(argv: list[str] | None = None) -> None:
    args = parse_args("python -m bench.matching.cputime", argv, 300_000)
    with other_revision(args.rev) as other:
        print_head(args, ", CPU (thread_time) and wall ms", [
            "this tree CPU median / p99", f"{args.rev} CPU median / p99",
            "this tree wall median / p99", f"{args.rev} wall median / p99", "identical answers",
        ])  # fmt: skip
        for n, audience, engines, compiled in engine_pairs(args, other):
            cpu: dict[str, list[float]] = {"this": [], "other": []}
            wall: dict[str, list[float]] = {"this": [], "other": []}
            same = 0
            for _ in range(args.repeat):
                for i in range(len(compiled["this"])):
                    got = {}
                    for k, e in engines.items():
                        c, w = time.thread_time(), time.perf_counter()
                        got[k] = e.match_policy(compiled[k][i], on=ON, top_k=100)
                        cpu[k].append(time.thread_time() - c)
                        wall[k].append(time.perf_counter() - w)
                    same += _answer(got["this"]) == _answer(got["other"])
            cells = [ms(d[k]) for d in (cpu, wall) for k in ("this", "other")]
            print(f"| {audience} | {n:,} | {' | '.join(cells)} | {same} / {len(cpu['this'])} |", flush=True)
            del engines, compiled  # before the next pair is built


if __name__ == "__main__":
    main()
