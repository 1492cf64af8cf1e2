"""Enterprise and resident profiles with their personal values encrypted at rest.

A stored row keeps the formats.md record in ``document`` with every personal value nulled;
phone, WeChat openid, app registration id (and a resident's ID number) live only as AES-GCM
ciphertexts, each with a keyed hash beside it for look-ups and duplicate detection.

Bulk writes go one chunk at a time: one SELECT of the stored content hashes (and, for
residents, of colliding ID-number hashes), then one ``INSERT … ON CONFLICT DO UPDATE`` of the
new and changed rows (executemany; on PostgreSQL, COPY into a staging table first when the chunk
is large).  Unchanged rows are not written at all.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import asyncpg
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import (
    Contact,
    EnterpriseProfile,
    ResidentProfile,
    ValidationContext,
    parse_enterprise,
    parse_resident,
)
from policy_push.errors import AlreadyExists, InvalidInput, RecordConflict
from policy_push.refdata import ReferenceData
from policy_push.security.masking import mask_name
from policy_push.security.pii import PiiCipher
from policy_push.statuses import ChangeOp

from . import changes
from .audit import AuditLog
from .records import UpsertResult
from .region_codes import area_prefix
from .sql import TWICE_IN_A_BATCH, chunks, once_each
from .tables import Base, utcnow

__all__ = ["EnterpriseRepository", "ResidentRepository", "profile_repository"]

P = TypeVar("P", EnterpriseProfile, ResidentProfile)

_CONTACT_KINDS = ("phone", "wechat_openid", "app_registration_id")
# rows per executemany; big enough to amortise the round trip, small enough for IN (...) lists
_CHUNK = 1000
#: on PostgreSQL, a chunk of at least this many rows to write goes by COPY (``_write_rows``)
COPY_MIN_ROWS = 50


def _phone_source(phone_hash: str | None, declared: str | None, stored: tuple[str, str | None, str | None] | None) -> str | None:
    """The register a stored phone is vouched for by (``policy_push.reach``): the one this write names,
    else the one already held for the very same phone; a new or changed phone nobody vouches for has none."""
    if phone_hash is None:
        return None
    if declared is not None:
        return declared
    if stored is not None and stored[1] == phone_hash:
        return stored[2]
    return None


class _ProfileRepository(Generic[P]):
    entity_type: ClassVar[str]
    table: ClassVar[Table]

    def __init__(self, session: AsyncSession, cipher: PiiCipher, *, ref: ReferenceData | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self._audit = AuditLog(session)
        # records read back are trusted: a code withdrawn since must not break reads
        self._read_ctx = (
            ValidationContext(trusted=True) if ref is None else ValidationContext(ref=ref, trusted=True)
        )

    # -- hooks for the two kinds of profile ------------------------------------------------------
    def _parse(self, doc: dict[str, Any]) -> P:
        raise NotImplementedError(f"{type(self).__name__}._parse")

    def _extra_columns(self, profile: P, doc: dict[str, Any]) -> dict[str, Any]:
        """Columns beyond the shared ones; may move personal values out of ``doc``."""
        raise NotImplementedError(f"{type(self).__name__}._extra_columns")

    def _restore_extra(self, row: Any, doc: dict[str, Any]) -> None:
        """Put the personal values of the extra columns back into ``doc``."""

    async def _check_conflicts(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Raise :class:`RecordConflict` for rows that collide with stored data or with each other."""

    # -- row <-> profile -------------------------------------------------------------------------
    def _content_hash(self, profile: P) -> str:
        # keyed, over the record with its personal values: see tables._ProfileColumns.
        # pydantic's JSON keeps the model's field order, so equal records hash equal
        return self.cipher.lookup_hash("profile", profile.model_dump_json())

    def _row(self, profile: P, content_hash: str) -> dict[str, Any]:
        doc = profile.to_json()
        row: dict[str, Any] = {
            "id": profile.id,
            "name": profile.name,
            "region": profile.region,
            "consent": profile.consent,
            "content_hash": content_hash,
        }
        contact = doc.get("contact") or {}
        for kind in _CONTACT_KINDS:
            row.update(self._seal(kind, contact.get(kind)))
        doc["contact"] = dict.fromkeys(_CONTACT_KINDS)
        row.update(self._extra_columns(profile, doc))
        row["document"] = doc
        return row

    def _seal(self, kind: str, value: str | None) -> dict[str, Any]:
        if value is None:
            return {f"{kind}_enc": None, f"{kind}_hash": None}
        return {
            f"{kind}_enc": self.cipher.encrypt(kind, value),
            f"{kind}_hash": self.cipher.lookup_hash(kind, value),
        }

    def _open(self, kind: str, blob: bytes | None) -> str | None:
        return None if blob is None else self.cipher.decrypt(kind, blob)

    def _profile(self, row: Any) -> P:
        doc = dict(row.document)
        doc["contact"] = {kind: self._open(kind, getattr(row, f"{kind}_enc")) for kind in _CONTACT_KINDS}
        self._restore_extra(row, doc)
        return self._parse(doc)

    # -- writes ----------------------------------------------------------------------------------
    async def upsert(self, profile: P, *, actor: str, phone_source: str | None = None) -> UpsertResult:
        return (await self.upsert_many([profile], actor=actor, phone_source=phone_source))[0]

    async def create(self, profile: P, *, actor: str, phone_source: str | None = None) -> UpsertResult:
        """Store a new profile; :class:`AlreadyExists` when the id is taken."""
        if await self._exists(profile.id):
            raise AlreadyExists(self.entity_type, profile.id)
        return (await self.upsert_many([profile], actor=actor, phone_source=phone_source))[0]

    async def upsert_many(
        self, profiles: Sequence[P], *, actor: str, phone_source: str | None = None
    ) -> builtins.list[UpsertResult]:
        """Create or update many profiles, a chunk per round trip; unchanged ones are not written.

        ``phone_source``: the official register the caller vouches the phones came from
        (``policy_push.reach``); None: the phones are unproven, unless one is the phone already stored
        with a register. Any :class:`RecordConflict` rejects the call; inside the caller's transaction
        nothing of it stays.  Each created or updated profile gets an audit entry."""
        once_each((p.id for p in profiles), lambda i: RecordConflict(self.entity_type, i, "id", TWICE_IN_A_BATCH))
        return [r for part in chunks(profiles, _CHUNK) for r in await self._upsert_chunk(part, actor, phone_source)]

    async def _upsert_chunk(self, profiles: Sequence[P], actor: str, phone_source: str | None) -> builtins.list[UpsertResult]:
        t = self.table
        found = await self.session.execute(
            select(t.c.id, t.c.content_hash, t.c.phone_hash, t.c.phone_source).where(t.c.id.in_([p.id for p in profiles]))
        )
        stored: dict[str, tuple[str, str | None, str | None]] = {i: (digest, ph, src) for i, digest, ph, src in found}
        results: builtins.list[UpsertResult] = []
        to_write: builtins.list[dict[str, Any]] = []
        vouched: builtins.list[str] = []  # unchanged records whose phone gains (or changes) its register
        for profile in profiles:
            old = stored.get(profile.id)
            digest = self._content_hash(profile)
            if old is not None and old[0] == digest:
                # an unchanged record is neither encrypted nor written: its row stays as stored
                phone = profile.contact.phone
                source = _phone_source(None if phone is None else self.cipher.lookup_hash("phone", phone), phone_source, old)
                results.append(UpsertResult(profile.id, "unchanged", None))
                if source != old[2]:
                    vouched.append(profile.id)
                continue
            row = self._row(profile, digest)
            row["phone_source"] = _phone_source(row["phone_hash"], phone_source, old)
            to_write.append(row)
            results.append(UpsertResult(profile.id, "created" if old is None else "updated", None))
        if vouched:
            await self.session.execute(update(t).where(t.c.id.in_(vouched)).values(phone_source=phone_source))
        detail = {"phone_source": phone_source} if phone_source is not None else None
        await self._audit.record_many(
            [{"actor": actor, "action": f"{self.entity_type}.phone_source", "entity_type": self.entity_type,
              "entity_id": i, "detail": detail} for i in vouched]
        )  # fmt: skip
        if not to_write:
            return results
        await self._check_conflicts(to_write)
        now = utcnow()
        for row in to_write:
            row["created_at"] = now
            row["updated_at"] = now
        try:
            await self._write_rows(to_write)
        except IntegrityError as exc:
            raise self._integrity_conflict(exc, to_write) from exc
        except asyncpg.exceptions.IntegrityConstraintViolationError as exc:  # the COPY path's own
            raise self._integrity_conflict(exc, to_write) from exc
        await self._audit.record_many(
            [
                {
                    "actor": actor,
                    "action": f"{self.entity_type}.{r.outcome}",
                    "entity_type": self.entity_type,
                    "entity_id": r.id,
                    "detail": detail,
                }
                for r in results
                if r.outcome != "unchanged"
            ]
        )
        await changes.record(self.session, self.entity_type, [r["id"] for r in to_write], ChangeOp.PUT)
        return results

    async def _write_rows(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Insert or update ``rows``.  On PostgreSQL a large chunk goes by COPY into a temporary
        staging table and one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` (the same statement as
        the executemany path, set-wise): COPY's binary stream costs the server far less than a
        thousand executions of one statement.  The rows are the same either way (tested)."""
        conn = await self.session.connection()
        if conn.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
            await self.session.execute(self._upsert_statement(), rows)
            return
        cols = [c for c in self.table.columns if c.name in rows[0]]
        # the columns' own bind conversions (UTC datetimes, JSON documents), as an INSERT applies them
        procs = [c.type._cached_bind_processor(conn.dialect) for c in cols]
        records = [tuple(v if f is None else f(v) for f, v in zip(procs, (r[c.name] for c in cols), strict=True))
                   for r in rows]
        raw = (await conn.get_raw_connection()).driver_connection
        table, stage = self.table.name, f"pp_stage_{self.table.name}"
        names = ", ".join(f'"{c.name}"' for c in cols)
        keep = {"id", "created_at"}
        sets = ", ".join(f'"{c.name}" = EXCLUDED."{c.name}"' for c in cols if c.name not in keep)
        # one staging table per connection, emptied at each commit; LIKE copies no unique index,
        # so only the real table's constraints decide conflicts
        await raw.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" (LIKE "{table}") ON COMMIT DELETE ROWS')
        await raw.execute(f'TRUNCATE "{stage}"')
        await raw.copy_records_to_table(stage, records=records, columns=[c.name for c in cols])
        await raw.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{stage}" '
                          f'ON CONFLICT ("id") DO UPDATE SET {sets}')

    def _upsert_statement(self) -> Any:
        insert = postgresql.insert if self.session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = insert(self.table)
        # created_at keeps its first value; everything else follows the new record
        keep = {"id", "created_at"}
        return stmt.on_conflict_do_update(
            index_elements=[self.table.c.id],
            set_={c.name: stmt.excluded[c.name] for c in self.table.columns if c.name not in keep},
        )

    def _integrity_conflict(self, exc: Exception, rows: builtins.list[dict[str, Any]]) -> RecordConflict:
        # a concurrent writer slipped in between the checks and the write
        first = rows[0]["id"] if len(rows) == 1 else f"{rows[0]['id']}…"
        if "id_number" in str(getattr(exc, "orig", exc)):
            return RecordConflict(self.entity_type, first, "id_number", "is already registered to another resident")
        return RecordConflict(self.entity_type, first, "id", "was written concurrently; retry the request")

    async def delete(self, profile_id: str, *, actor: str) -> bool:
        result = await self.session.execute(delete(self.table).where(self.table.c.id == profile_id))
        if not getattr(result, "rowcount", 0):
            return False
        await self._audit.record(
            actor=actor,
            action=f"{self.entity_type}.delete",
            entity_type=self.entity_type,
            entity_id=profile_id,
        )
        await changes.record(self.session, self.entity_type, [profile_id], ChangeOp.DELETE)
        return True

    # -- reads -----------------------------------------------------------------------------------
    async def _exists(self, profile_id: str) -> bool:
        return (
            await self.session.scalar(select(self.table.c.id).where(self.table.c.id == profile_id))
            is not None
        )

    async def get(self, profile_id: str) -> P | None:
        """The profile with its personal values decrypted, or None."""
        row = (await self.session.execute(select(self.table).where(self.table.c.id == profile_id))).first()
        return None if row is None else self._profile(row)

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(self.table)) or 0)

    async def list(
        self, *, region: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[builtins.list[P], int]:
        """A page of profiles (by id) and the total; ``region`` keeps those inside that area."""
        conditions: builtins.list[ColumnElement[bool]] = []
        if region is not None:
            prefix = area_prefix(region).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(
                or_(self.table.c.region == region, self.table.c.region.like(prefix + "%", escape="\\"))
            )
        total = await self.session.scalar(select(func.count()).select_from(self.table).where(*conditions))
        rows = await self.session.execute(
            select(self.table).where(*conditions).order_by(self.table.c.id).limit(limit).offset(offset)
        )
        return [self._profile(r) for r in rows], int(total or 0)

    async def find_by_phone(self, phone: str) -> builtins.list[str]:
        """Ids of the profiles registered with this phone number (any common spelling of it)."""
        try:
            normalized = Contact(phone=phone).phone
        except ValidationError:
            return []
        assert normalized is not None
        # every configured key's hash: during a key rotation some rows are not re-keyed yet
        digests = self.cipher.lookup_hashes("phone", normalized)
        rows = await self.session.execute(
            select(self.table.c.id).where(self.table.c.phone_hash.in_(digests)).order_by(self.table.c.id)
        )
        return list(rows.scalars())

    async def iter_all(self, *, chunk: int = 1000) -> AsyncIterator[P]:
        """Every profile, by id, ``chunk`` rows per query (keyset paging: no long-held cursor)."""
        after: str | None = None
        while True:
            stmt = select(self.table).order_by(self.table.c.id).limit(chunk)
            if after is not None:
                stmt = stmt.where(self.table.c.id > after)
            rows = (await self.session.execute(stmt)).all()
            for row in rows:
                yield self._profile(row)
            if len(rows) < chunk:
                return
            after = rows[-1].id


class EnterpriseRepository(_ProfileRepository[EnterpriseProfile]):
    entity_type = "enterprise"
    table = Base.metadata.tables["enterprises"]

    def _parse(self, doc: dict[str, Any]) -> EnterpriseProfile:
        return parse_enterprise(doc, self._read_ctx)

    def _extra_columns(self, profile: EnterpriseProfile, doc: dict[str, Any]) -> dict[str, Any]:
        # pass the tables in: looking them up per record costs more than the encryption
        return {"industry": profile.industry, "size": profile.effective_size(self._read_ctx.ref.industries)}


class ResidentRepository(_ProfileRepository[ResidentProfile]):
    entity_type = "resident"
    table = Base.metadata.tables["residents"]

    def _parse(self, doc: dict[str, Any]) -> ResidentProfile:
        return parse_resident(doc, self._read_ctx)

    def _extra_columns(self, profile: ResidentProfile, doc: dict[str, Any]) -> dict[str, Any]:
        # a person's name is personal data: stored encrypted, and masked where it is kept in the clear
        masked = mask_name(profile.name)
        doc["id_number"] = None
        doc["name"] = masked
        return {
            "hukou_region": profile.effective_hukou_region, "name": masked,
            "name_enc": self.cipher.encrypt("name", profile.name), **self._seal("id_number", profile.id_number),
        }  # fmt: skip

    def _restore_extra(self, row: Any, doc: dict[str, Any]) -> None:
        doc["id_number"] = self._open("id_number", row.id_number_enc)
        if row.name_enc is not None:
            doc["name"] = self.cipher.decrypt("name", row.name_enc)

    async def find_by_id_number(self, id_number: str) -> str | None:
        """The id of the resident registered with this ID number, or None."""
        digests = self.cipher.lookup_hashes("id_number", id_number.strip().upper())
        return await self.session.scalar(select(self.table.c.id).where(self.table.c.id_number_hash.in_(digests)).limit(1))

    async def _check_conflicts(self, rows: builtins.list[dict[str, Any]]) -> None:
        owners: dict[str, str] = {}
        for row in rows:
            digest = row["id_number_hash"]
            if digest is None:
                continue
            if digest in owners:
                raise RecordConflict(
                    self.entity_type,
                    row["id"],
                    "id_number",
                    "is the same as another resident's in this batch",
                )
            owners[digest] = row["id"]
        if not owners:
            return
        t = self.table
        taken = await self.session.execute(
            select(t.c.id_number_hash, t.c.id).where(t.c.id_number_hash.in_(list(owners)))
        )
        for digest, stored_id in taken:
            if stored_id != owners[digest]:
                raise RecordConflict(
                    self.entity_type, owners[digest], "id_number", "is already registered to another resident"
                )


def profile_repository(
    kind: str, session: AsyncSession, cipher: PiiCipher, *, ref: ReferenceData | None = None
) -> EnterpriseRepository | ResidentRepository:
    """The repository of a profile kind; an unknown kind is an error naming the known ones."""
    if kind == "enterprise":
        return EnterpriseRepository(session, cipher, ref=ref)
    if kind == "resident":
        return ResidentRepository(session, cipher, ref=ref)
    raise InvalidInput(f"profile kind must be enterprise or resident, got {kind!r}")
