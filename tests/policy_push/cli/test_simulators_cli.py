"""`policy-push simulators` as a person runs it: a real process, real HTTP, masked output."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import aiohttp

from channels import AliyunSms, AliyunSmsConfig, OutboundMessage, Outcome


async def _read_urls(proc: asyncio.subprocess.Process) -> dict[str, str]:
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    while len(urls) < 4:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, "the simulators exited before printing their URLs"
        m = re.match(r"\s+(aliyun|tencent|wechat|jpush)\s+(http://127\.0\.0\.1:\d+)", line)
        if m:
            urls[m.group(1)] = m.group(2)
    return urls


async def test_simulators_command_serves_and_shows_masked_messages() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policy_push", "simulators",
        "--aliyun-port", "0", "--tencent-port", "0", "--wechat-port", "0", "--jpush-port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        urls = await _read_urls(proc)
        config = AliyunSmsConfig(
            "sim-access-key", "sim-access-secret", "盘锦政务", {"policy": "SMS_900001"}, base_url=urls["aliyun"] + "/"
        )
        async with aiohttp.ClientSession() as session:
            sms = AliyunSms(config, session)
            msg = OutboundMessage(
                "d-1", "13812345678", template="policy",
                params={"title": "稳岗返还", "benefit": "最高300万元", "deadline": "12月31日", "reason": "注册地 兴隆台区 属于 盘锦市", "link": "abc"},
            )
            [result] = await sms.send([msg])
        assert result.outcome is Outcome.ACCEPTED, result
        seen = ""
        while "138****5678" not in seen:
            seen += (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]
        assert "13812345678" not in seen
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
