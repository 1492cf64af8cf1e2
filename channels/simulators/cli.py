"""``policy-push simulators``: run the provider simulators as a tool, and script them while they run.

    policy-push simulators [--config FILE] [options]      start all four and watch messages arrive
    policy-push simulators reply --phone P --text TD      that phone replies (Aliyun SmsUp by default)
    policy-push simulators event --openid O --event unsubscribe
    policy-push simulators scenario PROVIDER RECIPIENT WHAT

A settings file (TOML, or JSON by its extension) holds what a city's test environment wants fixed:
credentials, callback URLs, per-recipient scenarios, faults, the fault hold time and the random
seed; command-line options override it. The control commands talk to the running simulators'
``/_sim/…`` endpoints on loopback. Exit codes: 0 done, 2 a usage or settings mistake (one line
naming it), 3 the simulators are not running, 4 a simulator refused the request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from channels.simulators._common import CONTROL_PREFIX, Faults
from channels.simulators.aliyun import AliyunSimConfig
from channels.simulators.jpush import JPushSimConfig
from channels.simulators.tencent import TencentSimConfig
from channels.simulators.wechat import WechatSimConfig

__all__ = ["EXIT_REFUSED", "EXIT_UNREACHABLE", "EXIT_USAGE", "SimSettings", "load_settings", "main", "run_simulators"]

PROVIDERS = ("aliyun", "tencent", "wechat", "jpush")
DEFAULT_PORTS: Mapping[str, int] = {"aliyun": 18701, "tencent": 18702, "wechat": 18703, "jpush": 18704}
EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 2, 3, 4
_CONFIG_TYPES: Mapping[str, type] = {
    "aliyun": AliyunSimConfig, "tencent": TencentSimConfig, "wechat": WechatSimConfig, "jpush": JPushSimConfig,
}  # fmt: skip
#: settings-file keys that are credentials, per provider: (id key, secret key, config field)
_CREDENTIALS: Mapping[str, tuple[str, str, str]] = {
    "aliyun": ("access_key_id", "access_key_secret", "access_keys"),
    "tencent": ("secret_id", "secret_key", "secrets"),
    "wechat": ("appid", "secret", "apps"),
    "jpush": ("app_key", "master_secret", "apps"),
}


class UsageError(Exception):
    """A mistake in the command line or the settings file; the message is the one line to print."""


@dataclass
class SimSettings:
    """Everything needed to start the four simulators."""

    configs: dict[str, Any] = field(default_factory=lambda: {p: _CONFIG_TYPES[p]() for p in PROVIDERS})
    faults: dict[str, Faults] = field(default_factory=dict)
    scenarios: dict[str, dict[str, str]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    host: str = "127.0.0.1"


def _faults(specs: Sequence[str], *, seed: int | None, hold_s: float | None, where: str) -> Faults:
    try:
        f = Faults.parse(specs)
    except ValueError as exc:
        raise UsageError(f"{where}: a fault is CODE=RATE, latency=S, timeout=RATE or lost_receipts=RATE ({exc})") from exc
    for code, rate in f.error_rates.items():
        if not 0 <= rate <= 1:
            raise UsageError(f"{where}: the rate of {code} is {rate}; rates run from 0 to 1")
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if hold_s is not None:
        changes["hang_s"] = hold_s
    return replace(f, **changes)


def load_settings(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON settings file; a mistake raises ``UsageError`` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the settings file ({exc.strerror})") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the settings file must hold a table of settings")
    unknown = set(data) - {"seed", "hold_s", "time_factor", "host", *PROVIDERS}
    if unknown:
        raise UsageError(f"{path}: unknown setting {sorted(unknown)[0]!r}; use seed, hold_s, time_factor, host or a provider table")
    return data


def _apply_provider(settings: SimSettings, provider: str, table: Mapping[str, Any], where: str) -> None:
    config_type = _CONFIG_TYPES[provider]
    names = {f.name for f in fields(config_type)}
    id_key, secret_key, field_name = _CREDENTIALS[provider]
    table = dict(table)
    changes: dict[str, Any] = {}
    if id_key in table or secret_key in table:
        if not (table.get(id_key) and table.get(secret_key)):
            raise UsageError(f"{where}: give both {id_key} and {secret_key}")
        changes[field_name] = {str(table.pop(id_key)): str(table.pop(secret_key))}
    faults = table.pop("faults", [])
    scenarios = table.pop("scenarios", {})
    if not isinstance(faults, list) or not isinstance(scenarios, dict):
        raise UsageError(f"{where}: faults is a list of CODE=RATE words and scenarios a table of recipient = what")
    for key, value in table.items():
        if key not in names:
            raise UsageError(f"{where}: unknown setting {key!r}")
        current = getattr(settings.configs[provider], key)
        if isinstance(current, frozenset):
            value = frozenset(value)
        elif isinstance(current, tuple):
            value = tuple(value)
        changes[key] = value
    try:
        settings.configs[provider] = replace(settings.configs[provider], **changes)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from exc
    if faults:
        settings.faults[provider] = _faults([str(f) for f in faults], seed=None, hold_s=None, where=f"{where} faults")
    settings.scenarios.setdefault(provider, {}).update({str(k): str(v) for k, v in scenarios.items()})


def build_settings(args: argparse.Namespace) -> SimSettings:
    """The simulators' settings from the file named by ``--config`` and the command line."""
    settings = SimSettings()
    data = load_settings(Path(args.config)) if args.config else {}
    for provider in PROVIDERS:
        table = data.get(provider, {})
        if not isinstance(table, dict):
            raise UsageError(f"{args.config}: [{provider}] must be a table")
        _apply_provider(settings, provider, table, f"{args.config} [{provider}]")
    time_factor = args.time_factor if args.time_factor is not None else float(data.get("time_factor", 1.0))
    seed = args.seed if args.seed is not None else data.get("seed")
    hold_s = args.hold if args.hold is not None else data.get("hold_s")
    if hold_s is not None and float(hold_s) <= 0:
        raise UsageError("--hold: the time a timeout fault holds the connection must be more than 0 seconds")
    settings.host = args.host or str(data.get("host", "127.0.0.1"))
    # the command line, over the file
    cli: dict[str, dict[str, Any]] = {p: {} for p in PROVIDERS}
    for provider, flag in (("aliyun", "aliyun_key"), ("tencent", "tencent_key"), ("wechat", "wechat_app"), ("jpush", "jpush_app")):
        value = getattr(args, flag)
        if value:
            ident, sep, secret = value.partition(":")
            if not sep or not ident or not secret:
                raise UsageError(f"--{flag.replace('_', '-')}: give ID:SECRET")
            cli[provider][_CREDENTIALS[provider][2]] = {ident: secret}
    for provider, key, value in (
        ("aliyun", "callback_url", args.sms_callback), ("aliyun", "reply_callback_url", args.sms_reply_callback),
        ("tencent", "callback_url", args.tencent_callback), ("tencent", "reply_callback_url", args.tencent_reply_callback),
        ("wechat", "callback_url", args.wechat_callback), ("wechat", "encoding_aes_key", args.wechat_aes_key),
        ("wechat", "callback_token", args.wechat_token),
    ):  # fmt: skip
        if value:
            cli[provider][key] = value
    for provider in PROVIDERS:
        config = settings.configs[provider]
        extra = cli[provider]
        if "time_factor" in {f.name for f in fields(config)}:
            extra.setdefault("time_factor", time_factor)
        settings.configs[provider] = replace(config, **extra)
        settings.ports[provider] = getattr(args, f"{provider}_port")
    wechat = settings.configs["wechat"]
    if wechat.encoding_aes_key and len(wechat.encoding_aes_key) != 43:
        raise UsageError("the WeChat EncodingAESKey has 43 characters (A-Z, a-z, 0-9)")
    by_provider: dict[str, list[str]] = {}
    for spec in args.fault:
        provider, _, rest = spec.partition(":")
        if provider not in PROVIDERS or not rest:
            raise UsageError(f"--fault {spec!r}: expected PROVIDER:SPEC with PROVIDER one of {', '.join(PROVIDERS)}")
        by_provider.setdefault(provider, []).append(rest)
    for provider in PROVIDERS:
        base = settings.faults.get(provider, Faults())
        words = [f"{c}={r}" for c, r in base.error_rates.items()]
        words += [f"{n}={getattr(base, a)}" for n, a in (("latency", "latency_s"), ("timeout", "timeout_rate"),
                                                          ("lost_receipts", "lost_receipt_rate")) if getattr(base, a)]  # fmt: skip
        settings.faults[provider] = _faults(
            [*words, *by_provider.get(provider, [])],
            seed=None if seed is None else int(seed) + PROVIDERS.index(provider),
            hold_s=float(hold_s) if hold_s is not None else None,
            where=f"faults of {provider}",
        )
    for spec in args.scenario:
        provider, _, rest = spec.partition(":")
        recipient, eq, what = rest.partition("=")
        if provider not in PROVIDERS or not eq or not recipient or not what:
            raise UsageError(f"--scenario {spec!r}: expected PROVIDER:RECIPIENT=WHAT, e.g. aliyun:13800000009=receipt:MK:0001")
        settings.scenarios.setdefault(provider, {})[recipient] = what
    return settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="policy-push simulators",
        description="Local simulators of the SMS, WeChat and JPush providers.",
        epilog="While they run: policy-push simulators reply --phone P --text TD | event --openid O --event unsubscribe "
        "| scenario PROVIDER RECIPIENT WHAT (each with --help). Settings file example: docs/examples/simulators.toml",
    )
    p.add_argument("--config", metavar="FILE", help="settings file (TOML, or JSON by extension); options override it")
    p.add_argument("--host", default="", help="loopback address to listen on (default 127.0.0.1)")
    for name in PROVIDERS:
        p.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], help=f"{name} port (0 = any free port)")
    p.add_argument("--aliyun-key", metavar="ID:SECRET", help="the AccessKeyId and secret Aliyun accepts")
    p.add_argument("--tencent-key", metavar="ID:KEY", help="the SecretId and SecretKey Tencent accepts")
    p.add_argument("--wechat-app", metavar="APPID:SECRET", help="the official account's appid and secret")
    p.add_argument("--jpush-app", metavar="KEY:SECRET", help="the JPush appKey and masterSecret")
    p.add_argument("--sms-callback", default="", help="URL that receives Aliyun SmsReport receipts")
    p.add_argument("--sms-reply-callback", default="", help="URL that receives Aliyun SmsUp replies")
    p.add_argument("--tencent-callback", default="", help="URL that receives Tencent status callbacks")
    p.add_argument("--tencent-reply-callback", default="", help="URL that receives Tencent reply callbacks")
    p.add_argument("--wechat-callback", default="", help="URL that receives the WeChat account's events")
    p.add_argument("--wechat-token", default="", help="the token WeChat signs pushes with")
    p.add_argument("--wechat-aes-key", default="", help="EncodingAESKey: push events in safe mode (encrypt_type=aes)")
    p.add_argument("--time-factor", type=float, default=None, help="scale providers' delays (0.01 = 100x faster)")
    p.add_argument("--seed", type=int, default=None, help="random seed: the same seed injects the same faults")
    p.add_argument("--hold", type=float, default=None, metavar="S", help="how long a timeout fault holds the connection")
    p.add_argument(
        "--fault", action="append", default=[], metavar="PROVIDER:SPEC",
        help="e.g. aliyun:isp.SYSTEM_ERROR=0.1, wechat:-1=0.05, jpush:latency=0.2, aliyun:timeout=0.01",
    )  # fmt: skip
    p.add_argument(
        "--scenario", action="append", default=[], metavar="PROVIDER:RECIPIENT=WHAT",
        help="e.g. aliyun:13800000009=isv.BLACK_KEY_CONTROL_LIMIT, tencent:13800000008=receipt:MK:0001, "
        "wechat:OPENID=blocked, jpush:REGID=unknown",
    )  # fmt: skip
    return p


