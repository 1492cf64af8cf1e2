import datetime as dt

import pytest

from policy_push.domain import ValidationContext, parse_policy
from policy_push.errors import RecordInvalid

from . import _sample


def _errors(data: dict, ctx: ValidationContext | None = None) -> dict[str, str]:
    with pytest.raises(RecordInvalid) as exc:
        parse_policy(data, ctx)
    return {e.field: e.msg for e in exc.value.errors}


def test_sample_policy_round_trips() -> None:
    data = _sample.policy()
    policy = parse_policy(data)
    out = policy.to_json()
    for key, value in data.items():
        assert out[key] == value, key
    assert parse_policy(out).content_hash() == policy.content_hash()


def test_content_hash_changes_with_content() -> None:
    a = parse_policy(_sample.policy())
    changed = _sample.policy()
    changed["summary"] += "！"
    assert parse_policy(changed).content_hash() != a.content_hash()


@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "斜/杠", 12])
def test_id_rules(bad: object) -> None:
    data = _sample.policy()
    data["id"] = bad
    assert "id" in _errors(data)


def test_audience_must_be_known() -> None:
    data = _sample.policy()
    data["audience"] = "farmers"
    assert "audience" in _errors(data)


def test_dates_must_be_real_and_iso() -> None:
    data = _sample.policy()
    data["apply_from"] = "2026-02-30"
    data["published_on"] = "2026/03/01"
    errs = _errors(data)
    assert "not a real date" in errs["apply_from"]
    assert "YYYY-MM-DD" in errs["published_on"]


def test_apply_until_before_apply_from() -> None:
    data = _sample.policy()
    data["apply_from"], data["apply_until"] = "2026-09-01", "2026-03-31"
    assert "before apply_from" in _errors(data)["apply_until"]


def test_title_empty_or_blank() -> None:
    for title in ("", "   "):
        data = _sample.policy()
        data["title"] = title
        assert _errors(data)["title"] == "must not be empty"


def test_text_size_limit_is_configurable() -> None:
    data = _sample.policy()
    data["text"] = "政" * 1001
    assert "limit is 1,000" in _errors(data, ValidationContext(max_text_chars=1000))["text"]
    assert parse_policy(data).text == data["text"]


def test_unknown_top_level_field_is_named() -> None:
    data = _sample.policy()
    data["deadline"] = "2026-01-01"
    assert _errors(data)["deadline"] == "is not a known field"


def test_url_must_be_http() -> None:
    data = _sample.policy()
    data["url"] = "javascript:alert(1)"
    assert "http" in _errors(data)["url"]


def test_negative_benefit() -> None:
    data = _sample.policy()
    data["benefit_max_yuan"] = -1
    assert "benefit_max_yuan" in _errors(data)


def test_criteria_are_optional() -> None:
    data = _sample.policy()
    del data["criteria"]
    assert parse_policy(data).criteria is None


def test_errors_from_fields_and_criteria_come_together() -> None:
    data = _sample.policy()
    data["title"] = ""
    data["criteria"] = {"field": "nope", "op": "eq", "value": 1}
    errs = _errors(data)
    assert set(errs) == {"title", "criteria.field"}


def test_is_open() -> None:
    policy = parse_policy(_sample.policy())
    assert policy.apply_until is not None
    assert policy.is_open(policy.apply_until)
    assert not policy.is_open(policy.apply_until + dt.timedelta(days=1))
