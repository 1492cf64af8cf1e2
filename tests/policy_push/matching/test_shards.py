"""Region sharding with real processes on PostgreSQL: two ``serve`` nodes, each holding the profiles of
some of Panjin's districts (the shard map set with ``policy-push shards set``), answer every sample
policy's match list exactly as one node holding every profile; a write lands only in the index of the
shard holding its region; a shard that is down fails a request that needs it with a 503 naming it,
while a policy whose regions it does not hold is still answered."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_push.config import Settings
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
    page,
    run_async,
    sample_database,
    single_node_answers,
    start_node,
    stop,
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


def test_two_shards_answer_exactly_as_one_node(database: Settings, shards: dict[str, Node]) -> None:
    held = {name: health(node)["match_index"]["profiles"] for name, node in shards.items()}
    # each holds part of the profiles, together all of them once
    assert all(0 < held[n]["enterprise"] < 400 and 0 < held[n]["resident"] < 600 for n in held), held
    assert sum(h["enterprise"] for h in held.values()) == 400 and sum(h["resident"] for h in held.values()) == 600
    expected = run_async(lambda: single_node_answers(database))
    assert len(expected) == 24
    began = time.perf_counter()
    for policy_id, want in expected.items():
        for node in shards.values():
            status, body = page(node, policy_id)
            assert status == 200, body
            assert comparable(body) == want, f"merged answer on {node.name} differs from one node on {policy_id}"
    print(f"48 merged match lists in {time.perf_counter() - began:.2f} s; profiles held: {held}")


def test_a_shard_part_needs_the_service_token(shards: dict[str, Node]) -> None:
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
    # its policies are answered by the node holding it; the other says so rather than "none"
    asked = f"/api/v1/enterprises/{firm['id']}/policies?date={ON.isoformat()}"
    status, body = get_json(shards["xinglongtai"].base + asked)
    assert status == 200 and body["items"], body
    status, body = get_json(shards["dawa"].base + asked)
    assert status == 409 and "xinglongtai" not in body["errors"][0]["msg"] and "dawa" in body["errors"][0]["msg"], body


def test_a_shard_that_is_down_is_a_503_naming_it(shards: dict[str, Node]) -> None:
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
