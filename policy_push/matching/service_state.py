"""What the parts of ``MatchService`` share: the engines, the policy catalogue, the locks, the
thread pool the engine work runs on, and whether the index is ready.

``MatchService`` (``service``) is assembled from ``service_reads`` (answers), ``service_writes``
(writes after commit, the change feed) and ``service_build`` (building, catching up, saving);
each of them reads and changes the attributes declared here, which ``MatchService.__init__`` sets.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from matchers import CompiledPolicy, MatchEngine, PolicyMatches
from policy_push.domain import Policy
from policy_push.errors import MatchIndexUnavailable
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher
from policy_push.storage.shards import ShardMap

from .answers import AnswerCache
from .engines import CountingTokenizer, Hierarchies
from .index_store import IndexStore
from .results import PolicyMatchResult
from .sync import Mark

__all__ = ["PLURAL", "Closing", "PolicyEntry", "Progress", "ProgressFn", "ServiceState"]

#: ``progress(phase, done, total)``, e.g. ``("indexing enterprises", 12000, 400000)``
ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")

#: an audience's name in progress lines and logs
PLURAL = {"enterprise": "enterprises", "resident": "residents"}


class Closing(Exception):
    """Raised at a safe point of a start that ``close`` asked to stop."""


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A policy of the catalogue, compiled once, and the content hash of the version compiled."""

    policy: Policy
    compiled: CompiledPolicy
    content_hash: str


@dataclass(slots=True)
class Progress:
    """The start's latest ``(phase, done, total)``, passed on to the caller's callback."""

    callback: ProgressFn | None
    latest: tuple[str, int, int] | None = field(default=None)

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.latest = (phase, done, total)
        if self.callback is not None:
            self.callback(phase, done, total)


class ServiceState:
    """The attributes every part of the service reads, and the helpers they all use."""

    _sessions: async_sessionmaker[AsyncSession]
    shard: tuple[str, ShardMap] | None
    fan_out: Callable[..., Awaitable[PolicyMatchResult]] | None
    _cipher: PiiCipher
    _ref: ReferenceData
    _store: IndexStore | None
    _database: str
    tokenizer: CountingTokenizer
    _n_jobs: int
    _executor: ThreadPoolExecutor
    _hier: Hierarchies | None
    _engines: dict[str, MatchEngine]
    _marks: dict[str, Mark]
    _policies: dict[str, PolicyEntry]
    _lock: asyncio.Lock
    _follow_lock: asyncio.Lock
    _ready: asyncio.Event
    _error: BaseException | None
    _pending: list[Callable[[], Awaitable[None]]]
    _closing: bool
    _dirty: bool
    _version: int
    _results: OrderedDict[tuple[Any, ...], asyncio.Task[PolicyMatches]]
    answers: AnswerCache
    progress: Progress
    feed_seq: int
    map_epoch: int

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self._error is None

    async def wait_ready(self) -> None:
        """Wait for the start to finish; ``MatchIndexUnavailable`` if it failed."""
        await self._ready.wait()
        if self._error is not None:
            raise MatchIndexUnavailable(f"the match index could not be built: {type(self._error).__name__}")

    @property
    def failed(self) -> bool:
        """The start failed: there is no index (``/healthz`` says so)."""
        return self._ready.is_set() and self._error is not None

    def holds(self, record: dict[str, Any]) -> bool:
        """This index holds the profile (always, unless it is a shard's)."""
        return self.holds_region(record.get("region"))

    def holds_region(self, region: str | None) -> bool:
        """This index holds the profiles of ``region`` (always, unless it is a shard's)."""
        if self.shard is None:
            return True
        name, shards = self.shard
        return shards.holder(region) == name

    @property
    def shard_key(self) -> str | None:
        """``name:fingerprint`` of the shard held and the map it was taken from (saved in the manifest)."""
        return None if self.shard is None else f"{self.shard[0]}:{self.shard[1].fingerprint()}"

    def _checkpoint(self) -> None:
        if self._closing:
            raise Closing

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
