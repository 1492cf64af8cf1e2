"""``start_all`` and the blocking ``policy-push simulators`` entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from channels import AppLayout, Outcome, SmsLayout, WechatLayout, render_app, render_sms, render_wechat
from channels.simulators import Faults, run_simulators, start_all
from tests.channels.helpers import notification, openid, phone, reg_id

ROOT = Path(__file__).resolve().parents[2]
SMS_LAYOUT = SmsLayout(
    "policy_notice", "盘锦政务", "您可能符合${title}，${benefit}，申报截止${deadline}。${reason}。详见 https://s.pj.gov.cn/${link} ",
    link_base="https://s.pj.gov.cn/",
)
WECHAT_LAYOUT = WechatLayout("policy_notice", {"thing1": "title", "time2": "deadline", "thing3": "reason", "thing4": "benefit"})


async def test_start_all_and_send_a_rendered_notification_everywhere(session) -> None:
    sims = await start_all(time_factor=0.01)
    try:
        assert all(url.startswith("http://127.0.0.1:") for url in sims.urls.values())
        aliyun, tencent, wechat, jpush = sims.channels(session)
        n = notification()
        sms_msg = render_sms(n, SMS_LAYOUT).message("d-1", phone(1))
        assert (await aliyun.send([sms_msg]))[0].outcome is Outcome.ACCEPTED
        assert (await tencent.send([sms_msg]))[0].outcome is Outcome.ACCEPTED
        wx = render_wechat(n, WECHAT_LAYOUT, delivery_id="w-1", openid=openid(1))
        assert (await wechat.send([wx]))[0].outcome is Outcome.ACCEPTED
        app = render_app(n, AppLayout(), delivery_id="p-1", registration_id=reg_id(1))
        assert (await jpush.send([app]))[0].outcome is Outcome.ACCEPTED
        assert {k: len(v) for k, v in sims.records.items()} == {"aliyun": 1, "tencent": 1, "wechat": 1, "jpush": 1}
        # the SMS the simulator recorded is exactly what the renderer showed staff
        assert sims.records["aliyun"][0].text == render_sms(n, SMS_LAYOUT).text
    finally:
        await sims.close()


async def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await start_all(host="0.0.0.0")


def test_fault_specs() -> None:
    f = Faults.parse(["isp.SYSTEM_ERROR=0.1", "latency=0.2", "timeout=0.05", "lost_receipts=0.5"])
    assert f.error_rates == {"isp.SYSTEM_ERROR": 0.1}
    assert (f.latency_s, f.timeout_rate, f.lost_receipt_rate) == (0.2, 0.05, 0.5)


def test_bad_fault_spec_is_explained(capsys) -> None:
    assert run_simulators(["--fault", "nosuch:x=1"]) == 2
    assert "PROVIDER:SPEC" in capsys.readouterr().err


async def test_cli_prints_urls_and_logs_arriving_messages_masked(session) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channels.simulators",
        *[arg for name in ("aliyun", "tencent", "wechat", "jpush") for arg in (f"--{name}-port", "0")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Messages appear"):
                lines.append((await proc.stdout.readline()).decode().strip())
        urls = {line.split()[0]: line.split()[1] for line in lines if line.split()[1:2] and "://" in line.split()[1]}
        assert set(urls) == {"aliyun", "tencent", "wechat", "jpush"}
        from channels import AliyunSms, AliyunSmsConfig

        ch = AliyunSms(AliyunSmsConfig("sim-access-key", "sim-access-secret", "盘锦政务",
                                       {"policy_notice": "SMS_900001"}, base_url=urls["aliyun"] + "/"), session)
        [res] = await ch.send([render_sms(notification(), SMS_LAYOUT).message("d-1", "13912345678")])
        assert res.outcome is Outcome.ACCEPTED
        async with asyncio.timeout(10):
            logged = (await proc.stdout.readline()).decode()
        assert "139****5678" in logged and "13912345678" not in logged and "【盘锦政务】" in logged
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            code = await proc.wait()
    assert code == 0
