"""Saving an engine to a directory and loading it back: numpy ``.npy`` files plus JSON.

Layout of ``path/``: ``meta.json`` (format, audience, profile ids, vocabularies, policies with
their tokens) and one ``<name>.npy`` per array.  No pickle: ``np.load(allow_pickle=False)``.
A save writes a sibling temporary directory and renames it into place, so a crash mid-save
leaves the previous copy intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._columns import Grow
from ._records import CompiledPolicy
from ._table import ProfileTable
from ._tfidf import TfidfIndex

if TYPE_CHECKING:
    from ._engine import MatchEngine

__all__ = ["FORMAT", "load_state", "save_state"]

FORMAT = "policy_push.matchers/1"


def save_state(engine: MatchEngine, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with engine._lock:
            table_arrays, vocabs = engine.table_.state()
            tfidf_arrays, terms = engine.tfidf_.state()
            arrays = {**{f"table.{k}": v for k, v in table_arrays.items()},
                      **{f"tfidf.{k}": v for k, v in tfidf_arrays.items()}, "hashes": engine.hashes_.a}
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            meta = {"format": FORMAT, "audience": engine.audience.value, "arrays": sorted(arrays),
                    "row_ids": engine.row_ids_, "vocabs": vocabs, "terms": terms,
                    "policies": engine.policies_.sources()}
        with open(tmp / "meta.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_state(engine: MatchEngine, path: str | os.PathLike[str]) -> None:
    src = Path(path)
    with open(src / "meta.json", encoding="utf-8") as f:
        meta: dict[str, Any] = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{src}: not a saved matchers index (format {meta.get('format')!r})")
    if meta["audience"] != engine.audience.value:
        raise ValueError(f"{src} holds {meta['audience']} profiles, not {engine.audience.value}")
    arrays = {name: np.load(src / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    table = ProfileTable.from_state(engine.audience, engine.regions, engine.industries,
                                    {k[6:]: v for k, v in arrays.items() if k.startswith("table.")}, meta["vocabs"])
    tfidf = TfidfIndex.from_state({k[6:]: v for k, v in arrays.items() if k.startswith("tfidf.")}, meta["terms"])
    with engine._lock:
        engine.table_, engine.tfidf_ = table, tfidf
        engine.hashes_ = Grow(np.uint64, arrays["hashes"])
        engine.row_ids_ = list(meta["row_ids"])
        alive = table.alive.a
        engine.rows_ = {pid: r for r, pid in enumerate(engine.row_ids_) if alive[r]}
        engine._generation += 1
        policies = []
        for item in meta["policies"]:
            compiled = engine.compile_policy({**item["source"], "text": "", "title": "", "summary": ""})
            policies.append(CompiledPolicy(compiled.id, compiled.audience, compiled.criteria,
                                           compiled.apply_until, tuple(item["tokens"]), item["source"]))
        engine.policies_.put(policies)
