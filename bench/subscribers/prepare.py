"""Build the benchmark's database: 1,000,000 enterprise profiles and the policies in one SQLite file.

    python -m bench.subscribers.prepare --dir /tmp/pp_bench_me [--n 1000000]

Profiles come from ``bench.synthetic`` (valid Panjin-like enterprises, as the import benchmark's);
policies (``bench.matching.generate``) are the 24 samples plus the valid ones of 500 generated (region / size / qualification criteria, sample
texts, some past their deadline). Both go in through ``policy-push import``, the real import path.
Prints the settings to give ``policy-push serve`` (the PII key is random per build).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.matching.generate import policies
from bench.synthetic import enterprises, write_jsonl
from policy_push.security import generate_key

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "sample" / "policies.jsonl"


def build(root: Path, n: int) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    env_file = root / "env.json"
    env = json.loads(env_file.read_text()) if env_file.exists() else {
        "POLICY_PUSH_DATA_DIR": str(root / "data"), "POLICY_PUSH_PII_KEY": generate_key(),
        "POLICY_PUSH_API_TOKEN": "bench-token",
    }  # fmt: skip
    env_file.write_text(json.dumps(env))
    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    pol = root / "policies.jsonl"
    with pol.open("w", encoding="utf-8") as fh:
        for p in sample + policies(500, "enterprise", sample):
            if p.get("apply_until") and p.get("apply_from") and p["apply_until"] < p["apply_from"]:
                continue  # the generator pairs some past deadlines with later starts: not a valid policy
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    ent = root / "enterprises.jsonl"
    t0 = time.perf_counter()
    if not ent.exists():
        write_jsonl(enterprises(n), ent)
    print(f"generated {n:,} enterprises in {time.perf_counter() - t0:.1f} s", flush=True)
    run_env = {**os.environ, **env}
    cli = [sys.executable, "-m", "policy_push"]
    subprocess.run([*cli, "db", "upgrade"], env=run_env, check=True)
    for kind, path in (("policies", pol), ("enterprises", ent)):
        t0 = time.perf_counter()
        subprocess.run([*cli, "import", kind, str(path), "--quiet"], env=run_env, check=True)
        print(f"imported {kind} in {time.perf_counter() - t0:.1f} s", flush=True)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pp_bench_me"))
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    env = build(args.dir, args.n)
    print(json.dumps(env))


if __name__ == "__main__":
    main()
