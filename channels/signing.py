"""Request signatures of the providers, shared by the adapters and the simulators that check them.

Every function here is pure: same inputs, same signature, so the documented test vectors pin them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "Tc3Request",
    "acs3_authorization",
    "acs3_canonical_request",
    "acs3_signature",
    "acs3_string_to_sign",
    "aliyun_percent_encode",
    "aliyun_signature",
    "aliyun_signed_query",
    "aliyun_string_to_sign",
    "basic_auth_header",
    "tc3_authorization",
    "tc3_signature",
    "tc3_string_to_sign",
    "wechat_callback_signature",
]


def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's RPC signature wants it: space -> %20, '*' -> %2A, '~' kept."""
    return quote(value, safe="-_.~")


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&enc(sorted k=v joined by &)``, leaving out ``Signature`` itself."""
    canonical = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(params[k])}" for k in sorted(params) if k != "Signature"
    )
    return f"{method.upper()}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"


def aliyun_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """Signature V1: base64(HMAC-SHA1(secret + '&', string-to-sign))."""
    digest = hmac.new(
        f"{secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def aliyun_signed_query(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The encoded query (or form body) with ``Signature`` first, each value encoded only once.

    Large batch parameters (100 numbers with their variables) make percent-encoding the main cost,
    so the encoded pairs serve both the string to sign and the body.
    """
    pairs = sorted(
        (aliyun_percent_encode(k), aliyun_percent_encode(v)) for k, v in params.items() if k != "Signature"
    )
    canonical = "&".join(f"{k}={v}" for k, v in pairs)
    string_to_sign = f"{method.upper()}&%2F&{aliyun_percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    signature = aliyun_percent_encode(base64.b64encode(digest).decode())
    return f"Signature={signature}&{canonical}"


def _canonical_headers(headers: Mapping[str, str], signed_headers: list[str]) -> str:
    """``name:value`` lines of the signed headers, in the order given (both V3 schemes sign them so)."""
    return "".join(f"{h}:{headers[h].strip()}\n" for h in signed_headers)


def acs3_canonical_request(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: list[str],
    hashed_payload: str,
) -> str:
    """Aliyun signature V3 (ACS3-HMAC-SHA256) canonical request.

    Method, the URI path, the query sorted by encoded name with names and values RFC 3986 encoded,
    ``name:value`` lines of the signed headers (lowercase, sorted), their names joined by ``;`` and
    the hex SHA-256 of the body (the same value the client sends as ``x-acs-content-sha256``).
    """
    pairs = sorted((aliyun_percent_encode(k), aliyun_percent_encode(v)) for k, v in query.items())
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    return "\n".join(
        [
            method.upper(), path or "/", canonical_query, _canonical_headers(headers, signed_headers),
            ";".join(signed_headers), hashed_payload,
        ]
    )  # fmt: skip


def acs3_string_to_sign(canonical_request: str) -> str:
    return "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()


def acs3_signature(secret: str, canonical_request: str) -> str:
    """hex(HMAC-SHA256(AccessKeySecret, string-to-sign)): V3 keys with the bare secret, no ``&``."""
    return hmac.new(secret.encode(), acs3_string_to_sign(canonical_request).encode(), hashlib.sha256).hexdigest()


def acs3_authorization(access_key_id: str, secret: str, canonical_request: str, signed_headers: list[str]) -> str:
    """The ``Authorization`` header value of a V3-signed Aliyun request."""
    signature = acs3_signature(secret, canonical_request)
    return f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={';'.join(signed_headers)},Signature={signature}"


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Tc3Request:
    """The parts of a request that TC3-HMAC-SHA256 signs. ``headers`` maps lowercase names to values
    exactly as sent; Tencent lowercases the action header value itself, so callers pass ``x-tc-action``
    already lowercased. ``signed_headers`` are lowercase names."""

    headers: Mapping[str, str]
    signed_headers: list[str]
    payload: bytes
    method: str = "POST"
    uri: str = "/"
    query: str = ""

    def canonical(self) -> str:
        """Method, URI, query, ``name:value`` lines of the signed headers, their names, sha256(payload)."""
        return "\n".join(
            [
                self.method, self.uri, self.query, _canonical_headers(self.headers, self.signed_headers),
                ";".join(self.signed_headers), hashlib.sha256(self.payload).hexdigest(),
            ]
        )  # fmt: skip


def _utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(*, service: str, timestamp: int, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"TC3-HMAC-SHA256\n{timestamp}\n{_utc_date(timestamp)}/{service}/tc3_request\n{digest}"


def tc3_signature(*, secret_key: str, service: str, timestamp: int, request: Tc3Request) -> str:
    """TC3-HMAC-SHA256 signature (hex) of ``request``: keys derived from the date, the service, ``tc3_request``."""
    string_to_sign = tc3_string_to_sign(service=service, timestamp=timestamp, canonical_request=request.canonical())
    k_date = _hmac256(f"TC3{secret_key}".encode(), _utc_date(timestamp))
    k_service = _hmac256(k_date, service)
    k_signing = _hmac256(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(*, secret_id: str, secret_key: str, service: str, timestamp: int, request: Tc3Request) -> str:
    """The full ``Authorization`` header value for a TC3-signed request."""
    signature = tc3_signature(secret_key=secret_key, service=service, timestamp=timestamp, request=request)
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{_utc_date(timestamp)}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(request.signed_headers)}, Signature={signature}"
    )


def basic_auth_header(user: str, password: str) -> str:
    """``Basic base64(user:password)``, as JPush wants ``appKey:masterSecret``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wechat_callback_signature(token: str, timestamp: str, nonce: str) -> str:
    """sha1 of the lexicographically sorted (token, timestamp, nonce), concatenated: WeChat's push check."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
