"""Saving an engine to a directory and loading it back: numpy ``.npy`` files plus JSON.

Layout of ``path/``: ``meta.json`` (format, audience, ranking parameters, tokenizer fingerprint,
profile ids, vocabularies, policies with their terms, feedback marks, and for a shard's index the terms
of its count of the profiles held elsewhere) and one ``<name>.npy`` per array.  No pickle: ``np.load(allow_pickle=False)``.  A save writes a sibling temporary directory
and renames it into place, so a crash mid-save leaves the previous copy intact.

An index saved by an older format, or cut by a tokenizer with another fingerprint (other
dictionaries or options), is refused with ``ValueError``: its stored tokens are not what this
engine would cut, so it must be rebuilt from the profiles.
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
from ._feedback import FeedbackStore
from ._ranking import Ranking
from ._records import CompiledPolicy
from ._table import ProfileTable
from ._textindex import TextIndex

if TYPE_CHECKING:
    from ._engine import MatchEngine

__all__ = ["FORMAT", "load_state", "save_state"]

#: version 2: field-weighted BM25 text index, new tokens, feedback marks (version 1 is rebuilt)
FORMAT = "policy_push.matchers/2"


def _fingerprint(engine: MatchEngine) -> str | None:
    return getattr(engine.tokenizer, "fingerprint", None) if engine.tokenizer is not None else None


def save_state(engine: MatchEngine, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with engine._lock:
            table_arrays, vocabs = engine.table_.state()
            text_arrays, terms = engine.text_.state()
            fb_arrays, fb_meta = engine.feedback_.state()
            outside = engine.text_.outside_state()  # a shard's count of the profiles held elsewhere
            out_arrays, out_terms = outside if outside is not None else ({}, None)
            arrays = {**{f"table.{k}": v for k, v in table_arrays.items()},
                      **{f"outside.{k}": v for k, v in out_arrays.items()},
                      **{f"text.{k}": v for k, v in text_arrays.items()},
                      **{f"feedback.{k}": v for k, v in fb_arrays.items()}, "hashes": engine.hashes_.a}
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            meta = {"format": FORMAT, "audience": engine.audience.value, "ranking": engine.ranking.to_json(),
                    "tokenizer": _fingerprint(engine), "arrays": sorted(arrays),
                    "row_ids": engine.row_ids_, "vocabs": vocabs, "terms": terms,
                    "policies": engine.policies_.sources(), "feedback": fb_meta, "outside_terms": out_terms}
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


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    src = Path(path)
    with open(src / "meta.json", encoding="utf-8") as f:
        meta: dict[str, Any] = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{src}: not a saved matchers index of format {FORMAT} (found {meta.get('format')!r}); "
                         "rebuild it from the profiles")
    return meta


def load_state(engine: MatchEngine, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
    src = Path(path)
    meta = meta if meta is not None else read_meta(src)
    if meta["audience"] != engine.audience.value:
        raise ValueError(f"{src} holds {meta['audience']} profiles, not {engine.audience.value}")
    mine = _fingerprint(engine)
    if mine is not None and meta.get("tokenizer") not in (None, mine):
        raise ValueError(f"{src}: cut by another tokenizer ({meta.get('tokenizer')}, this one is {mine}); "
                         "rebuild it from the profiles")
    arrays = {name: np.load(src / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
    table = ProfileTable.from_state(engine.audience, engine.regions, engine.industries,
                                    {k[6:]: v for k, v in arrays.items() if k.startswith("table.")}, meta["vocabs"])
    text = TextIndex.from_state({k[5:]: v for k, v in arrays.items() if k.startswith("text.")}, meta["terms"])
    if meta.get("outside_terms") is not None:
        text.set_outside_state({k[8:]: v for k, v in arrays.items() if k.startswith("outside.")}, meta["outside_terms"])
    feedback = FeedbackStore.from_state({k[9:]: v for k, v in arrays.items() if k.startswith("feedback.")},
                                        meta["feedback"])
    with engine._lock:
        engine.table_, engine.text_, engine.feedback_ = table, text, feedback
        engine.hashes_ = Grow(np.uint64, arrays["hashes"])
        engine.row_ids_ = list(meta["row_ids"])
        alive = table.alive.a
        engine.rows_ = {pid: r for r, pid in enumerate(engine.row_ids_) if alive[r]}
        engine._generation += 1
        policies = []
        for item in meta["policies"]:
            compiled = engine.compile_policy({**item["source"], "text": "", "title": "", "summary": "", "categories": []})
            policies.append(CompiledPolicy(compiled.id, compiled.audience, compiled.criteria,
                                           compiled.apply_until, dict(item["terms"]), item["source"]))
        engine.policies_.put(policies)


def saved_ranking(meta: dict[str, Any]) -> Ranking:
    return Ranking.from_json(meta["ranking"])
