"""Password hashing: argon2id (argon2-cffi's RFC 9106 low-memory profile), never a home-made scheme."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

__all__ = ["MIN_PASSWORD_CHARS", "check_password_rules", "generate_password", "hash_password", "needs_rehash", "verify_password"]

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)  # argon2id, 64 MiB, t=3
MIN_PASSWORD_CHARS = 12
#: a hash made once, checked against when the account does not exist, so that an unknown name takes
#: as long to refuse as a wrong password (no user enumeration by timing)
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"密码至少 {MIN_PASSWORD_CHARS} 个字符"
    if len(password) > 256:
        return "密码最多 256 个字符"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def generate_password() -> str:
    """A password for a new account or a reset: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)
