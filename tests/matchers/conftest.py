"""Fixtures for the matching engine: reference hierarchies, one tokenizer, the sample data."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from matchers import Hierarchy, MatchEngine, Tokenizer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample"
REFDATA = ROOT / "policy_push" / "refdata" / "data"
EVAL_DAY = dt.date(2026, 11, 26)


def read_csv_rows(name: str) -> list[dict[str, str]]:
    with open(REFDATA / name, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_jsonl(name: str) -> list[dict[str, Any]]:
    with open(SAMPLE / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def regions() -> Hierarchy:
    return Hierarchy.from_pairs((r["code"], r["parent_code"], r["name"]) for r in read_csv_rows("regions.csv"))


@pytest.fixture(scope="session")
def industries() -> Hierarchy:
    return Hierarchy.from_pairs((r["code"], r["parent"], r["name"]) for r in read_csv_rows("industries.csv"))


class _Quiet(dict):
    """A dict with a short repr: hypothesis prints fixtures of failing examples."""

    def __repr__(self) -> str:
        return f"<{len(self)} entries>"


@pytest.fixture(scope="session")
def parents() -> dict[str, dict[str, str]]:
    """Plain parent maps for the reference evaluator (independent of ``Hierarchy``)."""
    return _Quiet({
        "region": {r["code"]: r["parent_code"] for r in read_csv_rows("regions.csv")},
        "industry": {r["code"]: r["parent"] for r in read_csv_rows("industries.csv")},
    })


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="session")
def sample_records() -> dict[str, list[dict[str, Any]]]:
    """Sample profiles as the app hands them over (``policy_push.domain.matcher_record``)."""
    from policy_push.domain import matcher_record, parse_enterprise, parse_resident

    return {
        "enterprise": [matcher_record(parse_enterprise(r)) for r in read_jsonl("enterprises.jsonl")],
        "resident": [matcher_record(parse_resident(r)) for r in read_jsonl("residents.jsonl")],
    }


@pytest.fixture(scope="session")
def sample_policies() -> list[dict[str, Any]]:
    return read_jsonl("policies.jsonl")


@pytest.fixture(scope="session")
def sample_engines(regions, industries, tokenizer, sample_records, sample_policies) -> dict[str, MatchEngine]:
    out = {}
    for aud, recs in sample_records.items():
        eng = MatchEngine(aud, regions, industries, tokenizer).fit(recs)
        eng.set_policies(p for p in sample_policies if p["audience"] == aud)
        out[aud] = eng
    return out