async def _serve(settings: SimSettings) -> None:
    from channels.simulators import start_all

    sims = await start_all(settings.host, settings.ports, configs=settings.configs, faults=settings.faults)
    try:
        for provider, table in settings.scenarios.items():
            for recipient, what in table.items():
                sims.all[provider].set_scenario(recipient, what)
    except ValueError as exc:
        await sims.close()
        raise UsageError(f"scenario: {exc}") from exc
    for sim in sims.all.values():
        sim.listeners.append(lambda rec: print(rec.describe(), flush=True))
    # before anything says "listening": a Ctrl-C (or SIGTERM) right after that line must stop us, also when
    # we were started with SIGINT ignored (a background job), where no default handler would catch it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print("Provider simulators (test mode) are listening:")
    for name, url in sims.urls.items():
        print(f"  {name:8s} {url}")
    a, t, w, j = sims.aliyun.config, sims.tencent.config, sims.wechat.config, sims.jpush.config
    defaults = {p: _CONFIG_TYPES[p]() for p in PROVIDERS}

    def secret(provider: str, value: str) -> str:
        # the built-in test secrets are in the source and the docs; a secret from settings is never shown
        built_in = next(iter(getattr(defaults[provider], _CREDENTIALS[provider][2]).values()))
        return f"{value} (built-in test value)" if value == built_in else "(from your settings)"

    (ak, asec), (tid, tkey) = next(iter(a.access_keys.items())), next(iter(t.secrets.items()))
    (appid, wsec), (app_key, master) = next(iter(w.apps.items())), next(iter(j.apps.items()))
    print(f"  aliyun   AccessKeyId={ak} secret={secret('aliyun', asec)} SignName={min(a.sign_names)} templates={list(a.templates)}")
    print(f"  tencent  SecretId={tid} SecretKey={secret('tencent', tkey)} SdkAppId={t.sdk_app_id} templates={list(t.templates)}")
    print(f"  wechat   appid={appid} secret={secret('wechat', wsec)} templates={list(w.templates)} "
          f"subscribe_templates={list(w.subscribe_templates)} safe_mode={'on' if w.encoding_aes_key else 'off'}")  # fmt: skip
    print(f"  jpush    appKey={app_key} masterSecret={secret('jpush', master)}")
    seeds = {p: f.seed for p, f in settings.faults.items() if f.seed is not None}
    if seeds:
        print(f"  seeds    {seeds}; timeout faults hold {next(iter(settings.faults.values())).hang_s:g} s")
    print("Messages appear below as they arrive (Ctrl-C to stop).", flush=True)
    try:
        await stop.wait()
    finally:
        await sims.close()


