"""Failover, unknown outcomes and provider queries in the router; the retry policy an outbox uses.
Real adapters against their simulators."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels import (
    AliyunSms,
    AliyunSmsConfig,
    FailoverPolicy,
    Inquiry,
    MockChannel,
    OutboundMessage,
    Outcome,
    RateLimit,
    RetryPolicy,
    Router,
    SendResult,
    TencentSms,
    TencentSmsConfig,
    TencentTemplate,
)
from channels.retry import should_retry
from channels.simulators import AliyunSimulator, Faults, TencentSimulator
from tests.channels.helpers import FakeClock, sms


@pytest.fixture
async def sims() -> AsyncIterator[tuple[AliyunSimulator, TencentSimulator]]:
    a, t = AliyunSimulator(), TencentSimulator()
    await a.start()
    await t.start()
    yield a, t
    await a.close()
    await t.close()


def sms_channels(sims, session: aiohttp.ClientSession, **aliyun_kw) -> tuple[AliyunSms, TencentSms]:
    a, t = sims
    aliyun = AliyunSms(AliyunSmsConfig("sim-access-key", "sim-access-secret", "盘锦政务", {"policy_notice": "SMS_900001"},
                                       base_url=a.url + "/", **aliyun_kw), session)
    tencent = TencentSms(TencentSmsConfig("sim-secret-id", "sim-secret-key", "1400000001", "盘锦政务",
                                          {"policy_notice": TencentTemplate("2000001", ("title", "benefit", "deadline",
                                                                                        "reason", "link"))},
                                          base_url=t.url + "/"), session)
    return aliyun, tencent


async def test_failover_after_repeated_system_errors_is_recorded(sims, session) -> None:
    a, t = sims
    a.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    router = Router(sms_channels(sims, session), failover=FailoverPolicy(fault_threshold=2))
    first, second = [(await router.send("sms", [sms(i)]))[0] for i in (1, 2)]
    assert first.outcome is second.outcome is Outcome.RETRYABLE and first.provider_fault  # one call each, no retry
    assert a.requests == 2 and router.active("sms").name == "tencent_sms"
    [res] = await router.send("sms", [sms(1)])
    assert res.outcome is Outcome.ACCEPTED and res.provider == "tencent_sms"
    assert len(t.records) == 1 and a.records == []
    [switch] = router.switches
    assert (switch.kind, switch.from_provider, switch.to_provider) == ("sms", "aliyun_sms", "tencent_sms")
    assert "isp.SYSTEM_ERROR" in switch.reason and "2 consecutive" in switch.reason


async def test_primary_is_probed_again_after_the_cooldown(sims, session) -> None:
    a, _ = sims
    a.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    clock = FakeClock(0.0)
    router = Router(sms_channels(sims, session), clock=clock, failover=FailoverPolicy(fault_threshold=1, probe_after_s=60))
    await router.send("sms", [sms(1)])
    assert router.active("sms").name == "tencent_sms"
    clock.advance(61)
    a.faults = Faults()
    [res] = await router.send("sms", [sms(2)])
    assert res.provider == "aliyun_sms" and res.outcome is Outcome.ACCEPTED
    assert [s.to_provider for s in router.switches] == ["tencent_sms", "aliyun_sms"]
    assert "probing" in router.switches[-1].reason


async def test_throttling_does_not_trigger_failover(sims, session) -> None:
    a, _ = sims
    a.faults = Faults(error_rates={"isv.BUSINESS_LIMIT_CONTROL": 1.0})
    router = Router(sms_channels(sims, session), failover=FailoverPolicy(fault_threshold=1))
    for i in range(3):
        [res] = await router.send("sms", [sms(i)])
        assert res.code == "isv.BUSINESS_LIMIT_CONTROL" and res.outcome is Outcome.RETRYABLE and not res.provider_fault
    assert router.switches == [] and a.requests == 3


async def test_permanent_error_never_reaches_the_provider(sims, session) -> None:
    a, _ = sims
    router = Router(sms_channels(sims, session))
    msg = sms(1)
    bad = OutboundMessage(msg.delivery_id, msg.recipient, "policy_notice", {**msg.params, "title": "x" * 36})
    [res] = await router.send("sms", [bad])
    assert res.outcome is Outcome.PERMANENT and a.requests == 0


async def test_unknown_outcome_is_looked_up_not_resent(sims, session) -> None:
    a, _ = sims
    a.faults = Faults(timeout_rate=1.0, hang_s=5.0)
    router = Router(sms_channels(sims, session, timeout_s=0.3))
    [res] = await router.send("sms", [sms(1)])
    assert res.outcome is Outcome.ACCEPTED and not res.maybe_sent and "found at the provider" in res.text
    assert len(a.records) == 1  # sent once, never twice


async def test_query_asks_the_named_provider_and_knows_its_window(sims, session) -> None:
    aliyun, tencent = sms_channels(sims, session)
    router = Router([tencent, aliyun])  # Tencent first: Aliyun is asked by name all the same
    [sent] = await aliyun.send([sms(1)])
    assert sent.outcome is Outcome.ACCEPTED
    found, missing = await router.query("sms", "aliyun_sms", [Inquiry(sms(1).delivery_id, sms(1).recipient, "policy_notice"),
                                                             Inquiry(sms(2).delivery_id, sms(2).recipient, "policy_notice")])  # fmt: skip
    assert (found.sent, missing.sent) == (True, False)
    [tencent_answer] = await router.query("sms", "tencent_sms", [Inquiry("x", sms(1).recipient)])
    assert tencent_answer.sent is None  # Tencent cannot be asked
    [nobody] = await router.query("sms", "gone_sms", [Inquiry("x", sms(1).recipient)])
    assert nobody.sent is None and router.resend_window_s("sms", "gone_sms") == 0.0
    assert router.resend_window_s("sms", "aliyun_sms") == 0.0


async def test_waiting_for_the_rate_is_no_failure(sims, session) -> None:
    aliyun, _ = sms_channels(sims, session, use_batch=False, rate=RateLimit(requests_per_s=50, burst=1))
    results = await Router([aliyun]).send("sms", [sms(i) for i in range(10)])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)


async def test_retry_backoff_grows_with_jitter_inside_bounds() -> None:
    policy = RetryPolicy(base_delay_s=1.0, multiplier=2.0, max_delay_s=5.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        samples = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not a fixed wait


def test_the_retry_policy_honours_the_provider_and_counts_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=5.0)
    asked = SendResult("d", Outcome.RETRYABLE, "mock", code="45009", retry_after_s=3600)
    assert policy.delay_s(1, asked, random.Random(1)) == 3600  # a longer pause asked for is kept
    plain = SendResult("d", Outcome.RETRYABLE, "mock")
    assert 0.5 <= policy.delay_s(1, plain, random.Random(1)) <= 1.0
    assert should_retry(plain, 2, policy) and not should_retry(plain, 3, policy)
    assert not should_retry(SendResult("d", Outcome.PERMANENT, "mock"), 1, policy)


async def test_one_call_per_send_whatever_the_outcome() -> None:
    ch = MockChannel(lambda m: Outcome.RETRYABLE)
    [res] = await Router([ch]).send("sms", [sms(1)])
    assert res.outcome is Outcome.RETRYABLE and len(ch.sent) == 1  # the caller's outbox retries, not the router


async def test_unknown_kind_names_the_configured_ones() -> None:
    router = Router([MockChannel(lambda m: Outcome.ACCEPTED, kind="app")])
    with pytest.raises(KeyError, match="app"):
        await router.send("sms", [sms(1)])


async def test_send_pinned_to_a_provider_uses_that_adapter(sims, session) -> None:
    a, t = sims
    router = Router(sms_channels(sims, session), failover=FailoverPolicy(fault_threshold=1))
    [res] = await router.send("sms", [sms(1)], provider="tencent_sms")
    assert res.provider == "tencent_sms" and len(t.records) == 1 and a.records == []
    assert router.active("sms").name == "aliyun_sms" and router.switches == []
    # pinned to a failing primary: the call stays there, and its faults still move the next calls on
    a.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    [res] = await router.send("sms", [sms(2)], provider="aliyun_sms")
    assert res.provider == "aliyun_sms" and res.outcome is not Outcome.ACCEPTED
    assert a.requests == 1 and len(t.records) == 1
    assert router.active("sms").name == "tencent_sms" and len(router.switches) == 1


async def test_send_pinned_to_an_unknown_provider_is_refused(sims, session) -> None:
    router = Router(sms_channels(sims, session))
    with pytest.raises(ValueError, match="jpush"):
        await router.send("sms", [sms(1)], provider="jpush")
    assert router.channel("sms", "tencent_sms").name == "tencent_sms"


async def test_pace_is_the_rate_limit_times_what_one_request_carries(session) -> None:
    def aliyun(per_s: float) -> AliyunSms:
        config = AliyunSmsConfig("ak", "secret", "sign", {"t": "SMS_1"}, rate=RateLimit(requests_per_s=per_s, burst=1))
        return AliyunSms(config, session)

    # SendBatchSms carries 100 numbers, each with its own parameters
    assert Router([aliyun(10)]).pace("sms", "aliyun_sms") == 1000
    assert Router([MockChannel(lambda m: Outcome.ACCEPTED)]).pace("sms", "mock") is None  # no limit: one slice
