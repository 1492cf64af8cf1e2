"""The match index on disk, under ``settings.data_dir / "index"``::

    index/CURRENT                 the name of the generation to load
    index/<generation>/enterprise/   MatchEngine.save output: columns, persisted tokens, TF-IDF
    index/<generation>/resident/
    index/<generation>/manifest.json which database it mirrors, how far (a ``Mark`` per profile
                                  table), the content hash of every policy whose tokens it holds,
                                  and the shard and shard map it was built for (a shard's engines
                                  also hold its count of the profiles held elsewhere)

Each save writes a new generation and then points ``CURRENT`` at it by rename, so a crash
mid-save, or two processes sharing a data directory, never pair one save's engines with
another's marks.  Older generations are removed once they are a while old.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
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
# a generation this old is no longer being written by anyone: safe to remove
_STALE_S = 600


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
    #: ``name:map fingerprint`` of the shard whose profiles it holds, or None (every profile)
    shard: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "database": self.database,
            "marks": {k: m.to_json() for k, m in self.marks.items()},
            "policies": self.policies,
            "shard": self.shard,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a match index manifest (format {data.get('format')!r})")
        return cls(
            database=str(data["database"]),
            marks={k: Mark.from_json(v) for k, v in data.get("marks", {}).items()},
            policies=dict(data.get("policies") or {}),
            shard=data.get("shard"),
        )


class IndexStore:
    """Saving and loading the engines of both audiences with their manifest (blocking I/O:
    call from an executor)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def _pointer(self) -> Path:
        return self.path / "CURRENT"

    def current(self) -> Path | None:
        """The directory of the generation to load, if any."""
        try:
            name = self._pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return self.path / name if name else None

    def save(self, engines: dict[str, MatchEngine], manifest: Manifest) -> None:
        name = f"gen-{time.time_ns()}-{os.getpid()}"
        target = self.path / name
        target.mkdir(parents=True)
        for audience, engine in engines.items():
            engine.save(target / audience)
        (target / "manifest.json").write_text(json.dumps(manifest.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp = self.path / f".CURRENT.{os.getpid()}.tmp"
        tmp.write_text(name, encoding="utf-8")
        os.replace(tmp, self._pointer)
        self._remove_old(keep=name)

    def _remove_old(self, keep: str) -> None:
        current = self.current()
        skip = {keep, current.name if current is not None else keep}
        for entry in self.path.glob("gen-*"):
            # older than ours, or abandoned; a newer one may be another process's save in progress
            if entry.name not in skip and (entry.name < keep or time.time() - entry.stat().st_mtime > _STALE_S):
                shutil.rmtree(entry, ignore_errors=True)

    def load(self, database: str, hier: Hierarchies, tokenizer: CountingTokenizer,
             shard: str | None = None) -> tuple[dict[str, MatchEngine], Manifest] | None:
        """The saved engines and manifest, or None (and why, in the log) when there is no usable
        index for ``database`` and ``shard`` (``Manifest.shard``): the caller then builds one from scratch."""
        where = self.current()
        if where is None:
            return None
        try:
            manifest = Manifest.from_json(json.loads((where / "manifest.json").read_text(encoding="utf-8")))
            if manifest.database != database:
                log.info("match index at %s mirrors another database; rebuilding", self.path)
                return None
            if manifest.shard != shard:
                # another shard's profiles, or a map that has moved regions since: not what this node holds
                log.info("match index at %s was built for shard %s, this node holds %s; rebuilding",
                         self.path, manifest.shard or "(none: every profile)", shard or "every profile")
                return None
            engines = {
                a: MatchEngine.load(where / a, hier.regions, hier.industries, tokenizer.as_tokenizer())
                for a in AUDIENCES
            }
        except (OSError, ValueError, KeyError) as exc:
            # a damaged or older-format index is rebuilt, never trusted
            log.warning("match index at %s is unusable (%s); rebuilding", self.path, type(exc).__name__)
            return None
        return engines, manifest
