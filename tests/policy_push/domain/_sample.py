"""First records of the bundled sample, as fresh dicts to modify in tests."""

import copy
import json
from functools import cache
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@cache
def _first(name: str) -> dict:
    with (SAMPLE / name).open(encoding="utf-8") as fh:
        return json.loads(fh.readline())


def policy() -> dict:
    return copy.deepcopy(_first("policies.jsonl"))


def enterprise() -> dict:
    return copy.deepcopy(_first("enterprises.jsonl"))


def resident() -> dict:
    return copy.deepcopy(_first("residents.jsonl"))
