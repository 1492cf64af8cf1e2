"""Extraction benchmark: suggestions from policy texts against hand-written gold.

    python -m bench.extraction                 # development and held-out sets, both methods
    python -m bench.extraction --details dev   # per-policy differences for one split
    python -m bench.extraction --noise 0.05 0.15

Prints, per split, precision / recall / F1 of criteria conditions (compared leaf by leaf after
the canonical rewriting described in ``bench/extraction/scoring.py``) and of their atoms, per
criteria field, and the accuracy of audience, issuer, document number, apply window, regions
and benefit, for the suggester and the keyword baseline in the same run.  With ``--noise`` the
texts are also damaged (a share of their characters deleted at random, seeded) and the
suggester is scored again, with the precision of its confident (≥ 0.8) conditions.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from policy_push.intake import suggest_policy
from policy_push.refdata import load_reference_data

from .baseline import baseline_record
from .scoring import Score, atoms, canonical_conditions

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent / "policy_push" / "sample" / "policies.jsonl"
INPUT_FIELDS = ("id", "title", "text", "url", "published_on")
ACCURACY_FIELDS = ("audience", "issuer", "doc_number", "apply_from", "apply_until", "regions", "benefit_max_yuan")
#: accuracy counted only over policies whose text (or title) states the value
STATED_FIELDS = ("issuer", "doc_number")


def load_split(name: str) -> list[dict[str, Any]]:
    if name == "sample":
        return [{"policy": json.loads(line), "context_city": "211100", "unexpressible": []}
                for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    path = HERE / "data" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def splits() -> dict[str, list[dict[str, Any]]]:
    return {"dev": load_split("sample") + load_split("dev"), "heldout": load_split("heldout")}


def damage(text: str, rate: float, seed: int) -> str:
    """``text`` with a share ``rate`` of its non-newline characters deleted."""
    rng = random.Random(seed)
    return "".join(c for c in text if c == "\n" or rng.random() >= rate)


def _regions(tree: dict[str, Any] | None, audience: str) -> frozenset[tuple[str, frozenset[str]]]:
    return frozenset(
        (f, v) for f, op, v in canonical_conditions(tree, audience) if f in ("region", "hukou_region") and op == "within"
    )


def _norm_doc(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    for a, b in (("[", "〔"), ("]", "〕"), ("(", "〔"), (")", "〕"), ("（", "〔"), ("）", "〕")):
        v = v.replace(a, b)
    return v


def _stated(fld: str, gold: dict[str, Any]) -> bool:
    value = gold.get(fld)
    if not isinstance(value, str):
        return False
    where = _norm_doc(gold.get("title", "") + "\n" + gold.get("text", ""))
    return _norm_doc(value) in where


def _same(fld: str, predicted: dict[str, Any], gold: dict[str, Any], audience: str) -> bool:
    if fld == "regions":
        return _regions(predicted.get("criteria"), audience) == _regions(gold.get("criteria"), gold["audience"])
    p, g = predicted.get(fld), gold.get(fld)
    if fld == "benefit_max_yuan":
        return (p is None and g is None) or (p is not None and g is not None and abs(float(p) - float(g)) < 0.5)
    if fld == "doc_number":
        return _norm_doc(p) == _norm_doc(g)
    return p == g


class Tally:
    def __init__(self) -> None:
        self.conditions = Score()
        self.atoms = Score()
        self.by_field: dict[str, Score] = defaultdict(Score)
        self.correct: dict[str, int] = defaultdict(int)
        self.stated: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.n = 0
        self.confident = Score()
        self.seconds = 0.0

    def add(self, predicted: dict[str, Any], gold: dict[str, Any], confident: list[Any] | None = None) -> list[str]:
        self.n += 1
        audience = predicted.get("audience") or gold["audience"]
        pc = canonical_conditions(predicted.get("criteria"), audience)
        gc = canonical_conditions(gold.get("criteria"), gold["audience"])
        self.conditions.add(pc, gc)
        self.atoms.add(atoms(pc), atoms(gc))
        for fld in {c[0] for c in pc + gc}:
            self.by_field[fld].add([c for c in pc if c[0] == fld], [c for c in gc if c[0] == fld])
        if confident is not None:
            self.confident.add(confident, gc)
        misses = []
        for fld in ACCURACY_FIELDS:
            ok = _same(fld, predicted, gold, audience)
            self.correct[fld] += ok
            if not ok:
                misses.append(fld)
        for fld in STATED_FIELDS:
            if _stated(fld, gold):
                self.stated[fld][0] += _same(fld, predicted, gold, audience)
                self.stated[fld][1] += 1
        return misses


def _suggest(entry: dict[str, Any], ref: Any, text: str | None = None) -> tuple[dict[str, Any], list[Any]]:
    policy = entry["policy"]
    record = {k: policy[k] for k in INPUT_FIELDS if policy.get(k) is not None}
    if text is not None:
        record["text"] = text
    result = suggest_policy(record, ref=ref, city=entry.get("context_city", "211100"))
    audience = result.record["audience"]
    confident_tree = [s.value for s in result.suggestions if s.field == "criteria" and s.applied and s.confidence >= 0.8]
    confident = canonical_conditions({"all": confident_tree}, audience) if confident_tree else []
    return result.record, confident


def run(names: list[str], noise: list[float], details: str | None) -> None:
    ref = load_reference_data()
    data = splits()
    print(f"# extraction benchmark — {time.strftime('%Y-%m-%d')} — {platform.machine()} {platform.python_version()}")
    for name in names:
        entries = data[name]
        ours, base = Tally(), Tally()
        for entry in entries:
            gold = entry["policy"]
            started = time.perf_counter()
            predicted, _ = _suggest(entry, ref)
            ours.seconds += time.perf_counter() - started
            misses = ours.add(predicted, gold)
            record = {k: gold[k] for k in INPUT_FIELDS if gold.get(k) is not None}
            base.add(baseline_record(record, entry.get("context_city", "211100"), ref), gold)
            if details == name:
                _print_details(predicted, gold, misses)
        print(f"\n## {name}: {len(entries)} policies\n")
        print("| method | conditions P | R | F1 | atoms P | R | F1 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, t in (("suggester", ours), ("keyword baseline", base)):
            c, a = t.conditions, t.atoms
            print(f"| {label} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {a.precision:.3f} | {a.recall:.3f} | {a.f1:.3f} |")
        print(f"\n(conditions: suggester {ours.conditions.tp} right, {ours.conditions.fp} wrong, {ours.conditions.fn} missed; "
              f"{ours.seconds / len(entries) * 1000:.1f} ms per policy)\n")
        print("| criteria field | suggester P | R | F1 | baseline F1 |")
        print("|---|---:|---:|---:|---:|")
        for fld in sorted(set(ours.by_field) | set(base.by_field)):
            o, b = ours.by_field[fld], base.by_field[fld]
            print(f"| {fld} | {o.precision:.2f} | {o.recall:.2f} | {o.f1:.2f} | {b.f1:.2f} |")
        print("\n| field accuracy | suggester | keyword baseline |")
        print("|---|---:|---:|")
        for fld in ACCURACY_FIELDS:
            print(f"| {fld} | {ours.correct[fld] / ours.n:.2f} | {base.correct[fld] / base.n:.2f} |")
        for fld in STATED_FIELDS:
            right, n = ours.stated[fld]
            b_right = base.stated[fld][0]
            if n:
                print(f"| {fld}, where the text states it ({n}) | {right / n:.2f} | {b_right / n:.2f} |")
        for rate in noise:
            noisy = Tally()
            for i, entry in enumerate(entries):
                text = damage(entry["policy"]["text"], rate, seed=1000 + i)
                predicted, confident = _suggest(entry, ref, text)
                noisy.add(predicted, entry["policy"], confident)
            c, h = noisy.conditions, noisy.confident
            print(f"\nnoise {rate:.0%} deleted characters: conditions P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f} "
                  f"({c.tp + c.fp} suggested); confident (≥0.8) conditions: {h.tp + h.fp} suggested, "
                  f"precision {h.precision:.3f}")


def _print_details(predicted: dict[str, Any], gold: dict[str, Any], misses: list[str]) -> None:
    audience = predicted.get("audience") or gold["audience"]
    pc = canonical_conditions(predicted.get("criteria"), audience)
    gc = canonical_conditions(gold.get("criteria"), gold["audience"])
    extra = [c for c in pc if c not in gc]
    missing = [c for c in gc if c not in pc]
    if not extra and not missing and not misses:
        return
    print(f"--- {gold['id']} {gold['title'][:30]}")
    for c in extra:
        print("   + ", c)
    for c in missing:
        print("   - ", c)
    for fld in misses:
        if fld == "regions":
            continue
        print(f"   {fld}: got {predicted.get(fld)!r} want {gold.get(fld)!r}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.extraction", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", nargs="*", metavar="SPLIT", help="dev, heldout (default: both)")
    parser.add_argument("--noise", nargs="*", type=float, default=[0.05, 0.15], metavar="RATE")
    parser.add_argument("--details", choices=["dev", "heldout"], help="print each policy's differences for this split")
    args = parser.parse_args()
    names = args.splits or ["dev", "heldout"]
    unknown = sorted(set(names) - {"dev", "heldout"})
    if unknown:
        parser.error(f"unknown split {', '.join(unknown)}; choose dev or heldout")
    run(names, args.noise, args.details)


if __name__ == "__main__":
    main()
