"""Region sharding with real processes on PostgreSQL: two ``serve`` nodes, each holding the profiles of
some of Panjin's districts (the shard map set with ``policy-push shards set``), answer every sample
policy's match list exactly as one node holding every profile, and draft campaigns with exactly its
recipients; a shard node restarted loads its saved index (no text cut) and answers the same; a region
moved with ``policy-push shards set`` while the nodes run is taken up within seconds, answers equal to
one node's again; a write lands only in the index of the shard holding its region; a profile's own
policies (staff's view and the subscriber's ``/me/policies``) asked of either node answer as one node
does, the other node forwarding to the profile's home; a shard that is down fails a request that needs
it with a 503 naming it, while a policy whose regions it does not hold is still answered."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from policy_push.campaigns.drafting import prepare_campaign
from policy_push.config import Settings
from policy_push.matching import MatchService
from policy_push.runtime import open_runtime
from policy_push.storage import shards as shard_store
from policy_push.subscribers.sessions import COOKIE_NAME, CookieSealer
from tests.factories import enterprise_doc

from .cluster import (
    AUTH,
    ON,
    Node,
    cli,
    comparable,
    free_port,
    get_json,
    health,
    one_node_profile_answers,
    page,
    profiles_by_shard,
    run_async,
    sample_database,
    single_node_answers,
    start_node,
    stop,
    subscriber_token,
    wait_ready,
)

pytestmark = pytest.mark.postgres

SERVICE = "cluster-service-token"
#: first by name, so it also holds the profiles without a region: 大洼区 and 盘山县
DAWA = ("dawa", "211104,211122")
#: 双台子区 and 兴隆台区
XLT = ("xinglongtai", "211102,211103")
#: its region criterion names 211104 and 211122 only: evaluated on ``dawa`` alone
DAWA_ONLY = "pj-nyncj-2026-011"
#: drafted on a shard node and on one node: within 211100 (both shards), dawa's alone, residents, no region criterion
DRAFTED = ("pj-gxj-2026-012", DAWA_ONLY, "pj-rsj-2026-025", "pj-mzj-2026-003")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shards")


@pytest.fixture(scope="module")
def database(tmp: Path) -> Iterator[Settings]:
    yield from sample_database(tmp)


@pytest.fixture(scope="module")
def shards(database: Settings, tmp: Path) -> Iterator[dict[str, Node]]:
    ports = {name: free_port() for name, _ in (DAWA, XLT)}
    for name, regions in (DAWA, XLT):
        done = cli(database, tmp, "shards", "set", name, "--url", f"http://127.0.0.1:{ports[name]}", "--regions", regions)
        assert done.returncode == 0, done.stderr
    listed = cli(database, tmp, "shards", "list")
    assert listed.stdout.splitlines()[0].startswith("dawa\t"), listed.stdout
    began = time.monotonic()
    nodes = {name: start_node(name, database, tmp, port=ports[name], POLICY_PUSH_SHARD=name, POLICY_PUSH_SERVICE_TOKEN=SERVICE)
             for name, _ in (DAWA, XLT)}  # fmt: skip
    try:
        wait_ready(list(nodes.values()))
        print(f"2 shard nodes ready in {time.monotonic() - began:.1f} s")
        yield nodes
    finally:
        stop(list(nodes.values()))


def test_the_shard_map_refuses_mistakes_in_one_line(database: Settings, tmp: Path, shards: dict[str, Node]) -> None:
    for args, said in (
        (("--url", "ftp://10.0.0.5", "--regions", "2111"), "must be a base URL"),
        (("--url", "http://10.0.0.5:8080", "--regions", "21a"), "must be up to 9 digits"),
        (("--url", "http://10.0.0.5:8080", "--regions", "211104"), "already belongs to shard 'dawa'"),
    ):
        done = cli(database, tmp, "shards", "set", "third", *args)
        assert done.returncode == 2 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "third" not in cli(database, tmp, "shards", "list").stdout


@pytest.fixture(scope="module")
def expected(database: Settings) -> dict[str, dict[str, object]]:
    """One node's answers, before any test writes a profile."""
    answers = run_async(lambda: single_node_answers(database))
    assert len(answers) == 24
    return answers


