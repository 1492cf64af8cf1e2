"""Storage errors.  Messages name the record and the field, never a personal value."""

from __future__ import annotations

__all__ = ["AlreadyExists", "Conflict", "StorageError"]


class StorageError(Exception):
    """Base of the errors the repositories raise on purpose."""


class AlreadyExists(StorageError):
    """``create`` was asked for an id that is already stored."""

    def __init__(self, entity_type: str, entity_id: str) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        super().__init__(f"{entity_type} {entity_id!r} already exists")


class Conflict(StorageError):
    """The record contradicts stored data or another record of the same batch, e.g. an ID
    number already registered to another resident.  ``field`` names what collides."""

    def __init__(self, entity_type: str, entity_id: str, field: str, reason: str) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.field = field
        self.reason = reason
        super().__init__(f"{entity_type} {entity_id!r}: {field} {reason}")
