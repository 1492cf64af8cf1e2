"""WeChat's encrypted callback mode (``encrypt_type=aes``): the WXBizMsgCrypt algorithm.

An account whose server is set to 安全模式 receives every event as
``<xml><ToUserName>…</ToUserName><Encrypt>BASE64</Encrypt></xml>`` with ``msg_signature``,
``timestamp`` and ``nonce`` in the query string, and must encrypt its passive replies the same way.

* key: base64-decode the 43-character EncodingAESKey plus ``=``: 32 bytes, AES-256; the IV is the
  key's first 16 bytes; CBC mode.
* plaintext: 16 random bytes + the message length (4 bytes, big-endian) + the message + the appid,
  padded PKCS#7-style to a multiple of **32** bytes (not AES's 16: pad values run 1 to 32).
* ``msg_signature`` = sha1 of the sorted (token, timestamp, nonce, Encrypt) joined.

Decrypting checks the signature in constant time, the timestamp against a window, the padding and
that the trailing appid is our own, so a message encrypted for another account is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from channels.errors import ProtocolError
from channels.safe_xml import parse_xml

__all__ = ["WechatCrypto", "WechatCryptoError", "wechat_msg_signature"]

_BLOCK = 32


class WechatCryptoError(ProtocolError):
    """A message that fails the signature, the timestamp window, the padding or the appid check."""


def wechat_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 of the lexicographically sorted (token, timestamp, nonce, Encrypt), concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def _xml_fields(body: bytes | str) -> dict[str, str]:
    return {child.tag: (child.text or "") for child in parse_xml(body, "encrypted WeChat message")}


class WechatCrypto:
    """Encrypt and decrypt one account's callback messages.

    ``max_age_s`` bounds how far ``timestamp`` may be from now (WeChat retries a push three times
    within about 15 s, so five minutes is generous); ``clock`` is for tests.
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        appid: str,
        *,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey has 43 characters (A-Z, a-z, 0-9)")
        try:
            self._key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("EncodingAESKey is not base64") from exc
        self.token = token
        self.appid = appid
        self.max_age_s = max_age_s
        self._clock = clock

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    # ---- the primitive ----------------------------------------------------------------------

    def encrypt(self, message: bytes, *, random16: bytes | None = None) -> str:
        """Base64 ciphertext of ``message`` for this appid (``random16`` only for test vectors)."""
        prefix = random16 if random16 is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("the random prefix has 16 bytes")
        plain = prefix + struct.pack(">I", len(message)) + message + self.appid.encode()
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside ``encrypt``; refuses bad padding and any appid but ours."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except binascii.Error as exc:
            raise WechatCryptoError("Encrypt is not base64") from exc
        if not data or len(data) % 16:
            raise WechatCryptoError("Encrypt is not a whole number of AES blocks")
        dec = self._cipher().decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WechatCryptoError("bad padding: wrong EncodingAESKey?")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WechatCryptoError("decrypted message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, appid = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise WechatCryptoError("decrypted length field does not fit")
        if not hmac.compare_digest(appid, self.appid.encode()):
            raise WechatCryptoError("message was encrypted for another appid")
        return message

    # ---- whole callback messages ------------------------------------------------------------

    def check(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise ``WechatCryptoError`` unless the signature fits and the timestamp is recent."""
        expected = wechat_msg_signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, msg_signature or ""):
            raise WechatCryptoError("msg_signature does not match")
        check_timestamp(timestamp, self._clock(), self.max_age_s)

    def decrypt_message(self, body: bytes | str, *, msg_signature: str, timestamp: str, nonce: str) -> bytes:
        """The plain XML of an encrypted push, after the signature, time and appid checks."""
        encrypt = _xml_fields(body).get("Encrypt", "")
        if not encrypt:
            raise WechatCryptoError("encrypted message has no Encrypt element")
        self.check(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_message(self, xml: str, *, nonce: str, timestamp: str | None = None, random16: bytes | None = None) -> str:
        """The encrypted envelope of a passive reply (or of a pushed event, for the simulator)."""
        stamp = timestamp or str(int(self._clock()))
        encrypt = self.encrypt(xml.encode(), random16=random16)
        signature = wechat_msg_signature(self.token, stamp, nonce, encrypt)
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{stamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )


def check_timestamp(timestamp: str, now: float, max_age_s: float) -> None:
    """Raise ``WechatCryptoError`` when ``timestamp`` is not a number within ``max_age_s`` of ``now``."""
    try:
        stamp = int(timestamp)
    except ValueError as exc:
        raise WechatCryptoError("timestamp is not a number") from exc
    if abs(now - stamp) > max_age_s:
        raise WechatCryptoError(f"timestamp is {int(now - stamp)} s away from now (allowed {int(max_age_s)} s)")
