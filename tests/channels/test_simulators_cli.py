"""``policy-push simulators`` as a city's test environment runs it: a settings file, scripted
recipients, a seed and hold time, and the reply / event / scenario commands against running simulators."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from channels import AliyunSms, AliyunSmsConfig, Outcome, ReplyKind, WechatEventKind, open_wechat_push
from channels.replies import parse_aliyun_sms_up
from channels.simulators.cli import _parser, build_settings, run_simulators
from tests.channels.helpers import POLICY_PARAMS, openid

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

SETTINGS = """
seed = 7
hold_s = 2.5
time_factor = 0.001

[aliyun]
access_key_id = "LTAI-panjin-test"
access_key_secret = "panjin-test-secret"
callback_url = "{cb}"
reply_callback_url = "{cb}"
faults = ["isp.SYSTEM_ERROR=0.0"]

[aliyun.scenarios]
"13800000009" = "isv.BLACK_KEY_CONTROL_LIMIT"

[wechat]
callback_url = "{cb}"
callback_token = "panjin-token"
encoding_aes_key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

[jpush.scenarios]
"1a0018970a00000009" = "unknown"
"""


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channels.simulators", *args, cwd=ROOT, env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_settings_file_scripts_a_running_set_and_the_control_commands_drive_it(tmp_path, receiver, session) -> None:
    settings = tmp_path / "sims.toml"
    settings.write_text(SETTINGS.format(cb=receiver.url), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channels.simulators", "--config", str(settings),
        *[arg for name in ("aliyun", "tencent", "wechat", "jpush") for arg in (f"--{name}-port", "0")],
        cwd=ROOT, env=ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Messages appear"):
                lines.append((await proc.stdout.readline()).decode().strip())
        urls = {ln.split()[0]: ln.split()[1] for ln in lines if ln.split()[1:2] and "://" in ln.split()[1]}
        assert any("AccessKeyId=LTAI-panjin-test" in ln for ln in lines)
        assert any("safe_mode=on" in ln for ln in lines) and any("timeout faults hold 2.5 s" in ln for ln in lines)
        assert not any("panjin-test-secret" in ln for ln in lines)  # secrets are never printed

        # the credentials from the file are the ones the simulator accepts; the scenario holds
        config = AliyunSmsConfig("LTAI-panjin-test", "panjin-test-secret", "盘锦政务", {"n": "SMS_900001"},
                                 base_url=urls["aliyun"] + "/")  # fmt: skip
        from channels import OutboundMessage

        ok, blocked = await AliyunSms(config, session).send(
            [OutboundMessage("d-1", "13800000001", "n", POLICY_PARAMS), OutboundMessage("d-9", "13800000009", "n", POLICY_PARAMS)]
        )
        assert ok.outcome is Outcome.ACCEPTED and (blocked.outcome, blocked.code) == (Outcome.UNREACHABLE, "isv.BLACK_KEY_CONTROL_LIMIT")

        # phone X replies TD; openid Z unfollows; a new scenario is scripted while running
        code, out, err = await _run("reply", "--url", urls["aliyun"], "--phone", "13800000001", "--text", "TD")
        assert code == 0 and "pushing to" in out, err
        code, out, err = await _run("event", "--url", urls["wechat"], "--openid", openid(5), "--event", "unsubscribe")
        assert code == 0, err
        code, out, err = await _run("scenario", "--url", urls["wechat"], "wechat", openid(6), "nonsense")
        assert code == 4 and "must be one of" in err
        # receipts of the send, the SmsUp and the event all land on the one receiver: wait for the last two
        def arrived() -> list[tuple[bytes, dict[str, str]]]:
            pairs = zip(receiver.bodies, receiver.queries, strict=True)
            return [(b, q) for b, q in pairs if b.startswith(b"<xml>") or b'"content"' in b]

        async with asyncio.timeout(10):
            while len(arrived()) < 2:
                await asyncio.sleep(0.05)
        replies = [r for b, _ in arrived() if b.startswith(b"[") for r in parse_aliyun_sms_up(b)]
        assert [(r.phone, r.kind) for r in replies] == [("13800000001", ReplyKind.OPT_OUT)]
        from channels import WechatCrypto

        crypto = WechatCrypto("panjin-token", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wxsimappid0000001")
        # (the receiver answers Aliyun's acknowledgement, not WeChat's "success": WeChat pushes again)
        events = {
            (e.kind, e.openid)
            for e in (open_wechat_push(q, b, token="panjin-token", crypto=crypto) for b, q in arrived() if b.startswith(b"<xml>"))
        }
        assert events == {(WechatEventKind.UNSUBSCRIBE, openid(5))}
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            code = await proc.wait()
    assert code == 0


async def test_control_commands_name_a_missing_simulator() -> None:
    code, _, err = await _run("reply", "--url", "http://127.0.0.1:9", "--phone", "13800000001", "--text", "TD")
    assert code == 3 and "no aliyun simulator answers" in err and "policy-push simulators" in err


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ('seed = 1\nbogus = 2\n', ".toml", "unknown setting 'bogus'"),
        ('[aliyun]\naccess_key_id = "x"\n', ".toml", "give both access_key_id and access_key_secret"),
        ('{"wechat": {"encoding_aes_key": "short"}}', ".json", "43 characters"),
        ('{"aliyun": [1]', ".json", ":1: not valid JSON"),
        ('[tencent]\nno_such = 1\n', ".toml", "[tencent]: unknown setting 'no_such'"),
    ],
)
def test_settings_mistakes_get_one_line_and_exit_code_2(tmp_path, capsys, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"s{suffix}"
    path.write_text(text, encoding="utf-8")
    assert run_simulators(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_seed_hold_and_scenarios_from_the_command_line() -> None:
    args = _parser().parse_args(
        ["--seed", "11", "--hold", "4", "--fault", "aliyun:timeout=0.5", "--scenario", "tencent:13800000008=receipt:MK:0001",
         "--jpush-app", "k:s", "--tencent-callback", "http://127.0.0.1:1/t"]
    )  # fmt: skip
    s = build_settings(args)
    assert (s.faults["aliyun"].seed, s.faults["aliyun"].hang_s, s.faults["aliyun"].timeout_rate) == (11, 4.0, 0.5)
    assert s.faults["tencent"].seed == 12  # each provider its own stream, all fixed by one seed
    assert {p: t for p, t in s.scenarios.items() if t} == {"tencent": {"13800000008": "receipt:MK:0001"}}
    assert s.configs["jpush"].apps == {"k": "s"} and s.configs["tencent"].callback_url == "http://127.0.0.1:1/t"


async def test_the_same_seed_injects_the_same_faults(start_sim) -> None:
    from channels.simulators import AliyunSimulator, Faults

    picks = []
    for _ in range(2):
        sim = await start_sim(AliyunSimulator, faults=Faults(error_rates={"isp.SYSTEM_ERROR": 0.5}, seed=3))
        picks.append([sim.faults.pick_error(sim.rng) for _ in range(20)])
    assert picks[0] == picks[1] and None in picks[0] and "isp.SYSTEM_ERROR" in picks[0]
    assert json.dumps(picks[0])  # a plain list, printable in a report


def test_the_documented_example_settings_file_loads() -> None:
    args = _parser().parse_args(["--config", str(ROOT / "docs" / "examples" / "simulators.toml")])
    s = build_settings(args)
    assert s.configs["aliyun"].access_keys == {"LTAI-panjin-test": "panjin-aliyun-test-secret"}
    assert s.configs["wechat"].encoding_aes_key and s.faults["aliyun"].hang_s == 8
    assert s.scenarios["jpush"] == {"1a0018970a00000009": "unknown", "1a0018970a00000008": "undelivered"}
