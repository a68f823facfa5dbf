"""Job leases in the database, so that with several server processes each scheduled run happens
once (``job_lease``: name, holder, expires_at, last_run_at).

``acquire`` succeeds only when nobody holds an unexpired lease on the job *and* the last run
started at least ``period`` seconds ago; it then records the holder, the expiry and the start of
this run in one conditional UPDATE. Both databases make that atomic under concurrency: SQLite
runs write transactions one at a time, and on PostgreSQL a second UPDATE of the row waits for
the first to commit and then re-evaluates its WHERE clause on the new row (READ COMMITTED), so
it matches nothing. A holder that runs long ``renew``s; one that crashed simply stops renewing
and its lease expires. Times are the processes' clocks (keep them in sync, e.g. NTP); a skew
shorter than the lease's TTL is harmless.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update

from davdrive.metadata.db import Database
from davdrive.metadata.schema import JobLease


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def holder_id() -> str:
    """A name for this process as a lease holder: host, pid and a random part."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str | None
    expires_at: float
    last_run_at: float | None


class Leases:
    """Acquire, renew and release named job leases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(
        self, name: str, holder: str, *, ttl: float, period: float, now: float | None = None
    ) -> bool:
        """Take the lease on ``name`` for ``ttl`` seconds and record a run starting now, if
        nobody holds it and the last run started ``period`` seconds ago or more."""
        now = time.time() if now is None else now
        with self.db.write() as s:
            dialect = s.connection().dialect.name
            s.execute(
                _insert(dialect)(JobLease)
                .values(name=name, holder=None, expires_at=0.0, last_run_at=None)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            taken = s.execute(
                update(JobLease)
                .where(
                    JobLease.name == name,
                    JobLease.expires_at <= now,
                    or_(JobLease.last_run_at.is_(None), JobLease.last_run_at <= now - period),
                )
                .values(holder=holder, expires_at=now + ttl, last_run_at=now)
            )
            return taken.rowcount == 1

    def renew(self, name: str, holder: str, *, ttl: float, now: float | None = None) -> bool:
        """Extend ``holder``'s lease to ``ttl`` seconds from now; False if it is not (or no
        longer) the holder."""
        now = time.time() if now is None else now
        with self.db.write() as s:
            done = s.execute(
                update(JobLease)
                .where(JobLease.name == name, JobLease.holder == holder)
                .values(expires_at=now + ttl)
            )
            return done.rowcount == 1

    def release(self, name: str, holder: str, *, now: float | None = None) -> None:
        """End ``holder``'s lease (the next run still waits for its period)."""
        now = time.time() if now is None else now
        with self.db.write() as s:
            s.execute(
                update(JobLease)
                .where(JobLease.name == name, JobLease.holder == holder)
                .values(holder=None, expires_at=now)
            )

    def state(self, name: str) -> LeaseState | None:
        """The lease row of ``name`` (None before its first run)."""
        with self.db.read() as s:
            row = s.execute(select(JobLease).where(JobLease.name == name)).scalar_one_or_none()
            if row is None:
                return None
            return LeaseState(row.name, row.holder, row.expires_at, row.last_run_at)


__all__ = ["LeaseState", "Leases", "holder_id"]
