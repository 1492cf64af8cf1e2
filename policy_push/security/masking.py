"""Masking of personal values for staff views (invariant 6).

Contact addresses are masked by the one rule the provider logs use too, ``channels.mask_recipient``
(a phone keeps its carrier prefix and last four digits, ``138****5678``; an openid or registration id
its first and last three characters). ID numbers, which never reach a provider, keep their region
prefix and last four characters.
"""

from __future__ import annotations

import copy
from typing import Any

from channels import mask_recipient

__all__ = ["mask_contact", "mask_id_number", "mask_name", "mask_profile_json"]


def mask_contact(value: str | None) -> str | None:
    """A phone number, openid or app registration id as a staff view shows it."""
    return None if value is None else mask_recipient(value)


def mask_id_number(id_number: str | None) -> str | None:
    """``211104197011187337`` -> ``211104********7337`` (region prefix and last four)."""
    if id_number is None:
        return None
    if len(id_number) < 14:  # too short to show both ends and still hide something: hide it all
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_name(name: str | None) -> str | None:
    """A person's name as lists show it: the first character (the family name, mostly) and a star for
    each other one; ``张三`` -> ``张*``.  A one-character name is all stars."""
    if name is None:
        return None
    name = name.strip()
    return "*" * len(name) if len(name) < 2 else name[0] + "*" * (len(name) - 1)


def mask_profile_json(doc: dict[str, Any], *, person: bool = False) -> dict[str, Any]:
    """A copy of a profile's formats.md JSON with contact values and the ID number masked, and the
    name too when ``person`` (a resident; an enterprise's name is public)."""
    out = copy.deepcopy(doc)
    if person and isinstance(out.get("name"), str):
        out["name"] = mask_name(out["name"])
    contact = out.get("contact")
    if isinstance(contact, dict):
        for key in ("phone", "wechat_openid", "app_registration_id"):
            if isinstance(contact.get(key), str):
                contact[key] = mask_contact(contact[key])
    if isinstance(out.get("id_number"), str):
        out["id_number"] = mask_id_number(out["id_number"])
    return out
