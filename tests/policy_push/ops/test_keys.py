"""PII key versions: a second key is refused by every command and never re-encrypts anything; `keys rotate`
re-encrypts under a new key with the old one read meanwhile, resumes when stopped, and retires the old key;
look-ups find rows not yet re-keyed; values written before key ids are still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from policy_push.cli.failures import Exit
from policy_push.config import Settings
from policy_push.errors import PiiDecryptError
from policy_push.runtime import open_runtime
from policy_push.security import PiiCipher, generate_key
from policy_push.storage import ResidentRepository
from policy_push.storage.pii_keys import begin_rotation, count_by_key, key_state, rotate_all

from .cli_run import ROOT, clean_env, cli

SAMPLE = ROOT / "policy_push" / "sample"


def test_cipher_reads_old_keys_and_values_without_key_id() -> None:
    old, new = generate_key(), generate_key()
    before = PiiCipher(old)
    blob = before.encrypt("phone", "13812345678")
    assert PiiCipher.key_fingerprint(blob) == before.fingerprint
    rotating = PiiCipher(new, [old])
    assert rotating.decrypt("phone", blob) == "13812345678"
    assert PiiCipher.key_fingerprint(rotating.encrypt("phone", "13812345678")) == rotating.fingerprint
    assert before.lookup_hash("phone", "13812345678") in rotating.lookup_hashes("phone", "13812345678")
    with pytest.raises(PiiDecryptError, match=f"encrypted under key {before.fingerprint}"):
        PiiCipher(new).decrypt("phone", blob)
    # a value from before key ids: nonce || ciphertext+tag under the derived AES key
    legacy = blob[3 + 8 :]
    assert PiiCipher.key_fingerprint(legacy) is None
    assert before.decrypt("phone", legacy) == "13812345678" == rotating.decrypt("phone", legacy)
    assert old not in repr(rotating) and before.fingerprint not in old


def test_a_second_key_is_refused_and_a_rotation_runs(tmp_path: Path) -> None:
    key_a, key_b = generate_key(), generate_key()
    base = clean_env(POLICY_PUSH_DATA_DIR=str(tmp_path / "data"))
    env_a = {**base, "POLICY_PUSH_PII_KEY": key_a}
    env_b = {**base, "POLICY_PUSH_PII_KEY": key_b}
    env_rotate = {**env_b, "POLICY_PUSH_PII_OLD_KEYS": key_a}
    assert cli(["db", "upgrade"], env=env_a, cwd=tmp_path).returncode == 0
    assert cli(["import", "residents", str(SAMPLE / "residents.jsonl"), "--quiet"], env=env_a, cwd=tmp_path).returncode == 0
    fp_a, fp_b = PiiCipher(key_a).fingerprint, PiiCipher(key_b).fingerprint

    # the README's `export POLICY_PUSH_PII_KEY=$(policy-push keygen)` again, in a new shell: refused, nothing changed
    for command in (["import", "residents", str(SAMPLE / "residents.jsonl"), "--quiet"], ["export", "residents"],
                    ["worker", "--exit-when-idle", "--timeout", "5"]):  # fmt: skip
        proc = cli(command, env=env_b, cwd=tmp_path)
        assert proc.returncode == Exit.PII_KEY, (command, proc.stderr)
        assert f"fingerprint {fp_b}" in proc.stderr and fp_a in proc.stderr and "Traceback" not in proc.stderr
    status = cli(["keys", "status"], env=env_a, cwd=tmp_path)
    assert status.returncode == 0 and f"configured key     {fp_a}" in status.stdout
    assert "(0 values)" not in status.stdout.splitlines()[0]  # everything is still under A

    # rotate to B, with A read meanwhile
    rotated = cli(["keys", "rotate", "--batch", "100"], env=env_rotate, cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 0 enterprises, 600 residents" in rotated.stdout and f"retired {fp_a}" in rotated.stdout
    status = cli(["keys", "status"], env=env_b, cwd=tmp_path)
    assert status.returncode == 0 and f"retired            {fp_a}" in status.stdout, status.stdout
    # B alone now reads everything; the same file again changes nothing (the content hashes were re-keyed too)
    again = cli(["import", "residents", str(SAMPLE / "residents.jsonl"), "--quiet"], env=env_b, cwd=tmp_path)
    assert again.returncode == 0 and "0 created, 0 updated, 600 unchanged" in again.stdout, again.stdout
    out = cli(["export", "residents", "-o", "r.jsonl"], env=env_b, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = {json.loads(line)["id"]: json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()}
    original = {json.loads(line)["id"]: json.loads(line) for line in (SAMPLE / "residents.jsonl").read_text(encoding="utf-8").splitlines()}
    assert {i: (r["id_number"], r["contact"]["phone"]) for i, r in exported.items()} == {
        i: (r["id_number"], r["contact"]["phone"]) for i, r in original.items()
    }
    # and A is now the wrong key
    assert cli(["export", "residents"], env=env_a, cwd=tmp_path).returncode == Exit.PII_KEY


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_stopped_rotation_resumes_and_lookups_find_rows_not_yet_rekeyed(db_settings: Settings, db_kind: str) -> None:
    key_a, key_b = db_settings.pii_key.get_secret_value(), generate_key()  # type: ignore[union-attr]
    async with open_runtime(db_settings) as runtime:
        from policy_push.service import Service

        body = (SAMPLE / "residents.jsonl").read_bytes()
        report = await Service(runtime).import_lines("residents", iter([body]), actor="test")
        assert report.created == 600
    first = json.loads((SAMPLE / "residents.jsonl").read_text(encoding="utf-8").splitlines()[0])
    rotating = Settings.model_validate({**db_settings.model_dump(), "pii_key": key_b, "pii_old_keys": key_a})
    async with open_runtime(rotating, check_pii_key=False) as runtime:
        await begin_rotation(runtime.sessions, runtime.cipher)

        class Stop(Exception):
            pass

        def stop_after_first_batch(_table: str, _n: int) -> None:
            raise Stop

        with pytest.raises(Stop):
            await rotate_all(runtime.sessions, runtime.cipher, runtime.ref, batch=100, progress=stop_after_first_batch)
        counts = await count_by_key(runtime.sessions)
        fp_a, fp_b = PiiCipher(key_a).fingerprint, runtime.cipher.fingerprint
        assert counts[fp_a] > 0 and counts[fp_b] > 0  # half way
        # a look-up by ID number finds the row whichever key it is under now
        async with runtime.sessions() as s:
            assert await ResidentRepository(s, runtime.cipher).find_by_id_number(first["id_number"]) == first["id"]
            last = json.loads((SAMPLE / "residents.jsonl").read_text(encoding="utf-8").splitlines()[-1])
            assert await ResidentRepository(s, runtime.cipher).find_by_id_number(last["id_number"]) == last["id"]
        done = await rotate_all(runtime.sessions, runtime.cipher, runtime.ref, batch=100)
        assert 0 < done["residents"] < 600  # resumed: the first batch was not done again
        assert fp_a not in await count_by_key(runtime.sessions)
        assert (await key_state(runtime.sessions, runtime.cipher)).active == fp_b


async def test_a_rotation_reseals_subscribers_and_inbound_messages(db_settings: Settings) -> None:
    """Every ciphertext column is re-keyed, not only the profiles': else the old key would be retired while
    accounts and replies still need it."""
    import datetime as dt

    from policy_push.statuses import InboundKind
    from policy_push.storage import inbound
    from policy_push.storage.subscriber_tables import SubscriberAccountRow

    key_a, key_b = db_settings.pii_key.get_secret_value(), generate_key()  # type: ignore[union-attr]
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    old = PiiCipher(key_a)
    async with open_runtime(db_settings) as runtime, runtime.sessions() as s, s.begin():
        s.add(SubscriberAccountRow(id="acc-1", state="active", phone_enc=old.encrypt("phone", "13800138000"),
                                   phone_hash=old.lookup_hash("phone", "13800138000"), created_at=now, updated_at=now))
        await inbound.record(s, old, provider="aliyun", channel="sms", kind=InboundKind.OPT_OUT, sender="13800138000",
                             text="TD", dedupe="d-1", profiles=0, sent_at=None, now=now)  # fmt: skip
    rotating = Settings.model_validate({**db_settings.model_dump(), "pii_key": key_b, "pii_old_keys": key_a})
    async with open_runtime(rotating, check_pii_key=False) as runtime:
        await begin_rotation(runtime.sessions, runtime.cipher)
        done = await rotate_all(runtime.sessions, runtime.cipher, runtime.ref, batch=100)
        assert (done["subscriber_accounts"], done["inbound_messages"]) == (1, 1)
        counts = await count_by_key(runtime.sessions)
        assert old.fingerprint not in counts and counts[runtime.cipher.fingerprint] == 3
        new = PiiCipher(key_b)  # the new key alone reads everything, and look-ups hash under it
        async with runtime.sessions() as s:
            acc = await s.get(SubscriberAccountRow, "acc-1")
            assert acc is not None and new.decrypt("phone", acc.phone_enc) == "13800138000"
            assert acc.phone_hash == new.lookup_hash("phone", "13800138000")
            [msg] = (await s.execute(select(inbound.inbound))).all()
            assert new.decrypt("inbound_text", msg.text_enc) == "TD"
            assert msg.sender_hash == new.lookup_hash("phone", "13800138000")
