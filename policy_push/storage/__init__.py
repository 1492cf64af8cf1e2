"""Storage: tables, migrations and repositories over SQLite (embedded) and PostgreSQL.

Repositories never commit; callers wrap them in ``async with session.begin():`` so that a
rejected record leaves everything stored as it was.
"""

# intake's tables join Base.metadata wherever storage is imported (migrations, schema checks)
from . import intake_tables as _intake_tables  # noqa: F401
from .audit import AuditLog
from .engine import create_engine, database_url, session_factory
from .errors import AlreadyExists, Conflict, StorageError
from .policies import PolicyRepository
from .profiles import EnterpriseRepository, ResidentRepository
from .records import AuditEntry, Outcome, PolicyVersion, StoredPolicy, UpsertResult
from .schema import SchemaAhead, SchemaOutOfDate, SchemaStatus, require_current_schema, schema_status, upgrade

__all__ = [
    "AlreadyExists",
    "AuditEntry",
    "AuditLog",
    "Conflict",
    "EnterpriseRepository",
    "Outcome",
    "PolicyRepository",
    "PolicyVersion",
    "ResidentRepository",
    "SchemaAhead",
    "SchemaOutOfDate",
    "SchemaStatus",
    "StorageError",
    "StoredPolicy",
    "UpsertResult",
    "create_engine",
    "database_url",
    "require_current_schema",
    "schema_status",
    "session_factory",
    "upgrade",
]
