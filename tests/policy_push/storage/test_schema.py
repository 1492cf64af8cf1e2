from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.errors import SchemaAhead, SchemaOutOfDate
from policy_push.storage import (
    create_engine,
    require_current_schema,
    schema_status,
    upgrade,
)
from policy_push.storage.schema import alembic_config, head_revision
from policy_push.storage.tables import Base

EXPECTED_TABLES = {
    "alembic_version",
    "audit_head",
    "audit_log",
    "campaign_messages",
    "campaign_recipients",
    "campaigns",
    "change_counter",
    "rate_windows",
    "changes",
    "shards",
    "deliveries",
    "inbound_messages",
    "delivery_events",
    "early_receipts",
    "intake_document_versions",
    "intake_documents",
    "staff_accounts",
    "staff_tokens",
    "pii_keys",
    "intake_fetch_state",
    "review_items",
    "enterprises",
    "feedback",
    "opt_outs",
    "policies",
    "policy_categories",
    "policy_regions",
    "policy_versions",
    "provider_switches",
    "residents",
    "subscriber_accounts",
    "subscriber_codes",
    "subscriber_consents",
    "subscriber_links",
    "subscriber_preferences",
    "subscriber_sessions",
}


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_migrated_database_is_current(engine: AsyncEngine) -> None:
    status = await schema_status(engine)
    assert status.is_current and status.current == status.head == head_revision()
    assert await require_current_schema(engine) == status


async def test_upgrade_from_empty(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        status = await schema_status(engine)
        assert status.current is None and not status.is_current
        with pytest.raises(SchemaOutOfDate, match="run `policy-push db upgrade`"):
            await require_current_schema(engine)

        status = await upgrade(engine)
        assert status.is_current
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == EXPECTED_TABLES
        # a second upgrade is a no-op
        assert (await upgrade(empty_db_url)).is_current
    finally:
        await engine.dispose()


def _diff(conn: Connection) -> list[object]:
    return list(
        compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    )


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    """tables.py and the migrations describe the same schema (else: write a migration)."""
    async with engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        await upgrade(engine)

        def down(conn: Connection) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")

        async with engine.begin() as conn:
            await conn.run_sync(down)
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == {"alembic_version"}
        assert (await schema_status(engine)).current is None
        assert (await upgrade(engine)).is_current
    finally:
        await engine.dispose()


async def test_database_from_newer_code_is_refused(empty_db_url: str) -> None:
    # its own database: the shared test schema must stay at head for every other test
    engine = create_engine(empty_db_url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
        with pytest.raises(SchemaAhead, match="upgrade policy_push") as info:
            await require_current_schema(engine)
    finally:
        await engine.dispose()
    assert isinstance(info.value, SchemaOutOfDate)


def test_out_of_date_message_names_both_revisions_and_the_fix() -> None:
    msg = str(SchemaOutOfDate("0001", "0002"))
    assert msg == "the database is at revision 0001, the code needs 0002: run `policy-push db upgrade`"
    assert "policy-push db upgrade" in str(SchemaOutOfDate(None, "0002"))


async def test_upgrade_is_quiet(empty_db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    await upgrade(empty_db_url)
    assert not [r for r in caplog.records if r.name.startswith("alembic")]


async def test_rows_an_older_version_left_sending_are_asked_about_not_resent(empty_db_url: str) -> None:
    """Migration 0004: a row ``sending`` under 0003 (no leases, no call marks) gets a lease that has
    ended and counts as unsure since its claim, so settle asks its provider instead of resending it."""
    engine = create_engine(empty_db_url)
    try:
        await upgrade(engine, revision="0003")
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO policies (id, version, audience, title, categories, urgent, content_hash, document, "
                "created_at, updated_at) VALUES ('p1', 1, 'resident', 't', '[]', false, 'h', '{}', "
                "'2026-11-30 08:00:00', '2026-11-30 08:00:00')"
            ))  # fmt: skip
            await conn.execute(text(
                "INSERT INTO campaigns (id, policy_id, policy_version, audience, purpose, state, urgent, prepared_by, "
                "summary, created_at, updated_at) VALUES ('c1', 'p1', 1, 'resident', 'announce', 'sending', false, "
                "'alice', '{}', '2026-11-30 08:00:00', '2026-11-30 08:00:00')"
            ))
            await conn.execute(text(
                "INSERT INTO deliveries (id, campaign_id, policy_id, profile_kind, profile_id, channel, purpose, status, "
                "attempts, not_before, claimed_at, claimed_by, provider, created_at, updated_at) VALUES "
                "('d1', 'c1', 'p1', 'resident', 'r1', 'app', 'announce', 'sending', 0, '2026-11-30 08:00:00', "
                "'2026-11-30 09:00:00', 'old-worker', 'jpush', '2026-11-30 08:00:00', '2026-11-30 09:00:00')"
            ))  # fmt: skip
        await upgrade(engine)
        async with engine.connect() as conn:
            lease, unsure, claimed = (await conn.execute(
                text("SELECT lease_until, unsure_since, claimed_at FROM deliveries WHERE id = 'd1'")
            )).one()  # fmt: skip
        assert lease is not None and unsure is not None and str(unsure) == str(claimed) == str(lease)
    finally:
        await engine.dispose()


async def test_foreign_keys_are_on_again_after_an_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}")
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()
