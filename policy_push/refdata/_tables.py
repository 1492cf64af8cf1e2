from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["CodeTable", "ReferenceData", "load_reference_data", "shipped_path"]


@functools.cache
def shipped_path(name: str) -> Path:
    """Path of a table shipped in ``policy_push/refdata/data``."""
    return Path(str(resources.files("policy_push.refdata") / "data" / name))


@dataclass(frozen=True, slots=True)
class CodeTable:
    """A code hierarchy: code -> name, code -> parent code, code -> level."""

    names: dict[str, str]
    parents: dict[str, str]
    levels: dict[str, str]
    source: str

    def __contains__(self, code: object) -> bool:
        return code in self.names

    def __len__(self) -> int:
        return len(self.names)

    def name(self, code: str) -> str:
        return self.names.get(code, code)

    def ancestors(self, code: str) -> list[str]:
        """The parent chain of ``code``, nearest first, not including ``code`` itself."""
        chain: list[str] = []
        seen = {code}
        parent = self.parents.get(code, "")
        while parent and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self.parents.get(parent, "")
        return chain

    def is_within(self, code: str, ancestor: str) -> bool:
        return code == ancestor or ancestor in self.ancestors(code)

    def triples(self) -> list[tuple[str, str, str]]:
        """(code, parent, name) for every code, the form the matching engine takes."""
        return [(c, self.parents.get(c, ""), n) for c, n in self.names.items()]


def _read_table(path: Path, parent_column: str) -> CodeTable:
    names: dict[str, str] = {}
    parents: dict[str, str] = {}
    levels: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "name", parent_column, "level"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for row in reader:
            code = row["code"].strip()
            if not code:
                continue
            names[code] = row["name"].strip()
            parent = (row[parent_column] or "").strip()
            if parent:
                parents[code] = parent
            levels[code] = row["level"].strip()
    return CodeTable(names=names, parents=parents, levels=levels, source=str(path))


@dataclass(frozen=True, slots=True)
class ReferenceData:
    regions: CodeTable
    industries: CodeTable


@functools.lru_cache(maxsize=8)
def _load(regions_path: Path, industries_path: Path) -> ReferenceData:
    return ReferenceData(
        regions=_read_table(regions_path, "parent_code"),
        industries=_read_table(industries_path, "parent"),
    )


def load_reference_data(regions_csv: Path | None = None, industries_csv: Path | None = None) -> ReferenceData:
    """The reference tables, read once per pair of paths; ``None`` means the shipped table."""
    return _load(
        Path(regions_csv) if regions_csv else shipped_path("regions.csv"),
        Path(industries_csv) if industries_csv else shipped_path("industries.csv"),
    )
