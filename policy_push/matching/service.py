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
import datetime as dt
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import (
    FEEDBACK_KINDS,
    CompiledPolicy,
    MatchEngine,
    MatchRecord,
    PolicyMatches,
    TextStats,
    Tokenizer,
)
from policy_push.domain import EnterpriseProfile, Policy, ResidentProfile
from policy_push.errors import HeldByAnotherShard, MatchIndexUnavailable
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher
from policy_push.statuses import ChangeOp
from policy_push.storage import PolicyRepository, changes
from policy_push.storage import feedback as feedback_store
from policy_push.storage.shards import ShardMap

from .engines import (
    AUDIENCES,
    Audience,
    CountingTokenizer,
    Hierarchies,
    audience_of,
    engine_record,
    new_engine,
    policy_source,
)
from .index_store import IndexStore, Manifest, database_key
from .results import PolicyMatchResult
from .sync import Mark, all_policies, count_profiles, iter_profiles, read_changes, read_mark

if TYPE_CHECKING:
    from policy_push.runtime import Runtime

__all__ = ["MatchService", "ProgressFn", "StartReport"]

log = logging.getLogger("policy_push.matching")

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
# profiles of other shards cut and counted at a time while a shard builds (never kept)
_OUTSIDE_CHUNK = 5000


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


