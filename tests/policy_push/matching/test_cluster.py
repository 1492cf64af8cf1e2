"""Three ``policy-push serve`` nodes on one PostgreSQL (real processes, started once for the module):
each answers every sample policy's match list exactly as a single node holding every profile does,
and killing the leader (SIGKILL, no goodbye) moves the leader-only ticks to another node.

Leadership is what each node's ``/healthz`` says (``ticks.leader``, true while it holds the
PostgreSQL advisory lock), and what it does: the leader-only tick ``prepare_pending_campaigns``
runs on the leader alone."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from policy_push.config import Settings

from .cluster import (
    Node,
    comparable,
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

#: the lead is checked every second here (10 s by default), so it is lost after at most a lease of 3 s
RENEW_S = "1"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    yield from sample_database(tmp_path_factory.mktemp("cluster-db"))


@pytest.fixture(scope="module")
def nodes(database: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    tmp = tmp_path_factory.mktemp("cluster")
    began = time.monotonic()
    started = [
        start_node(name, database, tmp, POLICY_PUSH_LEADER_RENEW_S=RENEW_S, POLICY_PUSH_PREPARE_CAMPAIGNS_S="1")
        for name in ("n1", "n2", "n3")
    ]
    try:
        wait_ready(started)
        print(f"3 nodes ready in {time.monotonic() - began:.1f} s")
        yield started
    finally:
        stop(started)


def test_three_nodes_answer_exactly_as_one_node(database: Settings, nodes: list[Node]) -> None:
    expected = run_async(lambda: single_node_answers(database))
    # the comparison is only as strong as its data: both audiences, criteria that cut
    assert len(expected) == 24
    assert {e["counts"]["profiles"] for e in expected.values()} == {400, 600}
    assert any(0 < e["counts"]["eligible"] < e["counts"]["profiles"] for e in expected.values())
    began = time.perf_counter()
    for policy_id, want in expected.items():
        for node in nodes:
            status, body = page(node, policy_id)
            assert status == 200, body
            assert comparable(body) == want, f"{node.name} differs from one node on {policy_id}"
    print(f"72 match lists (24 policies x 3 nodes) in {time.perf_counter() - began:.2f} s")


def _leaders(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.proc.poll() is None and health(n)["ticks"]["leader"]]


def _prepare_runs(node: Node) -> int:
    return int(health(node)["ticks"]["prepare_pending_campaigns"]["runs"])


def _wait_for(what: str, check: object, timeout_s: float) -> float:
    began = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - began < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - began


def test_killing_the_leader_moves_the_leader_only_ticks(nodes: list[Node]) -> None:
    _wait_for("one leader", lambda: len(_leaders(nodes)) == 1, 15)
    _wait_for("the leader runs its tick", lambda: _prepare_runs(_leaders(nodes)[0]) >= 1, 15)
    (leader,) = _leaders(nodes)
    followers = [n for n in nodes if n is not leader]
    # a follower runs no leader-only tick, even with its interval at one second
    assert [_prepare_runs(n) for n in followers] == [0, 0]

    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(10)
    killed_at = time.monotonic()
    took_s = _wait_for("a new leader", lambda: len(_leaders(followers)) == 1, 20)
    (successor,) = _leaders(followers)
    ran_s = _wait_for("the new leader runs the tick", lambda: _prepare_runs(successor) >= 1, 10) + took_s
    print(f"leader {leader.name} killed; {successor.name} led after {took_s:.2f} s and ran a leader-only tick after "
          f"{time.monotonic() - killed_at:.2f} s")
    assert ran_s < 20
    (other,) = [n for n in followers if n is not successor]
    assert _prepare_runs(other) == 0 and not health(other)["ticks"]["leader"]

