"""Which PII key the data is under: the check every process makes before touching personal data, and
the re-encryption of ``policy-push keys rotate``.

The check (:func:`check_key`): the configured key's fingerprint must be the ``active`` row of
``pii_keys``.  The first run after the table appears records it, but only once a stored ciphertext
decrypts with it (data imported before fingerprints were stored is not claimed by a wrong key).
Keys still ``rotating`` must be among ``POLICY_PUSH_PII_OLD_KEYS``, else their rows cannot be read.

Rotation (:func:`begin_rotation`, :func:`rotate_batch`): the new key becomes ``active`` at once (all
writes use it from then on), the old one ``rotating``; then rows are re-encrypted in id order, a batch
per transaction, each row decrypted with whichever key it names and sealed again (ciphertexts, look-up
hashes and the keyed content hash) under the new key; then the same for the subscribers' accounts and
the inbound messages.  A stopped rotation resumes by running again:
rows already under the new key are skipped.  When no row is left under a ``rotating`` key it is
``retired``.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Table, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.errors import PiiDecryptError, PiiKeyMismatch
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher

from .inbound import SENDER_FIELD, TEXT_FIELD
from .key_tables import PiiKeyRow
from .profiles import EnterpriseRepository, ResidentRepository
from .tables import Base, utcnow

__all__ = ["KeyState", "begin_rotation", "check_key", "count_by_key", "key_state", "retire_finished", "rotate_all"]

_TABLES = {"enterprise": "enterprises", "resident": "residents"}
_PROFILE_ENC = {
    "enterprises": ("phone_enc", "wechat_openid_enc", "app_registration_id_enc"),
    "residents": ("phone_enc", "wechat_openid_enc", "app_registration_id_enc", "id_number_enc", "name_enc"),
}
#: the other tables holding ciphertexts: column -> (the cipher's field name, from the row; the column of
#: its look-up hash, or None)
_OTHER_ENC: dict[str, dict[str, tuple[Callable[[Any], str], str | None]]] = {
    "subscriber_accounts": {
        "phone_enc": (lambda row: "phone", "phone_hash"),
        "wechat_openid_enc": (lambda row: "wechat_openid", "wechat_openid_hash"),
    },
    "inbound_messages": {
        "sender_enc": (lambda row: SENDER_FIELD[row.channel], "sender_hash"),
        "text_enc": (lambda row: TEXT_FIELD, None),
    },
}
#: every ciphertext column, by table (what ``keys status`` counts and a rotation must leave empty)
_ENC = {**_PROFILE_ENC, **{t: tuple(cols) for t, cols in _OTHER_ENC.items()}}
_HELP = "`policy-push keys status` shows the fingerprints; docs/operations.md, key rotation"


@dataclass(frozen=True)
class KeyState:
    configured: str
    active: str | None
    rotating: builtins.list[str] = field(default_factory=list)
    retired: builtins.list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.active == self.configured

    def as_dict(self) -> dict[str, object]:
        return {"fingerprint": self.configured, "matches_data": self.ok, "rotating_from": self.rotating}


async def key_state(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> KeyState:
    async with sessions() as s:
        rows = (await s.execute(select(PiiKeyRow.fingerprint, PiiKeyRow.role))).all()
    by_role: dict[str, builtins.list[str]] = {}
    for fp, role in rows:
        by_role.setdefault(role, []).append(fp)
    active = (by_role.get("active") or [None])[0]
    return KeyState(cipher.fingerprint, active, sorted(by_role.get("rotating", [])), sorted(by_role.get("retired", [])))


async def _sample(s: AsyncSession) -> tuple[str, bytes] | None:
    """One stored ciphertext (kind, blob), or None when no personal data is stored."""
    for table_name, columns in _PROFILE_ENC.items():
        t = Base.metadata.tables[table_name]
        for col in columns:
            blob = await s.scalar(select(t.c[col]).where(t.c[col].is_not(None)).limit(1))
            if blob is not None:
                return col.removesuffix("_enc"), bytes(blob)
    return None


async def check_key(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, *, for_rotation: bool = False) -> KeyState:
    """Refuse (:class:`PiiKeyMismatch`) a key that is not the data's; record the key of a first run.

    ``for_rotation``: ``keys rotate`` may start with a new key while the active one is an old key."""
    state = await key_state(sessions, cipher)
    if state.active is None:
        async with sessions() as s:
            sample = await _sample(s)
        if sample is not None:
            try:
                cipher.decrypt(*sample)
            except PiiDecryptError:
                raise PiiKeyMismatch(
                    f"the stored personal data does not decrypt with POLICY_PUSH_PII_KEY (fingerprint "
                    f"{cipher.fingerprint}): set the key the data was imported with; nothing was changed"
                ) from None
        try:
            async with sessions() as s, s.begin():
                now = utcnow()
                s.add(PiiKeyRow(fingerprint=cipher.fingerprint, role="active", created_at=now, changed_at=now))
        except IntegrityError:  # another process recorded it first: compare with what it recorded
            pass
        state = await key_state(sessions, cipher)
    if state.active != cipher.fingerprint:
        if for_rotation and state.active in cipher.old_fingerprints:
            return state
        if state.active in cipher.old_fingerprints:
            raise PiiKeyMismatch(
                f"POLICY_PUSH_PII_KEY (fingerprint {cipher.fingerprint}) is a new key: the data is under "
                f"{state.active}; run `policy-push keys rotate` to re-encrypt it, or set the old key back"
            )
        raise PiiKeyMismatch(
            f"POLICY_PUSH_PII_KEY has fingerprint {cipher.fingerprint}, but the stored personal data is encrypted "
            f"with key {state.active}: set the key the data was imported with (keep it with the backups); "
            f"nothing was changed. {_HELP}"
        )
    missing = [fp for fp in state.rotating if fp not in cipher.old_fingerprints]
    if missing and not for_rotation:
        raise PiiKeyMismatch(
            f"a key rotation is unfinished: rows are still under key(s) {', '.join(missing)}; put that key in "
            "POLICY_PUSH_PII_OLD_KEYS and run `policy-push keys rotate` to finish it"
        )
    return state


async def begin_rotation(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> KeyState:
    """Make the configured key active and the previous active key ``rotating`` (idempotent)."""
    state = await check_key(sessions, cipher, for_rotation=True)
    missing = [fp for fp in state.rotating if fp not in cipher.old_fingerprints]
    if missing:
        raise PiiKeyMismatch(
            f"rows are still under key(s) {', '.join(missing)}: add them to POLICY_PUSH_PII_OLD_KEYS to finish the rotation"
        )
    if state.active == cipher.fingerprint:
        return state
    now = utcnow()
    async with sessions() as s, s.begin():
        await s.execute(update(PiiKeyRow).where(PiiKeyRow.role == "active").values(role="rotating", changed_at=now))
        existing = await s.get(PiiKeyRow, cipher.fingerprint)
        if existing is None:
            s.add(PiiKeyRow(fingerprint=cipher.fingerprint, role="active", created_at=now, changed_at=now))
        else:
            existing.role, existing.changed_at = "active", now
    return await key_state(sessions, cipher)


def _stale(blob: bytes | None, current: str) -> bool:
    return blob is not None and PiiCipher.key_fingerprint(bytes(blob)) != current


async def _batches(
    sessions: async_sessionmaker[AsyncSession], t: Table, batch: int, progress: Callable[[str, int], None] | None
) -> AsyncIterator[tuple[AsyncSession, Sequence[Row[Any]]]]:
    """``t``'s rows in id order, ``batch`` at a time, each batch in its own transaction (committed when the
    caller asks for the next one, then reported to ``progress``): a stop loses at most the batch in flight."""
    after: Any = None
    while True:
        async with sessions() as s, s.begin():
            stmt = select(t).order_by(t.c.id).limit(batch)
            if after is not None:
                stmt = stmt.where(t.c.id > after)
            rows = (await s.execute(stmt)).all()
            if not rows:
                return
            after = rows[-1].id
            yield s, rows
        if progress is not None:
            progress(t.name, len(rows))


async def rotate_all(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    ref: ReferenceData,
    *,
    batch: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Re-encrypt every profile row not yet under the current key; returns rows re-encrypted per table.
    One transaction per batch: a stop loses at most the batch in flight, and running again resumes."""
    done: dict[str, int] = {}
    for kind, table_name in _TABLES.items():
        t = Base.metadata.tables[table_name]
        cols = _PROFILE_ENC[table_name]
        done[table_name] = 0
        async for s, rows in _batches(sessions, t, batch, progress):
            repo = (EnterpriseRepository if kind == "enterprise" else ResidentRepository)(s, cipher, ref=ref)
            for row in rows:
                if not any(_stale(getattr(row, c), cipher.fingerprint) for c in cols):
                    continue
                profile = repo._profile(row)  # decrypt with the key it names, seal under the current one
                sealed = repo._row(profile, repo._content_hash(profile))
                values = {k: v for k, v in sealed.items() if k.endswith(("_enc", "_hash"))}
                await s.execute(update(t).where(t.c.id == row.id).values(**values))
                done[table_name] += 1
    for table_name, columns in _OTHER_ENC.items():
        done[table_name] = await _rotate_other(sessions, cipher, table_name, columns, batch, progress)
    return done


