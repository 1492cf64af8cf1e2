from __future__ import annotations

from channels import Channel, MockChannel, Outcome, SendResult
from tests.channels.helpers import sms


async def test_mock_channel_with_outcomes_and_results() -> None:
    ch = MockChannel(lambda m: Outcome.UNREACHABLE if m.delivery_id == "d-2" else Outcome.ACCEPTED)
    results = await ch.send([sms(1), sms(2)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.UNREACHABLE]
    assert results[0].provider_message_id == "mock-1" and [m.delivery_id for m in ch.sent] == ["d-1", "d-2"]
    assert isinstance(ch, Channel)


async def test_mock_channel_with_async_handler_and_name() -> None:
    async def handler(m):  # type: ignore[no-untyped-def]
        return SendResult(m.delivery_id, Outcome.PERMANENT, "x", code="E1")

    ch = MockChannel(handler, name="fake_wechat", kind="wechat")
    [res] = await ch.send([sms(1)])
    assert (res.outcome, res.code, ch.name, ch.kind) == (Outcome.PERMANENT, "E1", "fake_wechat", "wechat")


async def test_empty_batch() -> None:
    assert await MockChannel(lambda m: Outcome.ACCEPTED).send([]) == []


async def test_no_channel_ever_sends_an_id_number() -> None:
    ch = MockChannel(lambda m: Outcome.ACCEPTED)
    leaky = sms(2, reason="身份证211102199001011234")
    results = await ch.send([sms(1), leaky, sms(3)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.PERMANENT, Outcome.ACCEPTED]
    assert results[1].code == "CONTAINS_ID_NUMBER" and [m.delivery_id for m in ch.sent] == ["d-1", "d-3"]
