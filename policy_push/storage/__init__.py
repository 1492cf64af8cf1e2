"""Storage: tables, migrations, repositories of policies and profiles, and the data access of the send
pipeline (``campaigns``, ``deliveries``, ``delivery_history``, ``contacts``, ``receipts``, ``changes``) over SQLite
and PostgreSQL.

Nothing here commits: callers wrap the calls in ``async with session.begin():`` so that a rejected
record leaves everything stored as it was.
"""

# the send pipeline's tables live in their own module; importing it with the package puts them on
# Base.metadata wherever any storage module is loaded (migrations, schema checks)
from . import campaign_tables as campaign_tables

# intake's tables join Base.metadata wherever storage is imported (migrations, schema checks)
from . import intake_tables as _intake_tables  # noqa: F401

# the PII key fingerprints (key rotation) join Base.metadata the same way
from . import key_tables as _key_tables  # noqa: F401

# staff accounts and API tokens (policy_push.staff)
from . import staff_tables as _staff_tables  # noqa: F401

# so do the subscribers' tables (issue 12)
from . import subscriber_tables as _subscriber_tables  # noqa: F401
from .audit import AuditLog
from .engine import create_engine, database_url, session_factory
from .policies import PolicyRepository
from .profiles import EnterpriseRepository, ResidentRepository, profile_repository
from .records import AuditEntry, Outcome, PolicyVersion, StoredPolicy, UpsertResult
from .schema import SchemaStatus, require_current_schema, schema_status, upgrade

__all__ = [
    "AuditEntry",
    "AuditLog",
    "EnterpriseRepository",
    "Outcome",
    "PolicyRepository",
    "PolicyVersion",
    "ResidentRepository",
    "SchemaStatus",
    "StoredPolicy",
    "UpsertResult",
    "create_engine",
    "database_url",
    "profile_repository",
    "require_current_schema",
    "schema_status",
    "session_factory",
    "upgrade",
]
