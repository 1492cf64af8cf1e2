"""Adapter -> simulator throughput on this machine, over loopback HTTP.

The simulators run in a child process so the adapter's CPU cost per message can be measured on its
own (process CPU time / messages); the child reports the simulators' CPU time too. Only loopback.

    python -m bench.channels [--quick] [--out bench/channels/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

from bench.channels._simproc import serve
from channels import Channel, OutboundMessage, Outcome, RateLimit

POLICY_PARAMS = {
    "title": "专精特新中小企业奖励",
    "benefit": "最高30万元",
    "deadline": "2024年6月30日",
    "reason": "您的企业是专精特新中小企业",
    "link": "Ab3x",
}
WECHAT_PARAMS = {"thing1": "专精特新中小企业奖励", "time2": "2024年6月30日", "thing3": "您的企业是专精特新中小企业", "thing4": "最高30万元"}


@dataclass
class Row:
    name: str
    messages: int
    requests: int
    wall_s: float
    adapter_cpu_s: float
    sim_cpu_s: float
    accepted: int

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s

    def line(self) -> str:
        return (
            f"| {self.name} | {self.messages:,} | {self.requests:,} | {self.wall_s:.2f} | {self.rate:,.0f} | "
            f"{self.adapter_cpu_s / self.messages * 1e6:.1f} | {self.sim_cpu_s / self.messages * 1e6:.1f} | "
            f"{self.accepted:,} |"
        )


HEADER = (
    "| scenario | messages | HTTP requests | wall s | messages/s | adapter CPU µs/msg | simulator CPU µs/msg | accepted |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


async def _run(
    name: str,
    channel: Channel,
    messages: Sequence[OutboundMessage],
    *,
    batch: int,
    concurrency: int,
    conn: Connection,
    simulator: str,
) -> Row:
    conn.send("stats")
    sim_cpu0, _, requests0 = conn.recv()
    queue = [messages[i : i + batch] for i in range(0, len(messages), batch)]
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while queue:
            part = queue.pop()
            results = await channel.send(part)
            accepted += sum(r.outcome is Outcome.ACCEPTED for r in results)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    conn.send("stats")
    sim_cpu1, _, requests1 = conn.recv()
    # requests as the simulator counted them (token, cid-pool and query calls included)
    requests = requests1[simulator] - requests0[simulator]
    return Row(name, len(messages), requests, wall, cpu, sim_cpu1 - sim_cpu0, accepted)


async def bench(quick: bool, conn: Connection, urls: dict[str, str]) -> list[Row]:
    from channels.aliyun_sms import AliyunSms, AliyunSmsConfig
    from channels.jpush import JPush, JPushConfig
    from channels.simulators import SimulatorSet  # noqa: F401 - documents where the defaults come from
    from channels.tencent_sms import TencentSms, TencentSmsConfig, TencentTemplate
    from channels.wechat import Wechat, WechatConfig, WechatTemplate

    scale = 5 if quick else 1
    fast = RateLimit(requests_per_s=100_000, burst=10_000)
    rows = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        aliyun = AliyunSms(AliyunSmsConfig("sim-access-key", "sim-access-secret", "盘锦政务",
                                           {"policy_notice": "SMS_900001"}, base_url=urls["aliyun"] + "/", rate=fast),
                           session)  # fmt: skip
        n = 50_000 // scale
        sms = [OutboundMessage(f"a-{i}", f"13{i:09d}", "policy_notice", POLICY_PARAMS) for i in range(n)]
        rows.append(await _run("Aliyun SendBatchSms (100/call)", aliyun, sms, batch=1000, concurrency=4, conn=conn,
                               simulator="aliyun"))  # fmt: skip
        single = AliyunSms(AliyunSmsConfig("sim-access-key", "sim-access-secret", "盘锦政务",
                                           {"policy_notice": "SMS_900001"}, base_url=urls["aliyun"] + "/", rate=fast,
                                           use_batch=False), session)  # fmt: skip
        n = 5_000 // scale
        sms = [OutboundMessage(f"s-{i}", f"15{i:09d}", "policy_notice", POLICY_PARAMS) for i in range(n)]
        rows.append(await _run("Aliyun SendSms (1/call)", single, sms, batch=100, concurrency=8, conn=conn,
                               simulator="aliyun"))  # fmt: skip
        tencent = TencentSms(TencentSmsConfig("sim-secret-id", "sim-secret-key", "1400000001", "盘锦政务",
                                              {"policy_notice": TencentTemplate("2000001", tuple(POLICY_PARAMS))},
                                              base_url=urls["tencent"] + "/", rate=fast), session)  # fmt: skip
        n = 50_000 // scale
        sms = [OutboundMessage(f"t-{i}", f"17{i:09d}", "policy_notice", POLICY_PARAMS) for i in range(n)]
        rows.append(await _run("Tencent SendSms (same params, ≤200/call, ids in SessionContext)", tencent, sms, batch=1000, concurrency=4,
                               conn=conn, simulator="tencent"))  # fmt: skip
        wechat = Wechat(WechatConfig("wxsimappid0000001", "sim-app-secret",
                                     {"policy_notice": WechatTemplate("TPL-policy-notice-0000000000000000000000000",
                                                                      tuple(WECHAT_PARAMS))},
                                     base_url=urls["wechat"], rate=fast, max_concurrency=200), session)  # fmt: skip
        n = 20_000 // scale
        wx = [OutboundMessage(f"w-{i}", f"o6_bmjrPTlm6_2sgVt7h{i:08d}", "policy_notice", WECHAT_PARAMS,
                              url="https://s.pj.gov.cn/Ab3x") for i in range(n)]  # fmt: skip
        rows.append(await _run("WeChat template send (1/call)", wechat, wx, batch=500, concurrency=4, conn=conn,
                               simulator="wechat"))  # fmt: skip
        def jpush(batch_single: bool) -> JPush:
            config = JPushConfig("simappkey000000000000000", "simmastersecret000000000", base_url=urls["jpush"],
                                 rate=fast, batch_single=batch_single)  # fmt: skip
            return JPush(config, session)

        def pushes(prefix: str, n: int, *, personal: bool) -> list[OutboundMessage]:
            # a personal push carries its own link (as the application's do); otherwise one text for all
            return [OutboundMessage(f"{prefix}-{i}", f"1a0018970a{i:08x}", title="专精特新奖励",
                                    text="对新认定的专精特新中小企业给予奖励",
                                    url=f"https://s.pj.gov.cn/{i:06x}" if personal else "https://s.pj.gov.cn/Ab3x")
                    for i in range(n)]  # fmt: skip

        # JPush counts calls per AppKey (600 a minute in the simulator): one personal push per call stays
        # under it here, and would be held to 10 a second past it
        n = 400 // scale
        rows.append(await _run("JPush /v3/push, personal texts (1/call)", jpush(False), pushes("q", n, personal=True),
                               batch=100, concurrency=4, conn=conn, simulator="jpush"))  # fmt: skip
        n = 50_000 // scale
        rows.append(await _run("JPush batch single push (1000 personal pushes/call)", jpush(True),
                               pushes("b", n, personal=True), batch=1000, concurrency=4, conn=conn,
                               simulator="jpush"))  # fmt: skip
        rows.append(await _run("JPush /v3/push, one text (1000 ids/call)", jpush(False), pushes("p", n, personal=False),
                               batch=1000, concurrency=4, conn=conn, simulator="jpush"))  # fmt: skip
    return rows


def _machine() -> list[str]:
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: `{uname}`",
        f"- nproc: {os.cpu_count()}",
        f"- python: {platform.python_version()} ({platform.python_implementation()}), aiohttp {aiohttp.__version__}",
        "- load average before the run (other work on the machine shares the cores): "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.channels", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the messages")
    parser.add_argument("--out", type=Path, help="also write the table with machine details to this Markdown file")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child,), daemon=True)
    proc.start()
    try:
        urls = parent.recv()
        rows = asyncio.run(bench(args.quick, parent, urls))
        parent.send("stop")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    table = "\n".join([HEADER, *(r.line() for r in rows)])
    print(table)
    if args.out:
        text = "\n".join(
            [
                "# Channel adapters against their simulators (loopback HTTP)",
                "",
                *_machine(),
                "- simulators in a separate process; adapter CPU = the sending process's CPU time / messages;",
                "  simulator CPU = the simulator process's CPU time / messages; HTTP requests = every request",
                "  the simulator received (WeChat's token and JPush's cid-pool calls included). As measured by",
                f"  `python -m bench.channels{' --quick' if args.quick else ''}`.",
                "",
                table,
                "",
            ]
        )
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
