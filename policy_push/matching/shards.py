"""A policy's match list over region shards: which shards hold its regions, each shard's part of the
answer, and the merge that gives the answer one index of every profile gives.

A shard's part (``part_of``) is its eligible and may-qualify lists, each cut at ``top_k`` and carrying
every record's exact score beside the shown one, its counts and its score histogram. The merge
(``merge``) orders the union as one node does (best exact score first, ties by profile id: the order
of a node's rows after a build, which reads profiles by id), cuts it at ``top_k`` and adds up counts
and histograms. Text weights are the whole corpus's on every shard (``MatchService``), so a
profile's score does not depend on which shard holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from matchers import MatchRecord, PolicyMatches
from policy_push.domain import Policy
from policy_push.refdata import ReferenceData
from policy_push.storage.shards import ShardMap

from .results import HISTOGRAM_BINS, PolicyMatchResult, score_histogram

__all__ = ["merge", "part_of", "policy_regions", "shards_for"]

# criteria ops on the region field that name the regions a policy can reach
_REGION_OPS = ("eq", "in", "within", "prefix")


def part_of(shard: str, full: PolicyMatches, *, top_k: int | None, min_score: float | None) -> dict[str, Any]:
    """One shard's part of a policy's answer (JSON-able), from its uncut engine answer."""
    # cut in one node's order (best exact score, ties by profile id), not the engine's: rows written or
    # handed over since the build come last among equal scores (sorted input costs timsort one pass)
    eligible: list[MatchRecord] = sorted(full.eligible, key=_one_node_order)
    if min_score:
        eligible = [r for r in eligible if round(r.score, 4) >= min_score]  # as PolicyMatchResult cuts
    unknown: list[MatchRecord] = sorted(full.unknown, key=_one_node_order)
    total = len(eligible)
    if top_k is not None:
        eligible, unknown = eligible[:top_k], unknown[:top_k]
    return {
        "shard": shard,
        "eligible": [_row(r, r.message_reason()) for r in eligible],
        "unknown": [_row(r, None) for r in unknown],  # a may-qualify line is never put in a message
        "counts": {"eligible": full.n_eligible, "unknown": full.n_unknown,
                   "profiles": full.n_eligible + full.n_unknown + full.n_ineligible},
        "histogram": [b["count"] for b in score_histogram(r.score for r in full.eligible)],
        "no_criteria": not full.has_criteria,
        "eligible_total": total,
    }  # fmt: skip


def _one_node_order(r: MatchRecord) -> tuple[float, str]:
    return (-float(r.score), r.profile_id)


def _row(r: MatchRecord, message: str | None) -> list[Any]:
    # [exact score, the record, the line a message may quote, the lines a public page may show]
    return [float(r.score), r.to_dict(), message, list(r.public_reasons)]


def _ranked(rows: Iterable[list[Any]], top_k: int | None) -> list[list[Any]]:
    ordered = sorted(rows, key=lambda row: (-row[0], row[1]["profile_id"]))
    return ordered if top_k is None else ordered[:top_k]


def merge(policy_id: str, parts: list[dict[str, Any]], *, top_k: int | None, profiles: int | None = None) -> PolicyMatchResult:
    """The answer of one node over every profile, from the parts of the shards that hold the policy's
    regions; ``profiles`` is the audience's size when shards were skipped (their profiles are all
    outside the policy's regions, so ineligible)."""
    counts = {k: sum(int(p["counts"][k]) for p in parts) for k in ("eligible", "unknown", "profiles")}
    if profiles is not None:
        counts["profiles"] = profiles
    bins = [sum(int(p["histogram"][i]) for p in parts) for i in range(HISTOGRAM_BINS)]
    eligible = _ranked((r for p in parts for r in p["eligible"]), top_k)
    unknown = _ranked((r for p in parts for r in p["unknown"]), top_k)
    return PolicyMatchResult(
        policy_id=policy_id,
        eligible=[row[1] for row in eligible],
        unknown=[row[1] for row in unknown],
        counts=counts,
        histogram=[{"from": round(i / HISTOGRAM_BINS, 4), "to": round((i + 1) / HISTOGRAM_BINS, 4), "count": c}
                   for i, c in enumerate(bins)],
        no_criteria=all(bool(p["no_criteria"]) for p in parts),
        eligible_total=sum(int(p["eligible_total"]) for p in parts),
        message_lines={row[1]["profile_id"]: (row[2], list(row[3])) for row in (*unknown, *eligible)},
    )  # fmt: skip


def _codes(ref: ReferenceData) -> tuple[str, ...]:
    return tuple(ref.regions.names)


def _leaf_codes(leaf: Mapping[str, Any], ref: ReferenceData) -> set[str] | None:
    op, value = leaf.get("op"), leaf.get("value")
    values = [value] if isinstance(value, str) else [str(v) for v in value or ()]
    if op in ("eq", "in"):
        return set(values)
    if op == "within":
        return {c for c in _codes(ref) if any(ref.regions.is_within(c, v) for v in values)}
    if op == "prefix":
        return {c for c in _codes(ref) if any(c.startswith(v) for v in values)}
    return None


def policy_regions(policy: Policy, ref: ReferenceData) -> set[str] | None:
    """The region codes a profile must have to be eligible (the region criteria the policy's
    criteria require at the top, intersected), or None when they do not restrict the region."""
    criteria = policy.to_json().get("criteria") or {}
    leaves = criteria.get("all", [criteria]) if isinstance(criteria, Mapping) else []
    allowed: set[str] | None = None
    for leaf in leaves:
        if isinstance(leaf, Mapping) and leaf.get("field") == "region" and leaf.get("op") in _REGION_OPS:
            codes = _leaf_codes(leaf, ref)
            if codes is not None:
                allowed = codes if allowed is None else allowed & codes
    return allowed


def shards_for(policy: Policy, shards: ShardMap, ref: ReferenceData) -> list[str]:
    """The shards a policy is evaluated on: those holding its regions (and profiles without one), or all."""
    regions = policy_regions(policy, ref)
    return [s.name for s in shards.shards] if regions is None else shards.holders(regions)
