"""The bus interface and the in-process implementation (the embedded default)."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse


class Bus:
    """Publish "account A's journal reached seq N" after commit; wait for it elsewhere.

    The journal in SQL stays the source of truth: a waiter re-reads it after waking, so a lost
    or duplicated notification costs latency, never correctness.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: dict[int, int] = {}
        self._closed = False

    def publish(self, account_id: int, seq: int) -> None:
        """Announce a committed change (called after the transaction commits)."""
        self._deliver(account_id, seq)

    def _deliver(self, account_id: int, seq: int) -> None:
        """Wake this process's waiters for ``account_id``."""
        with self._cond:
            if seq > self._latest.get(account_id, 0):
                self._latest[account_id] = seq
            self._cond.notify_all()

    def wait(self, account_id: int, after_seq: int, timeout: float) -> bool:
        """Block until a change past ``after_seq`` is announced for the account, the timeout
        passes (False) or the bus closes (False). Costs no CPU while waiting."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest.get(account_id, 0) <= after_seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Release every waiter (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class MemoryBus(Bus):
    """Everything in one process: publish wakes local waiters directly."""


def open_bus(url: str, database_url: str | None = None) -> Bus:
    """``memory://`` or ``postgresql://...`` (LISTEN/NOTIFY; ``postgresql://`` alone reuses
    the metadata database)."""
    scheme = urlparse(url).scheme
    if scheme in ("", "memory"):
        return MemoryBus()
    if scheme.startswith("postgres"):
        from davdrive.notify.postgres import PostgresBus

        target = url if urlparse(url).netloc else (database_url or "")
        return PostgresBus(target)
    raise ValueError(f"unsupported bus_url {url!r} (use memory:// or postgresql://...)")
