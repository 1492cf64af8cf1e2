"""Billed SMS segments of every message the sample would send: ``python -m bench.sms``.

Every sample policy is matched against every sample profile of its audience by the real engine; the SMS
of each eligible recipient is rendered as dispatch renders it (its ``message_reason``, an 8-character
link code), once with the one-segment templates (``render_sms_fitted``) and once with the long
template alone (the baseline: what a provider without the compact templates gets).  Prints the
count of messages by billed segments, and the total billed.
"""

from __future__ import annotations

import collections
import datetime as dt
import platform
from pathlib import Path

from channels.render import link_code, sms_segments
from policy_push.campaigns import MessageSettings, build_message_bodies, render_for_recipient
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

ON = dt.date(2026, 11, 26)
SAMPLE = Path(__file__).resolve().parents[2] / "policy_push" / "sample"


def main() -> None:
    ctx = ValidationContext(today=ON)
    policies, _ = read_jsonl(SAMPLE / "policies.jsonl", "policy", ctx)
    hier, tok = Hierarchies.from_ref(ctx.ref), CountingTokenizer()
    engines = {a: new_engine(a, hier, tok).fit([engine_record(p, ctx.ref) for p in read_jsonl(SAMPLE / f"{a}s.jsonl", a, ctx)[0]])
               for a in AUDIENCES}
    compact = MessageSettings.from_settings(Settings(demo=True))
    long_only = MessageSettings(**{**{f: getattr(compact, f) for f in compact.__dataclass_fields__}, "sms_compact": False})
    counts = {name: collections.Counter() for name in ("one-segment templates", "long template (baseline)")}
    policies_counted = 0
    for policy in policies:
        found = engines[policy.audience].match_policy(policy_source(policy), on=ON, top_k=None)
        if not found.eligible:
            continue
        policies_counted += 1
        lines = PolicyMatchResult.from_matches(found).message_lines
        reasons = [lines[r.profile_id][0] for r in found.eligible]
        for name, ms in zip(counts, (compact, long_only), strict=True):
            body = build_message_bodies(policy, ["sms"], ms, sample_reasons=reasons)["sms"]
            for reason in reasons:
                code = link_code()
                text = render_for_recipient(body, reason=reason, delivery_id="d" * 32, address="13800000000",
                                            code=code, token=code).text or ""
                counts[name][sms_segments(len(text))] += 1
    print(f"# SMS billed segments, sample ({policies_counted} policies with eligible recipients) | "
          f"{dt.date.today()} | {platform.machine()} Python {platform.python_version()}")
    print()
    print("| templates | messages | 1 segment | 2 segments | 3+ segments | billed segments |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, c in counts.items():
        total = sum(c.values())
        print(f"| {name} | {total:,} | {c[1]:,} | {c[2]:,} | {sum(n for k, n in c.items() if k >= 3):,} | "
              f"{sum(k * n for k, n in c.items()):,} |")


if __name__ == "__main__":
    main()
