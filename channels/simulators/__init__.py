"""Local simulators of the providers' real protocols, for the demo, the tests and staff training.

``start_all`` starts one aiohttp server per provider on loopback; ``SimulatorSet.channels`` builds
adapters already configured with the simulators' URLs and credentials. ``run_simulators`` is the
blocking entry point behind ``policy-push simulators``: it prints the URLs and logs each message as
it arrives, with phone numbers and openids masked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from channels.aliyun_sms import AliyunSms, AliyunSmsConfig
from channels.base import Channel
from channels.jpush import JPush, JPushConfig
from channels.rate_limit import RateLimit
from channels.simulators._common import Faults, SentRecord, Simulator
from channels.simulators.aliyun import AliyunSimConfig, AliyunSimulator
from channels.simulators.jpush import JPushSimConfig, JPushSimulator
from channels.simulators.tencent import TencentSimConfig, TencentSimulator
from channels.simulators.wechat import WechatSimConfig, WechatSimulator
from channels.tencent_sms import TencentSms, TencentSmsConfig, TencentTemplate
from channels.wechat import Wechat, WechatConfig, WechatTemplate

__all__ = [
    "AliyunSimConfig",
    "AliyunSimulator",
    "Faults",
    "JPushSimConfig",
    "JPushSimulator",
    "SentRecord",
    "SimulatorSet",
    "TencentSimConfig",
    "TencentSimulator",
    "WechatSimConfig",
    "WechatSimulator",
    "main",
    "run_simulators",
    "start_all",
]

_log = logging.getLogger("channels.simulators")
PROVIDERS = ("aliyun", "tencent", "wechat", "jpush")
DEFAULT_PORTS: Mapping[str, int] = {"aliyun": 18701, "tencent": 18702, "wechat": 18703, "jpush": 18704}
#: the logical template every default simulator knows, as the demo and the tests render it
POLICY_TEMPLATE = "policy_notice"


@dataclass
class SimulatorSet:
    aliyun: AliyunSimulator
    tencent: TencentSimulator
    wechat: WechatSimulator
    jpush: JPushSimulator

    @property
    def all(self) -> dict[str, Simulator]:
        return {"aliyun": self.aliyun, "tencent": self.tencent, "wechat": self.wechat, "jpush": self.jpush}

    @property
    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.all.items()}

    @property
    def records(self) -> dict[str, list[SentRecord]]:
        """Every message each simulator accepted, oldest first."""
        return {name: sim.records for name, sim in self.all.items()}

    def channels(self, session: aiohttp.ClientSession, *, rate: RateLimit | None = None) -> list[Channel]:
        """Adapters for all four simulators, configured with their default credentials and templates."""
        a, t, w, j = self.aliyun.config, self.tencent.config, self.wechat.config, self.jpush.config
        (ak, asecret), (tid, tkey) = next(iter(a.access_keys.items())), next(iter(t.secrets.items()))
        (appid, wsecret), (app_key, master) = next(iter(w.apps.items())), next(iter(j.apps.items()))
        wechat_tpl, wechat_keys = next(iter(w.templates.items()))
        tencent_tpl = next(iter(t.templates))
        extra = {"rate": rate} if rate else {}
        return [
            AliyunSms(
                AliyunSmsConfig(ak, asecret, min(a.sign_names), {POLICY_TEMPLATE: next(iter(a.templates))},
                                base_url=self.aliyun.url + "/", **extra),
                session,
            ),
            TencentSms(
                TencentSmsConfig(tid, tkey, t.sdk_app_id, min(t.sign_names),
                                 {POLICY_TEMPLATE: TencentTemplate(tencent_tpl, ("title", "benefit", "deadline", "reason", "link"))},
                                 base_url=self.tencent.url + "/", **extra),
                session,
            ),
            Wechat(
                WechatConfig(appid, wsecret, {POLICY_TEMPLATE: WechatTemplate(wechat_tpl, wechat_keys)},
                             base_url=self.wechat.url, **extra),
                session,
            ),
            JPush(JPushConfig(app_key, master, base_url=self.jpush.url, **extra), session),
        ]  # fmt: skip

    async def close(self) -> None:
        for sim in self.all.values():
            await sim.close()


async def start_all(
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    callback_urls: Mapping[str, str] | None = None,
    time_factor: float = 1.0,
    faults: Mapping[str, Faults] | None = None,
) -> SimulatorSet:
    """Start the four simulators on loopback (port 0 = any free port).

    ``callback_urls`` may name ``aliyun`` (SmsReport receipts) and ``wechat`` (template events).
    ``time_factor`` scales the providers' waits: receipt delays, callback retry schedules, JPush's window.
    """
    if not ipaddress.ip_address("127.0.0.1" if host == "localhost" else host).is_loopback:
        raise ValueError(f"simulators listen on loopback only, not {host!r}")
    ports = ports or {}
    callbacks = callback_urls or {}
    faults = faults or {}
    sims = SimulatorSet(
        aliyun=AliyunSimulator(
            AliyunSimConfig(callback_url=callbacks.get("aliyun", ""), time_factor=time_factor), faults=faults.get("aliyun")
        ),
        tencent=TencentSimulator(TencentSimConfig(), faults=faults.get("tencent")),
        wechat=WechatSimulator(
            WechatSimConfig(callback_url=callbacks.get("wechat", ""), time_factor=time_factor), faults=faults.get("wechat")
        ),
        jpush=JPushSimulator(JPushSimConfig(time_factor=time_factor), faults=faults.get("jpush")),
    )
    try:
        for name, sim in sims.all.items():
            await sim.start(host, ports.get(name, 0))
    except BaseException:
        await sims.close()
        raise
    return sims


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policy-push simulators", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    for name in PROVIDERS:
        p.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], help=f"{name} port (0 = any free port)")
    p.add_argument("--sms-callback", default="", help="URL that receives Aliyun SmsReport receipts")
    p.add_argument("--wechat-callback", default="", help="URL that receives WeChat TEMPLATESENDJOBFINISH events")
    p.add_argument("--time-factor", type=float, default=1.0, help="scale providers' delays (0.01 = 100x faster)")
    p.add_argument(
        "--fault", action="append", default=[], metavar="PROVIDER:SPEC",
        help="e.g. aliyun:isp.SYSTEM_ERROR=0.1, wechat:-1=0.05, jpush:latency=0.2, aliyun:timeout=0.01",
    )  # fmt: skip
    return p


def _faults(specs: Sequence[str]) -> dict[str, Faults]:
    by_provider: dict[str, list[str]] = {}
    for spec in specs:
        provider, _, rest = spec.partition(":")
        if provider not in PROVIDERS or not rest:
            raise SystemExit(f"--fault {spec!r}: expected PROVIDER:SPEC with PROVIDER one of {', '.join(PROVIDERS)}")
        by_provider.setdefault(provider, []).append(rest)
    return {p: Faults.parse(s) for p, s in by_provider.items()}


async def _serve(args: argparse.Namespace) -> None:
    sims = await start_all(
        args.host,
        {name: getattr(args, f"{name}_port") for name in PROVIDERS},
        {"aliyun": args.sms_callback, "wechat": args.wechat_callback},
        args.time_factor,
        _faults(args.fault),
    )
    for sim in sims.all.values():
        sim.listeners.append(lambda rec: print(rec.describe(), flush=True))
    print("Provider simulators (test mode) are listening:")
    for name, url in sims.urls.items():
        print(f"  {name:8s} {url}")
    a, w, j = sims.aliyun.config, sims.wechat.config, sims.jpush.config
    print(f"  aliyun   AccessKeyId={next(iter(a.access_keys))} SignName={min(a.sign_names)} templates={list(a.templates)}")
    print(f"  wechat   appid={next(iter(w.apps))} templates={list(w.templates)}")
    print(f"  jpush    appKey={next(iter(j.apps))}")
    print("Messages appear below as they arrive (Ctrl-C to stop).", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sims.close()


def run_simulators(argv: Sequence[str] | None = None) -> int:
    """Start every simulator on loopback, print their URLs, log arriving messages until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(args))
    return 0


def main() -> None:
    sys.exit(run_simulators(sys.argv[1:]))

