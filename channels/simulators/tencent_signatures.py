"""The Tencent Cloud API gateway's request checks: the headers every call needs, the action and version,
TC3-HMAC-SHA256 recomputed over whatever ``SignedHeaders`` the client declared (``content-type`` and
``host`` required; an unsigned payload when ``X-TC-Content-SHA256: UNSIGNED-PAYLOAD`` says so), the
timestamp within 5 minutes and the credential date equal to the timestamp's UTC date."""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from aiohttp import web

from channels.signing import Tc3Request, tc3_signature

__all__ = ["check_tc3_request"]

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>\w+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
_VERSION = "2021-01-11"


def check_tc3_request(
    request: web.Request, payload: bytes, secrets: Mapping[str, str], now: float, *, actions: Collection[str]
) -> tuple[str, str] | None:
    """None, or the (code, message) of the gateway's refusal of ``request`` (an action not in ``actions``,
    another version, a missing header, an unknown SecretId, a stale timestamp or a wrong signature)."""
    h = request.headers
    for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region", "Authorization"):
        if not h.get(name):
            return ("MissingParameter", f"The request is missing a required parameter `{name}`.")
    if h["X-TC-Action"] not in actions:
        return ("InvalidAction", f"The action `{h['X-TC-Action']}` is not supported.")
    if h["X-TC-Version"] != _VERSION:
        return ("NoSuchVersion", f"The version `{h['X-TC-Version']}` does not exist.")
    m = _AUTH.match(h["Authorization"])
    if not m or m["service"] != "sms":
        return ("AuthFailure.InvalidAuthorization", "Authorization header is malformed")
    signed = m["headers"].split(";")
    if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
        return ("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host, sorted")
    secret = secrets.get(m["id"])
    if secret is None:
        return ("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
    try:
        ts = int(h["X-TC-Timestamp"])
    except ValueError:
        return ("InvalidParameter", "X-TC-Timestamp is not an integer")
    if abs(now - ts) > 300:
        return ("AuthFailure.SignatureExpire", "Signature expired: the timestamp is more than 5 minutes off")
    if datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") != m["date"]:
        return ("AuthFailure.SignatureFailure", "credential date is not the UTC date of the timestamp")
    headers = {name: (h.get(name, "").lower() if name == "x-tc-action" else h.get(name, "")) for name in signed}
    if h.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD":
        signed_payload = b"UNSIGNED-PAYLOAD"
    else:
        signed_payload = b"" if request.method == "GET" else payload
    query = request.rel_url.raw_query_string if request.method == "GET" else ""
    signed_request = Tc3Request(headers, signed, signed_payload, method=request.method, query=query)
    expected = tc3_signature(secret_key=secret, service="sms", timestamp=ts, request=signed_request)
    if not hmac.compare_digest(expected, m["sig"]):
        return (
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        )
    return None
