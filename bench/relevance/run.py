"""Relevance benchmark: ``python -m bench.relevance [--data DIR] [--per-policy]``.

Ranks each labelled policy's pool of profiles by the engine and by two baselines in one run
(plain scikit-learn TF-IDF over jieba tokens, and BM25), and prints NDCG@10 and MAP per split
(dev: used to tune; test: held out).  The labelled set and its guide: tests/data/relevance/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matchers import MatchEngine, Ranking, Tokenizer

from ..matching.run import hierarchies
from .baselines import Bm25Baseline, TfidfBaseline
from .data import DEFAULT, ROOT, RelevanceSet, load
from .metrics import average_precision, ndcg_at

Scorer = Callable[[dict[str, Any], Sequence[str]], np.ndarray]


def engines(data: RelevanceSet, tokenizer: Tokenizer, **params: Any) -> dict[str, MatchEngine]:
    regions, industries = hierarchies()
    out = {}
    for audience, records in data.records.items():
        eng = MatchEngine(audience, regions, industries, tokenizer, **params).fit(records)
        eng.set_policies([p for p in data.policies.values() if p["audience"] == audience])
        out[audience] = eng
    return out


def engine_scorer(engs: dict[str, MatchEngine]) -> Scorer:
    return lambda policy, ids: engs[policy["audience"]].score_profiles(policy, ids)


def tfidf_scorer(data: RelevanceSet) -> Scorer:
    models = {a: TfidfBaseline(profs, [p for p in data.policies.values() if p["audience"] == a])
              for a, profs in data.profiles.items()}
    return lambda policy, ids: models[policy["audience"]].scores(policy, ids)


def bm25_scorer(data: RelevanceSet) -> Scorer:
    models = {a: Bm25Baseline(profs) for a, profs in data.profiles.items()}
    return lambda policy, ids: models[policy["audience"]].scores(policy, ids)


def evaluate(data: RelevanceSet, scorer: Scorer, policy_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per policy: {"ndcg": NDCG@10, "ap": average precision}."""
    out = {}
    for pid in policy_ids:
        pool = data.pools[pid]
        labels = np.asarray([r for _, r in pool], float)
        scores = np.asarray(scorer(data.policies[pid], [i for i, _ in pool]), float)
        out[pid] = {"ndcg": ndcg_at(labels, scores), "ap": average_precision(labels, scores)}
    return out


def summary(per: dict[str, dict[str, float]]) -> tuple[float, float]:
    nd = [v["ndcg"] for v in per.values()]
    ap = [v["ap"] for v in per.values() if not np.isnan(v["ap"])]
    return float(np.mean(nd)), float(np.mean(ap))


