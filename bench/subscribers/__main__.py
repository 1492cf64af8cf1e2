"""Benchmark of "policies for me now" at 1,000,000 enterprise profiles, with wrk against `policy-push serve`.

    python -m bench.subscribers.prepare --dir /work/bench_i12        # once: 1M enterprises + policies
    python -m bench.subscribers --dir /work/bench_i12 [--rate 500] [--duration 60]

What runs: ``policy-push serve --no-worker`` (``POLICY_PUSH_WORKER_POLL_S`` and ``POLICY_PUSH_PREPARE_CAMPAIGNS_S`` at 86400, which defer the
leader's catch-up drafting of campaigns for the imported policies past the run) on the prepared SQLite database (its match index loaded
or built at start; the run waits until /healthz says it is ready). 2,000 subscriber accounts are made
in the database for random enterprises (account, owner link, a session token each: the sign-in by SMS
is not what is measured). Then wrk, paced by ``me_policies.lua`` to about ``--rate`` requests a
second, asks ``GET /api/v1/me/policies`` with random subscriber tokens; and, in the same run, the
baseline: the staff endpoint ``GET /api/v1/enterprises/{id}/policies`` (one match, no session, no
page shaping) for the same enterprises at the same rate. wrk's own latency distribution is printed,
and beside it the server process's own CPU time over the run (user + system, all threads, from
/proc) per answered request: what one request costs, which a machine shared with other work skews
far less than latency. ``--py-spy FILE`` records the server with py-spy during the subscriber run.

wrk keeps C connections each sending, waiting for the answer, pausing, sending again (a closed
loop): if the server stalls the offered rate falls instead of queueing. The achieved rate is printed
beside the latencies for that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import delete, select

from policy_push.config import Settings
from policy_push.security import PiiCipher
from policy_push.storage import create_engine, session_factory
from policy_push.storage.subscriber_tables import (
    SubscriberAccountRow,
    SubscriberLinkRow,
    SubscriberSessionRow,
)
from policy_push.storage.tables import EnterpriseRow
from policy_push.subscribers.sessions import token_hash

HERE = Path(__file__).resolve().parent
N_PEOPLE = 2000


async def make_people(settings: Settings, n: int, seed: int = 12) -> list[tuple[str, str]]:
    """(enterprise id, session token) for ``n`` random enterprises, each given an account, an owner link
    and a session, written straight to the database."""
    cipher = PiiCipher.from_settings(settings)
    engine = create_engine(settings)
    rng = random.Random(seed)
    try:
        async with session_factory(engine)() as s, s.begin():
            # the people of an earlier run go first: each run makes its own
            bench = SubscriberAccountRow.id.like("bench%")
            for table, column in ((SubscriberSessionRow, SubscriberSessionRow.account_id), (SubscriberLinkRow, SubscriberLinkRow.account_id)):
                await s.execute(delete(table).where(column.like("bench%")))
            await s.execute(delete(SubscriberAccountRow).where(bench))
            ids = (await s.execute(select(EnterpriseRow.id).order_by(EnterpriseRow.id))).scalars().all()
            picked = rng.sample(list(ids), n)
            now = dt.datetime.now(dt.UTC)
            out = []
            for i, eid in enumerate(picked):
                acc = f"bench{i:027d}"
                phone = f"170{i:08d}"
                token = secrets.token_urlsafe(32)
                s.add(SubscriberAccountRow(id=acc, state="active", phone_enc=cipher.encrypt("phone", phone),
                                           phone_hash=cipher.lookup_hash("phone", phone), phone_proven_at=now,
                                           created_at=now, updated_at=now))  # fmt: skip
                s.add(SubscriberLinkRow(account_id=acc, profile_kind="enterprise", profile_id=eid, role="owner", state="active",
                                        created_at=now))  # fmt: skip
                s.add(SubscriberSessionRow(account_id=acc, token_hash=token_hash(token), client="app", created_at=now,
                                           expires_at=now + dt.timedelta(days=1)))  # fmt: skip
                out.append((eid, token))
        return out
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, timeout_s: float = 1800) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
                body = json.loads(resp.read())
                if body.get("match_index", {}).get("ready"):
                    return body
        except Exception:
            pass
        time.sleep(2)
    raise SystemExit("the server did not get ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(base: str, lines_file: Path, *, rate: int, duration: int, connections: int, pid: int | None = None) -> tuple[str, dict]:
    pause_ms = int(connections * 1000 / rate)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "me_policies.lua"), base,
           "--", str(lines_file), str(pause_ms)]  # fmt: skip
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu0 if pid else 0.0
    stats: dict = {"command": " ".join(cmd), "cpu_s": cpu}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        stats[f"p{pct}"] = m.group(1) if m else "?"
    m = re.search(r"Requests/sec:\s+(\S+)", out)
    stats["rps"] = m.group(1) if m else "?"
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    stats["non2xx"] = m.group(1) if m else "0"
    m = re.search(r"(\d+) requests in", out)
    stats["requests"] = m.group(1) if m else "?"
    # the server's own CPU time over the run, per answered request: what a request costs, whatever the
    # load of the machine around it (latency on a shared machine says more about the neighbours)
    stats["cpu_ms"] = f"{cpu * 1000 / int(stats['requests']):.2f}" if pid and stats["requests"] not in ("?", "0") else "?"
    return out, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pp_bench_me"))
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--py-spy", type=Path, metavar="FILE",
                    help="also record the server with py-spy during the subscriber run: a flame graph (.svg) or "
                    "collapsed stacks (.txt)")
    args = ap.parse_args()
    env = json.loads((args.dir / "env.json").read_text())
    settings = Settings(data_dir=Path(env["POLICY_PUSH_DATA_DIR"]), pii_key=env["POLICY_PUSH_PII_KEY"], api_token=env["POLICY_PUSH_API_TOKEN"])
    # the leader's catch-up drafting (420 open policies x 1M profiles, imported by the CLI without drafts)
    # would run inside the server during the measurement: deferred by a day, since drafting is not what
    # this benchmark measures (bench/matching and bench/dispatch do)
    run_env = {**os.environ, **env, "POLICY_PUSH_LOG_LEVEL": "WARNING", "POLICY_PUSH_WORKER_POLL_S": "86400",
               "POLICY_PUSH_PREPARE_CAMPAIGNS_S": "86400"}
    subprocess.run([sys.executable, "-m", "policy_push", "db", "upgrade"], env=run_env, check=True)
    people = asyncio.run(make_people(settings, N_PEOPLE))
    me_file, staff_file = args.dir / "me_lines.tsv", args.dir / "staff_lines.tsv"
    me_file.write_text("".join(f"/api/v1/me/policies\t{tok}\n" for _, tok in people))
    staff_file.write_text("".join(f"/api/v1/enterprises/{eid}/policies\t{env['POLICY_PUSH_API_TOKEN']}\n" for eid, _ in people))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "policy_push", "serve", "--no-worker", "--port", str(port)], env=run_env)
    try:
        health = wait_ready(base)
        ready_s = time.monotonic() - t0
        # warm both paths (first requests pay lazy imports and caches)
        run_wrk(base, me_file, rate=100, duration=5, connections=10)
        run_wrk(base, staff_file, rate=100, duration=5, connections=10)
        load = os.getloadavg()
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(["py-spy", "record", "-p", str(server.pid), "-o", str(args.py_spy), "-d", str(args.duration),
                                    "-r", "50", "--nonblocking", "--format", "raw" if args.py_spy.suffix == ".txt" else "flamegraph"])  # fmt: skip
        _, me = run_wrk(base, me_file, rate=args.rate, duration=args.duration, connections=args.connections, pid=server.pid)
        if spy is not None:
            spy.wait(timeout=args.duration + 60)
        # the answer cache's counters so far (warm-up included), as the server reports them
        answers = wait_ready(base).get("match_index", {}).get("answers")
        _, staff = run_wrk(base, staff_file, rate=args.rate, duration=args.duration, connections=args.connections, pid=server.pid)
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=60)
    profiles = health["match_index"]["profiles"]
    print(f"# policies for me now, wrk against policy-push serve | {dt.date.today()} | {platform.node()} "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    print(f"# index: {profiles['enterprise']:,} enterprises, {health['match_index']['policies']} policies; server ready in "
          f"{ready_s:.0f} s; load average before/after: {load[0]:.2f} / {load_after[0]:.2f}")  # fmt: skip
    print(f"# wrk -t2 -c{args.connections} -d{args.duration}s, paced to ~{args.rate} req/s (me_policies.lua)")
    if answers is not None:
        print(f"# /healthz after the subscriber run (warm-up included): answer cache {answers['answers']} answers, "
              f"{answers['hits']} hits, {answers['misses']} misses")  # fmt: skip
    print()
    print("| endpoint | requests | achieved req/s | non-2xx | server CPU ms/req | p50 | p75 | p90 | p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, st in (("GET /api/v1/me/policies (subscriber token)", me),
                     ("baseline: GET /api/v1/enterprises/{id}/policies (staff token)", staff)):  # fmt: skip
        print(f"| {name} | {st['requests']} | {st['rps']} | {st['non2xx']} | {st['cpu_ms']} | {st['p50']} | {st['p75']} | "
              f"{st['p90']} | {st['p99']} |")  # fmt: skip


if __name__ == "__main__":
    main()
