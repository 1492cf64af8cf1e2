from __future__ import annotations

from channels import mask_recipient
from policy_push.security import mask_contact, mask_id_number, mask_profile_json
from tests.factories import make_enterprise, make_resident


def test_mask_contact_is_the_provider_logs_rule() -> None:
    """One rule for staff views and provider logs: the channels engine's."""
    for value in ("13812345678", "+8613812345678", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "reg0000000000001", "12345"):
        assert mask_contact(value) == mask_recipient(value)
    assert mask_contact("13812345678") == "138****5678"
    assert mask_contact("o6_bmjrPTlm6_2sgVt7hMZOPfL2M") == "o6_****L2M"
    assert mask_contact("12345") == "*****"
    assert mask_contact(None) is None


def test_mask_id_number() -> None:
    assert mask_id_number("211104197011187337") == "211104********7337"
    assert mask_id_number("12345") == "*****"
    assert mask_id_number(None) is None


def test_mask_profile_json_masks_every_personal_value_and_copies() -> None:
    res = make_resident(contact={"phone": "13812345678", "wechat_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"})
    doc = res.to_json()
    masked = mask_profile_json(doc)
    assert masked["contact"] == {"phone": "138****5678", "wechat_openid": "o6_****L2M", "app_registration_id": None}
    assert masked["id_number"] == mask_id_number(res.id_number)
    assert masked["name"] == res.name
    assert doc == res.to_json()  # the input is untouched


def test_mask_profile_json_enterprise_without_id_number() -> None:
    ent = make_enterprise()
    masked = mask_profile_json(ent.to_json())
    assert "id_number" not in masked
    blob = str(masked)
    for value in (ent.contact.phone, ent.contact.wechat_openid, ent.contact.app_registration_id):
        assert value is not None and value not in blob
