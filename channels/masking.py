"""Masking of personal data for log lines: phones, openids and registration ids never appear whole."""

from __future__ import annotations

import re

__all__ = ["mask_recipient"]

_PHONE = re.compile(r"^(?:\+?86|0086)?(1\d{10})$")


def mask_recipient(value: str) -> str:
    """``13800000000`` -> ``138****0000``; other identifiers keep 3 leading and 3 trailing characters."""
    m = _PHONE.match(value)
    if m:
        phone = m.group(1)
        return f"{phone[:3]}****{phone[-4:]}"
    if len(value) <= 8:
        return "*" * len(value)
    return f"{value[:3]}****{value[-3:]}"
