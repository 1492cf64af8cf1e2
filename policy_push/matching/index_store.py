"""The match index on disk, under ``settings.data_dir / "index"``::

    index/enterprise/   MatchEngine.save output: columns, persisted tokens, TF-IDF, policies
    index/resident/
    index/manifest.json which database it mirrors, how far (a ``Mark`` per profile table) and
                        the content hash of every policy whose tokens the engines hold

The manifest is written last, by rename: a crash mid-save leaves an older manifest, whose
marks only make the next start catch up on a little more than it needs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from matchers import MatchEngine

from .engines import AUDIENCES, CountingTokenizer, Hierarchies
from .sync import Mark

__all__ = ["IndexStore", "Manifest", "database_key"]

log = logging.getLogger("policy_push.matching")

_FORMAT = "policy_push.match_index/1"


def database_key(url: Any) -> str:
    """A fingerprint of the database an index mirrors: the URL (schema included, password not)."""
    shown = make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Manifest:
    database: str
    marks: dict[str, Mark] = field(default_factory=dict)
    #: policy id -> content hash of the version whose tokens the saved engines hold
    policies: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "database": self.database,
            "marks": {k: m.to_json() for k, m in self.marks.items()},
            "policies": self.policies,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a match index manifest (format {data.get('format')!r})")
        return cls(
            database=str(data["database"]),
            marks={k: Mark.from_json(v) for k, v in data.get("marks", {}).items()},
            policies=dict(data.get("policies") or {}),
        )


class IndexStore:
    """Saving and loading the engines of both audiences with their manifest (blocking I/O:
    call from an executor)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def save(self, engines: dict[str, MatchEngine], manifest: Manifest) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for audience, engine in engines.items():
            engine.save(self.path / audience)
        tmp = self.path / f".manifest.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def load(self, database: str, hier: Hierarchies, tokenizer: CountingTokenizer) -> tuple[dict[str, MatchEngine], Manifest] | None:
        """The saved engines and manifest, or None (and why, in the log) when there is no usable
        index for ``database``: the caller then builds one from scratch."""
        if not self.manifest_path.is_file():
            return None
        try:
            manifest = Manifest.from_json(json.loads(self.manifest_path.read_text(encoding="utf-8")))
            if manifest.database != database:
                log.info("match index at %s mirrors another database; rebuilding", self.path)
                return None
            engines = {
                a: MatchEngine.load(self.path / a, hier.regions, hier.industries, tokenizer.as_tokenizer())
                for a in AUDIENCES
            }
        except (OSError, ValueError, KeyError) as exc:
            # a damaged or older-format index is rebuilt, never trusted
            log.warning("match index at %s is unusable (%s); rebuilding", self.path, type(exc).__name__)
            return None
        return engines, manifest
