"""``MatchService``: the match index of a running service, one ``MatchEngine`` per audience plus
the policy catalogue, kept in step with the database.

Life cycle (the web app drives it from a ``cleanup_ctx``)::

    service = MatchService(sessions, cipher, ref, index_dir=data_dir / "index", database=key)
    service.start_in_background(progress=log_progress)   # load the saved index, or build one
    ...  await service.match_policy(policy, on=today)      # reads wait until the index is ready
    ...  await service.profile_written(profile)            # after each committed write of this process
    ...  await service.follow_changes()                    # what other processes wrote (the change feed)
    await service.close()                                  # save

Start-up loads the saved index when it mirrors this database and catches up on what changed
since (``sync``), cutting only the text of changed profiles; otherwise it reads every profile
and builds.  Either way the event loop stays free: engine work runs on the service's own
threads, and the database scan yields between rows.

Concurrency: an ``asyncio.Lock`` puts every mutation (writes, catch-ups, saves) in one queue, in
arrival order; reads do not take it (the engine locks internally, and a read sees the index
before or after a mutation, never half of one).  Writes that arrive while the index is being
built are queued and applied when it is done, so a write never waits for a build.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import MatchEngine, PolicyMatches, Tokenizer
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher
from policy_push.storage import changes
from policy_push.storage.shards import ShardMap

from .answers import AnswerCache
from .engines import AUDIENCES, CountingTokenizer, Hierarchies
from .index_store import IndexStore, database_key
from .results import PolicyMatchResult
from .service_reads import ServiceReads
from .service_state import PLURAL, Closing, PolicyEntry, Progress, ProgressFn
from .service_writes import ServiceWrites
from .sync import Mark

if TYPE_CHECKING:
    from policy_push.runtime import Runtime

__all__ = ["MatchService", "StartReport"]

log = logging.getLogger("policy_push.matching")


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


class MatchService(ServiceReads, ServiceWrites):
    """One per process.  See the module docstring for the life cycle.

    Parameters
    ----------
    sessions, cipher, ref
        The database sessions, the PII cipher (profiles are stored encrypted) and the
        reference tables.
    index_dir
        Where the index is saved (``settings.data_dir / "index"``); None keeps it in memory only.
    database
        Fingerprint of the database (``index_store.database_key(url)``): a saved index of
        another database is never loaded.
    tokenizer
        A loaded jieba ``Tokenizer``; the process's shared one by default (loaded on first use).
    n_jobs
        Processes that tokenise a full build of more than 40,000 profiles.  1 by default: forking
        a process that runs an event loop and threads is not safe everywhere.
    shard
        ``(name, shard map)``: hold only the profiles of that shard's regions
        (``policy_push.storage.shards``), weighed with the text statistics of every profile so that
        scores are those of one index of all.  Those statistics are saved with the index, which
        is loaded only by a node of the same shard under the same map; a change of the map is
        taken up while running (``service_reshard``).

    Here: construction, start, close and counts.  The reads are in ``service_reads``, the writes
    and the change feed in ``service_writes``, building, catching up and saving in
    ``service_build``; what they share in ``service_state``.
    """

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
        shard: tuple[str, ShardMap] | None = None,
    ) -> None:
        self._sessions = sessions
        self.shard = shard
        #: on a shard node, what answers ``match_policy`` for every profile (``fanout.ShardRouter``,
        #: set by the web app, which owns the HTTP client); this index answers only for its own
        self.fan_out: Callable[..., Awaitable[PolicyMatchResult]] | None = None
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
        self._policies: dict[str, PolicyEntry] = {}
        self._lock = asyncio.Lock()
        self._follow_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._start_task: asyncio.Task[StartReport | None] | None = None
        self._closing = False
        #: mutated since the last save
        self._dirty = False
        #: odd while the profiles held are being changed to another shard map's (``service_reshard``)
        self.map_epoch = 0
        # bumped by every mutation: cached answers of an older index are not served
        self._version = 0
        self._results: OrderedDict[tuple[Any, ...], asyncio.Task[PolicyMatches]] = OrderedDict()
        #: shaped answers per profile ("policies for me now"), forgotten when what they depend on changes
        self.answers = AnswerCache()
        self.progress = Progress(None)
        self.start_report: StartReport | None = None
        #: the last change number of the feed this index reflects
        self.feed_seq = 0

    # -- construction -------------------------------------------------------------------------
    @classmethod
    async def build(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        cipher: PiiCipher,
        ref: ReferenceData,
        *,
        progress: ProgressFn | None = None,
        **options: Any,
    ) -> MatchService:
        """A started service: the saved index loaded and caught up, or a new one built."""
        service = cls(sessions, cipher, ref, **options)
        await service.start(progress=progress)
        return service

    @classmethod
    def for_runtime(cls, runtime: Runtime, **options: Any) -> MatchService:
        """A service (not yet started) over a command's runtime, saving under its data dir."""
        options.setdefault("index_dir", runtime.settings.data_dir / "index")
        options.setdefault("database", database_key(runtime.engine.url))
        return cls(runtime.sessions, runtime.cipher, runtime.ref, **options)

    # -- life cycle -----------------------------------------------------------------------------
    def start_in_background(self, *, progress: ProgressFn | None = None) -> asyncio.Task[StartReport | None]:
        """Start without waiting: the caller goes on serving while the index is built."""
        self._start_task = asyncio.create_task(self._start_logged(progress), name="match-index-start")
        return self._start_task

    async def _start_logged(self, progress: ProgressFn | None) -> StartReport | None:
        try:
            return await self.start(progress=progress)
        except Closing:
            return None
        except Exception as exc:
            # the service keeps running without matching; reads say so (the error is kept in
            # ``_error``), the log says why
            log.error("match index failed to start: %s", type(exc).__name__, exc_info=True)
            return None

    async def start(self, *, progress: ProgressFn | None = None) -> StartReport:
        self.progress = Progress(progress)
        began, cut_before = time.perf_counter(), self.tokenizer.texts_cut
        try:
            async with self._lock:
                report = await self._load_or_build()
                await self._replay_feedback()
                # writes that came in meanwhile; the last check and ``set`` are one step, so none
                # can slip between them
                while self._pending:
                    await self._apply_queued(self._pending.pop(0))
                self._version += 1
                self.answers.forget_all()
                self._ready.set()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        report.texts_cut = self.tokenizer.texts_cut - cut_before
        report.seconds = time.perf_counter() - began
        self.start_report = report
        log.info(
            "match index %s in %.1fs: %s; %d policies; %d texts tokenised",
            report.mode,
            report.seconds,
            ", ".join(f"{n} {PLURAL[a]}" for a, n in report.profiles.items()),
            report.policies,
            report.texts_cut,
        )
        return report

    async def _load_or_build(self) -> StartReport:
        # the feed's number first: whatever is written while the tables are read is applied again later
        async with self._sessions() as session:
            self.feed_seq = await changes.latest(session)
        self._hier = await self._run(Hierarchies.from_ref, self._ref)
        self._checkpoint()
        loaded = None
        if self._store is not None:
            loaded = await self._run(self._store.load, self._database, self._hier, self.tokenizer, self.shard_key)
        caught_up = dict.fromkeys(AUDIENCES, 0)
        if loaded is None:
            mode: Literal["built", "loaded"] = "built"
            saved_policies: dict[str, str] = {}
            for audience in AUDIENCES:
                await self._rebuild(audience)
                self._checkpoint()
        else:
            mode = "loaded"
            self._engines, manifest = loaded
            self._marks = dict(manifest.marks)
            saved_policies = manifest.policies
            for audience in AUDIENCES:
                caught_up[audience] = await self._catch_up(audience)
                self._checkpoint()
        changed_policies = await self._sync_policies(saved_policies)
        if mode == "built" or any(caught_up.values()) or changed_policies:
            await self._save()
        return StartReport(
            mode, {a: len(self._engines[a]) for a in AUDIENCES}, caught_up, len(self._policies), 0, 0.0
        )

    async def _apply_queued(self, apply: Callable[[], Awaitable[None]]) -> None:
        # its writer has long had its answer: a failure here is logged, and must not stop the start
        try:
            await apply()
        except Exception as exc:
            log.error(
                "match index: a write queued during the start failed: %s", type(exc).__name__, exc_info=True
            )
        self._dirty = True

    async def close(self) -> None:
        """Stop a start still running; otherwise save what changed since the last save."""
        self._closing = True
        task = self._start_task
        if task is not None and not task.done():
            # not cancelled: a cancel landing inside a database call leaks its connection; the
            # start stops at its next safe point instead (between rows, or after a fit)
            await asyncio.wait([task])
        elif self.is_ready and self._dirty:
            # no database work here: the database may already be closing.  What was written
            # since the last save is kept; the marks stay those of the last catch-up, so the
            # next start re-reads those rows (without re-cutting their text) and misses nothing
            async with self._lock:
                await self._save()
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._executor.shutdown, wait=True)
        )

    def stats(self) -> dict[str, Any]:
        """Counts for health pages and logs (no personal data)."""
        return {
            "ready": self.is_ready,
            "failed": self.failed,
            "error": None if self._error is None else type(self._error).__name__,
            "change_seq": self.feed_seq,
            "profiles": {a: len(e) for a, e in self._engines.items()},
            "policies": len(self._policies),
            "progress": self.progress.latest,
            "texts_cut": self.tokenizer.texts_cut,
            "shard": None if self.shard is None else self.shard[0],
            "shard_map": None if self.shard is None else self.shard[1].fingerprint(),
            "adjusting": self.map_epoch % 2 == 1,
            "started": None if self.start_report is None else self.start_report.mode,
            "answers": self.answers.stats(),
        }
