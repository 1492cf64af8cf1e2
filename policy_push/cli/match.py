r"""``policy-push match``: match policies to profiles straight from JSONL files, no database.

Profiles are streamed: read, validated and tokenised by ``--jobs`` worker processes and indexed
without keeping the parsed records (``policy_push.matching.stream``).

Writes formats.md match records as JSON lines to standard output: per policy (in file order)
every eligible profile, best score first, then every profile that may qualify but lacks data
(``eligible: false`` with its ``missing`` fields).  Bad input lines go to standard error with
their line numbers and are left out; the exit status is then 1.

Example::

  policy-push sample --out sample
  policy-push match --policies sample/policies.jsonl --enterprises sample/enterprises.jsonl \
      --residents sample/residents.jsonl --date 2026-11-26 > matches.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path

from matchers import CriteriaError, MatchEngine
from policy_push.domain import Policy, local_today
from policy_push.matching import RejectedLine, read_jsonl
from policy_push.matching.engines import CountingTokenizer, Hierarchies
from policy_push.matching.stream import build_engine, match_lines
from policy_push.refdata import load_reference_data
from policy_push.runtime import validation_context

from .arguments import fraction
from .help import add_documented


def _day(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in the form YYYY-MM-DD: {raw!r}") from None


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(
        sub, "match", "match policies to profiles from JSONL files (no database); match records to stdout", __doc__
    )
    p.add_argument("--policies", type=Path, required=True, metavar="P.jsonl", help="policies, one a line")
    p.add_argument("--enterprises", type=Path, metavar="E.jsonl", help="enterprise profiles, one a line")
    p.add_argument("--residents", type=Path, metavar="R.jsonl", help="resident profiles, one a line")
    p.add_argument("--top-k", type=_positive, metavar="N", help="at most N eligible and N may-qualify records per policy")
    p.add_argument("--min-score", type=fraction, default=0.0, metavar="S", help="leave out eligible profiles scoring below S (0-1)")
    p.add_argument("--date", type=_day, metavar="YYYY-MM-DD",
                   help="the day matching runs on, for ages and years since founding (default: today in Asia/Shanghai)")
    p.add_argument("--jobs", type=_positive, default=min(os.cpu_count() or 1, 4), metavar="N",
                   help="processes that read and tokenise profiles (default: the CPUs, at most 4)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(handler=_match)


def _match(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    if args.enterprises is None and args.residents is None:
        print("policy-push match: give --enterprises, --residents or both", file=sys.stderr)
        return 2
    for path in (args.policies, args.enterprises, args.residents):
        if path is not None and not path.is_file():
            print(f"policy-push match: no such file {path}", file=sys.stderr)
            return 2
    settings = settings_from(args)
    on = args.date or local_today()
    ref = load_reference_data(settings.regions_csv, settings.industries_csv)
    # "today" is the matching day for validation too (an enterprise founded after it is refused)
    ctx = dataclasses.replace(validation_context(settings, ref), today=on)

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"policy-push match: {msg}", file=sys.stderr)

    rejected: list[RejectedLine] = []
    policies, bad = read_jsonl(args.policies, "policy", ctx)
    rejected += bad
    hier = Hierarchies.from_ref(ctx.ref)
    tokenizer = CountingTokenizer()
    engines: dict[str, MatchEngine] = {}
    for audience, path in (("enterprise", args.enterprises), ("resident", args.residents)):
        if path is not None:
            engines[audience], bad = build_engine(path, audience, ctx, hier, tokenizer, n_jobs=args.jobs, progress=say)
            rejected += bad
    for line in rejected:
        print(line, file=sys.stderr)

    def engine_refused(policy: Policy, exc: CriteriaError) -> None:
        print(f"{args.policies}: policy {policy.id}: {exc}", file=sys.stderr)
        rejected.append(RejectedLine(args.policies, 0, policy.id, []))

    n = 0
    out = sys.stdout
    buf: list[str] = []
    t_match = time.monotonic()
    for line in match_lines(policies, engines, on=on, top_k=args.top_k, min_score=args.min_score,
                            progress=say, on_error=engine_refused):
        buf.append(line)
        if len(buf) >= 5000:  # written as produced, a few thousand lines at a time
            out.write("".join(buf))
            n += len(buf)
            buf.clear()
    out.write("".join(buf))
    n += len(buf)
    out.flush()
    say(f"{n} match records for {len(policies)} policies on {on.isoformat()} in {time.monotonic() - t_match:.1f} s; "
        f"{len(rejected)} lines rejected")
    return 1 if rejected else 0
