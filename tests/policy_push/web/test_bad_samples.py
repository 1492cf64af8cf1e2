"""Every case of ``tests/data/sample/bad`` (see its cases.md) through the API: the named error,
and the database exactly as it was.  Case 16 (injection strings) is stored and returned as given."""

from __future__ import annotations

import io
import json

import pytest

from .conftest import AUTH, BAD, Client, sample_records, snapshot

#: file -> (collection, field the error must name, words the message must contain)
SINGLE_RECORD_CASES = {
    "02_unknown_criteria_field.jsonl": ("policies", "criteria", "registered_capital_wan"),
    "03_unknown_operator.jsonl": ("policies", "criteria", "one_of"),
    "04_wrong_value_type.jsonl": ("policies", "criteria", "number"),
    "05_invalid_uscc_check_char.jsonl": ("enterprises", "id", "check character"),
    "06_invalid_id_check_digit.jsonl": ("residents", "id_number", "check digit"),
    "07_impossible_birth_date.jsonl": ("residents", "id_number", "1997-02-30"),
    "08_unknown_region_code.jsonl": ("enterprises", "region", "211105"),
    "09_unknown_industry_code.jsonl": ("enterprises", "industry", "3519"),
    "11_apply_until_before_apply_from.jsonl": ("policies", "apply_until", "before"),
    "12_phone_10_digits.jsonl": ("residents", "contact.phone", "10 digits"),
    "13_empty_title.jsonl": ("policies", "title", "empty"),
    "15_criteria_nested_200.jsonl": ("policies", "criteria", "32"),
}

IMPORT_CASES = {
    # file -> (kind, bad line, field, words)
    **{name: (c, 1, f, w) for name, (c, f, w) in SINGLE_RECORD_CASES.items()},
    "01_malformed_json.jsonl": ("enterprises", 2, "(line)", "invalid JSON"),
    "10_duplicate_id.jsonl": ("enterprises", 2, "id", "duplicate"),
    "14_text_5mb.jsonl": ("policies", 1, "(record)", "too large"),
}


@pytest.fixture
async def seeded(client: Client) -> Client:
    """Some stored data for a rejected record to leave alone, including the ids the bad files reuse."""
    for collection, name in (("policies", "policies.jsonl"), ("enterprises", "enterprises.jsonl"), ("residents", "residents.jsonl")):
        for record in sample_records(name, 3):
            assert (await client.post(f"/api/v1/{collection}", json=record, headers=AUTH)).status == 201
    return client


def _field_named(errors: list[dict], field: str) -> dict:
    for error in errors:
        if error["field"] == field or error["field"].startswith(field + "."):
            return error
    raise AssertionError(f"no error names {field!r}: {errors}")


