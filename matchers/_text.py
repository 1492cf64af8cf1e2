"""Chinese tokenisation: one jieba tokenizer with the shipped policy dictionary and stop words.

Build one ``Tokenizer`` at start-up (loading jieba's dictionary takes about a second) and
share it; ``tokens(text)`` is then pure CPU work, safe to call from executor threads.

Text is cut block by block exactly as ``jieba.cut`` does (a block is a run of Han characters,
letters and digits), and each block's tokens are cached: business scopes repeat catalogue
phrases ("技术开发、技术咨询、技术服务"), so re-indexing mostly never calls jieba at all.
``tokenize_many(texts, n_jobs=2)`` spreads a bulk build over processes.

What a block becomes (docs/ranking.md, "Tokens", says why each step is there):

1. jieba's precise cut without its HMM (the HMM invents words from any two characters).
2. **Runs of single characters are joined.**  A word jieba does not know comes out as single
   characters ("纾", "困"); a run of two becomes one token ("纾困"), a longer run its overlapping
   pairs, and a lone character is dropped.  So out-of-vocabulary words such as 纾困, 稳岗 or 降费
   survive instead of vanishing with the single characters.
3. **Compounds also yield their parts** ("search mode"): a word of three or more characters is cut
   again with itself forbidden as one piece, recursively, and every part of two or more characters
   is emitted after it (after step 2 on the pieces).  So 失业保险稳岗返还 meets 稳岗返还, 失业保险, 稳岗
   and 返还; 一次性扩岗补助 meets 扩岗补助 and 扩岗; 减税降费 meets 减税 and 降费.  The parts come from
   the dictionary's own best cut, not from every substring, so 挥发性 does not yield 发性.
4. Stop words, numbers and tokens shorter than ``min_len`` are dropped; letters are lower-cased.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import re
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import jieba

try:
    # the optional extra "fast": jieba_fast's C port of jieba's DAG and best-route search, run over
    # jieba's own dictionary (FREQ, total), so the route is jieba's; see ``fast_route_exact``
    from _jieba_fast_functions_py3 import _get_DAG_and_calc as _c_route
except ImportError:  # pragma: no cover - without the extra, jieba's pure-Python cut
    _c_route = None

__all__ = ["Tokenizer", "fast_route_available", "shipped_path"]

#: entries per DAG position jieba_fast's C search keeps (its ``points[k] < 12``); jieba keeps all
C_DAG_CAP = 12
#: longest block given to the C search: it leaks a reference to each route position it returns,
#: which costs nothing for CPython's cached small ints (to 256) and memory for larger ones
_C_MAX_BLOCK = 256
# jieba's re_eng: single letters/digits of a route are glued into one word by __cut_DAG_NO_HMM
_ENG = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

# the block pattern jieba.cut itself splits on (jieba.re_han_default)
_BLOCK = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+")
_NUMBER = re.compile(r"^[0-9.%\-+]+$")
_HAN = re.compile(r"[\u4E00-\u9FD5]")
_ALL_HAN = re.compile(r"^[\u4E00-\u9FD5]+$")
_SEP = "\x1f"


def fast_route_available() -> bool:
    """Whether jieba_fast's C route search is installed (the ``fast`` extra)."""
    return _c_route is not None


def shipped_path(name: str) -> Path:
    """Path of a data file shipped in ``matchers/data`` ("policy_terms.txt", "stopwords.txt")."""
    return Path(str(resources.files("matchers") / "data" / name))


