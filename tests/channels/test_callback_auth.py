"""Guards for the unsigned Aliyun and Tencent callbacks."""

from __future__ import annotations

import pytest

from channels import SourceAllowList, new_callback_secret, secret_path_matches


def test_secret_path() -> None:
    secret = new_callback_secret()
    assert len(secret) == 32 and secret != new_callback_secret()
    assert secret_path_matches(secret, secret)
    assert not secret_path_matches(secret, secret[:-1])
    assert not secret_path_matches(secret, "")
    assert not secret_path_matches("short", "short")  # a weak configured secret never opens the door


def test_source_allow_list() -> None:
    allow = SourceAllowList.parse(["203.0.113.0/24", " 2001:db8::/32 ", ""])
    assert allow.allows("203.0.113.9") and allow.allows("2001:db8::1")
    assert not allow.allows("198.51.100.1") and not allow.allows("not-an-ip") and not allow.allows(None)
    assert SourceAllowList().allows("198.51.100.1")  # empty: rely on the secret path alone
    with pytest.raises(ValueError, match=r"not an IP network: 'x\.y'"):
        SourceAllowList.parse(["x.y"])
