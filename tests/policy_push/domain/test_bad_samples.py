"""Every bad sample record fails with the field cases.md names (the import and API tests add
line numbers and the "nothing stored" half)."""

import json
from pathlib import Path

import pytest

from policy_push.domain import parse_record
from policy_push.errors import RecordInvalid

BAD = Path(__file__).resolve().parents[2] / "data" / "sample" / "bad"

CASES = [
    ("02_unknown_criteria_field.jsonl", "policy", "criteria", "registered_capital_wan"),
    ("03_unknown_operator.jsonl", "policy", "criteria", "one_of"),
    ("04_wrong_value_type.jsonl", "policy", "criteria", "expected a number"),
    ("05_invalid_uscc_check_char.jsonl", "enterprise", "id", "check character"),
    ("06_invalid_id_check_digit.jsonl", "resident", "id_number", "check digit"),
    ("07_impossible_birth_date.jsonl", "resident", "id_number", "1997-02-30"),
    ("08_unknown_region_code.jsonl", "enterprise", "region", "211105"),
    ("09_unknown_industry_code.jsonl", "enterprise", "industry", "3519"),
    ("11_apply_until_before_apply_from.jsonl", "policy", "apply_until", "before apply_from"),
    ("12_phone_10_digits.jsonl", "resident", "contact.phone", "10 digits"),
    ("13_empty_title.jsonl", "policy", "title", "empty"),
    ("14_text_5mb.jsonl", "policy", "text", "limit"),
    ("15_criteria_nested_200.jsonl", "policy", "criteria", "deeper than 32"),
]


@pytest.mark.parametrize(("name", "kind", "field", "needle"), CASES)
def test_bad_record_names_field_and_reason(name: str, kind: str, field: str, needle: str) -> None:
    with (BAD / name).open(encoding="utf-8") as fh:
        record = json.loads(fh.readline())
    with pytest.raises(RecordInvalid) as exc:
        parse_record(kind, record)  # type: ignore[arg-type]
    fields = [e.field for e in exc.value.errors]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert any(needle in e.msg for e in exc.value.errors), exc.value.errors


def test_injection_strings_are_accepted_verbatim() -> None:
    with (BAD / "16_injection_strings.jsonl").open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    assert records
    for record in records:
        out = parse_record("policy", record).to_json()  # type: ignore[attr-defined]
        for key in ("title", "summary", "issuer", "doc_number", "text"):
            assert out[key] == record[key]
