"""Adapters built from settings: the SMS providers in preference order, Tencent's settings resolved."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from channels import AliyunSms, TencentSms
from channels.simulators import DEFAULT_PORTS, TencentSimConfig
from policy_push.campaigns import MessageSettings
from policy_push.config import Settings
from policy_push.errors import ConfigurationError
from policy_push.sending.providers import TENCENT_PARAMS, build_channels, endpoints


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


async def test_sms_adapters_follow_sms_providers_order() -> None:
    async with aiohttp.ClientSession() as session:
        default = build_channels(_settings(), session)
        assert [ch.name for ch in default] == ["aliyun_sms", "tencent_sms", "wechat", "jpush"]
        flipped = build_channels(_settings(sms_providers="tencent, aliyun"), session)
        assert [ch.name for ch in flipped if ch.kind == "sms"] == ["tencent_sms", "aliyun_sms"]
        alone = build_channels(_settings(sms_providers="aliyun"), session)
        assert [type(ch) for ch in alone if ch.kind == "sms"] == [AliyunSms]


async def test_tencent_defaults_to_the_simulator_and_fills_its_slots_in_template_order() -> None:
    e = endpoints(_settings())
    sim = TencentSimConfig()
    assert e.tencent_url == f"http://127.0.0.1:{DEFAULT_PORTS['tencent']}/"
    assert e.tencent_key == next(iter(sim.secrets.items()))
    assert (e.tencent_sdk_app_id, e.tencent_template_id) == (sim.sdk_app_id, next(iter(sim.templates)))
    assert "sim-secret-key" not in repr(e)
    # the params the SMS renderer produces, in the order of the approved text (= the template's {1}..{5})
    body = MessageSettings.from_settings(_settings()).sms_layout().full_body
    assert sorted(TENCENT_PARAMS, key=body.index) == list(TENCENT_PARAMS)
    async with aiohttp.ClientSession() as session:
        [tencent] = [ch for ch in build_channels(_settings(), session) if isinstance(ch, TencentSms)]
        assert tencent.config.templates["policy_notice"].params == TENCENT_PARAMS


def _live(**kw: object) -> Settings:
    full: dict[str, object] = {
        "provider_mode": "live", "aliyun_access_key_id": "ak", "aliyun_access_key_secret": "as",
        "aliyun_template_code": "SMS_1", "wechat_appid": "wx", "wechat_secret": "ws", "wechat_template_id": "t",
        "jpush_app_key": "jk", "jpush_master_secret": "jm", "tencent_secret_id": "tid", "tencent_secret_key": "tk",
        "tencent_sdk_app_id": "1400", "tencent_template_id": "99",
    }  # fmt: skip
    full.update(kw)
    return _settings(**full)


@pytest.mark.parametrize("missing", ["tencent_secret_id", "tencent_secret_key", "tencent_sdk_app_id", "tencent_template_id"])
def test_live_mode_requires_each_tencent_setting(missing: str) -> None:
    with pytest.raises(ConfigurationError, match=f"POLICY_PUSH_{missing.upper()}"):
        endpoints(_live(**{missing: None if missing == "tencent_secret_key" else ""}))


def test_live_mode_without_tencent_needs_no_tencent_settings() -> None:
    e = endpoints(_live(sms_providers="aliyun", tencent_secret_id="", tencent_secret_key=None))
    assert e.tencent_url == "" and e.aliyun_url == "https://dysmsapi.aliyuncs.com/"
    assert endpoints(_live()).tencent_url == "https://sms.tencentcloudapi.com/"


@pytest.mark.parametrize("bad", ["", "aliyun,aliyun", "aliyun,twilio"])
def test_sms_providers_is_validated(bad: str) -> None:
    with pytest.raises(ValidationError):
        _settings(sms_providers=bad)