class Tokenizer:
    """jieba tokenizer with a user dictionary and stop words.

    Parameters
    ----------
    user_dict : path, optional
        One term per line (``term [freq [tag]]``); default the shipped ``policy_terms.txt``.
    stopwords : path, optional
        One word per line; default the shipped ``stopwords.txt``.
    hmm : bool
        Let jieba guess unknown words with its HMM (slower, finds names and new words).
    min_len : int
        Shorter tokens are dropped (single characters carry little meaning in Chinese text).
    cache_size : int
        Blocks whose tokens are kept; the cache is emptied when it grows past this.
    user_freq : int
        Frequency given to dictionary terms without one, high enough that jieba keeps them whole.
    join_singles : bool
        Join runs of single characters into two-character tokens (step 2 above).
    subwords : bool
        Follow each compound with its parts (step 3 above).
    fast : bool
        Find each block's best route with jieba_fast's C search when it is installed (only without
        the HMM).  It runs jieba's algorithm over jieba's own dictionary, so the tokens are the
        same (``tests/matchers/test_fast_cut.py`` compares both cuts), ≈ 5× faster.  Refused (the
        pure-Python cut is used) when the dictionary has a word with more than ``C_DAG_CAP``
        dictionary prefixes, where the C search would drop DAG entries that jieba keeps.
    """

    #: bumped whenever the tokens of some text change; persisted indexes record it
    VERSION = 2

    def __init__(self, user_dict: str | Path | None = None, stopwords: str | Path | None = None, *,
                 hmm: bool = False, min_len: int = 2, cache_size: int = 500_000, user_freq: int = 2000,
                 join_singles: bool = True, subwords: bool = True, fast: bool = True) -> None:
        self.user_dict = str(user_dict or shipped_path("policy_terms.txt"))
        self.stopwords_path = str(stopwords or shipped_path("stopwords.txt"))
        self.hmm = hmm
        self.min_len = min_len
        self.cache_size = cache_size
        self.user_freq = user_freq
        self.join_singles = join_singles
        self.subwords = subwords
        # jieba logs its loading to stderr at DEBUG; the app has its own logging
        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        # the dictionary cache must go somewhere writable whatever the process's cwd or HOME
        self._jieba.tmp_dir = tempfile.gettempdir()
        self._jieba.cache_file = "policy_push_matchers_jieba.cache"
        self._jieba.initialize()
        self.terms = _read_lines(self.user_dict)
        for line in self.terms:
            word, *rest = line.split()
            self._jieba.add_word(word, int(rest[0]) if rest else user_freq, rest[1] if len(rest) > 1 else None)
        self.stopwords = frozenset(_read_lines(self.stopwords_path))
        self.fast = bool(fast and _c_route is not None and not hmm and max_prefix_words(self._jieba.FREQ) <= C_DAG_CAP)
        self._cache: dict[str, tuple[str, ...]] = {}
        self._parts: dict[str, tuple[str, ...]] = {}
        self._expand: dict[str, tuple[str, ...]] = {}

    def _params(self) -> dict[str, object]:
        return {"user_dict": self.user_dict, "stopwords": self.stopwords_path, "hmm": self.hmm,
                "min_len": self.min_len, "cache_size": self.cache_size, "user_freq": self.user_freq,
                "join_singles": self.join_singles, "subwords": self.subwords, "fast": self.fast}

    @property
    def fingerprint(self) -> str:
        """What decides the tokens: version, options and the dictionaries' contents.  An index
        saved under another fingerprint holds tokens this tokenizer would not produce."""
        h = hashlib.blake2b(digest_size=8)
        h.update(repr((self.VERSION, self.hmm, self.min_len, self.user_freq, self.join_singles,
                       self.subwords)).encode())
        for line in self.terms:
            h.update(line.encode() + b"\n")
        h.update("\x00".join(sorted(self.stopwords)).encode())
        return h.hexdigest()

    def _keep(self, w: str) -> bool:
        return len(w) >= self.min_len and w not in self.stopwords and not _NUMBER.match(w)

    def _join(self, pieces: Sequence[str]) -> list[str]:
        """Runs of single Han characters -> two-character tokens (a lone one is dropped)."""
        if not self.join_singles:
            return list(pieces)
        out: list[str] = []
        run: list[str] = []
        for p in [*pieces, ""]:
            if len(p) == 1 and _HAN.match(p):
                run.append(p)
                continue
            if len(run) == 2:
                out.append(run[0] + run[1])
            elif len(run) > 2:
                out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
            run = []
            if p:
                out.append(p)
        return out

    def _subwords(self, word: str) -> tuple[str, ...]:
        """The parts of a compound, recursively, from the dictionary's best cut that is not the
        whole word; () for short or non-Han words."""
        got = self._parts.get(word)
        if got is not None:
            return got
        if len(word) < 3 or not _ALL_HAN.match(word):
            got = ()
        else:
            jb = self._jieba
            dag = jb.get_DAG(word)
            dag[0] = [x for x in dag[0] if x != len(word) - 1] or [0]
            route: dict[int, tuple[float, int]] = {}
            jb.calc(word, dag, route)
            pieces, x = [], 0
            while x < len(word):
                y = route[x][1] + 1
                pieces.append(word[x:y])
                x = y
            parts: list[str] = []
            for p in self._join(pieces):
                if len(p) >= 2:
                    parts.append(p)
                    parts.extend(self._subwords(p))
            got = tuple(parts)
        if len(self._parts) >= self.cache_size:
            self._parts.clear()
        self._parts[word] = got
        return got

    def _expanded(self, word: str) -> tuple[str, ...]:
        """``word`` and its parts (step 3), lower-cased, those kept by step 4."""
        words = [word]
        if self.subwords and len(word) >= 3:
            words.extend(self._subwords(word))
        got = tuple(t for t in (w.lower() for w in words) if self._keep(t))
        if len(self._expand) >= self.cache_size:
            self._expand.clear()
        self._expand[word] = got
        return got

    def _block(self, block: str) -> tuple[str, ...]:
        got = self._cache.get(block)
        if got is None:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            # a new block is mostly known words: each word's kept tokens (itself and its parts) are
            # worked out once, so a block costs its cut and one look-up per word
            words: list[str] = []
            expand = self._expand
            for w in self._join(self.cut(block)):
                kept = expand.get(w)
                if kept is None:
                    kept = self._expanded(w)
                words.extend(kept)
            got = tuple(words)
            self._cache[block] = got
        return got

    def cut(self, block: str) -> list[str]:
        """jieba's cut of one block (a whole match of ``_BLOCK``), before joining and filtering."""
        if not self.fast or len(block) > _C_MAX_BLOCK:
            return list(self._jieba.cut(block, HMM=self.hmm))
        route: list[int] = []
        assert _c_route is not None
        _c_route(self._jieba.FREQ, block, route, float(self._jieba.total))
        # what jieba's __cut_DAG_NO_HMM does with the route: single letters and digits run together
        out: list[str] = []
        buf, x, n = "", 0, len(block)
        while x < n:
            y = route[x] + 1
            w = block[x:y]
            if y - x == 1 and w in _ENG:
                buf += w
            else:
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(w)
            x = y
        if buf:
            out.append(buf)
        return out

    def tokens(self, text: str | None) -> list[str]:
        """Tokens of ``text`` in order, stop words, numbers and too-short tokens removed."""
        if not text:
            return []
        out: list[str] = []
        for block in _BLOCK.findall(text):
            out.extend(self._block(block))
        return out

    def tokenize_many(self, texts: Sequence[str], n_jobs: int = 1, chunk_size: int = 20_000) -> list[list[str]]:
        """``[tokens(t) for t in texts]``, over ``n_jobs`` processes when the input is large."""
        if n_jobs <= 1 or len(texts) < 2 * chunk_size:
            return [self.tokens(t) for t in texts]
        chunks = [texts[i : i + chunk_size] for i in range(0, len(texts), chunk_size)]
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        global _WORKER
        _WORKER = self  # a forked worker inherits the loaded dictionary instead of reloading it
        try:
            with ctx.Pool(n_jobs, initializer=_init_worker, initargs=(self._params(),)) as pool:
                joined = pool.map(_cut_chunk, chunks)
        finally:
            _WORKER = None
        # one joined string per text crosses the process boundary, far cheaper than lists of str
        return [s.split(_SEP) if s else [] for part in joined for s in part]


_WORKER: Tokenizer | None = None


def _init_worker(params: dict) -> None:
    global _WORKER
    if _WORKER is None:
        _WORKER = Tokenizer(**params)  # type: ignore[arg-type]


def _cut_chunk(texts: Sequence[str]) -> list[str]:
    assert _WORKER is not None
    return [_SEP.join(_WORKER.tokens(t)) for t in texts]


def max_prefix_words(freq: dict[str, int]) -> int:
    """The most dictionary words (frequency > 0) that are prefixes of one word, itself included:
    the most DAG entries any position of any text can have."""
    best = 0
    for word, f in freq.items():
        if f and len(word) > best:
            best = max(best, sum(1 for i in range(1, len(word) + 1) if freq.get(word[:i])))
    return best


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]
