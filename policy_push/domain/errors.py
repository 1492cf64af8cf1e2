"""Validation errors of one record, in the shape the API and the import report use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldError", "RecordInvalid"]

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class FieldError:
    loc: Loc
    msg: str

    @property
    def field(self) -> str:
        """Dotted path such as ``contact.phone`` or ``criteria.all.0.op``."""
        return ".".join(str(p) for p in self.loc) or "(record)"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "field": self.field, "msg": self.msg}


class RecordInvalid(ValueError):
    """A record failed validation; ``errors`` names each field and reason."""

    def __init__(self, errors: Sequence[FieldError], record_id: str | None = None) -> None:
        self.errors = list(errors)
        self.record_id = record_id
        super().__init__("; ".join(f"{e.field}: {e.msg}" for e in self.errors))
