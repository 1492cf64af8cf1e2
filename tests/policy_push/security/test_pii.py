from __future__ import annotations

import base64
from pathlib import Path

import pytest

from policy_push.config import Settings
from policy_push.errors import ConfigurationError, PiiDecryptError
from policy_push.security import DEMO_PII_KEY, PiiCipher, generate_key


def test_round_trip_and_fresh_nonces(cipher: PiiCipher) -> None:
    a = cipher.encrypt("phone", "13812345678")
    b = cipher.encrypt("phone", "13812345678")
    assert a != b  # a random nonce per value: equal numbers do not look equal at rest
    assert len(a) == 3 + 8 + 12 + len("13812345678") + 16  # version, key id, nonce, text, tag
    assert cipher.decrypt("phone", a) == cipher.decrypt("phone", b) == "13812345678"
    assert cipher.decrypt("wechat_openid", cipher.encrypt("wechat_openid", "o6_bmjrPTlm6")) == "o6_bmjrPTlm6"


def test_unicode_round_trip(cipher: PiiCipher) -> None:
    assert cipher.decrypt("id_number", cipher.encrypt("id_number", "张三 X")) == "张三 X"


def test_ciphertext_is_bound_to_its_kind(cipher: PiiCipher) -> None:
    blob = cipher.encrypt("phone", "13812345678")
    with pytest.raises(PiiDecryptError, match="copied from another column"):
        cipher.decrypt("id_number", blob)


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_tampering_is_detected(cipher: PiiCipher, position: int) -> None:
    blob = bytearray(cipher.encrypt("phone", "13812345678"))
    blob[position] ^= 0x01
    with pytest.raises(PiiDecryptError) as info:
        cipher.decrypt("phone", bytes(blob))
    assert "13812345678" not in str(info.value)


def test_truncated_ciphertext(cipher: PiiCipher) -> None:
    with pytest.raises(PiiDecryptError, match="too short"):
        cipher.decrypt("phone", b"\x00" * 10)


def test_other_key_cannot_decrypt(cipher: PiiCipher) -> None:
    blob = cipher.encrypt("phone", "13812345678")
    with pytest.raises(PiiDecryptError):
        PiiCipher(generate_key()).decrypt("phone", blob)


def test_lookup_hash_is_keyed_deterministic_and_per_kind(cipher: PiiCipher) -> None:
    h = cipher.lookup_hash("phone", "13812345678")
    assert h == cipher.lookup_hash("phone", "13812345678")
    assert len(h) == 64 and int(h, 16) >= 0
    assert h != cipher.lookup_hash("id_number", "13812345678")
    assert h != PiiCipher(generate_key()).lookup_hash("phone", "13812345678")


def test_generate_key_is_32_random_bytes() -> None:
    key = generate_key()
    assert len(base64.b64decode(key)) == 32
    assert key != generate_key()


def test_missing_key_outside_demo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="POLICY_PUSH_PII_KEY") as info:
        PiiCipher.from_settings(Settings(data_dir=tmp_path, demo=False))
    assert "policy-push keygen" in str(info.value)


def test_demo_mode_uses_the_public_demo_key(tmp_path: Path) -> None:
    demo = PiiCipher.from_settings(Settings(data_dir=tmp_path, demo=True))
    assert demo.lookup_hash("phone", "13812345678") == PiiCipher(DEMO_PII_KEY).lookup_hash(
        "phone", "13812345678"
    )


def test_configured_key_wins_in_demo_mode(tmp_path: Path, pii_key: str) -> None:
    cipher = PiiCipher.from_settings(Settings(data_dir=tmp_path, demo=True, pii_key=pii_key))
    assert cipher.lookup_hash("phone", "1") == PiiCipher(pii_key).lookup_hash("phone", "1")
    assert cipher.lookup_hash("phone", "1") != PiiCipher(DEMO_PII_KEY).lookup_hash("phone", "1")


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pii_key: str) -> None:
    monkeypatch.setenv("POLICY_PUSH_PII_KEY", pii_key)
    cipher = PiiCipher.from_settings(Settings(data_dir=tmp_path))
    assert cipher.lookup_hash("phone", "1") == PiiCipher(pii_key).lookup_hash("phone", "1")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
    ],
)
def test_malformed_key_is_refused_without_echoing_it(key: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as info:
        PiiCipher(key)
    assert key not in str(info.value)


def test_repr_hides_the_key(pii_key: str) -> None:
    assert pii_key not in repr(PiiCipher(pii_key))
