"""A NUL or a lone surrogate in an imported line is that line's error, not a 500 (issue 10; PostgreSQL's text
and JSONB cannot hold a NUL, and a lone surrogate cannot be encoded: the whole batch's write failed)."""

from __future__ import annotations

import json

import pytest

from .conftest import AUTH, Client, sample_policy


@pytest.mark.parametrize("title", ["a\u0000b", "a\ud800b"], ids=["nul", "lone-surrogate"])
async def test_a_line_with_text_no_database_stores_is_rejected_by_line(client: Client, title: str) -> None:
    good, bad = sample_policy(id="imp-good"), sample_policy(id="imp-bad", title=title)
    body = "\n".join(json.dumps(r) for r in (good, bad)).encode() + b"\n"
    resp = await client.post("/api/v1/import/policies", data=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["line"] == 2 and report["errors"][0]["errors"][0]["loc"] == ["title"]
    assert (await client.get("/api/v1/policies/imp-good")).status == 200


async def test_a_json_body_with_a_nul_is_422(client: Client) -> None:
    resp = await client.post("/api/v1/policies", json=sample_policy(title="a\u0000b"), headers=AUTH)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["loc"] == ["body", "title"]


async def test_a_surrogate_written_as_raw_utf8_bytes_is_rejected_by_line(client: Client) -> None:
    # json.loads lets the UTF-8 bytes of a surrogate through as one (surrogatepass): the import's fast
    # path skips the text walk only for lines with no \u escape and no 0xED byte, so this one is walked
    good = sample_policy(id="imp-good", title="正常")
    bad = json.dumps(sample_policy(id="imp-bad", title="PLACEHOLDER"), ensure_ascii=False).encode()
    body = json.dumps(good, ensure_ascii=False).encode() + b"\n" + bad.replace(b"PLACEHOLDER", b"a\xed\xa0\x80b") + b"\n"
    resp = await client.post("/api/v1/import/policies", data=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert (report["created"], report["rejected"]) == (1, 1), report
    assert report["errors"][0]["line"] == 2 and report["errors"][0]["errors"][0]["loc"] == ["title"]
