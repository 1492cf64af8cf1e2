"""Canonical JSON: the one text a value's hash is taken over (keys sorted, no spaces, characters as they
are), so that equal content always hashes equal — a record's content hash, an approval's hash and the
audit chain's row digests all use it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

__all__ = ["HashedRecord", "canonical_json"]


#: made once: ``json.dumps`` with options builds a new encoder per call (a list hash calls it per row)
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(value)


class HashedRecord(BaseModel):
    """A record in the formats.md shape with a hash of its content (re-imports of equal content change nothing)."""

    def to_json(self) -> dict[str, Any]:
        """The formats.md shape, ready for ``json.dumps``."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON; equal content, equal hash."""
        return hashlib.sha256(canonical_json(self.to_json()).encode()).hexdigest()
