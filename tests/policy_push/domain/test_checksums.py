"""Check characters of the unified social credit code (GB 32100-2015) and the resident ID number
(GB 11643-1999): published codes that must pass, and the same codes with one character changed."""

import pytest

from policy_push.domain import id_number_check_digit, parse_enterprise, parse_resident, uscc_check_char
from policy_push.errors import RecordInvalid

VALID_USCC = [
    "91310115591693856A",
    "91310110666007217T",
    "91350100M000100Y43",
    "91230184MA1BUFLT44",
    "92371000MA3MXH0E3W",
    "91350200776049653A",
    "91350500798359476R",
    "91440101MA5CJQ4N59",
    "913502000728319549",
    "9135021359498494XQ",
    "91350213678251743X",
]
INVALID_USCC = [("91350211M00013FA1N", "3"), ("91350100M000100Y4A", "3"), ("91350203M0001QAY9B", "9")]


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_credit_codes(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(("code", "expected"), INVALID_USCC)
def test_invalid_credit_codes(code: str, expected: str) -> None:
    assert uscc_check_char(code[:17]) == expected != code[17]


def test_worked_example_sum() -> None:
    # 91350100M000100Y43: weighted sum 1640, 1640 mod 31 = 28, 31 - 28 = 3
    assert uscc_check_char("91350100M000100Y4") == "3"


def test_id_number_vector() -> None:
    assert id_number_check_digit("11010519491231002") == "X"


def _enterprise(code: str) -> dict:
    return {"id": code, "name": "测试企业", "region": "211103", "industry": "3512"}


def test_enterprise_rejects_letters_outside_the_set() -> None:
    with pytest.raises(RecordInvalid) as exc:
        parse_enterprise(_enterprise("91211103MA0Q2L7KOP"))
    assert exc.value.errors[0].field == "id"
    assert "outside the standard set" in exc.value.errors[0].msg


def test_enterprise_rejects_wrong_length() -> None:
    with pytest.raises(RecordInvalid) as exc:
        parse_enterprise(_enterprise("91211103MA0Q2L7K3"))
    assert "18 characters" in exc.value.errors[0].msg


@pytest.mark.parametrize(
    ("id_number", "reason"),
    [
        ("21110419701118733", "18 characters"),
        ("211104701118733", "18 characters"),  # legacy 15-digit number
        ("211104197011187334", "check digit"),
        ("211103189720591234", "not a real date"),
        ("999999197011180000", "unknown region prefix"),
    ],
)
def test_resident_id_number_rejections(id_number: str, reason: str) -> None:
    if reason == "unknown region prefix":
        id_number = id_number[:17] + id_number_check_digit(id_number[:17])
    with pytest.raises(RecordInvalid) as exc:
        parse_resident({"id": "r-1", "name": "张某", "id_number": id_number})
    assert exc.value.errors[0].field == "id_number"
    assert reason in exc.value.errors[0].msg


def test_future_birth_date_is_refused() -> None:
    first17 = "21110320991231123"
    with pytest.raises(RecordInvalid, match="in the future"):
        parse_resident({"id": "r-1", "name": "张某", "id_number": first17 + id_number_check_digit(first17)})


def test_withdrawn_county_code_in_a_known_city_is_accepted() -> None:
    # 211121 (old 大洼县) is not in the 2022 table, but 211100 盘锦市 is
    first17 = "21112119800101123"
    r = parse_resident({"id": "r-1", "name": "张某", "id_number": first17 + id_number_check_digit(first17)})
    assert r.effective_hukou_region == "211121"
