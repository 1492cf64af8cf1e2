"""Issue 10 (PIPL Art. 28): no sensitive fact (低保, 特困, 残疾, health) in any message or public page.

Every sample policy is matched by the real engine against every sample profile of its audience; for
each eligible and may-qualify record, the SMS, WeChat and app messages are rendered exactly as dispatch
renders them (the record's ``message_reason``, a real link code and token) and the person's public page
as the web view renders it.  No text may name a sensitive fact.  The sample does hold sensitive
reasons (residents tagged 低保, 残疾 …) and policies whose titles name them, so the test can fail.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from channels.render import link_code
from matchers import is_sensitive
from policy_push.campaigns import MessageSettings, build_message_bodies, render_for_recipient
from policy_push.campaigns.messages import policy_is_sensitive, shown_reasons
from policy_push.config import Settings
from policy_push.domain import ValidationContext
from policy_push.matching.engines import (
    AUDIENCES,
    CountingTokenizer,
    Hierarchies,
    engine_record,
    new_engine,
    policy_source,
)
from policy_push.matching.offline import read_jsonl
from policy_push.matching.results import PolicyMatchResult
from policy_push.storage.campaigns import RecipientLines
from policy_push.web.pages import render_page

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
ON = dt.date(2026, 11, 26)
CHANNELS = ("sms", "wechat", "app")


@cache
def _results() -> list[tuple[object, PolicyMatchResult, list[object]]]:
    ctx = ValidationContext(today=ON)
    policies, _ = read_jsonl(SAMPLE / "policies.jsonl", "policy", ctx)
    hier = Hierarchies.from_ref(ctx.ref)
    tokenizer = CountingTokenizer()
    engines = {}
    for audience in AUDIENCES:
        profiles, _ = read_jsonl(SAMPLE / f"{audience}s.jsonl", audience, ctx)
        engines[audience] = new_engine(audience, hier, tokenizer).fit([engine_record(p, ctx.ref) for p in profiles])
    out = []
    for policy in policies:
        found = engines[policy.audience].match_policy(policy_source(policy), on=ON, top_k=None)
        out.append((policy, PolicyMatchResult.from_matches(found), [*found.eligible, *found.unknown]))
    return out


def test_the_sample_holds_sensitive_reasons_and_titles() -> None:
    lines = [line for _, _, records in _results() for r in records for line in r.reasons]  # type: ignore[attr-defined]
    assert any(is_sensitive(line) for line in lines)
    assert any(policy_is_sensitive(p) for p, _, _ in _results())  # type: ignore[arg-type]


def test_no_message_names_a_sensitive_fact() -> None:
    ms = MessageSettings.from_settings(Settings(demo=True))
    checked = 0
    for policy, result, records in _results():
        reasons = [result.message_lines[r.profile_id][0] for r in records]  # type: ignore[attr-defined]
        bodies = build_message_bodies(policy, CHANNELS, ms, sample_reasons=reasons or [None])  # type: ignore[arg-type]
        for body in bodies.values():
            preview = body["preview"]
            assert not is_sensitive(f"{preview['text']} {preview['title']} {preview['params']}"), (policy.id, preview)  # type: ignore[attr-defined]
        for record, reason in zip(records, reasons, strict=True):
            for channel, body in bodies.items():
                code = link_code()
                msg = render_for_recipient(body, reason=reason, delivery_id="d" * 32, address="13800000000",
                                           code=code, token=f"{code}.abcdef.AAAAAAAAAAAAAAAA")
                text = " ".join([msg.text or "", msg.title or "", msg.url or "", *msg.params.values()])
                assert not is_sensitive(text), (policy.id, record.profile_id, channel, text)  # type: ignore[attr-defined]
                if channel == "sms":
                    assert len(msg.text or "") <= 2 * 67
                checked += 1
    assert checked > 1000


def test_no_public_page_names_a_sensitive_fact() -> None:
    pages = 0
    for policy, result, records in _results():
        for record in records[:40]:
            public = result.message_lines[record.profile_id][1]  # type: ignore[attr-defined]
            lines = RecipientLines(list(record.reasons), result.message_lines[record.profile_id][0], public)  # type: ignore[attr-defined]
            shown = [] if policy_is_sensitive(policy) else shown_reasons(lines)  # type: ignore[arg-type]
            assert not any(is_sensitive(line) for line in shown)
            html = render_page("policy_page.html", policy=policy, benefit="", recipient=_Recipient(shown), thanks="",
                               feedback_kinds=[], form={"t": "x", "csrf": "y"}, confirm="", expired=False,
                               confirm_label="").text or ""
            personal = html[html.index("为什么推送给您"):html.index("政策原文")]
            assert not is_sensitive(personal), (policy.id, record.profile_id, personal)  # type: ignore[attr-defined]
            pages += 1
    assert pages > 100


class _Recipient:
    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        self.feedback: frozenset[str] = frozenset()
        self.opted_out = False