@pytest.mark.parametrize("name", sorted(SINGLE_RECORD_CASES))
async def test_bad_record_is_422_naming_the_field(seeded: Client, engine, name: str) -> None:
    collection, field, words = SINGLE_RECORD_CASES[name]
    data = (BAD / name).read_bytes().splitlines()[0]
    before = await snapshot(engine)
    resp = await seeded.post(f"/api/v1/{collection}", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    error = _field_named(body["errors"], field)
    assert words in error["msg"], error
    assert error["record"] == json.loads(data)["id"]
    # PUT takes the same path through validation
    record_id = json.loads(data)["id"]
    resp = await seeded.put(f"/api/v1/{collection}/{record_id}", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422
    assert await snapshot(engine) == before


@pytest.mark.parametrize("name", sorted(IMPORT_CASES))
async def test_bad_line_is_reported_by_the_import(seeded: Client, engine, name: str) -> None:
    collection, line_no, field, words = IMPORT_CASES[name]
    path = BAD / name
    before = await snapshot(engine)
    with path.open("rb") as fh:
        resp = await seeded.post(
            f"/api/v1/import/{collection}", data=fh, headers={**AUTH, "Content-Type": "application/x-ndjson"}
        )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["rejected"] == 1, report
    (rejected,) = report["errors"]
    assert rejected["line"] == line_no
    error = _field_named(rejected["errors"], field)
    assert words in error["msg"], error
    lines = path.read_bytes().splitlines()
    if len(lines) == 1:
        assert await snapshot(engine) == before
    else:  # the good lines of 01 and 10 are stored; the bad one is not
        assert report["total"] == len(lines)
        assert report["created"] + report["updated"] + report["unchanged"] == len(lines) - 1


async def test_malformed_line_through_the_record_api(seeded: Client, engine) -> None:
    line = (BAD / "01_malformed_json.jsonl").read_bytes().splitlines()[1]
    before = await snapshot(engine)
    resp = await seeded.post("/api/v1/enterprises", data=line, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["body"] and error["line"] == 1
    assert await snapshot(engine) == before


async def test_good_lines_around_a_malformed_one_are_stored(seeded: Client) -> None:
    lines = (BAD / "01_malformed_json.jsonl").read_bytes().splitlines()
    await seeded.post("/api/v1/import/enterprises", data=b"\n".join(lines), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    for number in (0, 2):
        record = json.loads(lines[number])
        resp = await seeded.get(f"/api/v1/enterprises/{record['id']}", headers=AUTH)
        assert resp.status == 200
        assert (await resp.json())["enterprise"]["name"] == record["name"]


async def test_duplicate_id_keeps_the_first_line(seeded: Client) -> None:
    lines = (BAD / "10_duplicate_id.jsonl").read_bytes().splitlines()
    await seeded.post("/api/v1/import/enterprises", data=b"\n".join(lines), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    first, second = (json.loads(line) for line in lines)
    stored = await (await seeded.get(f"/api/v1/enterprises/{first['id']}", headers=AUTH)).json()
    assert stored["enterprise"]["name"] == first["name"] != second["name"]
    # the record API refuses the second create as a conflict
    resp = await seeded.post("/api/v1/enterprises", data=lines[1], headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 409


async def test_5mb_text_is_refused_without_reading_it_all(seeded: Client, engine) -> None:
    before = await snapshot(engine)
    data = io.BytesIO((BAD / "14_text_5mb.jsonl").read_bytes())
    resp = await seeded.post("/api/v1/policies", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["errors"][0]["loc"] == ["body"]
    assert await snapshot(engine) == before


async def test_5mb_text_under_a_larger_body_limit_is_a_field_error(make_client, engine) -> None:
    client = await make_client(max_body_bytes=8 * 1024 * 1024)
    before = await snapshot(engine)
    data = io.BytesIO((BAD / "14_text_5mb.jsonl").read_bytes())
    resp = await client.post("/api/v1/policies", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422
    error = _field_named((await resp.json())["errors"], "text")
    assert "limit" in error["msg"]
    assert await snapshot(engine) == before


async def test_injection_strings_are_stored_and_returned_unchanged(seeded: Client, engine) -> None:
    data = (BAD / "16_injection_strings.jsonl").read_bytes().splitlines()[0]
    record = json.loads(data)
    before = await snapshot(engine)
    resp = await seeded.post("/api/v1/policies", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    body = await (await seeded.get(f"/api/v1/policies/{record['id']}")).json()
    for field in ("title", "summary", "issuer", "doc_number", "text"):
        assert body["policy"][field] == record[field]
    listed = await (await seeded.get("/api/v1/policies", params={"limit": 500})).json()
    assert any(i["policy"]["title"] == record["title"] for i in listed["items"])
    after = await snapshot(engine)
    # only the new policy was added; every other table row is as it was (the change counter and the audit
    # log's anchor are single rows that move on with every write)
    for table, rows in before.items():
        assert table in ("change_counter", "audit_head") or set(rows) <= set(after[table]), table
    assert len(after["policies"]) == len(before["policies"]) + 1