class MatchService:
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
        scores are those of one index of all.  A shard always builds (its outside statistics are
        not saved), so ``index_dir`` is ignored.
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
        if shard is not None:
            index_dir = None
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
    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self._error is None

    async def wait_ready(self) -> None:
        """Wait for the start to finish; ``MatchIndexUnavailable`` if it failed."""
        await self._ready.wait()
        if self._error is not None:
            raise MatchIndexUnavailable(f"the match index could not be built: {type(self._error).__name__}")

    def start_in_background(self, *, progress: ProgressFn | None = None) -> asyncio.Task[StartReport | None]:
        """Start without waiting: the caller goes on serving while the index is built."""
        self._start_task = asyncio.create_task(self._start_logged(progress), name="match-index-start")
        return self._start_task

    async def _start_logged(self, progress: ProgressFn | None) -> StartReport | None:
        try:
            return await self.start(progress=progress)
        except _Closing:
            return None
        except Exception as exc:
            # the service keeps running without matching; reads say so (the error is kept in
            # ``_error``), the log says why
            log.error("match index failed to start: %s", type(exc).__name__, exc_info=True)
            return None

    async def start(self, *, progress: ProgressFn | None = None) -> StartReport:
        self.progress = _Progress(progress)
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
            report.mode, report.seconds, ", ".join(f"{n} {_PLURAL[a]}" for a, n in report.profiles.items()),
            report.policies, report.texts_cut,
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
            loaded = await self._run(self._store.load, self._database, self._hier, self.tokenizer)
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
        return StartReport(mode, {a: len(self._engines[a]) for a in AUDIENCES}, caught_up,
                           len(self._policies), 0, 0.0)

    async def _apply_queued(self, apply: Callable[[], Awaitable[None]]) -> None:
        # its writer has long had its answer: a failure here is logged, and must not stop the start
        try:
            await apply()
        except Exception as exc:
            log.error("match index: a write queued during the start failed: %s", type(exc).__name__, exc_info=True)
        self._dirty = True

    def _checkpoint(self) -> None:
        if self._closing:
            raise _Closing

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
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))

    # -- reads ----------------------------------------------------------------------------------
    async def match_policy(
        self, policy: Policy, *, on: dt.date, top_k: int | None = None, min_score: float | None = None
    ) -> PolicyMatchResult:
        """Profiles eligible for ``policy`` (stored or not: a draft can be previewed) on day ``on``,
        and those that may qualify but lack data.  ``top_k`` cuts each list; ``min_score`` the
        eligible one."""
        if self.fan_out is not None:  # a shard: the other shards holding the policy's regions answer too
            return await self.fan_out(policy, on=on, top_k=top_k, min_score=min_score)
        await self.wait_ready()
        full = await self._full_matches(policy, on)
        return PolicyMatchResult.from_matches(full, top_k=top_k, min_score=min_score)

    async def full_matches(self, policy: Policy, *, on: dt.date) -> PolicyMatches:
        """The engine's uncut answer (a shard's part of a policy's answer is cut from it)."""
        await self.wait_ready()
        return await self._full_matches(policy, on)

    async def policies_for_profile(
        self, audience: str, profile_id: str, *, on: dt.date, top_k: int | None = None, include_unknown: bool = False
    ) -> list[dict[str, Any]]:
        """Match records of the policies open on ``on`` that fit the profile, best first; with
        ``include_unknown`` those it may qualify for follow (``eligible: false``, ``missing``).
        Raises ``matchers.UnknownProfileError`` (a ``KeyError``) for an id not indexed."""
        await self.wait_ready()
        engine = self._own(audience, profile_id)
        found = await self._run(
            functools.partial(
                engine.match_profile, profile_id, on=on, top_k=top_k, include_unknown=include_unknown, open_only=True
            )
        )
        return [r.to_dict() for r in (*found.eligible, *found.unknown)]

    async def open_policies_for(
        self, audience: str, profile_id: str, *, on: dt.date, top_k: int | None = None
    ) -> list[tuple[Policy, MatchRecord]]:
        """As :meth:`policies_for_profile` with ``include_unknown``, but each match record whole (its
        ``public_reasons`` and ``advice``) beside the policy it is for: what a page for the person shows."""
        await self.wait_ready()
        engine = self._own(audience, profile_id)
        found = await self._run(
            functools.partial(engine.match_profile, profile_id, on=on, top_k=top_k, include_unknown=True, open_only=True)
        )
        out: list[tuple[Policy, MatchRecord]] = []
        for record in (*found.eligible, *found.unknown):
            entry = self._policies.get(record.policy_id)
            if entry is not None:
                out.append((entry.policy, record))
        return out

    def _own(self, audience: str, profile_id: str) -> MatchEngine:
        engine = self._engines[audience]
        if self.shard is not None and profile_id not in engine:
            # most likely in another shard's region (or not yet caught up); never answered as "no policies"
            raise HeldByAnotherShard(
                f"this node holds shard {self.shard[0]!r}, and {audience} {profile_id[:80]!r} is not in it: ask the node "
                "of the shard holding its region (`policy-push shards list`)", loc=["path", "id"])
        return engine

    async def audiences_of(self, profile_id: str) -> list[str]:
        """The audiences with a profile of this id (a resident id may look like a credit code)."""
        await self.wait_ready()
        return [a for a in AUDIENCES if profile_id in self._engines[a]]

    @property
    def failed(self) -> bool:
        """The start failed: there is no index (``/healthz`` says so)."""
        return self._ready.is_set() and self._error is not None

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
        }

    def holds(self, record: dict[str, Any]) -> bool:
        """This index holds the profile (always, unless it is a shard's)."""
        if self.shard is None:
            return True
        name, shards = self.shard
        return shards.holder(record.get("region")) == name

    async def _full_matches(self, policy: Policy, on: dt.date) -> PolicyMatches:
        digest = policy.content_hash()
        key = (policy.id, digest, on, self._version)
        task = self._results.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._compute(policy, digest, on))
            self._results[key] = task
            while len(self._results) > _RESULT_CACHE:
                self._results.popitem(last=False)
        else:
            self._results.move_to_end(key)
        # shielded: one caller giving up must not cancel the answer others are waiting for
        return await asyncio.shield(task)

    async def _compute(self, policy: Policy, digest: str, on: dt.date) -> PolicyMatches:
        engine = self._engines[policy.audience]
        entry = self._policies.get(policy.id)
        if entry is not None and entry.content_hash == digest:
            compiled = entry.compiled  # its text was cut when it was written
        else:
            compiled = await self._run(engine.compile_policy, policy_source(policy))
        return await self._run(functools.partial(engine.match_policy, compiled, on=on, top_k=None))

    # -- writes (call after the transaction committed) -------------------------------------------
    async def profile_written(self, profile: EnterpriseProfile | ResidentProfile) -> None:
        audience, record = audience_of(profile), engine_record(profile, self._ref)

        async def apply() -> None:
            if self.holds(record):
                await self._run(self._engines[audience].upsert, record)
            else:  # another shard's region (perhaps it just moved there)
                await self._run(self._engines[audience].remove, profile.id)

        await self._mutate(apply)

    async def profile_deleted(self, audience: str, profile_id: str) -> None:
        async def apply() -> None:
            await self._run(self._engines[audience].remove, profile_id)

        await self._mutate(apply)

    async def policy_written(self, policy: Policy) -> None:
        async def apply() -> None:
            await self._put_policy(policy, policy.content_hash())

        await self._mutate(apply)

    async def feedback_given(self, audience: str, profile_id: str, policy_id: str, kind: str) -> None:
        """Teach the ranking a person's mark (有用 / 不相关 / 已申报), after it was committed: the match
        engine moves that profile's scores for similar policies, bounded (``matchers`` feedback).  Other
        kinds (退订) say nothing about relevance and are ignored."""
        if kind not in FEEDBACK_KINDS or audience not in self._engines:
            return

        async def apply() -> None:
            await self._mark(audience, profile_id, policy_id, kind)

        await self._mutate(apply)

    async def _mark(self, audience: str, profile_id: str, policy_id: str, kind: str) -> None:
        try:
            await self._run(functools.partial(self._engines[audience].record_feedback, profile_id, policy_id, kind))
        except KeyError:  # the profile or the policy left the index since: nothing to teach
            log.debug("feedback on a policy or profile the index does not hold; ignored")

    async def _replay_feedback(self) -> None:
        # marks live in the database; an index built afresh (or saved before a mark) learns them again here
        async with self._sessions() as session:
            marks = await feedback_store.marks(session, FEEDBACK_KINDS)
        for policy_id, audience, profile_id, kind in marks:
            if audience in self._engines:
                await self._mark(audience, profile_id, policy_id, kind)

    async def policy_deleted(self, policy_id: str) -> None:
        async def apply() -> None:
            self._policies.pop(policy_id, None)
            for engine in self._engines.values():
                await self._run(engine.remove_policy, policy_id)

        await self._mutate(apply)

    async def follow_changes(self, *, limit: int = 10_000) -> list[str]:
        """Apply what any process wrote since the last change number this index saw (a CLI import, another
        node); returns the ids of the policies among them. Safe to run often: a change this process already
        applied is applied again at the cost of a comparison."""
        if not self.is_ready:
            return []
        async with self._follow_lock:  # the poll tick and a notification may both call: one at a time
            return await self._follow(limit)

    async def _follow(self, limit: int) -> list[str]:
        async with self._sessions() as session:
            batch = await changes.since(session, self.feed_seq, limit=limit)
        if not batch:
            return []

        async def apply() -> None:
            for audience in AUDIENCES:
                ids = {c.entity_id for c in batch if c.kind == audience}
                if ids:
                    await self._apply_profiles(audience, ids)
            policy_ids = {c.entity_id for c in batch if c.kind == "policy"}
            if policy_ids:
                await self._apply_policies(policy_ids, deleted={c.entity_id for c in batch if c.kind == "policy" and c.op is ChangeOp.DELETE})

        await self._mutate(apply)
        self.feed_seq = batch[-1].seq
        return sorted({c.entity_id for c in batch if c.kind == "policy"})

    async def _apply_profiles(self, audience: Audience, ids: set[str]) -> None:
        records = []
        async with self._sessions() as session:
            async for profile in iter_profiles(session, audience, self._cipher, self._ref, only=ids):
                record = engine_record(profile, self._ref)
                if self.holds(record):
                    records.append(record)
        gone = ids - {r["id"] for r in records}
        await self._run(_apply_changes, self._engines[audience], records, gone & set(self._engines[audience].rows_))

    async def _apply_policies(self, ids: set[str], *, deleted: set[str]) -> None:
        async with self._sessions() as session:
            repo = PolicyRepository(session)
            stored = {pid: await repo.get(pid) for pid in sorted(ids)}
        for policy_id, found in stored.items():
            if found is None:
                self._policies.pop(policy_id, None)
                for engine in self._engines.values():
                    await self._run(engine.remove_policy, policy_id)
            else:
                await self._put_policy(found.policy, found.policy.content_hash())

    async def _mutate(self, apply: Callable[[], Awaitable[None]]) -> None:
        if not self._ready.is_set():
            self._pending.append(apply)  # applied by ``start`` once the index is up
            return
        if self._error is not None:
            return  # no index to keep current; the next start rebuilds from the database
        async with self._lock:
            try:
                await apply()
            finally:
                self._version += 1
                self._dirty = True

    # -- building and catching up (called with the lock held) -----------------------------------
    async def _rebuild(self, audience: Audience) -> None:
        assert self._hier is not None
        phase = f"indexing {_PLURAL[audience]}"
        records: list[dict[str, Any]] = []
        engine = new_engine(audience, self._hier, self.tokenizer, n_jobs=self._n_jobs)
        # a shard cuts the text of the profiles it does not hold only to count their terms, a chunk at a time
        outside, elsewhere = (TextStats(), []) if self.shard is not None else (None, None)
        seen = 0
        async with self._sessions() as session:
            # the mark first: a write landing during the scan is then caught up next time
            mark = await read_mark(session, audience)
            total = await count_profiles(session, audience, self._cipher, self._ref)
            step = max(1000, total // 20 // 1000 * 1000)
            self.progress(phase, 0, total)
            async for profile in iter_profiles(session, audience, self._cipher, self._ref):
                record = engine_record(profile, self._ref)
                if elsewhere is None or self.holds(record):
                    records.append(record)
                else:
                    elsewhere.append(record)
                    if len(elsewhere) >= _OUTSIDE_CHUNK:
                        await self._run(engine.count_outside, outside, elsewhere)
                        elsewhere = []
                seen += 1
                if seen % _YIELD_EVERY == 0:
                    self._checkpoint()
                    await asyncio.sleep(0)  # decrypting and parsing rows is CPU work: let others in
                if seen % step == 0:
                    self.progress(phase, seen, total)
        if elsewhere:
            await self._run(engine.count_outside, outside, elsewhere)
        self.progress(phase, seen, max(total, seen))
        await self._run(functools.partial(engine.fit, records, outside=outside))
        await self._run(engine.set_policies, [e.compiled for e in self._policies.values() if e.policy.audience == audience])
        self._engines[audience] = engine
        self._marks[audience] = mark

    async def _catch_up(self, audience: Audience) -> int:
        """Apply what changed in the table since the index's mark; the number of profiles touched."""
        engine = self._engines[audience]
        mark = self._marks.get(audience, Mark())
        async with self._sessions() as session:
            changes = await read_changes(session, audience, mark, set(engine.rows_))
        touched = len(changes.changed) + len(changes.removed)
        if not touched:
            self._marks[audience] = changes.mark
            return 0
        if len(changes.changed) > max(_REFIT_MIN, changes.n_rows // 2):
            log.info("match index: %d of %d %s changed; rebuilding", len(changes.changed), changes.n_rows, _PLURAL[audience])
            await self._rebuild(audience)
            return touched
        records = []
        async with self._sessions() as session:
            async for profile in iter_profiles(session, audience, self._cipher, self._ref, only=changes.changed):
                records.append(engine_record(profile, self._ref))
                if len(records) % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        await self._run(_apply_changes, engine, records, changes.removed)
        self._marks[audience] = changes.mark
        return touched

    async def _sync_policies(self, saved: dict[str, str]) -> int:
        """Make the catalogue equal the stored policies; ``saved`` (id -> content hash) names the
        policies whose tokens the loaded engines already hold.  Returns the number changed."""
        async with self._sessions() as session:
            stored = await all_policies(session)
        changed = 0
        for policy in stored:
            digest = policy.content_hash()
            entry = self._policies.get(policy.id)
            if entry is not None and entry.content_hash == digest:
                continue
            restored = self._engines[policy.audience].policies_.policies.get(policy.id)
            if restored is not None and saved.get(policy.id) == digest:
                self._policies[policy.id] = _PolicyEntry(policy, restored, digest)  # tokens from disk
                continue
            await self._put_policy(policy, digest)
            changed += 1
        live = {p.id for p in stored}
        for engine in self._engines.values():
            for policy_id in set(engine.policies_.policies) - live:
                await self._run(engine.remove_policy, policy_id)
                changed += 1
        for policy_id in set(self._policies) - live:
            del self._policies[policy_id]
        return changed

    async def _put_policy(self, policy: Policy, digest: str) -> None:
        entry = self._policies.get(policy.id)
        if entry is not None and entry.content_hash == digest:
            return
        engine = self._engines[policy.audience]
        compiled = await self._run(engine.compile_policy, policy_source(policy))
        for audience, other in self._engines.items():
            if audience != policy.audience:  # the audience of a policy can change between versions
                await self._run(other.remove_policy, policy.id)
        await self._run(engine.put_policy, compiled)
        self._policies[policy.id] = _PolicyEntry(policy, compiled, digest)

    async def _save(self) -> None:
        if self._store is None:
            return
        manifest = Manifest(
            self._database, dict(self._marks), {pid: e.content_hash for pid, e in self._policies.items()}
        )
        try:
            await self._run(self._store.save, dict(self._engines), manifest)
        except OSError as exc:  # the index in memory is fine; the next start catches up more
            log.warning("match index not saved: %s", type(exc).__name__)
            return
        self._dirty = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))


def _apply_changes(engine: MatchEngine, records: list[dict[str, Any]], removed: set[str]) -> None:
    for record in records:
        engine.upsert(record)  # text re-cut only when it changed
    for profile_id in removed:
        engine.remove(profile_id)
    if len(records) + len(removed) > max(100, len(engine) // 10):
        # many new rows were weighed with the idf frozen at the last build: refresh it
        engine.compact()
