"""Operator mistakes turned into one line and a distinct exit code (never a traceback).

The table :class:`Exit` is the public contract of the command line's exit status (documented in
docs/operations.md); :func:`explain` recognises the foreseeable failures anywhere in an exception's
chain (SQLAlchemy wraps the driver's error, asyncio wraps a bind failure) and says what to do.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from policy_push.errors import ConfigurationError, PiiKeyMismatch, SchemaAhead, SchemaOutOfDate

__all__ = ["CommandFailed", "Exit", "Failure", "explain", "settings_errors"]


class Exit(IntEnum):
    """Exit status of ``policy-push``; each foreseeable mistake has its own."""

    OK = 0
    FINDINGS = 1  # ran, and reports something to act on (rejected lines, schema not current in `db status`)
    USAGE = 2  # command line not understood (argparse)
    CONFIG = 3  # settings invalid, config file missing or unreadable, no PII key
    DB_UNREACHABLE = 4  # database server down, host unknown, login refused
    DB_MISSING = 5  # the server is up but the named database does not exist
    SCHEMA = 6  # schema empty, older or newer than the code: `policy-push db upgrade`
    PORT_IN_USE = 7  # the HTTP port is taken
    PII_KEY = 8  # the PII key is not the one the data is encrypted with
    FILES = 9  # an input file is missing, an output file exists (use --force)
    INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Failure:
    code: Exit
    line: str


class CommandFailed(Exception):
    """Raised by a command for a mistake only the command line knows (a busy port, an existing file)."""

    def __init__(self, code: Exit, line: str) -> None:
        super().__init__(line)
        self.code = code
        self.line = line


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (getattr(e, "orig", None), e.__cause__, e.__context__, *getattr(e, "exceptions", ())):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _where(database_url: str) -> str:
    try:
        url = make_url(database_url)
    except Exception:
        return "the configured database"
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"


def _db_name(database_url: str) -> str:
    try:
        return make_url(database_url).database or "?"
    except Exception:
        return "?"


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting, named as the operator sets it (environment variable)."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "settings"
        name = f"POLICY_PUSH_{str(err['loc'][0]).upper()}" if err["loc"] else "settings"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {field!r} (in the config file or environment); see the README's settings table")
        else:
            shown = err.get("input")
            value = "" if isinstance(shown, dict | list) or "key" in field or "secret" in field or "token" in field else f"={shown!r}"
            lines.append(f"bad setting {name}{value}: {msg}")
    return lines


def explain(exc: BaseException, *, database_url: str = "") -> Failure | None:
    """The one-line explanation of a foreseeable failure, or None for a bug (shown with its traceback)."""
    for e in _chain(exc):
        found = _explain_one(e, database_url)
        if found is not None:
            return found
    return None


def _explain_one(e: BaseException, database_url: str) -> Failure | None:
    name = type(e).__name__
    where = _where(database_url)
    if isinstance(e, ValidationError):
        return Failure(Exit.CONFIG, "; ".join(settings_errors(e)))
    if name == "SettingsError":  # pydantic-settings could not even parse a variable (a list, a table)
        return Failure(Exit.CONFIG, f"{str(e).replace('error parsing value for field', 'cannot read setting')}; see the README's settings table")
    if isinstance(e, PiiKeyMismatch):
        return Failure(Exit.PII_KEY, str(e))
    if isinstance(e, SchemaOutOfDate | SchemaAhead):
        return Failure(Exit.SCHEMA, str(e))
    if isinstance(e, CommandFailed):
        return Failure(e.code, e.line)
    if isinstance(e, ConfigurationError):
        return Failure(Exit.CONFIG, str(e))
    if name == "InvalidCatalogNameError":
        db = _db_name(database_url)
        return Failure(Exit.DB_MISSING, f"database {db!r} does not exist on {where}: create it "
                       f"(`createdb {db}`) or fix POLICY_PUSH_DATABASE_URL, then run `policy-push db upgrade`")  # fmt: skip
    if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return Failure(Exit.DB_UNREACHABLE, f"{where} refused the login ({e}); fix the user or password "
                       "in POLICY_PUSH_DATABASE_URL")  # fmt: skip
    if isinstance(e, socket.gaierror):
        return Failure(Exit.DB_UNREACHABLE, f"cannot resolve the database host of {where}; "
                       "fix the host in POLICY_PUSH_DATABASE_URL")  # fmt: skip
    if isinstance(e, ConnectionRefusedError | TimeoutError) or (
        isinstance(e, OSError) and e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
    ):
        return Failure(Exit.DB_UNREACHABLE, f"cannot reach {where} (connection refused): start the database "
                       "server or fix POLICY_PUSH_DATABASE_URL")  # fmt: skip
    if name == "OperationalError" and "unable to open database file" in str(e):
        return Failure(Exit.DB_UNREACHABLE, f"cannot open {where}: check that POLICY_PUSH_DATA_DIR exists "
                       "and is writable")  # fmt: skip
    if isinstance(e, PermissionError | FileNotFoundError) and database_url.startswith("sqlite"):
        return Failure(Exit.DB_UNREACHABLE, f"cannot create {where} ({e.strerror}): set POLICY_PUSH_DATA_DIR "
                       "to a writable directory")  # fmt: skip
    return None
