"""The Aliyun gateway's request checks, in its order: signature V1 (RPC, HMAC-SHA1 over the sorted
parameters) or V3 (ACS3-HMAC-SHA256 over method, path, query, signed headers and body hash), the
access key, the timestamp within 15 minutes and no nonce used twice within 15 minutes.

Each check answers None or the (code, message) the gateway refuses the request with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from aiohttp import web

from channels.signing import (
    acs3_canonical_request,
    acs3_signature,
    acs3_string_to_sign,
    aliyun_signature,
    aliyun_string_to_sign,
)

__all__ = ["AliyunSignatures"]

_COMMON = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version")
_ACS3 = re.compile(
    r"^(?P<algorithm>ACS3-[A-Z0-9-]+) Credential=(?P<key>[^,]+),\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]+)$"
)
_WINDOW_S = 15 * 60


class AliyunSignatures:
    """The access keys the gateway knows, and the nonces it has seen in the last 15 minutes."""

    def __init__(self, access_keys: Callable[[], Mapping[str, str]], clock: Callable[[], float]) -> None:
        #: read at each request: the simulator's configuration may be replaced while it runs
        self._access_keys = access_keys
        self._clock = clock
        self._nonces: dict[str, float] = {}
        self._nonce_order: deque[tuple[float, str]] = deque()

    def check_v1(self, method: str, params: dict[str, str]) -> tuple[str, str] | None:
        """Signature V1 (HMAC-SHA1 over the sorted parameters), as the RPC gateway checks it."""
        for name in _COMMON:
            if not params.get(name):
                return (f"Missing{name}", f"{name} is mandatory for this action.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return ("InvalidSignatureMethod", "Specified signature method is not valid.")
        secret = self._access_keys().get(params["AccessKeyId"])
        if secret is None:
            return ("InvalidAccessKeyId.NotFound", "")
        problem = self._check_time(params["Timestamp"])
        if problem:
            return problem
        expected = aliyun_signature(secret, method, params)
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            # The SDK compares the text after the colon with its own string to sign: equal means a
            # wrong secret (it raises InvalidAccessKeySecret), different means it signed wrongly.
            sts = aliyun_string_to_sign(method, params)
            return ("SignatureDoesNotMatch", f"Specified signature is not matched with our calculation. server string to sign is:{sts}")
        return self._check_nonce(params["SignatureNonce"])

    def check_v3(
        self, request: web.Request, raw: bytes, authorization: str
    ) -> tuple[tuple[str, str] | None, str, str]:
        """Signature V3 (ACS3-HMAC-SHA256 over method, path, query, signed headers and body hash)."""
        h = request.headers
        action, version = h.get("x-acs-action", ""), h.get("x-acs-version", "")
        m = _ACS3.match(authorization)
        if not m:
            return ("InvalidAuthorization", "the Authorization header is malformed"), action, version
        if m["algorithm"] != "ACS3-HMAC-SHA256":
            return ("InvalidSignatureMethod", "Specified signature method is not valid."), action, version
        signed = m["headers"].split(";")
        for name in ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"):
            if not h.get(name):
                return (f"Missing{name}", f"{name} is mandatory for this action."), action, version
            if name not in signed:
                return ("IncompleteSignature", f"the header {name} must be signed"), action, version
        if signed != sorted(signed):
            return ("IncompleteSignature", "SignedHeaders must be sorted"), action, version
        secret = self._access_keys().get(m["key"])
        if secret is None:
            return ("InvalidAccessKeyId.NotFound", ""), action, version
        problem = self._check_time(h["x-acs-date"])
        if problem:
            return problem, action, version
        canonical = acs3_canonical_request(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query=dict(request.query),
            headers={name: ",".join(sorted(v.strip() for v in h.getall(name, []))) for name in signed},
            signed_headers=signed,
            hashed_payload=hashlib.sha256(raw).hexdigest(),
        )
        if not hmac.compare_digest(acs3_signature(secret, canonical), m["signature"]):
            sts = acs3_string_to_sign(canonical).replace("\n", " ")
            text = f"Specified signature is not matched with our calculation. server string to sign is:{sts}"
            return ("SignatureDoesNotMatch", text), action, version
        return self._check_nonce(h["x-acs-signature-nonce"]), action, version

    def _check_time(self, stamp: str) -> tuple[str, str] | None:
        try:
            ts = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return ("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        if abs(self._clock() - ts) > _WINDOW_S:
            return ("InvalidTimeStamp.Expired", "")
        return None

    def _check_nonce(self, nonce: str) -> tuple[str, str] | None:
        now = self._clock()
        while self._nonce_order and self._nonce_order[0][0] < now - _WINDOW_S:
            self._nonces.pop(self._nonce_order.popleft()[1], None)
        if nonce in self._nonces:
            return ("SignatureNonceUsed", "")
        self._nonces[nonce] = now
        self._nonce_order.append((now, nonce))
        return None
