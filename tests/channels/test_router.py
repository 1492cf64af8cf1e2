"""Retries, settling and failover in the router, with real adapters against their simulators."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels import (
    AliyunSms,
    AliyunSmsConfig,
    FailoverPolicy,
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
from channels.simulators import AliyunSimulator, Faults, TencentSimulator
from tests.channels.helpers import FakeClock, sms

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.01)


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
    router = Router(sms_channels(sims, session), retry=FAST, failover=FailoverPolicy(fault_threshold=2))
    [res] = await router.send("sms", [sms(1)])
    assert res.outcome is Outcome.ACCEPTED and res.provider == "tencent_sms"
    assert a.requests == 2 and len(t.records) == 1 and a.records == []
    [switch] = router.switches
    assert (switch.kind, switch.from_provider, switch.to_provider) == ("sms", "aliyun_sms", "tencent_sms")
    assert "isp.SYSTEM_ERROR" in switch.reason and "2 consecutive" in switch.reason


async def test_primary_is_probed_again_after_the_cooldown(sims, session) -> None:
    a, _ = sims
    a.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    clock = FakeClock(0.0)
    router = Router(sms_channels(sims, session), retry=FAST, clock=clock,
                    failover=FailoverPolicy(fault_threshold=1, probe_after_s=60))
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
    router = Router(sms_channels(sims, session), retry=FAST, failover=FailoverPolicy(fault_threshold=1))
    [res] = await router.send("sms", [sms(1)])
    assert res.code == "isv.BUSINESS_LIMIT_CONTROL" and res.outcome is Outcome.RETRYABLE
    assert router.switches == [] and a.requests == 3  # retried with backoff, on the same provider


async def test_permanent_error_is_never_retried(sims, session) -> None:
    a, _ = sims
    router = Router(sms_channels(sims, session), retry=FAST)
    msg = sms(1)
    bad = OutboundMessage(msg.delivery_id, msg.recipient, "policy_notice", {**msg.params, "title": "x" * 36})
    [res] = await router.send("sms", [bad])
    assert res.outcome is Outcome.PERMANENT and a.requests == 0


async def test_unknown_outcome_is_settled_not_resent(sims, session) -> None:
    a, _ = sims
    a.faults = Faults(timeout_rate=1.0, hang_s=5.0)
    router = Router(sms_channels(sims, session, timeout_s=0.3), retry=FAST)
    [res] = await router.send("sms", [sms(1)])
    assert res.outcome is Outcome.ACCEPTED and res.text == "settled by QuerySendDetails"
    assert len(a.records) == 1  # sent once, never twice


async def test_waiting_for_the_rate_spends_no_retry(sims, session) -> None:
    aliyun, _ = sms_channels(sims, session, use_batch=False, rate=RateLimit(requests_per_s=50, burst=1))
    router = Router([aliyun], retry=RetryPolicy(max_attempts=1))
    results = await router.send("sms", [sms(i) for i in range(10)])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)


async def test_retry_backoff_grows_with_jitter_inside_bounds() -> None:
    policy = RetryPolicy(base_delay_s=1.0, multiplier=2.0, max_delay_s=5.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        samples = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not a fixed wait


async def test_retryable_results_are_retried_then_returned() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def handler(msg: OutboundMessage) -> Outcome:
        calls.append(msg.delivery_id)
        return Outcome.RETRYABLE

    async def sleep(s: float) -> None:
        sleeps.append(s)

    router = Router([MockChannel(handler)], retry=RetryPolicy(max_attempts=4, base_delay_s=1.0), sleep=sleep,
                    rng=random.Random(1))
    [res] = await router.send("sms", [sms(1)])
    assert res.outcome is Outcome.RETRYABLE and len(calls) == 4 and len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4


async def test_long_retry_after_goes_back_to_the_caller() -> None:
    ch = MockChannel(lambda m: SendResult(m.delivery_id, Outcome.RETRYABLE, "mock", code="45009", retry_after_s=3600))
    router = Router([ch], retry=FAST)
    [res] = await router.send("sms", [sms(1)])
    assert res.retry_after_s == 3600 and len(ch.sent) == 1


async def test_unknown_kind_names_the_configured_ones() -> None:
    router = Router([MockChannel(lambda m: Outcome.ACCEPTED, kind="app")])
    with pytest.raises(KeyError, match="app"):
        await router.send("sms", [sms(1)])


async def test_send_pinned_to_a_provider_uses_that_adapter_for_every_attempt(sims, session) -> None:
    a, t = sims
    router = Router(sms_channels(sims, session), retry=FAST, failover=FailoverPolicy(fault_threshold=1))
    [res] = await router.send("sms", [sms(1)], provider="tencent_sms")
    assert res.provider == "tencent_sms" and len(t.records) == 1 and a.records == []
    assert router.active("sms").name == "aliyun_sms" and router.switches == []
    # pinned to a failing primary: its retries stay there, and its faults still move the next calls on
    a.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    [res] = await router.send("sms", [sms(2)], provider="aliyun_sms")
    assert res.provider == "aliyun_sms" and res.outcome is not Outcome.ACCEPTED
    assert a.requests == FAST.max_attempts and len(t.records) == 1
    assert router.active("sms").name == "tencent_sms" and len(router.switches) == 1


async def test_send_pinned_to_an_unknown_provider_is_refused(sims, session) -> None:
    router = Router(sms_channels(sims, session), retry=FAST)
    with pytest.raises(ValueError, match="jpush"):
        await router.send("sms", [sms(1)], provider="jpush")
    assert router.channel("sms", "tencent_sms").name == "tencent_sms"
