"""Encryption of personal data at rest (design.md, invariant 6).

One configured secret (``POLICY_PUSH_PII_KEY``, base64 of 32 bytes) never touches data directly:
HKDF derives one subkey for AES-256-GCM and another for HMAC-SHA256, so the look-up hashes
stored beside the ciphertexts reveal nothing about the encryption key and vice versa.

A ciphertext is ``nonce (12 random bytes) || AES-GCM ciphertext+tag``.  The associated data is
the kind of value (``phone``, ``id_number`` …), so a phone ciphertext copied into an ID-number
column fails to decrypt instead of being read as an ID number.

Look-up hashes are keyed (HMAC), not plain SHA-256: a phone number has only ~10^10 values and
an unkeyed hash of one is reversed by brute force in minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from policy_push.errors import ConfigurationError, PiiDecryptError

if TYPE_CHECKING:
    from policy_push.config import Settings

__all__ = ["DEMO_PII_KEY", "PII_KINDS", "PiiCipher", "PiiKind", "generate_key"]

PiiKind = Literal["phone", "id_number", "wechat_openid", "app_registration_id"]
PII_KINDS: Final[tuple[str, ...]] = ("phone", "id_number", "wechat_openid", "app_registration_id")

#: The demo key is public on purpose (it is printed here and in the docs): demo data is
#: synthetic, and a demo must start without any set-up.  Outside ``demo`` mode it is refused
#: only by being absent from configuration; never configure it for real data.
DEMO_PII_KEY: Final[str] = base64.b64encode(
    hashlib.sha256(b"policy_push public demo key - never for real data").digest()
).decode()

_KEY_BYTES = 32
_NONCE_BYTES = 12
_ENV_NAME = "POLICY_PUSH_PII_KEY"


def generate_key() -> str:
    """A fresh key for ``POLICY_PUSH_PII_KEY`` (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(_KEY_BYTES)).decode()


def _decode_key(key: str) -> bytes:
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{_ENV_NAME} is not valid base64; create a key with `policy-push keygen`"
        ) from None
    if len(raw) != _KEY_BYTES:
        raise ConfigurationError(
            f"{_ENV_NAME} decodes to {len(raw)} bytes; it must be base64 of {_KEY_BYTES} bytes "
            "(create one with `policy-push keygen`)"
        )
    return raw


def _subkey(master: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=b"policy_push/" + purpose
    ).derive(master)


class PiiCipher:
    """Encrypts, decrypts and hashes personal values with keys derived from one master key."""

    def __init__(self, key: str) -> None:
        master = _decode_key(key)
        self._aead = AESGCM(_subkey(master, b"aes-gcm/v1"))
        self._mac_key = _subkey(master, b"lookup-hmac/v1")
        self._session_key = _subkey(master, b"staff-session/v1")

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiCipher:
        """The cipher for the configured key; in demo mode without a key, the public demo key."""
        if settings.pii_key is not None and settings.pii_key.get_secret_value().strip():
            return cls(settings.pii_key.get_secret_value())
        if settings.demo:
            return cls(DEMO_PII_KEY)
        raise ConfigurationError(
            f"no PII key configured: set {_ENV_NAME} to base64 of 32 random bytes "
            "(`policy-push keygen` prints one), or run with POLICY_PUSH_DEMO=1 for synthetic demo data only"
        )

    def session_cookie_key(self) -> bytes:
        """32 bytes for the staff session cookie's encryption (its own subkey of the master key)."""
        return self._session_key

    def __repr__(self) -> str:  # never show key material
        return "PiiCipher(<key hidden>)"

    def encrypt(self, kind: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), kind.encode())

    def decrypt(self, kind: str, blob: bytes) -> str:
        if len(blob) < _NONCE_BYTES + 16:
            raise PiiDecryptError(f"stored {kind} ciphertext is too short to be one")
        try:
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kind.encode())
        except InvalidTag:
            raise PiiDecryptError(
                f"stored {kind} does not decrypt: wrong {_ENV_NAME}, or the value was altered or copied from another column"
            ) from None
        return plain.decode()

    def lookup_hash(self, kind: str, value: str) -> str:
        """Keyed hash (hex) for equality look-ups and duplicate detection without decrypting."""
        return hmac.digest(self._mac_key, kind.encode() + b"\x00" + value.encode(), "sha256").hex()
