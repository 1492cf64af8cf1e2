"""Messages that cost one SMS: title shortening, template choice, link codes, sensitive titles."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from channels import InvalidMessageError, Notification, SmsLayout
from channels.render import (
    LINK_CODE_LEN,
    NEUTRAL_TITLE,
    compact_sms_layouts,
    link_code,
    render_sms_fitted,
    shorten_title,
    sms_segments,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "policies.jsonl"
BASE = "https://s.pj.gov.cn/"  # the service's default link base (20 characters)
LAYOUTS = compact_sms_layouts("盘锦政务", BASE)
SENSITIVE = ("低保", "最低生活保障", "特困", "残疾", "困难群众", "低收入", "脱贫户")


def sensitive(text: str) -> bool:  # the service passes matchers.is_sensitive; the engines never import each other
    return any(w in text for w in SENSITIVE)


@pytest.mark.parametrize(("title", "short"), [
    ("关于组织申报2026年度盘锦市专精特新中小企业奖励资金的通知", "专精特新中小企业奖励"),
    ("辽宁省人力资源和社会保障厅关于做好2026年失业保险稳岗返还工作的通知", "失业保险稳岗返还"),
    ("关于印发《盘锦市普惠托育服务补贴实施办法》的通知", "普惠托育服务补贴"),
    ("盘锦市小微企业创业担保贷款及财政贴息实施办法", "小微企业创业担保贷款及财政贴息"),
    ("关于做好2025—2026年采暖期困难群众取暖补贴发放工作的通知", "采暖期困难群众取暖补贴"),
    ("关于进一步支持个体工商户纾困发展的若干措施", "个体工商户纾困发展"),
    ("稳岗返还", "稳岗返还"),
    ("关于的通知", "关于的通知"),  # rules that would leave nothing leave the title alone
])
def test_shorten_title_keeps_the_meaningful_head(title: str, short: str) -> None:
    assert shorten_title(title) == short


def _notification(policy: dict, reason: str = "资质 专精特新中小企业 符合") -> Notification:
    until = policy.get("apply_until")
    return Notification(policy["title"], policy.get("summary") or "", reason, BASE + link_code(),
                        dt.date.fromisoformat(until) if until else None)


def test_every_sample_policy_fits_one_segment_mostly_and_never_more_than_two() -> None:
    policies = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    rendered = [render_sms_fitted(_notification(p), LAYOUTS, is_sensitive=sensitive) for p in policies]
    assert all(r.segments <= 2 and r.length == len(r.text) and r.segments == sms_segments(r.length) for r in rendered)
    one = sum(r.segments == 1 for r in rendered)
    assert one / len(rendered) >= 0.9, [r.text for r in rendered if r.segments > 1]
    for r in rendered:
        assert r.text.startswith("【盘锦政务】") and r.text.endswith("回复TD退订") and BASE in r.text
        assert len(r.params["link"]) <= LINK_CODE_LEN
        assert not any(w in r.text for w in SENSITIVE), r.text


def test_richest_template_that_fits_is_chosen() -> None:
    short = compact_sms_layouts("盘锦政务", "s.pj.cn/")
    n = Notification("关于实施一次性扩岗补助政策的通知", "", "企业规模 小型 符合", "s.pj.cn/Ab3dE9xY", dt.date(2026, 12, 31))
    r = render_sms_fitted(n, short)
    assert r.template == "policy_notice_reason" and r.segments == 1
    assert r.text == "【盘锦政务】您可申请一次性扩岗补助，12月31日截止。企业规模 小型 符合。详见s.pj.cn/Ab3dE9xY 回复TD退订"
    # no reason to quote (never a may-qualify line): the template that needs one is skipped
    assert render_sms_fitted(Notification(n.policy_title, "", "", n.link, n.deadline), short).template \
        == "policy_notice_deadline"
    # no deadline: the bare invitation, not "以通知为准截止"
    assert render_sms_fitted(Notification(n.policy_title, "", "", n.link, None), short).template == "policy_notice_short"


def test_long_titles_are_cut_with_an_ellipsis_to_fit_one_segment() -> None:
    n = Notification("关于组织申报2026年度工业企业清洁生产和环保设施升级改造及节能降碳改造补助的通知", "", "", BASE + "Ab3dE9xY",
                     dt.date(2026, 8, 31))
    r = render_sms_fitted(n, LAYOUTS)
    assert r.segments == 1 and r.length <= 70 and "…" in r.params["title"]
    assert r.params["title"].startswith("工业企业清洁生产")


def test_sensitive_titles_are_neutral() -> None:
    n = Notification("关于向城乡低保对象和特困人员发放2026年度一次性生活补贴的通知", "", "", BASE + "Ab3dE9xY", None)
    r = render_sms_fitted(n, LAYOUTS, is_sensitive=sensitive)
    assert r.params["title"] == NEUTRAL_TITLE and "低保" not in r.text


def test_never_more_than_two_segments() -> None:
    wordy = SmsLayout("wordy", "盘锦政务", "尊敬的用户您好，" * 12 + "${title}详见" + BASE + "${link} ", BASE)
    n = Notification("稳岗返还", "", "", BASE + "Ab3dE9xY", None)
    with pytest.raises(InvalidMessageError, match="2 segments"):
        render_sms_fitted(n, [wordy])
    assert render_sms_fitted(n, [wordy], max_segments=3).segments == 3


def test_link_codes_are_short_random_and_plain() -> None:
    codes = {link_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == LINK_CODE_LEN for c in codes)
    assert not set("".join(codes)) & set("0O1lI")
    with pytest.raises(ValueError):
        link_code(9)