# ---- control commands: talk to running simulators ---------------------------------------------


def _control(url: str, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url.rstrip('/')}{CONTROL_PREFIX}/{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except json.JSONDecodeError:
            return exc.code, {"error": f"HTTP {exc.code}"}


def _control_main(command: str, argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"policy-push simulators {command}")
    p.add_argument("--url", default="", help="the simulator's URL (default: its default port on 127.0.0.1)")
    if command == "reply":
        p.add_argument("--phone", required=True)
        p.add_argument("--text", required=True, help='what the phone replies, e.g. "TD"')
        p.add_argument("--provider", choices=("aliyun", "tencent"), default="aliyun")
    elif command == "event":
        p.add_argument("--openid", required=True)
        p.add_argument("--event", required=True, choices=("unsubscribe", "subscribe"))
    else:
        p.add_argument("provider", choices=PROVIDERS)
        p.add_argument("recipient")
        p.add_argument("what", help="e.g. isv.BLACK_KEY_CONTROL_LIMIT, receipt:MK:0001, blocked, unknown")
    args = p.parse_args(argv)
    provider = {"reply": getattr(args, "provider", ""), "event": "wechat"}.get(command) or args.provider
    url = args.url or f"http://127.0.0.1:{DEFAULT_PORTS[provider]}"
    if command == "reply":
        path, body = "reply", {"phone": args.phone, "text": args.text}
    elif command == "event":
        path, body = "event", {"openid": args.openid, "event": args.event}
    else:
        path, body = "scenario", {"recipient": args.recipient, "scenario": args.what}
    try:
        status, answer = _control(url, path, body)
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: no {provider} simulator answers at {url} ({getattr(exc, 'reason', exc)}); "
              "start them with `policy-push simulators`", file=sys.stderr)  # fmt: skip
        return EXIT_UNREACHABLE
    if status != 200:
        print(f"error: the {provider} simulator refused: {answer.get('error', status)}", file=sys.stderr)
        return EXIT_REFUSED
    where = answer.get("pushed_to")
    if command in ("reply", "event"):
        # the simulator pushes in the background on the provider's retry schedule: whether it arrived is told by the
        # simulators' own output ("giving up on a callback …") and by the service, not known here
        print(f"{provider}: pushing to {where} (in the background, retried on the provider's schedule)" if where
              else f"{provider}: done (no callback URL is set, so nothing is pushed)")  # fmt: skip
    else:
        print(f"{provider}: {args.recipient} -> {args.what}")
    return 0


def run_simulators(argv: Sequence[str] | None = None) -> int:
    """Start every simulator on loopback and log arriving messages, or run one control command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in ("reply", "event", "scenario"):
        return _control_main(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    try:
        settings = build_settings(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(settings))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot listen ({exc.strerror}); is another copy running? Use --PROVIDER-port 0", file=sys.stderr)
        return EXIT_USAGE
    return 0


def main() -> None:
    sys.exit(run_simulators(sys.argv[1:]))
