"""Local simulators of the providers' real protocols, for the demo, the tests and staff training.

``start_all`` starts one aiohttp server per provider on loopback; ``SimulatorSet.channels`` builds
adapters already configured with the simulators' URLs and credentials. ``run_simulators`` (in
``channels.simulators.cli``) is the entry point behind ``policy-push simulators``: it prints the
URLs and logs each message as it arrives, with phone numbers and openids masked, and its ``reply``,
``event`` and ``scenario`` commands drive running simulators through their ``/_sim`` endpoints.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from channels.aliyun_sms import AliyunSms, AliyunSmsConfig
from channels.base import Channel
from channels.jpush import JPush, JPushConfig
from channels.rate_limit import RateLimit
from channels.simulators._common import Faults, SentRecord, Simulator
from channels.simulators.aliyun import AliyunSimConfig, AliyunSimulator
from channels.simulators.cli import DEFAULT_PORTS, PROVIDERS, main, run_simulators
from channels.simulators.jpush import JPushSimConfig, JPushSimulator
from channels.simulators.tencent import TencentSimConfig, TencentSimulator
from channels.simulators.wechat import WechatSimConfig, WechatSimulator
from channels.tencent_sms import TencentSms, TencentSmsConfig, TencentTemplate
from channels.wechat import Wechat, WechatConfig, WechatTemplate

__all__ = [
    "DEFAULT_PORTS",
    "PROVIDERS",
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
    *,
    configs: Mapping[str, Any] | None = None,
    wechat_token: str = "",
) -> SimulatorSet:
    """Start the four simulators on loopback (port 0 = any free port).

    ``configs`` maps a provider to its full ``*SimConfig`` (credentials, scenarios, callbacks…).
    Without it, ``callback_urls`` may name ``aliyun`` (SmsReport receipts), ``aliyun_reply``
    (SmsUp), ``tencent`` (status callbacks), ``tencent_reply`` and ``wechat`` (account events), and
    ``time_factor`` scales the providers' waits: receipt delays, callback retry schedules, JPush's window.
    ``wechat_token`` signs the WeChat pushes (default: the public ``sim-callback-token``; pass the
    receiving service's own token).
    """
    if not ipaddress.ip_address("127.0.0.1" if host == "localhost" else host).is_loopback:
        raise ValueError(f"simulators listen on loopback only, not {host!r}")
    ports = ports or {}
    cb = callback_urls or {}
    faults = faults or {}
    given = dict(configs or {})
    a = given.get("aliyun") or AliyunSimConfig(
        callback_url=cb.get("aliyun", ""), reply_callback_url=cb.get("aliyun_reply", ""), time_factor=time_factor
    )
    t = given.get("tencent") or TencentSimConfig(
        callback_url=cb.get("tencent", ""), reply_callback_url=cb.get("tencent_reply", ""), time_factor=time_factor
    )
    w = given.get("wechat") or WechatSimConfig(
        callback_url=cb.get("wechat", ""), time_factor=time_factor,
        **({"callback_token": wechat_token} if wechat_token else {}),
    )  # fmt: skip
    j = given.get("jpush") or JPushSimConfig(time_factor=time_factor)
    for config in (a, t, w, j):
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"configs must hold simulator configs, not {type(config).__name__}")
    sims = SimulatorSet(
        aliyun=AliyunSimulator(a, faults=faults.get("aliyun")),
        tencent=TencentSimulator(t, faults=faults.get("tencent")),
        wechat=WechatSimulator(w, faults=faults.get("wechat")),
        jpush=JPushSimulator(j, faults=faults.get("jpush")),
    )
    try:
        for name, sim in sims.all.items():
            await sim.start(host, ports.get(name, 0))
    except BaseException:
        await sims.close()
        raise
    return sims
