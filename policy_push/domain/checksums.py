"""Check characters of the unified social credit code (GB 32100-2015) and of the resident
ID number (GB 11643-1999)."""

from __future__ import annotations

import datetime as dt

__all__ = [
    "USCC_ALPHABET",
    "id_number_birth_date",
    "id_number_check_digit",
    "id_number_gender",
    "uscc_check_char",
]

#: 31 characters; I, O, S, V and Z are never used
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """The 18th character for the first 17 of a credit code (all in ``USCC_ALPHABET``)."""
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def id_number_check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits of a resident ID number."""
    total = sum(int(ch) * w for ch, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_number_birth_date(id_number: str) -> dt.date:
    """Birth date in positions 7-14; raises ValueError when it is no real date."""
    s = id_number[6:14]
    return dt.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))


def id_number_gender(id_number: str) -> str:
    """"male" when the 17th digit is odd, else "female"."""
    return "male" if int(id_number[16]) % 2 else "female"
