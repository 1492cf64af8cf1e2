"""An SMS fitted once per reason and reused (``render_for_recipient(fits=...)``, as the sender does) is the
message fitting it anew for every recipient gives: same template, variables and text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from channels.render import link_code
from policy_push.campaigns import MessageSettings, build_message_bodies, render_for_recipient
from policy_push.campaigns.messages import SmsFits
from policy_push.config import Settings
from policy_push.domain import ValidationContext
from policy_push.matching.offline import read_jsonl

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

#: reasons from none to longer than any one-segment template holds, some repeated
REASONS = [None, "", "年满60周岁", "户籍在本区", "身份标签：退役军人", "企业规模：小微企业，且近三年无严重失信记录",
           "年满60周岁", "所在行业：软件和信息技术服务业；注册地在本区；成立不满三年；研发投入占比达到百分之五以上"]  # fmt: skip


def test_a_reused_fit_gives_the_message_a_fresh_fit_gives() -> None:
    ctx = ValidationContext(today=dt.date(2026, 11, 26))
    policies, _ = read_jsonl(SAMPLE / "policies.jsonl", "policy", ctx)
    ms = MessageSettings.from_settings(Settings(demo=True))
    compared = reused = 0
    for policy in policies:
        body = build_message_bodies(policy, ("sms",), ms, sample_reasons=[None])["sms"]  # type: ignore[arg-type]
        fits: SmsFits = {}
        for round_ in range(2):
            for i, reason in enumerate(REASONS):
                code = link_code()
                delivery_id = f"{round_}{i}".ljust(32, "a")
                fresh = render_for_recipient(body, reason=reason, delivery_id=delivery_id, address="13800000000",
                                             code=code, token="unused")  # fmt: skip
                reused += len(fits) > 0
                again = render_for_recipient(body, reason=reason, delivery_id=delivery_id, address="13800000000",
                                             code=code, token="unused", fits=fits)  # fmt: skip
                assert (again.template, again.params, again.text) == (fresh.template, fresh.params, fresh.text)
                compared += 1
        assert fits  # the fits were kept, and the second round used them
    assert compared == len(policies) * 2 * len(REASONS) and reused > compared // 2