async def _rotate_other(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    table_name: str,
    columns: dict[str, tuple[Callable[[Any], str], str | None]],
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> int:
    """Re-seal a table's ciphertexts (and re-key their look-up hashes) under the current key."""
    t = Base.metadata.tables[table_name]
    changed = 0
    async for s, rows in _batches(sessions, t, batch, progress):
        for row in rows:
            values: dict[str, Any] = {}
            for col, (field_of, hash_col) in columns.items():
                blob = getattr(row, col)
                if not _stale(blob, cipher.fingerprint):
                    continue
                name = field_of(row)
                plain = cipher.decrypt(name, bytes(blob))
                values[col] = cipher.encrypt(name, plain)
                if hash_col is not None:
                    values[hash_col] = cipher.lookup_hash(name, plain)
            if values:
                await s.execute(update(t).where(t.c.id == row.id).values(**values))
                changed += 1
    return changed


async def count_by_key(sessions: async_sessionmaker[AsyncSession], *, batch: int = 2000) -> Counter[str]:
    """Ciphertexts per key fingerprint (``legacy`` for values written before key ids)."""
    counts: Counter[str] = Counter()
    async with sessions() as s:
        for table_name, cols in _ENC.items():
            t = Base.metadata.tables[table_name]
            has_any = or_(*(t.c[c].is_not(None) for c in cols))
            after: str | None = None
            while True:
                stmt = select(t.c.id, *(t.c[c] for c in cols)).where(has_any).order_by(t.c.id).limit(batch)
                if after is not None:
                    stmt = stmt.where(t.c.id > after)
                rows = (await s.execute(stmt)).all()
                for row in rows:
                    for blob in row[1:]:
                        if blob is not None:
                            counts[PiiCipher.key_fingerprint(bytes(blob)) or "legacy"] += 1
                if len(rows) < batch:
                    break
                after = rows[-1].id
    return counts


async def retire_finished(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> builtins.list[str]:
    """``rotating`` keys with no ciphertext left become ``retired``; returns their fingerprints."""
    counts = await count_by_key(sessions)
    state = await key_state(sessions, cipher)
    # legacy values carry no key id: they count against every rotating key until re-encrypted
    finished = [fp for fp in state.rotating if counts.get(fp, 0) == 0 and counts.get("legacy", 0) == 0]
    if finished:
        async with sessions() as s, s.begin():
            await s.execute(
                update(PiiKeyRow).where(PiiKeyRow.fingerprint.in_(finished)).values(role="retired", changed_at=utcnow())
            )
    return finished
