"""Masking of personal values for every staff view (design.md, invariant 6).

Masks keep just enough to tell two records apart on a screen: the carrier prefix and last four
digits of a phone, the region prefix and last four characters of an ID number.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["mask_id_number", "mask_openid", "mask_phone", "mask_profile_json"]


def _mask(value: str, head: int, tail: int, *, min_hidden: int = 4) -> str:
    # too short to show both ends and still hide something: hide it all
    if len(value) < head + tail + min_hidden:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` -> ``138****5678``."""
    return None if phone is None else _mask(phone, 3, 4)


def mask_id_number(id_number: str | None) -> str | None:
    """``211104197011187337`` -> ``211104********7337`` (region prefix and last four)."""
    return None if id_number is None else _mask(id_number, 6, 4)


def mask_openid(openid: str | None) -> str | None:
    """WeChat openids and app registration ids: first four and last four characters."""
    return None if openid is None else _mask(openid, 4, 4)


def mask_profile_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a profile's formats.md JSON with contact values and the ID number masked."""
    out = copy.deepcopy(doc)
    contact = out.get("contact")
    if isinstance(contact, dict):
        if isinstance(contact.get("phone"), str):
            contact["phone"] = mask_phone(contact["phone"])
        for key in ("wechat_openid", "app_registration_id"):
            if isinstance(contact.get(key), str):
                contact[key] = mask_openid(contact[key])
    if isinstance(out.get("id_number"), str):
        out["id_number"] = mask_id_number(out["id_number"])
    return out
