"""Bulk JSONL import over HTTP: streamed, reported by line, idempotent."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import AUTH, SAMPLE, Client, snapshot

NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}


@pytest.mark.parametrize(
    ("collection", "file", "count"),
    [("policies", "policies.jsonl", 24), ("enterprises", "enterprises.jsonl", 400), ("residents", "residents.jsonl", 600)],
)
async def test_sample_file_imports_and_reimport_changes_nothing(client: Client, engine, collection: str, file: str, count: int) -> None:
    async def chunks():  # a streamed (chunked) upload, as a script sending a big file would
        data = (SAMPLE / file).read_bytes()
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    resp = await client.post(f"/api/v1/import/{collection}", data=chunks(), headers=NDJSON)
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report == {
        "kind": report["kind"],
        "total": count,
        "created": count,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "phone_source": None,
        "errors": [],
    }
    listed = await (await client.get(f"/api/v1/{collection}", params={"limit": 1}, headers=AUTH)).json()
    assert listed["total"] == count

    # what the first import set going in the background (on PostgreSQL a change notification wakes the
    # feed follower, which may draft) settles first: the re-import must change nothing after that
    before = await snapshot(engine)
    for _ in range(50):
        await asyncio.sleep(0.1)
        settled, before = before, await snapshot(engine)
        if settled == before:
            break
    resp = await client.post(f"/api/v1/import/{collection}", data=(SAMPLE / file).read_bytes(), headers=NDJSON)
    report = await resp.json()
    assert (report["unchanged"], report["created"], report["updated"]) == (count, 0, 0)
    after = await snapshot(engine)
    assert {t: r for t, r in after.items() if t != "audit_log"} == {t: r for t, r in before.items() if t != "audit_log"}


async def test_blank_lines_keep_line_numbers(client: Client) -> None:
    lines = (SAMPLE / "residents.jsonl").read_bytes().splitlines()[:2]
    body = lines[0] + b"\n\n\r\n" + b'{"id": "r-x", "name": ""}\n' + lines[1] + b"\n"
    report = await (await client.post("/api/v1/import/residents", data=body, headers=NDJSON)).json()
    assert report["total"] == 3
    assert report["created"] == 2
    assert [e["line"] for e in report["errors"]] == [4]
    assert report["errors"][0]["errors"][0]["field"] == "name"


async def test_unknown_kind_is_404(client: Client) -> None:
    resp = await client.post("/api/v1/import/pets", data=b"{}\n", headers=NDJSON)
    assert resp.status == 404
    assert (await resp.json())["errors"][0]["loc"] == ["path", "kind"]


async def test_wrong_content_type_is_415(client: Client) -> None:
    resp = await client.post("/api/v1/import/policies", data=b"<x/>", headers={**AUTH, "Content-Type": "application/xml"})
    assert resp.status == 415


async def test_import_is_not_bounded_by_the_body_limit(make_client) -> None:
    client = await make_client(max_body_bytes=4096)
    data = (SAMPLE / "enterprises.jsonl").read_bytes()
    assert len(data) > 4096
    report = await (await client.post("/api/v1/import/enterprises", data=data, headers=NDJSON)).json()
    assert report["created"] == 400


async def test_empty_import_reports_nothing(client: Client) -> None:
    report = await (await client.post("/api/v1/import/policies", data=b"", headers=NDJSON)).json()
    assert report["total"] == 0 and report["errors"] == []
