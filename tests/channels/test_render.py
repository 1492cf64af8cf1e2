"""Per-channel rendering and the SMS length rules."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import (
    AppLayout,
    InvalidMessageError,
    SmsLayout,
    WechatLayout,
    render_app,
    render_sms,
    render_wechat,
    sms_length,
    sms_segments,
)
from channels.render import check_no_id_number, check_sms_variable
from tests.channels.helpers import notification

LAYOUT = SmsLayout(
    template="policy_notice",
    sign_name="盘锦政务",
    body="您可能符合${title}，${benefit}，申报截止${deadline}。${reason}。详见 https://s.pj.gov.cn/${link} ",
    link_base="https://s.pj.gov.cn/",
)
WECHAT = WechatLayout("policy_notice", {"thing1": "title", "time2": "deadline", "thing3": "reason", "thing4": "benefit"})


@pytest.mark.parametrize(("length", "segments"), [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (160, 3), (500, 8)])
def test_segments(length: int, segments: int) -> None:
    assert sms_segments(length) == segments


def test_every_character_counts_one() -> None:
    assert sms_length("【华为云】") == 5
    assert sms_length("aB1，,。") == 6


@given(st.integers(min_value=71, max_value=500))
def test_segments_cover_the_text(length: int) -> None:
    n = sms_segments(length)
    assert (n - 1) * 67 < length <= n * 67


def test_sms_rendering_counts_the_signature_and_shows_the_opt_out() -> None:
    r = render_sms(notification(policy_title="关于组织申报2024年度盘锦市专精特新中小企业及高新技术企业奖励资金的通知"), LAYOUT)
    assert r.text.startswith("【盘锦政务】") and r.text.endswith("回复TD退订")
    assert r.length == len(r.text) and r.segments == sms_segments(r.length)
    assert r.params["link"] == "Ab3x"  # only the code: no URL inside a variable
    assert r.params["deadline"] == "2024年6月30日"
    assert len(r.params["title"]) == 35 and r.params["title"].endswith("…")
    msg = r.message("d-1", "13800000000")
    assert msg.params == r.params and msg.text == r.text


def test_opt_out_line_is_configurable() -> None:
    layout = SmsLayout(LAYOUT.template, LAYOUT.sign_name, LAYOUT.body, LAYOUT.link_base, opt_out="拒收请回复R")
    assert render_sms(notification(), layout).text.endswith("拒收请回复R")


def test_missing_deadline_and_benefit_still_fill_variables() -> None:
    r = render_sms(notification(deadline=None, benefit=""), LAYOUT)
    assert r.params["deadline"] == "以通知为准" and r.params["benefit"] == "详见政策原文"


def test_link_outside_the_base_is_refused() -> None:
    with pytest.raises(InvalidMessageError, match="does not start with"):
        render_sms(notification(link="https://evil.example.com/x"), LAYOUT)


def test_url_inside_a_variable_is_refused() -> None:
    with pytest.raises(InvalidMessageError, match="URL"):
        render_sms(notification(reason="详见 www.pj.gov.cn"), LAYOUT)


@pytest.mark.parametrize("value", ["", "x" * 36])
def test_variable_length_1_to_35(value: str) -> None:
    with pytest.raises(InvalidMessageError, match=r"1\.\.35"):
        check_sms_variable("v", value)
    check_sms_variable("v", "x" * 35)


@pytest.mark.parametrize("id_number", ["211102199001011234", "21110219900101123X", "211102900101123"])
def test_id_numbers_never_pass(id_number: str) -> None:
    with pytest.raises(InvalidMessageError, match="ID number"):
        check_no_id_number(f"您的身份证{id_number}已登记")
    for render in (
        lambda n: render_sms(n, LAYOUT),
        lambda n: render_wechat(n, WECHAT, delivery_id="w", openid="o"),
        lambda n: render_app(n, AppLayout(), delivery_id="p", registration_id="r"),
    ):
        with pytest.raises(InvalidMessageError):
            render(notification(reason=f"证件{id_number}"))


def test_phone_numbers_and_dates_are_not_mistaken_for_id_numbers() -> None:
    check_no_id_number("咨询电话13800000000，截止20240630，编号2024000000000001")


def test_wechat_values_fit_their_key_types() -> None:
    msg = render_wechat(notification(), WECHAT, delivery_id="w-1", openid="o-1")
    assert len(msg.params["thing1"]) == 20 and msg.params["thing1"].endswith("…")
    assert msg.params["time2"] == "2024年6月30日" and msg.url == "https://s.pj.gov.cn/Ab3x"
    assert set(msg.params) == {"thing1", "time2", "thing3", "thing4"}


def test_app_message_has_title_alert_and_link() -> None:
    msg = render_app(notification(), AppLayout(title_max=20), delivery_id="p-1", registration_id="r-1")
    assert len(msg.title) == 20 and "申报截止2024年6月30日" in msg.text and msg.url.endswith("Ab3x")


def test_deadline_format() -> None:
    assert notification(deadline=date(2025, 1, 5)).source("deadline") == "2025年1月5日"