def feedback_effect(data: RelevanceSet, engs: dict[str, MatchEngine], split: str, click_rate: float,
                    seed: int = 7) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Simulated feedback, leave one policy out.  For each policy P of ``split``, every other
    labelled pair of P's audience is shown to its person, who clicks with probability
    ``click_rate``: relevance 2 -> 有用 (useful), 0 -> 不相关 (irrelevant), 1 -> nothing.  P's own
    labels are never used.  Returns (NDCG@10, MAP) without and with the feedback, and the
    number of clicks recorded on average."""
    rng = np.random.default_rng(seed)
    compiled = {pid: engs[p["audience"]].compile_policy(p) for pid, p in data.policies.items()}
    before, after, clicks = {}, {}, []
    scorer = engine_scorer(engs)
    for pid in data.policy_ids(split):
        eng = engs[data.policies[pid]["audience"]]
        before.update(evaluate(data, scorer, [pid]))
        n = 0
        for other, pool in data.pools.items():
            if other == pid or data.policies[other]["audience"] != eng.audience.value:
                continue
            for profile_id, rel in pool:
                if rel == 1 or rng.random() >= click_rate:
                    continue
                eng.record_feedback(profile_id, compiled[other], "useful" if rel == 2 else "irrelevant")
                n += 1
        after.update(evaluate(data, scorer, [pid]))
        clicks.append(n)
        for profile_id in {i for pool in data.pools.values() for i, _ in pool}:
            if profile_id in eng:
                eng.forget_feedback(profile_id)
    return summary(before), summary(after), int(np.mean(clicks)) if clicks else 0


def ablations() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Variants of the engine, one choice undone each: (tokenizer options, Ranking options)."""
    return {
        "the engine as shipped": ({}, {}),
        "tokens: no parts of compounds": ({"subwords": False}, {}),
        "tokens: single characters not joined": ({"join_singles": False}, {}),
        "tokens: neither (the first version's cut)": ({"subwords": False, "join_singles": False}, {}),
        "scope boilerplate kept": ({}, {"clean_scope": False}),
        "all fields weigh 1": ({}, {"profile_fields": {"business_scope": 1, "interests": 1, "tags": 1, "categories": 1}}),
        "declared categories ignored": ({}, {"profile_fields": {"business_scope": 1, "interests": 2, "tags": 2},
                                             "policy_fields": {"title": 1, "summary": 1, "text": 1}}),
        "policy side: idf among policies only": ({}, {"query_idf": "policies"}),
        "policy side: background idf only": ({}, {"query_idf": "background"}),
        "policy side: term counts only": ({}, {"query_idf": "none"}),
        "profile side: linear tf (no BM25 saturation)": ({}, {"k1": 1000.0, "b": 0.0}),
        "frequent terms skipped even in a small index": ({}, {"min_df_skip": 0}),
    }


