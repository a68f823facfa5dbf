"""The durable repair queue of the replicated backend: the ``replication_queue`` table.

``ReplicatedBackend.put`` records here, in a transaction of its own, each copy it could not
write because ``min_copies`` let it succeed without a store that was down; the row is committed
before the put returns, so a crash or restart loses no owed copy. ``drain`` reads and clears it.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select, update

from davdrive.metadata.db import Database
from davdrive.metadata.schema import ReplicationQueue
from davdrive.storage.repair_queue import QueuedCopy


def _insert(dialect: str):  # noqa: ANN202 - a dialect's insert()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class SqlRepairQueue:
    """``davdrive.storage.repair_queue.RepairQueue`` over the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, store: str, key: str, error: str) -> None:
        with self.db.write() as s:
            stmt = _insert(s.get_bind().dialect.name)(ReplicationQueue).values(
                store=store, object_key=key, queued_at=time.time(), attempts=0, last_error=error
            )
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["store", "object_key"], set_={"last_error": error}
                )
            )

    def pending(self, limit: int = 1000) -> list[QueuedCopy]:
        with self.db.read() as s:
            rows = s.execute(
                select(ReplicationQueue).order_by(ReplicationQueue.id).limit(limit)
            ).scalars()
            return [
                QueuedCopy(r.store, r.object_key, r.queued_at, r.attempts, r.last_error)
                for r in rows
            ]

    def done(self, store: str, key: str) -> None:
        with self.db.write() as s:
            s.execute(
                delete(ReplicationQueue).where(
                    ReplicationQueue.store == store, ReplicationQueue.object_key == key
                )
            )

    def failed(self, store: str, key: str, error: str) -> None:
        with self.db.write() as s:
            s.execute(
                update(ReplicationQueue)
                .where(ReplicationQueue.store == store, ReplicationQueue.object_key == key)
                .values(attempts=ReplicationQueue.attempts + 1, last_error=error)
            )

    def count(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(ReplicationQueue)) or 0)


__all__ = ["SqlRepairQueue"]
