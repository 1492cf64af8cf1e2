"""What the match index holds (one engine per audience, the policy catalogue, the marks of what it has
read) and the few steps every part of ``MatchService`` uses: running engine work on the index's own
threads, and stopping a start at a safe point. ``index_build`` fills it, ``index_writes`` keeps it
current, ``service`` serves it.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import CompiledPolicy, MatchEngine, PolicyMatches, Tokenizer
from policy_push.domain import Policy
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher

from .engines import CountingTokenizer, Hierarchies
from .index_store import IndexStore
from .sync import Mark

__all__ = ["IndexState", "ProgressFn", "StartReport"]

#: ``progress(phase, done, total)``, e.g. ``("indexing enterprises", 12000, 400000)``
ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")

_PLURAL = {"enterprise": "enterprises", "resident": "residents"}
# a catch-up touching more than half the rows (and at least this many) re-reads them all instead
_REFIT_MIN = 1000
# policy -> profiles answers kept, uncut, for paging and for several previews of one policy
_RESULT_CACHE = 4
# rows read between two yields to the event loop while scanning profiles
_YIELD_EVERY = 100


class _Closing(Exception):
    """Raised at a safe point of a start that ``close`` asked to stop."""


@dataclass(slots=True)
class StartReport:
    """How the index came up: ``built`` from the database or ``loaded`` from disk."""

    mode: Literal["built", "loaded"]
    profiles: dict[str, int]
    #: profiles re-read because they changed since the saved index (0 after a build)
    caught_up: dict[str, int]
    policies: int
    #: texts jieba cut during start-up: 0 after loading an index nothing has changed since
    texts_cut: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _PolicyEntry:
    policy: Policy
    compiled: CompiledPolicy
    content_hash: str


@dataclass(slots=True)
class _Progress:
    callback: ProgressFn | None
    latest: tuple[str, int, int] | None = field(default=None)

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.latest = (phase, done, total)
        if self.callback is not None:
            self.callback(phase, done, total)


class IndexState:
    """The index's state; see ``MatchService`` for the parameters."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: PiiCipher,
        ref: ReferenceData,
        *,
        index_dir: Path | None = None,
        database: str = "",
        tokenizer: Tokenizer | None = None,
        n_jobs: int = 1,
        threads: int = 2,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._ref = ref
        self._store = IndexStore(index_dir) if index_dir is not None else None
        self._database = database
        self.tokenizer = CountingTokenizer(tokenizer)
        self._n_jobs = n_jobs
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="match-index")
        self._hier: Hierarchies | None = None
        self._engines: dict[str, MatchEngine] = {}
        self._marks: dict[str, Mark] = {}
        self._policies: dict[str, _PolicyEntry] = {}
        self._lock = asyncio.Lock()
        self._follow_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._start_task: asyncio.Task[StartReport | None] | None = None
        self._closing = False
        #: mutated since the last save
        self._dirty = False
        # bumped by every mutation: cached answers of an older index are not served
        self._version = 0
        self._results: OrderedDict[tuple[Any, ...], asyncio.Task[PolicyMatches]] = OrderedDict()
        self.progress = _Progress(None)
        self.start_report: StartReport | None = None
        #: the last change number of the feed this index reflects
        self.feed_seq = 0

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self._error is None

    def _checkpoint(self) -> None:
        if self._closing:
            raise _Closing

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
