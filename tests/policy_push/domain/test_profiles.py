import datetime as dt

import pytest

from policy_push.domain import (
    ValidationContext,
    full_years,
    id_number_check_digit,
    parse_enterprise,
    parse_resident,
)
from policy_push.domain.profiles import EMPLOYEES_MAX
from policy_push.errors import RecordInvalid
from policy_push.refdata import load_reference_data

from . import _sample


def _errors(fn, data: dict) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(RecordInvalid) as exc:
        fn(data)
    return {e.field: e.msg for e in exc.value.errors}


def _id_number(prefix: str, birth: str, seq: str = "123") -> str:
    first17 = prefix + birth.replace("-", "") + seq
    return first17 + id_number_check_digit(first17)


def test_sample_profiles_round_trip() -> None:
    for fn, data in ((parse_enterprise, _sample.enterprise()), (parse_resident, _sample.resident())):
        out = fn(data).to_json()
        for key, value in data.items():
            assert out[key] == value, key


@pytest.mark.parametrize(
    ("phone", "needle"),
    [
        ("1390427123", "10 digits"),
        ("139042712345", "12 digits"),
        ("12904271234", "not a mainland mobile"),
        ("1390427123a", "11 digits and nothing else"),
        (13904271234, "must be a string"),
    ],
)
def test_phone_rules(phone: object, needle: str) -> None:
    data = _sample.resident()
    data["contact"]["phone"] = phone
    assert needle in _errors(parse_resident, data)["contact.phone"]


def test_phone_normalised_from_plus86() -> None:
    data = _sample.resident()
    data["contact"]["phone"] = "+86 139-0427-1234"
    assert parse_resident(data).contact.phone == "13904271234"


def test_unknown_codes_named() -> None:
    data = _sample.enterprise()
    data["region"] = "211105"
    data["industry"] = "3519"
    errs = _errors(parse_enterprise, data)
    assert "unknown region code '211105'" in errs["region"]
    assert "unknown industry code '3519'" in errs["industry"]


def test_withdrawn_codes_survive_when_read_back_trusted() -> None:
    data = _sample.enterprise()
    data["region"] = "211105"
    assert parse_enterprise(data, ValidationContext(trusted=True)).region == "211105"


def test_enterprise_numbers_and_enums() -> None:
    data = _sample.enterprise()
    data.update(employees=-1, size="huge", tax_credit_rating="E", established_on="2999-01-01")
    errs = _errors(parse_enterprise, data)
    assert {"employees", "size", "tax_credit_rating", "established_on"} <= set(errs)


def test_employees_is_bounded() -> None:
    """From 0 to ten million persons (EMPLOYEES_MAX); one more is a typing error, refused with the bound named."""
    data = _sample.enterprise()
    for fine in (0, EMPLOYEES_MAX, float(EMPLOYEES_MAX)):
        assert parse_enterprise({**data, "employees": fine}).employees == EMPLOYEES_MAX * (fine != 0)
    for wrong in (EMPLOYEES_MAX + 1, 10**30):
        assert "less than or equal to 10000000" in _errors(parse_enterprise, {**data, "employees": wrong})["employees"]


def test_tags_open_vocabulary_but_bounded() -> None:
    data = _sample.resident()
    data["tags"] = ["从未见过的标签"]
    assert parse_resident(data).tags == ["从未见过的标签"]
    data["tags"] = ["长" * 33]
    assert "longer than 32" in _errors(parse_resident, data)["tags"]


def test_empty_tags_known_none_unknown() -> None:
    data = _sample.resident()
    data["tags"] = []
    assert parse_resident(data).tags == []
    data["tags"] = None
    assert parse_resident(data).tags is None


def test_channels_unique_and_known() -> None:
    data = _sample.resident()
    data["channels"] = ["sms", "sms"]
    assert "twice" in _errors(parse_resident, data)["channels"]
    data["channels"] = ["fax"]
    assert "channels.0" in _errors(parse_resident, data)


def test_resident_derivations() -> None:
    data = _sample.resident()
    data["id_number"] = _id_number("211104", "1946-11-26", "125")
    data["hukou_region"] = None
    r = parse_resident(data)
    assert r.effective_birth_date == dt.date(1946, 11, 26)
    assert r.effective_gender == "male"
    assert r.effective_hukou_region == "211104"
    assert r.age(dt.date(2026, 11, 26)) == 80
    assert r.age(dt.date(2026, 11, 25)) == 79


def test_explicit_hukou_region_wins() -> None:
    data = _sample.resident()
    data["hukou_region"] = "211103"
    assert parse_resident(data).effective_hukou_region == "211103"


def test_resident_without_id_number_uses_given_values() -> None:
    data = _sample.resident()
    del data["id_number"]
    data.update(birth_date="1990-05-01", gender="female")
    r = parse_resident(data)
    assert (r.age(dt.date(2026, 5, 1)), r.effective_gender, r.effective_hukou_region) == (36, "female", None)


def test_given_birth_date_must_agree_with_id_number() -> None:
    data = _sample.resident()
    data["birth_date"] = "1971-01-01"
    assert "disagrees" in next(iter(_errors(parse_resident, data).values()))


def test_leap_day_birthdays() -> None:
    born = dt.date(2000, 2, 29)
    assert full_years(born, dt.date(2026, 2, 28)) == 25
    assert full_years(born, dt.date(2026, 3, 1)) == 26
    assert full_years(born, dt.date(2028, 2, 29)) == 28


def test_enterprise_size_declared_wins_else_derived() -> None:
    industries = load_reference_data().industries
    data = _sample.enterprise()  # declares small with 2 employees and 78 万元
    assert parse_enterprise(data).effective_size(industries) == "small"
    data["size"] = None
    assert parse_enterprise(data).effective_size(industries) == "micro"
    data["employees"] = None
    assert parse_enterprise(data).effective_size(industries) is None


def test_established_years() -> None:
    data = _sample.enterprise()
    data["established_on"] = "2024-11-26"
    e = parse_enterprise(data)
    assert e.established_years(dt.date(2026, 11, 26)) == 2
    assert e.established_years(dt.date(2026, 11, 25)) == 1