def _held(shards: dict[str, Node]) -> dict[str, dict[str, int]]:
    held = {name: health(node)["match_index"]["profiles"] for name, node in shards.items()}
    # each holds part of the profiles, together all of them once
    assert all(0 < held[n]["enterprise"] < 400 and 0 < held[n]["resident"] < 600 for n in held), held
    assert sum(h["enterprise"] for h in held.values()) == 400 and sum(h["resident"] for h in held.values()) == 600
    return held


def _all_as_one_node(nodes: list[Node], expected: dict[str, dict[str, object]]) -> None:
    for policy_id, want in expected.items():
        for node in nodes:
            status, body = page(node, policy_id)
            assert status == 200, body
            got = comparable(body)
            if got != want:
                first = next((i, a, b) for i, (a, b) in enumerate(zip(got["items"], want["items"], strict=False)) if a != b) \
                    if got["items"] != want["items"] else None
                pytest.fail(f"merged answer on {node.name} differs from one node on {policy_id}: first item differing {first}; "
                            f"others equal: {[k for k in got if got[k] == want[k]]}")


def test_two_shards_answer_exactly_as_one_node(shards: dict[str, Node], expected: dict[str, dict[str, object]]) -> None:
    held = _held(shards)
    began = time.perf_counter()
    _all_as_one_node(list(shards.values()), expected)
    print(f"48 merged match lists in {time.perf_counter() - began:.2f} s; profiles held: {held}")


#: profiles compared per shard and audience (each with some policy in its answer), of the first few in id order
PER_GROUP, TRIED = 3, 15


@dataclass
class Homes:
    """Profiles of each shard, one node's answers for them (staff's, the subscriber's), and a subscriber
    session for one profile per shard and audience."""

    picked: dict[str, list[tuple[str, str]]]
    answers: dict[tuple[str, str], tuple[Any, Any]]
    tokens: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def homes(database: Settings, shards: dict[str, Node]) -> Homes:
    groups = run_async(lambda: profiles_by_shard(database))
    first = {(name, aud): [p for p in groups[name] if p[0] == aud][:TRIED] for name in shards for aud in ("enterprise", "resident")}
    answers = run_async(lambda: one_node_profile_answers(database, [p for ps in first.values() for p in ps]))
    picked: dict[str, list[tuple[str, str]]] = {name: [] for name in shards}
    tokens = {}
    for (name, aud), tried in first.items():
        fit = [p for p in tried if answers[p][0]["items"] or answers[p][0]["may_qualify"]]
        assert len(fit) >= PER_GROUP, (name, aud, len(fit))
        picked[name] += fit[:PER_GROUP]
        tokens[fit[0]] = run_async(lambda p=fit[0]: subscriber_token(database, *p))  # type: ignore[misc]
    return Homes(picked, answers, tokens)


