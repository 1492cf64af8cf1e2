"""The baselines the engine is measured against: a plain per-profile Python loop, and SQLite FTS5."""

from __future__ import annotations

import datetime as dt
import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any


def _years(born: str | None, on: dt.date) -> int | None:
    if born is None:
        return None
    b = dt.date.fromisoformat(born)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def _chain(code: str, parents: Mapping[str, str]) -> set[str]:
    out = {code}
    while parents.get(code) and parents[code] not in out:  # some cities list themselves as parent
        code = parents[code]
        out.add(code)
    return out


def naive_eval(node: Mapping[str, Any], rec: Mapping[str, Any], on: dt.date, parents: Mapping[str, str]) -> bool | None:
    """Per-profile Kleene evaluation of the subset of the language the benchmark policies use."""
    if "all" in node:
        vals = [naive_eval(c, rec, on, parents) for c in node["all"]]
        return False if False in vals else None if None in vals else True
    f, op, v = node["field"], node["op"], node["value"]
    x = _years(rec.get("birth_date"), on) if f == "age" else rec.get(f)
    if x is None:
        return None
    if op == "within":
        return bool(_chain(x, parents) & set(v))
    if op == "in":
        return x in v
    if op == "has_any":
        return bool(set(x) & set(v))
    if op == "between":
        return (v[0] is None or x >= v[0]) and (v[1] is None or x <= v[1])
    raise ValueError(op)


def naive_match(policy: Mapping[str, Any], records: Sequence[Mapping[str, Any]], vectors: Sequence[dict[str, float]],
                query: dict[str, float], on: dt.date, parents: Mapping[str, str], k: int = 100) -> list[tuple[float, str]]:
    """Loop over every profile: criteria, then a dict cosine for the eligible; top ``k``."""
    best: list[tuple[float, str]] = []
    for rec, vec in zip(records, vectors, strict=True):
        if naive_eval(policy["criteria"], rec, on, parents) is True:
            s = sum(w * query.get(t, 0.0) for t, w in vec.items())
            if len(best) < k:
                heapq.heappush(best, (s, rec["id"]))
            elif s > best[0][0]:
                heapq.heapreplace(best, (s, rec["id"]))
    return sorted(best, reverse=True)


def fts_build(records: Sequence[Mapping[str, Any]], token_texts: Sequence[str]) -> sqlite3.Connection:
    """In-memory SQLite: a profile table with region levels, and an FTS5 table of the tokens."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE p(rowid INTEGER PRIMARY KEY, id TEXT, province TEXT, city TEXT, county TEXT,"
               " size TEXT, tags TEXT, born TEXT)")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61')")
    rows = []
    for i, r in enumerate(records):
        reg = r.get("region") or ""
        tags = r.get("qualifications", r.get("tags"))
        rows.append((i, r["id"], reg[:2] + "0000" if reg else None, reg[:4] + "00" if reg else None,
                     reg[:6] or None, r.get("size"), None if tags is None else "|" + "|".join(tags) + "|",
                     r.get("birth_date")))
    db.executemany("INSERT INTO p VALUES (?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", enumerate(token_texts))
    db.execute("CREATE INDEX p_city ON p(city)")
    db.commit()
    return db


def fts_match(db: sqlite3.Connection, policy: Mapping[str, Any], terms: Sequence[str], on: dt.date,
              k: int = 100) -> list[tuple[str, float]]:
    """bm25 over the policy's terms with the criteria as a WHERE filter."""
    where, args = [], []
    for c in policy["criteria"]["all"]:
        f, op, v = c["field"], c["op"], c["value"]
        if f == "region":
            ors = []
            for code in v:
                col = "province" if code.endswith("0000") else "city" if code.endswith("00") else "county"
                ors.append(f"p.{col} = ?")
                args.append(code)
            where.append("(" + " OR ".join(ors) + ")")
        elif op == "in":
            where.append(f"p.{f} IN ({','.join('?' * len(v))})")
            args.extend(v)
        elif op == "has_any":
            where.append("(" + " OR ".join("p.tags LIKE ?" for _ in v) + ")")
            args.extend(f"%|{t}|%" for t in v)
        elif f == "age":
            lo, hi = v
            if lo is not None:
                where.append("p.born <= ?")
                args.append(on.replace(year=on.year - lo).isoformat())
            if hi is not None:
                where.append("p.born > ?")
                args.append(on.replace(year=on.year - hi - 1).isoformat())
    match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms if t.replace('"', ""))
    if not match:
        return []  # nothing to rank by
    sql = (f"SELECT p.id, bm25(t) AS s FROM t JOIN p ON p.rowid = t.rowid WHERE t MATCH ? AND {' AND '.join(where)}"
           f" ORDER BY s LIMIT {k}")
    return db.execute(sql, [match, *args]).fetchall()


def vector_dicts(engine: Any) -> list[dict[str, float]]:
    """Each row's unit text vector as a dict (what a naive implementation would keep)."""
    terms = engine.text_.terms_
    out = []
    for r in range(engine.text_.n_rows):
        ids, w = engine.text_.row_vector(r)
        out.append({terms[i]: float(x) for i, x in zip(ids, w, strict=True)})
    return out


