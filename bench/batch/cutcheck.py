"""jieba_fast's C route search against jieba's own cut: ``python -m bench.batch.cutcheck [--n 20000]``.

The tokenizer (``matchers.Tokenizer``) cuts each block with jieba_fast's C best-route search when
the ``fast`` extra is installed, over jieba 0.42.1's dictionary plus the shipped policy terms.
This compares, block by block, that cut with ``jieba.Tokenizer.cut(block, HMM=False)`` (what the
engine used before, and still uses without the extra) on:

* the blocks of ``--n`` realistic business scopes, ``--n`` enterprise interests and ``--n``
  resident interests from ``bench.textgen`` (non-repeating text),
* every string in the sample and test data files (``policy_push/sample``, ``tests/data``),
* every term of the shipped policy dictionary, as a block of its own;

then the full ``tokens()`` (joining, sub-words, stop words) of every text with both, and prints
how many blocks differ (with the first few) and the CPU time of each cut.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

from bench.textgen import ScopeGen
from matchers import Tokenizer
from matchers._text import _BLOCK, C_DAG_CAP, fast_route_available, max_prefix_words

ROOT = Path(__file__).resolve().parents[2]


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def data_texts() -> list[str]:
    """Every string value in the sample and test data files (JSON lines or JSON)."""
    out: list[str] = []
    for base in (ROOT / "policy_push" / "sample", ROOT / "tests" / "data"):
        for path in sorted(base.rglob("*.json*")):
            raw = path.read_text(encoding="utf-8")
            docs = []
            if path.suffix == ".json":
                try:
                    docs = [json.loads(raw)]
                except ValueError:
                    continue
            else:
                for line in raw.splitlines():
                    try:
                        docs.append(json.loads(line))
                    except ValueError:
                        continue  # the "bad" fixtures hold broken lines on purpose
            for d in docs:
                out.extend(_strings(d))
    return out


def generated_texts(n: int, seed: int = 20261130) -> list[str]:
    gen = ScopeGen(seed)
    return ([gen.scope() for _ in range(n)] + [gen.enterprise_interests() for _ in range(n)]
            + [gen.resident_interests() for _ in range(n)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="texts of each generated kind")
    args = ap.parse_args(argv)
    if not fast_route_available():
        raise SystemExit("jieba_fast is not installed: pip install -e '.[fast]'")
    fast, slow = Tokenizer(), Tokenizer(fast=False)
    if not fast.fast:
        raise SystemExit("the tokenizer refused the C route (a dictionary word has more than "
                         f"{C_DAG_CAP} dictionary prefixes)")
    texts = generated_texts(args.n) + data_texts()
    blocks = sorted({b for t in texts for b in _BLOCK.findall(t)} | {t.split()[0] for t in fast.terms})
    t0 = time.process_time()
    got_fast = [fast.cut(b) for b in blocks]
    t_fast = time.process_time() - t0
    t0 = time.process_time()
    got_slow = [slow.cut(b) for b in blocks]
    t_slow = time.process_time() - t0
    differ = [(b, f, s) for b, f, s in zip(blocks, got_fast, got_slow, strict=True) if f != s]
    tok_differ = sum(1 for t in texts if fast.tokens(t) != slow.tokens(t))
    chars = sum(map(len, blocks))
    print(f"# jieba_fast C route against jieba {__import__('jieba').__version__}, HMM off, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# most dictionary prefixes of one word: {max_prefix_words(fast._jieba.FREQ)} (C keeps {C_DAG_CAP})")
    print()
    print("| texts | distinct blocks | chars | blocks cut differently | texts tokenised differently "
          "| jieba cut CPU s | C route cut CPU s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(texts):,} | {len(blocks):,} | {chars:,} | {len(differ):,} | {tok_differ:,} | {t_slow:.2f} "
          f"| {t_fast:.2f} | ×{t_slow / t_fast:.1f} |")
    for b, f, s in differ[:10]:
        print(f"#   {b}: C {'/'.join(f)} | jieba {'/'.join(s)}")
    return 1 if differ or tok_differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
