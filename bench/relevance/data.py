"""The labelled relevance set (``tests/data/relevance`` or any directory in its layout), loaded
as the service would hand it to the engine."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_push.domain import matcher_record, parse_enterprise, parse_resident

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "tests" / "data" / "relevance"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass
class RelevanceSet:
    policies: dict[str, dict[str, Any]]
    #: audience -> raw profile dicts (formats.md) and the engine records made from them
    profiles: dict[str, list[dict[str, Any]]]
    records: dict[str, list[dict[str, Any]]]
    #: policy id -> [(profile id, relevance)], in file order
    pools: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)

    def policy_ids(self, split: str | None = None) -> list[str]:
        return [p for p in self.pools if split in (None, "all") or self.split[p] == split]


def engine_record(raw: dict[str, Any], parse: Any) -> dict[str, Any]:
    """The record the service hands the engine, with the declared policy categories the engine
    weighs as a text field (the service passes them from the wiring of issue 13 on)."""
    return {**matcher_record(parse(raw)), "categories": list(raw.get("categories") or [])}


def load(directory: Path = DEFAULT) -> RelevanceSet:
    ents = _jsonl(directory / "enterprises.jsonl")
    ress = _jsonl(directory / "residents.jsonl")
    out = RelevanceSet(
        policies={p["id"]: p for p in _jsonl(directory / "policies.jsonl")},
        profiles={"enterprise": ents, "resident": ress},
        records={"enterprise": [engine_record(r, parse_enterprise) for r in ents],
                 "resident": [engine_record(r, parse_resident) for r in ress]},
    )
    pools: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in _jsonl(directory / "labels.jsonl"):
        pools[row["policy_id"]].append((row["profile_id"], int(row["relevance"])))
        out.split[row["policy_id"]] = row.get("split", "dev")
    out.pools = dict(pools)
    return out
