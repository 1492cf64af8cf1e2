"""Encryption of personal data at rest (design.md, invariant 6).

One configured secret (``POLICY_PUSH_PII_KEY``, base64 of 32 bytes) never touches data directly:
HKDF derives one subkey for AES-256-GCM and another for HMAC-SHA256, so the look-up hashes
stored beside the ciphertexts reveal nothing about the encryption key and vice versa.

A ciphertext is ``b"PP\\x02" || key id (8 bytes) || nonce (12 random bytes) || AES-GCM ciphertext+tag``:
the version prefix and the key id (the first 8 bytes of the key's fingerprint, itself an HKDF output
that reveals nothing of the key) say which key a value is under, so keys can be rotated
(``policy-push keys rotate``) with the old ones still read meanwhile (``POLICY_PUSH_PII_OLD_KEYS``).
Values written before key ids (``nonce || ciphertext+tag``) are still read.  The associated data is
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
_TAG_BYTES = 16
_ENV_NAME = "POLICY_PUSH_PII_KEY"
#: version 2 of the ciphertext layout: prefix, then the key id
_V2 = b"PP\x02"
_KEY_ID_BYTES = 8


def generate_key() -> str:
    """A fresh key for ``POLICY_PUSH_PII_KEY`` (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(_KEY_BYTES)).decode()


def _decode_key(key: str, name: str = _ENV_NAME) -> bytes:
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{name} is not valid base64; create a key with `policy-push keygen`"
        ) from None
    if len(raw) != _KEY_BYTES:
        raise ConfigurationError(
            f"{name} decodes to {len(raw)} bytes; it must be base64 of {_KEY_BYTES} bytes "
            "(create one with `policy-push keygen`)"
        )
    return raw


def _subkey(master: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=b"policy_push/" + purpose
    ).derive(master)


class _Key:
    """One master key's derived keys and its fingerprint."""

    __slots__ = ("aead", "key_id", "link_key", "mac_key", "session_key")

    def __init__(self, key: str, name: str = _ENV_NAME) -> None:
        master = _decode_key(key, name)
        self.aead = AESGCM(_subkey(master, b"aes-gcm/v1"))
        self.mac_key = _subkey(master, b"lookup-hmac/v1")
        self.key_id = _subkey(master, b"fingerprint/v1")[:_KEY_ID_BYTES]
        self.link_key = _subkey(master, b"link-hmac/v1")
        self.session_key = _subkey(master, b"staff-session/v1")

    @property
    def fingerprint(self) -> str:
        return self.key_id.hex()


class PiiCipher:
    """Encrypts, decrypts and hashes personal values with keys derived from one master key.

    ``old_keys`` are only read: a value under one of them decrypts, but everything written (and
    every look-up hash computed) uses the current key."""

    def __init__(self, key: str, old_keys: tuple[str, ...] | list[str] = ()) -> None:
        self._current = _Key(key)
        self._old = [_Key(k, "POLICY_PUSH_PII_OLD_KEYS") for k in old_keys]
        self._by_id = {k.key_id: k for k in (*self._old, self._current)}
        # the current key's own derived keys, as before key ids (hot path: no lookup)
        self._aead = self._current.aead
        self._mac_key = self._current.mac_key
        #: signs people's links (``policy_push.security.links``) unless POLICY_PUSH_LINK_KEY is set;
        #: a rotation of the PII key ends the links signed under the old one (they expire anyway)
        self.link_key = self._current.link_key
        #: encrypts the staff session cookie (policy_push.web.auth); a rotation ends staff logins
        self._session_key = self._current.session_key

    @property
    def fingerprint(self) -> str:
        """Hex fingerprint of the current key (16 hex digits; safe to show and to store)."""
        return self._current.fingerprint

    @property
    def old_fingerprints(self) -> list[str]:
        return [k.fingerprint for k in self._old]

    @staticmethod
    def key_fingerprint(blob: bytes) -> str | None:
        """The fingerprint of the key ``blob`` is under, or None for a value written before key ids."""
        if blob[: len(_V2)] == _V2 and len(blob) >= len(_V2) + _KEY_ID_BYTES + _NONCE_BYTES + _TAG_BYTES:
            return blob[len(_V2) : len(_V2) + _KEY_ID_BYTES].hex()
        return None

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiCipher:
        """The cipher for the configured key; in demo mode without a key, the public demo key."""
        listed = settings.pii_old_keys.get_secret_value() if settings.pii_old_keys is not None else ""
        old = [k.strip() for k in listed.split(",") if k.strip()]
        if settings.pii_key is not None and settings.pii_key.get_secret_value().strip():
            return cls(settings.pii_key.get_secret_value(), old)
        if settings.demo:
            return cls(DEMO_PII_KEY, old)
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
        return _V2 + self._current.key_id + nonce + self._aead.encrypt(nonce, value.encode(), kind.encode())

    def decrypt(self, kind: str, blob: bytes) -> str:
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise PiiDecryptError(f"stored {kind} ciphertext is too short to be one")
        fingerprint = self.key_fingerprint(blob)
        if fingerprint is not None:
            key = self._by_id.get(bytes.fromhex(fingerprint))
            if key is None:
                raise PiiDecryptError(
                    f"stored {kind} is encrypted under key {fingerprint}, which is neither {_ENV_NAME} nor in "
                    "POLICY_PUSH_PII_OLD_KEYS; configure that key (see `policy-push keys status`)"
                )
            body = blob[len(_V2) + _KEY_ID_BYTES :]
            plain = self._open(key, kind, body)
            if plain is not None:
                return plain
        # written before key ids (or, with odds of 2^-24, a legacy nonce that begins like the prefix)
        for key in (self._current, *self._old):
            plain = self._open(key, kind, blob)
            if plain is not None:
                return plain
        raise PiiDecryptError(
            f"stored {kind} does not decrypt: wrong {_ENV_NAME}, or the value was altered or copied from another column"
        )

    @staticmethod
    def _open(key: _Key, kind: str, body: bytes) -> str | None:
        try:
            return key.aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], kind.encode()).decode()
        except InvalidTag:
            return None

    def lookup_hashes(self, kind: str, value: str) -> list[str]:
        """The value's look-up hash under the current key, then under each old key: during a rotation a
        look-up must find rows not re-keyed yet."""
        return [self.lookup_hash(kind, value)] + [
            hmac.digest(k.mac_key, kind.encode() + b"\x00" + value.encode(), "sha256").hex() for k in self._old
        ]

    def lookup_hash(self, kind: str, value: str) -> str:
        """Keyed hash (hex) for equality look-ups and duplicate detection without decrypting."""
        return hmac.digest(self._mac_key, kind.encode() + b"\x00" + value.encode(), "sha256").hex()