def _get_as(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


def _staff_url(node: Node, audience: str, pid: str, route: str | None = None) -> str:
    return f"{node.base}/api/v1/{route or audience + 's'}/{pid}/policies?date={ON.isoformat()}"


def test_a_profiles_policies_are_answered_by_either_node_as_one_node(shards: dict[str, Node], homes: Homes) -> None:
    began, asked = time.perf_counter(), 0
    for home, picked in homes.picked.items():
        for audience, pid in picked:
            staff, me = homes.answers[(audience, pid)]
            for node in shards.values():  # the home answers itself; the other forwards to it
                status, body = get_json(_staff_url(node, audience, pid))
                assert (status, body) == (200, staff), f"{node.name} on {audience} {pid} (held by {home}): {status} {body}"
                status, body = get_json(_staff_url(node, audience, pid, "profiles"))
                assert (status, body) == (200, staff), f"{node.name} on profiles/{pid} (held by {home}): {status} {body}"
                asked += 2
                token = homes.tokens.get((audience, pid))
                if token is not None:
                    status, body = _get_as(f"{node.base}/api/v1/me/policies?date={ON.isoformat()}", token)
                    assert (status, body) == (200, me), f"{node.name} on me/policies of {pid} (held by {home}): {status} {body}"
                    asked += 1
    print(f"{asked} profile answers equal to one node's on both nodes in {time.perf_counter() - began:.2f} s; "
          f"profiles {homes.picked}")


def _page_as(node: Node, cookie: str) -> str:
    request = urllib.request.Request(f"{node.base}/me", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(resp.read().decode())


def test_a_subscribers_page_is_the_same_on_either_node(database: Settings, shards: dict[str, Node], homes: Homes) -> None:
    """The /me page (policies for me, today) of a profile of each shard: the node not holding it shows
    what the home shows, every policy of the home's answer in it."""
    sealer = CookieSealer(database.pii_key.get_secret_value())  # type: ignore[union-attr]
    for (audience, pid), token in homes.tokens.items():
        cookie = sealer.seal(token, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        pages = {name: _page_as(node, cookie) for name, node in shards.items()}
        status, me = _get_as(f"{shards['dawa'].base}/api/v1/me/policies", token)
        assert status == 200 and me["items"] + me["may_qualify"], me
        assert all(f"/p/{item['policy_id']}" in pages["dawa"] for item in me["items"] + me["may_qualify"]), pid
        assert pages["dawa"] == pages["xinglongtai"], f"the /me page of {audience} {pid} differs between the nodes"


def _recipients(node: Node, campaign_id: str) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    while True:
        status, body = get_json(f"{node.base}/api/v1/campaigns/{campaign_id}/recipients?limit=200&offset={len(lines)}")
        assert status == 200, body
        lines += body["items"]
        if not body["items"] or len(lines) >= body["total"]:
            return sorted(lines, key=lambda line: str(line["profile_id"]))


def _post(node: Node, path: str, doc: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(node.base + path, data=json.dumps(doc).encode(),
                                     headers={**AUTH, "Content-Type": "application/json"}, method="POST")  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


async def _map_written_at(settings: Settings) -> float:
    """When the shard map was last written (the CLI stamps the row just before its commit), as ``time.time()``."""
    async with open_runtime(settings) as runtime, runtime.sessions() as session:
        stamp = await session.scalar(select(func.max(shard_store.shards.c.updated_at)))
    assert stamp is not None
    return float(stamp.timestamp())


async def _set_prefixes_silently(settings: Settings, name: str, prefixes: list[str]) -> float:
    """The map changed without the notification the CLI sends: only the nodes' poll can find it.
    Returns when it committed (``time.time()``)."""
    async with open_runtime(settings) as runtime:
        async with runtime.sessions() as session, session.begin():
            await session.execute(shard_store.shards.update().where(shard_store.shards.c.name == name)
                                  .values(region_prefixes=prefixes))  # fmt: skip
        return time.time()


def _until_followed(shards: dict[str, Node], expected: dict[str, dict[str, object]], old_maps: set[str],
                    policy_id: str = "pj-gxj-2026-012") -> list[int]:
    """Ask for a policy both shards hold until the answer is one node's and every node holds the new map;
    the statuses seen meanwhile (never a wrong list)."""
    began, statuses = time.monotonic(), []
    while True:
        status, body = page(shards["dawa"], policy_id)
        statuses.append(status)
        assert status in (200, 503), body
        assert status == 503 or comparable(body) == expected[policy_id], "a wrong answer while the map changes"
        if status == 200:
            index = [health(node)["match_index"] for node in shards.values()]
            if all(i["shard_map"] not in old_maps and not i["adjusting"] for i in index):
                return statuses
        assert time.monotonic() - began < 30, f"the new map was not taken up: {statuses[-5:]}"
        time.sleep(0.05)


async def _drafted_by_one_node(settings: Settings) -> dict[str, str]:
    """Each of DRAFTED drafted in this process by a MatchService holding every profile."""
    async with open_runtime(settings) as runtime:
        service = MatchService(runtime.sessions, runtime.cipher, runtime.ref)
        await service.start()
        try:
            out = {}
            for policy_id in DRAFTED:
                prepared = await prepare_campaign(runtime.sessions, service, policy_id, prepared_by="one-node",
                                                  settings=runtime.settings)  # fmt: skip
                assert prepared is not None
                out[policy_id] = prepared.id
            return out
        finally:
            await service.close()


def test_a_campaign_drafted_on_a_shard_node_has_one_nodes_recipients(database: Settings, shards: dict[str, Node]) -> None:
    node = shards["dawa"]
    began = time.perf_counter()
    sharded = {}
    for policy_id in DRAFTED:  # drafted through the fan-out: dawa asks xinglongtai for its part
        status, body = _post(node, "/api/v1/campaigns", {"policy_id": policy_id})
        assert status == 201, body
        sharded[policy_id] = str(body["id"])
    took = time.perf_counter() - began
    single = run_async(lambda: _drafted_by_one_node(database))
    sizes = {}
    for policy_id in DRAFTED:
        got, want = _recipients(node, sharded[policy_id]), _recipients(node, single[policy_id])
        assert want, policy_id
        assert got == want, f"the campaign drafted on a shard node differs from one node's on {policy_id}"
        sizes[policy_id] = len(want)
    print(f"{len(DRAFTED)} campaigns drafted on shard node dawa in {took:.2f} s, recipients equal to one node's: {sizes}")


def test_a_restarted_shard_node_loads_its_saved_index(database: Settings, tmp: Path, shards: dict[str, Node],
                                                      expected: dict[str, dict[str, object]]) -> None:
    old = shards["xinglongtai"]
    held = health(old)["match_index"]["profiles"]
    stop([old])  # SIGTERM: it saves what changed since its last save
    began = time.monotonic()
    node = start_node("xinglongtai", database, tmp, port=int(old.base.rsplit(":", 1)[1]),
                      POLICY_PUSH_SHARD="xinglongtai", POLICY_PUSH_SERVICE_TOKEN=SERVICE)  # fmt: skip
    shards["xinglongtai"] = node  # stopped by the fixture
    wait_ready([node])
    took = time.monotonic() - began
    index = health(node)["match_index"]
    assert index["started"] == "loaded" and index["texts_cut"] == 0, index
    assert index["profiles"] == held
    _all_as_one_node(list(shards.values()), expected)
    print(f"shard node xinglongtai restarted: ready in {took:.1f} s, index {index['started']}, "
          f"{index['texts_cut']} texts tokenised, profiles {index['profiles']}")


def test_a_region_moved_while_the_nodes_run_is_followed_within_seconds(
    database: Settings, tmp: Path, shards: dict[str, Node], expected: dict[str, dict[str, object]]
) -> None:
    before = _held(shards)
    maps = {health(n)["match_index"]["shard_map"] for n in shards.values()}
    assert len(maps) == 1
    xlt = shards["xinglongtai"]
    # 211103 兴隆台区 leaves xinglongtai; no prefix covers it any more, so the first shard, dawa, holds it
    began = time.monotonic()
    done = cli(database, tmp, "shards", "set", "xinglongtai", "--url", xlt.base, "--regions", "211102")
    assert done.returncode == 0, done.stderr
    cli_done = time.monotonic()
    statuses = _until_followed(shards, expected, maps)
    followed, equal_at = time.monotonic() - cli_done, time.time()
    written = run_async(lambda: _map_written_at(database))
    after = _held(shards)
    assert after["dawa"]["enterprise"] > before["dawa"]["enterprise"] and after["dawa"]["resident"] > before["dawa"]["resident"]
    _all_as_one_node(list(shards.values()), expected)
    print(f"region 211103 moved (CLI run {cli_done - began:.2f} s): answers equal one node's {equal_at - written:.2f} s after "
          f"the map row was written, {followed:.2f} s after the CLI returned; {statuses.count(503)} answers 503 and "
          f"{statuses.count(200)} 200 meanwhile; held {before} -> {after}")

    # and back, written straight into the table: no notification, the nodes' poll (every 2 s) finds it
    maps = {health(n)["match_index"]["shard_map"] for n in shards.values()}
    committed = run_async(lambda: _set_prefixes_silently(database, "xinglongtai", ["211102", "211103"]))
    statuses = _until_followed(shards, expected, maps)
    followed = time.time() - committed
    assert _held(shards) == before
    _all_as_one_node(list(shards.values()), expected)
    print(f"region 211103 moved back without a notification: answers equal one node's {followed:.2f} s "
          f"after the commit; {statuses.count(503)} answers 503 and {statuses.count(200)} 200 meanwhile")


def test_a_shard_part_needs_the_service_token(shards: dict[str, Node], homes: Homes) -> None:
    base = shards["dawa"].base + "/internal/shards/dawa/matches"
    policy = get_json(f"{shards['dawa'].base}/api/v1/policies/pj-gxj-2026-012")[1]["policy"]
    ask = json.dumps({"policy": policy, "date": ON.isoformat(), "top_k": 5, "min_score": None}).encode()

    def status(headers: dict[str, str], url: str = base) -> int:
        request = urllib.request.Request(url, data=ask, headers={**headers, "Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert status({}) == 401
    assert status(AUTH) == 403  # a staff token is not the service token
    service = {"Authorization": f"Bearer {SERVICE}"}
    assert status(service) == 200
    assert status(service, base.replace("/shards/dawa/", "/shards/xinglongtai/")) == 409  # not the shard it holds

    # a profile's policies asked of its home: the id in the body; only the service token; never forwarded again
    (held, *_), (elsewhere, *_) = homes.picked["dawa"], homes.picked["xinglongtai"]
    subscriber = {"Authorization": f"Bearer {next(iter(homes.tokens.values()))}"}
    for route in ("profile-policies", "me-policies"):
        url = f"{shards['dawa'].base}/internal/shards/dawa/{route}"
        for pid, audience in ((held[1], held[0]), (elsewhere[1], elsewhere[0])):
            ask = json.dumps({"audience": audience, "profile_id": pid, "date": ON.isoformat(), "limit": 20}).encode()
            assert [status(h, url) for h in ({}, AUTH, subscriber)] == [401, 403, 403], route
            assert status(service, url) == (200 if pid == held[1] else 409), (route, pid)


def test_a_write_is_indexed_by_the_shard_holding_its_region(shards: dict[str, Node]) -> None:
    before = {name: health(node)["match_index"]["profiles"]["enterprise"] for name, node in shards.items()}
    firm = enterprise_doc(77, region="211102")
    request = urllib.request.Request(f"{shards['dawa'].base}/api/v1/enterprises", data=json.dumps(firm).encode(),
                                     headers={**AUTH, "Content-Type": "application/json"}, method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status in (200, 201)
    deadline = time.monotonic() + 15
    while health(shards["xinglongtai"])["match_index"]["profiles"]["enterprise"] != before["xinglongtai"] + 1:
        assert time.monotonic() < deadline, "the shard holding 211102 did not index the new firm"
        time.sleep(0.1)
    # written through dawa, held by xinglongtai only
    assert health(shards["dawa"])["match_index"]["profiles"]["enterprise"] == before["dawa"]
    # its policies are answered by the node holding it; the other asks that node, never answering "none"
    asked = f"/api/v1/enterprises/{firm['id']}/policies?date={ON.isoformat()}"
    status, body = get_json(shards["xinglongtai"].base + asked)
    assert status == 200 and body["items"], body
    assert get_json(shards["dawa"].base + asked) == (200, body)


def test_a_shard_that_is_down_is_a_503_naming_it(shards: dict[str, Node], homes: Homes) -> None:
    status, whole = page(shards["dawa"], DAWA_ONLY)  # asked while both are up
    assert status == 200, whole
    down = shards["xinglongtai"]
    down.proc.send_signal(signal.SIGKILL)
    down.proc.wait(10)
    status, body = page(shards["dawa"], "pj-gxj-2026-012")  # within 211100: both shards hold its regions
    assert status == 503, body
    (error,) = body["errors"]
    assert error["shard"] == "xinglongtai" and "xinglongtai" in error["msg"], error
    # a policy whose regions dawa alone holds needs no other shard, and is still whole
    status, body = page(shards["dawa"], DAWA_ONLY)
    assert status == 200, body
    assert comparable(body) == comparable(whole)
    assert body["counts"]["profiles"] == 401  # the sample's 400 firms and the one written above, held by either shard
    # a profile xinglongtai holds: its policies are a 503 naming it on dawa, never an empty list
    audience, pid = next(p for p in homes.picked["xinglongtai"] if p in homes.tokens)
    for status, body in (get_json(_staff_url(shards["dawa"], audience, pid)),
                         _get_as(f"{shards['dawa'].base}/api/v1/me/policies?date={ON.isoformat()}", homes.tokens[(audience, pid)])):
        assert status == 503, body
        (error,) = body["errors"]
        assert error["shard"] == "xinglongtai" and "xinglongtai" in error["msg"], error
    # and dawa's own still answer
    audience, pid = homes.picked["dawa"][0]
    assert get_json(_staff_url(shards["dawa"], audience, pid))[0] == 200
