"""Leader election without a database: fake acquire/release callables."""

import pytest

from scheduler import AlwaysLeader, LeaderElection, LockLeader


class FakeLock:
    """Stands in for the app's advisory-lock callables."""

    def __init__(self) -> None:
        self.available = True
        self.fail = False
        self.acquires = 0
        self.releases = 0

    async def acquire(self) -> bool:
        self.acquires += 1
        if self.fail:
            raise ConnectionError("server closed the connection")
        return self.available

    async def release(self) -> None:
        self.releases += 1


async def test_always_leader() -> None:
    leader = AlwaysLeader()
    assert isinstance(leader, LeaderElection)
    assert leader.is_leader
    assert await leader.try_acquire()
    await leader.release()
    assert leader.is_leader


async def test_lock_leader_follows_the_lock() -> None:
    lock = FakeLock()
    leader = LockLeader(lock.acquire, lock.release, renew_every_s=5)
    assert isinstance(leader, LeaderElection)
    assert not leader.is_leader
    assert await leader.try_acquire()
    assert leader.is_leader
    lock.available = False  # the session died and another node took the lock
    assert not await leader.try_acquire()
    assert not leader.is_leader
    lock.available = True
    assert await leader.try_acquire()
    await leader.release()
    assert not leader.is_leader
    assert lock.releases == 1


async def test_a_failing_check_drops_the_lead_and_raises() -> None:
    lock = FakeLock()
    leader = LockLeader(lock.acquire, lock.release)
    await leader.try_acquire()
    lock.fail = True
    with pytest.raises(ConnectionError):
        await leader.try_acquire()
    assert not leader.is_leader


async def test_lead_expires_without_renewal() -> None:
    now = [0.0]
    lock = FakeLock()
    leader = LockLeader(lock.acquire, lock.release, renew_every_s=10, monotonic=lambda: now[0])
    assert leader.lease_s == 30
    await leader.try_acquire()
    now[0] = 30.0
    assert leader.is_leader
    now[0] = 30.1  # checks stopped coming back (a hung connection): stop leading on our own
    assert not leader.is_leader


async def test_release_is_called_even_when_not_leading() -> None:
    lock = FakeLock()
    leader = LockLeader(lock.acquire, lock.release)
    await leader.release()
    assert lock.releases == 1


@pytest.mark.parametrize(("renew", "lease"), [(0, None), (10, 5)])
def test_bad_lock_leader(renew: float, lease: float | None) -> None:
    lock = FakeLock()
    with pytest.raises(ValueError):
        LockLeader(lock.acquire, lock.release, renew, lease_s=lease)
