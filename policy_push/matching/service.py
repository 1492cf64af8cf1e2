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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import MatchRecord, PolicyMatches
from policy_push.domain import Policy
from policy_push.errors import MatchIndexUnavailable
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher

from .engines import AUDIENCES, policy_source
from .index_state import _PLURAL, _RESULT_CACHE, ProgressFn, StartReport, _Closing, _Progress
from .index_store import database_key
from .index_writes import IndexWrites
from .results import PolicyMatchResult

if TYPE_CHECKING:
    from policy_push.runtime import Runtime

__all__ = ["MatchService", "ProgressFn", "StartReport"]

log = logging.getLogger("policy_push.matching")


class MatchService(IndexWrites):
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
    """

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

    async def _apply_queued(self, apply: Callable[[], Awaitable[None]]) -> None:
        # its writer has long had its answer: a failure here is logged, and must not stop the start
        try:
            await apply()
        except Exception as exc:
            log.error("match index: a write queued during the start failed: %s", type(exc).__name__, exc_info=True)
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
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))

    # -- reads ----------------------------------------------------------------------------------
    async def match_policy(
        self, policy: Policy, *, on: dt.date, top_k: int | None = None, min_score: float | None = None
    ) -> PolicyMatchResult:
        """Profiles eligible for ``policy`` (stored or not: a draft can be previewed) on day ``on``,
        and those that may qualify but lack data.  ``top_k`` cuts each list; ``min_score`` the
        eligible one."""
        await self.wait_ready()
        full = await self._full_matches(policy, on)
        return PolicyMatchResult.from_matches(full, top_k=top_k, min_score=min_score)

    async def policies_for_profile(
        self, audience: str, profile_id: str, *, on: dt.date, top_k: int | None = None, include_unknown: bool = False
    ) -> list[dict[str, Any]]:
        """Match records of the policies open on ``on`` that fit the profile, best first; with
        ``include_unknown`` those it may qualify for follow (``eligible: false``, ``missing``).
        Raises ``matchers.UnknownProfileError`` (a ``KeyError``) for an id not indexed."""
        await self.wait_ready()
        engine = self._engines[audience]
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
        engine = self._engines[audience]
        found = await self._run(
            functools.partial(engine.match_profile, profile_id, on=on, top_k=top_k, include_unknown=True, open_only=True)
        )
        out: list[tuple[Policy, MatchRecord]] = []
        for record in (*found.eligible, *found.unknown):
            entry = self._policies.get(record.policy_id)
            if entry is not None:
                out.append((entry.policy, record))
        return out

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
        }

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
