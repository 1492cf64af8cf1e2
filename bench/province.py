"""Ten million on one machine (issue 16 item 4): ``python -m bench.province``.

The resident and enterprise indexes one ``serve`` holds, at province size (default 10,000,000 residents and
2,000,000 enterprises) and, in the same run and first, at a tenth of it as the baseline the figures scale
from. For each scale:

1. realistic, non-repeating profiles (``bench.batch.data``), written once into ``--workdir`` and reused;
2. each audience built by the streamed build ``policy-push match`` runs (``policy_push.matching.stream``,
   ``--jobs`` worker processes; no parsed record kept), then saved as ``serve`` saves its index;
3. a fresh process, as a restarted ``serve``: loads both saved indexes (the restart), reports what the
   process's RSS grew by (the index memory), then times one policy -> profiles, top 100, for policies made
   from the sample's criteria (``bench.matching.generate.policies``), every call timed alone.

Targets (issue 16): index memory <= 6 GB, query median <= 50 ms and p99 <= 150 ms, restart <= 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.batch.data import write_enterprises, write_residents

ROOT = Path(__file__).resolve().parents[1]
AUDIENCES = ("resident", "enterprise")

#: run in a fresh interpreter: load both indexes as a restarted serve does, then time the queries
_RESTARTED = r"""
import json, statistics, sys, time
from pathlib import Path
from bench.matching.generate import policies
from bench.matching.run import ON, hierarchies, rss_mb
from matchers import MatchEngine, Tokenizer

where, n_policies, repeat = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sample = [json.loads(line) for line in open(sys.argv[4], encoding="utf-8")]
regions, industries = hierarchies()
tok = Tokenizer()  # its dictionary loads at the first policy text, after the restart is timed
base = rss_mb()
out = {"load_s": {}, "median_ms": {}, "p99_ms": {}, "eligible_median": {}}
engines = {}
t_all = time.perf_counter()
for audience in ("resident", "enterprise"):
    t = time.perf_counter()
    engines[audience] = MatchEngine.load(where / audience, regions, industries, tok)
    out["load_s"][audience] = time.perf_counter() - t
out["restart_s"] = time.perf_counter() - t_all
out["index_mb"] = rss_mb() - base
for audience, eng in engines.items():
    compiled = [eng.compile_policy(p) for p in policies(n_policies, audience, sample)]
    eng.match_policy(compiled[0], on=ON, top_k=100)  # first call: lazy structures
    times, eligible = [], []
    for _ in range(repeat):
        for cp in compiled:
            t = time.perf_counter()
            res = eng.match_policy(cp, on=ON, top_k=100)
            times.append(time.perf_counter() - t)
            eligible.append(res.n_eligible)
    times.sort()
    out["median_ms"][audience] = statistics.median(times) * 1e3
    out["p99_ms"][audience] = times[min(len(times) - 1, int(0.99 * len(times)))] * 1e3
    out["eligible_median"][audience] = statistics.median(eligible)
out["rss_mb"] = rss_mb()
print(json.dumps(out))
"""


def _ensure(path: Path, audience: str, n: int) -> float:
    """Write the profiles unless a file of ``n`` lines is there; the seconds it took (0 when reused)."""
    if path.exists():
        with path.open("rb") as fh:
            if sum(1 for _ in fh) == n:
                return 0.0
    t = time.perf_counter()
    (write_residents if audience == "resident" else write_enterprises)(path, n)
    return time.perf_counter() - t


def _build(path: Path, audience: str, into: Path, jobs: int) -> tuple[float, int]:
    """Stream-build and save one audience's index: (seconds, profiles indexed)."""
    from policy_push.config import Settings
    from policy_push.matching.engines import CountingTokenizer, Hierarchies
    from policy_push.matching.stream import build_engine
    from policy_push.refdata import load_reference_data
    from policy_push.runtime import validation_context

    settings = Settings()
    ctx = validation_context(settings, load_reference_data(settings.regions_csv, settings.industries_csv))
    t = time.perf_counter()
    engine, rejected = build_engine(path, audience, ctx, Hierarchies.from_ref(ctx.ref), CountingTokenizer(),  # type: ignore[arg-type]
                                    n_jobs=jobs, progress=lambda msg: print(f"    {msg}", flush=True))
    if rejected:
        raise SystemExit(f"{path}: {len(rejected)} lines rejected, first: {rejected[0]}")
    engine.save(into / audience)
    took, n = time.perf_counter() - t, len(engine)
    del engine
    gc.collect()
    return took, n


def _scale(residents: int, enterprises: int, args: argparse.Namespace) -> dict[str, Any]:
    sizes = {"resident": residents, "enterprise": enterprises}
    into = args.workdir / f"index_{residents}_{enterprises}"
    row: dict[str, Any] = {"sizes": sizes, "build_s": {}}
    for audience, n in sizes.items():
        path = args.workdir / f"{audience}_{n}.jsonl"
        wrote = _ensure(path, audience, n)
        print(f"  {audience}s: {n:,} profiles in {path}" + (f" (written in {wrote:.0f} s)" if wrote else " (reused)"),
              flush=True)
        took, indexed = _build(path, audience, into, args.jobs)
        assert indexed == n, (indexed, n)
        row["build_s"][audience] = took
        print(f"  {audience}s built and saved in {took:.0f} s", flush=True)
    sample = ROOT / "tests" / "data" / "sample" / "policies.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _RESTARTED, str(into), str(args.policies), str(args.repeat), str(sample)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    row.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.split("\n\n")[0])
    ap.add_argument("--residents", type=int, default=10_000_000)
    ap.add_argument("--enterprises", type=int, default=2_000_000)
    ap.add_argument("--baseline-divisor", type=int, default=10, help="the baseline scale: the sizes divided by this")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--policies", type=int, default=20, help="distinct policies timed per audience")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "policy_push_province")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.platform()} | {os.cpu_count()} cpus | Python {sys.version.split()[0]} | "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC | load {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    d = args.baseline_divisor
    for residents, enterprises in ((args.residents // d, args.enterprises // d), (args.residents, args.enterprises)):
        print(f"\n## {residents:,} residents + {enterprises:,} enterprises", flush=True)
        rows.append(_scale(residents, enterprises, args))
    children_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    print(f"\n# finished {dt.datetime.now(dt.UTC):%H:%M} UTC, load {os.getloadavg()[0]:.2f}; "
          f"largest child process (a build worker or the restarted serve) peaked at {children_gb:.1f} GB RSS\n")
    print("| residents + enterprises | build s (res / ent) | restart: load both s | index memory GB | "
          "process RSS after the queries GB | query median ms (res / ent) | p99 ms (res / ent) | "
          "eligible per policy, median (res / ent) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s, b = r["sizes"], r["build_s"]
        print(f"| {s['resident']:,} + {s['enterprise']:,} | {b['resident']:.0f} / {b['enterprise']:.0f} | "
              f"{r['restart_s']:.1f} | {r['index_mb'] / 1e3:.2f} | {r['rss_mb'] / 1e3:.2f} | "
              f"{r['median_ms']['resident']:.1f} / {r['median_ms']['enterprise']:.1f} | "
              f"{r['p99_ms']['resident']:.1f} / {r['p99_ms']['enterprise']:.1f} | "
              f"{r['eligible_median']['resident']:,.0f} / {r['eligible_median']['enterprise']:,.0f} |")
    print("\ntargets (issue 16): index memory <= 6 GB, query median <= 50 ms, p99 <= 150 ms, restart <= 60 s")


if __name__ == "__main__":
    main()
