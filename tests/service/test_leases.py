"""Job leases: one holder at a time, one run per period, a crashed holder's lease expires, and
exactly one of many concurrent contenders wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from davdrive.metadata.db import Database
from davdrive.service.leases import Leases, holder_id

T0 = 1_000_000.0


def leases(db_url: str) -> Leases:
    db = Database(db_url)
    db.upgrade()
    return Leases(db)


def test_one_run_per_period_and_one_holder_at_a_time(db_url):
    jobs = leases(db_url)
    assert jobs.state("gc") is None
    assert jobs.acquire("gc", "a", ttl=60, period=100, now=T0)
    assert not jobs.acquire("gc", "b", ttl=60, period=100, now=T0 + 1)  # a holds it
    assert not jobs.acquire("gc", "a", ttl=60, period=100, now=T0 + 1)  # not twice either
    jobs.release("gc", "a", now=T0 + 5)
    state = jobs.state("gc")
    assert state is not None and state.holder is None and state.last_run_at == T0
    assert not jobs.acquire("gc", "b", ttl=60, period=100, now=T0 + 50)  # ran this period
    assert jobs.acquire("gc", "b", ttl=60, period=100, now=T0 + 100)
    assert jobs.state("gc").holder == "b"
    assert jobs.acquire("upkeep", "a", ttl=60, period=100, now=T0 + 100)  # leases are per job


def test_a_crashed_holders_lease_expires_and_a_live_one_renews(db_url):
    jobs = leases(db_url)
    assert jobs.acquire("gc", "crashed", ttl=30, period=0, now=T0)
    assert not jobs.acquire("gc", "b", ttl=30, period=0, now=T0 + 29)
    assert jobs.acquire("gc", "b", ttl=30, period=0, now=T0 + 30)  # expired: taken over
    assert not jobs.renew("gc", "crashed", ttl=30, now=T0 + 31)  # no longer its lease
    assert jobs.renew("gc", "b", ttl=30, now=T0 + 50)  # runs long: keeps it
    assert not jobs.acquire("gc", "c", ttl=30, period=0, now=T0 + 70)
    assert jobs.acquire("gc", "c", ttl=30, period=0, now=T0 + 80)
    jobs.release("gc", "b", now=T0 + 81)  # a stale holder's release changes nothing
    assert jobs.state("gc").holder == "c"


def test_exactly_one_of_many_concurrent_contenders_wins(db_url):
    """Several "processes" (each its own engine) race for the same period's run, round after
    round: each round has exactly one winner."""
    contenders = [leases(db_url) for _ in range(4)]
    names = [holder_id() for _ in contenders]
    assert len(set(names)) == len(names)
    for round_ in range(5):
        now = T0 + 10 * round_
        barrier = threading.Barrier(len(contenders))
        won: list[str] = []

        threads = [
            threading.Thread(target=contend, args=(jobs, name, now, barrier, won))
            for jobs, name in zip(contenders, names, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1, f"round {round_}: {won}"
    for jobs in contenders:
        jobs.db.dispose()


def contend(
    jobs: Leases, name: str, now: float, barrier: threading.Barrier, won: list[str]
) -> None:
    barrier.wait()
    if jobs.acquire("gc", name, ttl=5, period=10, now=now):
        won.append(name)
