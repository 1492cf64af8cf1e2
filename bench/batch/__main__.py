"""Batch match end to end (issue 16): ``python -m bench.batch --sizes 100000 1000000``.

For each size N: N enterprises and N residents with realistic, non-repeating text
(``bench.batch.data``), the 24 sample policies; then, one after the other in the same run,
``policy-push match`` (streaming, ``--jobs`` worker processes) and the naive per-profile loop
(``bench.batch.naive``), each as its own process writing every eligible and may-qualify pair.
Measured: wall time, CPU time of the process and its children, peak memory of the whole process
tree polled every 0.1 s, both as summed RSS (counts the pages a forked worker shares with its
parent once per process) and as summed PSS (``/proc/<pid>/smaps_rollup``: a shared page divided
among its sharers, the memory really held), pairs written, and whether both wrote the same
(policy, profile, eligible) pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .data import write_enterprises, write_residents

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "tests" / "data" / "sample" / "policies.jsonl"
DAY = "2026-11-30"


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def _field_kb(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) of ``pid`` and its descendants, in kB.  RSS counts a page shared
    by a forked worker and its parent once in each; PSS divides it among them, so the PSS sum
    is the memory the tree really holds."""
    rss = pss = 0
    for p in _tree(pid):
        rss += _field_kb(f"/proc/{p}/status", "VmRSS:")
        pss += _field_kb(f"/proc/{p}/smaps_rollup", "Pss:")
    return rss, pss


def run(cmd: list[str], out: Path, err: Path) -> dict[str, float]:
    """Run ``cmd`` with stdout to ``out``; wall, CPU (self + children), peak tree RSS and PSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=ROOT)
        peak = [0, 0]

        def poll() -> None:
            while proc.poll() is None:
                rss, pss = _tree_memory_kb(proc.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
                time.sleep(0.1)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        code = proc.wait()
        th.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code not in (0, 1):
        sys.exit(f"{cmd[2]} failed with exit status {code}: see {err}")
    return {"wall": wall, "cpu": cpu, "peak_mb": peak[0] / 1024, "peak_pss_mb": peak[1] / 1024}


def pair_keys(path: Path) -> np.ndarray:
    """Sorted 64-bit digests of the (policy, profile, eligible) pairs a run wrote."""
    keys = []
    with open(path, "rb") as f:
        for line in f:
            r = json.loads(line)
            h = hashlib.blake2b(f"{r['policy_id']}\x1f{r['profile_id']}\x1f{r['eligible']}".encode(), digest_size=8)
            keys.append(int.from_bytes(h.digest(), "little"))
    return np.sort(np.asarray(keys, np.uint64))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of policy-push match")
    ap.add_argument("--data", type=Path, help="keep the generated files here (reused when present)")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    data = args.data or work
    data.mkdir(parents=True, exist_ok=True)
    print(f"# batch match, end to end | {platform.platform()} | {os.cpu_count()} cpus | Python "
          f"{platform.python_version()} | {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    try:
        for n in args.sizes:
            ent, res = data / f"enterprises-{n}.jsonl", data / f"residents-{n}.jsonl"
            if not ent.exists():
                write_enterprises(ent, n)
            if not res.exists():
                write_residents(res, n)
            common = ["--policies", str(POLICIES), "--enterprises", str(ent), "--residents", str(res), "--date", DAY]
            engine_out, naive_out = work / f"engine-{n}.jsonl", work / f"naive-{n}.jsonl"
            eng = run([sys.executable, "-m", "policy_push", "match", *common, "--jobs", str(args.jobs)],
                      engine_out, work / f"engine-{n}.err")
            stages = (work / f"engine-{n}.err").read_text(encoding="utf-8").splitlines()
            for line in stages:
                if " in " in line and ("indexed" in line or "records" in line):
                    print(f"#   {line}")
            eng_keys = pair_keys(engine_out)
            rows.append((f"policy-push match --jobs {args.jobs}", n, len(eng_keys), eng, ""))
            engine_out.unlink()
            if not args.skip_naive:
                nai = run([sys.executable, "-m", "bench.batch.naive", *common], naive_out, work / f"naive-{n}.err")
                same = np.array_equal(pair_keys(naive_out), eng_keys)
                rows.append(("naive per-profile loop", n, len(eng_keys), nai, "yes" if same else "NO"))
                naive_out.unlink()
            print(f"# load average after {n:,}: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| run | enterprises + residents | pairs written | wall s | CPU s (all processes) | peak RSS MB (process tree,"
          " summed) | peak PSS MB (process tree) | same pairs as the engine |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    base = {}
    for name, n, pairs, m, same in rows:
        if name.startswith("policy-push"):
            base[n] = m["wall"]
        ratio = f" (×{m['wall'] / base[n]:.1f})" if not name.startswith("policy-push") else ""
        print(f"| {name} | {n:,} + {n:,} | {pairs:,} | {m['wall']:.1f}{ratio} | {m['cpu']:.1f} | {m['peak_mb']:,.0f}"
              f" | {m['peak_pss_mb']:,.0f} | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
