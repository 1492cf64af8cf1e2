"""Helpers for the multi-node tests: a PostgreSQL schema of their own holding the bundled sample, real
``policy-push serve`` processes started once per module, and the single-node answer computed in this
process by a ``MatchService`` built from the same database."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from policy_push.cli.demo import prepare
from policy_push.config import Settings
from policy_push.matching import MatchService
from policy_push.runtime import open_runtime
from policy_push.security import generate_key
from policy_push.storage import PolicyRepository, create_engine
from policy_push.storage import shards as shard_store
from policy_push.storage.contacts import profile_table
from policy_push.storage.subscriber_tables import SubscriberAccountRow, SubscriberLinkRow
from policy_push.subscribers.for_me import policies_for_me
from policy_push.subscribers.sessions import open_session
from policy_push.web.bodies import encode_json
from policy_push.web.params import MAX_PAGE_SIZE
from tests.conftest import DEFAULT_PG_URL, PG_URL_ENV, run_async

TOKEN = "cluster-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: every node matches on this day, so that ages and years since founding agree
ON = dt.date(2026, 12, 1)


@dataclass
class Cluster:
    settings: Settings
    nodes: dict[str, Node] = field(default_factory=dict)


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ddl(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def sample_database(tmp: Path) -> Iterator[Settings]:
    """Settings on a new PostgreSQL schema holding the bundled sample (24 policies, 400 enterprises,
    600 residents); the schema is dropped afterwards."""
    admin = os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    schema = f"pp_test_{secrets.token_hex(6)}_nodes"
    run_async(lambda: _ddl(admin, f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin).update_query_dict({"search_path": schema}).render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp / "data", pii_key=generate_key(), api_token=TOKEN, demo=False)
    try:
        run_async(lambda: prepare(settings, quiet=True))
        yield settings
    finally:
        run_async(lambda: _ddl(admin, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _secret(value: Any) -> str:
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def node_env(settings: Settings, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    env.update({
        "POLICY_PUSH_DATABASE_URL": settings.effective_database_url, "POLICY_PUSH_PII_KEY": _secret(settings.pii_key),
        "POLICY_PUSH_DATA_DIR": str(data_dir), "POLICY_PUSH_API_TOKEN": TOKEN, "POLICY_PUSH_LOG_LEVEL": "WARNING",
        **extra,
    })  # fmt: skip
    return env


def free_port() -> int:
    return _free_port()


def cli(settings: Settings, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``policy-push ARGS`` against the module's database."""
    return subprocess.run([sys.executable, "-m", "policy_push", *args], env=node_env(settings, tmp / "cli"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def start_node(name: str, settings: Settings, tmp: Path, *, port: int | None = None, **extra: str) -> Node:
    """A ``serve`` process with a data dir of its own (no node shares another's saved index)."""
    port = port or _free_port()
    log = tmp / f"{name}.log"
    env = node_env(settings, tmp / name, **extra)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "policy_push", "serve", "--port", str(port), "--no-worker"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Node(name, proc, f"http://127.0.0.1:{port}", log)


def get_json(url: str, *, timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def health(node: Node) -> dict[str, Any]:
    return get_json(f"{node.base}/healthz")[1]  # type: ignore[no-any-return]


def wait_ready(nodes: list[Node], timeout_s: float = 120.0) -> None:
    began = time.monotonic()
    for node in nodes:
        while True:
            assert node.proc.poll() is None, f"{node.name} exited: {node.log.read_text(errors='replace')[-2000:]}"
            try:
                if health(node).get("match_index", {}).get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() - began < timeout_s, f"{node.name} not ready: {node.log.read_text(errors='replace')[-2000:]}"
            time.sleep(0.2)


def stop(nodes: list[Node]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait(10)


def page(node: Node, policy_id: str) -> tuple[int, Any]:
    """The first page (as large as pages go) of a policy's match list, as a client sees it."""
    return get_json(f"{node.base}/api/v1/policies/{policy_id}/matches?date={ON.isoformat()}&limit={MAX_PAGE_SIZE}", timeout=60)


async def single_node_answers(settings: Settings) -> dict[str, dict[str, Any]]:
    """What one node holding every profile answers for each stored policy, computed here by a
    ``MatchService`` built from the database: the same fields and cut as the match list API."""
    out: dict[str, dict[str, Any]] = {}
    async with open_runtime(settings) as runtime:
        service = MatchService(runtime.sessions, runtime.cipher, runtime.ref)
        await service.start()
        try:
            async with runtime.sessions() as session:
                stored, _ = await PolicyRepository(session).list(limit=500, offset=0)
            for s in stored:
                r = await service.match_policy(s.policy, on=ON, top_k=MAX_PAGE_SIZE)
                rows = r.eligible + r.unknown
                out[s.policy.id] = json.loads(json.dumps({
                    "counts": r.counts, "histogram": r.histogram, "no_criteria": r.no_criteria,
                    "items": rows[:MAX_PAGE_SIZE], "total": r.eligible_total + r.counts["unknown"],
                }))  # fmt: skip
        finally:
            await service.close()
    return out


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("counts", "histogram", "no_criteria", "items", "total")}


#: the answers a profile's own policies are compared on: staff's view and the subscriber's (their defaults)
STAFF_LIMIT, ME_LIMIT = 50, 20


async def one_node_profile_answers(settings: Settings, picks: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Per (audience, id) of ``picks``, what one node holding every profile answers to staff's
    ``/{audience}s/{id}/policies`` and to the subscriber's ``/me/policies`` on ``ON``, as decoded JSON."""
    out: dict[tuple[str, str], tuple[Any, Any]] = {}
    async with open_runtime(settings) as runtime:
        service = MatchService(runtime.sessions, runtime.cipher, runtime.ref)
        await service.start()
        try:
            for audience, pid in picks:
                records = await service.policies_for_profile(audience, pid, on=ON, top_k=STAFF_LIMIT, include_unknown=True)
                staff = {"profile_id": pid, "audience": audience, "date": ON.isoformat(),
                         "items": [r for r in records if r["eligible"]], "may_qualify": [r for r in records if not r["eligible"]]}
                me = await policies_for_me(service, audience, pid, on=ON, limit=ME_LIMIT)
                out[(audience, pid)] = json.loads(encode_json(staff)), json.loads(encode_json(me))
        finally:
            await service.close()
    return out


async def profiles_by_shard(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    """Every profile's (audience, id), by the shard holding it under the stored map, in id order."""
    out: dict[str, list[tuple[str, str]]] = {}
    async with open_runtime(settings) as runtime, runtime.sessions() as session:
        current = await shard_store.load(session)
        for audience in ("enterprise", "resident"):
            table = profile_table(audience)
            for pid, region in await session.execute(select(table.c.id, table.c.region).order_by(table.c.id)):
                out.setdefault(current.holder(region), []).append((audience, pid))
    return out


async def subscriber_token(settings: Settings, audience: str, profile_id: str) -> str:
    """A signed-in app session of a new account linked (owner, active) to the profile: the rows the
    sign-in and link flows write (their own tests cover those flows), so the test needs no SMS."""
    now = dt.datetime.now(dt.UTC)
    account_id = secrets.token_hex(16)
    async with open_runtime(settings) as runtime, runtime.sessions() as session, session.begin():
        session.add(SubscriberAccountRow(id=account_id, state="active", created_at=now, updated_at=now))
        session.add(SubscriberLinkRow(account_id=account_id, profile_kind=audience, profile_id=profile_id, role="owner",
                                      state="active", created_at=now))  # fmt: skip
        await session.flush()
        token, _ = await open_session(session, account_id, client="app", now=now)
    return token
