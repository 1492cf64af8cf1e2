"""The engine against another revision of itself, in one process and one run:
``python -m bench.matching.against REV [--sizes 1000000] [--audiences enterprise resident]``.

The other revision's ``matchers`` package is taken from git (``git archive REV matchers``) into a
temporary directory and imported under another name; both engines index the same profiles and
answer the same policies, one call each in turn.  On a shared machine this is the comparison
that load does not distort: both sides see the same neighbours.  ``--saved`` loads both engines
from the index ``python -m bench.matching`` saved in ``--workdir`` instead of building them twice
(at 1,000,000 profiles two builds take minutes and more memory than one machine may spare).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import importlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .generate import REFDATA, policies, write_enterprises, write_residents
from .run import ROOT, pct

ON = dt.date(2026, 11, 26)


def load_revision(rev: str, into: Path) -> Any:
    """The ``matchers`` package of ``rev``, importable as ``matchers_<rev>``."""
    raw = subprocess.run(["git", "archive", rev, "matchers"], cwd=ROOT, capture_output=True, check=True).stdout
    name = "matchers_" + "".join(c if c.isalnum() else "_" for c in rev)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(into, filter="data")
    (into / "matchers").rename(into / name)
    sys.path.insert(0, str(into))
    return importlib.import_module(name)


def _hierarchies(mod: Any) -> tuple[Any, Any]:
    with open(REFDATA / "regions.csv", encoding="utf-8") as f:
        regions = mod.Hierarchy.from_pairs((r["code"], r["parent_code"], r["name"]) for r in csv.DictReader(f))
    with open(REFDATA / "industries.csv", encoding="utf-8") as f:
        industries = mod.Hierarchy.from_pairs((r["code"], r["parent"], r["name"]) for r in csv.DictReader(f))
    return regions, industries


def build(mod: Any, audience: str, records: list[dict[str, Any]]) -> Any:
    return mod.MatchEngine(audience, *_hierarchies(mod), mod.Tokenizer(), n_jobs=2).fit(records)


def parse_args(prog: str, argv: list[str] | None, default_size: int) -> argparse.Namespace:
    """The options both comparisons take (this one and ``bench.matching.cputime``)."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("rev", help="a git revision, e.g. main")
    ap.add_argument("--sizes", type=int, nargs="+", default=[default_size])
    ap.add_argument("--audiences", nargs="+", default=["enterprise", "resident"])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "policy_push_bench")
    ap.add_argument("--saved", action="store_true",
                    help="load both engines from the index `python -m bench.matching` saved in --workdir "
                         "(index_<audience>_<size>) instead of building them: no build, one index in memory per engine")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def engine_pairs(args: argparse.Namespace, other: Any) -> Iterator[tuple[int, str, dict[str, Any], dict[str, list[Any]]]]:
    """For each size and audience: ``(n, audience, engines, compiled)`` with this tree's engine and
    ``other``'s (keys ``this`` / ``other``) over the same profiles, 20 policies compiled by each and
    answered once (warm).  The engines are dropped when the caller asks for the next pair."""
    import matchers

    with open(ROOT / "tests" / "data" / "sample" / "policies.jsonl", encoding="utf-8") as f:
        sample = [json.loads(line) for line in f]
    for n in args.sizes:
        for audience in args.audiences:
            path = args.workdir / f"{audience}_{n}.jsonl"
            if not path.exists() and not args.saved:
                (write_enterprises if audience == "enterprise" else write_residents)(path, n)
            engines = {}
            for key, mod in (("this", matchers), ("other", other)):
                if args.saved:
                    engines[key] = mod.MatchEngine.load(args.workdir / f"index_{audience}_{n}", *_hierarchies(mod))
                    continue
                # the parsed records are read again for each engine and dropped after it is built: two
                # engines and one copy of the records, never two engines' build transients on top of the
                # records (a 1M enterprise run stays under 6 GB)
                with open(path, encoding="utf-8") as f:
                    records = [json.loads(line) for line in f]
                engines[key] = build(mod, audience, records)
                del records
                gc.collect()
            pols = policies(20, audience, sample)
            compiled = {k: [e.compile_policy(p) for p in pols] for k, e in engines.items()}
            for k, e in engines.items():
                for cp in compiled[k]:
                    e.match_policy(cp, on=ON, top_k=100)
            yield n, audience, engines, compiled
            del engines, compiled
            gc.collect()


@contextmanager
def other_revision(rev: str) -> Iterator[Any]:
    """The ``matchers`` package of ``rev`` (``load_revision``), from a temporary directory kept for the ``with``."""
    with tempfile.TemporaryDirectory() as tmp:
        yield load_revision(rev, Path(tmp))


def print_head(args: argparse.Namespace, timing: str, columns: Sequence[str]) -> None:
    """The title (what is compared, how it is timed, the day) and the table head of both comparisons."""
    print(f"# this tree against {args.rev}: policy -> profiles, top-100, 20 policies x {args.repeat}, "
          f"calls interleaved{timing} | {dt.date.today()}\n")
    print(f"| audience | profiles | {' | '.join(columns)} |")
    print("|---|---:|" + "---:|" * len(columns))


def ms(samples: list[float]) -> str:
    """Median / p99 of call times given in seconds, in milliseconds."""
    return f"{pct(samples, 50) * 1e3:.2f} / {pct(samples, 99) * 1e3:.2f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args("python -m bench.matching.against", argv, 1_000_000)
    with other_revision(args.rev) as other:
        print_head(args, "", ["this tree median / p99 ms", f"{args.rev} median / p99 ms"])
        for n, audience, engines, compiled in engine_pairs(args, other):
            times: dict[str, list[float]] = {"this": [], "other": []}
            for _ in range(args.repeat):
                for i in range(len(compiled["this"])):
                    for k, e in engines.items():
                        t = time.perf_counter()
                        e.match_policy(compiled[k][i], on=ON, top_k=100)
                        times[k].append(time.perf_counter() - t)
            cells = [ms(times[k]) for k in ("this", "other")]
            print(f"| {audience} | {n:,} | {cells[0]} | {cells[1]} |", flush=True)
            del engines, compiled  # before the next pair is built


if __name__ == "__main__":
    main()
