"""``policy-push suggest``: suggested fields and criteria for policy records, from their text.

Reads policy records (JSON lines; ``title`` required, ``text`` read, ``criteria`` ignored) and
prints, for each, one JSON line: the record with the suggested fields filled in (fields it
already holds are kept) and a ``suggestions`` list — field, proposed value, the sentence it came
from, its character span in ``text`` and a confidence.  Conditions the criteria language cannot
hold are listed as ``unsupported``.  Nothing is stored.  Bad lines go to standard error with their
line numbers; the exit status is then 1.

Example::

  policy-push sample --out sample
  policy-push suggest --policies sample/policies.jsonl > suggested.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from policy_push.errors import RecordInvalid
from policy_push.refdata import load_reference_data
from policy_push.runtime import validation_context

from .arguments import fraction
from .help import add_documented


def _region(raw: str) -> str:
    if not raw.isdigit() or len(raw) not in (6, 9):
        raise argparse.ArgumentTypeError(f"a region code has 6 or 9 digits, got {raw!r}")
    return raw


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(
        sub, "suggest", "suggest fields and criteria of policy records from their text (JSON lines to stdout)", __doc__
    )
    p.add_argument("--policies", type=Path, required=True, metavar="IN.jsonl", help="policy records, one a line")
    p.add_argument("--city", type=_region, metavar="CODE",
                   help="region code the texts are read in (default: POLICY_PUSH_INTAKE_CITY, Panjin 211100)")
    p.add_argument("--min-confidence", type=fraction, metavar="C",
                   help="fill in suggestions at or above C (default: POLICY_PUSH_INTAKE_MIN_CONFIDENCE)")
    p.set_defaults(handler=_suggest)


def _suggest(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from
    from policy_push.intake import suggest_policy

    if not args.policies.is_file():
        print(f"policy-push suggest: no such file {args.policies}", file=sys.stderr)
        return 2
    settings = settings_from(args)
    ref = load_reference_data(settings.regions_csv, settings.industries_csv)
    ctx = validation_context(settings, ref)
    city = args.city or settings.intake_city
    if city not in ref.regions:
        print(f"policy-push suggest: {city} is not in the regions table; give --city a known region code", file=sys.stderr)
        return 2
    minimum = settings.intake_min_confidence if args.min_confidence is None else args.min_confidence
    bad = 0
    out = sys.stdout
    with args.policies.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            problem = None
            try:
                data: Any = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                data, problem = None, f"invalid JSON: {exc}"
            if problem is None and not isinstance(data, dict):
                problem = f"expected a JSON object, got {type(data).__name__}"
            elif problem is None and (not isinstance(data.get("title"), str) or not data["title"].strip()):
                problem = "title: a policy record needs a title (a non-empty string)"
            elif problem is None and not isinstance(data.get("text", ""), str):
                problem = "text: must be a string"
            if problem is None:
                try:
                    result = suggest_policy(data, ref=ref, city=city, min_confidence=minimum, ctx=ctx)
                except RecordInvalid as exc:
                    problem = "; ".join(f"{e.field}: {e.msg}" for e in exc.errors)
                else:
                    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
                    continue
            bad += 1
            who = f" ({data['id'][:64]})" if isinstance(data, dict) and isinstance(data.get("id"), str) else ""
            print(f"{args.policies}:{line_no}{who}: {problem}", file=sys.stderr)
    out.flush()
    return 1 if bad else 0