def learned_combination(data: RelevanceSet, tok: Tokenizer, folds: int = 5) -> tuple[float, float, list[float]]:
    """A learned combination of per-field scores against the fixed field weights, on dev.

    Features of a pair: the engine's score with one profile field at a time (business scope,
    interests, tags, categories).  ``LogisticRegression`` (relevant = label >= 1) is fitted on
    the other folds, folds grouped by policy, and its decision function ranks the held-out
    policies.  Returns (learned NDCG@10, fixed-weights NDCG@10, coefficients fitted on all dev).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    fields = ("business_scope", "interests", "tags", "categories")
    per_field = [engine_scorer(engines(data, tok, ranking=Ranking(profile_fields={f: 1.0}))) for f in fields]
    shipped = engine_scorer(engines(data, tok))
    xs, ys, groups, fixed = [], [], [], []
    for pid in data.policy_ids("dev"):
        ids = [i for i, _ in data.pools[pid]]
        cols = [np.asarray(fn(data.policies[pid], ids), float) for fn in per_field]
        xs.append(np.stack(cols, axis=1))
        ys.append(np.asarray([r for _, r in data.pools[pid]], float))
        groups += [pid] * len(ids)
        fixed.append(np.asarray(shipped(data.policies[pid], ids), float))
    x, y, g = np.concatenate(xs), np.concatenate(ys), np.asarray(groups)
    f = np.concatenate(fixed)
    learned, base = [], []
    for train, held in GroupKFold(folds).split(x, y, g):
        model = LogisticRegression().fit(x[train], y[train] >= 1)
        for pid in dict.fromkeys(g[held]):
            at = np.flatnonzero(g == pid)
            learned.append(ndcg_at(y[at], model.decision_function(x[at])))
            base.append(ndcg_at(y[at], f[at]))
    coef = LogisticRegression().fit(x, y >= 1).coef_[0].tolist()
    return float(np.mean(learned)), float(np.mean(base)), coef


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.relevance")
    ap.add_argument("--data", type=Path, default=DEFAULT, help="a directory in the layout of tests/data/relevance")
    ap.add_argument("--per-policy", action="store_true", help="also print NDCG@10 per policy")
    ap.add_argument("--ablation", action="store_true", help="also print the engine with each choice undone")
    ap.add_argument("--learned", action="store_true", help="also compare a learned field combination on dev")
    args = ap.parse_args(argv)
    print(f"# {platform.platform()} | {os.cpu_count()} cpus | Python {sys.version.split()[0]} | {dt.date.today()}")
    data = load(args.data)
    splits = sorted({*data.split.values()}, key=lambda s: (s != "dev", s))
    n_pairs = sum(len(v) for v in data.pools.values())
    shown = args.data.resolve().relative_to(ROOT) if args.data.resolve().is_relative_to(ROOT) else args.data
    print(f"data: {shown} — {len(data.pools)} policies, {n_pairs} labelled pairs; "
          + ", ".join(f"{s}: {len(data.policy_ids(s))} policies" for s in splits))
    t = time.perf_counter()
    tok = Tokenizer()
    engs = engines(data, tok)
    methods: dict[str, Scorer] = {
        "engine (matchers.MatchEngine)": engine_scorer(engs),
        "TF-IDF (sklearn TfidfVectorizer, jieba)": tfidf_scorer(data),
        "BM25 (rank_bm25 BM25Okapi, jieba)": bm25_scorer(data),
    }
    print(f"built in {time.perf_counter() - t:.1f} s\n")
    results = {name: evaluate(data, fn, data.policy_ids()) for name, fn in methods.items()}
    head = "| method | " + " | ".join(f"{s} NDCG@10 | {s} MAP" for s in [*splits, "all"]) + " |"
    print(head)
    print("|---|" + "---:|" * (2 * (len(splits) + 1)))
    for name, per in results.items():
        cells = []
        for s in [*splits, "all"]:
            nd, mp = summary({p: v for p, v in per.items() if p in data.policy_ids(s)})
            cells += [f"{nd:.4f}", f"{mp:.4f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.ablation:
        print("\nAblation (engine with one choice undone; choices were made on dev):\n")
        print("| variant | " + " | ".join(f"{s} NDCG@10 | {s} MAP" for s in splits) + " |")
        print("|---|" + "---:|" * (2 * len(splits)))
        for name, (tok_opts, rank_opts) in ablations().items():
            variant = engine_scorer(engines(data, Tokenizer(**tok_opts) if tok_opts else tok, ranking=Ranking(**rank_opts)))
            per = evaluate(data, variant, data.policy_ids())
            cells = []
            for split in splits:
                nd, mp = summary({p: v for p, v in per.items() if p in data.policy_ids(split)})
                cells += [f"{nd:.4f}", f"{mp:.4f}"]
            print(f"| {name} | " + " | ".join(cells) + " |")
    if args.learned:
        learned, fixed, coef = learned_combination(data, tok)
        print("\nLearned combination (LogisticRegression on per-field scores, 5 folds by policy, dev):")
        print(f"  NDCG@10 learned {learned:.4f}, fixed field weights {fixed:.4f} on the same folds;"
              f" coefficients scope/interests/tags/categories {', '.join(f'{c:.2f}' for c in coef)}")
    print("\nFeedback (engine), simulated: leave one policy out; each other labelled pair of the audience")
    print("clicks with the rate shown: relevance 2 -> 有用, 0 -> 不相关, 1 -> no click.")
    print("\n| split | click rate | clicks per policy | NDCG@10 without | NDCG@10 with | MAP without | MAP with |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for split in splits:
        for rate in (0.2, 0.5):
            (nd0, mp0), (nd1, mp1), n = feedback_effect(data, engs, split, rate)
            print(f"| {split} | {rate:.1f} | {n} | {nd0:.4f} | {nd1:.4f} | {mp0:.4f} | {mp1:.4f} |")
    if args.per_policy:
        names = list(results)
        print("\n| policy | split | " + " | ".join(names) + " |")
        print("|---|---|" + "---:|" * len(names))
        for pid in data.policy_ids():
            print(f"| {pid} | {data.split[pid]} | " + " | ".join(f"{results[n][pid]['ndcg']:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
