"""The copies a replicated backend still owes a store: the queue's interface and an in-memory one.

A put that ``min_copies`` allows to succeed while a store is down records ``(store, key)``
here before it returns; ``ReplicatedBackend.drain`` writes the copy when the store is back. The
durable implementation lives one layer up (``davdrive.metadata.replication_queue``, the
``replication_queue`` table): storage never imports metadata, the app injects it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class QueuedCopy:
    """One owed copy: ``store`` (its name in the config) lacks ``key``."""

    store: str
    key: str
    queued_at: float
    attempts: int = 0
    last_error: str | None = None


@runtime_checkable
class RepairQueue(Protocol):
    """Durable record of owed copies; ``add`` must be durable when it returns."""

    def add(self, store: str, key: str, error: str) -> None:
        """Record that ``store`` lacks ``key`` (``error``: why the write failed); idempotent."""

    def pending(self, limit: int = 1000) -> list[QueuedCopy]:
        """The oldest owed copies first, at most ``limit``."""

    def done(self, store: str, key: str) -> None:
        """Forget an owed copy (written, or nothing left to copy)."""

    def failed(self, store: str, key: str, error: str) -> None:
        """Count a failed attempt (the copy stays owed)."""

    def count(self) -> int:
        """How many copies are owed."""


class MemoryRepairQueue:
    """A ``RepairQueue`` in memory: for tests and for replicas that all must be written (with
    ``min_copies`` equal to the number of stores nothing is ever queued). Lost on restart."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], QueuedCopy] = {}
        self._lock = threading.Lock()

    def add(self, store: str, key: str, error: str) -> None:
        with self._lock:
            old = self._items.get((store, key))
            self._items[(store, key)] = QueuedCopy(
                store,
                key,
                old.queued_at if old else time.time(),
                old.attempts if old else 0,
                error,
            )

    def pending(self, limit: int = 1000) -> list[QueuedCopy]:
        with self._lock:
            items = sorted(self._items.values(), key=lambda q: q.queued_at)
        return items[:limit]

    def done(self, store: str, key: str) -> None:
        with self._lock:
            self._items.pop((store, key), None)

    def failed(self, store: str, key: str, error: str) -> None:
        with self._lock:
            old = self._items.get((store, key))
            if old is not None:
                self._items[(store, key)] = QueuedCopy(
                    store, key, old.queued_at, old.attempts + 1, error
                )

    def count(self) -> int:
        with self._lock:
            return len(self._items)


__all__ = ["MemoryRepairQueue", "QueuedCopy", "RepairQueue"]
