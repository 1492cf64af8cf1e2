"""Enterprise and resident profiles: every route, PII whole for one record, masked in lists."""

from __future__ import annotations

import pytest

from policy_push.domain.profiles import EMPLOYEES_MAX

from .conftest import AUTH, Client, sample_enterprise, sample_records, sample_resident

KINDS = [
    pytest.param("enterprises", "enterprise", sample_enterprise, id="enterprise"),
    pytest.param("residents", "resident", sample_resident, id="resident"),
]


@pytest.mark.parametrize(("collection", "kind", "make"), KINDS)
async def test_profile_lifecycle(client: Client, collection: str, kind: str, make) -> None:
    record = make()
    url = f"/api/v1/{collection}/{record['id']}"

    resp = await client.post(f"/api/v1/{collection}", json=record, headers=AUTH)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == url
    assert (await resp.json())["outcome"] == "created"

    resp = await client.get(url, headers=AUTH)
    assert resp.status == 200
    got = (await resp.json())[kind]
    assert got["contact"] == record["contact"]  # whole, not masked, for one record
    assert got["name"] == record["name"]
    if kind == "resident":
        assert got["id_number"] == record["id_number"]

    resp = await client.post(f"/api/v1/{collection}", json=record, headers=AUTH)
    assert resp.status == 409
    assert (await resp.json())["errors"][0]["loc"] == ["body", "id"]

    resp = await client.put(url, json=record, headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["outcome"] == "unchanged"

    changed = {**record, "interests": "融资 技改"}
    resp = await client.put(url, json=changed, headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["outcome"] == "updated"
    assert (await (await client.get(url, headers=AUTH)).json())[kind]["interests"] == "融资 技改"

    resp = await client.delete(url, headers=AUTH)
    assert resp.status == 204
    assert (await client.get(url, headers=AUTH)).status == 404
    resp = await client.delete(url, headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["errors"][0] == {"loc": ["path", "id"], "msg": f"no {kind} {record['id']!r}"}


@pytest.mark.parametrize(("collection", "kind", "make"), KINDS)
async def test_put_creates_and_checks_the_path_id(client: Client, collection: str, kind: str, make) -> None:
    record = make()
    resp = await client.put(f"/api/v1/{collection}/{record['id']}", json=record, headers=AUTH)
    assert resp.status == 201
    resp = await client.put(f"/api/v1/{collection}/not-{record['id']}", json=record, headers=AUTH)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["loc"] == ["body", "id"]


async def test_employees_above_the_documented_bound_is_a_422(client: Client) -> None:
    """The document states the bound (maximum) and the server holds to it, on a create and a replace."""
    doc = await (await client.get("/api/v1/openapi.json")).json()
    [number] = [b for b in doc["components"]["schemas"]["EnterpriseProfile"]["properties"]["employees"]["anyOf"]
                if b.get("type") == "integer"]  # fmt: skip
    assert (number["minimum"], number["maximum"]) == (0, EMPLOYEES_MAX)
    record = sample_enterprise(employees=EMPLOYEES_MAX + 1)
    for method, url in (("POST", "/api/v1/enterprises"), ("PUT", f"/api/v1/enterprises/{record['id']}")):
        resp = await client.request(method, url, json=record, headers=AUTH)
        assert resp.status == 422, method
        assert (await resp.json())["errors"][0]["loc"][-1] == "employees"
    resp = await client.post("/api/v1/enterprises", json={**record, "employees": EMPLOYEES_MAX}, headers=AUTH)
    assert resp.status == 201, await resp.text()


async def test_enterprise_list_masks_personal_data(client: Client) -> None:
    records = sample_records("enterprises.jsonl", 30)
    for record in records:
        assert (await client.post("/api/v1/enterprises", json=record, headers=AUTH)).status == 201
    resp = await client.get("/api/v1/enterprises", params={"limit": 500}, headers=AUTH)
    assert resp.status == 200
    page = await resp.json()
    assert page["total"] == len(records)
    by_id = {r["id"]: r for r in records}
    for item in page["items"]:
        original = by_id[item["id"]]["contact"]
        if original["phone"]:
            phone = item["contact"]["phone"]
            assert phone != original["phone"]
            assert phone[:3] == original["phone"][:3] and phone[-4:] == original["phone"][-4:]
            assert "****" in phone
        if original["wechat_openid"]:
            assert item["contact"]["wechat_openid"] != original["wechat_openid"]
            assert "*" in item["contact"]["wechat_openid"]
        assert item["name"] == by_id[item["id"]]["name"]
    # no personal value appears anywhere in the page
    text = await resp.text()
    for record in records:
        for value in record["contact"].values():
            if value:
                assert value not in text


async def test_resident_list_masks_id_numbers_and_filters_by_region(client: Client) -> None:
    records = sample_records("residents.jsonl", 40)
    for record in records:
        assert (await client.post("/api/v1/residents", json=record, headers=AUTH)).status == 201
    text = await (await client.get("/api/v1/residents", params={"limit": 500}, headers=AUTH)).text()
    for record in records:
        if record.get("id_number"):
            assert record["id_number"] not in text
        assert f'"name": "{record["name"]}"' not in text  # names masked too (issue 10)
    listed = (await (await client.get("/api/v1/residents", params={"limit": 500}, headers=AUTH)).json())["items"]
    assert {i["name"] for i in listed} == {r["name"][0] + "*" * (len(r["name"]) - 1) for r in records}
    one = await (await client.get(f"/api/v1/residents/{records[0]['id']}", headers=AUTH)).json()
    assert one["resident"]["name"] == records[0]["name"]  # whole for one record, as the other values
    region = next(r["region"] for r in records if r.get("region"))
    page = await (await client.get("/api/v1/residents", params={"region": region}, headers=AUTH)).json()
    assert page["total"] >= 1
    assert all(item["region"] is not None and item["region"].startswith(region) for item in page["items"])


async def test_profile_paging(client: Client) -> None:
    records = sample_records("residents.jsonl", 12)
    for record in records:
        await client.post("/api/v1/residents", json=record, headers=AUTH)
    ids: list[str] = []
    for offset in (0, 5, 10):
        page = await (await client.get("/api/v1/residents", params={"limit": 5, "offset": offset}, headers=AUTH)).json()
        assert page["total"] == 12
        ids.extend(i["id"] for i in page["items"])
    assert sorted(ids) == sorted(r["id"] for r in records)


async def test_unknown_profile_is_404(client: Client) -> None:
    for url in ("/api/v1/enterprises/91211103MANFREJA0X", "/api/v1/residents/r-nobody"):
        resp = await client.get(url, headers=AUTH)
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["loc"] == ["path", "id"]


async def test_second_resident_with_the_same_id_number_is_409(client: Client) -> None:
    first = sample_resident()
    assert (await client.post("/api/v1/residents", json=first, headers=AUTH)).status == 201
    resp = await client.post("/api/v1/residents", json={**first, "id": "r-copy"}, headers=AUTH)
    assert resp.status == 409
    error = (await resp.json())["errors"][0]
    assert "id_number" in error["loc"]
    assert first["id_number"] not in error["msg"]  # never echo personal data
    assert (await client.get("/api/v1/residents/r-copy", headers=AUTH)).status == 404
